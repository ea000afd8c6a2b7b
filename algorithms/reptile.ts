/**
 * Reptile (Nichol et al. 2018): train on a task for k steps from θ, then move θ toward the
 * result, θ ← θ + ε·(φ − θ). Batched: all tasks of a batch train at once (vmap) and θ moves
 * toward their mean; serial: tasks one after another, θ moving after each (the original).
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { checkBoolean, checkNumber, checkOptions, oneOf } from "../core/validate.ts";
import { checkTransformation } from "../core/optim/optim.ts";
import type { GradientTransformation } from "../core/optim/optim.ts";
import type { Module } from "../core/nn/layers.ts";
import {
  checkLoss,
  checkModule,
  evaluateTasks,
  lossOf,
  type MetaLearner,
  type MetaMetrics,
  type Support,
  type Task,
  taskAt,
  type TaskBatch,
  taskCount,
  type TaskLoss,
} from "./common.ts";

/** Configuration of `reptile`. */
export interface ReptileConfig {
  /** The learner network. */
  model: Module;
  /** How a task is scored: "mse" (regression) or "crossEntropy" (i32 labels). */
  loss: TaskLoss;
  /** Inner training steps per task (default 5). */
  innerSteps?: number;
  /** Inner SGD learning rate (default 0.02); ignored when `innerOptimizer` is given. */
  innerLr?: number;
  /** The inner optimiser (default SGD with `innerLr`); its state starts fresh per task. */
  innerOptimizer?: GradientTransformation<any>;
  /** The outer step size ε (default 0.1); ignored when `metaOptimizer` is given. */
  metaLr?: number;
  /**
   * The outer update, applied to the pseudo-gradient θ − φ (default `optim.sgd(metaLr)`, which
   * is θ ← θ + ε·(φ − θ)). A schedule anneals ε as Nichol et al. do — `optim.sgd(
   * optim.schedules.linearDecay(0.1, steps))` — and any optimizer (Adam, clipping) fits.
   */
  metaOptimizer?: GradientTransformation<any>;
  /** "batched" (vmap over the batch, one move toward the mean) or "serial" (default batched). */
  mode?: "batched" | "serial";
  /** Compile the meta-step with jit (default true). */
  jit?: boolean;
}

/** What a Reptile learner carries between meta-steps. */
export interface ReptileState {
  /** The meta-learned initialisation θ. */
  params: unknown;
  /** The model's non-trainable state. */
  modelState: unknown;
  /** The outer optimizer's state (its step count drives a schedule). */
  opt: unknown;
}

/** A Reptile learner: `init`, a jitted `metaStep`, `adapt`, `evaluate`. */
export type ReptileLearner = MetaLearner<ReptileState>;

/**
 * Reptile: a first-order meta-learner that needs no second derivatives at all.
 *
 * @example
 * ```ts
 * import { nn, random } from "@metagrad/metagrad";
 * import { reptile } from "@metagrad/metagrad/algorithms";
 * import { sampleSinusoid } from "@metagrad/metagrad/envs";
 * const learner = reptile({ model: nn.sinusoidMlp(), loss: "mse", innerSteps: 5 });
 * let state = learner.init(random.key(0));
 * [state] = learner.metaStep(state, sampleSinusoid(random.key(1), { tasks: 10, shots: 10 }));
 * ```
 */
export function reptile(config: ReptileConfig): ReptileLearner {
  const where = "reptile";
  checkOptions(config, where, [
    "model",
    "loss",
    "innerSteps",
    "innerLr",
    "innerOptimizer",
    "metaLr",
    "metaOptimizer",
    "mode",
    "jit",
  ]);
  if (config === undefined) throw new TypeError(`${where}: needs a configuration object`);
  checkModule(config.model, "model", where, "nn.sinusoidMlp()");
  const loss = checkLoss(config.loss, where);
  const innerSteps = checkNumber(config.innerSteps ?? 5, "innerSteps", where, {
    min: 1,
    integer: true,
  });
  const optimizer = (given: unknown, lr: unknown, dflt: number, name: string, lrName: string) =>
    given === undefined
      ? mg.optim.sgd(checkNumber(lr ?? dflt, lrName, where, { min: 0 }))
      : checkTransformation(given, `${where}: ${name}`);
  const innerOpt = optimizer(
    config.innerOptimizer,
    config.innerLr,
    0.02,
    "innerOptimizer",
    "innerLr",
  );
  const metaOpt = optimizer(config.metaOptimizer, config.metaLr, 0.1, "metaOptimizer", "metaLr");
  const mode = oneOf(config.mode ?? "batched", ["batched", "serial"] as const, "mode", where);
  if (config.jit !== undefined) checkBoolean(config.jit, "jit", where);
  const classification = loss === "crossEntropy";
  if (!Number.isInteger(innerSteps) || innerSteps < 0) {
    throw new RangeError(`reptile: innerSteps must be a non-negative integer, got ${innerSteps}`);
  }

  const forward = (params: unknown, modelState: unknown, x: Tensor) =>
    config.model.apply(params, modelState, x, { train: true })[0];

  const train = (params: unknown, modelState: unknown, support: Support, steps: number) => {
    let p = params;
    let opt = innerOpt.init(p);
    const supportLoss = (q: unknown) =>
      lossOf(config.loss, forward(q, modelState, support.xs), support.ys);
    for (let s = 0; s < steps; s++) {
      const [updates, next] = innerOpt.update(mg.grad(supportLoss)(p), opt, p);
      p = mg.optim.applyUpdates(p, updates);
      opt = next;
    }
    return p;
  };

  const queryFigures = (params: unknown, modelState: unknown, task: Task, steps: number) => {
    const adapted = train(params, modelState, task, steps);
    const pred = forward(adapted, modelState, task.xq);
    const loss = lossOf(config.loss, pred, task.yq);
    return { adapted, figures: classification ? [loss, mg.nn.accuracy(pred, task.yq)] : [loss] };
  };

  /** One outer step toward φ: the meta-optimizer applied to the pseudo-gradient θ − φ. */
  const toward = (theta: unknown, phi: unknown, opt: unknown): [unknown, unknown] => {
    const pseudoGradient = mg.tree.map((t: Tensor, f: Tensor) => mg.sub(t, f), theta, phi);
    const [updates, next] = metaOpt.update(pseudoGradient, opt, theta);
    return [mg.optim.applyUpdates(theta, updates), next];
  };

  const step = (state: ReptileState, batch: TaskBatch): [ReptileState, MetaMetrics] => {
    const n = taskCount(batch, "reptile");
    let params = state.params, opt = state.opt;
    let figures: Tensor[];
    if (mode === "batched") {
      const [adapted, outs] = mg.vmap((xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor) => {
        const r = queryFigures(params, state.modelState, { xs, ys, xq, yq }, innerSteps);
        return [r.adapted, r.figures];
      })(batch.xs, batch.ys, batch.xq, batch.yq) as [unknown, Tensor[]];
      [params, opt] = toward(params, mg.tree.map((a: Tensor) => mg.mean(a, 0), adapted), opt);
      figures = outs.map((o) => mg.mean(o, 0));
    } else {
      const sums: Tensor[] = [];
      for (let i = 0; i < n; i++) {
        const r = queryFigures(params, state.modelState, taskAt(batch, i), innerSteps);
        [params, opt] = toward(params, r.adapted, opt);
        r.figures.forEach((f, k) => (sums[k] = sums[k] ? mg.add(sums[k], f) : f));
      }
      figures = sums.map((s) => mg.div(s, n));
    }
    const metrics: MetaMetrics = { loss: figures[0] };
    if (classification) metrics.accuracy = figures[1];
    return [{ params, modelState: state.modelState, opt }, metrics];
  };
  const metaStep = config.jit ?? true
    ? mg.jit(step, { donateArgnums: [0], name: "reptile.metaStep" })
    : step;

  return {
    init(key) {
      const { params, state } = config.model.init(key);
      return { params, modelState: state, opt: metaOpt.init(params) };
    },
    metaStep: (state, batch) => metaStep(state, batch) as [ReptileState, MetaMetrics],
    adapt: (state, support, steps = innerSteps) =>
      train(state.params, state.modelState, support, steps),
    predict: (state, params, x) => forward(params, state.modelState, x),
    evaluate: (state, batch, steps = innerSteps) =>
      evaluateTasks(
        batch,
        (task) => queryFigures(state.params, state.modelState, task, steps).figures,
        classification,
      ),
  };
}
