/**
 * pad(x, {lo, hi, interior, value}): lo/hi elements before/after each axis and `interior`
 * elements between neighbours (the transpose of a strided slice, which autodiff needs).
 */
import { fmtShape, sizeOf, stridesOf } from "../shape.ts";
import { roundToDType } from "../dtype.ts";
import { runCopyInto } from "../backend/webgpu/kernels/copy_into.ts";
import type { Primitive } from "../primitive.ts";
import { fillGpu } from "./fill.ts";
import { bind } from "../primitive.ts";
import { slice } from "./slice.ts";

export interface PadParams {
  lo: readonly number[];
  hi: readonly number[];
  interior: readonly number[];
  value: number;
}

function placement(inShape: readonly number[], outShape: readonly number[], p: PadParams) {
  const os = stridesOf(outShape);
  return {
    offset: p.lo.reduce((acc, l, i) => acc + l * os[i], 0),
    strides: os.map((s, i) => s * (p.interior[i] + 1)),
    empty: sizeOf(inShape) === 0,
  };
}

export const pad: Primitive<PadParams> = {
  name: "pad",
  batch: ([x], _b, p) =>
    bind(pad, [x], { ...p, lo: [0, ...p.lo], hi: [0, ...p.hi], interior: [0, ...p.interior] }),
  vjp(g, [x], _out, p) {
    const step = p.interior.map((i) => i + 1);
    const start = [...p.lo];
    const stop = x.shape.map((n, i) => p.lo[i] + Math.max(0, n - 1) * step[i] + (n > 0 ? 1 : 0));
    return [bind(slice, [g], { start, stop, step })];
  },
  boxedWindow(p, input, out) {
    // a zero pad without interior gaps: the input's elements, in order, in a box of the result
    if (p.value !== 0 || p.interior.some((n) => n !== 0) || sizeOf(input.shape) === 0) return null;
    const strides = stridesOf(input.shape);
    return {
      offset: -p.lo.reduce((acc, l, i) => acc + l * strides[i], 0),
      strides,
      shape: out.shape,
      lo: [...p.lo],
      size: [...input.shape],
    };
  },
  abstractEval([x], p) {
    const r = x.shape.length;
    for (const [name, v] of [["lo", p.lo], ["hi", p.hi], ["interior", p.interior]] as const) {
      if (v.length !== r || v.some((n) => !Number.isInteger(n) || n < 0)) {
        throw new RangeError(
          `pad: ${name} must list a non-negative integer for each of the ${r} axes of ${
            fmtShape(x.shape)
          }`,
        );
      }
    }
    const shape = x.shape.map((d, i) => p.lo[i] + p.hi[i] + d + Math.max(0, d - 1) * p.interior[i]);
    return { shape, dtype: x.dtype };
  },
  reference([x], [a], p, out) {
    const res = new Float64Array(sizeOf(out.shape)).fill(roundToDType(p.value, out.dtype));
    const { offset, strides } = placement(a.shape, out.shape, p);
    const rank = a.shape.length;
    for (let i = 0; i < x.length; i++) {
      let rem = i, o = offset;
      for (let d = rank - 1; d >= 0; d--) {
        o += (rem % a.shape[d]) * strides[d];
        rem = Math.floor(rem / a.shape[d]);
      }
      res[o] = x[i];
    }
    return res;
  },
  webgpu([x], p, out) {
    fillGpu(out.storage, out.shape, out.dtype, p.value);
    const { offset, strides, empty } = placement(x.shape, out.shape, p);
    if (!empty) runCopyInto("pad", x.storage, x.dtype, x.shape, out.storage, offset, strides);
  },
};
