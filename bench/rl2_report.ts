/**
 * RL² against the paper's table (Duan et al. 2016, Table 1/2) and baselines computed here on the
 * same held-out tasks: train for a wall-clock budget, score a validation set (its own tasks) as
 * training goes to pick the parameters, then score those once on ≥ 1,000 test tasks (a fixed
 * key, never seen in training or selection) with 95% CIs. Run by hand (`--help`).
 */
import { choiceOption, numberOption, parseCommandLine } from "../core/command_line.ts";
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import {
  banditBaselineReturns,
  type BanditRule,
  banditRule,
  psrlReturns,
  rl2,
  RL2_CELLS,
  summarize,
  type Summary,
  VALUE_LOSSES,
} from "../algorithms/mod.ts";
import { bernoulliBandit, randomPolicy, rollout, tabularMdp } from "../envs/mod.ts";

const USAGE = `usage: deno run -A bench/rl2_report.ts --setting bandit10|bandit100|mdp10 [options]

  --setting      k = 5 bandits with n = 10 or 100 pulls, or tabular MDPs with n = 10 episodes
  --minutes      training budget in wall-clock minutes (default 60)
  --seed         training seed (default 0)
  --test-tasks   held-out test tasks (default 1000)
  --val-tasks    validation tasks for picking the parameters (default 500)
  --every        updates between validation scores (default 25)
  --trials       trials per update (default 128)
  --hidden       GRU width (default 64)
  --epochs       PPO epochs per update (default 4)
  --minibatches  minibatches of trials (default 2)
  --lr           Adam learning rate (default 1e-3)
  --anneal       updates over which the rate falls linearly to --final-lr (default 0: constant)
  --final-lr     the rate after --anneal updates (default 0)
  --ent-coef     entropy bonus coefficient (default 0.01)
  --lambda       GAE λ (default 0.3)
  --gamma        discount (default 0.99)
  --cell         rl2|torch: pytorch_rl2's GRU (layer norm, ReLU candidate, update-gate bias 1),
                 or PyTorch's (default rl2)
  --update-bias  the update gate's initial bias (default: the cell's, 1 for rl2, 0 for torch)
  --critic       separate|shared: the value's own GRU, or the policy's (default separate)
  --value-loss   huber|squared|clipped (default huber)
  --normalize-advantages  standardise advantages per minibatch
  --save         FILE: write the selected parameters there (safetensors, the config in its
                 metadata) before the test
  --load         FILE: score parameters saved by --save instead of training (the network
                 options must match the saved ones)`;

const { values } = parseCommandLine(USAGE, {
  options: {
    setting: { type: "string" },
    minutes: { type: "string", default: "60" },
    seed: { type: "string", default: "0" },
    "test-tasks": { type: "string", default: "1000" },
    "val-tasks": { type: "string", default: "500" },
    every: { type: "string", default: "25" },
    trials: { type: "string", default: "128" },
    hidden: { type: "string", default: "64" },
    epochs: { type: "string", default: "4" },
    minibatches: { type: "string", default: "2" },
    lr: { type: "string", default: "1e-3" },
    anneal: { type: "string", default: "0" },
    "final-lr": { type: "string", default: "0" },
    "ent-coef": { type: "string", default: "0.01" },
    lambda: { type: "string", default: "0.3" },
    gamma: { type: "string", default: "0.99" },
    cell: { type: "string", default: "rl2" },
    "update-bias": { type: "string" },
    critic: { type: "string", default: "separate" },
    "value-loss": { type: "string", default: "huber" },
    "normalize-advantages": { type: "boolean", default: false },
    save: { type: "string" },
    load: { type: "string" },
  },
});
const count = (name: string, v: string | undefined) =>
  numberOption(name, v ?? "", USAGE, { min: 1, integer: true });
const setting = values.setting;
if (setting !== "bandit10" && setting !== "bandit100" && setting !== "mdp10") {
  console.error(`--setting must be bandit10, bandit100 or mdp10, got ${setting}\n${USAGE}`);
  Deno.exit(2);
}
const minutes = numberOption("--minutes", values.minutes, USAGE, { min: 0 });
const seed = numberOption("--seed", values.seed ?? "", USAGE, { min: 0, integer: true });
const testTasks = count("--test-tasks", values["test-tasks"]);
const valTasks = count("--val-tasks", values["val-tasks"]);
const every = count("--every", values.every);

if (values.save !== undefined) {
  // checked now, not after an hour of training: the directory must exist
  const dir = values.save.includes("/") ? values.save.slice(0, values.save.lastIndexOf("/")) : ".";
  if (!(await Deno.stat(dir || "/").then((s) => s.isDirectory, () => false))) {
    console.error(`--save ${values.save}: the directory ${dir} does not exist\n${USAGE}`);
    Deno.exit(2);
  }
}

const isMdp = setting === "mdp10";
const env = isMdp
  ? tabularMdp()
  : bernoulliBandit({ arms: 5, horizon: setting === "bandit10" ? 10 : 100 });
const episodes = isMdp ? 10 : 1;
const learner = rl2({
  env,
  episodes,
  numTrials: count("--trials", values.trials),
  hidden: count("--hidden", values.hidden),
  epochs: count("--epochs", values.epochs),
  minibatches: count("--minibatches", values.minibatches),
  lr: numberOption("--lr", values.lr, USAGE, { min: 0 }),
  annealUpdates: numberOption("--anneal", values.anneal, USAGE, { min: 0, integer: true }),
  finalLr: numberOption("--final-lr", values["final-lr"], USAGE, { min: 0 }),
  entCoef: numberOption("--ent-coef", values["ent-coef"], USAGE, { min: 0 }),
  lambda: numberOption("--lambda", values.lambda, USAGE, { min: 0 }),
  gamma: numberOption("--gamma", values.gamma, USAGE, { min: 0 }),
  cell: {
    ...RL2_CELLS[choiceOption("--cell", values.cell!, ["rl2", "torch"] as const, USAGE)],
    ...(values["update-bias"] === undefined ? {} : {
      updateBias: numberOption("--update-bias", values["update-bias"], USAGE),
    }),
  },
  separateCritic: choiceOption("--critic", values.critic!, ["shared", "separate"], USAGE) ===
    "separate",
  valueLoss: choiceOption("--value-loss", values["value-loss"]!, VALUE_LOSSES, USAGE),
  normalizeAdvantages: values["normalize-advantages"],
});

const info = await mg.init();
console.log(
  `RL² on ${learner.trial.name} (${learner.trialSteps} steps per trial), ${info.description}${
    info.backendHint ? ` (${info.backendHint})` : ""
  }`,
);
console.log(JSON.stringify({ ...learner.config, env: env.name, minutes, seed }));

// fixed task sets: validation (picks the parameters) and test (scored once at the end)
const valSet = env.sampleTasks(mg.random.key(1_000_001), valTasks);
const testSet = env.sampleTasks(mg.random.key(2_000_002), testTasks);
const score = mg.jit((params: unknown, tasks: unknown, key: Tensor) =>
  learner.trialReturns(params as never, tasks, key)
);
const update = mg.jit(learner.update, { donateArgnums: [0] });

/** Host copies of a parameter tree (the state is donated to the next update). */
async function snapshot<T>(tree: T): Promise<T> {
  const [leaves, def] = mg.tree.flatten<Tensor>(tree);
  const copies = await Promise.all(
    leaves.map(async (t) => mg.tensor(await t.data(), { shape: t.shape, dtype: t.dtype })),
  );
  return mg.tree.unflatten(def, copies) as T;
}

let state = learner.init(mg.random.key(seed));
const t0 = performance.now();
const stepsPerUpdate = learner.config.numTrials * learner.trialSteps;
let best = { val: -Infinity, updates: 0, params: await snapshot(state.params) };
console.log(
  "\n| updates | env steps | wall s | train trial return | policy entropy | validation (95% CI) |",
);
console.log("| --- | --- | --- | --- | --- | --- |");
const validate = async (u: number, train: number, entropy: number) => {
  const v = summarize(await score(state.params, valSet, mg.random.key(3)).toFloat64());
  const wall = (performance.now() - t0) / 1000;
  console.log(
    `| ${u} | ${u * stepsPerUpdate} | ${wall.toFixed(0)} | ${train.toFixed(3)} | ${
      entropy.toFixed(3)
    } | ${v.mean.toFixed(3)} ± ${v.ci95.toFixed(3)} |`,
  );
  if (v.mean > best.val) best = { val: v.mean, updates: u, params: await snapshot(state.params) };
};
if (values.load !== undefined) {
  // a saved policy: scored on the validation tasks (as a check) and the test, not trained
  try {
    const { tree } = await mg.loadCheckpoint(values.load, { like: state.params });
    state = { ...state, params: tree };
  } catch (e) {
    console.error(
      `--load: ${(e as Error).message}\n(--hidden, --cell and --critic must be the saving run's)`,
    );
    Deno.exit(1);
  }
  console.log(`Loaded the parameters from ${values.load}.`);
}
await validate(0, NaN, NaN);
let u = 0;
while (values.load === undefined && (performance.now() - t0) / 60_000 < minutes) {
  let m;
  for (let i = 0; i < every; i++) [state, m] = update(state);
  u += every;
  await validate(u, await m!.trialReturn.item(), await m!.entropy.item());
}
const trainSeconds = (performance.now() - t0) / 1000;
if (values.save !== undefined) {
  await mg.saveCheckpoint(values.save, best.params, {
    metadata: {
      config: JSON.stringify({ ...learner.config, env: env.name, seed }),
      updates: String(best.updates),
      validation: best.val.toFixed(3),
    },
  });
  console.log(`Saved the selected parameters to ${values.save}.`);
}

// the test: the selected parameters, sampled and greedy, beside the baselines on the same tasks
const PAPER: Record<string, Record<string, number>> = {
  bandit10: {
    rl2: 6.7,
    random: 5.0,
    gittins: 6.6,
    thompson: 5.7,
    ucb1: 6.7,
    epsilonGreedy: 6.6,
    greedy: 6.6,
  },
  bandit100: {
    rl2: 78.7,
    random: 49.9,
    gittins: 78.3,
    thompson: 74.7,
    ucb1: 78.0,
    epsilonGreedy: 75.4,
    greedy: 74.8,
  },
  mdp10: {
    rl2: 156.2,
    random: 100.1,
    psrl: 138.1,
    beb: 150.2,
    epsilonGreedy: 132.8,
    greedy: 134.8,
  },
};
const paper = PAPER[setting];
const rows: [string, Summary, number | undefined][] = [];
const testKey = mg.random.key(4);
const rl2Row = (greedy: boolean) =>
  mg.jit((p: unknown, k: Tensor) => learner.trialReturns(p as never, testSet, k, { greedy }));
rows.push([
  `RL² (GRU ${learner.config.hidden}, sampled actions)`,
  summarize(await rl2Row(false)(best.params, testKey).toFloat64()),
  paper.rl2,
]);
rows.push([
  "RL² (same, greedy actions)",
  summarize(await rl2Row(true)(best.params, testKey).toFloat64()),
  undefined,
]);
const random = mg.jit((k: Tensor) =>
  mg.sum(
    rollout(learner.trial, randomPolicy(env.actionSpace), null, testSet, k, {
      steps: learner.trialSteps,
    }).reward,
    0,
  )
);
rows.push(["random", summarize(await random(testKey).toFloat64()), paper.random]);
if (isMdp) {
  const psrl = mg.jit((k: Tensor) => psrlReturns(env as never, testSet as never, k, { episodes }));
  rows.push([
    "PSRL (Dirichlet(1) transitions, N(1, 1) mean rewards: the task prior)",
    summarize(await psrl(testKey).toFloat64()),
    paper.psrl,
  ]);
} else {
  const rules: [BanditRule, string, string][] = [
    ["greedy", "greedy (Beta(1, 1) posterior mean)", "greedy"],
    ["epsilonGreedy", "ε-greedy (ε = 0.1, on the posterior mean)", "epsilonGreedy"],
    ["ucb1", "UCB1 (textbook: each arm once, c = 1)", "ucb1"],
    ["bayesUcb", "UCB on the Beta(1, 1) posterior mean, c = 0.2", "ucb1"],
    ["thompson", "Thompson sampling (Beta(1, 1) prior)", "thompson"],
  ];
  for (const [rule, label, col] of rules) {
    const run = mg.jit((k: Tensor) =>
      banditBaselineReturns(env as never, banditRule(rule, 5), testSet as never, k)
    );
    rows.push([label, summarize(await run(testKey).toFloat64()), paper[col]]);
  }
}
console.log(
  `\nSelected the parameters after ${best.updates} updates (${
    best.updates * stepsPerUpdate
  } env steps; ` +
    `validation ${best.val.toFixed(3)}); trained ${trainSeconds.toFixed(0)} s.`,
);
console.log(
  `\n| ${setting}: policy | total reward per trial (${testTasks} test tasks, 95% CI) | paper |`,
);
console.log("| --- | --- | --- |");
for (const [name, s, p] of rows) {
  console.log(`| ${name} | ${s.mean.toFixed(2)} ± ${s.ci95.toFixed(2)} | ${p ?? ""} |`);
}
if (paper.gittins) console.log(`| Gittins index (paper only) | | ${paper.gittins} |`);
if (paper.beb) console.log(`| BEB (paper only) | | ${paper.beb} |`);
