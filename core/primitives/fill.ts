/** Nullary primitives that create values on the device: full (constant) and iota (arange). */
import type { DType } from "../dtype.ts";
import { roundToDType } from "../dtype.ts";
import { fmtShape, sizeOf } from "../shape.ts";
import { runElementwise } from "../backend/webgpu/kernels/elementwise.ts";
import type { GpuStorage } from "../backend/webgpu/runtime.ts";
import type { Primitive } from "../primitive.ts";
import { f32Bits } from "../backend/webgpu/wgsl.ts";

/** The u32 bit pattern of a value of dtype d, for the parameter block. */
export function bitsOf(v: number, d: DType): number {
  return d === "f32" ? f32Bits(v) : d === "bool" ? (v ? 1 : 0) : roundToDType(v, d) >>> 0;
}

/** WGSL expression of the value whose bits are in `$eI`. */
export function fromBits(d: DType, i: number): string {
  return d === "f32"
    ? `bitcast<f32>($e${i})`
    : d === "i32"
    ? `bitcast<i32>($e${i})`
    : d === "bool"
    ? `($e${i} != 0u)`
    : `$e${i}`;
}

export function fillGpu(
  out: GpuStorage,
  shape: readonly number[],
  dtype: DType,
  value: number,
): void {
  runElementwise(
    { label: "full", expr: fromBits(dtype, 0), extra: [bitsOf(value, dtype)] },
    [],
    shape,
    dtype,
    out,
  );
}

export interface FullParams {
  shape: readonly number[];
  dtype: DType;
  value: number;
}

export const full: Primitive<FullParams> = {
  name: "full",
  // a constant is a literal inside a fused kernel (no buffer, no binding), or a parameter
  // where the kernel is reused for other values
  fusion: (_inputs, p, _args, param) =>
    param ? fromBits(p.dtype, param(bitsOf(p.value, p.dtype))) : literal(p.value, p.dtype),
  abstractEval(_inputs, p) {
    return { shape: p.shape, dtype: p.dtype };
  },
  reference(_inputs, _avals, p) {
    return new Float64Array(sizeOf(p.shape)).fill(roundToDType(p.value, p.dtype));
  },
  webgpu(_inputs, p, out) {
    fillGpu(out.storage, p.shape, p.dtype, p.value);
  },
};

export interface IotaParams {
  length: number;
  start: number;
  step: number;
  dtype: DType;
  /** The result's shape when not [length] (jit reshapes in place; its size is `length`). */
  shape?: readonly number[];
}

/** start + i·step for i < length (i the row-major index when `shape` is given). */
export const iota: Primitive<IotaParams> = {
  name: "iota",
  abstractEval(_inputs, p) {
    if (p.dtype === "bool") throw new TypeError("arange: dtype bool is not supported");
    if (p.shape && sizeOf(p.shape) !== p.length) {
      throw new RangeError(`internal: iota of ${p.length} values shaped ${fmtShape(p.shape)}`);
    }
    return { shape: p.shape ?? [p.length], dtype: p.dtype };
  },
  reference(_inputs, _avals, p) {
    return Float64Array.from(
      { length: p.length },
      (_, i) => roundToDType(p.start + i * p.step, p.dtype),
    );
  },
  // computed where it is read: a kernel comparing indices against it (a one-hot, a pick
  // along an axis) needs no stored copy
  positional: {
    expr: (_inputs, p, _args, _out, index) =>
      `(${literal(p.start, p.dtype)} + ${p.dtype}(${index}) * ${literal(p.step, p.dtype)})`,
  },
  webgpu(_inputs, p, out) {
    const t = p.dtype;
    runElementwise(
      {
        label: "iota",
        expr: `${fromBits(t, 0)} + ${t}(gi) * ${fromBits(t, 1)}`,
        extra: [bitsOf(p.start, t), bitsOf(p.step, t)],
      },
      [],
      out.shape,
      t,
      out.storage,
    );
  },
};

/**
 * A WGSL literal of value v of dtype d (exact bits for f32). NaN and ±∞ are calls of the
 * helpers `nan_f32()` / `inf_f32()`: a constant expression that evaluates to a non-finite
 * value is a shader-creation error in the WGSL spec (Chrome's and Safari's compilers refuse it,
 * Deno's naga accepts it).
 */
export function literal(v: number, d: DType): string {
  if (d === "f32" && !Number.isFinite(v)) {
    return Number.isNaN(v) ? "nan_f32()" : v > 0 ? "inf_f32()" : "(-inf_f32())";
  }
  const bits = bitsOf(v, d);
  return d === "f32"
    ? `bitcast<f32>(${bits}u)`
    : d === "i32"
    ? `bitcast<i32>(${bits}u)`
    : d === "bool"
    ? (bits ? "true" : "false")
    : `${bits}u`;
}
