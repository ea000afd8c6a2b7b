/**
 * A point robot in the plane that moves by its (clipped) action each step — the 2D navigation
 * tasks of MAML (Finn et al. 2017: goals ~ U[−0.5, 0.5]², 100 steps) and of PEARL (Rakelly et
 * al. 2019: goals on the unit upper semicircle, 20 steps, dense or sparse reward). Episodes
 * start at the origin; the observation is the position.
 */
import type { Tensor } from "../core/tensor.ts";
import * as random from "../core/random.ts";
import { full, zeros } from "../core/ops/creation.ts";
import {
  add,
  clip,
  cos,
  greaterEqual,
  lessEqual,
  neg,
  sin,
  sqrt,
  square,
  sub,
  where,
} from "../core/ops/math.ts";
import { sum } from "../core/ops/reduce.ts";
import { stack } from "../core/ops/shape.ts";
import { checkNumber, oneOf } from "../core/validate.ts";
import { checkAction, checkTaskCount, type Environment } from "./env.ts";

/** The robot's state: position [2] and steps so far (i32). */
export interface PointState {
  /** Position [2]. */
  pos: Tensor;
  /** Steps so far in the episode (i32). */
  t: Tensor;
}

/** A navigation task: the goal position [2]. */
export interface PointTask {
  /** The goal position [2]. */
  goal: Tensor;
}

/** Options of `pointNavigation`. */
export interface PointNavigationOptions {
  /** Where goals are drawn: "square" (U[−0.5, 0.5]², MAML) or "semicircle" (PEARL). */
  goals?: "square" | "semicircle";
  /**
   * Dense reward −‖x − g‖, or sparse: 2 − ‖x − g‖ within `radius` of the goal, else 0 (each
   * step then also gives the dense one as `trainingReward`, what Rakelly et al. meta-train
   * PEARL's critics on).
   */
  reward?: "dense" | "sparse";
  /** The sparse reward's radius (default 0.2). */
  radius?: number;
  /** Steps per episode (default 100 for square goals, 20 for the semicircle). */
  horizon?: number;
  /** Largest move per axis; actions are clipped to ±this (default 0.1). */
  maxAction?: number;
}

/**
 * 2D point navigation: x ← x + clip(a, −0.1, 0.1); reward from the new position.
 *
 * @example
 * ```ts
 * import { random, tensor } from "@metagrad/metagrad";
 * import { pointNavigation } from "@metagrad/metagrad/envs";
 * const env = pointNavigation(); // MAML's: goals in [−0.5, 0.5]², 100 steps
 * const pearl = pointNavigation({ goals: "semicircle", reward: "sparse" });
 * const tasks = env.sampleTasks(random.key(0), 20); // { goal: [20, 2] }
 * ```
 */
export function pointNavigation(
  opts: PointNavigationOptions = {},
): Environment<PointState, PointTask> {
  const where_ = "pointNavigation";
  const goals = oneOf(opts.goals ?? "square", ["square", "semicircle"] as const, "goals", where_);
  const reward = oneOf(opts.reward ?? "dense", ["dense", "sparse"] as const, "reward", where_);
  const radius = checkNumber(opts.radius ?? 0.2, "radius", where_, { min: 0 });
  const horizon = checkNumber(opts.horizon ?? (goals === "square" ? 100 : 20), "horizon", where_, {
    min: 1,
    integer: true,
  });
  const maxAction = checkNumber(opts.maxAction ?? 0.1, "maxAction", where_, {
    min: 0,
    exclusiveMin: true,
  });
  const name = `PointNavigation-${goals}-${reward}-n${horizon}`;
  const env: Environment<PointState, PointTask> = {
    name,
    observationShape: [2],
    actionSpace: { kind: "box", shape: [2], low: -maxAction, high: maxAction },
    maxSteps: horizon,
    sampleTasks(key, n) {
      checkTaskCount(n, name);
      if (goals === "square") {
        return { goal: random.uniform(key, [n, 2], { minval: -0.5, maxval: 0.5 }) };
      }
      const angle = random.uniform(key, [n], { minval: 0, maxval: Math.PI });
      return { goal: stack([cos(angle), sin(angle)], 1) };
    },
    reset(key) {
      const pos = zeros([2], { backend: key.backend });
      return { obs: pos, state: { pos, t: full([], 0, { dtype: "i32", backend: key.backend }) } };
    },
    step(_key, state, action, task) {
      checkAction(env, action);
      const pos = add(state.pos, clip(action, -maxAction, maxAction));
      const distance = sqrt(sum(square(sub(pos, task.goal))));
      const r = reward === "dense"
        ? neg(distance)
        : where(lessEqual(distance, radius), sub(2, distance), 0);
      const t = add(state.t, 1);
      return {
        obs: pos,
        state: { pos, t },
        reward: r,
        done: greaterEqual(t, horizon),
        terminated: full([], false, { backend: t.backend }),
        ...(reward === "sparse" ? { trainingReward: neg(distance) } : {}),
      };
    },
  };
  return env;
}
