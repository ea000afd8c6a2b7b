/**
 * Metric-based few-shot learners: a shared embedding trained end to end over episodes, and a
 * non-parametric classifier over the support set. Prototypical Networks (Snell et al. 2017)
 * score a query by its squared Euclidean distance to each class's mean embedding; Matching
 * Networks (Vinyals et al. 2016) by cosine attention over the support examples, optionally
 * with full-context embeddings (a bidirectional LSTM over the support set and an attention
 * LSTM for the queries).
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { checkBoolean, checkNumber, checkOptions, oneOf } from "../core/validate.ts";
import { checkTransformation } from "../core/optim/optim.ts";
import type { GradientTransformation } from "../core/optim/optim.ts";
import type { Module } from "../core/nn/layers.ts";
import { type LstmParams, runRecurrent } from "../core/nn/recurrent.ts";
import {
  checkModule,
  type EvalResult,
  evaluateTasks,
  type MetaMetrics,
  overTasks,
  type Task,
  type TaskBatch,
} from "./common.ts";

/** Options shared by the metric learners. */
export interface MetricConfig {
  /** The embedding network: inputs [examples, ...] → features [examples, D] (any rank ≥ 2 is flattened). */
  embedding: Module;
  /** Classes per episode (labels are 0 … ways − 1). */
  ways: number;
  /** The optimiser (default Adam with learning rate 1e-3). */
  optimizer?: GradientTransformation<any>;
  /** Episodes of a batch as one vmapped program (default) or a per-episode loop. */
  taskLoop?: "vmap" | "loop";
  /** Compile the training step with jit (default true). */
  jit?: boolean;
}

/** What a metric learner carries between steps. */
export interface MetricState {
  /** Embedding (and, for FCE, LSTM) parameters. */
  params: unknown;
  /** The embedding's non-trainable state. */
  modelState: unknown;
  /** The optimiser's state. */
  opt: unknown;
}

/** A metric learner: `init`, a jitted `metaStep`, `logits` for a task, `evaluate`. */
export interface MetricLearner {
  /** Fresh parameters and optimiser state. */
  init(key: Tensor): MetricState;
  /**
   * One update on a batch of episodes; returns the new state and the mean query loss and
   * accuracy. The given state's tensors are consumed.
   */
  metaStep(state: MetricState, batch: TaskBatch): [MetricState, MetaMetrics];
  /** Query logits (log-probabilities for Matching Networks) of one episode, [queries, ways]. */
  logits(state: MetricState, task: Task): Tensor;
  /** Query loss and accuracy over test episodes, mean ± 95% CI. */
  evaluate(state: MetricState, batch: TaskBatch): Promise<EvalResult>;
}

/** The parts a metric learner plugs into the shared training loop. */
interface Scorer {
  initExtra(key: Tensor): unknown;
  /** Query log-probabilities or logits [Q, ways] from support/query embeddings. */
  score(extra: unknown, zs: Tensor, ys: Tensor, zq: Tensor): Tensor;
}

const METRIC_OPTIONS = ["embedding", "ways", "optimizer", "taskLoop", "jit"];

/** The options every metric learner shares, checked (`extra`: the learner's own keys). */
function checkMetricConfig(cfg: MetricConfig, name: string, extra: string[] = []): void {
  checkOptions(cfg, name, [...METRIC_OPTIONS, ...extra]);
  if (cfg === undefined) throw new TypeError(`${name}: needs a configuration object`);
  checkModule(cfg.embedding, "embedding", name, "nn.conv4({ inChannels: 1, imageSize: 28 })");
  if (cfg.ways === undefined) {
    throw new TypeError(`${name}: the option ways is required (classes per episode, e.g. 5)`);
  }
  checkNumber(cfg.ways, "ways", name, { min: 2, integer: true });
  if (cfg.optimizer !== undefined) checkTransformation(cfg.optimizer, `${name}: optimizer`);
  if (cfg.taskLoop !== undefined) oneOf(cfg.taskLoop, ["vmap", "loop"], "taskLoop", name);
  if (cfg.jit !== undefined) checkBoolean(cfg.jit, "jit", name);
}

function metricLearner(cfg: MetricConfig, scorer: Scorer, name: string): MetricLearner {
  const { ways } = cfg;
  const optimizer = cfg.optimizer ?? mg.optim.adam(1e-3);
  const embed = (params: unknown, modelState: unknown, x: Tensor) => {
    const [z] = cfg.embedding.apply(params, modelState, x, { train: true });
    return mg.reshape(z, [z.shape[0], -1]);
  };
  const perTask = (params: { embed: unknown; extra: unknown }, modelState: unknown, task: Task) => {
    if (task.ys.dtype !== "i32" || task.yq.dtype !== "i32") {
      throw new TypeError(`${name}: labels must be i32 class indices in [0, ${ways})`);
    }
    const zs = embed(params.embed, modelState, task.xs);
    const zq = embed(params.embed, modelState, task.xq);
    const logits = scorer.score(params.extra, zs, task.ys, zq);
    return logits;
  };
  const figures = (params: { embed: unknown; extra: unknown }, modelState: unknown, task: Task) => {
    const logits = perTask(params, modelState, task);
    return [mg.nn.softmaxCrossEntropy(logits, task.yq), mg.nn.accuracy(logits, task.yq)];
  };
  const step = (state: MetricState, batch: TaskBatch): [MetricState, MetaMetrics] => {
    const loss = (params: any) => {
      const [l, acc] = overTasks(
        batch,
        (task) => figures(params, state.modelState, task),
        cfg.taskLoop ?? "vmap",
      );
      return [l, acc];
    };
    const [[l, acc], g] = mg.valueAndGrad(loss, { hasAux: true })(state.params);
    const [updates, opt] = optimizer.update(g, state.opt, state.params);
    const params = mg.optim.applyUpdates(state.params, updates);
    return [{ params, modelState: state.modelState, opt }, { loss: l, accuracy: acc as Tensor }];
  };
  const metaStep = cfg.jit ?? true
    ? mg.jit(step, { donateArgnums: [0], name: `${name}.metaStep` })
    : step;
  return {
    init(key) {
      const [k1, k2] = mg.random.split(key);
      const { params, state } = cfg.embedding.init(k1);
      const full = { embed: params, extra: scorer.initExtra(k2) };
      return { params: full, modelState: state, opt: optimizer.init(full) };
    },
    metaStep: (state, batch) => metaStep(state, batch) as [MetricState, MetaMetrics],
    logits: (state, task) => perTask(state.params as any, state.modelState, task),
    evaluate: (state, batch) =>
      evaluateTasks(batch, (task) => figures(state.params as any, state.modelState, task), true),
  };
}

/** Class-mean embeddings [ways, D] of the support set. */
function prototypes(zs: Tensor, ys: Tensor, ways: number): Tensor {
  const hot = mg.oneHot(ys, ways); // [M, ways]
  const counts = mg.sum(hot, 0); // [ways]
  return mg.div(mg.matmul(mg.transpose(hot), zs), mg.reshape(counts, [ways, 1]));
}

/**
 * Prototypical Networks: logits are minus the squared Euclidean distances from each query's
 * embedding to the class prototypes (the mean support embedding of each class).
 *
 * @example
 * ```ts
 * import { nn, random } from "@metagrad/metagrad";
 * import { protoNet } from "@metagrad/metagrad/algorithms";
 * const learner = protoNet({ embedding: nn.conv4({ inChannels: 1, imageSize: 28 }), ways: 5 });
 * const state = learner.init(random.key(0));
 * ```
 */
export function protoNet(config: MetricConfig): MetricLearner {
  checkMetricConfig(config, "protoNet");
  return metricLearner(config, {
    initExtra: () => null,
    score(_extra, zs, ys, zq) {
      const protos = prototypes(zs, ys, config.ways);
      const cross = mg.matmul(zq, mg.transpose(protos)); // [Q, ways]
      const qq = mg.sum(mg.square(zq), -1, true), pp = mg.sum(mg.square(protos), -1);
      return mg.neg(mg.add(mg.sub(qq, mg.mul(cross, 2)), pp));
    },
  }, "protoNet");
}

/** Options of `matchingNet`. */
export interface MatchingConfig extends MetricConfig {
  /**
   * Full-context embeddings: the embedding's feature size D (the LSTMs' width), or omitted
   * for plain (per-example) embeddings.
   */
  fce?: { features: number; steps?: number };
}

/** Rows scaled to unit length. */
function unit(z: Tensor): Tensor {
  return mg.div(z, mg.sqrt(mg.add(mg.sum(mg.square(z), -1, true), 1e-8)));
}

/**
 * Matching Networks: a query's class distribution is the cosine-attention-weighted sum of the
 * support labels; with `fce`, support embeddings are read in context by a bidirectional LSTM
 * and each query attends to them through an attention LSTM for `steps` rounds (the LSTM's
 * hidden input is h + r, the usual simplification of the paper's concatenation).
 *
 * @example
 * ```ts
 * import { nn, random } from "@metagrad/metagrad";
 * import { matchingNet } from "@metagrad/metagrad/algorithms";
 * const embedding = nn.conv4({ inChannels: 1, imageSize: 28 }); // 64 features
 * const learner = matchingNet({ embedding, ways: 5, fce: { features: 64 } });
 * ```
 */
export function matchingNet(config: MatchingConfig): MetricLearner {
  checkMetricConfig(config, "matchingNet", ["fce"]);
  const fce = config.fce;
  if (fce !== undefined) {
    checkOptions(fce, "matchingNet: fce", ["features", "steps"]);
    checkNumber(fce.features, "fce.features", "matchingNet", { min: 1, integer: true });
    if (fce.steps !== undefined) {
      checkNumber(fce.steps, "fce.steps", "matchingNet", { min: 1, integer: true });
    }
  }
  const steps = fce?.steps ?? 3;
  const cell = fce ? mg.nn.lstmCell(fce.features, fce.features) : null;
  type Extra = { fwd: LstmParams; bwd: LstmParams; att: LstmParams } | null;
  return metricLearner(config, {
    initExtra(key) {
      if (!cell) return null;
      const [k1, k2, k3] = mg.random.split(key, 3);
      return { fwd: cell.init(k1), bwd: cell.init(k2), att: cell.init(k3) };
    },
    score(extra, zs, ys, zq) {
      let g = zs, f = zq;
      const x = extra as Extra;
      if (cell && x) {
        const d = zs.shape[1];
        if (d !== fce!.features) {
          throw new RangeError(
            `matchingNet: fce.features is ${fce!.features} but the embedding gives ${d} features`,
          );
        }
        // support in context: g(x_i) = z_i + forward LSTM state + backward LSTM state
        const zero = cell.initialState([], zs.backend); // on the inputs' backend, not the default
        const [, fwd] = runRecurrent(cell, x.fwd, zero, zs, { timeMajor: true });
        const [, bwd] = runRecurrent(cell, x.bwd, zero, zs, { timeMajor: true, reverse: true });
        g = mg.add(mg.add(zs, fwd), bwd);
        // queries attend to the support for `steps` rounds
        let h = mg.zerosLike(zq), c = mg.zerosLike(zq), r = mg.zerosLike(zq);
        for (let k = 0; k < steps; k++) {
          const [h2, c2] = cell.apply(x.att, [mg.add(h, r), c], zq);
          h = mg.add(h2, zq);
          c = c2;
          r = mg.matmul(mg.softmax(mg.matmul(h, mg.transpose(g)), -1), g);
        }
        f = h;
      }
      const attention = mg.softmax(mg.matmul(unit(f), mg.transpose(unit(g))), -1); // [Q, M]
      const probs = mg.matmul(attention, mg.oneHot(ys, config.ways)); // [Q, ways]
      return mg.log(mg.add(probs, 1e-8)); // log-probabilities: cross-entropy = NLL
    },
  }, "matchingNet");
}
