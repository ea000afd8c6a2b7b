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
import {
  banditBaselineReturns,
  type BanditChooser,
  banditRule,
  summarize,
} from "../algorithms/mod.ts";
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

/** Total reward of `choose` on each of n tasks over `horizon` pulls (the environment's own step). */
function totals(choose: BanditChooser, horizon: number, n: number, key: Tensor): Tensor {
  const env = bernoulliBandit({ arms: ARMS, horizon });
  const [kTasks, kRun] = mg.random.split(key);
  const tasks = env.sampleTasks(kTasks, n);
  return mg.jit((k: Tensor) => banditBaselineReturns(env, choose, tasks, k))(kRun);
}
const randomChoice = banditRule("random", ARMS);
const thompson = banditRule("thompson", ARMS);
const ucb = (c: number) => banditRule("bayesUcb", ARMS, { c });

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
