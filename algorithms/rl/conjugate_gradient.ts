/**
 * Conjugate gradient for symmetric positive-definite systems A·x = b given only the product
 * v ↦ A·v (a Fisher-vector product in TRPO, a normal-equation matrix in a least-squares fit).
 * A fixed number of iterations, so it traces into one straight program under `jit` and
 * differentiates like any other ops.
 */
import * as mg from "../../mod.ts";
import type { Tensor } from "../../mod.ts";
import { checkNumber } from "../../core/validate.ts";

/** Options of `conjugateGradient`. */
export interface ConjugateGradientOptions {
  /** Iterations (default 10: exact for systems of up to 10 unknowns, in exact arithmetic). */
  iterations?: number;
}

/**
 * x ≈ A⁻¹b for a symmetric positive-definite A given as `matvec` (vectors [n]). A residual that
 * reaches zero stops changing x (its step is taken as 0), so extra iterations are harmless.
 *
 * @example
 * ```ts
 * import { matmul, tensor, reshape } from "@metagrad/metagrad";
 * import { conjugateGradient } from "@metagrad/metagrad/algorithms";
 * const a = tensor([[4, 1], [1, 3]]);
 * const x = conjugateGradient((v) => reshape(matmul(a, reshape(v, [2, 1])), [2]), tensor([1, 2]));
 * // x ≈ [1/11, 7/11]
 * ```
 */
export function conjugateGradient(
  matvec: (v: Tensor) => Tensor,
  b: Tensor,
  opts: ConjugateGradientOptions = {},
): Tensor {
  const iterations = checkNumber(opts.iterations ?? 10, "iterations", "conjugateGradient", {
    min: 1,
    integer: true,
  });
  if (b.ndim !== 1) {
    throw new RangeError(`conjugateGradient: b must be a vector [n], got [${b.shape}]`);
  }
  let x = mg.zerosLike(b);
  let r = b, p = b;
  let rr = mg.sum(mg.square(r));
  for (let i = 0; i < iterations; i++) {
    const ap = matvec(p);
    const pap = mg.sum(mg.mul(p, ap));
    // a converged residual (rr = 0, so p·Ap = 0) takes no step instead of 0/0
    const alpha = mg.where(mg.greater(pap, 0), mg.div(rr, mg.maximum(pap, 1e-30)), 0);
    x = mg.add(x, mg.mul(p, alpha));
    r = mg.sub(r, mg.mul(ap, alpha));
    const rrNext = mg.sum(mg.square(r));
    const beta = mg.where(mg.greater(rr, 0), mg.div(rrNext, mg.maximum(rr, 1e-30)), 0);
    p = mg.add(r, mg.mul(p, beta));
    rr = rrNext;
  }
  return x;
}
