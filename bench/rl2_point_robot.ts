/**
 * RL² on the point robot with goals on the unit semicircle (the environment PEARL's and
 * MAML-RL's point-robot benches use): trials of `--episodes` episodes of one goal, a GRU policy
 * with Gaussian actions trained by PPO on whole trials for a wall-clock budget. Every few
 * updates the same 20 held-out goals as `bench/pearl_point_robot.ts` (a fixed key) are scored
 * per episode of a trial, normalised as there — (R − R_random) / (R_optimal − R_random) — and
 * the environment steps at which the last episode first reaches 0.8 are printed, for the
 * comparison of sample efficiency across the three meta-RL families. Run by hand (`--help`).
 */
import { choiceOption, numberOption, parseCommandLine } from "../core/command_line.ts";
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { rl2, RL2_CELLS, summarize, VALUE_LOSSES } from "../algorithms/mod.ts";
import { pointNavigation } from "../envs/mod.ts";
import { pointRobotAnchors } from "./point_robot_anchors.ts";

const USAGE = `usage: deno run -A bench/rl2_point_robot.ts [options]

  --reward       dense or sparse (default dense)
  --minutes      training budget in wall-clock minutes (default 40)
  --seed         training seed (default 0)
  --episodes     episodes per trial (default 3: one to explore, two to use what it found)
  --every        updates between evaluations (default 20)
  --trials       trials per update (default 128)
  --hidden       GRU width (default 64)
  --lr           Adam learning rate (default 1e-3)
  --critic       separate|shared: the value's own GRU, or the policy's (default separate)
  --value-loss   huber|squared|clipped (default huber)
  --cell         rl2|torch: pytorch_rl2's GRU (layer norm, ReLU candidate, update-gate bias 1),
                 or PyTorch's (default rl2)`;

const { values } = parseCommandLine(USAGE, {
  options: {
    reward: { type: "string", default: "dense" },
    minutes: { type: "string", default: "40" },
    seed: { type: "string", default: "0" },
    episodes: { type: "string", default: "3" },
    every: { type: "string", default: "20" },
    trials: { type: "string", default: "128" },
    hidden: { type: "string", default: "64" },
    lr: { type: "string", default: "1e-3" },
    critic: { type: "string", default: "separate" },
    "value-loss": { type: "string", default: "huber" },
    cell: { type: "string", default: "rl2" },
  },
});
const reward = values.reward;
if (reward !== "dense" && reward !== "sparse") {
  console.error(`--reward must be dense or sparse, got ${reward}\n${USAGE}`);
  Deno.exit(2);
}
const count = (name: string, v: string | undefined) =>
  numberOption(name, v ?? "", USAGE, { min: 1, integer: true });
const minutes = numberOption("--minutes", values.minutes!, USAGE, { min: 0 });
const seed = numberOption("--seed", values.seed!, USAGE, { min: 0, integer: true });
const episodes = count("--episodes", values.episodes);
const every = count("--every", values.every);

const env = pointNavigation({ goals: "semicircle", reward });
const learner = rl2({
  env,
  episodes,
  numTrials: count("--trials", values.trials),
  hidden: count("--hidden", values.hidden),
  epochs: 4,
  minibatches: 2,
  lr: numberOption("--lr", values.lr!, USAGE, { min: 0 }),
  separateCritic: choiceOption("--critic", values.critic!, ["shared", "separate"], USAGE) ===
    "separate",
  valueLoss: choiceOption("--value-loss", values["value-loss"]!, VALUE_LOSSES, USAGE),
  cell: RL2_CELLS[choiceOption("--cell", values.cell!, ["rl2", "torch"] as const, USAGE)],
});
const info = await mg.init();
console.log(
  `RL² on ${learner.trial.name}, ${info.description}${
    info.backendHint ? ` (${info.backendHint})` : ""
  }`,
);
console.log(JSON.stringify({ ...learner.config, env: env.name, minutes, seed }));

// the held-out goals of bench/pearl_point_robot.ts and the anchors of the normalised score
const evalTasks = 20;
const tasks = env.sampleTasks(mg.random.key(5_000_005), evalTasks);
const { normalise } = await pointRobotAnchors(env, reward, tasks, mg.random.key(6));
const perEpisode = mg.jit((p: unknown, k: Tensor) =>
  learner.episodeReturns(p as never, tasks, k, { greedy: true })
);
const update = mg.jit(learner.update, { donateArgnums: [0] });

let state = learner.init(mg.random.key(seed));
const t0 = performance.now();
const stepsPerUpdate = learner.config.numTrials * learner.trialSteps;
let reached: number | null = null;
let last: number[][] = [];
const cells = (u: number, train: number) => {
  const wall = ((performance.now() - t0) / 1000).toFixed(0);
  const scores = last.map((v) => {
    const s = summarize(v);
    return `${s.mean.toFixed(3)} ± ${s.ci95.toFixed(3)}`;
  });
  return `| ${u} | ${u * stepsPerUpdate} | ${wall} | ${train.toFixed(2)} | ${scores.join(" | ")} |`;
};
const evaluate = async () => {
  const r = await perEpisode(state.params, mg.random.key(7)).toFloat64();
  last = Array.from(
    { length: episodes },
    (_, e) => normalise(r.subarray(e * evalTasks, (e + 1) * evalTasks)),
  );
};
const header = Array.from({ length: episodes }, (_, e) => `episode ${e + 1}`).join(" | ");
console.log(`\n| updates | env steps | wall s | train trial return | ${header} |`);
console.log(`| --- | --- | --- | --- | ${Array(episodes).fill("---").join(" | ")} |`);
await evaluate();
console.log(cells(0, NaN));
let u = 0;
while ((performance.now() - t0) / 60_000 < minutes) {
  let m;
  for (let i = 0; i < every; i++) [state, m] = update(state);
  u += every;
  await evaluate();
  if (reached === null && summarize(last[episodes - 1]).mean >= 0.8) reached = u * stepsPerUpdate;
  console.log(cells(u, await m!.trialReturn.item()));
}
console.log(
  `\nNormalised return on ${evalTasks} held-out goals (0 = random, 1 = straight to the goal), ` +
    `greedy actions, by episode of a trial: ${
      last.map((v) => summarize(v).mean.toFixed(3)).join(" / ")
    }; episode ${episodes} ≥ 0.8 first at ${reached ?? "—"} env steps; ${u} updates, ${
      ((performance.now() - t0) / 1000).toFixed(0)
    } s.`,
);
