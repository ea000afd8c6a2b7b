/**
 * What every few-shot learner shares: the task-batch layout, the task losses, and the summary
 * of an evaluation (mean and 95% confidence interval over test tasks).
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { describe, oneOf } from "../core/validate.ts";
import { collectMade } from "../core/memory.ts";

/**
 * A batch of tasks, tasks on the leading axis: support inputs `xs` and targets `ys`, query
 * inputs `xq` and targets `yq`. Targets are values (regression) or i32 class labels.
 */
export interface TaskBatch {
  /** Support inputs [tasks, supportSize, ...]. */
  xs: Tensor;
  /** Support targets [tasks, supportSize, ...] (values, or i32 labels). */
  ys: Tensor;
  /** Query inputs [tasks, querySize, ...]. */
  xq: Tensor;
  /** Query targets [tasks, querySize, ...]. */
  yq: Tensor;
}

/** One task: the same fields without the tasks axis. */
export type Task = TaskBatch;

/** The loss a task is scored with. */
export type TaskLoss = "mse" | "crossEntropy";

/** Per-step training figures of a meta-learner (device scalars: read them when needed). */
export interface MetaMetrics {
  /** Mean query loss over the batch's tasks, after adaptation. */
  loss: Tensor;
  /** Mean query accuracy (classification only). */
  accuracy?: Tensor;
}

/** A figure over test tasks: mean, half-width of the 95% confidence interval, task count. */
export interface Summary {
  /** Mean over tasks. */
  mean: number;
  /** Half-width of the normal-approximation 95% confidence interval. */
  ci95: number;
  /** Number of tasks. */
  n: number;
}

/** What `evaluate` returns. */
export interface EvalResult {
  /** Query loss after adaptation. */
  loss: Summary;
  /** Query accuracy after adaptation (classification only). */
  accuracy?: Summary;
}

/** Support data for `adapt`. */
export interface Support {
  /** Support inputs [examples, ...]. */
  xs: Tensor;
  /** Support targets [examples, ...]. */
  ys: Tensor;
}

/** The shape every gradient-based meta-learner shares (MAML family, Reptile). */
export interface MetaLearner<S> {
  /** A fresh state from a key. */
  init(key: Tensor): S;
  /**
   * One meta-update on a batch of tasks; returns the new state and the batch's mean
   * post-adaptation query loss (and accuracy). The given state's tensors are consumed
   * (donated to the new state); do not use them afterwards.
   */
  metaStep(state: S, batch: TaskBatch): [S, MetaMetrics];
  /** The parameters adapted to one task's support set (default: the training step count). */
  adapt(state: S, support: Support, steps?: number): unknown;
  /** Predictions of (adapted) parameters on inputs. */
  predict(state: S, params: unknown, x: Tensor): Tensor;
  /** Post-adaptation query loss (and accuracy) over test tasks, mean ± 95% CI. */
  evaluate(state: S, batch: TaskBatch, steps?: number): Promise<EvalResult>;
}

/** Progress of `metaTrain`, reported every `every` steps. */
export interface TrainProgress {
  /** Steps done. */
  step: number;
  /** The latest batch's mean query loss (read from the device at this step only). */
  loss: number;
  /** Meta-steps per second so far. */
  stepsPerSecond: number;
  /** Estimated seconds left. */
  etaSeconds: number;
}

/** Options of `metaTrain`. */
export interface TrainOptions {
  /** Meta-steps to run. */
  steps: number;
  /** Key the batches are drawn from (split once per step). */
  key: Tensor;
  /** Report every this many steps (default 100); the loss is read only then. */
  every?: number;
  /** Called with each report. */
  onProgress?: (p: TrainProgress) => void;
}

/**
 * The meta-training loop: draw a batch from a fresh key each step, apply `metaStep`, free the
 * batch; the loss is read back only every `every` steps, so the device pipeline stays full.
 * Ownership of a batch: the tensors `sample` makes during its call belong to the loop and are
 * freed after the step; tensors it returns that existed before the call (a fixed or cached
 * batch) stay the caller's and are never freed here — a sampler that makes its cache lazily, on
 * its first call, passes it through `keep` to say so.
 * Returns the final state. A loss read as NaN or ±∞ stops the run with an error naming the step
 * and the last finite loss: a diverged state only turns more steps into NaN.
 *
 * @example
 * ```ts
 * import { nn, random } from "@metagrad/metagrad";
 * import { maml, metaTrain } from "@metagrad/metagrad/algorithms";
 * import { sampleSinusoid } from "@metagrad/metagrad/envs";
 * const learner = maml({ model: nn.sinusoidMlp(), loss: "mse" });
 * const state = await metaTrain(learner.metaStep, learner.init(random.key(0)),
 *   (k) => sampleSinusoid(k, { tasks: 25, shots: 10 }),
 *   { steps: 100, key: random.key(1), onProgress: (p) => console.log(p.step, p.loss) });
 * ```
 */
export async function metaTrain<S>(
  metaStep: (state: S, batch: TaskBatch) => [S, MetaMetrics],
  init: S,
  sample: (key: Tensor) => TaskBatch,
  opts: TrainOptions,
): Promise<S> {
  const every = opts.every ?? 100;
  let state = init;
  let key = opts.key;
  const t0 = performance.now();
  let lastFinite: { step: number; loss: number } | undefined;
  for (let i = 1; i <= opts.steps; i++) {
    const [next, kb] = mg.random.split(key);
    if (key !== opts.key) key.dispose();
    key = next;
    const { result: batch, made } = collectMade(() => sample(kb));
    kb.dispose();
    const [s, m] = metaStep(state, batch);
    state = s;
    // the tensors the sampler made for this step go now; ones it returned from a cache stay
    for (const t of Object.values(batch)) if (made.has(t)) t.dispose();
    if (i % every === 0 || i === opts.steps) {
      const loss = await m.loss.item();
      if (!Number.isFinite(loss)) {
        throw new Error(
          `metaTrain: the meta-loss is ${loss} at step ${i} (` +
            (lastFinite
              ? `last finite read: ${lastFinite.loss} at step ${lastFinite.step}`
              : "no finite read before it") +
            "): training diverged; lower the inner or outer learning rate, or clip gradients",
        );
      }
      lastFinite = { step: i, loss };
      const rate = i / ((performance.now() - t0) / 1000);
      opts.onProgress?.({
        step: i,
        loss,
        stepsPerSecond: rate,
        etaSeconds: (opts.steps - i) / rate,
      });
    }
    m.loss.dispose();
    m.accuracy?.dispose();
  }
  if (key !== opts.key) key.dispose();
  return state;
}

/** Mean and normal-approximation 95% confidence half-width (1.96·s/√n) of per-task values. */
export function summarize(values: ArrayLike<number>): Summary {
  const n = values.length;
  if (n === 0) throw new RangeError("summarize: no values");
  let mean = 0;
  for (let i = 0; i < n; i++) mean += values[i] / n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (values[i] - mean) ** 2;
  const sd = n > 1 ? Math.sqrt(ss / (n - 1)) : 0;
  return { mean, ci95: 1.96 * sd / Math.sqrt(n), n };
}

/**
 * Pool summaries of disjoint groups of tasks (say, an evaluation run in chunks) into the
 * summary of all of them: the exact pooled mean and sample variance, recovered from each
 * part's mean, CI half-width and count.
 *
 * @example
 * ```ts
 * import { mergeSummaries, summarize } from "@metagrad/metagrad/algorithms";
 * mergeSummaries([summarize([1, 2]), summarize([3, 4, 5])]); // = summarize([1, 2, 3, 4, 5])
 * ```
 */
export function mergeSummaries(parts: readonly Summary[]): Summary {
  const n = parts.reduce((s, p) => s + p.n, 0);
  if (n === 0) throw new RangeError("mergeSummaries: no tasks");
  const mean = parts.reduce((s, p) => s + p.mean * p.n, 0) / n;
  let ss = 0;
  for (const p of parts) {
    const sd = p.ci95 * Math.sqrt(p.n) / 1.96;
    ss += (p.n - 1) * sd * sd + p.n * (p.mean - mean) ** 2;
  }
  const sd = n > 1 ? Math.sqrt(ss / (n - 1)) : 0;
  return { mean, ci95: 1.96 * sd / Math.sqrt(n), n };
}

/** The task losses by name, for validation. */
export const TASK_LOSSES: readonly TaskLoss[] = ["mse", "crossEntropy"];

/**
 * The checks every learner constructor shares: the options are an object, a model-like
 * option is a module ({ init, apply }), the loss is a known name, and an optimizer option is
 * a gradient transformation. Names the learner and the option.
 */
export function checkModule(m: unknown, name: string, where: string, example: string): void {
  const o = m as { init?: unknown; apply?: unknown } | undefined;
  if (o === undefined || o === null) {
    throw new TypeError(`${where}: the option ${name} is required (a module, e.g. ${example})`);
  }
  if (typeof o !== "object" || typeof o.init !== "function" || typeof o.apply !== "function") {
    throw new TypeError(
      `${where}: ${name} must be a module with init and apply (e.g. ${example}), got ${
        describe(m)
      }`,
    );
  }
}

/** The task loss option: required, and one of `TASK_LOSSES`. */
export function checkLoss(loss: unknown, where: string): TaskLoss {
  if (loss === undefined) {
    throw new TypeError(
      `${where}: the option loss is required: "mse" (regression) or "crossEntropy" (i32 labels)`,
    );
  }
  return oneOf(loss, TASK_LOSSES, "loss", where);
}

/** The loss of predictions against targets. */
export function lossOf(kind: TaskLoss, pred: Tensor, target: Tensor): Tensor {
  if (kind === "mse") return mg.nn.mse(pred, target);
  if (kind === "crossEntropy") return mg.nn.softmaxCrossEntropy(pred, target);
  return oneOf(kind, TASK_LOSSES, "loss", "lossOf") as never; // throws: an unknown name
}

/** Number of tasks in a batch, after checking that its fields agree. */
export function taskCount(batch: TaskBatch, op: string): number {
  const fields = ["xs", "ys", "xq", "yq"] as const;
  for (const f of fields) {
    const t = batch[f];
    if (!(t instanceof mg.Tensor)) throw new TypeError(`${op}: batch.${f} must be a tensor`);
    if (t.ndim < 2) {
      throw new RangeError(
        `${op}: batch.${f} must be [tasks, examples, ...], got [${t.shape.join(", ")}]`,
      );
    }
  }
  const n = batch.xs.shape[0];
  for (const f of fields) {
    if (batch[f].shape[0] !== n) {
      throw new RangeError(
        `${op}: batch fields disagree on the number of tasks: ${
          fields.map((g) => `${g} [${batch[g].shape.join(", ")}]`).join(", ")
        }`,
      );
    }
  }
  if (batch.xs.shape[1] !== batch.ys.shape[1] || batch.xq.shape[1] !== batch.yq.shape[1]) {
    throw new RangeError(
      `${op}: inputs and targets disagree on the number of examples: xs [${batch.xs.shape}] ys [${batch.ys.shape}], xq [${batch.xq.shape}] yq [${batch.yq.shape}]`,
    );
  }
  return n;
}

/** Task i of a batch. */
export function taskAt(batch: TaskBatch, i: number): Task {
  return {
    xs: mg.slice(batch.xs, [i]),
    ys: mg.slice(batch.ys, [i]),
    xq: mg.slice(batch.xq, [i]),
    yq: mg.slice(batch.yq, [i]),
  };
}

/** Mean over tasks of a per-task function, as a vmap (one batched program) or a JS loop. */
export function overTasks(
  batch: TaskBatch,
  perTask: (task: Task) => Tensor[],
  mode: "vmap" | "loop",
): Tensor[] {
  const n = taskCount(batch, "meta-learner");
  if (mode === "vmap") {
    const outs = mg.vmap((xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor) =>
      perTask({ xs, ys, xq, yq })
    )(batch.xs, batch.ys, batch.xq, batch.yq) as Tensor[];
    return outs.map((o) => mg.mean(o, 0));
  }
  const sums: Tensor[] = [];
  for (let i = 0; i < n; i++) {
    perTask(taskAt(batch, i)).forEach((o, k) => (sums[k] = sums[k] ? mg.add(sums[k], o) : o));
  }
  return sums.map((s) => mg.div(s, n));
}

/**
 * Per-task figures (loss, and accuracy for classification) of a per-task function over a
 * batch of test tasks, summarised with 95% confidence intervals.
 */
export async function evaluateTasks(
  batch: TaskBatch,
  perTask: (task: Task) => Tensor[],
  classification: boolean,
): Promise<EvalResult> {
  taskCount(batch, "evaluate");
  // compiled: fused kernels and one submission (the learner's state enters as constants)
  const outs = mg.jit(
    mg.vmap((xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor) => perTask({ xs, ys, xq, yq })),
  )(batch.xs, batch.ys, batch.xq, batch.yq) as Tensor[];
  const loss = summarize(await outs[0].toFloat64());
  if (!classification) return { loss };
  return { loss, accuracy: summarize(await outs[1].toFloat64()) };
}
