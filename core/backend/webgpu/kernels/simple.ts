/**
 * "One thread per output element" kernels whose indexing is too irregular for the strided
 * elementwise family (gather, scatter-add, scans, convolutions, windows, PRNG). Parameter 0
 * is always the thread count; the body sees `t` (thread index) and `param(i)`, reads input k
 * as `ink(index)` and writes `out[index]`.
 */
import type { DType } from "../../../dtype.ts";
import { type GpuStorage, runtime } from "../runtime.ts";
import { inputBindings, planReads } from "../input_reads.ts";
import { bindings, grid, inputBindingCount, param, WGSL_HELPERS } from "../wgsl.ts";

export interface SimpleOperand {
  storage: GpuStorage;
  dtype: DType;
}

/**
 * Big launches use 256-wide groups and four elements per thread (grid-strided, so lanes stay
 * on neighbouring elements): on llvmpipe each workgroup has a fixed cost, and an im2col of
 * 8M elements in 64-wide groups needed 131,000 of them. Small ones stay 64 wide with one
 * element per thread (llvmpipe runs every invocation of a group, active or not).
 */
const BIG = 1 << 16;

export function runSimple(
  label: string,
  body: string,
  params: number[],
  inputs: SimpleOperand[],
  out: SimpleOperand,
  helpers = "",
): void {
  runtime.allocBuffer(out.storage, label);
  const threads = params[0];
  if (threads === 0) return;
  const [wg, perThread] = threads >= BIG ? [256, 4] : [64, 1];
  const storages = inputs.map((i) => i.storage);
  const reads = planReads(storages);
  const code = [
    bindings(params.length, inputs.map((i) => i.dtype), out.dtype, reads),
    WGSL_HELPERS,
    helpers,
    `@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let first = gid.x + gid.y * nwg.x * ${wg}u;
  let stride = nwg.x * nwg.y * ${wg}u;
  for (var e = 0u; e < ${perThread}u; e = e + 1u) {
  let t = first + e * stride;
  if (t >= ${param(0)}) { return; }
${body}
  }
}`,
  ].join("\n");
  const u = Uint32Array.from(params, (v) => v >>> 0);
  runtime.dispatch(
    { code, inputs: inputBindingCount(reads), label },
    u,
    inputBindings(storages, reads),
    { storage: out.storage },
    grid(Math.ceil(threads / perThread), wg),
  );
}
