/**
 * "One thread per output element" kernels whose indexing is too irregular for the strided
 * elementwise family (gather, scatter-add, scans, convolutions, windows, PRNG). Parameter 0
 * is always the thread count; the body sees `t` (thread index) and `param(i)`.
 */
import type { DType } from "../../../dtype.ts";
import { type GpuStorage, runtime } from "../runtime.ts";
import { bindings, entry, grid, param, WGSL_HELPERS } from "../wgsl.ts";

export interface SimpleOperand {
  storage: GpuStorage;
  dtype: DType;
}

const WG = 64;

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
  const code = [
    bindings(params.length, inputs.map((i) => i.dtype), out.dtype),
    WGSL_HELPERS,
    helpers,
    entry(WG, `  if (t >= ${param(0)}) { return; }\n${body}`),
  ].join("\n");
  const u = Uint32Array.from(params, (v) => v >>> 0);
  runtime.dispatch(
    { code, inputs: inputs.length, label },
    u,
    inputs.map((i) => ({ storage: i.storage })),
    { storage: out.storage },
    grid(threads, WG),
  );
}
