/**
 * The classic Bernoulli-bandit policies RL² is compared with (Duan et al. 2016, Table 1), run on
 * the device: each keeps per-arm successes and pulls, chooses an arm per step, and the total
 * reward of every task's episode comes out of one `scan` under `vmap`. The paper's rows use
 * priors and tuned constants (a Beta(1, 1) posterior-mean greedy scores 6.6 at n = 10, textbook
 * UCB1 only 5.7); each rule's docs say which variant it is.
 */
import * as mg from "../../mod.ts";
import type { Tensor } from "../../mod.ts";
import type { BanditState, BernoulliBanditTask } from "../../envs/bandits.ts";
import type { Environment } from "../../envs/env.ts";
import { checkNumber, checkOptions, oneOf } from "../../core/validate.ts";

/** A bandit policy's choice: key, successes [k], pulls [k] and pulls so far (i32) → an i32 arm. */
export type BanditChooser = (
  key: Tensor,
  successes: Tensor,
  pulls: Tensor,
  t: Tensor,
) => Tensor;

/** The baseline rules. */
export type BanditRule = "random" | "greedy" | "epsilonGreedy" | "ucb1" | "bayesUcb" | "thompson";

/** Options of `banditRule`. */
export interface BanditRuleOptions {
  /** ε of ε-greedy (default 0.1). */
  epsilon?: number;
  /** The exploration constant of `ucb1` (default 1) and `bayesUcb` (default 0.2). */
  c?: number;
}

const RULES: readonly BanditRule[] = [
  "random",
  "greedy",
  "epsilonGreedy",
  "ucb1",
  "bayesUcb",
  "thompson",
];

/**
 * A bandit policy over `arms` arms:
 * - `random`: uniform arms;
 * - `greedy`: the highest Beta(1, 1) posterior mean (s + 1)/(n + 2) (ties to the lowest arm);
 * - `epsilonGreedy`: `greedy`, but a uniform arm with probability ε;
 * - `ucb1` (Auer et al. 2002, textbook): each arm once, then s/n + c·√(2 ln t / n);
 * - `bayesUcb`: (s + 1)/(n + 2) + c·√(2 ln(t + 1) / (n + 1)) — the Beta(1, 1)-prior variant
 *   whose c, tuned on separate tasks, matches the paper's UCB1 column;
 * - `thompson`: the arm of the largest draw from each arm's Beta(s + 1, n − s + 1) posterior.
 *
 * @example
 * ```ts
 * import { random, tensor } from "@metagrad/metagrad";
 * import { banditRule } from "@metagrad/metagrad/algorithms";
 * const choose = banditRule("ucb1", 3);
 * choose(random.key(0), tensor([1, 0, 0]), tensor([1, 1, 0]), tensor(2, { dtype: "i32" })); // arm 2
 * ```
 */
export function banditRule(
  rule: BanditRule,
  arms: number,
  opts: BanditRuleOptions = {},
): BanditChooser {
  const where = "banditRule";
  oneOf(rule, RULES, "rule", where);
  checkNumber(arms, "arms", where, { min: 1, integer: true });
  checkOptions(opts, where, ["epsilon", "c"]);
  const epsilon = checkNumber(opts.epsilon ?? 0.1, "epsilon", where, { min: 0, max: 1 });
  const c = checkNumber(opts.c ?? (rule === "ucb1" ? 1 : 0.2), "c", where, { min: 0 });
  const best = (score: Tensor) => mg.cast(mg.argmax(score), "i32");
  const posteriorMean = (s: Tensor, n: Tensor) => mg.div(mg.add(s, 1), mg.add(n, 2));
  const uniform = (key: Tensor) => mg.random.randint(key, [], 0, arms);
  switch (rule) {
    case "random":
      return uniform;
    case "greedy":
      return (_key, s, n) => best(posteriorMean(s, n));
    case "epsilonGreedy":
      return (key, s, n) => {
        const [kCoin, kArm] = mg.random.split(key);
        return mg.where(
          mg.less(mg.random.uniform(kCoin, []), epsilon),
          uniform(kArm),
          best(posteriorMean(s, n)),
        );
      };
    case "ucb1":
      return (_key, s, n, t) => {
        const tried = mg.greater(n, 0);
        const safeN = mg.maximum(n, 1);
        const bonus = mg.sqrt(mg.div(mg.mul(mg.log(mg.maximum(mg.cast(t, "f32"), 1)), 2), safeN));
        // an untried arm scores above any tried one (scores of tried arms are below 1 + c·√(2 ln t))
        return best(mg.where(tried, mg.add(mg.div(s, safeN), mg.mul(bonus, c)), Infinity));
      };
    case "bayesUcb":
      return (_key, s, n, t) => {
        const bonus = mg.sqrt(
          mg.div(mg.mul(mg.log(mg.add(mg.cast(t, "f32"), 1)), 2), mg.add(n, 1)),
        );
        return best(mg.add(posteriorMean(s, n), mg.mul(bonus, c)));
      };
    case "thompson":
      return (key, s, n) =>
        best(mg.random.beta(key, mg.add(s, 1), mg.add(mg.sub(n, s), 1), [arms]));
  }
}

/**
 * Each task's total reward over one episode of `env` (a Bernoulli bandit) under `choose`:
 * tasks [n, k] → [n], the environment's own step drawing the payoffs. Pure; jit it.
 *
 * @example
 * ```ts
 * import { jit, random, type Tensor } from "@metagrad/metagrad";
 * import { banditBaselineReturns, banditRule } from "@metagrad/metagrad/algorithms";
 * import { bernoulliBandit } from "@metagrad/metagrad/envs";
 * const env = bernoulliBandit({ arms: 5, horizon: 10 });
 * const tasks = env.sampleTasks(random.key(0), 1000);
 * const totals = jit((k: Tensor) => banditBaselineReturns(env, banditRule("thompson", 5), tasks, k))(
 *   random.key(1),
 * ); // [1000]
 * ```
 */
export function banditBaselineReturns(
  env: Environment<BanditState, BernoulliBanditTask>,
  choose: BanditChooser,
  tasks: BernoulliBanditTask,
  key: Tensor,
): Tensor {
  if (env?.actionSpace?.kind !== "discrete" || !(tasks?.p instanceof mg.Tensor)) {
    throw new TypeError(
      "banditBaselineReturns: needs a Bernoulli bandit (bernoulliBandit()) and its tasks { p }",
    );
  }
  const arms = env.actionSpace.n;
  const n = tasks.p.shape[0];
  const one = (task: BernoulliBanditTask, k: Tensor) => {
    const { state } = env.reset(k, task);
    type C = { state: BanditState; s: Tensor; n: Tensor; total: Tensor; key: Tensor };
    const [end] = mg.scan(
      (c: C) => {
        const [next, kChoose, kStep] = mg.random.split(c.key, 3);
        const arm = choose(kChoose, c.s, c.n, c.state.t);
        const r = env.step(kStep, c.state, arm, task);
        const hot = mg.oneHot(arm, arms);
        return [{
          state: r.state,
          s: mg.add(c.s, mg.mul(hot, r.reward)),
          n: mg.add(c.n, hot),
          total: mg.add(c.total, r.reward),
          key: next,
        }, null] as [C, null];
      },
      {
        state,
        s: mg.zeros([arms], { backend: k.backend }),
        n: mg.zeros([arms], { backend: k.backend }),
        total: mg.zeros([], { backend: k.backend }),
        key: k,
      },
      null,
      { length: env.maxSteps },
    );
    return end.total;
  };
  return mg.vmap(one)(tasks, mg.random.splitStacked(key, n));
}
