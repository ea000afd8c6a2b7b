/**
 * Pendulum-v1 with Gym's dynamics: a pendulum swung by a torque u ∈ [−2, 2] (clipped),
 * dt 0.05, g 10, m = l = 1; θ̇ clipped to ±8; reward −(θ̂² + 0.1·θ̇² + 0.001·u²) with θ̂ the
 * angle wrapped to [−π, π); episodes of 200 steps (no termination). Reset: θ ~ U(−π, π),
 * θ̇ ~ U(−1, 1). Observations [cos θ, sin θ, θ̇].
 */
import type { Tensor } from "../core/tensor.ts";
import * as random from "../core/random.ts";
import { full } from "../core/ops/creation.ts";
import { add, clip, cos, greaterEqual, mod, mul, neg, sin, square, sub } from "../core/ops/math.ts";
import { reshape, stack } from "../core/ops/shape.ts";
import { checkAction, checkTaskCount, type Environment } from "./env.ts";

/** Pendulum's state: angle (0 = upright), angular velocity, step count. */
export interface PendulumState {
  /** Angle from upright (rad, not wrapped). */
  theta: Tensor;
  /** Angular velocity (rad/s). */
  thetaDot: Tensor;
  /** Steps taken in this episode (i32). */
  t: Tensor;
}

/** Gym's constants (gym/envs/classic_control/pendulum.py). */
export const PENDULUM = {
  maxSpeed: 8,
  maxTorque: 2,
  dt: 0.05,
  g: 10,
  m: 1,
  l: 1,
  maxSteps: 200,
} as const;

/**
 * Pendulum-v1 (one task: `sampleTasks` returns `{}`); actions f32 [1].
 *
 * @example
 * ```ts
 * import { random, tensor } from "@metagrad/metagrad";
 * import { pendulum } from "@metagrad/metagrad/envs";
 * const env = pendulum();
 * const { state } = env.reset(random.key(0), {});
 * const { reward } = env.step(random.key(1), state, tensor([0.5]), {});
 * ```
 */
export function pendulum(): Environment<PendulumState, Record<string, never>> {
  const c = PENDULUM;
  const observe = (s: PendulumState) => stack([cos(s.theta), sin(s.theta), s.thetaDot]);
  const env: Environment<PendulumState, Record<string, never>> = {
    name: "Pendulum-v1",
    observationShape: [3],
    actionSpace: { kind: "box", shape: [1], low: -c.maxTorque, high: c.maxTorque },
    maxSteps: c.maxSteps,
    sampleTasks(_key, n) {
      checkTaskCount(n, "Pendulum-v1");
      return {};
    },
    reset(key) {
      const [k1, k2] = random.split(key);
      const state: PendulumState = {
        theta: random.uniform(k1, [], { minval: -Math.PI, maxval: Math.PI }),
        thetaDot: random.uniform(k2, [], { minval: -1, maxval: 1 }),
        t: full([], 0, { dtype: "i32", backend: key.backend }),
      };
      return { obs: observe(state), state };
    },
    step(_key, s, action) {
      checkAction(env, action);
      const u = clip(reshape(action, []), -c.maxTorque, c.maxTorque);
      const wrapped = sub(mod(add(s.theta, Math.PI), 2 * Math.PI), Math.PI);
      const cost = add(add(square(wrapped), mul(square(s.thetaDot), 0.1)), mul(square(u), 0.001));
      const accel = add(mul(sin(s.theta), (3 * c.g) / (2 * c.l)), mul(u, 3 / (c.m * c.l * c.l)));
      const thetaDot = clip(add(s.thetaDot, mul(accel, c.dt)), -c.maxSpeed, c.maxSpeed);
      const next: PendulumState = {
        theta: add(s.theta, mul(thetaDot, c.dt)),
        thetaDot,
        t: add(s.t, 1),
      };
      return {
        obs: observe(next),
        state: next,
        reward: neg(cost),
        done: greaterEqual(next.t, c.maxSteps),
        terminated: full([], false, { backend: s.t.backend }),
      };
    },
  };
  return env;
}
