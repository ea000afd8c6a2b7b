/**
 * The reduction kernel family. The input is viewed as [outer, R, inner] (the reduced axes are
 * one contiguous run; the op layer reduces separate runs one after another). Each thread
 * reduces a chunk of at most C consecutive r for one (outer, inner) position, writing
 * [outer, ceil(R/C), inner] partials; stages repeat until one chunk remains. This gives
 * parallelism for full reductions, pairwise-like accuracy for sums, and natural splitting of
 * inputs larger than the per-binding limit.
 */
import type { DType } from "../../../dtype.ts";
import { GpuStorage, type KernelSource, runtime } from "../runtime.ts";
import { inputBindings, type KeptLaunch, planReads, relaunch } from "../input_reads.ts";
import type { KernelMemo } from "../kernel_memo.ts";
import { broadcastStrides, collapseDims } from "../../../shape.ts";
import { runElementwise } from "./elementwise.ts";
import {
  bindings,
  entry,
  grid,
  helperId,
  inputBindingCount,
  type InputRead,
  loadAs,
  param,
  readTag,
  SMALL_INDEX,
  splitIndex,
  STORAGE_READ,
  storeAs,
  stridedLayout,
  stridedLoads,
  WGSL_HELPERS,
} from "../wgsl.ts";

export type ReduceOp = "sum" | "prod" | "max" | "min" | "argmax" | "argmin";

const WG = 64;
/** Elements one thread folds per stage; large enough to keep stage counts at 2–3. */
const CHUNK = 256;

function identity(op: ReduceOp, d: DType): string {
  const t = d === "bool" ? "u32" : d;
  switch (op) {
    case "sum":
      return `${t}(0)`;
    case "prod":
      return `${t}(1)`;
    case "max":
    case "argmax":
      return d === "f32" ? "-inf_f32()" : d === "i32" ? "i32(-2147483647 - 1)" : "0u";
    case "min":
    case "argmin":
      return d === "f32"
        ? "inf_f32()"
        : d === "i32"
        ? "i32(2147483647)"
        : (d === "bool" ? "1u" : "4294967295u");
  }
}

/**
 * `better(x, acc)`: does x replace the accumulator? NaN wins (propagates, as in NumPy), and for
 * arg-reductions the first occurrence wins on ties.
 */
function combine(op: ReduceOp, d: DType): string {
  const nanFirst = d === "f32";
  switch (op) {
    case "sum":
      return "acc = acc + x;";
    case "prod":
      return "acc = acc * x;";
    case "max":
      return nanFirst ? "if (is_nan(x) || x > acc) { acc = x; }" : "acc = max(acc, x);";
    case "min":
      return nanFirst ? "if (is_nan(x) || x < acc) { acc = x; }" : "acc = min(acc, x);";
    case "argmax":
      return nanFirst
        ? "if (!is_nan(acc) && (is_nan(x) || x > acc || found == 0u)) { acc = x; best = xi; found = 1u; }"
        : "if (x > acc || found == 0u) { acc = x; best = xi; found = 1u; }";
    case "argmin":
      return nanFirst
        ? "if (!is_nan(acc) && (is_nan(x) || x < acc || found == 0u)) { acc = x; best = xi; found = 1u; }"
        : "if (x < acc || found == 0u) { acc = x; best = xi; found = 1u; }";
  }
}

/**
 * An elementwise expression computed on the fly as the reduction's input (jit fuses a
 * single-use elementwise producer into its reduction this way): leaves are read through
 * strides over the producer's shape, like the elementwise family.
 */
export interface ReducePrologue {
  leaves: { storage: GpuStorage; dtype: DType; strides: number[]; offset?: number }[];
  /** WGSL over `v0..vN-1` producing the reduction's input value. */
  expr: string;
  /** Statements evaluated before `expr`. */
  prelude: string;
  helpers: string;
  /** The producer's shape (its row-major linear index is the reduction's `at`). */
  shape: readonly number[];
}

/**
 * An elementwise expression applied to each reduced value before it is stored (jit fuses a
 * reader of the reduction this way, e.g. the `b - α·Σg` of an SGD step): `acc` names the
 * reduced value in `expr`/`prelude`; leaves are read through strides over the output shape.
 */
export interface ReduceEpilogue {
  leaves: { storage: GpuStorage; dtype: DType; strides: number[]; offset?: number }[];
  prelude: string;
  expr: string;
  helpers: string;
  /** The output's shape ([outer, inner] in row-major order). */
  shape: readonly number[];
}

interface PrologueShape {
  dtypes: DType[];
  rank: number;
  expr: string;
  prelude: string;
  helpers: string;
}

interface Stage {
  op: ReduceOp;
  dtype: DType;
  prologue?: PrologueShape;
  /** Applied by the last stage; f32 sums, products, maxima and minima only. */
  epilogue?: PrologueShape;
  /** For arg stages after the first: the input carries (value, index) pairs in two tensors. */
  pairedInput: boolean;
  writeIndex: boolean;
  /** The reduction's index space (outer·R·inner) is at most `SMALL_INDEX`. */
  small: boolean;
}

/** WGSL of `fn prologue(at: u32)`: the fused input value at linear index `at` (params from 10). */
function prologueFn(
  pr: PrologueShape,
  raw: string,
  small: boolean,
): { code: string; params: number } {
  const { shapeP, leafP, end: p } = stridedLayout(10, pr.rank, pr.dtypes.length);
  const lines = [
    `fn prologue(at: u32) -> ${raw} {`,
    ...stridedLoads("at", pr.rank, shapeP, leafP, pr.dtypes, (k) => `in${k}`, small),
  ];
  lines.push(pr.prelude, `  return ${raw}(${pr.expr});`, `}`);
  return { code: lines.join("\n"), params: p };
}

/** WGSL of `fn epilogue(at: u32, acc: f32) -> f32`, its leaves bound from input `first` on. */
function epilogueFn(ep: PrologueShape, start: number, first: number, small: boolean) {
  const { shapeP, leafP, end } = stridedLayout(start, ep.rank, ep.dtypes.length);
  const lines = [
    `fn epilogue(at: u32, acc: f32) -> f32 {`,
    ...stridedLoads("at", ep.rank, shapeP, leafP, ep.dtypes, (k) => `in${first + k}`, small),
    ep.prelude,
    `  return ${ep.expr};`,
    `}`,
  ];
  return { code: lines.join("\n"), params: end };
}

type StageSource = { code: string; inputs: number; params: number };
const stageSources = new Map<string, StageSource>();

/** `stageSource`, generated once per stage shape (a key is cheap; the text is kilobytes). */
function cachedStageSource(s: Stage, reads: InputRead[]): StageSource {
  const part = (p?: PrologueShape) =>
    p ? `${p.dtypes}|${p.rank}|${helperId(p.helpers)}|${p.prelude}|${p.expr}` : "-";
  const key = `${s.op}|${s.dtype}|${s.pairedInput}|${s.writeIndex}|${s.small}|${
    reads.map(readTag).join()
  }|${part(s.prologue)}|${part(s.epilogue)}`;
  let src = stageSources.get(key);
  if (!src) stageSources.set(key, src = stageSource(s, reads));
  return src;
}

function stageSource(s: Stage, reads: InputRead[]): StageSource {
  const arg = s.op === "argmax" || s.op === "argmin";
  const raw = s.dtype === "bool" ? "u32" : s.dtype;
  // params: outer, R, inner, C, nChunks, oStart, jStart, jCount, inBase, outBase
  // [, prologue][, epilogue]
  const P = (i: number) => param(i);
  const pro = s.prologue ? prologueFn(s.prologue, raw, s.small) : null;
  const read: DType[] = s.prologue
    ? s.prologue.dtypes
    : s.pairedInput
    ? [s.dtype, "i32"]
    : [s.dtype];
  const epi = s.epilogue
    ? epilogueFn(s.epilogue, pro ? pro.params : 10, read.length, s.small)
    : null;
  const inputs = [...read, ...(s.epilogue?.dtypes ?? [])];
  const outDtype: DType = s.writeIndex ? "i32" : s.dtype;
  const body = `
  let inner = ${P(2)};
  let jCount = ${P(7)};
  if (t >= ${P(0)} * jCount * inner) { return; }
  var rem = t;
  var i = 0u;
  var j = 0u;
  { ${splitIndex("rem", "inner", s.small)} i = c; }
  { ${splitIndex("rem", "jCount", s.small)} j = ${P(6)} + c; }
  let o = ${P(5)} + rem;
  let R = ${P(1)};
  let r0 = j * ${P(3)};
  let r1 = min(R, r0 + ${P(3)});
  var acc: ${raw} = ${identity(s.op, s.dtype)};
  ${arg ? "var best: i32 = 0; var found: u32 = 0u;" : ""}
  for (var r = r0; r < r1; r = r + 1u) {
    let at = (o * R + r) * inner + i - ${P(8)};
    let x: ${raw} = ${pro ? "prologue(at)" : "in0(at)"};
    ${arg ? (s.pairedInput ? "let xi = in1(at);" : "let xi = i32(r);") : ""}
    ${combine(s.op, s.dtype)}
  }
  let dst = (o * ${P(4)} + j) * inner + i - ${P(9)};
  ${
    s.writeIndex
      ? "out[dst] = best;"
      : epi
      ? "out[dst] = epilogue(o * inner + i, acc);"
      : `out[dst] = ${storeAs(s.dtype, loadAs(s.dtype, "acc"))};`
  }`;
  const nParams = epi ? epi.params : pro ? pro.params : 10;
  // prologue and epilogue usually share their helper functions: declare each text once
  const helpers = new Set([s.prologue?.helpers ?? "", s.epilogue?.helpers ?? ""]);
  const code = [
    bindings(nParams, inputs, outDtype, reads),
    WGSL_HELPERS,
    ...helpers,
    pro?.code ?? "",
    epi?.code ?? "",
    entry(WG, body),
  ]
    .join("\n");
  return { code, inputs: inputBindingCount(reads), params: nParams };
}

/** The storages a reduction's single stage reads, in binding order. */
function stageInputs(source: GpuStorage | ReducePrologue, epilogue?: ReduceEpilogue) {
  const inputs = source instanceof GpuStorage ? [source] : source.leaves.map((l) => l.storage);
  if (epilogue) { for (const l of epilogue.leaves) inputs.push(l.storage); }
  return inputs;
}

/**
 * Reduce `input` viewed as [outer, R, inner] over R into `out` ([outer, inner]).
 * For arg reductions `out` receives i32 indices along R.
 */
export function runReduce(
  label: string,
  op: ReduceOp,
  dtype: DType,
  source: GpuStorage | ReducePrologue,
  outer: number,
  R: number,
  inner: number,
  out: GpuStorage,
  epilogue?: ReduceEpilogue,
  memo?: KernelMemo,
): void {
  runtime.allocBuffer(out, label);
  if (outer * inner === 0) return;
  // a reduction done in one dispatch keeps it (`KeptLaunch`)
  const kept = memo?.prepared as KeptLaunch | undefined;
  if (kept && relaunch(kept, stageInputs(source, epilogue), { storage: out })) return;
  const arg = op === "argmax" || op === "argmin";
  const maxBind = runtime.info!.limits.maxStorageBufferBindingSize;
  if (
    epilogue &&
    (arg || dtype !== "f32" || outer * R * inner * 4 > maxBind || out.bytes > maxBind ||
      epilogue.leaves.some((l) => l.storage.bytes > maxBind))
  ) {
    // stages split across bindings: reduce first, then apply the epilogue on its own
    const reduced = new GpuStorage(outer * inner * 4);
    runReduce(label, op, dtype, source, outer, R, inner, reduced);
    runElementwise(
      {
        label: `${label} epilogue`,
        expr: epilogue.expr,
        prelude: `  let acc = v${epilogue.leaves.length};\n${epilogue.prelude}`,
        helpers: epilogue.helpers,
      },
      [
        ...epilogue.leaves.map((l) => ({ ...l, offset: l.offset ?? 0 })),
        {
          storage: reduced,
          dtype,
          strides: broadcastStrides(epilogue.shape, epilogue.shape),
          offset: 0,
        },
      ],
      epilogue.shape,
      "f32",
      out,
    );
    reduced.release();
    return;
  }
  let prologue = source instanceof GpuStorage ? null : source;
  if (
    prologue &&
    (arg || prologue.leaves.some((l) => l.storage.bytes > maxBind) ||
      outer * R * inner * 4 > maxBind)
  ) {
    // too large to read through one binding per leaf: materialise the input first
    const tmp = new GpuStorage(outer * R * inner * 4);
    runElementwise(
      {
        label: `${label} input`,
        expr: prologue.expr,
        prelude: prologue.prelude,
        helpers: prologue.helpers,
      },
      prologue.leaves.map((l) => ({ ...l, offset: l.offset ?? 0 })),
      prologue.shape,
      dtype,
      tmp,
    );
    runReduce(label, op, dtype, tmp, outer, R, inner, out, epilogue);
    tmp.release();
    return;
  }
  const input = prologue ? null : (source as GpuStorage);
  let values = input as GpuStorage;
  let index: GpuStorage | null = null;
  let r = R;
  for (;;) {
    const nChunks = Math.max(1, Math.ceil(r / CHUNK));
    const last = nChunks === 1;
    const temp = () => new GpuStorage(outer * nChunks * inner * 4);
    const pro = prologue;
    const epi = last ? epilogue : undefined;
    const inputs = index ? [values, index] : stageInputs(pro ?? values, epi);
    // the whole reduction is this one stage: what it derives can be kept
    const single = last && r === R && !arg ? memo : undefined;
    const run = (writeIndex: boolean, dst: GpuStorage) => {
      const shape = pro ? collapseDims(pro.shape, pro.leaves.map((l) => l.strides)) : null;
      const epiShape = epi ? collapseDims(epi.shape, epi.leaves.map((l) => l.strides)) : null;
      // split stages bind ranges of their inputs, which only storage bindings allow
      const fits = inputs.every((s) => s.bytes <= maxBind) && dst.bytes <= maxBind;
      const reads = fits ? planReads(inputs) : inputs.map(() => STORAGE_READ);
      const src = cachedStageSource({
        op,
        dtype,
        pairedInput: index !== null,
        writeIndex,
        small: outer * r * inner <= SMALL_INDEX,
        prologue: pro && shape
          ? {
            dtypes: pro.leaves.map((l) => l.dtype),
            rank: shape.shape.length,
            expr: pro.expr,
            prelude: pro.prelude,
            helpers: pro.helpers,
          }
          : undefined,
        epilogue: epi && epiShape
          ? {
            dtypes: epi.leaves.map((l) => l.dtype),
            rank: epiShape.shape.length,
            expr: epi.expr,
            prelude: epi.prelude,
            helpers: epi.helpers,
          }
          : undefined,
      }, reads);
      // per leaf: its base (a window's offset), then its strides
      const layout = (
        c: ReturnType<typeof collapseDims> | null,
        leaves: readonly { offset?: number }[] = [],
      ) =>
        c
          ? [
            ...c.shape,
            ...c.strides.flatMap((st, k) => [
              (leaves[k].offset ?? 0) >>> 0,
              ...st.map((v) => v >>> 0),
            ]),
          ]
          : [];
      const extra = [...layout(shape, pro?.leaves), ...layout(epiShape, epi?.leaves)];
      dispatchStage(
        { code: src.code, inputs: src.inputs, label },
        inputs,
        reads,
        dst,
        outer,
        r,
        inner,
        nChunks,
        extra,
        single,
      );
      return dst;
    };
    let nextValues: GpuStorage | null = null;
    let nextIndex: GpuStorage | null = null;
    if (!arg) nextValues = run(false, last ? out : temp());
    else {
      nextIndex = run(true, last ? out : temp());
      if (!last) nextValues = run(false, temp());
    }
    if (values !== input && !pro) values.release();
    index?.release();
    prologue = null;
    if (last) return;
    values = nextValues!;
    index = nextIndex;
    r = nChunks;
  }
}

/**
 * One stage, split into several dispatches when operands exceed the per-binding limit; kept
 * in `memo` when it is one dispatch.
 */
function dispatchStage(
  src: KernelSource,
  inputs: GpuStorage[],
  reads: InputRead[],
  dst: GpuStorage,
  outer: number,
  R: number,
  inner: number,
  nChunks: number,
  extra: number[] = [],
  memo?: KernelMemo,
): void {
  const maxBind = runtime.info!.limits.maxStorageBufferBindingSize;
  const align = Math.max(4, runtime.info!.limits.minStorageBufferOffsetAlignment);
  const rowBytes = R * inner * 4;
  const fits = inputs.every((s) => s.bytes <= maxBind) && dst.bytes <= maxBind;
  // Work units: (o range, j range) whose input span is contiguous.
  const units: Array<{ o0: number; oN: number; j0: number; jN: number }> = [];
  if (fits) units.push({ o0: 0, oN: outer, j0: 0, jN: nChunks });
  else if (rowBytes <= maxBind / 2) {
    const rows = Math.max(1, Math.floor(maxBind / 2 / rowBytes));
    for (let o = 0; o < outer; o += rows) {
      units.push({ o0: o, oN: Math.min(rows, outer - o), j0: 0, jN: nChunks });
    }
  } else {
    const chunkBytes = CHUNK * inner * 4;
    const per = Math.max(1, Math.floor(maxBind / 2 / chunkBytes));
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < nChunks; j += per) {
        units.push({ o0: o, oN: 1, j0: j, jN: Math.min(per, nChunks - j) });
      }
    }
  }
  for (const w of units) {
    const inFirst = (w.o0 * R + w.j0 * CHUNK) * inner;
    const inLast = ((w.o0 + w.oN - 1) * R + Math.min(R, (w.j0 + w.jN) * CHUNK)) * inner; // exclusive
    const outFirst = (w.o0 * nChunks + w.j0) * inner;
    const outLast = ((w.o0 + w.oN - 1) * nChunks + w.j0 + w.jN) * inner;
    const inBase = fits ? 0 : Math.floor((inFirst * 4) / align) * align / 4;
    const outBase = fits ? 0 : Math.floor((outFirst * 4) / align) * align / 4;
    const u = new Uint32Array([
      outer === 0 ? 0 : w.oN,
      R,
      inner,
      CHUNK,
      nChunks,
      w.o0,
      w.j0,
      w.jN,
      inBase,
      outBase,
      ...extra,
    ]);
    const binds = fits
      ? inputBindings(inputs, reads)
      : inputs.map((s) => ({ storage: s, offset: inBase * 4, size: (inLast - inBase) * 4 }));
    const outBind = fits
      ? { storage: dst }
      : { storage: dst, offset: outBase * 4, size: (outLast - outBase) * 4 };
    const g = grid(w.oN * w.jN * inner, WG);
    if (memo && fits && units.length === 1) {
      memo.prepared = { src, params: u, grid: g, reads } satisfies KeptLaunch;
    }
    runtime.dispatch(src, u, binds, outBind, g);
  }
}
