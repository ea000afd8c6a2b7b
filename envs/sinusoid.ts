/**
 * Sinusoid regression tasks (Finn et al. 2017): y = A·sin(x − φ) with amplitude A ∈ U[0.1, 5],
 * phase φ ∈ U[0, π] and inputs x ∈ U[−5, 5]; K support and K query points per task. Sampled
 * on the device from a key, batched over tasks.
 */
import type { Tensor } from "../core/tensor.ts";
import * as random from "../core/random.ts";
import { mul, sin, sub } from "../core/ops/math.ts";
import { split } from "../core/ops/shape.ts";

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
}

/**
 * Sample a batch of sinusoid tasks.
 *
 * @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * import { sampleSinusoid } from "@metagrad/metagrad/envs";
 * const batch = sampleSinusoid(random.key(0), { tasks: 25, shots: 10 }); // xs: [25, 10, 1]
 * ```
 */
export function sampleSinusoid(key: Tensor, opts: SinusoidOptions): RegressionBatch {
  const { tasks, shots } = opts;
  const queries = opts.queries ?? shots;
  for (const [name, v] of [["tasks", tasks], ["shots", shots], ["queries", queries]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`sampleSinusoid: ${name} must be a positive integer, got ${v}`);
    }
  }
  const [ka, kp, kx] = random.split(key, 3);
  const amp = random.uniform(ka, [tasks, 1, 1], { minval: 0.1, maxval: 5 });
  const phase = random.uniform(kp, [tasks, 1, 1], { minval: 0, maxval: Math.PI });
  const x = random.uniform(kx, [tasks, shots + queries, 1], { minval: -5, maxval: 5 });
  const y = mul(amp, sin(sub(x, phase)));
  const [xs, xq] = split(x, [shots, queries], 1);
  const [ys, yq] = split(y, [shots, queries], 1);
  return { xs, ys, xq, yq };
}
