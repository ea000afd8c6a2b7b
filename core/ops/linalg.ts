/** Matrix products. */
import { bind } from "../primitive.ts";
import { disposeOnThrow } from "../memory.ts";
import { matmul as matmulPrim } from "../primitives/matmul.ts";
import { fmtShape } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import { cast, mul } from "./math.ts";
import { sum } from "./reduce.ts";
import { expandDims, squeeze } from "./shape.ts";

/** Transposes folded into a matmul (no copies are made). */
export interface MatmulOptions {
  /** Use aᵀ (the last two axes swapped) without copying. */
  transposeA?: boolean;
  /** Use bᵀ without copying. */
  transposeB?: boolean;
}

/**
 * Matrix product with NumPy semantics: 1-D operands are promoted to a row/column and the
 * added axis removed; batch axes broadcast. Integer operands are computed in f32.
 *
 * @example
 * ```ts
 * import { matmul, ones } from "@metagrad/metagrad";
 * matmul(ones([5, 2, 3]), ones([3, 4])).shape; // [5, 2, 4]
 * matmul(ones([4, 3]), ones([4, 2]), { transposeA: true }).shape; // [3, 2]
 * ```
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  return disposeOnThrow(() => matmulOf(a, b, opts));
}

function matmulOf(a: Tensor, b: Tensor, opts: MatmulOptions): Tensor {
  if (a.ndim === 0 || b.ndim === 0) {
    throw new RangeError(
      `matmul: scalar operand (${fmtShape(a.shape)} @ ${fmtShape(b.shape)}); use mul for scaling`,
    );
  }
  const av = a.ndim === 1 ? expandDims(a, 0) : a;
  const bv = b.ndim === 1 ? expandDims(b, -1) : b;
  let out = bind(matmulPrim, [cast(av, "f32"), cast(bv, "f32")], {
    transposeA: Boolean(opts.transposeA) && a.ndim > 1,
    transposeB: Boolean(opts.transposeB) && b.ndim > 1,
  });
  if (a.ndim === 1) out = squeeze(out, -2);
  if (b.ndim === 1) out = squeeze(out, -1);
  return out;
}

/**
 * Inner product of the last axes: Σ a·b over axis −1, with broadcasting.
 *
 * @example
 * ```ts
 * import { dot, tensor } from "@metagrad/metagrad";
 * dot(tensor([1, 2, 3]), tensor([4, 5, 6])); // 32
 * ```
 */
export function dot(a: Tensor, b: Tensor): Tensor {
  return sum(mul(a, b), -1);
}

/**
 * Outer product of two vectors. @example
 * ```ts
 * import { outer, tensor } from "@metagrad/metagrad";
 * outer(tensor([1, 2]), tensor([3, 4, 5])).shape; // [2, 3]
 * ```
 */
export function outer(a: Tensor, b: Tensor): Tensor {
  return mul(expandDims(a, -1), expandDims(b, 0));
}
