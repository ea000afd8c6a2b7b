/**
 * PEARL on the point robot with goals on the unit semicircle (Rakelly et al. 2019; dense or
 * sparse reward, 20 steps): train for a wall-clock budget — each iteration one episode per
 * training task with z from the prior, one with z from the posterior, then gradient steps — and
 * score held-out goals (a fixed key) every few iterations: the return of each episode of a
 * meta-test trial (the first with z from the prior, then from the posterior of the context so
 * far), normalised as (R − R_random) / (R_optimal − R_random), where R_optimal is the analytic
 * optimum (straight to the goal at full speed: an upper bound on any oracle policy given the
 * goal) and R_random uniform random actions. Prints the environment steps at which the score
 * first reaches 0.8. Run by hand (`--help`).
 */
import { numberOption, parseCommandLine } from "../core/command_line.ts";
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { pearl, summarize } from "../algorithms/mod.ts";
import { PEARL_POINT_ROBOT } from "../algorithms/train_jobs.ts";
import { pointNavigation } from "../envs/mod.ts";
import { pointRobotAnchors } from "./point_robot_anchors.ts";

const USAGE = `usage: deno run -A bench/pearl_point_robot.ts [options]

  --reward        dense or sparse (default dense)
  --minutes       training budget in wall-clock minutes (default 60)
  --seed          training seed (default 0)
  --eval-tasks    held-out goals (default 20)
  --every         iterations between evaluations (default 5)
  --grad-steps    gradient steps per iteration
  --hidden        width of the actor's, critics' and encoder's two ReLU layers
  --batch-size    RL transitions per task and gradient step
  --reward-scale  factor on rewards in the critics' targets
  --context-size  context transitions per task and gradient step
  --gamma         discount
  --kl-weight     weight of the posteriors' KL to the prior, summed over tasks (default 0.1)

Defaults: the CLI's (PEARL_POINT_ROBOT in algorithms/train_jobs.ts), ${
  JSON.stringify(PEARL_POINT_ROBOT)
}.`;

const { values } = parseCommandLine(USAGE, {
  options: {
    reward: { type: "string", default: "dense" },
    minutes: { type: "string", default: "60" },
    seed: { type: "string", default: "0" },
    "eval-tasks": { type: "string", default: "20" },
    every: { type: "string", default: "5" },
    "grad-steps": { type: "string", default: String(PEARL_POINT_ROBOT.gradSteps) },
    hidden: { type: "string", default: String(PEARL_POINT_ROBOT.hidden[0]) },
    "batch-size": { type: "string", default: String(PEARL_POINT_ROBOT.batchSize) },
    "reward-scale": { type: "string", default: String(PEARL_POINT_ROBOT.rewardScale) },
    "context-size": { type: "string", default: String(PEARL_POINT_ROBOT.contextSize) },
    gamma: { type: "string", default: String(PEARL_POINT_ROBOT.gamma) },
    "kl-weight": { type: "string", default: "0.1" },
  },
});
const reward = values.reward;
if (reward !== "dense" && reward !== "sparse") {
  console.error(`--reward must be dense or sparse, got ${reward}\n${USAGE}`);
  Deno.exit(2);
}
const minutes = numberOption("--minutes", values.minutes!, USAGE, { min: 0 });
const seed = numberOption("--seed", values.seed!, USAGE, { min: 0, integer: true });
const evalTasks = numberOption("--eval-tasks", values["eval-tasks"]!, USAGE, {
  min: 1,
  integer: true,
});
const every = numberOption("--every", values.every!, USAGE, { min: 1, integer: true });
const gradSteps = numberOption("--grad-steps", values["grad-steps"]!, USAGE, {
  min: 1,
  integer: true,
});

const width = numberOption("--hidden", values.hidden!, USAGE, { min: 1, integer: true });
const batchSize = numberOption("--batch-size", values["batch-size"]!, USAGE, {
  min: 1,
  integer: true,
});

const env = pointNavigation({ goals: "semicircle", reward });
const rewardScale = numberOption("--reward-scale", values["reward-scale"]!, USAGE, { min: 0 });
const contextSize = numberOption("--context-size", values["context-size"]!, USAGE, {
  min: 1,
  integer: true,
});
const gamma = numberOption("--gamma", values.gamma!, USAGE, { min: 0 });
const klWeight = numberOption("--kl-weight", values["kl-weight"]!, USAGE, { min: 0 });
const learner = pearl({
  env,
  batchSize,
  rewardScale,
  contextSize,
  gamma,
  klWeight,
  // (sparse: the critics learn from the dense reward, as Rakelly et al.'s do)
  useTrainingReward: reward === "sparse",
  hidden: [width, width],
  encoderHidden: [width, width],
});
const info = await mg.init();
console.log(
  `PEARL on ${env.name}, ${info.description}${info.backendHint ? ` (${info.backendHint})` : ""}`,
);
console.log(JSON.stringify({ ...learner.config, env: env.name, minutes, seed, gradSteps }));

// held-out goals and the two anchors of the normalised score, per goal
const tasks = env.sampleTasks(mg.random.key(5_000_005), evalTasks);
const T = env.maxSteps;
const { optimal, random, normalise } = await pointRobotAnchors(
  env,
  reward,
  tasks,
  mg.random.key(6),
);
const collect = mg.jit(learner.collect, { staticArgnums: [1, 2, 3], donateArgnums: [0] });
const train = mg.jit(learner.train, { staticArgnums: [1], donateArgnums: [0] });
const EPISODES = 3;
const evaluate = mg.jit((p: unknown, k: Tensor) =>
  learner.adaptationReturns(p as never, tasks, k, EPISODES)
);
const normalised = (r: Float64Array, e: number) =>
  normalise(r.subarray(e * evalTasks, (e + 1) * evalTasks));

let state = learner.init(mg.random.key(seed));
const t0 = performance.now();
state = collect(state, 2 * T, "random"); // initial data: two random episodes per training task
let envSteps = 2 * T * learner.config.trainTasks;
const stepsPerIteration = 2 * T * learner.config.trainTasks;
let reached: number | null = null;
console.log(
  "\n| iteration | env steps | wall s | critic loss | KL | episode 1 (prior) | episode 2 | episode 3 |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
let it = 0;
let last: number[][] = [];
while ((performance.now() - t0) / 60_000 < minutes) {
  let m;
  for (let i = 0; i < every; i++) {
    // (the context buffers keep the episode with z from the prior, as Rakelly et al.'s do)
    state = collect(collect(state, T, "prior", "replace"), T, "posterior", "none");
    [state, m] = train(state, gradSteps);
    envSteps += stepsPerIteration;
  }
  it += every;
  const r = await evaluate(state.params, mg.random.key(7)).toFloat64();
  last = Array.from({ length: EPISODES }, (_, e) => normalised(r, e));
  const cells = last.map((v) => {
    const s = summarize(v);
    return `${s.mean.toFixed(3)} ± ${s.ci95.toFixed(3)}`;
  });
  if (reached === null && summarize(last[EPISODES - 1]).mean >= 0.8) reached = envSteps;
  console.log(
    `| ${it} | ${envSteps} | ${((performance.now() - t0) / 1000).toFixed(0)} | ${
      (await m!.criticLoss.item()).toFixed(3)
    } | ${(await m!.kl.item()).toFixed(3)} | ${cells.join(" | ")} |`,
  );
}
console.log(
  `\nNormalised return on ${evalTasks} held-out goals (0 = random, 1 = straight to the goal): ` +
    `after one trajectory of context ${summarize(last[1]).mean.toFixed(3)}, after two ` +
    `${summarize(last[2]).mean.toFixed(3)}; ≥ 0.8 first reached at ${reached ?? "—"} env steps.`,
);
console.log(
  `Anchors: optimal ${summarize(optimal).mean.toFixed(2)}, random ${
    summarize(random).mean.toFixed(2)
  } (mean return).`,
);
