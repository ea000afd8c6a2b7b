/**
 * slice(x, {start, stop, step}) per axis with NumPy semantics after normalisation: the op
 * layer resolves negative and missing bounds, so here 0 ≤ start and the output length of
 * each axis is ceil((stop - start) / step) (step may be negative for reversed slices).
 */
import { fmtShape, stridesOf } from "../shape.ts";
import type { Primitive } from "../primitive.ts";
import { stridedReadGpu, stridedReadRef } from "./strided.ts";
import { bind } from "../primitive.ts";
import { zerosLike } from "../ops/creation.ts";
import { slice as sliceOp } from "../ops/shape.ts";
import { pad } from "./pad.ts";

export interface SliceParams {
  start: readonly number[];
  stop: readonly number[];
  step: readonly number[];
}

function lengths(p: SliceParams): number[] {
  return p.start.map((s, i) => Math.max(0, Math.ceil((p.stop[i] - s) / p.step[i])));
}

function layout(shape: readonly number[], p: SliceParams) {
  const s = stridesOf(shape);
  const empty = lengths(p).some((n) => n === 0);
  const offset = empty ? 0 : p.start.reduce((acc, st, i) => acc + st * s[i], 0);
  return { strides: s.map((v, i) => v * p.step[i]), offset };
}

export const slice: Primitive<SliceParams> = {
  name: "slice",
  window: (p, w, out) => ({
    offset: w.offset + p.start.reduce((o, st, i) => o + st * w.strides[i], 0),
    strides: w.strides.map((st, i) => st * p.step[i]),
    shape: out.shape,
  }),
  batch: ([x], _b, p, size) =>
    bind(slice, [x], { start: [0, ...p.start], stop: [size, ...p.stop], step: [1, ...p.step] }),
  vjp(g, [x], _out, p) {
    // The adjoint of a strided slice is padding with interior zeros (reversed axes flip first).
    const len = lengths(p);
    if (len.some((n) => n === 0)) return [zerosLike(x)];
    const back = x.shape.map((_, i) => (p.step[i] < 0 ? [null, null, -1] as const : null));
    const gf = p.step.some((s) => s < 0) ? sliceOp(g, back) : g;
    const lo = x.shape.map((_, i) =>
      p.step[i] > 0 ? p.start[i] : p.start[i] + (len[i] - 1) * p.step[i]
    );
    const interior = p.step.map((s) => Math.abs(s) - 1);
    const hi = x.shape.map((n, i) => n - lo[i] - ((len[i] - 1) * Math.abs(p.step[i]) + 1));
    return [bind(pad, [gf], { lo, hi, interior, value: 0 })];
  },
  abstractEval([x], p) {
    const r = x.shape.length;
    if (p.start.length !== r || p.stop.length !== r || p.step.length !== r) {
      throw new RangeError(
        `slice: needs start/stop/step for each of the ${r} axes of ${fmtShape(x.shape)}`,
      );
    }
    const len = lengths(p);
    p.step.forEach((st, i) => {
      if (!Number.isInteger(st) || st === 0) {
        throw new RangeError(`slice: step on axis ${i} must be a non-zero integer`);
      }
      if (len[i] > 0 && (p.start[i] < 0 || p.start[i] >= x.shape[i])) {
        throw new RangeError(
          `slice: start ${p.start[i]} out of range for axis ${i} of ${fmtShape(x.shape)}`,
        );
      }
    });
    return { shape: len, dtype: x.dtype };
  },
  reference([x], [a], p, out) {
    const { strides, offset } = layout(a.shape, p);
    return stridedReadRef(x, out.shape, strides, offset);
  },
  webgpu([x], p, out) {
    const { strides, offset } = layout(x.shape, p);
    stridedReadGpu("slice", x.storage, x.dtype, out.shape, strides, offset, out.storage);
  },
};
