/**
 * Sinusoid regression tasks (Finn et al. 2017): y = A·sin(x − φ) with amplitude A ∈ U[0.1, 5],
 * phase φ ∈ U[0, π] and inputs x ∈ U[−5, 5]; K support and K query points per task. Sampled
 * on the device from a key, batched over tasks.
 */
import type { Tensor } from "../core/tensor.ts";
import * as random from "../core/random.ts";
import { mul, sin, sub } from "../core/ops/math.ts";
import { reshape, split } from "../core/ops/shape.ts";

/** A batch of regression tasks: support (xs, ys) and query (xq, yq), each [tasks, K, 1]. */
export interface RegressionBatch {
  /** Support inputs [tasks, shots, 1]. */
  xs: Tensor;
  /** Support targets [tasks, shots, 1]. */
  ys: Tensor;
  /** Query inputs [tasks, queries, 1]. */
  xq: Tensor;
  /** Query targets [tasks, queries, 1]. */
  yq: Tensor;
}

/** Options of `sampleSinusoid`. */
export interface SinusoidOptions {
  /** Tasks in the batch. */
  tasks: number;
  /** Support points per task (the same number of query points is drawn). */
  shots: number;
  /** Query points per task (default: shots). */
  queries?: number;
  /**
   * Draw amplitudes and phases by stratified sampling over the batch (`random.stratifiedUniform`,
   * a Latin hypercube over the two task parameters; at most 4096 tasks) instead of
   * independently. Each task is still distributed as specified and its points are still
   * independent, so a test score's expectation is unchanged; its variance drops, since the
   * mean squared amplitude — which scales every task's MSE — can no longer drift with the draw
   * (100 independent tasks put it anywhere in about 8.5 ± 1.5). Default false.
   */
  stratified?: boolean;
}

/** The task parameters of a sinusoid batch, each [tasks, 1, 1]. */
export interface SinusoidParameters {
  /** Amplitudes A ∈ [0.1, 5). */
  amplitude: Tensor;
  /** Phases φ ∈ [0, π). */
  phase: Tensor;
}

/**
 * The amplitudes and phases `sampleSinusoid(key, opts)` draws — to inspect a test set (its
 * mean squared amplitude scales every MSE on it) or to condition on the task.
 *
 * @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * import { sinusoidParameters } from "@metagrad/metagrad/envs";
 * const { amplitude } = sinusoidParameters(random.key(1), { tasks: 100, shots: 10 });
 * ```
 */
export function sinusoidParameters(key: Tensor, opts: SinusoidOptions): SinusoidParameters {
  return drawParameters(random.split(key, 3), opts);
}

function drawParameters([ka, kp]: Tensor[], opts: SinusoidOptions): SinusoidParameters {
  const { tasks, shots } = opts;
  const queries = opts.queries ?? shots;
  for (const [name, v] of [["tasks", tasks], ["shots", shots], ["queries", queries]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`sampleSinusoid: ${name} must be a positive integer, got ${v}`);
    }
  }
  if (opts.stratified && tasks > 4096) {
    throw new RangeError(
      `sampleSinusoid: stratified sampling supports at most 4096 tasks, got ${tasks}; draw ` +
        "several batches with split keys",
    );
  }
  const draw = (k: Tensor, minval: number, maxval: number) =>
    opts.stratified
      ? reshape(random.stratifiedUniform(k, tasks, { minval, maxval }), [tasks, 1, 1])
      : random.uniform(k, [tasks, 1, 1], { minval, maxval });
  return { amplitude: draw(ka, 0.1, 5), phase: draw(kp, 0, Math.PI) };
}

/**
 * Sample a batch of sinusoid tasks.
 *
 * @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * import { sampleSinusoid } from "@metagrad/metagrad/envs";
 * const batch = sampleSinusoid(random.key(0), { tasks: 25, shots: 10 }); // xs: [25, 10, 1]
 * const test = sampleSinusoid(random.key(1), { tasks: 100, shots: 10, stratified: true });
 * ```
 */
export function sampleSinusoid(key: Tensor, opts: SinusoidOptions): RegressionBatch {
  const keys = random.split(key, 3);
  const { amplitude, phase } = drawParameters(keys, opts);
  const { tasks, shots } = opts, queries = opts.queries ?? shots;
  const x = random.uniform(keys[2], [tasks, shots + queries, 1], { minval: -5, maxval: 5 });
  const y = mul(amplitude, sin(sub(x, phase)));
  const [xs, xq] = split(x, [shots], 1);
  const [ys, yq] = split(y, [shots], 1);
  return { xs, ys, xq, yq };
}
