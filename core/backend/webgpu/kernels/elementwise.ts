/**
 * The fused elementwise kernel family: any expression over N inputs, each read through its
 * own strides and offset over the output shape (stride 0 = broadcast, permuted = transpose,
 * scaled or negative = strided slice / flip). One source per (expression, dtypes, rank);
 * shapes and strides travel in the parameter block, so new shapes compile nothing.
 *
 * Tensors larger than the per-binding limit are processed in chunks of the output; an input
 * over the limit must then be read monotonically (contiguous or sliced), else a clear error.
 */
import type { DType } from "../../../dtype.ts";
import { collapseDims, type IndexBox, type Shape, sizeOf } from "../../../shape.ts";
import { type GpuStorage, type KernelSource, runtime } from "../runtime.ts";
import { inputBindings, type KeptLaunch, planReads, relaunch } from "../input_reads.ts";
import type { KernelMemo } from "../kernel_memo.ts";
import {
  bindings,
  boundedLayout,
  entry,
  grid,
  helperId,
  inputBindingCount,
  type InputRead,
  outputName,
  param,
  readTag,
  SMALL_INDEX,
  STORAGE_READ,
  storeAs,
  stridedLayout,
  stridedLoads,
  summedLayout,
  type SummedRead,
  WGSL_HELPERS,
} from "../wgsl.ts";

export interface StridedOperand {
  storage: GpuStorage;
  dtype: DType;
  /** Strides in elements over the output shape. */
  strides: number[];
  /** Element offset of output index 0. */
  offset: number;
  /** Read as a sum of elements (f32 only; never in chunked launches). */
  sum?: SummedRead;
  /**
   * Read only inside this box of the output's index space (per axis: the first index, and how
   * many), 0 outside: a zero-padded value read where its input lies (never in chunked launches).
   */
  bounds?: IndexBox;
}

export interface ElementwiseKernel {
  /** Name for labels and errors. */
  label: string;
  /** WGSL expression over the loaded values `v0..vN-1`, of the output's value type. */
  expr: string;
  /** Statements evaluated before `expr` (fused kernels bind shared subexpressions here). */
  prelude?: string;
  /** Extra WGSL functions the expression calls. */
  helpers?: string;
  /**
   * Extra u32 parameters, referenced in `expr` as `$e0`, `$e1`, ... (values differ per call
   * without changing the source). `gi` in `expr` is the output's linear index.
   */
  extra?: number[];
}

/**
 * A further result of one elementwise launch, of the same shape as the first: a fused group
 * stores each of its values that other kernels read (`expr` may name the prelude's `let`s).
 */
export interface ExtraOutput {
  expr: string;
  dtype: DType;
  storage: GpuStorage;
  /**
   * For a result of another shape (a value broadcast over the kernel's, stored once; a window
   * of the kernel's values): the WGSL condition under which the element at `gi` is stored, and
   * its index there. Such kernels run in one launch (`runElementwise` refuses to chunk them).
   */
  at?: { guard: string; index: string };
}

/** Workgroup width: wide for big tensors (throughput), narrow for tiny ones (llvmpipe runs
 * every invocation of a group, active or not). */
const WG_WIDE = 256, WG_NARROW = 64;
/**
 * Elements per thread, grid-strided so neighbouring lanes touch neighbouring elements.
 * Measured on llvmpipe for a 16M add: 1 per thread × 64-wide groups 0.88 GB/s; 4 per
 * thread × 256-wide groups 1.28 GB/s.
 */
const PER_THREAD = 4;

interface ParamLayout {
  p: number;
  countP: number;
  startP: number;
  threadsP: number;
  shapeP: number;
  inP: number[];
  extraP: number;
  /** Per input, where its `SummedRead` extent and stride sit, or null. */
  sumP: (number | null)[];
  /** Per input, where its bounds' lows and sizes sit, or null. */
  boundP: (number | null)[];
}

const sourceCache = new Map<string, { src: KernelSource; layout: ParamLayout }>();

/** WGSL for one (expression, dtypes, rank), generated once and cached. */
function elementwiseSource(
  kernel: ElementwiseKernel,
  dtypes: DType[],
  outDtype: DType,
  rank: number,
  wg: number,
  reads: InputRead[],
  small: boolean,
  summed: readonly boolean[],
  bounded: readonly boolean[],
  extraOutputs: readonly ExtraOutput[],
  extraSlots: readonly number[],
): { src: KernelSource; layout: ParamLayout } {
  const helpers = kernel.helpers ?? "";
  const key = `${small}|${helperId(helpers)}|${kernel.label}|${
    kernel.prelude ?? ""
  }|${kernel.expr}|${dtypes.join()}|${outDtype}|${rank}|${kernel.extra?.length ?? 0}|${wg}|${
    reads.map(readTag).join()
  }|${summed.map(Number).join("")}|${bounded.map(Number).join("")}|${
    extraOutputs.map((o, k) =>
      `${extraSlots[k]}:${o.dtype}:${o.expr}:${o.at?.guard}:${o.at?.index}`
    )
      .join(";")
  }`;
  const hit = sourceCache.get(key);
  if (hit) return hit;
  // Parameter block: [count, outStart, shape[rank], per input: (base, strides[rank]), extra]
  let p = 0;
  const countP = p++, startP = p++, threadsP = p++;
  const { shapeP, leafP: inP, end } = stridedLayout(p, rank, dtypes.length);
  p = end;
  const extraP = p;
  p += kernel.extra?.length ?? 0;
  const { sumP, end: sumsEnd } = summedLayout(summed, p);
  p = sumsEnd;
  const { boundP, end: boundsEnd } = boundedLayout(bounded, rank, p);
  p = boundsEnd;
  const extraParams = (text: string) =>
    text.replace(/\$e(\d+)/g, (_, i) => param(extraP + Number(i)));
  const expr = extraParams(kernel.expr);
  const lines: string[] = [];
  lines.push(`  for (var e = 0u; e < ${PER_THREAD}u; e = e + 1u) {`);
  lines.push(`  let li = t + e * ${param(threadsP)};`);
  lines.push(`  if (li >= ${param(countP)}) { return; }`);
  lines.push(`  let gi = li + ${param(startP)};`);
  lines.push(
    ...stridedLoads("gi", rank, shapeP, inP, dtypes, (k) => `in${k}`, small, sumP, boundP),
  );
  if (kernel.prelude) lines.push(extraParams(kernel.prelude));
  lines.push(`  out[li] = ${storeAs(outDtype, expr)};`);
  extraOutputs.forEach((o, k) => {
    const value = storeAs(o.dtype, extraParams(o.expr));
    const name = outputName(extraSlots[k]);
    lines.push(
      o.at
        ? `  if (${o.at.guard}) { ${name}[${o.at.index}] = ${value}; }`
        : `  ${name}[li] = ${value};`,
    );
  });
  lines.push(`  }`);
  // one binding per result stored: several values may go to windows of one result
  const slotDtypes = [outDtype];
  extraOutputs.forEach((o, k) => (slotDtypes[extraSlots[k]] = o.dtype));
  const code = [
    bindings(p, dtypes, slotDtypes, reads),
    WGSL_HELPERS,
    helpers,
    entry(wg, lines.join("\n")),
  ].join("\n");
  const inputs = inputBindingCount(reads);
  const out = {
    src: { code, inputs, outputs: slotDtypes.length, label: kernel.label },
    layout: { p, countP, startP, threadsP, shapeP, inP, extraP, sumP, boundP },
  };
  sourceCache.set(key, out);
  return out;
}
const CHUNK_ELEMS = 1 << 24; // 64 MiB of f32 per chunk: well under every binding limit

/** An elementwise kernel's kept launch (`KeptLaunch`) when it is one launch. */
interface PreparedElementwise extends KeptLaunch {
  /** Element offsets of the inputs, which the parameters hold. */
  offsets: number[];
}

export function runElementwise(
  kernel: ElementwiseKernel,
  inputs: StridedOperand[],
  outShape: Shape,
  outDtype: DType,
  out: GpuStorage,
  memo?: KernelMemo,
  extraOutputs: readonly ExtraOutput[] = [],
): void {
  const n = sizeOf(outShape);
  // each result is bound once, whatever number of values the kernel stores into it
  const slotOf = new Map<GpuStorage, number>([[out, 0]]);
  const firstOf: ExtraOutput[] = [];
  const extraSlots = extraOutputs.map((o) => {
    let slot = slotOf.get(o.storage);
    if (slot === undefined) {
      slotOf.set(o.storage, slot = slotOf.size);
      firstOf[slot] = o;
    } else if (slot === 0 || !o.at || !firstOf[slot].at) {
      throw new Error(`internal: ${kernel.label} stores two whole values into one result`);
    }
    return slot;
  });
  for (const o of slotOf.keys()) runtime.allocBuffer(o, kernel.label);
  if (n === 0) return;
  // results of the kernel's shape are bound at the launch's range; others whole
  const outBindings = (s: number, e: number) => [
    { storage: out, offset: s * 4, size: (e - s) * 4 },
    ...firstOf.slice(1).map((o) =>
      o.at ? { storage: o.storage } : { storage: o.storage, offset: s * 4, size: (e - s) * 4 }
    ),
  ];
  const prepared = memo?.prepared as PreparedElementwise | undefined;
  if (
    prepared && inputs.every((o, k) => o.offset === prepared.offsets[k]) &&
    relaunch(prepared, inputs.map((o) => o.storage), outBindings(0, n))
  ) return;
  const collapsed = collapseDims(
    outShape,
    inputs.map((o) => o.strides),
    inputs.map((o) => o.bounds),
  );
  const shape = collapsed.shape;
  const extra = kernel.extra ?? [];
  const wg = n > PER_THREAD * WG_WIDE * 4 ? WG_WIDE : WG_NARROW;
  const maxBind = runtime.info!.limits.maxStorageBufferBindingSize;
  const alignElems = Math.max(1, runtime.info!.limits.minStorageBufferOffsetAlignment / 4);
  const big = n * 4 > maxBind || inputs.some((o) => o.storage.bytes > maxBind);
  if (big && inputs.some((o) => o.sum || o.bounds)) {
    throw new Error(`internal: ${kernel.label} reads a summed or bounded input in chunks`);
  }
  if (big && extraOutputs.some((o) => o.at)) {
    throw new Error(`internal: ${kernel.label} stores a result of another shape in chunks`);
  }
  // chunked launches bind ranges of their inputs, which only storage bindings allow
  const reads = big ? inputs.map(() => STORAGE_READ) : planReads(inputs.map((o) => o.storage));
  const { src, layout } = elementwiseSource(
    kernel,
    inputs.map((o) => o.dtype),
    outDtype,
    shape.length,
    wg,
    reads,
    n <= SMALL_INDEX,
    inputs.map((o) => !!o.sum),
    inputs.map((o) => !!o.bounds),
    extraOutputs,
    extraSlots,
  );
  const { p, countP, startP, threadsP, shapeP, inP, extraP, sumP, boundP } = layout;

  const chunk = big ? CHUNK_ELEMS : n;
  for (let s = 0; s < n; s += chunk) {
    const e = Math.min(n, s + chunk);
    const u = new Uint32Array(p);
    u[countP] = e - s;
    u[startP] = s;
    const groups = grid(Math.ceil((e - s) / PER_THREAD), wg);
    u[threadsP] = groups[0] * groups[1] * wg; // the grid stride between a thread's elements
    shape.forEach((d, i) => (u[shapeP + i] = d));
    extra.forEach((v, i) => (u[extraP + i] = v >>> 0));
    inputs.forEach((o, k) => {
      if (o.sum) [u[sumP[k]!], u[sumP[k]! + 1]] = [o.sum.extent, o.sum.stride];
      const box = collapsed.bounds[k];
      if (box) {
        box.lo.forEach((v, i) => (u[boundP[k]! + i] = v));
        box.size.forEach((v, i) => (u[boundP[k]! + shape.length + i] = v));
      }
    });
    const binds = inputs.map((o, k) => {
      const st = collapsed.strides[k];
      st.forEach((v, i) => (u[inP[k] + 1 + i] = v >>> 0));
      if (!big || o.storage.bytes <= maxBind) {
        u[inP[k]] = o.offset >>> 0;
        return inputBindings([o.storage], [reads[k]]);
      }
      if (!isMonotone(shape, st)) {
        throw new RangeError(
          `${kernel.label}: an input of ${o.storage.bytes} bytes over the per-binding limit (${maxBind}) ` +
            `is read out of order (transposed or broadcast inside); materialise it in smaller pieces`,
        );
      }
      const first = o.offset + indexAt(s, shape, st);
      const last = o.offset + indexAt(e - 1, shape, st);
      const base = Math.floor(first / alignElems) * alignElems;
      u[inP[k]] = (o.offset - base) >>> 0;
      return [{ storage: o.storage, offset: base * 4, size: (last + 1 - base) * 4 }];
    }).flat();
    if (memo && !big) {
      const offsets = inputs.map((o) => o.offset);
      memo.prepared = {
        src,
        params: u,
        grid: groups,
        reads,
        offsets,
      } satisfies PreparedElementwise;
    }
    runtime.dispatch(src, u, binds, outBindings(s, e), groups);
  }
}

function indexAt(linear: number, shape: number[], strides: number[]): number {
  let idx = 0;
  for (let d = shape.length - 1; d >= 0; d--) {
    idx += (linear % shape[d]) * strides[d];
    linear = Math.floor(linear / shape[d]);
  }
  return idx;
}

/** True when increasing output index never decreases the input index (lexicographic). */
function isMonotone(shape: number[], strides: number[]): boolean {
  let innerExtent = 0;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (strides[d] < 0 || (shape[d] > 1 && strides[d] < innerExtent)) return false;
    innerExtent += strides[d] * (shape[d] - 1);
  }
  return true;
}
