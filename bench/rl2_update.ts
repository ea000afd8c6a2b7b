/**
 * The cost of one RL² update — whole trials rolled out on the device, then PPO epochs of
 * back-propagation through them (scan forward and backward) — on 100-pull bandits and on tabular
 * MDPs, with one GRU or with the critic's own. Prints seconds per update (median of the timed
 * updates, after one that compiles) and the kernels dispatched per update. Run by hand (`--help`).
 */
import { choiceOption, numberOption, parseCommandLine } from "../core/command_line.ts";
import * as mg from "../mod.ts";
import { rl2, RL2_CELLS } from "../algorithms/mod.ts";
import { bernoulliBandit, tabularMdp } from "../envs/mod.ts";

const USAGE = `usage: deno run -A bench/rl2_update.ts [--updates 3] [--trials 128] [--cell rl2]

  --updates   timed updates per row (the median is printed)
  --trials    trials per update (PPO: 4 epochs × 2 minibatches, as bench/rl2_report.ts)
  --cell      rl2|torch: pytorch_rl2's GRU (layer norm, ReLU, update bias 1), or PyTorch's`;

const { values } = parseCommandLine(USAGE, {
  options: {
    updates: { type: "string", default: "3" },
    trials: { type: "string", default: "128" },
    cell: { type: "string", default: "rl2" },
  },
});
const updates = numberOption("--updates", values.updates, USAGE, { min: 1, integer: true });
const trials = numberOption("--trials", values.trials, USAGE, { min: 2, integer: true });
const cellName = choiceOption("--cell", values.cell!, ["rl2", "torch"] as const, USAGE);

const info = await mg.init();
console.log(
  `RL² update, ${trials} trials, PPO 4 epochs × 2 minibatches, ${cellName} cell, ${info.description}\n`,
);
console.log("| setting | GRU | critic | s per update | kernels per update |");
console.log("| --- | --- | --- | --- | --- |");
const rows = [
  { setting: "bandits, n = 100", hidden: 64, separateCritic: false },
  { setting: "bandits, n = 100", hidden: 64, separateCritic: true },
  { setting: "MDPs, n = 10", hidden: 64, separateCritic: false },
  { setting: "MDPs, n = 10", hidden: 128, separateCritic: false },
];
for (const row of rows) {
  const mdp = row.setting.startsWith("MDP");
  const learner = rl2({
    env: mdp ? tabularMdp() : bernoulliBandit({ arms: 5, horizon: 100 }),
    episodes: mdp ? 10 : 1,
    numTrials: trials,
    hidden: row.hidden,
    epochs: 4,
    minibatches: 2,
    lr: 1e-3,
    separateCritic: row.separateCritic,
    cell: RL2_CELLS[cellName],
  });
  const update = mg.jit(learner.update, { donateArgnums: [0] });
  let [state, metrics] = update(learner.init(mg.random.key(0)));
  await metrics.loss.item(); // compiled
  const seconds: number[] = [];
  const dispatched = mg.runtimeStats().dispatches;
  for (let i = 0; i < updates; i++) {
    const t0 = performance.now();
    [state, metrics] = update(state);
    await metrics.loss.item();
    seconds.push((performance.now() - t0) / 1000);
  }
  const kernels = (mg.runtimeStats().dispatches - dispatched) / updates;
  const median = seconds.sort((a, b) => a - b)[Math.floor(updates / 2)];
  console.log(
    `| ${row.setting} | ${row.hidden} | ${row.separateCritic ? "own GRU" : "shared"} | ${
      median.toFixed(2)
    } | ${Math.round(kernels)} |`,
  );
}
