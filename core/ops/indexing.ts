/** Gather, scatter-add, one-hot and scans. */
import { bind } from "../primitive.ts";
import { disposeOnThrow } from "../memory.ts";
import { cumsum as cumsumPrim } from "../primitives/cumsum.ts";
import { argsort as argsortPrim } from "../primitives/argsort.ts";
import { scatterAdd as scatterPrim, take as takePrim } from "../primitives/gather.ts";
import { fmtShape, normAxis } from "../shape.ts";
import type { DType } from "../dtype.ts";
import type { Tensor } from "../tensor.ts";
import { arange } from "./creation.ts";
import { add, cast, clip, equal, less, where } from "./math.ts";
import { sum } from "./reduce.ts";
import { expandDims, moveAxis, reshape } from "./shape.ts";

/**
 * Indices into an axis of length n as `take` reads them: negative ones count from the end,
 * and out-of-range ones clamp to the nearest end (JAX's gather in "clip" mode).
 */
function clampIndices(indices: Tensor, n: number, op: string): Tensor {
  const idx = indexTensor(indices, op);
  return clip(where(less(idx, 0), add(idx, n), idx), 0, n - 1);
}

function indexTensor(idx: Tensor, op: string): Tensor {
  if (idx.dtype === "f32" || idx.dtype === "bool") {
    throw new TypeError(`${op}: indices must be integers, got ${idx.dtype}`);
  }
  return cast(idx, "i32");
}

/**
 * Gather along an axis: the result has x's shape with that axis replaced by the indices'
 * shape; without an axis, from the flattened x (as NumPy's and JAX's `take`). Negative indices
 * count from the end; out-of-range indices are clamped.
 *
 * @example
 * ```ts
 * import { take, tensor } from "@metagrad/metagrad";
 * const table = tensor([[1, 2], [3, 4], [5, 6]]);
 * take(table, tensor([2, 0], { dtype: "i32" }), 0); // [[5, 6], [1, 2]]
 * ```
 */
export function take(x: Tensor, indices: Tensor, axis?: number): Tensor {
  if (axis === undefined) return take(reshape(x, [x.size]), indices, 0); // NumPy: flattened
  const a = normAxis(axis, x.ndim, "take");
  return disposeOnThrow(() => bind(takePrim, [x, indexTensor(indices, "take")], { axis: a }));
}

/**
 * The transpose of `take`: sum `updates` into a zero tensor whose `axis` has `size`
 * entries, at the given indices (repeated indices accumulate).
 *
 * @example
 * ```ts
 * import { scatterAdd, tensor } from "@metagrad/metagrad";
 * scatterAdd(tensor([1, 2, 3]), tensor([0, 2, 0], { dtype: "i32" }), 0, 3); // [4, 0, 2]
 * ```
 */
export function scatterAdd(updates: Tensor, indices: Tensor, axis: number, size: number): Tensor {
  const a = normAxis(axis, updates.ndim, "scatterAdd");
  return disposeOnThrow(() =>
    bind(scatterPrim, [updates, indexTensor(indices, "scatterAdd")], { axis: a, size })
  );
}

/**
 * Pick one element per row: out[..., i] = x[..., i, idx[..., i]] along `axis`, which is
 * dropped (the log-probability of taken actions, the logit of the true class). `indices` has
 * x's shape without `axis`. For NumPy's contract (indices of x's rank, axis kept) use
 * `takeAlongAxis`.
 *
 * @example
 * ```ts
 * import { pickAlongAxis, tensor } from "@metagrad/metagrad";
 * pickAlongAxis(tensor([[1, 2], [3, 4]]), tensor([1, 0], { dtype: "i32" })); // [2, 3]
 * ```
 */
export function pickAlongAxis(x: Tensor, indices: Tensor, axis = -1): Tensor {
  const a = normAxis(axis, x.ndim, "pickAlongAxis");
  const expected = x.shape.filter((_, i) => i !== a);
  if (indices.ndim !== expected.length || indices.shape.some((d, i) => d !== expected[i])) {
    throw new RangeError(
      `pickAlongAxis: indices ${fmtShape(indices.shape)} must have x's shape ${
        fmtShape(x.shape)
      } without axis ${a}${
        indices.ndim === x.ndim
          ? "; for indices of x's rank (NumPy's take_along_axis) use takeAlongAxis"
          : ""
      }`,
    );
  }
  return disposeOnThrow(() => {
    // select, not multiply, by the one-hot mask: 0 · ±∞ would make every row holding an
    // infinity (a masked logit) NaN
    const hot = oneHot(clampIndices(indices, x.shape[a], "pickAlongAxis"), x.shape[a], {
      axis: a,
      dtype: "bool",
    });
    return sum(where(hot, x, 0), a);
  });
}

/**
 * NumPy's `take_along_axis` (and JAX's): `indices` has x's rank; along `axis` it holds any
 * number of positions per row, and the other axes broadcast against x's. The result has the
 * broadcast shape with indices' length along `axis`: out[..., j, ...] = x[..., idx[..., j,
 * ...], ...]. Negative indices count from the end and out-of-range ones clamp, as in `take`.
 * `pickAlongAxis` takes one index per row without the axis.
 *
 * @example
 * ```ts
 * import { takeAlongAxis, tensor } from "@metagrad/metagrad";
 * const logp = tensor([[-1, -2, -3], [-4, -5, -6]]);
 * takeAlongAxis(logp, tensor([[2], [0]], { dtype: "i32" }), -1); // [[-3], [-4]]
 * takeAlongAxis(logp, tensor([[0, 0, 1]], { dtype: "i32" }), 1); // [[-1, -1, -2], [-4, -4, -5]]
 * ```
 */
export function takeAlongAxis(x: Tensor, indices: Tensor, axis = -1): Tensor {
  const a = normAxis(axis, x.ndim, "takeAlongAxis");
  if (indices.ndim !== x.ndim) {
    throw new RangeError(
      `takeAlongAxis: indices ${fmtShape(indices.shape)} must have x's rank ${x.ndim} (x is ${
        fmtShape(x.shape)
      }), as in NumPy; add the axis with expandDims(indices, ${a}), or use pickAlongAxis for ` +
        `one index per row without it`,
    );
  }
  const n = x.shape[a];
  return disposeOnThrow(() => {
    // select with a one-hot axis inserted after `axis`
    const idx = clampIndices(indices, n, "takeAlongAxis");
    const hot = oneHot(idx, n, { axis: a + 1, dtype: "bool" });
    return sum(where(hot, expandDims(x, a), 0), a + 1); // a select: 0 · ∞ would be NaN
  });
}

/** Options of `oneHot`. */
export interface OneHotOptions {
  /** Where the new axis goes (default: last). */
  axis?: number;
  /** Output dtype (default f32). */
  dtype?: DType;
}

/**
 * One-hot encoding of integer labels into a new axis of size `depth` (out-of-range labels
 * give all zeros).
 *
 * @example
 * ```ts
 * import { oneHot, tensor } from "@metagrad/metagrad";
 * oneHot(tensor([0, 2], { dtype: "i32" }), 3); // [[1, 0, 0], [0, 0, 1]]
 * ```
 */
export function oneHot(labels: Tensor, depth: number, opts: OneHotOptions = {}): Tensor {
  if (!Number.isInteger(depth) || depth < 1) {
    throw new RangeError(`oneHot: depth must be a positive integer, got ${depth}`);
  }
  const idx = indexTensor(labels, "oneHot");
  const a = normAxis(opts.axis ?? -1, idx.ndim + 1, "oneHot");
  const classShape = idx.shape.map(() => 1);
  classShape.splice(a, 0, depth);
  const classes = reshape(arange(0, depth, 1, { backend: labels.backend }), classShape);
  return cast(equal(expandDims(idx, a), classes), opts.dtype ?? "f32");
}

/**
 * Inclusive cumulative sum along an axis — without one, of the flattened tensor, as NumPy's and
 * JAX's `cumsum`; `reverse` sums from the end (suffix sums, as discounted returns need).
 *
 * @example
 * ```ts
 * import { cumsum, tensor } from "@metagrad/metagrad";
 * cumsum(tensor([1, 2, 3])); // [1, 3, 6]
 * cumsum(tensor([1, 2, 3]), 0, true); // [6, 5, 3]
 * ```
 */
export function cumsum(x: Tensor, axis?: number, reverse = false): Tensor {
  if (axis === undefined) return cumsum(reshape(x, [x.size]), 0, reverse); // NumPy: flattened
  const a = normAxis(axis, x.ndim, "cumsum");
  const src = x.dtype === "bool" ? cast(x, "i32") : x;
  return bind(cumsumPrim, [src], { axis: a, reverse });
}

/**
 * The indices (i32) that sort x along an axis (default the last), ascending and stable: equal
 * values keep their order, NaN sorts last — NumPy's `argsort(kind="stable")`.
 *
 * @example
 * ```ts
 * import { argsort, tensor } from "@metagrad/metagrad";
 * argsort(tensor([3, 1, 2, 1])); // [1, 3, 2, 0]
 * ```
 */
export function argsort(x: Tensor, axis = -1): Tensor {
  const a = normAxis(axis, x.ndim, "argsort");
  if (a === x.ndim - 1) return bind(argsortPrim, [x], {});
  return moveAxis(bind(argsortPrim, [moveAxis(x, a, -1)], {}), -1, a);
}

/**
 * x sorted along an axis (default the last), ascending (NaN last); differentiable, as a gather.
 *
 * @example
 * ```ts
 * import { sort, tensor } from "@metagrad/metagrad";
 * sort(tensor([[3, 1, 2], [0, -1, 5]])); // [[1, 2, 3], [-1, 0, 5]]
 * ```
 */
export function sort(x: Tensor, axis = -1): Tensor {
  return takeAlongAxis(x, argsort(x, axis), axis);
}
