/**
 * Posterior sampling for reinforcement learning (PSRL; Osband et al. 2013) on random tabular
 * MDPs — the model-based baseline of RL²'s MDP table: at the start of each episode draw an MDP
 * from the posterior (Dirichlet transitions, Gaussian mean rewards), solve it by finite-horizon
 * value iteration, and act greedily on the draw for the episode; then update the counts. Runs on
 * the device, tasks under `vmap`, episodes and steps under `scan`.
 */
import * as mg from "../../mod.ts";
import type { Tensor } from "../../mod.ts";
import type { TabularMdpState, TabularMdpTask } from "../../envs/tabular_mdp.ts";
import type { Environment } from "../../envs/env.ts";
import { checkNumber, checkOptions } from "../../core/validate.ts";

/** Options of `psrlReturns` (defaults: the prior `tabularMdp` draws its tasks from). */
export interface PsrlOptions {
  /** Episodes per task (RL²'s n). */
  episodes: number;
  /** Dirichlet concentration of every transition row's prior (default 1). */
  transitionPrior?: number;
  /** Mean of the Gaussian prior on mean rewards (default 1). */
  rewardPriorMean?: number;
  /** Its standard deviation (default 1). */
  rewardPriorStd?: number;
  /** Standard deviation of the reward noise (default 1). */
  rewardNoiseStd?: number;
}

/**
 * Each task's total reward over `episodes` episodes of `env` (a `tabularMdp`) under PSRL: tasks
 * (leading axis n) → [n]. The reward posterior is conjugate: with prior N(μ₀, τ²), noise σ² and
 * m rewards summing to Σ, the mean reward of (s, a) is N((μ₀/τ² + Σ/σ²)/p, 1/p), p = 1/τ² + m/σ².
 *
 * @example
 * ```ts
 * import { jit, random, type Tensor } from "@metagrad/metagrad";
 * import { psrlReturns } from "@metagrad/metagrad/algorithms";
 * import { tabularMdp } from "@metagrad/metagrad/envs";
 * const env = tabularMdp();
 * const tasks = env.sampleTasks(random.key(0), 100);
 * const totals = jit((k: Tensor) => psrlReturns(env, tasks, k, { episodes: 10 }))(random.key(1)); // [100]
 * ```
 */
export function psrlReturns(
  env: Environment<TabularMdpState, TabularMdpTask>,
  tasks: TabularMdpTask,
  key: Tensor,
  opts: PsrlOptions,
): Tensor {
  const where = "psrlReturns";
  checkOptions(opts, where, [
    "episodes",
    "transitionPrior",
    "rewardPriorMean",
    "rewardPriorStd",
    "rewardNoiseStd",
  ]);
  if (env?.actionSpace?.kind !== "discrete" || !(tasks?.transitions instanceof mg.Tensor)) {
    throw new TypeError(`${where}: needs a tabular MDP (tabularMdp()) and its tasks`);
  }
  const episodes = checkNumber(opts.episodes, "episodes", where, { min: 1, integer: true });
  const alpha = checkNumber(opts.transitionPrior ?? 1, "transitionPrior", where, {
    min: 0,
    exclusiveMin: true,
  });
  const mu0 = checkNumber(opts.rewardPriorMean ?? 1, "rewardPriorMean", where);
  const tau2 = checkNumber(opts.rewardPriorStd ?? 1, "rewardPriorStd", where, {
    min: 0,
    exclusiveMin: true,
  }) ** 2;
  const sigma2 = checkNumber(opts.rewardNoiseStd ?? 1, "rewardNoiseStd", where, {
    min: 0,
    exclusiveMin: true,
  }) ** 2;
  const S = env.observationShape[0], A = env.actionSpace.n, H = env.maxSteps;
  const n = tasks.transitions.shape[0];

  /** Q-values of a drawn MDP for each step of an episode, [H, S, A]. */
  const plan = (P: Tensor, R: Tensor) => {
    const [, qs] = mg.scan(
      (v: Tensor) => {
        const q = mg.add(R, mg.sum(mg.mul(P, mg.reshape(v, [1, 1, S])), -1));
        return [mg.max(q, -1), q];
      },
      mg.zeros([S], { backend: P.backend }),
      null,
      { length: H, reverse: true },
    );
    return qs;
  };

  type Counts = { visits: Tensor; rewardSum: Tensor; moves: Tensor; total: Tensor; key: Tensor };
  const one = (task: TabularMdpTask, k: Tensor) => {
    const backend = k.backend;
    const [end] = mg.scan(
      (c: Counts) => {
        const [next, kP, kR, kEnv] = mg.random.split(c.key, 4);
        const draws = mg.random.gamma(kP, mg.add(c.moves, alpha), [S, A, S]);
        const P = mg.div(draws, mg.sum(draws, -1, true));
        const precision = mg.add(1 / tau2, mg.div(c.visits, sigma2));
        const mean = mg.div(mg.add(mu0 / tau2, mg.div(c.rewardSum, sigma2)), precision);
        const R = mg.add(mean, mg.mul(mg.random.normal(kR, [S, A]), mg.rsqrt(precision)));
        const qs = plan(P, R);
        const first = env.reset(kEnv, task);
        type Step = { state: TabularMdpState; counts: Counts; key: Tensor };
        const [after] = mg.scan(
          (s: Step, q: Tensor) => {
            const [kNext, kStep] = mg.random.split(s.key);
            const action = mg.cast(mg.argmax(mg.take(q, s.state.s, 0)), "i32");
            const r = env.step(kStep, s.state, action, task);
            const sa = mg.mul(
              mg.reshape(mg.oneHot(s.state.s, S), [S, 1]),
              mg.reshape(mg.oneHot(action, A), [1, A]),
            );
            const move = mg.mul(
              mg.reshape(sa, [S, A, 1]),
              mg.reshape(mg.oneHot(r.state.s, S), [1, 1, S]),
            );
            const counts: Counts = {
              visits: mg.add(s.counts.visits, sa),
              rewardSum: mg.add(s.counts.rewardSum, mg.mul(sa, r.reward)),
              moves: mg.add(s.counts.moves, move),
              total: mg.add(s.counts.total, r.reward),
              key: s.counts.key,
            };
            return [{ state: r.state, counts, key: kNext }, null] as [Step, null];
          },
          { state: first.state, counts: c, key: kEnv },
          qs,
        );
        return [{ ...after.counts, key: next }, null] as [Counts, null];
      },
      {
        visits: mg.zeros([S, A], { backend }),
        rewardSum: mg.zeros([S, A], { backend }),
        moves: mg.zeros([S, A, S], { backend }),
        total: mg.zeros([], { backend }),
        key: k,
      },
      null,
      { length: episodes },
    );
    return end.total;
  };
  return mg.vmap(one)(tasks, mg.random.splitStacked(key, n));
}
