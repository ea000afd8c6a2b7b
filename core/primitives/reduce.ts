/**
 * reduce(x, {op, axes}): sum / prod / max / min over any set of axes, argmax / argmin over
 * one axis (i32 index of the first extreme; NaN counts as the extreme, as in NumPy). The
 * reduced axes are removed (keepdims is a reshape in the op layer).
 */
import type { DType } from "../dtype.ts";
import { fmtShape, sizeOf } from "../shape.ts";
import { GpuStorage } from "../backend/webgpu/runtime.ts";
import { type ReduceOp, runReduce } from "../backend/webgpu/kernels/reduce.ts";
import type { Primitive } from "../primitive.ts";
import { roundToDType } from "../dtype.ts";
import * as m from "../ops/math.ts";
import { sum } from "../ops/reduce.ts";
import { broadcastTo, reshape } from "../ops/shape.ts";
import { bind } from "../primitive.ts";

export type { ReduceOp };

export interface ReduceParams {
  op: ReduceOp;
  /** Sorted, distinct, non-negative axes. */
  axes: readonly number[];
}

function isArg(op: ReduceOp): boolean {
  return op === "argmax" || op === "argmin";
}

/** Contiguous runs of the sorted axis list, e.g. [0,1,3] → [[0,2],[3,4]] (half-open). */
function runsOf(axes: readonly number[]): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  for (const a of axes) {
    const last = runs.at(-1);
    if (last && last[1] === a) last[1] = a + 1;
    else runs.push([a, a + 1]);
  }
  return runs;
}

export const reduce: Primitive<ReduceParams> = {
  name: "reduce",
  kind: "reduction",
  batch: ([x], _b, { op, axes }) => bind(reduce, [x], { op, axes: axes.map((a) => a + 1) }),
  vjp(g, [x], out, { op, axes }) {
    if (op === "argmax" || op === "argmin") return [null];
    const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
    const gb = broadcastTo(reshape(g, kept), x.shape);
    if (op === "sum") return [gb];
    const ob = reshape(out, kept);
    if (op === "prod") {
      return [m.where(m.equal(x, 0), 0, m.div(m.mul(gb, ob), m.where(m.equal(x, 0), 1, x)))];
    }
    // max/min: to the elements equal to the extreme, shared evenly among ties
    const hit = m.cast(m.equal(x, ob), "f32");
    return [m.mul(gb, m.div(hit, reshape(sum(hit, [...axes], false), kept)))];
  },
  abstractEval([x], { op, axes }) {
    for (const a of axes) {
      if (a < 0 || a >= x.shape.length) {
        throw new RangeError(`${op}: axis ${a} out of range for shape ${fmtShape(x.shape)}`);
      }
    }
    if (isArg(op) && axes.length !== 1) throw new RangeError(`${op}: reduces exactly one axis`);
    if ((op === "sum" || op === "prod") && x.dtype === "bool") {
      throw new TypeError(`${op}: cast bool to i32 first`);
    }
    for (const a of axes) {
      if (x.shape[a] === 0 && op !== "sum" && op !== "prod") {
        throw new RangeError(
          `${op}: cannot reduce over axis ${a} of size 0 in shape ${
            fmtShape(x.shape)
          } (no identity)`,
        );
      }
    }
    const dtype: DType = isArg(op) ? "i32" : x.dtype;
    return { shape: x.shape.filter((_, i) => !axes.includes(i)), dtype };
  },
  reference([x], [a], { op, axes }, out) {
    const shape = a.shape;
    const n = sizeOf(out.shape);
    const res = new Float64Array(n);
    const keptAxes = shape.map((_, i) => i).filter((i) => !axes.includes(i));
    const rSize = sizeOf(axes.map((i) => shape[i]));
    const strides = shape.map((_, i) => sizeOf(shape.slice(i + 1)));
    for (let o = 0; o < n; o++) {
      // base offset of this output position
      let rem = o, base = 0;
      for (let k = keptAxes.length - 1; k >= 0; k--) {
        const ax = keptAxes[k];
        base += (rem % shape[ax]) * strides[ax];
        rem = Math.floor(rem / shape[ax]);
      }
      let acc = op === "sum" ? 0 : op === "prod" ? 1 : NaN;
      let best = -1;
      for (let r = 0; r < rSize; r++) {
        let rr = r, off = base;
        for (let k = axes.length - 1; k >= 0; k--) {
          const ax = axes[k];
          off += (rr % shape[ax]) * strides[ax];
          rr = Math.floor(rr / shape[ax]);
        }
        const v = x[off];
        if (op === "sum") acc += v;
        else if (op === "prod") {
          acc = roundToDType(a.dtype === "f32" ? acc * v : Math.imul(acc, v), a.dtype);
        } else if (r === 0) {
          acc = v;
          best = 0;
        } else if (!Number.isNaN(acc)) {
          const better = Number.isNaN(v) || (op === "max" || op === "argmax" ? v > acc : v < acc);
          if (better) {
            acc = v;
            best = r;
          }
        }
      }
      res[o] = isArg(op) ? best : roundToDType(acc, a.dtype);
    }
    return res;
  },
  webgpu([x], { op, axes }, out, memo) {
    const runs = runsOf(axes);
    let cur = x.storage;
    let shape = [...x.shape];
    // Reduce the runs from the last to the first so earlier axis numbers stay valid.
    for (let k = runs.length - 1; k >= 0; k--) {
      const [a0, a1] = runs[k];
      const outer = sizeOf(shape.slice(0, a0));
      const R = sizeOf(shape.slice(a0, a1));
      const inner = sizeOf(shape.slice(a1));
      const last = k === 0;
      const dst = last ? out.storage : new GpuStorage(outer * inner * 4);
      // one run of axes is one reduction: a caller's memo may keep what it derives
      runReduce(
        op,
        op,
        x.dtype,
        cur,
        outer,
        R,
        inner,
        dst,
        undefined,
        runs.length === 1 ? memo : undefined,
      );
      if (cur !== x.storage) cur.release();
      cur = dst;
      shape = [...shape.slice(0, a0), ...shape.slice(a1)];
    }
    if (runs.length === 0) {
      // Reducing no axes is the identity: copy through a one-element-run reduction.
      runReduce(op, op, x.dtype, x.storage, sizeOf(x.shape), 1, 1, out.storage);
    }
  },
};
