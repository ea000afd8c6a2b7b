/** Shape manipulation: views, permutations, slicing, joining and padding. */
import { bind } from "../primitive.ts";
import { broadcastTo as broadcastPrim } from "../primitives/broadcast.ts";
import { concat as concatPrim } from "../primitives/concat.ts";
import { pad as padPrim } from "../primitives/pad.ts";
import { reshape as reshapePrim } from "../primitives/reshape.ts";
import { slice as slicePrim } from "../primitives/slice.ts";
import { transpose as transposePrim } from "../primitives/transpose.ts";
import { fmtShape, normAxes, normAxis, shapesEqual, sizeOf } from "../shape.ts";
import { brief } from "../validate.ts";
import type { Tensor } from "../tensor.ts";

/**
 * Same values in a new shape; one dimension may be −1 (inferred). No copy.
 *
 * @example
 * ```ts
 * import { reshape, arange } from "@metagrad/metagrad";
 * reshape(arange(6), [2, -1]); // [[0, 1, 2], [3, 4, 5]]
 * reshape(arange(6), 6); // a number is a 1-D shape
 * ```
 */
export function reshape(x: Tensor, shape: readonly number[] | number): Tensor {
  if (typeof shape === "number") shape = [shape]; // reshape(x, 6), as NumPy takes it
  if (!Array.isArray(shape)) {
    throw new TypeError(
      `reshape: shape must be a number or an array of numbers, got ${typeof shape}`,
    );
  }
  const s = [...shape];
  const inferred = s.filter((d) => d === -1).length;
  if (inferred > 1) {
    throw new RangeError(`reshape: only one dimension may be -1, got ${fmtShape(shape)}`);
  }
  if (inferred === 1) {
    const known = sizeOf(s.filter((d) => d !== -1));
    if (known === 0 || x.size % known !== 0) {
      throw new RangeError(
        `reshape: cannot reshape ${fmtShape(x.shape)} (${x.size} elements) to ${fmtShape(shape)}`,
      );
    }
    s[s.indexOf(-1)] = x.size / known;
  }
  for (const d of s) {
    if (!Number.isInteger(d) || d < 0) {
      throw new RangeError(`reshape: invalid shape ${fmtShape(shape)}`);
    }
  }
  if (shapesEqual(s, x.shape)) return x;
  return bind(reshapePrim, [x], { shape: s });
}

/**
 * Permute axes (reverse them when `perm` is omitted).
 *
 * @example
 * ```ts
 * import { transpose, zeros } from "@metagrad/metagrad";
 * transpose(zeros([2, 3, 4]), [2, 0, 1]).shape; // [4, 2, 3]
 * ```
 */
export function transpose(x: Tensor, perm?: readonly number[]): Tensor {
  const p = perm
    ? perm.map((a) => normAxis(a, x.ndim, "transpose"))
    : x.shape.map((_, i) => x.ndim - 1 - i);
  if (p.every((a, i) => a === i)) return x;
  return bind(transposePrim, [x], { perm: p });
}

/**
 * Exchange two axes. @example
 * ```ts
 * import { swapAxes, zeros } from "@metagrad/metagrad";
 * swapAxes(zeros([2, 3]), 0, 1).shape; // [3, 2]
 * ```
 */
export function swapAxes(x: Tensor, a: number, b: number): Tensor {
  const p = x.shape.map((_, i) => i);
  const i = normAxis(a, x.ndim, "swapAxes"), j = normAxis(b, x.ndim, "swapAxes");
  [p[i], p[j]] = [p[j], p[i]];
  return transpose(x, p);
}

/**
 * Move one axis to a new position. @example
 * ```ts
 * import { moveAxis, zeros } from "@metagrad/metagrad";
 * moveAxis(zeros([2, 3, 4]), 0, -1).shape; // [3, 4, 2]
 * ```
 */
export function moveAxis(x: Tensor, from: number, to: number): Tensor {
  const f = normAxis(from, x.ndim, "moveAxis"), t = normAxis(to, x.ndim, "moveAxis");
  const p = x.shape.map((_, i) => i).filter((i) => i !== f);
  p.splice(t, 0, f);
  return transpose(x, p);
}

/**
 * Broadcast to a shape (NumPy rules). @example
 * ```ts
 * import { broadcastTo, tensor } from "@metagrad/metagrad";
 * broadcastTo(tensor([1, 2]), [3, 2]);
 * ```
 */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  if (shapesEqual(shape, x.shape)) return x;
  return bind(broadcastPrim, [x], { shape: [...shape] });
}

/**
 * Insert a size-1 axis at `axis`. @example
 * ```ts
 * import { expandDims, zeros } from "@metagrad/metagrad";
 * expandDims(zeros([3]), 0).shape; // [1, 3]
 * ```
 */
export function expandDims(x: Tensor, axis: number): Tensor {
  const a = normAxis(axis, x.ndim + 1, "expandDims");
  const s = [...x.shape];
  s.splice(a, 0, 1);
  return reshape(x, s);
}

/**
 * Remove size-1 axes (all of them, or those listed). @example
 * ```ts
 * import { squeeze, zeros } from "@metagrad/metagrad";
 * squeeze(zeros([1, 3, 1])).shape; // [3]
 * ```
 */
export function squeeze(x: Tensor, axes?: number | readonly number[]): Tensor {
  const ax = axes === undefined
    ? x.shape.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0)
    : normAxes(axes, x.ndim, "squeeze");
  for (const a of ax) {
    if (x.shape[a] !== 1) {
      throw new RangeError(
        `squeeze: axis ${a} of ${fmtShape(x.shape)} has size ${x.shape[a]}, not 1`,
      );
    }
  }
  return reshape(x, x.shape.filter((_, i) => !ax.includes(i)));
}

/** One axis of a slice: [start, stop, step] with NumPy semantics; null/undefined = default. */
export type SliceSpec =
  | number
  | null
  | readonly [number | null | undefined, (number | null)?, (number | null)?];

/**
 * NumPy-style basic slicing, one spec per leading axis: a number picks an index (and drops
 * the axis), `[start, stop, step]` slices (negative values count from the end, a negative
 * step reverses), `null` keeps the whole axis.
 *
 * @example
 * ```ts
 * import { slice, arange, reshape } from "@metagrad/metagrad";
 * const x = reshape(arange(12), [3, 4]);
 * slice(x, [1, [null, null, -1]]); // row 1 reversed: [7, 6, 5, 4]
 * ```
 */
export function slice(x: Tensor, specs: readonly SliceSpec[]): Tensor {
  if (specs.length > x.ndim) {
    throw new RangeError(`slice: ${specs.length} specs for a tensor of rank ${x.ndim}`);
  }
  const start: number[] = [], stop: number[] = [], step: number[] = [];
  const drop: number[] = [];
  x.shape.forEach((n, i) => {
    const spec = specs[i] ?? null;
    if (typeof spec === "number") {
      if (!Number.isInteger(spec) || spec < -n || spec >= n) {
        throw new RangeError(
          `slice: index ${spec} out of range for axis ${i} of size ${n} in ${fmtShape(x.shape)}`,
        );
      }
      const s = spec < 0 ? spec + n : spec;
      start.push(s), stop.push(s + 1), step.push(1), drop.push(i);
      return;
    }
    const [a, b, c] = spec === null ? [null, null, null] : spec;
    const st = c ?? 1;
    if (!Number.isInteger(st) || st === 0) {
      throw new RangeError(`slice: step on axis ${i} must be a non-zero integer`);
    }
    const norm = (v: number | null | undefined, dflt: number, lo: number, hi: number) => {
      if (v === null || v === undefined) return dflt;
      const w = v < 0 ? v + n : v;
      return Math.min(Math.max(w, lo), hi);
    };
    if (st > 0) {
      start.push(norm(a, 0, 0, n)), stop.push(norm(b, n, 0, n));
    } else {
      start.push(norm(a, n - 1, -1, n - 1)), stop.push(norm(b, -1, -1, n - 1));
    }
    step.push(st);
  });
  const isIdentity = step.every((s, i) => s === 1 && start[i] === 0 && stop[i] === x.shape[i]);
  const sliced = isIdentity ? x : bind(slicePrim, [x], { start, stop, step });
  return drop.length ? reshape(sliced, sliced.shape.filter((_, i) => !drop.includes(i))) : sliced;
}

/**
 * Reverse the order along axes. @example
 * ```ts
 * import { flip, arange } from "@metagrad/metagrad";
 * flip(arange(3), 0); // [2, 1, 0]
 * ```
 */
export function flip(x: Tensor, axes?: number | readonly number[]): Tensor {
  const ax = normAxes(axes, x.ndim, "flip");
  return slice(x, x.shape.map((_, i) => (ax.includes(i) ? [null, null, -1] as const : null)));
}

/**
 * Join tensors along an existing axis. @example
 * ```ts
 * import { concat, ones, zeros } from "@metagrad/metagrad";
 * concat([zeros([2, 1]), ones([2, 3])], 1).shape; // [2, 4]
 * ```
 */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new RangeError("concat: needs at least one tensor");
  const a = normAxis(axis, xs[0].ndim, "concat");
  if (xs.length === 1) return xs[0];
  return bind(concatPrim, xs, { axis: a });
}

/**
 * Join tensors of equal shape along a new axis. @example
 * ```ts
 * import { stack, zeros } from "@metagrad/metagrad";
 * stack([zeros([3]), zeros([3])]).shape; // [2, 3]
 * ```
 */
export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new RangeError("stack: needs at least one tensor");
  const a = normAxis(axis, xs[0].ndim + 1, "stack");
  for (const x of xs) {
    if (!shapesEqual(x.shape, xs[0].shape)) {
      throw new RangeError(`stack: shapes differ: ${xs.map((t) => fmtShape(t.shape)).join(", ")}`);
    }
  }
  return concat(xs.map((x) => expandDims(x, a)), a);
}

/**
 * Split into pieces along an axis, as NumPy's `split`: a count of equal pieces, or the indices
 * at which to cut (`[2, 5]` gives `x[:2]`, `x[2:5]`, `x[5:]`; indices past the end give empty
 * pieces, as in NumPy).
 *
 * @example
 * ```ts
 * import { split, arange } from "@metagrad/metagrad";
 * const [a, b] = split(arange(6), 2); // [0,1,2] and [3,4,5]
 * const [c, d, e] = split(arange(6), [1, 4]); // [0], [1,2,3], [4,5]
 * ```
 */
export function split(x: Tensor, sections: number | readonly number[], axis = 0): Tensor[] {
  const a = normAxis(axis, x.ndim, "split");
  const n = x.shape[a];
  let cuts: number[];
  if (typeof sections === "number") {
    if (!Number.isInteger(sections) || sections < 1 || n % sections !== 0) {
      throw new RangeError(
        `split: axis ${a} of size ${n} cannot be split into ${sections} equal pieces`,
      );
    }
    cuts = Array.from({ length: sections - 1 }, (_, i) => ((i + 1) * n) / sections);
  } else if (Array.isArray(sections)) {
    if (sections.some((c) => !Number.isInteger(c))) {
      throw new RangeError(
        `split: indices must be integers, got ${
          brief(JSON.stringify(sections))
        } (a list holds the ` +
          `positions to cut at, as in NumPy, not the pieces' sizes)`,
      );
    }
    cuts = sections.map((c) => Math.min(Math.max(c < 0 ? c + n : c, 0), n));
  } else {
    throw new TypeError(`split: sections must be a number or an array of indices`);
  }
  const bounds = [0, ...cuts, n];
  return bounds.slice(0, -1).map((start, i) => {
    const spec: SliceSpec[] = x.shape.map(() => null);
    spec[a] = [start, Math.max(start, bounds[i + 1])];
    return slice(x, spec);
  });
}

/** Padding widths: one [before, after] pair per axis, or one number for all. */
export type PadWidths = number | readonly (readonly [number, number])[];

/**
 * Pad with a constant. @example
 * ```ts
 * import { pad, ones } from "@metagrad/metagrad";
 * pad(ones([2, 2]), [[1, 1], [0, 2]]).shape; // [4, 4]
 * ```
 */
export function pad(x: Tensor, widths: PadWidths, value = 0): Tensor {
  const w = typeof widths === "number" ? x.shape.map(() => [widths, widths] as const) : widths;
  if (w.length !== x.ndim) {
    throw new RangeError(`pad: ${w.length} width pairs for a tensor of rank ${x.ndim}`);
  }
  return bind(padPrim, [x], {
    lo: w.map((p) => p[0]),
    hi: w.map((p) => p[1]),
    interior: x.shape.map(() => 0),
    value,
  });
}

/**
 * Repeat the whole tensor `reps` times along each axis (NumPy's tile).
 *
 * @example
 * ```ts
 * import { tile, tensor } from "@metagrad/metagrad";
 * tile(tensor([1, 2]), [2]); // [1, 2, 1, 2]
 * ```
 */
export function tile(x: Tensor, reps: readonly number[]): Tensor {
  const r = Math.max(reps.length, x.ndim);
  const shape = [...new Array(r - x.ndim).fill(1), ...x.shape];
  const rr = [...new Array(r - reps.length).fill(1), ...reps];
  const expanded = reshape(x, shape.flatMap((d) => [1, d]));
  const b = broadcastTo(expanded, shape.flatMap((d, i) => [rr[i], d]));
  return reshape(b, shape.map((d, i) => d * rr[i]));
}

/**
 * Repeat each element `repeats` times along an axis (NumPy's repeat: without an axis, of the
 * flattened tensor).
 *
 * @example
 * ```ts
 * import { repeat, tensor } from "@metagrad/metagrad";
 * repeat(tensor([1, 2]), 2, 0); // [1, 1, 2, 2]
 * repeat(tensor([[1, 2], [3, 4]]), 2); // [1, 1, 2, 2, 3, 3, 4, 4]
 * ```
 */
export function repeat(x: Tensor, repeats: number, axis?: number): Tensor {
  if (!Number.isInteger(repeats) || repeats < 0) {
    throw new RangeError(`repeat: repeats must be an integer ≥ 0, got ${repeats}`);
  }
  if (axis === undefined) return repeat(reshape(x, [x.size]), repeats, 0);
  const a = normAxis(axis, x.ndim, "repeat");
  const e = expandDims(x, a + 1);
  const target = [...e.shape];
  target[a + 1] = repeats;
  const shape = [...x.shape];
  shape[a] *= repeats;
  return reshape(broadcastTo(e, target), shape);
}
