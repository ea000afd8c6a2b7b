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
import { bernoulliBandit, cartPole, sampleSinusoid } from "../envs/mod.ts";
import { loadOmniglot, sampleEpisodes, splitClasses } from "../envs/mod.ts";
import {
  type EvalResult,
  mergeSummaries,
  type MetaMetrics,
  summarize,
  type Summary,
  type TaskBatch,
} from "./common.ts";
import { anil, maml, type MamlState, metaSgd } from "./maml.ts";
import { protoNet } from "./metric.ts";
import { ppo, type PpoState } from "./rl/ppo.ts";
import { rl2, type Rl2State } from "./rl/rl2.ts";
import type { RunStep } from "./run_dir.ts";

/** Everything `train` was asked for; a run's config.json holds it, so `--resume` needs nothing else. */
export interface TrainConfig {
  /** One of `TRAIN_TASKS`' keys. */
  algorithm: string;
  /** One of the algorithm's tasks. */
  task: string;
  /** Steps of the run (meta-steps; for PPO, environment steps; for RL², updates). */
  steps: number;
  /** Tasks (episodes) per meta-step. */
  metaBatch: number;
  /** Support examples per task (per class for classification). */
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
  /** Outer (Adam) learning rate. */
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
}

/** The tasks each algorithm trains on (the first is the default). */
export const TRAIN_TASKS: Readonly<Record<string, readonly string[]>> = {
  maml: ["sinusoid", "omniglot"],
  metasgd: ["sinusoid", "omniglot"],
  anil: ["sinusoid", "omniglot"],
  protonet: ["omniglot"],
  ppo: ["cartpole"],
  rl2: ["bandit"],
};

/**
 * Each task's defaults for the options it shares with others: the papers' settings (Finn et
 * al. for sinusoid and Omniglot MAML, Snell et al.'s 20-way training for Prototypical Networks).
 */
export const TASK_DEFAULTS: Readonly<
  Record<string, Pick<TrainConfig, "metaBatch" | "shots" | "queries" | "innerLr" | "testSteps">>
> = {
  sinusoid: { metaBatch: 25, shots: 10, queries: 10, innerLr: 0.01, testSteps: 1 },
  omniglot: { metaBatch: 8, shots: 1, queries: 5, innerLr: 0.4, testSteps: 10 },
  cartpole: { metaBatch: 1, shots: 1, queries: 1, innerLr: 0, testSteps: 0 },
  bandit: { metaBatch: 1, shots: 1, queries: 1, innerLr: 0, testSteps: 0 },
};

/**
 * The defaults of `algorithm` on `task`: the task's, with one episode per step for Prototypical
 * Networks (its 20-way episodes are already as big as 8 five-way ones).
 *
 * @example
 * ```ts
 * import { trainDefaults } from "@metagrad/metagrad/algorithms";
 * trainDefaults("protonet", "omniglot").metaBatch; // 1
 * ```
 */
export function trainDefaults(
  algorithm: string,
  task: string,
): Pick<TrainConfig, "metaBatch" | "shots" | "queries" | "innerLr" | "testSteps"> {
  const d = { ...(TASK_DEFAULTS[task] ?? TASK_DEFAULTS.sinusoid) };
  if (algorithm === "protonet") d.metaBatch = 1;
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
  if (cfg.algorithm === "ppo") return ppoJob(cfg);
  if (cfg.algorithm === "rl2") return rl2Job(cfg);
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
  if (cfg.testSteps === undefined && cfg.task === "sinusoid") filled.testSteps = cfg.innerSteps;
  return filled;
}

/** The MAML-family learner (`maml`, `metasgd`, `anil`) for a model and loss. */
function mamlVariant(cfg: TrainConfig, model: mg.nn.Module, loss: "mse" | "crossEntropy") {
  const make = { maml, metasgd: metaSgd, anil }[cfg.algorithm as "maml" | "metasgd" | "anil"];
  return make({
    model,
    loss,
    innerLr: cfg.innerLr,
    innerSteps: cfg.innerSteps,
    firstOrder: cfg.firstOrder,
    metaOptimizer: mg.optim.adam(cfg.lr),
  });
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
      learner.metaStep,
      (k) => sampleSinusoid(k, { tasks: cfg.metaBatch, shots: cfg.shots, queries: cfg.queries }),
      cfg,
    ),
    async evaluate(state) {
      const e = (await learner.evaluate(state as MamlState, during, cfg.testSteps)).loss;
      return { evalLoss: e.mean, evalCi95: e.ci95 };
    },
    async curves(states, tasks, inner) {
      const test = heldOut(tasks, 7_000_007);
      const rows = [];
      for (const { name, state } of states) {
        const values = [];
        for (const k of inner) {
          values.push((await learner.evaluate(state as MamlState, test, k)).loss);
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
  const protonet = cfg.algorithm === "protonet";
  const trainWays = protonet ? cfg.trainWays : cfg.ways;
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
  if (protonet) {
    const embedding = mg.nn.conv4({ inChannels: 1, imageSize });
    const learner = protoNet({ embedding, ways: trainWays, optimizer: mg.optim.adam(cfg.lr) });
    const tester = protoNet({ embedding, ways: cfg.ways });
    init = learner.init(mg.random.key(cfg.seed));
    step = metaStepOf(learner.metaStep, sample, cfg);
    scoreAfter = (state) => (b) => tester.evaluate(state as never, b);
    inners = () => [0]; // no inner loop: the support set only makes prototypes
  } else {
    const model = mg.nn.conv4({ inChannels: 1, imageSize, ways: cfg.ways });
    const learner = mamlVariant(cfg, model, "crossEntropy");
    init = learner.init(mg.random.key(cfg.seed));
    step = metaStepOf(learner.metaStep, sample, cfg);
    scoreAfter = (state, k) => (b) => learner.evaluate(state as MamlState, b, k);
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

/**
 * PPO on CartPole-v1 with purejaxrl's settings (`steps` environment steps in all); a step is
 * one update. Scored by the mean return of the environments' last finished episodes.
 */
function ppoJob(cfg: TrainConfig): TrainJob {
  const learner = ppo({ env: cartPole(), totalSteps: cfg.steps });
  const update = mg.jit(learner.update, { donateArgnums: [0], name: "ppo update" });
  const perUpdate = learner.config.numEnvs * learner.config.numSteps;
  const mean = async (t: Tensor) => {
    const v = await t.toFloat64();
    return v.reduce((a, b) => a + b, 0) / v.length;
  };
  return {
    init: learner.init(mg.random.key(cfg.seed)),
    steps: learner.updates,
    step(state) {
      const [next, m] = update(state as PpoState) as [PpoState, { episodeReturn: Tensor }];
      return [next, async () => ({ episodeReturn: await mean(m.episodeReturn) })];
    },
    async evaluate(state, step) {
      return {
        lastEpisodeReturn: await mean((state as PpoState).lastReturn),
        envSteps: step * perUpdate,
      };
    },
  };
}
