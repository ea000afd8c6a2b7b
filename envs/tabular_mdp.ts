/**
 * Random tabular MDPs (Duan et al. 2016, RL²): S states, A actions; each task draws transition
 * distributions P(·|s, a) ~ Dirichlet(1, …, 1) and mean rewards R(s, a) ~ N(1, 1); a step in
 * state s with action a pays R(s, a) + N(0, 1) and moves to s' ~ P(·|s, a). Episodes start in
 * state 0 and last `horizon` steps. Observations are the state one-hot.
 */
import type { Tensor } from "../core/tensor.ts";
import * as random from "../core/random.ts";
import { full } from "../core/ops/creation.ts";
import { add, cast, div, greaterEqual, less, log, neg } from "../core/ops/math.ts";
import { cumsum, oneHot, take } from "../core/ops/indexing.ts";
import { sum } from "../core/ops/reduce.ts";
import { checkNumber } from "../core/validate.ts";
import { checkAction, checkTaskCount, type Environment } from "./env.ts";
import { minimum } from "../core/ops/math.ts";

/** A tabular MDP's state: the current state index and steps so far (both i32). */
export interface TabularMdpState {
  /** The current state (i32). */
  s: Tensor;
  /** Steps so far in the episode (i32). */
  t: Tensor;
}

/** A tabular MDP task: transitions [S, A, S] (rows sum to 1) and mean rewards [S, A]. */
export interface TabularMdpTask {
  /** P(s'|s, a), [S, A, S]. */
  transitions: Tensor;
  /** Mean rewards R(s, a), [S, A]. */
  rewards: Tensor;
}

/** Options of `tabularMdp` (RL²'s setup by default). */
export interface TabularMdpOptions {
  /** States (default 10). */
  states?: number;
  /** Actions (default 5). */
  actions?: number;
  /** Steps per episode (default 10). */
  horizon?: number;
}

/**
 * Random tabular MDPs. The step's key splits in two: a U[0, 1) draw u picks the next state as
 * the first s' whose cumulative probability exceeds u (inverse CDF), and an N(0, 1) draw is
 * the reward's noise. Actions outside 0 … A − 1 clamp to the nearest.
 *
 * @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * import { tabularMdp } from "@metagrad/metagrad/envs";
 * const env = tabularMdp(); // 10 states, 5 actions, 10 steps
 * const tasks = env.sampleTasks(random.key(0), 4); // transitions [4, 10, 5, 10]
 * ```
 */
export function tabularMdp(
  opts: TabularMdpOptions = {},
): Environment<TabularMdpState, TabularMdpTask> {
  const where = "tabularMdp";
  const S = checkNumber(opts.states ?? 10, "states", where, { min: 1, integer: true });
  const A = checkNumber(opts.actions ?? 5, "actions", where, { min: 1, integer: true });
  const horizon = checkNumber(opts.horizon ?? 10, "horizon", where, { min: 1, integer: true });
  const name = `TabularMDP-s${S}-a${A}-n${horizon}`;
  const observe = (s: Tensor) => oneHot(s, S);
  const env: Environment<TabularMdpState, TabularMdpTask> = {
    name,
    observationShape: [S],
    actionSpace: { kind: "discrete", n: A },
    maxSteps: horizon,
    sampleTasks(key, n) {
      checkTaskCount(n, name);
      const [kP, kR] = random.split(key);
      // Dirichlet(1): independent Exp(1) draws, normalised (−log U with U ∈ (0, 1])
      const e = neg(log(random.uniform(kP, [n, S, A, S], { minval: 1e-7, maxval: 1 })));
      return {
        transitions: div(e, sum(e, -1, true)),
        rewards: random.normal(kR, [n, S, A], { mean: 1, std: 1 }),
      };
    },
    reset(key) {
      const s = full([], 0, { dtype: "i32", backend: key.backend });
      return {
        obs: observe(s),
        state: { s, t: full([], 0, { dtype: "i32", backend: key.backend }) },
      };
    },
    step(key, state, action, task) {
      checkAction(env, action);
      const [kNext, kReward] = random.split(key);
      const row = take(take(task.transitions, state.s, 0), action, 0); // P(·|s, a): [S]
      const below = cast(less(cumsum(row, 0), random.uniform(kNext, [])), "i32");
      const s = minimum(sum(below), S - 1); // rounding can leave the last cumulative sum < u
      const mean = take(take(task.rewards, state.s, 0), action, 0);
      const t = add(state.t, 1);
      return {
        obs: observe(s),
        state: { s, t },
        reward: add(mean, random.normal(kReward, [])),
        done: greaterEqual(t, horizon),
        terminated: full([], false, { backend: key.backend }),
      };
    },
  };
  return env;
}
