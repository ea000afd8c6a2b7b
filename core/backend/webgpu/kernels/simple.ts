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

/** Workgroup width and elements per thread of a launch of `threads` (see `BIG`). */
function launchShape(threads: number): [number, number] {
  return threads >= BIG ? [256, 4] : [64, 1];
}

/** Loop iterations a launch keeps in hand for the body's other loops. */
const LOOP_MARGIN = 1024;

/**
 * Run a kernel whose body loops over `extent` steps (a scan along an axis, a sum over
 * indices) in parts that keep each thread within the adapter's loop cap
 * (`AdapterInfo.maxLoopIterations`, summed over the elements a thread handles): the part's
 * [start, end) are appended to `params`, and the body must carry the earlier parts' result
 * (read back from `out`) when start > 0. One dispatch where loops are not capped.
 */
/**
 * Throws a clear error when a `runSimple` launch of `threads`, whose body loops
 * `iterations` times per element, would run past the adapter's loop cap (where the loops would
 * silently stop early and leave the output partly unwritten).
 */
export function checkLoopBudget(label: string, threads: number, iterations: number): void {
  const info = runtime.info!;
  const cap = info.maxLoopIterations;
  const total = iterations * launchShape(threads)[1];
  if (total + LOOP_MARGIN > cap) {
    throw new RangeError(
      `${label}: one thread would loop ${total} times, past the ${cap} iterations ` +
        `${info.description} runs before it silently stops a kernel's loops; use smaller ` +
        `channel counts or kernels, or split the input`,
    );
  }
}

export function runSimpleInParts(
  label: string,
  body: string,
  params: number[],
  extent: number,
  inputs: SimpleOperand[],
  out: SimpleOperand,
  helpers = "",
): void {
  const cap = runtime.info!.maxLoopIterations;
  const span = Number.isFinite(cap)
    ? Math.max(1, Math.floor((cap - LOOP_MARGIN) / launchShape(params[0])[1]))
    : Infinity;
  const parts = Math.max(1, Math.ceil(extent / span));
  for (let p = 0; p < parts; p++) {
    const start = p * span, end = Math.min(extent, (p + 1) * span);
    runSimple(label, body, [...params, start, end], inputs, out, helpers);
  }
}

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
  const [wg, perThread] = launchShape(threads);
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
