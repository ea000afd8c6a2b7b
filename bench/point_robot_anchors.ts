/**
 * The anchors of the point robot's normalised score (PEARL's semicircle goals, 20 steps):
 * (R − R_random) / (R_optimal − R_random) per goal, where R_optimal is the analytic optimum
 * (straight to the goal at full speed, each axis clipped to ±0.1 per step: an upper bound on any
 * oracle policy given the goal) and R_random the mean return of uniformly random actions (16
 * episodes per goal). Shared by `bench/pearl_point_robot.ts` and `bench/maml_rl_navigation.ts`.
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { type Environment, randomPolicy, rollout } from "../envs/mod.ts";

/**
 * One step of the point robot straight toward (gx, gy) at full speed — the move scaled so its
 * larger axis is at most `maxAction` (the env clips each axis to ±0.1): the new position.
 *
 * @example
 * ```ts
 * stepToward(0, 0, 1, 0.5); // [0.1, 0.05]
 * ```
 */
export function stepToward(
  x: number,
  y: number,
  gx: number,
  gy: number,
  maxAction = 0.1,
): [number, number] {
  const dx = gx - x, dy = gy - y;
  const s = Math.min(1, maxAction / Math.max(Math.abs(dx), Math.abs(dy), 1e-12));
  return [x + dx * s, y + dy * s];
}

/** Per-goal anchors and the normalisation they define. */
export interface PointRobotAnchors {
  /** R_optimal per goal. */
  optimal: number[];
  /** R_random per goal. */
  random: number[];
  /** `returns` (one per goal, in goal order) normalised. */
  normalise(returns: ArrayLike<number>): number[];
}

/** The anchors of `tasks` (n goals, `tasks.goal` [n, 2]) for `reward` "dense" or "sparse". */
export async function pointRobotAnchors(
  env: Environment<any, any>,
  reward: "dense" | "sparse",
  tasks: { goal: Tensor },
  randomKey: Tensor,
  radius = 0.2,
): Promise<PointRobotAnchors> {
  const goals = await tasks.goal.toFloat64();
  const n = goals.length / 2, T = env.maxSteps;
  const optimalReturn = (gx: number, gy: number) => {
    let x = 0, y = 0, total = 0;
    for (let t = 0; t < T; t++) {
      [x, y] = stepToward(x, y, gx, gy);
      const dist = Math.hypot(gx - x, gy - y);
      total += reward === "dense" ? -dist : dist <= radius ? 2 - dist : 0;
    }
    return total;
  };
  const optimal = Array.from(
    { length: n },
    (_, i) => optimalReturn(goals[2 * i], goals[2 * i + 1]),
  );
  const totals = await mg.jit((k: Tensor) =>
    mg.sum(
      rollout(env, randomPolicy(env.actionSpace), null, tasks, k, { steps: T, envsPerTask: 16 })
        .reward,
      0,
    )
  )(randomKey).toFloat64();
  const random = Array.from({ length: n }, (_, i) => {
    let s = 0;
    for (let j = 0; j < 16; j++) s += totals[i * 16 + j] / 16;
    return s;
  });
  return {
    optimal,
    random,
    normalise: (r) =>
      Array.from({ length: n }, (_, i) => (r[i] - random[i]) / (optimal[i] - random[i])),
  };
}
