/**
 * The reduction kernel family. The input is viewed as [outer, R, inner] (the reduced axes are
 * one contiguous run; the op layer reduces separate runs one after another). Each thread
 * reduces a chunk of at most C consecutive r for one (outer, inner) position, writing
 * [outer, ceil(R/C), inner] partials; stages repeat until one chunk remains. This gives
 * parallelism for full reductions, pairwise-like accuracy for sums, and natural splitting of
 * inputs larger than the per-binding limit.
 */
import type { DType } from "../../../dtype.ts";
import { GpuStorage, runtime } from "../runtime.ts";
import { bindings, entry, grid, loadAs, param, storeAs, WGSL_HELPERS } from "../wgsl.ts";

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

interface Stage {
  op: ReduceOp;
  dtype: DType;
  /** For arg stages after the first: the input carries (value, index) pairs in two tensors. */
  pairedInput: boolean;
  writeIndex: boolean;
}

function stageSource(s: Stage): { code: string; inputs: number; params: number } {
  const arg = s.op === "argmax" || s.op === "argmin";
  const raw = s.dtype === "bool" ? "u32" : s.dtype;
  // params: outer, R, inner, C, nChunks, oStart, jStart, jCount, inBase, outBase
  const P = (i: number) => param(i);
  const inputs: DType[] = s.pairedInput ? [s.dtype, "i32"] : [s.dtype];
  const outDtype: DType = s.writeIndex ? "i32" : s.dtype;
  const body = `
  let inner = ${P(2)};
  let jCount = ${P(7)};
  if (t >= ${P(0)} * jCount * inner) { return; }
  let i = t % inner;
  let j = ${P(6)} + (t / inner) % jCount;
  let o = ${P(5)} + t / (inner * jCount);
  let R = ${P(1)};
  let r0 = j * ${P(3)};
  let r1 = min(R, r0 + ${P(3)});
  var acc: ${raw} = ${identity(s.op, s.dtype)};
  ${arg ? "var best: i32 = 0; var found: u32 = 0u;" : ""}
  for (var r = r0; r < r1; r = r + 1u) {
    let at = (o * R + r) * inner + i - ${P(8)};
    let x: ${raw} = in0[at];
    ${arg ? (s.pairedInput ? "let xi = in1[at];" : "let xi = i32(r);") : ""}
    ${combine(s.op, s.dtype)}
  }
  let dst = (o * ${P(4)} + j) * inner + i - ${P(9)};
  ${s.writeIndex ? "out[dst] = best;" : `out[dst] = ${storeAs(s.dtype, loadAs(s.dtype, "acc"))};`}`;
  const code = [bindings(10, inputs, outDtype), WGSL_HELPERS, entry(WG, body)].join("\n");
  return { code, inputs: inputs.length, params: 10 };
}

/**
 * Reduce `input` viewed as [outer, R, inner] over R into `out` ([outer, inner]).
 * For arg reductions `out` receives i32 indices along R.
 */
export function runReduce(
  label: string,
  op: ReduceOp,
  dtype: DType,
  input: GpuStorage,
  outer: number,
  R: number,
  inner: number,
  out: GpuStorage,
): void {
  runtime.allocBuffer(out, label);
  if (outer * inner === 0) return;
  const arg = op === "argmax" || op === "argmin";
  let values = input;
  let index: GpuStorage | null = null;
  let r = R;
  for (;;) {
    const nChunks = Math.max(1, Math.ceil(r / CHUNK));
    const last = nChunks === 1;
    const temp = () => new GpuStorage(outer * nChunks * inner * 4);
    const inputs = index ? [values, index] : [values];
    const run = (writeIndex: boolean, dst: GpuStorage) => {
      const src = stageSource({ op, dtype, pairedInput: index !== null, writeIndex });
      dispatchStage(
        { code: src.code, inputs: src.inputs, label },
        inputs,
        dst,
        outer,
        r,
        inner,
        nChunks,
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
    if (values !== input) values.release();
    index?.release();
    if (last) return;
    values = nextValues!;
    index = nextIndex;
    r = nChunks;
  }
}

/** One stage, split into several dispatches when operands exceed the per-binding limit. */
function dispatchStage(
  src: { code: string; inputs: number; label: string },
  inputs: GpuStorage[],
  dst: GpuStorage,
  outer: number,
  R: number,
  inner: number,
  nChunks: number,
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
    ]);
    const binds = inputs.map((s) =>
      fits ? { storage: s } : { storage: s, offset: inBase * 4, size: (inLast - inBase) * 4 }
    );
    const outBind = fits
      ? { storage: dst }
      : { storage: dst, offset: outBase * 4, size: (outLast - outBase) * 4 };
    runtime.dispatch(src, u, binds, outBind, grid(w.oN * w.jN * inner, WG));
  }
}
