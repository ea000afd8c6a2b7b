/**
 * CartPole-v1 with Gym's dynamics and limits: a pole on a cart, pushed left (action 0) or right
 * (action 1) with 10 N; Euler steps of 0.02 s; reward 1 per step; the episode ends when the
 * cart leaves ±2.4 or the pole tilts past ±12°, or after 500 steps. The reset state is
 * U(−0.05, 0.05) in each of x, ẋ, θ, θ̇.
 */
import type { Tensor } from "../core/tensor.ts";
import * as random from "../core/random.ts";
import { full } from "../core/ops/creation.ts";
import {
  abs,
  add,
  cos,
  div,
  greater,
  greaterEqual,
  logicalOr,
  mul,
  sin,
  sub,
  where,
} from "../core/ops/math.ts";
import { slice, stack } from "../core/ops/shape.ts";
import { checkAction, checkTaskCount, type Environment } from "./env.ts";

/** CartPole's state: cart position and velocity, pole angle and angular velocity, step count. */
export interface CartPoleState {
  /** Cart position (m). */
  x: Tensor;
  /** Cart velocity (m/s). */
  xDot: Tensor;
  /** Pole angle from upright (rad). */
  theta: Tensor;
  /** Pole angular velocity (rad/s). */
  thetaDot: Tensor;
  /** Steps taken in this episode (i32). */
  t: Tensor;
}

/** Gym's constants (gym/envs/classic_control/cartpole.py). */
export const CARTPOLE = {
  gravity: 9.8,
  massCart: 1.0,
  massPole: 0.1,
  /** Half the pole's length. */
  length: 0.5,
  forceMag: 10.0,
  tau: 0.02,
  thetaThreshold: (12 * 2 * Math.PI) / 360,
  xThreshold: 2.4,
  maxSteps: 500,
} as const;

/**
 * CartPole-v1 (one task: `sampleTasks` returns `{}`). Observations [x, ẋ, θ, θ̇]; discrete
 * actions {0, 1} (a positive action pushes right, anything else left).
 *
 * @example
 * ```ts
 * import { random, tensor } from "@metagrad/metagrad";
 * import { cartPole } from "@metagrad/metagrad/envs";
 * const env = cartPole();
 * const { obs, state } = env.reset(random.key(0), {});
 * const { reward, done } = env.step(random.key(1), state, tensor(1, { dtype: "i32" }), {});
 * ```
 */
export function cartPole(): Environment<CartPoleState, Record<string, never>> {
  const c = CARTPOLE;
  const totalMass = c.massPole + c.massCart;
  const poleMassLength = c.massPole * c.length;
  const observe = (s: CartPoleState) => stack([s.x, s.xDot, s.theta, s.thetaDot]);
  const env: Environment<CartPoleState, Record<string, never>> = {
    name: "CartPole-v1",
    observationShape: [4],
    actionSpace: { kind: "discrete", n: 2 },
    maxSteps: c.maxSteps,
    sampleTasks(_key, n) {
      checkTaskCount(n, "CartPole-v1");
      return {};
    },
    reset(key) {
      const u = random.uniform(key, [4], { minval: -0.05, maxval: 0.05 });
      const state: CartPoleState = {
        x: slice(u, [0]),
        xDot: slice(u, [1]),
        theta: slice(u, [2]),
        thetaDot: slice(u, [3]),
        t: full([], 0, { dtype: "i32", backend: key.backend }),
      };
      return { obs: observe(state), state };
    },
    step(_key, s, action) {
      checkAction(env, action);
      const force = where(greater(action, 0), c.forceMag, -c.forceMag);
      const cosT = cos(s.theta), sinT = sin(s.theta);
      const temp = div(
        add(force, mul(mul(mul(s.thetaDot, s.thetaDot), sinT), poleMassLength)),
        totalMass,
      );
      const thetaAcc = div(
        sub(mul(sinT, c.gravity), mul(cosT, temp)),
        mul(sub(4 / 3, div(mul(mul(cosT, cosT), c.massPole), totalMass)), c.length),
      );
      const xAcc = sub(temp, div(mul(mul(thetaAcc, cosT), poleMassLength), totalMass));
      const next: CartPoleState = {
        x: add(s.x, mul(s.xDot, c.tau)),
        xDot: add(s.xDot, mul(xAcc, c.tau)),
        theta: add(s.theta, mul(s.thetaDot, c.tau)),
        thetaDot: add(s.thetaDot, mul(thetaAcc, c.tau)),
        t: add(s.t, 1),
      };
      const fell = logicalOr(
        greater(abs(next.x), c.xThreshold),
        greater(abs(next.theta), c.thetaThreshold),
      );
      return {
        obs: observe(next),
        state: next,
        reward: full([], 1, { backend: s.x.backend }),
        done: logicalOr(fell, greaterEqual(next.t, c.maxSteps)),
        terminated: fell,
      };
    },
  };
  return env;
}
