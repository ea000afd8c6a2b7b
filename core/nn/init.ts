/** Parameter initialisers: pure functions of an explicit key, a shape and fan-in/fan-out. */
import type { Tensor } from "../tensor.ts";
import * as random from "../random.ts";
import { full } from "../ops/creation.ts";
import { abs, clip, div, greater, mul, sqrt, sub, where } from "../ops/math.ts";
import { sum } from "../ops/reduce.ts";
import { matmul } from "../ops/linalg.ts";
import { reshape, transpose } from "../ops/shape.ts";
import { fmtShape, sizeOf } from "../shape.ts";

/**
 * An initialiser: values of `shape` drawn with `key`. Layers pass `fanIn` when initialising a
 * bias, whose own shape does not tell it.
 */
export type Initializer = (key: Tensor, shape: readonly number[], fanIn?: number) => Tensor;

/** Fan-in and fan-out of a dense [in, out] or conv [out, in, kh, kw] weight. */
export function fans(shape: readonly number[]): [number, number] {
  if (shape.length === 2) return [shape[0], shape[1]];
  if (shape.length >= 3) {
    const receptive = sizeOf(shape.slice(2));
    return [shape[1] * receptive, shape[0] * receptive];
  }
  return [shape[0] ?? 1, shape[0] ?? 1];
}

/**
 * Glorot/Xavier uniform: U(±√(6 / (fanIn + fanOut))).
 *
 * @example
 * ```ts
 * import { nn, random } from "@metagrad/metagrad";
 * const w = nn.glorotUniform(random.key(0), [40, 40]);
 * ```
 */
export function glorotUniform(key: Tensor, shape: readonly number[]): Tensor {
  const [i, o] = fans(shape);
  const a = Math.sqrt(6 / (i + o));
  return random.uniform(key, shape, { minval: -a, maxval: a });
}

/**
 * Glorot/Xavier normal: N(0, 2 / (fanIn + fanOut)).
 *
 * @example
 * ```ts
 * import { nn, random } from "@metagrad/metagrad";
 * const w = nn.glorotNormal(random.key(0), [40, 40]);
 * ```
 */
export function glorotNormal(key: Tensor, shape: readonly number[]): Tensor {
  const [i, o] = fans(shape);
  return random.normal(key, shape, { std: Math.sqrt(2 / (i + o)) });
}

/**
 * U(±1/√fanIn): PyTorch's default for the weights and biases of Linear and Conv layers
 * (kaiming_uniform with a = √5). As a bias initialiser it uses the layer's fan-in.
 *
 * @example
 * ```ts
 * import { nn } from "@metagrad/metagrad";
 * const layer = nn.dense(40, 40, { init: nn.fanInUniform, biasInit: nn.fanInUniform });
 * ```
 */
export function fanInUniform(key: Tensor, shape: readonly number[], fanIn?: number): Tensor {
  const a = 1 / Math.sqrt(fanIn ?? fans(shape)[0]);
  return random.uniform(key, shape, { minval: -a, maxval: a });
}

/**
 * He/Kaiming uniform (for ReLU): U(±√(6 / fanIn)).
 *
 * @example
 * ```ts
 * import { nn, random } from "@metagrad/metagrad";
 * const w = nn.heUniform(random.key(0), [64, 3, 3, 3]);
 * ```
 */
export function heUniform(key: Tensor, shape: readonly number[]): Tensor {
  const a = Math.sqrt(6 / fans(shape)[0]);
  return random.uniform(key, shape, { minval: -a, maxval: a });
}

/**
 * He/Kaiming normal (for ReLU): N(0, 2 / fanIn).
 *
 * @example
 * ```ts
 * import { nn, random } from "@metagrad/metagrad";
 * const w = nn.heNormal(random.key(0), [1, 40]);
 * ```
 */
export function heNormal(key: Tensor, shape: readonly number[]): Tensor {
  return random.normal(key, shape, { std: Math.sqrt(2 / fans(shape)[0]) });
}

/** Redraws of out-of-range values in `truncatedNormal`; what is left (~1e-14) is clipped. */
const TRUNCATION_REDRAWS = 8;

/**
 * N(0, std²) truncated at ±2 std (out-of-range draws are redrawn, as TensorFlow's
 * `truncated_normal`): the weight initialiser of Finn et al.'s MAML code (std 0.01).
 *
 * @example
 * ```ts
 * import { nn } from "@metagrad/metagrad";
 * const model = nn.mlp([1, 40, 40, 1], { init: nn.truncatedNormal(0.01) });
 * ```
 */
export function truncatedNormal(std = 0.01): Initializer {
  return (key, shape) => {
    const keys = random.split(key, TRUNCATION_REDRAWS + 1);
    let x = random.normal(keys[0], shape, { std });
    for (let r = 1; r <= TRUNCATION_REDRAWS; r++) {
      x = where(greater(abs(x), 2 * std), random.normal(keys[r], shape, { std }), x);
    }
    return clip(x, -2 * std, 2 * std);
  };
}

/**
 * All zeros (the key is ignored).
 *
 * @example
 * ```ts
 * import { nn, random } from "@metagrad/metagrad";
 * const b = nn.zerosInit(random.key(0), [40]);
 * ```
 */
export function zerosInit(key: Tensor, shape: readonly number[]): Tensor {
  return full(shape, 0, { backend: key.backend });
}

/**
 * A constant (the key is ignored).
 *
 * @example
 * ```ts
 * import { nn, random } from "@metagrad/metagrad";
 * const gamma = nn.constantInit(1)(random.key(0), [64]);
 * ```
 */
export function constantInit(value: number): Initializer {
  return (key, shape) => full(shape, value, { backend: key.backend });
}

/**
 * Newton–Schulz steps for the orthogonal factor. Scaled by its Frobenius norm every singular
 * value starts in (0, 1] and grows ×1.5 per step while small, then converges quadratically;
 * 50 steps reach 1 from 1e-8 (a square Gaussian matrix has σ_min below that with
 * probability ~1e-8·n^1.5).
 */
const ORTHOGONAL_STEPS = 50;

/**
 * Orthogonal (Saxe et al.): a uniformly (Haar) distributed matrix with orthonormal rows or
 * columns, times `gain`; shapes of rank > 2 are flattened to [shape[0], rest] as in PyTorch.
 * Computed on the device as the orthogonal polar factor of a Gaussian matrix (Newton–Schulz
 * iterations; the polar factor of a Gaussian matrix is Haar distributed, like QR's Q).
 *
 * @example
 * ```ts
 * import { nn, random } from "@metagrad/metagrad";
 * const wh = nn.orthogonal()(random.key(0), [64, 64]); // wh·whᵀ = I
 * ```
 */
export function orthogonal(gain = 1): Initializer {
  return (key, shape) => {
    if (shape.length < 2) {
      throw new RangeError(
        `orthogonal: needs a matrix (rank ≥ 2) shape, got ${fmtShape(shape)}; use another ` +
          `initialiser for vectors`,
      );
    }
    const rows = shape[0], cols = sizeOf(shape.slice(1));
    const g = random.normal(key, [rows, cols]);
    let x = rows >= cols ? g : transpose(g); // tall: the Gram matrix xᵀx is the small one
    x = div(x, sqrt(sum(mul(x, x))));
    for (let i = 0; i < ORTHOGONAL_STEPS; i++) {
      x = sub(mul(x, 1.5), mul(matmul(x, matmul(transpose(x), x)), 0.5));
    }
    return reshape(mul(rows >= cols ? x : transpose(x), gain), shape);
  };
}
