/**
 * Write every element of a contiguous input to `out[offset + Σ coord·stride]`: the kernel
 * behind pad (with interior padding) and concat. Other output elements are left untouched.
 */
import type { DType } from "../../../dtype.ts";
import { sizeOf } from "../../../shape.ts";
import type { GpuStorage } from "../runtime.ts";
import { param, splitIndex } from "../wgsl.ts";
import { runSimple } from "./simple.ts";

export function runCopyInto(
  label: string,
  input: GpuStorage,
  dtype: DType,
  shape: readonly number[],
  out: GpuStorage,
  outOffset: number,
  outStrides: readonly number[],
): void {
  const rank = shape.length;
  // params: count, outOffset, shape[rank], outStrides[rank]
  const lines = [`  var rem = t;`, `  var o = ${param(1)};`];
  for (let d = rank - 1; d >= 0; d--) {
    lines.push(
      `  { ${splitIndex("rem", param(2 + d), false)} o = o + c * ${param(2 + rank + d)}; }`,
    );
  }
  lines.push(`  out[o] = in0(t);`);
  runSimple(label, lines.join("\n"), [sizeOf(shape), outOffset, ...shape, ...outStrides], [{
    storage: input,
    dtype,
  }], {
    storage: out,
    dtype,
  });
}
