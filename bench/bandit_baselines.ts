/**
 * The Bernoulli bandit environment validated against the RL² paper's baseline columns (Duan et
 * al. 2016, Table 1, k = 5 arms): expected total reward of a random policy, Thompson sampling
 * with Beta(1, 1) priors, and a UCB policy with a Beta(1, 1) prior whose exploration constant is
 * tuned on separate tasks — each over ≥ 10,000 tasks with 95% CIs, for horizons 10 and 100. All
 * policies run on the device: one jitted program per (policy, horizon), tasks under vmap, pulls
 * under scan. Run by hand (`--help`).
 */
import { numberOption, parseCommandLine } from "../core/command_line.ts";
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { summarize } from "../algorithms/mod.ts";
import { bernoulliBandit } from "../envs/mod.ts";

const USAGE = `usage: deno run -A bench/bandit_baselines.ts [--tasks 10000] [--tune-tasks 2000]

  --tasks       test tasks per (policy, horizon)
  --tune-tasks  separate tasks for tuning UCB's constant`;

const { values } = parseCommandLine(USAGE, {
  options: {
    tasks: { type: "string", default: "10000" },
    "tune-tasks": { type: "string", default: "2000" },
  },
});
const nTasks = numberOption("--tasks", values.tasks, USAGE, { min: 1, integer: true });
const nTune = numberOption("--tune-tasks", values["tune-tasks"], USAGE, { min: 1, integer: true });
const ARMS = 5;

type Chooser = (key: Tensor, successes: Tensor, pulls: Tensor, t: Tensor) => Tensor;

const randomChoice: Chooser = (key) => mg.random.randint(key, [], 0, ARMS);
const thompson: Chooser = (key, s, n) =>
  mg.cast(mg.argmax(mg.random.beta(key, mg.add(s, 1), mg.add(mg.sub(n, s), 1), [ARMS])), "i32");
/** UCB on the Beta(1, 1) posterior mean: (s + 1)/(n + 2) + c·√(2 ln(t + 1) / (n + 1)). */
const ucb = (c: number): Chooser => (_key, s, n, t) => {
  const mean = mg.div(mg.add(s, 1), mg.add(n, 2));
  const bonus = mg.sqrt(mg.div(mg.mul(mg.log(mg.add(mg.cast(t, "f32"), 1)), 2), mg.add(n, 1)));
  return mg.cast(mg.argmax(mg.add(mean, mg.mul(bonus, c))), "i32");
};

/** Total reward of `choose` on each of n tasks over `horizon` pulls (the environment's own step). */
function totals(choose: Chooser, horizon: number, n: number, key: Tensor): Tensor {
  const env = bernoulliBandit({ arms: ARMS, horizon });
  const [kTasks, kRun] = mg.random.split(key);
  const tasks = env.sampleTasks(kTasks, n);
  const one = (task: { p: Tensor }, k: Tensor) => {
    const { state } = env.reset(k, task);
    type C = { state: typeof state; s: Tensor; n: Tensor; total: Tensor; key: Tensor };
    const [end] = mg.scan(
      (c: C) => {
        const [next, kChoose, kStep] = mg.random.split(c.key, 3);
        const arm = choose(kChoose, c.s, c.n, c.state.t);
        const r = env.step(kStep, c.state, arm, task);
        const hot = mg.oneHot(arm, ARMS);
        return [{
          state: r.state,
          s: mg.add(c.s, mg.mul(hot, r.reward)),
          n: mg.add(c.n, hot),
          total: mg.add(c.total, r.reward),
          key: next,
        }, null] as [C, null];
      },
      { state, s: mg.zeros([ARMS]), n: mg.zeros([ARMS]), total: mg.zeros([]), key: k },
      null,
      { length: horizon },
    );
    return end.total;
  };
  return mg.jit((t: { p: Tensor }, k: Tensor) => mg.vmap(one)(t, mg.random.splitStacked(k, n)))(
    tasks,
    kRun,
  );
}

const info = await mg.init();
console.log(
  `Bernoulli bandits, k = ${ARMS}, on ${info.description}${
    info.backendHint ? ` (${info.backendHint})` : ""
  }`,
);
const t0 = performance.now();
const PAPER: Record<string, [number, number]> = {
  random: [5.0, 49.9],
  thompson: [5.7, 74.7],
  ucb: [6.7, 78.0],
};
const rows: string[] = [];
for (const [h, col] of [[10, 0], [100, 1]] as const) {
  // tune UCB's constant on separate tasks (key 1), score every policy on test tasks (key 2)
  let best = { c: 0, mean: -Infinity };
  for (const c of [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1]) {
    const m = summarize(await totals(ucb(c), h, nTune, mg.random.key(1)).toFloat64()).mean;
    if (m > best.mean) best = { c, mean: m };
  }
  for (
    const [name, choose] of [["random", randomChoice], ["thompson", thompson], [
      "ucb",
      ucb(best.c),
    ]] as const
  ) {
    const s = summarize(await totals(choose, h, nTasks, mg.random.key(2)).toFloat64());
    const paper = PAPER[name][col];
    const gap = (100 * (s.mean - paper)) / paper;
    rows.push(
      `| ${name}${name === "ucb" ? ` (c = ${best.c})` : ""} | ${h} | ${s.mean.toFixed(2)} ± ${
        s.ci95.toFixed(2)
      } | ${paper} | ${gap >= 0 ? "+" : ""}${gap.toFixed(1)}% |`,
    );
  }
}
console.log(`\n| policy | horizon | total reward (${nTasks} tasks, 95% CI) | RL² paper | gap |`);
console.log("| --- | --- | --- | --- | --- |");
for (const r of rows) console.log(r);
console.log(`\n${((performance.now() - t0) / 1000).toFixed(0)} s`);
