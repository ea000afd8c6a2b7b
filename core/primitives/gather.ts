/**
 * take(x, indices, {axis}): out[p, j..., q] = x[p, indices[j...], q]. Indices are i32;
 * negative ones count from the end and out-of-range ones are clamped (a kernel cannot
 * raise, and a readback to check would stall the GPU).
 */
import { fmtShape, sizeOf } from "../shape.ts";
import { runSimple, runSimpleInParts } from "../backend/webgpu/kernels/simple.ts";
import { param } from "../backend/webgpu/wgsl.ts";
import type { Primitive } from "../primitive.ts";
import { bind } from "../primitive.ts";
import type { Tensor } from "../tensor.ts";
import { arange } from "../ops/creation.ts";
import { add, less, maximum, minimum, where } from "../ops/math.ts";
import { moveAxis, reshape, transpose } from "../ops/shape.ts";
import { materialize } from "./batching.ts";

export function clampIndex(i: number, size: number): number {
  const j = i < 0 ? i + size : i;
  return Math.min(Math.max(j, 0), size - 1);
}

export const WGSL_CLAMP_INDEX = `
fn clamp_index(i: i32, size: u32) -> u32 {
  let j = select(i, i + i32(size), i < 0);
  return u32(clamp(j, 0, i32(size) - 1));
}`;

export const take: Primitive<{ axis: number }> = {
  name: "take",
  batch([x, idx], [bx, bi], { axis }, size) {
    if (!bi) return bind(take, [x, idx], { axis: axis + 1 });
    // Shared operand, per-example indices: one take gathers every example's rows straight from
    // x (out: [...pre, B, ...ishape, ...post]) — no B copies of x (a vmapped episode sampler
    // would otherwise broadcast a whole dataset per task).
    if (!bx) return moveAxis(bind(take, [x, idx], { axis }), axis, 0);
    // Per-example indices: fold the vmap axis into the gathered axis (offsets b·n).
    const xb = materialize(x, bx, size); // [B, ...pre, n, ...post]
    const n = xb.shape[axis + 1];
    const rest = [...xb.shape.slice(1, axis + 1), ...xb.shape.slice(axis + 2)];
    const flat = reshape(moveAxis(xb, axis + 1, 1), [size * n, ...rest]);
    const got = bind(take, [flat, batchOffsets(idx, n, size)], { axis: 0 }); // [B, ...ishape, ...pre, ...post]
    const k = idx.ndim - 1, pre = axis;
    const perm = [
      0,
      ...range(1 + k, 1 + k + pre),
      ...range(1, 1 + k),
      ...range(1 + k + pre, got.ndim),
    ];
    return transpose(got, perm);
  },
  vjp: (
    g,
    [x, idx],
    _out,
    { axis },
  ) => [bind(scatterAdd, [g, idx], { axis, size: x.shape[axis] }), null],
  abstractEval([x, idx], { axis }) {
    if (idx.dtype !== "i32") throw new TypeError(`take: indices must be i32, got ${idx.dtype}`);
    if (axis < 0 || axis >= x.shape.length) {
      throw new RangeError(`take: axis ${axis} out of range for ${fmtShape(x.shape)}`);
    }
    if (x.shape[axis] === 0) {
      throw new RangeError(`take: cannot index axis ${axis} of size 0 in ${fmtShape(x.shape)}`);
    }
    return {
      shape: [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)],
      dtype: x.dtype,
    };
  },
  reference([x, idx], [a], { axis }, out) {
    const pre = sizeOf(a.shape.slice(0, axis)),
      size = a.shape[axis],
      post = sizeOf(a.shape.slice(axis + 1));
    const n = idx.length;
    const res = new Float64Array(sizeOf(out.shape));
    for (let p = 0; p < pre; p++) {
      for (let j = 0; j < n; j++) {
        const src = (p * size + clampIndex(idx[j], size)) * post;
        res.set(x.subarray(src, src + post), (p * n + j) * post);
      }
    }
    return res;
  },
  webgpu([x, idx], { axis }, out) {
    const size = x.shape[axis], post = sizeOf(x.shape.slice(axis + 1)), n = sizeOf(idx.shape);
    // params: count, n, size, post
    const body = `
  let q = t % ${param(3)};
  let j = (t / ${param(3)}) % ${param(1)};
  let p = t / (${param(3)} * ${param(1)});
  out[t] = in0((p * ${param(2)} + clamp_index(in1(j), ${param(2)})) * ${param(3)} + q);`;
    runSimple(
      "take",
      body,
      [sizeOf(out.shape), n, size, post],
      [
        { storage: x.storage, dtype: x.dtype },
        { storage: idx.storage, dtype: "i32" },
      ],
      { storage: out.storage, dtype: out.dtype },
      WGSL_CLAMP_INDEX,
    );
  },
};

/**
 * scatterAdd(updates, indices, {axis, size}): the transpose of take. Out has `size` along
 * `axis`; out[p, i, q] = Σ_{j: clamp(indices[j]) = i} updates[p, j, q]. Each output element
 * sums its matches in index order, so results are deterministic (no float atomics).
 */
export const scatterAdd: Primitive<{ axis: number; size: number }> = {
  name: "scatterAdd",
  batch([upd, idx], [bu, bi], { axis, size }, batchSize) {
    if (!bi) return bind(scatterAdd, [upd, idx], { axis: axis + 1, size });
    // Per-example indices: fold the vmap axis into the target axis (offsets b·size).
    const ub = materialize(upd, bu, batchSize); // [B, ...pre, ...ishape, ...post]
    const k = idx.ndim - 1, pre = axis;
    const perm = [
      0,
      ...range(1 + pre, 1 + pre + k),
      ...range(1, 1 + pre),
      ...range(1 + pre + k, ub.ndim),
    ];
    const moved = transpose(ub, perm); // [B, ...ishape, ...pre, ...post]
    const rest = moved.shape.slice(1 + k);
    const flatUpd = reshape(moved, [-1, ...rest]);
    const flatIdx = reshape(batchOffsets(idx, size, batchSize), [-1]);
    const summed = bind(scatterAdd, [flatUpd, flatIdx], { axis: 0, size: batchSize * size }); // [B·size, ...pre, ...post]
    return moveAxis(reshape(summed, [batchSize, size, ...rest]), 1, 1 + pre);
  },
  vjp: (g, [, idx], _out, { axis }) => [bind(take, [g, idx], { axis }), null],
  abstractEval([upd, idx], { axis, size }) {
    if (idx.dtype !== "i32") {
      throw new TypeError(`scatterAdd: indices must be i32, got ${idx.dtype}`);
    }
    if (upd.dtype === "bool") throw new TypeError("scatterAdd: updates must be numeric, got bool");
    const k = idx.shape.length;
    const mid = upd.shape.slice(axis, axis + k);
    if (axis < 0 || axis + k > upd.shape.length || mid.some((d, i) => d !== idx.shape[i])) {
      throw new RangeError(
        `scatterAdd: updates ${fmtShape(upd.shape)} must have the indices' shape ${
          fmtShape(idx.shape)
        } at axis ${axis}`,
      );
    }
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(`scatterAdd: size must be a positive integer, got ${size}`);
    }
    return {
      shape: [...upd.shape.slice(0, axis), size, ...upd.shape.slice(axis + k)],
      dtype: upd.dtype,
    };
  },
  reference([upd, idx], [u], { axis, size }, out) {
    const k = idx.length;
    const pre = sizeOf(u.shape.slice(0, axis)), post = sizeOf(out.shape.slice(axis + 1));
    const res = new Float64Array(sizeOf(out.shape));
    for (let p = 0; p < pre; p++) {
      for (let j = 0; j < k; j++) {
        const dst = (p * size + clampIndex(idx[j], size)) * post;
        const src = (p * k + j) * post;
        for (let q = 0; q < post; q++) res[dst + q] += upd[src + q];
      }
    }
    if (out.dtype !== "f32") {
      for (let i = 0; i < res.length; i++) {
        res[i] = out.dtype === "u32" ? res[i] >>> 0 : res[i] | 0;
      }
    }
    return res;
  },
  webgpu([upd, idx], { axis, size }, out) {
    const n = sizeOf(idx.shape), post = sizeOf(out.shape.slice(axis + 1));
    const t = out.dtype === "bool" ? "u32" : out.dtype;
    // params: count, n, size, post, then the part of the indices [j0, j1)
    const body = `
  let q = t % ${param(3)};
  let i = (t / ${param(3)}) % ${param(2)};
  let p = t / (${param(3)} * ${param(2)});
  var acc: ${t} = ${t}(0);
  if (${param(4)} > 0u) { acc = out[t]; } // the earlier parts' sum
  for (var j = ${param(4)}; j < ${param(5)}; j = j + 1u) {
    if (clamp_index(in1(j), ${param(2)}) == i) { acc = acc + in0((p * ${param(1)} + j) * ${
      param(3)
    } + q); }
  }
  out[t] = acc;`;
    runSimpleInParts(
      "scatterAdd",
      body,
      [sizeOf(out.shape), n, size, post],
      n,
      [
        { storage: upd.storage, dtype: upd.dtype },
        { storage: idx.storage, dtype: "i32" },
      ],
      { storage: out.storage, dtype: out.dtype },
      WGSL_CLAMP_INDEX,
    );
  },
};

function range(a: number, b: number): number[] {
  return Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);
}

/** Indices [B, ...] normalised as the kernels do (wrap negatives, clamp), plus b·n per example. */
function batchOffsets(idx: Tensor, n: number, size: number): Tensor {
  const wrapped = where(less(idx, 0), add(idx, n), idx);
  const clamped = minimum(maximum(wrapped, 0), n - 1);
  const offsets = reshape(arange(0, size * n, n, { backend: idx.backend }), [
    size,
    ...idx.shape.slice(1).map(() => 1),
  ]);
  return add(clamped, offsets);
}
