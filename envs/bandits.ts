/**
 * Multi-armed bandits as meta-RL tasks (Duan et al. 2016, RL²): each task is a set of k arms;
 * an episode is `horizon` pulls of one task. Bernoulli arms pay 1 with probability p (p ~ U[0, 1]
 * per arm and task); Gaussian arms pay N(μ, 1) with μ ~ N(0, 1). The observation is a constant
 * (bandits have no state): the policy learns from the rewards it has seen, e.g. an RL² policy
 * that is fed its previous action and reward.
 */
import type { Tensor } from "../core/tensor.ts";
import * as random from "../core/random.ts";
import { full } from "../core/ops/creation.ts";
import { add, cast, greaterEqual, less } from "../core/ops/math.ts";
import { take } from "../core/ops/indexing.ts";
import { checkNumber } from "../core/validate.ts";
import { checkAction, checkTaskCount, type Environment } from "./env.ts";

/** A bandit's state: pulls so far in the episode (i32). */
export interface BanditState {
  /** Pulls so far in the episode (i32). */
  t: Tensor;
}

/** Bernoulli bandit tasks: each arm's probability of paying 1, [k] per task. */
export interface BernoulliBanditTask {
  /** Each arm's probability of paying 1, [k] (per task). */
  p: Tensor;
}

/** Gaussian bandit tasks: each arm's mean payoff, [k] per task. */
export interface GaussianBanditTask {
  /** Each arm's mean payoff, [k] (per task). */
  means: Tensor;
}

/** Options of the bandits. */
export interface BanditOptions {
  /** Number of arms (default 5). */
  arms?: number;
  /** Pulls per episode (default 10). */
  horizon?: number;
}

function banditShape(opts: BanditOptions, name: string): { arms: number; horizon: number } {
  return {
    arms: checkNumber(opts.arms ?? 5, "arms", name, { min: 1, integer: true }),
    horizon: checkNumber(opts.horizon ?? 10, "horizon", name, { min: 1, integer: true }),
  };
}

/** The stateless part both bandits share: reset, the step counter, the constant observation. */
function bandit<T>(
  name: string,
  arms: number,
  horizon: number,
  sample: (key: Tensor, n: number) => T,
  payoff: (key: Tensor, action: Tensor, task: T) => Tensor,
): Environment<BanditState, T> {
  const env: Environment<BanditState, T> = {
    name,
    observationShape: [1],
    actionSpace: { kind: "discrete", n: arms },
    maxSteps: horizon,
    sampleTasks(key, n) {
      checkTaskCount(n, name);
      return sample(key, n);
    },
    reset(key) {
      const backend = key.backend;
      return {
        obs: full([1], 0, { backend }),
        state: { t: full([], 0, { dtype: "i32", backend }) },
      };
    },
    step(key, state, action, task) {
      checkAction(env, action);
      const t = add(state.t, 1);
      return {
        obs: full([1], 0, { backend: key.backend }),
        state: { t },
        reward: payoff(key, action, task),
        done: greaterEqual(t, horizon),
        terminated: full([], false, { backend: key.backend }),
      };
    },
  };
  return env;
}

/**
 * Bernoulli bandits: pulling arm a pays 1 with probability p[a] (one U[0, 1) draw from the
 * step's key below p[a]); actions outside 0 … k − 1 clamp to the nearest arm.
 *
 * @example
 * ```ts
 * import { random, tensor, vmap } from "@metagrad/metagrad";
 * import { bernoulliBandit } from "@metagrad/metagrad/envs";
 * const env = bernoulliBandit({ arms: 5, horizon: 100 });
 * const tasks = env.sampleTasks(random.key(0), 8); // { p: [8, 5] }
 * ```
 */
export function bernoulliBandit(
  opts: BanditOptions = {},
): Environment<BanditState, BernoulliBanditTask> {
  const { arms, horizon } = banditShape(opts, "bernoulliBandit");
  return bandit(
    `BernoulliBandit-k${arms}-n${horizon}`,
    arms,
    horizon,
    (key, n) => ({ p: random.uniform(key, [n, arms]) }),
    (key, action, task) => cast(less(random.uniform(key, []), take(task.p, action, 0)), "f32"),
  );
}

/**
 * Gaussian bandits: arm a pays μ[a] + ε with ε ~ N(0, 1) from the step's key; means
 * μ ~ N(0, 1) per arm and task.
 *
 * @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * import { gaussianBandit } from "@metagrad/metagrad/envs";
 * const env = gaussianBandit({ arms: 10, horizon: 50 });
 * const tasks = env.sampleTasks(random.key(0), 8); // { means: [8, 10] }
 * ```
 */
export function gaussianBandit(
  opts: BanditOptions = {},
): Environment<BanditState, GaussianBanditTask> {
  const { arms, horizon } = banditShape(opts, "gaussianBandit");
  return bandit(
    `GaussianBandit-k${arms}-n${horizon}`,
    arms,
    horizon,
    (key, n) => ({ means: random.normal(key, [n, arms]) }),
    (key, action, task) => add(take(task.means, action, 0), random.normal(key, [])),
  );
}
