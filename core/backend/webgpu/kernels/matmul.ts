/**
 * Batched matmul C[b] = op(A[b]) · op(B[b]) with transposes folded into the indexing.
 * Two tilings, chosen per adapter:
 * - "registers": each thread accumulates a TM×TN block straight from global memory. On
 *   llvmpipe every load/store costs ~15 cycles and there is no real shared memory, so big
 *   register blocks win (measured 4.2 GFLOP/s at 1024³ vs 0.6 for 16×16 shared tiles).
 * - "shared": workgroup-memory tiles of BM×BK and BK×BN with a TM×TN register block per
 *   thread — the classic layout for real GPUs.
 * jit fuses an elementwise epilogue into the stores, and may add a second product of the same
 * shape that the epilogue reads (`A·B + C·D` in one kernel).
 */
import { GpuStorage, type KernelSource, runtime } from "../runtime.ts";
import {
  batchSlices,
  inputBindings,
  type KeptLaunch,
  planReads,
  relaunch,
} from "../input_reads.ts";
import {
  helperId,
  inputBindingCount,
  inputDecl,
  type InputRead,
  leafValue,
  param,
  readBindings,
  readTag,
  SMALL_INDEX,
  splitIndex,
  stridedLayout,
  stridedLoads,
  summedLayout,
  type SummedRead,
  WGSL_HELPERS,
} from "../wgsl.ts";
import { broadcastStrides, collapseDims } from "../../../shape.ts";
import type { KernelMemo } from "../kernel_memo.ts";
import {
  adapterClass,
  chooseMatmulTiling,
  fittedTiling,
  type MatmulTiling,
  TILINGS,
} from "../adapter_profile.ts";

export { fittedTiling, type MatmulTiling, TILINGS };

let override: MatmulTiling | null = null;

/** Force a tiling (tests and benchmarks compare them); null restores the per-adapter choice. */
export function setMatmulTiling(t: MatmulTiling | null): void {
  override = t;
}

/**
 * The tiling of a [batch ×] m×k · k×n product on this adapter: the forced one, else the
 * adapter profile's choice among the tilings that fit (`adapter_profile.ts`).
 */
export function chooseTiling(
  m: number,
  n: number,
  vec4: boolean,
  k = 0,
  batch = 1,
): MatmulTiling {
  if (override) return override;
  return chooseMatmulTiling(adapterClass(runtime.info!), tilingFits, m, n, vec4, k, batch);
}

/**
 * Why a tiling does not fit the adapter, or null when it does: its accumulators per
 * invocation (`AdapterInfo.maxRegisterBlock`), invocations per workgroup, and shared tiles
 * within the workgroup memory limit (which WebGPU implementations do not all validate).
 */
export function tilingMisfit(t: MatmulTiling): string | null {
  const info = runtime.info!;
  const where = `${info.description}${info.glPath ? " on the GL path" : ""}`;
  if (t.tm * t.tn > info.maxRegisterBlock) {
    return `a ${t.tm}×${t.tn} register block keeps ${t.tm * t.tn} accumulators per invocation, ` +
      `over the ${info.maxRegisterBlock} this adapter computes correctly (${where})`;
  }
  if (t.wx * t.wy > info.limits.maxComputeInvocationsPerWorkgroup) {
    return `${t.wx}×${t.wy} invocations per workgroup exceed the adapter's ` +
      `${info.limits.maxComputeInvocationsPerWorkgroup}`;
  }
  const shared = t.kind === "shared" ? 4 * t.bk * (t.wy * t.tm + t.wx * t.tn) : 0;
  if (shared > info.limits.maxComputeWorkgroupStorageSize) {
    return `shared tiles of ${shared} bytes exceed the adapter's ` +
      `${info.limits.maxComputeWorkgroupStorageSize} bytes of workgroup memory`;
  }
  return null;
}

/** Whether a tiling fits the adapter (`tilingMisfit`). */
export function tilingFits(t: MatmulTiling): boolean {
  return tilingMisfit(t) === null;
}

export interface MatmulArgs {
  a: GpuStorage;
  b: GpuStorage;
  out: GpuStorage;
  batch: number;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  /** Elements between consecutive batch matrices (0 = broadcast). */
  aBatchStride: number;
  bBatchStride: number;
  /**
   * Another product of the same [batch, m, n] shape (its own K and transposes), which the
   * epilogue reads as `acc2`: computed in the same kernel when the tiling allows.
   */
  second?: SecondProduct;
  /**
   * The part of the k sum this dispatch computes, [start, end) (default all of it): on an
   * adapter that caps loop iterations (`AdapterInfo.maxLoopIterations`) a long k loop runs as
   * several dispatches, each adding its part to the previous one's (`runMatmul`).
   */
  kRange?: readonly [number, number];
}

/** The operands of a second product: `op(a)·op(b)`, [m, k]·[k, n] per batch. */
export interface SecondProduct {
  a: GpuStorage;
  b: GpuStorage;
  k: number;
  transA: boolean;
  transB: boolean;
  aBatchStride: number;
  bBatchStride: number;
}

/** Register blocks up to this size also accumulate a second product (twice the registers). */
const MAX_DUAL_BLOCK = 64;

function indexA(transA: boolean, row: string, kk: string): string {
  // A is [m, k] (or [k, m] when transposed), params: 0 M, 1 N, 2 K
  return transA ? `${kk} * ${param(0)} + ${row}` : `${row} * ${param(2)} + ${kk}`;
}

function indexB(transB: boolean, kk: string, col: string): string {
  return transB ? `${col} * ${param(2)} + ${kk}` : `${kk} * ${param(1)} + ${col}`;
}

/** Header shared by all variants: sizes, batch bases, this thread's clamped rows. */
function prologue(t: MatmulTiling): string[] {
  const lines = [
    `  let M = ${param(0)}; let N = ${param(1)}; let K = ${param(2)};`,
    `  let kS = ${param(8)}; let kE = ${param(9)};`,
    `  let bz = wid.z;`,
    `  let aBase = bz * ${param(3)}; let bBase = bz * ${param(4)}; let cBase = bz * M * N;`,
    `  let m0 = (wid.y * ${t.wy}u + lid.y) * ${t.tm}u; let n0 = (wid.x * ${t.wx}u + lid.x) * ${t.tn}u;`,
  ];
  for (let i = 0; i < t.tm; i++) lines.push(`  let r${i} = min(m0 + ${i}u, M - 1u);`);
  return lines;
}

/** How a variant's block is stored: see `epilogue`. */
interface StoreMode {
  /** The epilogue's leaves are addressed by row and column (`rowBase` once per row). */
  rows: boolean;
  /** A second product of the same block, `acc2` in the epilogue (its operands' transposes). */
  second: { transA: boolean; transB: boolean } | null;
}

/**
 * The second product's block, `acc2_{i}_{j}`, accumulated with scalar loads after the first
 * (its own K, transposes and batch strides in parameters 5–7 and bindings A2, B2).
 */
function secondProduct(
  t: MatmulTiling,
  col: (q: string, c: string) => string,
  op: { transA: boolean; transB: boolean },
): string[] {
  const lines = [
    `  let K2 = ${param(5)}; let a2Base = wid.z * ${param(6)}; let b2Base = wid.z * ${param(7)};`,
  ];
  for (let i = 0; i < t.tm; i++) lines.push(`  let r2_${i} = min(m0 + ${i}u, M - 1u);`);
  for (let j = 0; j < t.tn; j++) {
    lines.push(`  let c2_${j} = min(${col(`${j >> 2}u`, `${j & 3}u`)}, N - 1u);`);
  }
  for (let i = 0; i < t.tm; i++) {
    for (let j = 0; j < t.tn; j++) lines.push(`  var acc2_${i}_${j}: f32 = 0.0;`);
  }
  lines.push(`  for (var k2 = 0u; k2 < K2; k2 = k2 + 1u) {`);
  for (let i = 0; i < t.tm; i++) {
    const at = op.transA ? `k2 * M + r2_${i}` : `r2_${i} * K2 + k2`;
    lines.push(`    let x2_${i} = A2(a2Base + ${at});`);
  }
  for (let j = 0; j < t.tn; j++) {
    const at = op.transB ? `c2_${j} * K2 + k2` : `k2 * N + c2_${j}`;
    lines.push(`    let y2_${j} = B2(b2Base + ${at});`);
  }
  for (let i = 0; i < t.tm; i++) {
    for (let j = 0; j < t.tn; j++) {
      lines.push(`    acc2_${i}_${j} = fma(x2_${i}, y2_${j}, acc2_${i}_${j});`);
    }
  }
  lines.push(`  }`);
  return lines;
}

/**
 * Masked stores of the TM×TN block. `quad(i, q)` is a vec4 of row i's columns 4q..4q+3 and
 * `col(q, c)` the column of component c of quad q (both WGSL expressions).
 *
 * The stores are loops over rows, column quads and components with bounds Mesa cannot see
 * through (`min(4u, N)`: harmless, a column index is at least its quad and its component), so
 * it does not unroll them and the store and its epilogue appear once in the shader, not TM·TN
 * or TN times; a quad is picked by a select chain over the block. llvmpipe compiles a shader
 * when it first runs it, and unrolled stores were much of a matmul's compile time (a
 * 25×[10×40]·[40×40] product with an epilogue: ~110 → ~75 ms; steps ran no slower).
 * Gathering the block into an array indexed by the loop counters instead doubled the compile
 * time and ran 3–8% slower.
 */
function epilogue(
  t: MatmulTiling,
  quad: (i: number, q: number) => string,
  col: (q: string, c: string) => string,
  mode: StoreMode,
): string[] {
  const lines: string[] = [];
  if (mode.second) lines.push(...secondProduct(t, col, mode.second));
  const quads = Math.ceil(t.tn / 4);
  const pick = (value: (i: number, q: number) => string) => {
    let v = "";
    for (let i = 0; i < t.tm; i++) {
      for (let q = 0; q < quads; q++) {
        const here = [t.tm > 1 ? `i == ${i}u` : "", quads > 1 ? `q == ${q}u` : ""]
          .filter((x) => x).join(" && ");
        v = v ? `select(${v}, ${value(i, q)}, ${here})` : value(i, q);
      }
    }
    return v;
  };
  const one = t.tn === 1; // quads of one column: scalars, no component loop
  const width = Math.min(4, t.tn);
  // only a block whose last quad is partial needs its columns checked against TN
  const inBlock = t.tn > 4 && t.tn % 4 !== 0 ? ` && q * 4u + c < ${t.tn}u` : "";
  const args = [
    one ? "v" : "v[c]",
    mode.second ? (one ? "v2" : "v2[c]") : "",
    mode.rows ? "rb, n" : "",
  ].filter((x) => x).join(", ");
  lines.push(
    `  for (var i = 0u; i < min(${t.tm}u, M); i = i + 1u) {`,
    `    let m = m0 + i;`,
    `    if (m >= M) { break; }`,
    mode.rows ? `    let rb = rowBase(wid.z * M + m);` : "",
    quads > 1 ? `    for (var q = 0u; q < min(${quads}u, N); q = q + 1u) {` : `    { let q = 0u;`,
    `      let v = ${pick(quad)};`,
    mode.second ? `      let v2 = ${pick((i, q) => quadOf(t, i, q, "acc2_"))};` : "",
    one ? `      { let c = 0u;` : `      for (var c = 0u; c < min(${width}u, N); c = c + 1u) {`,
    `        let n = ${col("q", "c")};`,
    `        if (n < N${inBlock}) { store(cBase + m * N + n, ${args}); }`,
    `      }`,
    `    }`,
    `  }`,
  );
  return lines.filter((l) => l);
}

/** Row i's scalar accumulators `${prefix}${i}_${j}` of quad q as a vec4 (zeros past TN). */
function quadOf(t: MatmulTiling, i: number, q: number, prefix = "acc"): string {
  if (t.tn === 1) return `${prefix}${i}_0`;
  const parts = [0, 1, 2, 3].map((c) => 4 * q + c < t.tn ? `${prefix}${i}_${4 * q + c}` : "0.0");
  return `vec4<f32>(${parts.join(", ")})`;
}

/** Column of component c of quad q when a thread's columns are consecutive from n0. */
const nextColumn = (q: string, c: string) => `n0 + ${q} * 4u + ${c}`;

/** The scalar block's quads. */
const scalarQuads = (t: MatmulTiling) => (i: number, q: number) => quadOf(t, i, q);

/** Row pointers of A so the k loop adds one term per load. */
function rowPointers(t: MatmulTiling, transA: boolean): string[] {
  return Array.from(
    { length: t.tm },
    (_, i) => `  let ar${i} = aBase + ${transA ? `r${i}` : `r${i} * K`};`,
  );
}

function registersScalar(
  t: MatmulTiling,
  transA: boolean,
  transB: boolean,
  mode: StoreMode,
): string[] {
  const lines = [...prologue(t), ...rowPointers(t, transA)];
  for (let j = 0; j < t.tn; j++) lines.push(`  let c${j} = min(n0 + ${j}u, N - 1u);`);
  for (let i = 0; i < t.tm; i++) {
    for (let j = 0; j < t.tn; j++) lines.push(`  var acc${i}_${j}: f32 = 0.0;`);
  }
  lines.push(`  for (var kk = kS; kk < kE; kk = kk + 1u) {`);
  for (let i = 0; i < t.tm; i++) {
    lines.push(`    let a${i} = A(ar${i} + ${transA ? "kk * M" : "kk"});`);
  }
  for (let j = 0; j < t.tn; j++) {
    lines.push(`    let b${j} = B(bBase + ${indexB(transB, "kk", `c${j}`)});`);
  }
  for (let i = 0; i < t.tm; i++) {
    for (let j = 0; j < t.tn; j++) {
      lines.push(`    acc${i}_${j} = fma(a${i}, b${j}, acc${i}_${j});`);
    }
  }
  lines.push(`  }`);
  return [...lines, ...epilogue(t, scalarQuads(t), nextColumn, mode)];
}

/**
 * B read as vec4 rows (N % 4 = 0): 4 columns per load into vec4 accumulators, A one scalar
 * per row and k step. Column quads are interleaved across the workgroup's x lanes (lane l
 * owns quads nQ + l + wx·q), so the lanes that llvmpipe runs as one SIMD vector read
 * consecutive vec4s of B. A is read as scalars, one k step per iteration, not as vec4 along K
 * with the k loop unrolled 4×: llvmpipe gathers a vec4 per lane at about the cost of four
 * scalars, so the unrolled loop ran no faster — slower, in fact (1024³ 4.4 → 4.7 GFLOP/s,
 * 25×[10×40]·[40×40] 434–461 → 364 µs of GPU-thread time) — while its four copies of B's loads
 * and products made the kernel slow to compile (1024³ cold first call 3.1 → 1.2 s).
 */
function registersVec4(t: MatmulTiling, transA: boolean, mode: StoreMode): string[] {
  const Q = t.tn / 4;
  const lines = [
    ...prologue(t),
    ...rowPointers(t, transA),
    `  let NQ = N / 4u; let bq = bBase / 4u;`,
    `  let nQ = wid.x * ${t.wx * Q}u + lid.x;`,
  ];
  for (let q = 0; q < Q; q++) lines.push(`  let cq${q} = min(nQ + ${q * t.wx}u, NQ - 1u);`);
  for (let i = 0; i < t.tm; i++) {
    for (let q = 0; q < Q; q++) lines.push(`  var acc${i}_${q} = vec4<f32>(0.0);`);
  }
  lines.push(`  for (var kk = kS; kk < kE; kk = kk + 1u) {`);
  for (let i = 0; i < t.tm; i++) {
    lines.push(`    let a${i} = vec4<f32>(A(ar${i} + ${transA ? "kk * M" : "kk"}));`);
  }
  lines.push(`    let brow = bq + kk * NQ;`);
  for (let q = 0; q < Q; q++) lines.push(`    let b${q} = B(brow + cq${q});`);
  for (let i = 0; i < t.tm; i++) {
    for (let q = 0; q < Q; q++) {
      lines.push(`    acc${i}_${q} = fma(a${i}, b${q}, acc${i}_${q});`);
    }
  }
  lines.push(`  }`);
  // column quad q of this lane is nQ + wx·q
  const col = (q: string, c: string) => `(nQ + ${q} * ${t.wx}u) * 4u + ${c}`;
  return [...lines, ...epilogue(t, (i, q) => `acc${i}_${q}`, col, mode)];
}

function sharedTiles(
  t: MatmulTiling,
  transA: boolean,
  transB: boolean,
  mode: StoreMode,
): string[] {
  const { wx, wy, tm, tn } = t;
  const bm = wy * tm, bn = wx * tn, bk = t.bk, threads = wx * wy;
  const lines = [...prologue(t)];
  for (let i = 0; i < tm; i++) {
    for (let j = 0; j < tn; j++) lines.push(`  var acc${i}_${j}: f32 = 0.0;`);
  }
  lines.push(
    `  let tid = lid.y * ${wx}u + lid.x;`,
    `  let mTile = wid.y * ${bm}u; let nTile = wid.x * ${bn}u;`,
    `  for (var k0 = kS; k0 < kE; k0 = k0 + ${bk}u) {`,
    `    for (var l = tid; l < ${bm * bk}u; l = l + ${threads}u) {`,
    `      let rr = l / ${bk}u; let kk = l % ${bk}u; let gm = mTile + rr; let gk = k0 + kk;`,
    `      As[kk * ${bm}u + rr] = select(0.0, A(aBase + ${
      indexA(transA, "min(gm, M - 1u)", "min(gk, K - 1u)")
    }), gm < M && gk < kE);`,
    `    }`,
    `    for (var l = tid; l < ${bk * bn}u; l = l + ${threads}u) {`,
    `      let kk = l / ${bn}u; let cc = l % ${bn}u; let gn = nTile + cc; let gk = k0 + kk;`,
    `      Bs[kk * ${bn}u + cc] = select(0.0, B(bBase + ${
      indexB(transB, "min(gk, K - 1u)", "min(gn, N - 1u)")
    }), gn < N && gk < kE);`,
    `    }`,
    `    workgroupBarrier();`,
    `    for (var kk = 0u; kk < ${bk}u; kk = kk + 1u) {`,
  );
  for (let i = 0; i < tm; i++) {
    lines.push(`      let a${i} = As[kk * ${bm}u + lid.y * ${tm}u + ${i}u];`);
  }
  for (let j = 0; j < tn; j++) {
    lines.push(`      let b${j} = Bs[kk * ${bn}u + lid.x * ${tn}u + ${j}u];`);
  }
  for (let i = 0; i < tm; i++) {
    for (let j = 0; j < tn; j++) {
      lines.push(`      acc${i}_${j} = fma(a${i}, b${j}, acc${i}_${j});`);
    }
  }
  lines.push(`    }`, `    workgroupBarrier();`, `  }`);
  return [...lines, ...epilogue(t, scalarQuads(t), nextColumn, mode)];
}

/**
 * An elementwise epilogue applied to each output before it is stored (jit fuses a bias add or
 * an activation into the matmul this way). `acc` names the accumulator in `expr`/`prelude`;
 * leaves are read through strides over the output shape.
 */
export interface MatmulEpilogue {
  leaves: {
    storage: GpuStorage;
    dtype: "f32" | "i32" | "u32" | "bool";
    strides: number[];
    /** Element offset of output index 0 (a window of a stored value); 0 when absent. */
    offset?: number;
    /** Read as a sum of elements (f32 only). */
    sum?: SummedRead;
  }[];
  /** Statements, then the stored value; they see `acc` and `v0..vN-1`. */
  prelude: string;
  expr: string;
  helpers: string;
  /** The output's shape (its linear index is the store index). */
  shape: readonly number[];
  /**
   * Whether the last leaf is the sum of the earlier parts of k (a chunked product): it is
   * added to `acc` before the rest of the epilogue sees it.
   */
  prior?: boolean;
}

interface EpilogueShape {
  dtypes: MatmulEpilogue["leaves"][number]["dtype"][];
  /** Which leaves are `SummedRead`s (their extents and strides are the last parameters). */
  summed: boolean[];
  /**
   * Whether leaves are addressed by output row and column (the epilogue's last axis is the
   * product's columns): one index decomposition per row. Otherwise by the linear store index.
   */
  rows: boolean;
  /** Rank of the (collapsed) shape decomposed: the leading axes with `rows`, all without. */
  rank: number;
  /** A second product computed in the same kernel, `acc2` in the expression. */
  second: { transA: boolean; transB: boolean } | null;
  prelude: string;
  expr: string;
  helpers: string;
  /** The output (batch·M·N) is at most `SMALL_INDEX` elements. */
  small: boolean;
  /** The last leaf is the earlier parts' sum (`MatmulEpilogue.prior`). */
  prior: boolean;
}

type Variant = "scalar" | "vec4B";

/** M, N, K, the batch strides, the second product's K and strides, the k range. */
const BASE_PARAMS = 10;

function storeFn(e: EpilogueShape | null): { code: string; params: number } {
  if (!e) return { code: `fn store(i: u32, v: f32) { C[i] = v; }`, params: BASE_PARAMS };
  const n = e.dtypes.length;
  const { shapeP, leafP, end } = stridedLayout(BASE_PARAMS, e.rank, n);
  const accs = `${e.prior ? "accPart" : "acc"}: f32${e.second ? ", acc2: f32" : ""}`;
  const addPrior = e.prior ? `  let acc = accPart + v${n - 1};` : "";
  // summed leaves' extents and strides follow the rest
  if (!e.rows) {
    const { sumP, end: params } = summedLayout(e.summed, end);
    const lines = [
      `fn store(i: u32, ${accs}) {`,
      ...stridedLoads("i", e.rank, shapeP, leafP, e.dtypes, (k) => `E${k}`, e.small, sumP),
    ];
    lines.push(addPrior, e.prelude, `  C[i] = ${e.expr};`, `}`);
    return { code: lines.join("\n"), params };
  }
  // params: the row shape, per leaf its base and row strides, then per leaf its column stride
  const colP = (k: number) => end + k;
  const { sumP, end: params } = summedLayout(e.summed, end + n);
  const lines = [
    `fn rowBase(g: u32) -> array<u32, ${n}> {`,
    `  var rem = g;`,
    `  var o = array<u32, ${n}>(${leafP.map((p) => param(p)).join(", ")});`,
  ];
  for (let d = e.rank - 1; d >= 0; d--) {
    lines.push(
      d > 0 ? `  { ${splitIndex("rem", param(shapeP + d), e.small)}` : `  { let c = rem;`,
    );
    for (let k = 0; k < n; k++) {
      lines.push(`    o[${k}] = o[${k}] + c * ${param(leafP[k] + 1 + d)};`);
    }
    lines.push(`  }`);
  }
  lines.push(`  return o;`, `}`, `fn store(i: u32, ${accs}, rb: array<u32, ${n}>, c: u32) {`);
  e.dtypes.forEach((d, k) =>
    lines.push(
      leafValue(k, d, `rb[${k}] + c * ${param(colP(k))}`, (at) => `E${k}(${at})`, sumP[k]),
    )
  );
  lines.push(addPrior, e.prelude, `  C[i] = ${e.expr};`, `}`);
  return { code: lines.join("\n"), params };
}

/**
 * `epilogue` (or a plain store) reading a second product computed on its own, `product` laid
 * out like the output (`shape`), as `acc2`.
 */
function withProductLeaf(
  epilogue: MatmulEpilogue | undefined,
  product: GpuStorage,
  shape: readonly number[],
): MatmulEpilogue {
  return {
    leaves: [
      ...(epilogue?.leaves ?? []),
      { storage: product, dtype: "f32", strides: broadcastStrides(shape, shape) },
    ],
    prelude: `  let acc2 = v${epilogue?.leaves.length ?? 0};\n${epilogue?.prelude ?? ""}`,
    expr: epilogue?.expr ?? "acc + acc2",
    helpers: epilogue?.helpers ?? "",
    shape,
  };
}

/** Loop iterations a dispatch keeps in hand for its stores and epilogue. */
const LOOP_MARGIN = 1024;

/**
 * The longest part of the k sum one dispatch may loop over within the adapter's loop cap
 * (`AdapterInfo.maxLoopIterations`): every k step is one iteration of a register kernel; a
 * shared-tile kernel runs, per tile of bk steps, its load loops and bk products. The stores
 * loop too — per element of the block, once plus the terms of each summed epilogue leaf.
 */
function kSpan(t: MatmulTiling, epilogue: MatmulEpilogue | undefined): number {
  const cap = runtime.info!.maxLoopIterations;
  if (!Number.isFinite(cap)) return Infinity;
  const sumTerms = (epilogue?.leaves ?? []).reduce((n, l) => n + (l.sum?.extent ?? 0), 0);
  const stores = t.tm * t.tn * (1 + sumTerms);
  const budget = Math.max(1, cap - LOOP_MARGIN - stores);
  if (t.kind !== "shared") return budget;
  const threads = t.wx * t.wy;
  const perTile = 1 + Math.ceil((t.wy * t.tm * t.bk) / threads) +
    Math.ceil((t.bk * t.wx * t.tn) / threads) + t.bk;
  return Math.max(1, Math.floor(budget / perTile)) * t.bk;
}

/**
 * A product whose k sum is longer than one dispatch may loop (`kSpan`), as dispatches over
 * consecutive parts of k: each adds its part to the previous parts' sum (a leaf of its
 * epilogue, kept in two scratch buffers in turn), and the last applies the epilogue and writes
 * the output. A second product is computed first on its own (it is split too) and read as a
 * leaf.
 */
function runInParts(args: MatmulArgs, epilogue: MatmulEpilogue | undefined, span: number): void {
  const size = args.batch * args.m * args.n;
  const shape = epilogue ? epilogue.shape : [size];
  const scratch: GpuStorage[] = [];
  const scratchBuffer = () => {
    const s = new GpuStorage(size * 4);
    scratch.push(s);
    return s;
  };
  try {
    let epi = epilogue;
    const second = args.second;
    if (second) {
      const product = scratchBuffer();
      runMatmul({ ...args, ...second, out: product, second: undefined });
      epi = withProductLeaf(epilogue, product, shape);
    }
    const parts = Math.ceil(args.k / span);
    const sums = parts > 1 ? [scratchBuffer(), scratchBuffer()] : [];
    for (let p = 0; p < parts; p++) {
      const last = p === parts - 1;
      const prior = p > 0 ? sums[(p - 1) % 2] : null;
      const partEpilogue: MatmulEpilogue | undefined = prior
        ? {
          leaves: [
            ...((last ? epi?.leaves : undefined) ?? []),
            { storage: prior, dtype: "f32", strides: broadcastStrides(shape, shape) },
          ],
          prelude: last ? epi?.prelude ?? "" : "",
          expr: last ? epi?.expr ?? "acc" : "acc",
          helpers: last ? epi?.helpers ?? "" : "",
          shape: last && epi ? epi.shape : shape,
          prior: true,
        }
        : last
        ? epi
        : undefined;
      runMatmul({
        ...args,
        second: undefined,
        out: last ? args.out : sums[p % 2],
        kRange: [p * span, Math.min(args.k, (p + 1) * span)],
      }, partEpilogue);
    }
  } finally {
    for (const s of scratch) s.release();
  }
}

/** Reads of A, B, a second product's A2 and B2, and the epilogue's leaves, in binding order. */
type MatmulReads = InputRead[];

function source(
  t: MatmulTiling,
  transA: boolean,
  transB: boolean,
  variant: Variant,
  epi: EpilogueShape | null,
  reads: MatmulReads,
): string {
  const mode: StoreMode = {
    rows: epi?.rows ?? false,
    second: epi?.second ?? null,
  };
  const body = t.kind === "shared"
    ? sharedTiles(t, transA, transB, mode)
    : variant === "vec4B"
    ? registersVec4(t, transA, mode)
    : registersScalar(t, transA, transB, mode);
  const shared = t.kind === "shared"
    ? `var<workgroup> As: array<f32, ${t.wy * t.tm * t.bk}>;\nvar<workgroup> Bs: array<f32, ${
      t.bk * t.wx * t.tn
    }>;`
    : "";
  const store = storeFn(epi);
  // sliced operands: batch-stride parameter, then their window step and last offset at the end
  const batchStrideP = [3, 4, 6, 7];
  const names = ["A", "B", "A2", "B2"];
  const sliced: Sliced[] = [];
  let nParams = store.params;
  reads.forEach((r, k) => {
    if (r.kind !== "slices") return;
    sliced.push({
      name: names[k],
      base: r.rows ? `wid.y * ${t.wy * t.tm}u * K` : `wid.z * ${param(batchStrideP[k])}`,
      step: param(nParams),
      last: param(nParams + 1),
      windows: r.windows,
    });
    nParams += 2;
  });
  const decls: string[] = [];
  let binding = 1;
  const declare = (name: string, dtype: "f32" | "i32" | "u32" | "bool", k: number, v4: boolean) => {
    decls.push(inputDecl(name, binding, dtype, reads[k], v4));
    binding += readBindings(reads[k]);
  };
  declare("A", "f32", 0, false);
  declare("B", "f32", 1, variant === "vec4B");
  if (mode.second) {
    declare("A2", "f32", 2, false);
    declare("B2", "f32", 3, false);
  }
  const first = mode.second ? 4 : 2;
  (epi?.dtypes ?? []).forEach((d, k) => declare(`E${k}`, d, first + k, false));
  return `struct Params { d: array<vec4<u32>, ${Math.ceil(nParams / 4)}> };
@group(0) @binding(0) var<uniform> u: Params;
${decls.join("\n")}
@group(0) @binding(${binding}) var<storage, read_write> C: array<f32>;
${shared}
${WGSL_HELPERS}
${epi?.helpers ?? ""}
${store.code}
@compute @workgroup_size(${t.wx}, ${t.wy}, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
${hoistSlices(body, sliced).join("\n")}
}`;
}

/** A batched operand read as `slices`: its accessor name and where its window parameters are. */
interface Sliced {
  name: string;
  /** Element index of this workgroup's batch matrix. */
  base: string;
  /** Window step and last window offset (elements). */
  step: string;
  last: string;
  windows: number;
}

/**
 * Each k loop that reads a sliced operand, once per window: the workgroup computes which
 * window holds its batch matrix and runs that copy (llvmpipe leaves a loop at once when no
 * lane is active in it, so the other copies cost a branch each).
 */
function hoistSlices(lines: string[], sliced: Sliced[]): string[] {
  if (!sliced.length) return lines;
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].startsWith("  for (var ")) {
      out.push(lines[i]);
      continue;
    }
    const end = lines.indexOf("  }", i);
    if (end < 0) throw new Error(`internal: matmul loop without its closing line: ${lines[i]}`);
    const loop = lines.slice(i, end + 1);
    const uses = (x: Sliced) => loop.some((l) => new RegExp(`\\b${x.name}\\(`).test(l));
    const x = sliced.find(uses);
    if (!x) {
      out.push(...loop);
    } else {
      const reader = new RegExp(`\\b${x.name}\\(`, "g");
      out.push(
        `  let ${x.name}_win = min(${x.base} / ${x.step}, ${x.windows - 1}u);`,
        `  ${x.name}_off = min(${x.name}_win * ${x.step}, ${x.last});`,
      );
      for (let w = 0; w < x.windows; w++) {
        const head = w === 0 ? "  if" : w < x.windows - 1 ? "  } else if" : "  } else";
        out.push(w < x.windows - 1 ? `${head} (${x.name}_win == ${w}u) {` : `${head} {`);
        out.push(...loop.map((l) => `  ${l.replace(reader, `${x.name}_w${w}(`)}`));
      }
      out.push(`  }`);
    }
    i = end;
  }
  return out;
}

const sources = new Map<string, string>();

function cachedSource(
  t: MatmulTiling,
  transA: boolean,
  transB: boolean,
  variant: Variant,
  epi: EpilogueShape | null,
  reads: MatmulReads,
): string {
  const epiKey = epi
    ? `${epi.small}|${epi.dtypes}|${
      epi.summed.map(Number).join("")
    }|${epi.rows}|${epi.prior}|${epi.rank}|${epi.second?.transA},${epi.second?.transB}|${
      helperId(epi.helpers)
    }|${epi.prelude}|${epi.expr}`
    : "";
  const key = `${t.kind},${t.wx},${t.wy},${t.tm},${t.tn},${t.bk}|${transA}|${transB}|${variant}|${
    reads.map(readTag).join()
  }|${epiKey}`;
  let code = sources.get(key);
  if (!code) sources.set(key, code = source(t, transA, transB, variant, epi, reads));
  return code;
}

/** A product's kept launch (`KeptLaunch`; ~25 µs of JS per product to derive). */
interface PreparedMatmul extends KeptLaunch {
  /** The forced tiling it was made under (`setMatmulTiling`): another one derives again. */
  override: MatmulTiling | null;
}

type Grid = [number, number, number];

/** The storages a product reads, in binding order. */
function operandsOf(args: MatmulArgs, epilogue?: MatmulEpilogue): GpuStorage[] {
  const operands = [args.a, args.b];
  if (args.second) operands.push(args.second.a, args.second.b);
  if (epilogue) { for (const l of epilogue.leaves) operands.push(l.storage); }
  return operands;
}

/**
 * A single product's A (not transposed) planned as several uniform windows is read instead by
 * row blocks (`slices` by rows): each workgroup's wy·tm rows lie in one window, and it loops
 * over that window alone — where a load picking among the windows gathers from each. May take
 * more windows than planned, within the uniform bindings the other operands leave. On llvmpipe
 * (beside other work) the MLP policy's [1024×64]·[64×2] layer took ~1.1 ms picking among 4
 * windows, ~0.7 from storage, 0.5–0.7 by row blocks; [1024×64]·[64×64] 1.45–1.65, 1.4–1.5 and
 * 0.97–1.1 ms.
 */
function sliceRows(
  args: MatmulArgs,
  operands: GpuStorage[],
  t: MatmulTiling,
  reads: MatmulReads,
): void {
  const a = reads[0];
  if (args.batch !== 1 || args.transA || args.second || a.kind !== "uniform" || a.windows < 2) {
    return;
  }
  const rows = t.wy * t.tm;
  const count = Math.ceil(args.m / rows);
  if (count < 2) return;
  const others = reads.slice(1).reduce((n, r) => n + (r.kind === "storage" ? 0 : r.windows), 0);
  const budget = runtime.info!.limits.maxUniformBuffersPerShaderStage - 1 - others;
  const block = rows * args.k;
  const read = batchSlices(operands[0], a, count, block, block, budget, args.m * args.k);
  if (read?.kind === "slices") reads[0] = { ...read, rows: true };
}

/**
 * The read plan of a product's operands, with at most one batched operand per k loop (A or
 * B; A2 or B2 — the one with more windows) read as `slices`: on llvmpipe a load that picks
 * among 3 windows costs 3 gathers, and a 25×[10×40]·[40×40] product reading per-task B
 * through 3 windows took 255–275 µs; looping over the one window its workgroup needs,
 * 150–170 µs (a single window: 155–205).
 */
function sliceBatches(args: MatmulArgs, operands: GpuStorage[], t: MatmulTiling): MatmulReads {
  const reads = planReads(operands);
  sliceRows(args, operands, t, reads);
  const pair = (a: number, b: number, specs: [number, number][]) => {
    const options = [a, b]
      .map((k, i) => ({ k, read: batchSlices(operands[k], reads[k], args.batch, ...specs[i]) }))
      .filter((o) => o.read !== null);
    if (!options.length) return;
    const windows = (o: { k: number }) => readBindings(reads[o.k]);
    const best = options.reduce((x, y) => (windows(y) > windows(x) ? y : x));
    reads[best.k] = best.read!;
  };
  pair(0, 1, [[args.aBatchStride, args.m * args.k], [args.bBatchStride, args.k * args.n]]);
  const s = args.second;
  if (s) pair(2, 3, [[s.aBatchStride, args.m * s.k], [s.bBatchStride, s.k * args.n]]);
  return reads;
}

export function runMatmul(args: MatmulArgs, epilogue?: MatmulEpilogue, memo?: KernelMemo): void {
  runtime.allocBuffer(args.out, "matmul");
  if (args.m * args.n * args.batch === 0) return;
  const prepared = memo?.prepared as PreparedMatmul | undefined;
  if (
    prepared && prepared.override === override &&
    relaunch(prepared, operandsOf(args, epilogue), { storage: args.out })
  ) return;
  const vec4Able = args.n % 4 === 0 && args.k % 4 === 0 && !args.transA && !args.transB;
  const t = chooseTiling(args.m, args.n, vec4Able, args.k, args.batch);
  const misfit = tilingMisfit(t);
  if (misfit) {
    // a forced tiling (setMatmulTiling) the adapter would run into zeros or refuse late
    throw new RangeError(`matmul: ${misfit}; choose a smaller tiling`);
  }
  const span = kSpan(t, epilogue);
  const second = args.second;
  // a second product computed in the same kernel loops over its k after the first's
  if (!args.kRange && args.k + (second?.k ?? 0) > span) {
    runInParts(args, epilogue, span);
    return;
  }
  if (second && (!epilogue || t.kind !== "registers" || t.tm * t.tn > MAX_DUAL_BLOCK)) {
    // compute it on its own and read it as one more leaf of the epilogue
    const product = new GpuStorage(args.batch * args.m * args.n * 4);
    try {
      runMatmul({ ...args, ...second, out: product, second: undefined });
      const shape = epilogue ? epilogue.shape : [args.batch * args.m * args.n];
      runMatmul({ ...args, second: undefined }, withProductLeaf(epilogue, product, shape));
    } finally {
      product.release();
    }
    return;
  }
  // vec4 loads of B need whole quads along its rows and no transpose
  const vec4B = t.kind === "registers" && t.tn % 4 === 0 && args.n % 4 === 0 && !args.transB;
  // leaves addressed by row and column when the epilogue's last axis is the product's columns
  const rows = !!epilogue && epilogue.leaves.length > 0 && epilogue.shape.at(-1) === args.n;
  const collapsed = epilogue
    ? rows
      ? collapseDims(
        epilogue.shape.slice(0, -1),
        epilogue.leaves.map((l) => l.strides.slice(0, -1)),
      )
      : collapseDims(epilogue.shape, epilogue.leaves.map((l) => l.strides))
    : null;
  const epi: EpilogueShape | null = epilogue && collapsed
    ? {
      dtypes: epilogue.leaves.map((l) => l.dtype),
      summed: epilogue.leaves.map((l) => !!l.sum),
      rows,
      rank: collapsed.shape.length,
      second: second ? { transA: second.transA, transB: second.transB } : null,
      prelude: epilogue.prelude,
      expr: epilogue.expr,
      helpers: epilogue.helpers,
      small: args.batch * args.m * args.n <= SMALL_INDEX,
      prior: !!epilogue.prior,
    }
    : null;
  const operands = operandsOf(args, epilogue);
  const reads = t.kind === "registers" ? sliceBatches(args, operands, t) : planReads(operands);
  const code = cachedSource(
    t,
    args.transA,
    args.transB,
    vec4B ? "vec4B" : "scalar",
    epi,
    reads,
  );
  const params = [
    args.m,
    args.n,
    args.k,
    args.aBatchStride,
    args.bBatchStride,
    second?.k ?? 0,
    second?.aBatchStride ?? 0,
    second?.bBatchStride ?? 0,
    args.kRange?.[0] ?? 0,
    args.kRange?.[1] ?? args.k,
  ];
  if (collapsed) {
    params.push(
      ...collapsed.shape,
      ...collapsed.strides.flatMap((st, k) => [
        (epilogue!.leaves[k].offset ?? 0) >>> 0,
        ...st.map((v) => v >>> 0),
      ]),
    );
    if (rows) params.push(...epilogue!.leaves.map((l) => l.strides.at(-1)! >>> 0));
    for (const l of epilogue!.leaves) if (l.sum) params.push(l.sum.extent, l.sum.stride);
  }
  // each sliced operand's window step and last window offset, in elements
  for (const r of reads) if (r.kind === "slices") params.push(r.stride / 4, r.last / 4);
  const grid: Grid = [
    Math.ceil(args.n / (t.wx * t.tn)),
    Math.ceil(args.m / (t.wy * t.tm)),
    args.batch,
  ];
  const src: KernelSource = {
    code,
    inputs: inputBindingCount(reads),
    // sizes in the label name the product in errors and profiles
    label: `${epilogue ? "matmul+epilogue" : "matmul"} ${args.batch}×[${args.m}×${args.k}${
      args.transA ? "ᵀ" : ""
    }]·[${args.k}×${args.n}${args.transB ? "ᵀ" : ""}]${
      second
        ? ` + [${args.m}×${second.k}${second.transA ? "ᵀ" : ""}]·[${second.k}×${args.n}${
          second.transB ? "ᵀ" : ""
        }]`
        : ""
    } ${t.wx}×${t.wy}×${t.tm}×${t.tn}`,
  };
  const block = Uint32Array.from(params);
  if (memo) memo.prepared = { src, params: block, grid, reads, override } satisfies PreparedMatmul;
  runtime.dispatch(src, block, inputBindings(operands, reads), { storage: args.out }, grid);
}
