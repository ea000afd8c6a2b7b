/**
 * What `cli.ts train` runs: for each algorithm and task, the learner, its initial state, one
 * step, the held-out score logged during training, and the held-out evaluation of `cli.ts eval`
 * (a figure after each number of inner steps, beside a random initialisation).
 *
 * Runs are reproducible from their config alone: step i draws its tasks from
 * `foldIn(key(seed + 1), i)` (PPO and RL² keep their keys in their states), held-out tasks come
 * from fixed keys, and Omniglot's characters are split 80/20 by a fixed key — so a resumed run
 * computes what an uninterrupted one would, and every run is scored on the same tasks.
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import {
  bernoulliBandit,
  cartPole,
  type Environment,
  loadOmniglot,
  pendulum,
  pointNavigation,
  type Policy,
  rollout,
  sampleEpisodes,
  sampleSinusoid,
  splitClasses,
} from "../envs/mod.ts";
import {
  type EvalResult,
  mergeSummaries,
  type MetaMetrics,
  summarize,
  type Summary,
  type TaskBatch,
} from "./common.ts";
import { anil, type LearnedLr, maml, metaSgd } from "./maml.ts";
import { matchingNet, protoNet } from "./metric.ts";
import { reptile } from "./reptile.ts";
import { a2c, ppo, type PpoState } from "./rl/ppo.ts";
import { rl2, type Rl2State } from "./rl/rl2.ts";
import { trpo, type TrpoState } from "./rl/trpo.ts";
import { sac, type SacState } from "./rl/sac.ts";
import { mamlRl, type MamlRlState } from "./rl/maml_rl.ts";
import { pearl, type PearlMetrics, type PearlState } from "./rl/pearl.ts";
import type { RunStep } from "./run_dir.ts";

/** Everything `train` was asked for; a run's config.json holds it, so `--resume` needs nothing else. */
export interface TrainConfig {
  /** One of `TRAIN_TASKS`' keys. */
  algorithm: string;
  /** One of the algorithm's tasks. */
  task: string;
  /**
   * Steps of the run: meta-steps (meta-learners, MAML-RL), episodes (metric learners),
   * environment steps (PPO, A2C, SAC), updates (TRPO, RL²) or iterations (PEARL).
   */
  steps: number;
  /** Tasks (episodes) per meta-step. */
  metaBatch: number;
  /** Support examples per task (per class for classification); MAML-RL's trajectories per task. */
  shots: number;
  /** Query examples per task (per class for classification). */
  queries: number;
  /** Classes per held-out episode, and per training episode of the MAML family. */
  ways: number;
  /** Classes per training episode of Prototypical Networks (more than tested, as Snell et al.). */
  trainWays: number;
  /** Inner steps while meta-training. */
  innerSteps: number;
  /** Inner steps when scoring on held-out tasks. */
  testSteps: number;
  /** Inner learning rate. */
  innerLr: number;
  /** First-order MAML (no gradients through the inner steps). */
  firstOrder: boolean;
  /** Outer learning rate (Adam's; Reptile's ε, annealed linearly to 0; the RL learners' own). */
  lr: number;
  /** Seed of the initialisation and of the training tasks. */
  seed: number;
  /** Steps between metrics lines. */
  logEvery: number;
  /** Steps between checkpoints. */
  checkpointEvery: number;
  /** Steps between held-out scores. */
  evalEvery: number;
  /** Held-out tasks (episodes) per score. */
  evalTasks: number;
  /** Omniglot's folder or archive (`loadOmniglot`). */
  data?: string;
  /** MAML and ANIL: which inner rates are meta-learned (`LEARNED_LRS`; default "none"). */
  learnedLr?: LearnedLr;
  /** The outer optimiser of the meta- and metric learners (default Adam; Reptile: SGD). */
  optimizer?: "adam" | "sgd";
  /** Its learning-rate schedule over the run (default constant; Reptile: linear decay to 0). */
  schedule?: "constant" | "linear" | "cosine";
}

/** The outer optimisers `train` offers. */
export const TRAIN_OPTIMIZERS: readonly string[] = ["adam", "sgd"];
/** The schedules `train` offers (over the run's `steps`). */
export const TRAIN_SCHEDULES: readonly string[] = ["constant", "linear", "cosine"];

/**
 * The outer optimiser `cfg` names: Adam or SGD at `lr`, held constant or decayed to 0 over the
 * run (linearly, or along a cosine) — the schedule reads the optimiser's step count, which the
 * checkpoint keeps, so a resumed run continues it.
 */
function outerOptimizer(cfg: TrainConfig): mg.optim.GradientTransformation<any> {
  const schedule = cfg.schedule ?? (cfg.algorithm === "reptile" ? "linear" : "constant");
  const rate = schedule === "linear"
    ? mg.optim.schedules.linearDecay(cfg.lr, cfg.steps)
    : schedule === "cosine"
    ? mg.optim.schedules.cosineDecay(cfg.lr, cfg.steps)
    : cfg.lr;
  const optimizer = cfg.optimizer ?? (cfg.algorithm === "reptile" ? "sgd" : "adam");
  return optimizer === "sgd" ? mg.optim.sgd(rate) : mg.optim.adam(rate);
}

/** The tasks each algorithm trains on (the first is the default). */
export const TRAIN_TASKS: Readonly<Record<string, readonly string[]>> = {
  maml: ["sinusoid", "omniglot"],
  metasgd: ["sinusoid", "omniglot"],
  anil: ["sinusoid", "omniglot"],
  reptile: ["sinusoid"],
  protonet: ["omniglot"],
  matching: ["omniglot"],
  ppo: ["cartpole"],
  a2c: ["cartpole"],
  trpo: ["navigation", "cartpole"],
  sac: ["pendulum"],
  rl2: ["bandit"],
  mamlrl: ["navigation", "point-robot", "point-robot-sparse"],
  pearl: ["point-robot", "point-robot-sparse"],
};

/** The defaults `trainDefaults` fills in. */
export type TrainDefaults = Pick<
  TrainConfig,
  "metaBatch" | "shots" | "queries" | "innerSteps" | "innerLr" | "testSteps" | "lr"
>;

/**
 * Each task's defaults for the options it shares with others: the papers' settings (Finn et
 * al. for sinusoid, Omniglot and 2D navigation, Snell et al.'s 20-way training for Prototypical
 * Networks, PEARL's meta-batch of 16 tasks).
 */
export const TASK_DEFAULTS: Readonly<Record<string, TrainDefaults>> = {
  sinusoid: {
    metaBatch: 25,
    shots: 10,
    queries: 10,
    innerSteps: 1,
    innerLr: 0.01,
    testSteps: 1,
    lr: 1e-3,
  },
  omniglot: {
    metaBatch: 8,
    shots: 1,
    queries: 5,
    innerSteps: 1,
    innerLr: 0.4,
    testSteps: 10,
    lr: 1e-3,
  },
  navigation: {
    metaBatch: 20,
    shots: 20,
    queries: 1,
    innerSteps: 1,
    innerLr: 0.1,
    testSteps: 1,
    lr: 1e-3,
  },
  cartpole: {
    metaBatch: 1,
    shots: 1,
    queries: 1,
    innerSteps: 1,
    innerLr: 0,
    testSteps: 0,
    lr: 2.5e-4,
  },
  pendulum: {
    metaBatch: 1,
    shots: 1,
    queries: 1,
    innerSteps: 1,
    innerLr: 0,
    testSteps: 0,
    lr: 3e-4,
  },
  bandit: { metaBatch: 1, shots: 1, queries: 1, innerSteps: 1, innerLr: 0, testSteps: 0, lr: 1e-3 },
  "point-robot": {
    metaBatch: 16,
    shots: 1,
    queries: 1,
    innerSteps: 1,
    innerLr: 0,
    testSteps: 2,
    lr: 3e-4,
  },
  "point-robot-sparse": {
    metaBatch: 16,
    shots: 1,
    queries: 1,
    innerSteps: 1,
    innerLr: 0,
    testSteps: 2,
    lr: 3e-4,
  },
};

/**
 * The defaults of `algorithm` on `task`: the task's, with the algorithm's own where they differ —
 * one episode per step for the metric learners (Prototypical Networks' 20-way episodes are already
 * as big as 8 five-way ones), Reptile's 5 inner steps of 0.02 and outer ε 0.1 (Nichol et al.),
 * A2C's learning rate 7e-4 (Stable-Baselines3).
 *
 * @example
 * ```ts
 * import { trainDefaults } from "@metagrad/metagrad/algorithms";
 * trainDefaults("protonet", "omniglot").metaBatch; // 1
 * ```
 */
export function trainDefaults(algorithm: string, task: string): TrainDefaults {
  const d = { ...(TASK_DEFAULTS[task] ?? TASK_DEFAULTS.sinusoid) };
  if (algorithm === "protonet" || algorithm === "matching") d.metaBatch = 1;
  if (algorithm === "reptile") Object.assign(d, { innerSteps: 5, innerLr: 0.02, lr: 0.1 });
  if (algorithm === "a2c") d.lr = 7e-4;
  if (algorithm === "mamlrl") Object.assign(d, TASK_DEFAULTS.navigation); // Finn's settings
  if (task === "sinusoid") d.testSteps = d.innerSteps;
  return d;
}

/** A held-out figure after each number of inner steps, for each initialisation scored. */
export interface AdaptationCurves {
  /** What is measured ("query MSE", "accuracy"). */
  metric: string;
  /** The numbers of inner steps (one, 0, for learners without an inner loop). */
  inner: number[];
  /** One row per initialisation: the figure (mean ± 95% CI) after each number of steps. */
  rows: { name: string; values: Summary[] }[];
}

/** How `train` runs one algorithm on one task. */
export interface TrainJob {
  /** The initial state (from the seed). */
  init: unknown;
  /** The run's length in steps. */
  steps: number;
  /** One step (`runSteps`). */
  step: RunStep<unknown>;
  /** The held-out score logged every `evalEvery` steps and in summary.json. */
  evaluate: (state: unknown, step: number) => Promise<Record<string, number>>;
  /**
   * `eval`'s figures: each state's held-out score after each number of `inner` steps (absent
   * for the RL learners, whose `evaluate` is their score).
   */
  curves?: (
    states: { name: string; state: unknown }[],
    tasks: number,
    inner: number[],
  ) => Promise<AdaptationCurves>;
}

/**
 * The job for `cfg`: its learner, data and scores.
 *
 * @example
 * ```ts
 * import { trainJob } from "@metagrad/metagrad/algorithms";
 * const job = await trainJob({
 *   algorithm: "maml", task: "sinusoid", steps: 10, metaBatch: 4, shots: 10, queries: 10,
 *   ways: 5, trainWays: 5, innerSteps: 1, testSteps: 1, innerLr: 0.01, firstOrder: false,
 *   lr: 1e-3, seed: 0, logEvery: 5, checkpointEvery: 10, evalEvery: 10, evalTasks: 20,
 * });
 * const [next] = job.step(job.init, 1);
 * ```
 */
export async function trainJob(config: TrainConfig): Promise<TrainJob> {
  const cfg = withDefaults(config);
  const tasks = TRAIN_TASKS[cfg.algorithm];
  if (!tasks?.includes(cfg.task)) {
    throw new Error(
      `train: ${cfg.algorithm} on ${cfg.task} is not supported (${
        Object.entries(TRAIN_TASKS).map(([a, t]) => `${a}: ${t.join(", ")}`).join("; ")
      })`,
    );
  }
  switch (cfg.algorithm) {
    case "ppo":
    case "a2c":
      return onPolicyJob(cfg);
    case "trpo":
      return trpoJob(cfg);
    case "sac":
      return sacJob(cfg);
    case "rl2":
      return rl2Job(cfg);
    case "mamlrl":
      return mamlRlJob(cfg);
    case "pearl":
      return pearlJob(cfg);
  }
  if (cfg.task === "sinusoid") return sinusoidJob(cfg);
  return await omniglotJob(cfg);
}

/**
 * `cfg` with the fields a config.json from an older version lacks filled in: the task's
 * defaults, 5-way episodes (20-way for Prototypical Networks' training), and as many inner steps
 * at test as in training for sinusoid.
 */
export function withDefaults(cfg: TrainConfig): TrainConfig {
  const defaults: Partial<TrainConfig> = {
    ...trainDefaults(cfg.algorithm, cfg.task),
    ways: 5,
    trainWays: 20,
  };
  const filled = { ...defaults, ...cfg };
  if (cfg.testSteps === undefined && cfg.task === "sinusoid") filled.testSteps = filled.innerSteps;
  return filled;
}

/** The gradient-based meta-learner (`maml`, `metasgd`, `anil`, `reptile`) for a model and loss. */
function mamlVariant(cfg: TrainConfig, model: mg.nn.Module, loss: "mse" | "crossEntropy") {
  if (cfg.algorithm === "reptile") {
    return reptile({
      model,
      loss,
      innerLr: cfg.innerLr,
      innerSteps: cfg.innerSteps,
      metaOptimizer: outerOptimizer(cfg),
    });
  }
  const common = {
    model,
    loss,
    innerLr: cfg.innerLr,
    innerSteps: cfg.innerSteps,
    firstOrder: cfg.firstOrder,
    metaOptimizer: outerOptimizer(cfg),
  };
  if (cfg.algorithm === "metasgd") return metaSgd(common);
  const learnedLr = cfg.learnedLr ?? "none";
  return cfg.algorithm === "anil" ? anil({ ...common, learnedLr }) : maml({ ...common, learnedLr });
}

/** Step i's batch, drawn from the run's task key folded with i (so a resumed run draws the same). */
function stepKey(cfg: TrainConfig, i: number): Tensor {
  return mg.random.foldIn(mg.random.key(cfg.seed + 1), i);
}

/** A meta-learner's step: a batch drawn for step i, one meta-step, the batch freed. */
function metaStepOf<S>(
  metaStep: (s: S, b: TaskBatch) => [S, MetaMetrics],
  sample: (key: Tensor) => TaskBatch,
  cfg: TrainConfig,
): RunStep<unknown> {
  return (state, i) => {
    const batch = mg.tidy(() => sample(stepKey(cfg, i)));
    const [next, m] = metaStep(state as S, batch);
    for (const t of Object.values(batch)) (t as Tensor).dispose();
    return [next, async () => {
      const out: Record<string, number> = { loss: await m.loss.item() };
      if (m.accuracy) out.accuracy = await m.accuracy.item();
      return out;
    }];
  };
}

/** MAML, Meta-SGD or ANIL on sinusoid regression (Finn et al.'s 1-40-40-1 MLP). */
function sinusoidJob(cfg: TrainConfig): TrainJob {
  const learner = mamlVariant(cfg, mg.nn.sinusoidMlp(), "mse");
  const heldOut = (tasks: number, key: number) =>
    sampleSinusoid(mg.random.key(key), {
      tasks,
      shots: cfg.shots,
      queries: cfg.queries,
      stratified: true,
    });
  const during = heldOut(cfg.evalTasks, 2024);
  return {
    init: learner.init(mg.random.key(cfg.seed)),
    steps: cfg.steps,
    step: metaStepOf(
      learner.metaStep as (s: unknown, b: TaskBatch) => [unknown, MetaMetrics],
      (k) => sampleSinusoid(k, { tasks: cfg.metaBatch, shots: cfg.shots, queries: cfg.queries }),
      cfg,
    ),
    async evaluate(state) {
      const e = (await learner.evaluate(state as never, during, cfg.testSteps)).loss;
      return { evalLoss: e.mean, evalCi95: e.ci95 };
    },
    async curves(states, tasks, inner) {
      const test = heldOut(tasks, 7_000_007);
      const rows = [];
      for (const { name, state } of states) {
        const values = [];
        for (const k of inner) {
          values.push((await learner.evaluate(state as never, test, k)).loss);
        }
        rows.push({ name, values });
      }
      return { metric: "query MSE", inner, rows };
    },
  };
}

/**
 * Omniglot N-way K-shot: the characters split 80/20 (fixed key) into training and held-out
 * ones, training episodes with 90° rotations as extra classes, a Conv-4 network; scored by
 * accuracy on episodes of the held-out characters.
 */
async function omniglotJob(cfg: TrainConfig): Promise<TrainJob> {
  const dir = cfg.data ?? Deno.env.get("OMNIGLOT_DIR");
  if (!dir) {
    throw new Error(
      "train: Omniglot needs its data: pass --data DIR (the official zips or their folders) or set OMNIGLOT_DIR",
    );
  }
  const { images } = await loadOmniglot(dir);
  const { train, test } = splitClasses(mg.random.key(2024), images, 0.8);
  images.dispose();
  const imageSize = train.shape[3];
  const metric = cfg.algorithm === "protonet" || cfg.algorithm === "matching";
  const trainWays = metric ? cfg.trainWays : cfg.ways;
  for (
    const [name, ways, set] of [["--ways", cfg.ways, test], [
      "training ways",
      trainWays,
      train,
    ]] as const
  ) {
    if (ways > set.shape[0]) {
      throw new Error(
        `train: ${name} ${ways} needs that many characters, the ${
          set === test ? "held-out" : "training"
        } split of ${dir} has ${set.shape[0]}`,
      );
    }
  }
  const sample = (key: Tensor) =>
    sampleEpisodes(key, train, {
      tasks: cfg.metaBatch,
      ways: trainWays,
      shots: cfg.shots,
      queries: cfg.queries,
      rotations: true,
    }) as unknown as TaskBatch;
  /** Accuracy over `tasks` held-out episodes (in chunks of 20: activations stay small). */
  const heldOutAccuracy = async (
    score: (batch: TaskBatch) => Promise<EvalResult>,
    tasks: number,
  ) => {
    const parts: Summary[] = [];
    for (let start = 0; start < tasks; start += 20) {
      const batch = sampleEpisodes(mg.random.foldIn(mg.random.key(99), start), test, {
        tasks: Math.min(20, tasks - start),
        ways: cfg.ways,
        shots: cfg.shots,
        queries: cfg.queries,
      }) as unknown as TaskBatch;
      parts.push((await score(batch)).accuracy!);
      for (const t of Object.values(batch)) (t as Tensor).dispose();
    }
    return mergeSummaries(parts);
  };
  let step: RunStep<unknown>, init: unknown;
  let scoreAfter: (state: unknown, inner: number) => (b: TaskBatch) => Promise<EvalResult>;
  let inners: (inner: number[]) => number[];
  if (metric) {
    const embedding = mg.nn.conv4({ inChannels: 1, imageSize });
    const make = cfg.algorithm === "protonet" ? protoNet : matchingNet;
    const learner = make({ embedding, ways: trainWays, optimizer: outerOptimizer(cfg) });
    const tester = make({ embedding, ways: cfg.ways });
    init = learner.init(mg.random.key(cfg.seed));
    step = metaStepOf(learner.metaStep, sample, cfg);
    scoreAfter = (state) => (b) => tester.evaluate(state as never, b);
    inners = () => [0]; // no inner loop: the support set is what the classifier compares with
  } else {
    const model = mg.nn.conv4({ inChannels: 1, imageSize, ways: cfg.ways });
    const learner = mamlVariant(cfg, model, "crossEntropy");
    init = learner.init(mg.random.key(cfg.seed));
    step = metaStepOf(
      learner.metaStep as (s: unknown, b: TaskBatch) => [unknown, MetaMetrics],
      sample,
      cfg,
    );
    scoreAfter = (state, k) => (b) => learner.evaluate(state as never, b, k);
    inners = (inner) => inner;
  }
  return {
    init,
    steps: cfg.steps,
    step,
    async evaluate(state) {
      const a = await heldOutAccuracy(scoreAfter(state, cfg.testSteps), cfg.evalTasks);
      return { heldOutAccuracy: a.mean, heldOutCi95: a.ci95 };
    },
    async curves(states, tasks, inner) {
      const rows = [];
      for (const { name, state } of states) {
        const values = [];
        for (const k of inners(inner)) {
          values.push(await heldOutAccuracy(scoreAfter(state, k), tasks));
        }
        rows.push({ name, values });
      }
      return { metric: `${cfg.ways}-way ${cfg.shots}-shot accuracy`, inner: inners(inner), rows };
    },
  };
}

/**
 * RL² on Bernoulli bandits (k = 5 arms, n = 10 pulls per trial, the paper's setting; GRU 64,
 * Adam `lr`); a step is one update. Scored by the mean trial reward on 500 held-out bandits.
 */
function rl2Job(cfg: TrainConfig): TrainJob {
  const env = bernoulliBandit({ arms: 5, horizon: 10 });
  const learner = rl2({ env, hidden: 64, lr: cfg.lr, epochs: 4, minibatches: 2 });
  const update = mg.jit(learner.update, { donateArgnums: [0], name: "rl2 update" });
  const heldOut = env.sampleTasks(mg.random.key(7_000_007), 500);
  const score = mg.jit(learner.trialReturns);
  return {
    init: learner.init(mg.random.key(cfg.seed)),
    steps: cfg.steps,
    step(state) {
      const [next, m] = update(state as Rl2State) as [Rl2State, { trialReturn: Tensor }];
      return [next, async () => ({ trialReturn: await m.trialReturn.item() })];
    },
    async evaluate(state) {
      const totals = score((state as Rl2State).params, heldOut, mg.random.key(8)) as Tensor;
      const s = summarize(await totals.toFloat64());
      return { heldOutReturn: s.mean, heldOutCi95: s.ci95 };
    },
  };
}

/** Mean of a tensor's values on the host. */
async function hostMean(t: Tensor): Promise<number> {
  const v = await t.toFloat64();
  return v.reduce((a, b) => a + b, 0) / v.length;
}

/**
 * The environment a task name stands for: CartPole-v1, Pendulum-v1, MAML's 2D navigation
 * (goals in [−0.5, 0.5]², 100 steps), PEARL's point robot (semicircle goals, 20 steps).
 */
function environment(task: string): Environment<any, any> {
  switch (task) {
    case "cartpole":
      return cartPole();
    case "pendulum":
      return pendulum();
    case "navigation":
      return pointNavigation();
    case "point-robot":
      return pointNavigation({ goals: "semicircle", reward: "dense" });
    case "point-robot-sparse":
      return pointNavigation({ goals: "semicircle", reward: "sparse" });
  }
  throw new Error(`train: no environment named ${task}`);
}

/**
 * The mean return of `episodes` episodes per task of the deterministic policy `act`, on tasks
 * drawn from a fixed key (one task: TRPO's own when given), with its 95% CI over episodes.
 */
function greedyScore(
  env: Environment<any, any>,
  policy: Policy<any>,
  tasks: unknown,
  episodes: number,
) {
  const totals = mg.jit((params: unknown, key: Tensor) =>
    mg.sum(
      rollout(env, policy, params, tasks, key, {
        steps: env.maxSteps,
        envsPerTask: episodes,
      }).reward,
      0,
    )
  );
  return async (params: unknown) => {
    const s = summarize(await (totals(params, mg.random.key(9_000_009)) as Tensor).toFloat64());
    return { evalReturn: s.mean, evalCi95: s.ci95 };
  };
}

/**
 * PPO (purejaxrl's settings) or A2C (Stable-Baselines3's) on CartPole-v1; `steps` environment
 * steps in all, a step of the run is one update. Scored by the mean return of the environments'
 * last finished episodes.
 */
function onPolicyJob(cfg: TrainConfig): TrainJob {
  const make = cfg.algorithm === "a2c" ? a2c : ppo;
  const learner = make({ env: environment(cfg.task), totalSteps: cfg.steps, lr: cfg.lr });
  const update = mg.jit(learner.update, { donateArgnums: [0], name: `${cfg.algorithm} update` });
  const perUpdate = learner.config.numEnvs * learner.config.numSteps;
  return {
    init: learner.init(mg.random.key(cfg.seed)),
    steps: learner.updates,
    step(state) {
      const [next, m] = update(state as PpoState) as [PpoState, { episodeReturn: Tensor }];
      return [next, async () => ({ episodeReturn: await hostMean(m.episodeReturn) })];
    },
    async evaluate(state, step) {
      return {
        lastEpisodeReturn: await hostMean((state as PpoState).lastReturn),
        envSteps: step * perUpdate,
      };
    },
  };
}

/**
 * TRPO (linear baseline, GAE, conjugate gradient, line search) on one task of the environment
 * drawn from the seed — a navigation goal, or CartPole; a step of the run is one update. Scored
 * by 16 episodes of the mean action.
 */
function trpoJob(cfg: TrainConfig): TrainJob {
  const env = environment(cfg.task);
  const tasks = env.sampleTasks(mg.random.key(cfg.seed + 2), 1);
  const learner = trpo({ env, tasks });
  const update = mg.jit(learner.update, { donateArgnums: [0], name: "trpo update" });
  const score = greedyScore(
    env,
    learner.network.greedyPolicy,
    tasks,
    16,
  );
  return {
    init: learner.init(mg.random.key(cfg.seed)),
    steps: cfg.steps,
    step(state) {
      const [next, m] = update(state as TrpoState) as [TrpoState, { episodeReturn: Tensor }];
      return [next, async () => ({ episodeReturn: await m.episodeReturn.item() })];
    },
    evaluate: (state) => score((state as TrpoState).params),
  };
}

/** Uniformly random steps SAC takes before it learns. */
const SAC_EXPLORE = 1000;
/** Environment steps per step of a SAC run (one jitted call; a gradient step follows each). */
const SAC_CHUNK = 500;

/**
 * SAC on Pendulum-v1: `steps` environment steps in all — step 1 of the run explores 1,000 steps
 * uniformly, each later one takes 500 policy steps with a gradient step after each. Scored by 10
 * episodes of the mean action.
 */
function sacJob(cfg: TrainConfig): TrainJob {
  if (cfg.steps <= SAC_EXPLORE) {
    throw new Error(
      `train: sac explores ${SAC_EXPLORE} steps before it learns; pass --steps above that`,
    );
  }
  const env = environment(cfg.task);
  // the buffer's size (SAC's default, 100k) does not depend on --steps: a run can be extended
  const learner = sac({ env, lr: cfg.lr });
  const explore = mg.jit(learner.explore, { staticArgnums: [1], donateArgnums: [0] });
  const train = mg.jit(learner.train, { staticArgnums: [1], donateArgnums: [0] });
  const score = greedyScore(
    env,
    (p, obs) => ({ action: learner.act(p, obs) }),
    env.sampleTasks(mg.random.key(0), 1),
    10,
  );
  const chunks = Math.ceil((cfg.steps - SAC_EXPLORE) / SAC_CHUNK);
  return {
    init: learner.init(mg.random.key(cfg.seed)),
    steps: 1 + chunks,
    step(state, i) {
      if (i === 1) {
        const next = explore(state as SacState, SAC_EXPLORE) as SacState;
        return [next, () => Promise.resolve({ envSteps: SAC_EXPLORE })];
      }
      const done = SAC_EXPLORE + (i - 2) * SAC_CHUNK;
      const n = Math.min(SAC_CHUNK, cfg.steps - done);
      const [next, m] = train(state as SacState, n) as [SacState, { episodeReturn: Tensor }];
      return [next, async () => ({
        episodeReturn: await m.episodeReturn.item(),
        envSteps: done + n,
      })];
    },
    evaluate: (state) => score((state as SacState).params),
  };
}

/**
 * MAML-RL on 2D navigation (Finn et al.) or the point robot (PEARL's semicircle goals):
 * `metaBatch` tasks × `shots` trajectories per meta-step, `innerSteps` policy-gradient steps of
 * `innerLr` against the linear baseline, a TRPO outer step (second order unless `firstOrder`);
 * 64×64 policy. A step of the run is a meta-step. Scored by the return on 40 held-out goals
 * after `testSteps` adaptation steps.
 */
function mamlRlJob(cfg: TrainConfig): TrainJob {
  const env = environment(cfg.task);
  const learner = mamlRl({
    env,
    metaBatch: cfg.metaBatch,
    trajectories: cfg.shots,
    innerSteps: cfg.innerSteps,
    innerLr: cfg.innerLr,
    firstOrder: cfg.firstOrder,
    hidden: [64, 64],
  });
  const update = mg.jit(learner.update, { donateArgnums: [0], name: "mamlRl update" });
  const returns = heldOutReturns(env, learner.adaptationReturns, 4_000_004);
  return {
    init: learner.init(mg.random.key(cfg.seed)),
    steps: cfg.steps,
    step(state) {
      const [next, m] = update(state as MamlRlState);
      const metrics = m as unknown as Record<string, Tensor>;
      return [next, async () => {
        const out: Record<string, number> = {};
        for (const [k, v] of Object.entries(metrics)) {
          if (v instanceof mg.Tensor && v.size === 1) out[k] = await v.item();
        }
        return out;
      }];
    },
    async evaluate(state) {
      const r = returns(state, 40, cfg.testSteps);
      const rows = await r.toFloat64(), n = rows.length / (cfg.testSteps + 1);
      const before = summarize(rows.subarray(0, n)), after = summarize(rows.subarray(-n));
      return {
        returnBefore: before.mean,
        returnAfter: after.mean,
        returnAfterCi95: after.ci95,
      };
    },
    curves: (states, tasks, inner) =>
      returnCurves(states, inner, "return", (s, most) => returns(s, tasks, most)),
  };
}

/**
 * A meta-RL learner's returns on `n` held-out tasks drawn from `seed` (rollouts from `seed` + 1):
 * `adaptationReturns` of the state's parameters, [count, n].
 */
function heldOutReturns(
  env: Environment<any, any>,
  adaptationReturns: (params: any, tasks: unknown, key: Tensor, count: number) => Tensor,
  seed: number,
): (state: unknown, n: number, count: number) => Tensor {
  return (state, n, count) =>
    adaptationReturns(
      (state as { params: unknown }).params,
      env.sampleTasks(mg.random.key(seed), n),
      mg.random.key(seed + 1),
      count,
    );
}

/**
 * `eval`'s curves of a meta-RL learner: `returns(state, most)` gives each held-out task's return
 * after 0, 1, …, `most` adaptation steps (or episodes of context), [most + 1, tasks]; each row
 * summarises the numbers of steps in `inner`.
 */
async function returnCurves(
  states: { name: string; state: unknown }[],
  inner: number[],
  metric: string,
  returns: (state: unknown, most: number) => Tensor,
): Promise<AdaptationCurves> {
  const most = Math.max(...inner);
  const rows = [];
  for (const { name, state } of states) {
    const all = await returns(state, most).toFloat64();
    const tasks = all.length / (most + 1);
    rows.push({
      name,
      values: inner.map((k) => summarize(all.subarray(k * tasks, (k + 1) * tasks))),
    });
  }
  return { metric, inner, rows };
}

/**
 * PEARL's settings for the point robot here (`bench/pearl_point_robot.ts` reports what they
 * reach): Rakelly et al.'s learner with networks 64 wide and RL batches of 64 transitions per
 * task (their 300 and 256 cost ~10× the time per gradient step on a software adapter), context
 * batches of 64 (theirs), a reward scale of 10 and a discount of 0.9 (their point robot uses 100
 * and 0.99, their sparse one 100 and 0.9: with a learned temperature, a scale of 100 made the
 * critics' targets ~100× larger than Adam's steps reach in an hour here), and 500 gradient
 * steps per iteration of one episode per training task with z from the prior and one from the
 * posterior.
 */
export const PEARL_POINT_ROBOT = {
  hidden: [64, 64],
  encoderHidden: [64, 64],
  batchSize: 64,
  contextSize: 64,
  rewardScale: 10,
  gamma: 0.9,
  gradSteps: 500,
} as const;

/**
 * PEARL on the point robot (semicircle goals, dense or sparse reward): a step of the run is one
 * iteration — an episode per training task with z from the prior (which becomes the task's
 * context buffer) and one from the posterior (for the actor and critics only), then gradient
 * steps on meta-batches of `metaBatch` tasks (`PEARL_POINT_ROBOT`; step 1 first collects two
 * random episodes per task). Scored by the return on 20 held-out goals in the first episode (z
 * from the prior) and after `testSteps` episodes of context.
 */
function pearlJob(cfg: TrainConfig): TrainJob {
  const env = environment(cfg.task);
  const { gradSteps, ...settings } = PEARL_POINT_ROBOT;
  const learner = pearl({
    env,
    ...settings,
    metaBatch: cfg.metaBatch,
    lr: cfg.lr,
    // (sparse goals: the critics learn from the dense reward, as Rakelly et al.'s do)
    useTrainingReward: cfg.task === "point-robot-sparse",
  });
  const collect = mg.jit(learner.collect, { staticArgnums: [1, 2, 3], donateArgnums: [0] });
  const train = mg.jit(learner.train, { staticArgnums: [1], donateArgnums: [0] });
  const T = env.maxSteps;
  const returns = heldOutReturns(env, learner.adaptationReturns, 5_000_005);
  return {
    init: learner.init(mg.random.key(cfg.seed)),
    steps: cfg.steps,
    step(state, i) {
      let s = state as PearlState;
      if (i === 1) s = collect(s, 2 * T, "random") as PearlState;
      s = collect(
        collect(s, T, "prior", "replace") as PearlState,
        T,
        "posterior",
        "none",
      ) as PearlState;
      const [next, m] = train(s, gradSteps) as [PearlState, PearlMetrics];
      return [next, async () => ({
        criticLoss: await m.criticLoss.item(),
        kl: await m.kl.item(),
      })];
    },
    async evaluate(state) {
      const episodes = cfg.testSteps + 1;
      const r = await returns(state, 20, episodes).toFloat64();
      const first = summarize(r.subarray(0, 20)), last = summarize(r.subarray(-20));
      return {
        returnPrior: first.mean,
        returnPosterior: last.mean,
        returnPosteriorCi95: last.ci95,
      };
    },
    // x: episodes of context collected before the one scored
    curves: (states, tasks, inner) =>
      returnCurves(
        states,
        inner,
        "return (episodes of context)",
        (s, most) => returns(s, tasks, most + 1),
      ),
  };
}
