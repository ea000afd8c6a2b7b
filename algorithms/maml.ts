/**
 * MAML (Finn et al. 2017) and its family, as one composition of grad, vmap and jit:
 *
 *   meta-loss(θ) = mean over tasks of L_query(adapt(θ, support))
 *   adapt(θ, S)  = k steps of θ ← θ − α ⊙ ∇L_support(θ)
 *
 * differentiated through the inner steps (second order) or with their gradients held
 * constant (first order). Variants are options: learned inner rates per step / per layer /
 * per parameter (Meta-SGD), and adapting only some parameters (ANIL adapts the head).
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import type { GradientTransformation } from "../core/optim/optim.ts";
import type { Module } from "../core/nn/layers.ts";
import { checkBoolean, checkFunction, checkNumber, checkOptions, oneOf } from "../core/validate.ts";
import { checkTransformation } from "../core/optim/optim.ts";
import {
  checkLoss,
  checkModule,
  evaluateTasks,
  lossOf,
  type MetaLearner,
  type MetaMetrics,
  overTasks,
  type Support,
  type Task,
  type TaskBatch,
  type TaskLoss,
} from "./common.ts";

/** Which inner learning rates are meta-learned. */
export type LearnedLr =
  /** A fixed α. */
  | "none"
  /** One rate per inner step, shared by all parameters. */
  | "perStep"
  /** One rate per adapted parameter tensor ("layer"), shared by the steps. */
  | "perLayer"
  /** One rate per adapted parameter tensor and step (MAML++'s LSLR). */
  | "perStepPerLayer"
  /** One rate per parameter element, shared by the steps (Meta-SGD). */
  | "perParameter";

/** Configuration of `maml` (and `metaSgd`, `anil`). */
export interface MamlConfig {
  /** The learner network. */
  model: Module;
  /** How a task is scored: "mse" (regression) or "crossEntropy" (i32 labels). */
  loss: TaskLoss;
  /** Inner (adaptation) steps during meta-training (default 1). */
  innerSteps?: number;
  /** Inner learning rate α, or the initial value of the learned rates (default 0.01). */
  innerLr?: number;
  /** Treat the inner gradients as constants: first-order MAML (default false). */
  firstOrder?: boolean;
  /** Meta-learn the inner rates (default "none"). */
  learnedLr?: LearnedLr;
  /**
   * Which parameter leaves the inner loop adapts, by path (e.g. "3.w", given with every
   * leaf's path); default all.
   */
  adapt?: (path: string, allPaths: readonly string[]) => boolean;
  /** The outer optimiser (default Adam with learning rate 1e-3). */
  metaOptimizer?: GradientTransformation<any>;
  /** Tasks of a batch as one vmapped program (default) or a per-task loop (for checking). */
  taskLoop?: "vmap" | "loop";
  /** Compile the meta-step with jit (default true). */
  jit?: boolean;
}

/** What a MAML learner carries between meta-steps. */
export interface MamlState {
  /** The meta-learned initialisation θ. */
  params: unknown;
  /** The model's non-trainable state (e.g. batch-norm statistics). */
  modelState: unknown;
  /** Learned inner rates, one entry per `learnedLr` group (empty when fixed). */
  lrs: Tensor[];
  /** The outer optimiser's state. */
  opt: unknown;
}

/** A MAML-family learner: `init`, a jitted `metaStep`, `adapt`, `evaluate`. */
export interface MamlLearner extends MetaLearner<MamlState> {
  /** The configuration, defaults filled in. */
  readonly config: Readonly<Required<Omit<MamlConfig, "adapt">>> & Pick<MamlConfig, "adapt">;
}

/**
 * MAML: meta-learn an initialisation that adapts to a new task in a few gradient steps.
 *
 * @example
 * ```ts
 * import { nn, random } from "@metagrad/metagrad";
 * import { maml } from "@metagrad/metagrad/algorithms";
 * import { sampleSinusoid } from "@metagrad/metagrad/envs";
 * const learner = maml({ model: nn.sinusoidMlp(), loss: "mse", innerLr: 0.01 });
 * let state = learner.init(random.key(0));
 * const batch = sampleSinusoid(random.key(1), { tasks: 25, shots: 10 });
 * const [next, { loss }] = learner.metaStep(state, batch);
 * state = next;
 * ```
 */
export function maml(config: MamlConfig): MamlLearner {
  return mamlFamily(config, "maml");
}

const MAML_OPTIONS = [
  "model",
  "loss",
  "innerSteps",
  "innerLr",
  "firstOrder",
  "learnedLr",
  "adapt",
  "metaOptimizer",
  "taskLoop",
  "jit",
];
/**
 * Every `learnedLr` mode, for validation and command lines.
 *
 * @example
 * ```ts
 * import { LEARNED_LRS } from "@metagrad/metagrad/algorithms";
 * console.log(LEARNED_LRS.join("|")); // none|perStep|perLayer|perStepPerLayer|perParameter
 * ```
 */
export const LEARNED_LRS: readonly LearnedLr[] = [
  "none",
  "perStep",
  "perLayer",
  "perStepPerLayer",
  "perParameter",
];

/** The configuration checked and its defaults filled in (`where` names the constructor). */
function mamlConfig(config: MamlConfig, where: string) {
  checkOptions(config, where, MAML_OPTIONS);
  if (config === undefined) throw new TypeError(`${where}: needs a configuration object`);
  checkModule(config.model, "model", where, "nn.sinusoidMlp()");
  const cfg = {
    innerSteps: checkNumber(config.innerSteps ?? 1, "innerSteps", where, {
      min: 0,
      integer: true,
    }),
    innerLr: checkNumber(config.innerLr ?? 0.01, "innerLr", where, { min: 0 }),
    firstOrder: checkBoolean(config.firstOrder ?? false, "firstOrder", where),
    learnedLr: oneOf(config.learnedLr ?? "none", LEARNED_LRS, "learnedLr", where),
    metaOptimizer: config.metaOptimizer === undefined
      ? mg.optim.adam(1e-3)
      : checkTransformation(config.metaOptimizer, `${where}: metaOptimizer`),
    taskLoop: oneOf(config.taskLoop ?? "vmap", ["vmap", "loop"] as const, "taskLoop", where),
    jit: checkBoolean(config.jit ?? true, "jit", where),
    model: config.model,
    loss: checkLoss(config.loss, where),
    adapt: config.adapt,
  };
  if (cfg.adapt !== undefined) checkFunction(cfg.adapt, "adapt", where);
  return cfg;
}

function mamlFamily(config: MamlConfig, where: string): MamlLearner {
  const cfg = mamlConfig(config, where);
  const classification = cfg.loss === "crossEntropy";

  /** Indices (in flatten order) of the leaves the inner loop adapts. */
  const adaptedLeaves = (params: unknown): number[] => {
    const [leaves, def] = mg.tree.flatten(params);
    const paths = mg.tree.leafPaths(def);
    const idx = leaves.map((_, i) => i).filter((i) => !cfg.adapt || cfg.adapt(paths[i], paths));
    if (idx.length === 0 && cfg.innerSteps > 0) {
      throw new RangeError(
        `maml: the adapt filter selects no parameters (paths: ${paths.join(", ")})`,
      );
    }
    return idx;
  };

  const initLrs = (params: unknown): Tensor[] => {
    const leaves = mg.tree.leaves<Tensor>(params);
    const adapted = adaptedLeaves(params).map((i) => leaves[i]);
    const backend = leaves[0]?.backend;
    const fill = (shape: number[]) => mg.full(shape, cfg.innerLr, { backend });
    const steps = Math.max(1, cfg.innerSteps);
    switch (cfg.learnedLr) {
      case "none":
        return [];
      case "perStep":
        return [fill([steps])];
      case "perLayer":
        return adapted.map(() => fill([]));
      case "perStepPerLayer":
        return adapted.map(() => fill([steps]));
      case "perParameter":
        return adapted.map((p) => fill([...p.shape]));
    }
  };

  /** The rate of adapted leaf j at inner step s (steps past the trained ones reuse the last). */
  const rateAt = (lrs: Tensor[], j: number, s: number): Tensor | number => {
    const step = Math.min(s, Math.max(1, cfg.innerSteps) - 1);
    switch (cfg.learnedLr) {
      case "none":
        return cfg.innerLr;
      case "perStep":
        return mg.slice(lrs[0], [step]);
      case "perStepPerLayer":
        return mg.slice(lrs[j], [step]);
      default:
        return lrs[j];
    }
  };

  const forward = (params: unknown, modelState: unknown, x: Tensor) =>
    cfg.model.apply(params, modelState, x, { train: true })[0];

  const innerLoop = (
    params: unknown,
    modelState: unknown,
    lrs: Tensor[],
    support: Support,
    steps: number,
    firstOrder: boolean,
  ): unknown => {
    const idx = adaptedLeaves(params);
    const [leaves0, def] = mg.tree.flatten<Tensor>(params);
    let leaves = leaves0;
    for (let s = 0; s < steps; s++) {
      const current = leaves;
      const supportLoss = (adapted: Tensor[]) => {
        const all = [...current];
        idx.forEach((i, j) => (all[i] = adapted[j]));
        return lossOf(
          cfg.loss,
          forward(mg.tree.unflatten(def, all), modelState, support.xs),
          support.ys,
        );
      };
      let g = mg.grad(supportLoss)(idx.map((i) => current[i])) as Tensor[];
      if (firstOrder) g = g.map((t) => mg.stopGradient(t));
      const next = [...current];
      idx.forEach((i, j) => (next[i] = mg.sub(current[i], mg.mul(g[j], rateAt(lrs, j, s)))));
      leaves = next;
    }
    return mg.tree.unflatten(def, leaves);
  };

  const queryFigures = (
    params: unknown,
    modelState: unknown,
    lrs: Tensor[],
    task: Task,
    steps: number,
    firstOrder: boolean,
  ): Tensor[] => {
    const adapted = innerLoop(params, modelState, lrs, task, steps, firstOrder);
    const pred = forward(adapted, modelState, task.xq);
    const loss = lossOf(cfg.loss, pred, task.yq);
    return classification ? [loss, mg.nn.accuracy(pred, task.yq)] : [loss];
  };

  const step = (state: MamlState, batch: TaskBatch): [MamlState, MetaMetrics] => {
    const metaLoss = (params: unknown, lrs: Tensor[]) => {
      const figures = overTasks(
        batch,
        (task) => queryFigures(params, state.modelState, lrs, task, cfg.innerSteps, cfg.firstOrder),
        cfg.taskLoop,
      );
      return [figures[0], figures.slice(1)];
    };
    const [[loss, aux], grads] = mg.valueAndGrad(metaLoss, { argnums: [0, 1], hasAux: true })(
      state.params,
      state.lrs,
    );
    const [gParams, gLrs] = grads as [unknown, Tensor[]];
    const trainable = { params: state.params, lrs: state.lrs };
    const [updates, opt] = cfg.metaOptimizer.update(
      { params: gParams, lrs: gLrs },
      state.opt,
      trainable,
    );
    const next = mg.optim.applyUpdates(trainable, updates);
    const metrics: MetaMetrics = { loss };
    if (classification) metrics.accuracy = (aux as Tensor[])[0];
    return [{ params: next.params, modelState: state.modelState, lrs: next.lrs, opt }, metrics];
  };
  const metaStep = cfg.jit ? mg.jit(step, { donateArgnums: [0], name: `${where}.metaStep` }) : step;

  return {
    config: cfg,
    init(key) {
      const { params, state } = cfg.model.init(key);
      const lrs = initLrs(params);
      return { params, modelState: state, lrs, opt: cfg.metaOptimizer.init({ params, lrs }) };
    },
    metaStep: (state, batch) => metaStep(state, batch) as [MamlState, MetaMetrics],
    adapt: (state, support, steps = cfg.innerSteps) =>
      innerLoop(state.params, state.modelState, state.lrs, support, steps, false),
    predict: (state, params, x) => forward(params, state.modelState, x),
    evaluate: (state, batch, steps = cfg.innerSteps) =>
      evaluateTasks(
        batch,
        (task) => queryFigures(state.params, state.modelState, state.lrs, task, steps, true),
        classification,
      ),
  };
}

/**
 * Meta-SGD (Li et al. 2017): MAML that also meta-learns a learning rate for every parameter
 * element (and so the direction of the inner update).
 *
 * @example
 * ```ts
 * import { nn } from "@metagrad/metagrad";
 * import { metaSgd } from "@metagrad/metagrad/algorithms";
 * const learner = metaSgd({ model: nn.sinusoidMlp(), loss: "mse" });
 * ```
 */
export function metaSgd(config: Omit<MamlConfig, "learnedLr">): MamlLearner {
  checkOptions(config, "metaSgd", MAML_OPTIONS.filter((k) => k !== "learnedLr"));
  return mamlFamily({ ...config, learnedLr: "perParameter" }, "metaSgd");
}

/**
 * ANIL (Raghu et al. 2020): MAML whose inner loop adapts only the head — the last module of a
 * `sequential` model — while the body is meta-learned as a shared feature extractor.
 *
 * @example
 * ```ts
 * import { nn } from "@metagrad/metagrad";
 * import { anil } from "@metagrad/metagrad/algorithms";
 * const learner = anil({ model: nn.sinusoidMlp(), loss: "mse", innerLr: 0.01 });
 * ```
 */
export function anil(config: Omit<MamlConfig, "adapt">): MamlLearner {
  // the head: the last module of the sequential's parameter list that has parameters
  const top = (path: string) => path.split(".")[0];
  checkOptions(config, "anil", MAML_OPTIONS.filter((k) => k !== "adapt"));
  return mamlFamily(
    { ...config, adapt: (path, all) => top(path) === top(all[all.length - 1]) },
    "anil",
  );
}
