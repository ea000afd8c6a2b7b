/**
 * Reading a tensor through arbitrary strides and an offset: the one mechanism behind
 * transpose, broadcastTo and slice on both backends.
 */
import type { DType } from "../dtype.ts";
import { sizeOf } from "../shape.ts";
import { runElementwise } from "../backend/webgpu/kernels/elementwise.ts";
import type { GpuStorage } from "../backend/webgpu/runtime.ts";

export function stridedReadRef(
  x: Float64Array,
  outShape: readonly number[],
  strides: readonly number[],
  offset: number,
): Float64Array {
  const n = sizeOf(outShape);
  const res = new Float64Array(n);
  const rank = outShape.length;
  const idx = new Array<number>(rank).fill(0);
  let off = offset;
  for (let i = 0; i < n; i++) {
    res[i] = x[off];
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      off += strides[d];
      if (idx[d] < outShape[d]) break;
      off -= strides[d] * idx[d];
      idx[d] = 0;
    }
  }
  return res;
}

export function stridedReadGpu(
  label: string,
  x: GpuStorage,
  dtype: DType,
  outShape: readonly number[],
  strides: readonly number[],
  offset: number,
  out: GpuStorage,
): void {
  runElementwise(
    { label, expr: "v0" },
    [{ storage: x, dtype, strides: [...strides], offset }],
    outShape,
    dtype,
    out,
  );
}
