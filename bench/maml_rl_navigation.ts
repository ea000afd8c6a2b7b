/**
 * MAML-RL on 2D navigation (Finn et al. 2017, §5.3): meta-train for a wall-clock budget, then
 * score adaptation on held-out goals (a fixed key): the mean episode return before adaptation
 * and after one and two policy-gradient steps, with 95% CIs, beside the same adaptation from a
 * random initialisation and from a policy pretrained on all tasks at once (TRPO on a fixed set
 * of goals), and beside standing still. With `--env point-robot` (or `point-robot-sparse`),
 * PEARL's semicircle goals on PEARL's held-out goals: the normalised return after one step is
 * scored every `--every` meta-steps, and the environment steps at which it first reaches 0.8
 * are printed (`bench/point_robot_anchors.ts`). Run by hand (`--help`).
 */
import { numberOption, parseCommandLine } from "../core/command_line.ts";
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { mamlRl, summarize, trpo } from "../algorithms/mod.ts";
import { pointNavigation } from "../envs/mod.ts";
import { pointRobotAnchors } from "./point_robot_anchors.ts";

const USAGE = `usage: deno run -A bench/maml_rl_navigation.ts [options]
  --env                navigation, point-robot or point-robot-sparse (default navigation)

  --minutes            meta-training budget in wall-clock minutes (default 60)
  --pretrain-minutes   budget of the pretrained baseline (default 10; 0 skips it)
  --seed               training seed (default 0)
  --meta-batch         tasks per meta-step (default 20)
  --trajectories       trajectories per task and step (default 20)
  --hidden             width of the two tanh layers (default 100)
  --inner-objective    reinforce (MAML) or lvc (ProMP's estimator) (default reinforce)
  --first-order        drop the second-order terms
  --eval-tasks         held-out goals (default 40)
  --every              meta-steps between progress lines (default 5)`;

const { values } = parseCommandLine(USAGE, {
  options: {
    env: { type: "string", default: "navigation" },
    minutes: { type: "string", default: "60" },
    "pretrain-minutes": { type: "string", default: "10" },
    seed: { type: "string", default: "0" },
    "meta-batch": { type: "string", default: "20" },
    trajectories: { type: "string", default: "20" },
    hidden: { type: "string", default: "100" },
    "inner-objective": { type: "string", default: "reinforce" },
    "first-order": { type: "boolean", default: false },
    "eval-tasks": { type: "string", default: "40" },
    every: { type: "string", default: "5" },
  },
});
const count = (name: string, v: string | undefined) =>
  numberOption(name, v ?? "", USAGE, { min: 1, integer: true });
const minutes = numberOption("--minutes", values.minutes!, USAGE, { min: 0 });
const pretrainMinutes = numberOption("--pretrain-minutes", values["pretrain-minutes"]!, USAGE, {
  min: 0,
});
const seed = numberOption("--seed", values.seed!, USAGE, { min: 0, integer: true });
const hidden = count("--hidden", values.hidden);
const objective = values["inner-objective"];
if (objective !== "reinforce" && objective !== "lvc") {
  console.error(`--inner-objective must be reinforce or lvc, got ${objective}\n${USAGE}`);
  Deno.exit(2);
}
const evalTasks = count("--eval-tasks", values["eval-tasks"]);
const every = count("--every", values.every);

const envName = values.env!;
if (!["navigation", "point-robot", "point-robot-sparse"].includes(envName)) {
  console.error(
    `--env must be navigation, point-robot or point-robot-sparse, got ${envName}\n${USAGE}`,
  );
  Deno.exit(2);
}
const robot = envName !== "navigation";
const reward = envName === "point-robot-sparse" ? "sparse" : "dense";
const env = robot ? pointNavigation({ goals: "semicircle", reward }) : pointNavigation();
const learner = mamlRl({
  env,
  metaBatch: count("--meta-batch", values["meta-batch"]),
  trajectories: count("--trajectories", values.trajectories),
  hidden: [hidden, hidden],
  innerObjective: objective,
  firstOrder: values["first-order"],
});
const info = await mg.init();
console.log(
  `MAML-RL on ${env.name}, ${info.description}${info.backendHint ? ` (${info.backendHint})` : ""}`,
);
console.log(JSON.stringify({ ...learner.config, env: env.name, minutes, seed }));

const step = mg.jit(learner.update, { donateArgnums: [0] });
// held-out goals (PEARL's for the point robot), scored with the same adaptation rule
const tasks = robot
  ? env.sampleTasks(mg.random.key(5_000_005), evalTasks)
  : env.sampleTasks(mg.random.key(7_000_007), evalTasks);
const curve = mg.jit((p: unknown, k: Tensor) => learner.adaptationReturns(p as never, tasks, k, 2));
const anchors = robot ? await pointRobotAnchors(env, reward, tasks, mg.random.key(6)) : null;
/** Mean normalised return after one adaptation step on the held-out goals (point robot). */
const normalisedAfterOne = async (params: unknown) => {
  const r = await curve(params, mg.random.key(8)).toFloat64();
  return summarize(anchors!.normalise(r.subarray(evalTasks, 2 * evalTasks))).mean;
};
let reached: number | null = null;
let state = learner.init(mg.random.key(seed));
const stepsPerMetaStep = learner.config.metaBatch * learner.config.trajectories * env.maxSteps *
  (learner.config.innerSteps + 1);
const t0 = performance.now();
console.log(
  "\n| meta-steps | env steps | wall s | return before | after 1 step | KL | step taken |" +
    (robot ? " held-out normalised after 1 step |" : ""),
);
console.log("| --- | --- | --- | --- | --- | --- | --- |" + (robot ? " --- |" : ""));
let done = 0;
while ((performance.now() - t0) / 60_000 < minutes) {
  let m;
  for (let i = 0; i < every; i++) [state, m] = step(state);
  done += every;
  const [pre, post, kl, fraction] = [m!.preReturn, m!.postReturn, m!.kl, m!.stepFraction];
  const figures = await Promise.all([pre, post, kl, fraction].map((t) => t.item()));
  const wall = (performance.now() - t0) / 1000; // after the reads: the steps have run
  let heldOut = "";
  if (robot) {
    const n = await normalisedAfterOne(state.params);
    if (reached === null && n >= 0.8) reached = done * stepsPerMetaStep;
    heldOut = ` ${n.toFixed(3)} |`;
  }
  console.log(
    `| ${done} | ${done * stepsPerMetaStep} | ${wall.toFixed(0)} | ${figures[0].toFixed(2)} | ${
      figures[1].toFixed(2)
    } | ${figures[2].toFixed(4)} | ${figures[3].toFixed(3)} |${heldOut}`,
  );
}
const trainSeconds = (performance.now() - t0) / 1000;

// the held-out goals, scored with the same adaptation rule from each initialisation
const rows: [string, Float64Array][] = [];
const score = async (name: string, params: unknown) =>
  rows.push([name, await curve(params, mg.random.key(8)).toFloat64()]);
await score(`MAML-RL (${objective}${values["first-order"] ? ", first order" : ""})`, state.params);
await score("random initialisation", learner.init(mg.random.key(seed + 1000)).params);
if (pretrainMinutes > 0) {
  // one policy trained on 20 goals at once (the "pretrained" baseline of Finn et al. Fig. 5)
  const goals = env.sampleTasks(mg.random.key(9_000_009), 20);
  const joint = trpo({ env, tasks: goals, numEnvs: 40, hidden: [hidden, hidden], initLogStd: 0 });
  const update = mg.jit(joint.update, { donateArgnums: [0] });
  let s = joint.init(mg.random.key(seed + 2000));
  const p0 = performance.now();
  while ((performance.now() - p0) / 60_000 < pretrainMinutes) [s] = update(s);
  await score(`pretrained on 20 goals (TRPO, ${pretrainMinutes} min)`, s.params);
}
const goals = await tasks.goal.toFloat64();
const still = Array.from(
  { length: evalTasks },
  (_, i) => -env.maxSteps * Math.hypot(goals[2 * i], goals[2 * i + 1]),
);

console.log(
  `\nMeta-trained ${done} meta-steps (${done * stepsPerMetaStep} env steps) in ${
    trainSeconds.toFixed(0)
  } s.`,
);
console.log(`\n| initialisation | return before adaptation | after 1 step | after 2 steps |`);
console.log("| --- | --- | --- | --- |");
const fmt = (v: number[]) => {
  const s = summarize(v);
  return `${s.mean.toFixed(1)} ± ${s.ci95.toFixed(1)}`;
};
for (const [name, r] of rows) {
  const at = (k: number) => Array.from(r.subarray(k * evalTasks, (k + 1) * evalTasks));
  console.log(`| ${name} | ${fmt(at(0))} | ${fmt(at(1))} | ${fmt(at(2))} |`);
}
if (robot) {
  const norm = (v: number[]) => {
    const s = summarize(anchors!.normalise(v));
    return `${s.mean.toFixed(3)} ± ${s.ci95.toFixed(3)}`;
  };
  console.log(`\n| initialisation | normalised before | after 1 step | after 2 steps |`);
  console.log("| --- | --- | --- | --- |");
  for (const [name, r] of rows) {
    const at = (k: number) => Array.from(r.subarray(k * evalTasks, (k + 1) * evalTasks));
    console.log(`| ${name} | ${norm(at(0))} | ${norm(at(1))} | ${norm(at(2))} |`);
  }
  console.log(
    `\n≥ 0.8 after one step first reached at ${reached ?? "—"} env steps. Anchors: optimal ${
      summarize(anchors!.optimal).mean.toFixed(2)
    }, random ${summarize(anchors!.random).mean.toFixed(2)} (mean return).`,
  );
} else {
  console.log(`| standing still | ${fmt(still)} | | |`);
  console.log("| MAML, Raghu et al.'s reproduction (paper) | | −20.3 ± 3.2 | |");
}
