/** Reductions over any set of axes, and the stable compositions built on them. */
import { bind } from "../primitive.ts";
import { reduce as reducePrim, type ReduceOp } from "../primitives/reduce.ts";
import { normAxes, normAxis, sizeOf } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import { add, cast, div, exp, log, sqrt, square, sub } from "./math.ts";
import { reshape } from "./shape.ts";

/** Axes to reduce: one axis, a list, or all when omitted. */
export type Axes = number | readonly number[] | undefined;

function keptShape(shape: readonly number[], axes: number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

function reduceOp(op: ReduceOp, x: Tensor, axes: Axes, keepdims: boolean): Tensor {
  const ax = normAxes(axes, x.ndim, op);
  let src = x;
  if ((op === "sum" || op === "prod") && x.dtype === "bool") src = cast(x, "i32");
  const out = bind(reducePrim, [src], { op, axes: ax });
  return keepdims ? reshape(out, keptShape(x.shape, ax)) : out;
}

/**
 * Sum over axes (all by default). Bools are counted as i32.
 *
 * @example
 * ```ts
 * import { sum, tensor } from "@metagrad/metagrad";
 * sum(tensor([[1, 2], [3, 4]]), 0); // [4, 6]
 * ```
 */
export function sum(x: Tensor, axes?: Axes, keepdims = false): Tensor {
  return reduceOp("sum", x, axes, keepdims);
}

/**
 * Product over axes. @example
 * ```ts
 * import { prod, tensor } from "@metagrad/metagrad";
 * prod(tensor([1, 2, 3])); // 6
 * ```
 */
export function prod(x: Tensor, axes?: Axes, keepdims = false): Tensor {
  return reduceOp("prod", x, axes, keepdims);
}

/**
 * Maximum over axes (NaN propagates). @example
 * ```ts
 * import { max, tensor } from "@metagrad/metagrad";
 * max(tensor([[1, 5], [3, 2]]), 1); // [5, 3]
 * ```
 */
export function max(x: Tensor, axes?: Axes, keepdims = false): Tensor {
  return reduceOp("max", x, axes, keepdims);
}

/**
 * Minimum over axes (NaN propagates). @example
 * ```ts
 * import { min, tensor } from "@metagrad/metagrad";
 * min(tensor([[1, 5], [3, 2]]), 1); // [1, 2]
 * ```
 */
export function min(x: Tensor, axes?: Axes, keepdims = false): Tensor {
  return reduceOp("min", x, axes, keepdims);
}

/**
 * True where any element along the axes is true. @example
 * ```ts
 * import { any, tensor } from "@metagrad/metagrad";
 * any(tensor([false, true])); // true
 * ```
 */
export function any(x: Tensor, axes?: Axes, keepdims = false): Tensor {
  return reduceOp("max", cast(x, "bool"), axes, keepdims);
}

/**
 * True where all elements along the axes are true. @example
 * ```ts
 * import { all, tensor } from "@metagrad/metagrad";
 * all(tensor([false, true])); // false
 * ```
 */
export function all(x: Tensor, axes?: Axes, keepdims = false): Tensor {
  return reduceOp("min", cast(x, "bool"), axes, keepdims);
}

function argReduce(
  op: "argmax" | "argmin",
  x: Tensor,
  axis: number | undefined,
  keepdims: boolean,
): Tensor {
  if (axis === undefined) {
    const flat = reshape(x, [x.size]);
    const out = bind(reducePrim, [flat], { op, axes: [0] });
    return keepdims ? reshape(out, x.shape.map(() => 1)) : out;
  }
  const a = normAxis(axis, x.ndim, op);
  const out = bind(reducePrim, [x], { op, axes: [a] });
  return keepdims ? reshape(out, keptShape(x.shape, [a])) : out;
}

/**
 * i32 index of the first maximum along an axis (of the flattened tensor when omitted).
 *
 * @example
 * ```ts
 * import { argmax, tensor } from "@metagrad/metagrad";
 * argmax(tensor([[1, 9, 3], [7, 2, 7]]), 1); // [1, 0]
 * ```
 */
export function argmax(x: Tensor, axis?: number, keepdims = false): Tensor {
  return argReduce("argmax", x, axis, keepdims);
}

/**
 * i32 index of the first minimum along an axis. @example
 * ```ts
 * import { argmin, tensor } from "@metagrad/metagrad";
 * argmin(tensor([3, 1, 2])); // 1
 * ```
 */
export function argmin(x: Tensor, axis?: number, keepdims = false): Tensor {
  return argReduce("argmin", x, axis, keepdims);
}

function countOf(x: Tensor, axes: Axes): number {
  return sizeOf(normAxes(axes, x.ndim, "mean").map((a) => x.shape[a]));
}

/**
 * Arithmetic mean over axes (f32). @example
 * ```ts
 * import { mean, tensor } from "@metagrad/metagrad";
 * mean(tensor([1, 2, 3, 4])); // 2.5
 * ```
 */
export function mean(x: Tensor, axes?: Axes, keepdims = false): Tensor {
  return div(sum(cast(x, "f32"), axes, keepdims), countOf(x, axes));
}

/**
 * Variance over axes with `ddof` delta degrees of freedom (two-pass, stable).
 *
 * @example
 * ```ts
 * import { variance, tensor } from "@metagrad/metagrad";
 * variance(tensor([1, 2, 3, 4])); // 1.25
 * ```
 */
export function variance(x: Tensor, axes?: Axes, keepdims = false, ddof = 0): Tensor {
  const xf = cast(x, "f32");
  const centred = sub(xf, mean(xf, axes, true));
  return div(sum(square(centred), axes, keepdims), Math.max(0, countOf(x, axes) - ddof));
}

/**
 * Standard deviation over axes. @example
 * ```ts
 * import { std, tensor } from "@metagrad/metagrad";
 * std(tensor([1, 2, 3, 4]));
 * ```
 */
export function std(x: Tensor, axes?: Axes, keepdims = false, ddof = 0): Tensor {
  return sqrt(variance(x, axes, keepdims, ddof));
}

/**
 * log Σ exp(x) over axes, computed stably (max-shifted).
 *
 * @example
 * ```ts
 * import { logsumexp, tensor } from "@metagrad/metagrad";
 * logsumexp(tensor([1000, 1000])); // 1000.693...
 * ```
 */
export function logsumexp(x: Tensor, axes?: Axes, keepdims = false): Tensor {
  const m = max(x, axes, true);
  const s = log(sum(exp(sub(x, m)), axes, true));
  const r = add(s, m);
  return keepdims
    ? r
    : reshape(r, x.shape.filter((_, i) => !normAxes(axes, x.ndim, "logsumexp").includes(i)));
}

/**
 * Softmax along an axis (last by default), max-shifted for stability.
 *
 * @example
 * ```ts
 * import { softmax, tensor } from "@metagrad/metagrad";
 * softmax(tensor([1, 2, 3]));
 * ```
 */
export function softmax(x: Tensor, axis = -1): Tensor {
  const a = normAxis(axis, x.ndim, "softmax");
  const e = exp(sub(x, max(x, a, true)));
  return div(e, sum(e, a, true));
}

/**
 * log softmax along an axis: x − logsumexp(x).
 *
 * @example
 * ```ts
 * import { logSoftmax, tensor } from "@metagrad/metagrad";
 * logSoftmax(tensor([1, 2, 3]));
 * ```
 */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  const a = normAxis(axis, x.ndim, "logSoftmax");
  return sub(x, logsumexp(x, a, true));
}

/**
 * Sum `g` down to `shape` over the axes NumPy broadcasting added or stretched: the adjoint
 * of broadcasting, used by every gradient rule of a broadcasting op.
 *
 * @example
 * ```ts
 * import { sumToShape, ones } from "@metagrad/metagrad";
 * sumToShape(ones([4, 2, 3]), [2, 1]).shape; // [2, 1], each entry 12
 * ```
 */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.ndim - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.ndim; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  const s = axes.length ? sum(g, axes, true) : g;
  return reshape(s, shape);
}
