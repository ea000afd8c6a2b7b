/**
 * Adapter tuning in one place: every choice metagrad makes differently per kind of adapter —
 * matmul tilings, uniform windows for small inputs, how big a fused matmul epilogue may be —
 * for three classes of adapter: software (llvmpipe, SwiftShader, WARP: a CPU running WGSL),
 * integrated and discrete GPUs. Tuning for a real GPU is this file. What an adapter can do
 * correctly (its limits, the loop cap and register-block ceiling measured at start-up) is not
 * tuning and lives in device.ts; a tiling is only chosen where it fits (`fits`).
 */
import type { AdapterInfo } from "./device.ts";
import { UNIFORM_WINDOW_BYTES } from "./wgsl.ts";

/** The kinds of adapter tuned for. */
export type AdapterClass = "software" | "integrated" | "discrete";

/**
 * The class of an adapter: software when the browser or Deno says it is a fallback adapter,
 * integrated for the usual integrated-GPU vendors, else discrete. Integrated and discrete GPUs
 * share one tuning today (the shared-memory tiling); software adapters have their own.
 */
export function adapterClass(info: AdapterInfo): AdapterClass {
  if (info.isFallbackAdapter) return "software";
  const vendor = `${info.vendor} ${info.description}`.toLowerCase();
  return /intel|apple|arm|qualcomm|mali|adreno|powervr/.test(vendor) ? "integrated" : "discrete";
}

// ------------------------------------------------------------------------- matmul tilings

/** How a matmul kernel splits its output over threads (`kernels/matmul.ts`). */
export interface MatmulTiling {
  /** "registers": a TM×TN block per thread from global memory; "shared": workgroup tiles. */
  kind: "registers" | "shared";
  /** Threads per workgroup along n (x). */
  wx: number;
  /** Threads per workgroup along m (y). */
  wy: number;
  /** Outputs per thread along m. */
  tm: number;
  /** Outputs per thread along n. */
  tn: number;
  /** K step of the shared tiles. */
  bk: number;
}

/**
 * The fixed tilings. On llvmpipe every load and store costs ~15 cycles and there is no real
 * shared memory, so big register blocks win (4.2 GFLOP/s at 1024³ against 0.6 for 16×16 shared
 * tiles); GPUs take the classic shared-memory layout.
 */
export const TILINGS: Record<string, MatmulTiling> = {
  llvmpipeLarge: { kind: "registers", wx: 8, wy: 4, tm: 16, tn: 32, bk: 0 },
  llvmpipe: { kind: "registers", wx: 8, wy: 8, tm: 16, tn: 16, bk: 0 },
  llvmpipeNarrow: { kind: "registers", wx: 8, wy: 4, tm: 16, tn: 8, bk: 0 },
  llvmpipeSmall: { kind: "registers", wx: 8, wy: 8, tm: 4, tn: 4, bk: 0 },
  gpu: { kind: "shared", wx: 16, wy: 16, tm: 4, tn: 4, bk: 16 },
};

/** Workgroups a fitted tiling aims for, so both of a 2-core box's llvmpipe threads work. */
const MIN_WORKGROUPS = 4;

/**
 * Small products (MAML-sized layers) on llvmpipe: a register block and workgroup shaped to
 * the matrix so almost no thread computes clamped duplicates — at these sizes the wasted
 * loads of a fixed 32×32 tile cost more than the work. Measured for [25,10,40]@[25,40,40]:
 * fixed 8×8 threads × 4×4 outputs 5.7 ms; fitted 5×2 threads × 5×8 outputs 1.1 ms. Rows of
 * up to 64 columns take 4 per thread: as fast as 8 there (5×4 and 5×8 blocks: 400 and 404 µs
 * of GPU-thread time per product above) and about a third of the compile time, which is most
 * of a jitted MAML step's first call. Wider rows keep 8 (the 256-wide MAML variant ran ~7%
 * slower with 4).
 *
 * llvmpipe hands whole workgroups to its threads, so a product of one workgroup runs on one
 * core: rows are spread over smaller workgroups until there are `MIN_WORKGROUPS` (a MAML
 * meta-gradient [40×250ᵀ]·[250×40] with a second product: one 10×5-thread workgroup 435 µs,
 * five of 10×1 threads 325 µs). Columns are not split: a workgroup narrower than 8 lanes
 * leaves the rest of llvmpipe's 8-lane batch idle.
 */
export function fittedTiling(m: number, n: number, batch = 1): MatmulTiling {
  const tn = n % 8 === 0 && n > 64 ? 8 : n >= 4 ? 4 : n;
  // the row block: least padding first, then the larger block (more reuse per load)
  const candidates = [8, 6, 5, 4, 3, 2, 1].filter((t) => t * tn <= 64);
  let tm = 1, best = Infinity;
  for (const t of candidates) {
    const waste = Math.ceil(m / t) * t - m;
    if (waste < best) [tm, best] = [t, waste];
  }
  // a prime-ish m (17 rows: 1×8 blocks waste nothing) would load an A value per 8 products, or
  // per 16 at 2 rows: a block of ≥ 4 rows computing at most m/8 clamped rows beside them loads
  // far less ([17×6400ᵀ]·[6400×384], an input layer's weight gradient over 6,400 steps: 221 ms
  // with 1×8 blocks, 42 with 6×8 — 18 rows for 17)
  if (tm < 4) {
    let fewest = Infinity;
    for (const t of candidates.filter((c) => c >= 4)) {
      const waste = Math.ceil(m / t) * t - m;
      if (waste <= m / 8 && waste < fewest) [tm, fewest] = [t, waste];
    }
  }
  const wx = Math.min(16, Math.ceil(n / tn));
  let wy = Math.max(1, Math.min(Math.floor(256 / wx), 16, Math.ceil(m / tm)));
  const workgroups = (y: number) => Math.ceil(n / (wx * tn)) * Math.ceil(m / (y * tm)) * batch;
  while (wy > 1 && workgroups(wy) < MIN_WORKGROUPS) wy--;
  return { kind: "registers", wx, wy, tm, tn, bk: 0 };
}

/**
 * Whether 64×256 workgroup tiles are at least 70% used by an m×n output and the product is
 * big enough (≥ 2²⁴ multiply-adds) to pay for them.
 */
function fillsLargeTiles(m: number, n: number, work: number): boolean {
  const t = TILINGS.llvmpipeLarge;
  const rows = t.wy * t.tm, cols = t.wx * t.tn;
  const used = (m / (Math.ceil(m / rows) * rows)) * (n / (Math.ceil(n / cols) * cols));
  return used >= 0.7 && work >= 1 << 24;
}

/**
 * The tiling of a [batch ×] m×k · k×n product (`vec4`: K and N allow vec4 loads) on an adapter
 * of class `cls`, among those that `fits` it.
 *
 * Software adapters use register blocks: 16×32 with vec4 loads for big products whose K and N
 * allow vec4 (compiles in ~5 s once, then Mesa's disk cache has it) — a big output, or a deep K
 * filling at least one 64×256 workgroup tile (a conv weight gradient: [64, 24500]·[24500, 576]
 * runs at 2.4 GFLOP/s so, 1.4 with fitted tiles) — and for batches of medium products that fill
 * those tiles (per-task convolutions under vmap: 8×[64×576]·[576×980] 4.1 GFLOP/s against 1.2
 * with fitted tiles); 16×16 for medium outputs (16×8 at most 64 columns wide, 4×4 over a
 * shallow K), fitted small blocks for small ones (MAML-sized layers).
 */
export function chooseMatmulTiling(
  cls: AdapterClass,
  fits: (t: MatmulTiling) => boolean,
  m: number,
  n: number,
  vec4: boolean,
  k = 0,
  batch = 1,
): MatmulTiling {
  if (cls !== "software") return fits(TILINGS.gpu) ? TILINGS.gpu : TILINGS.llvmpipeSmall;
  // the 16×32 block only where the adapter computes that many accumulators correctly
  const large = fits(TILINGS.llvmpipeLarge) ? TILINGS.llvmpipeLarge : TILINGS.llvmpipe;
  const deep = m >= 64 && n >= 256 && m * n * k >= 64 * 256 * 4096;
  if (vec4 && (m * n >= 512 * 512 || deep)) return large;
  if (batch > 1 && fillsLargeTiles(m, n, batch * m * n * k)) return large;
  if (m * n < 256 * 256) return fittedTiling(m, n, batch);
  // a shallow product (a layer over 4 inputs) has too few terms per result to fill 16×16
  // blocks: 4×4 ones spread it over more invocations ([1024×4]·[4×64]: 0.44 against 0.71 ms)
  if (k > 0 && k <= 16) return TILINGS.llvmpipeSmall;
  // at most 64 columns: 16×8 blocks in 8×4 workgroups (64 columns wide) leave no column of a
  // workgroup idle, where 16×16 blocks in 8×8 (128 wide) leave half ([1024×64]·[64×64]: 1.25
  // against 1.62 ms; [4096×32]·[32×64]: 2.9 against 3.6; wider products are slower so)
  return n <= 64 ? TILINGS.llvmpipeNarrow : TILINGS.llvmpipe;
}

// ------------------------------------------------------------------------- fused epilogues

/**
 * The most results a jitted matmul may have and still store through a fused elementwise
 * epilogue. On software adapters each fused epilogue is another big unrolled matmul kernel to
 * compile (~0.7 s for 16×16 tiles), so only products up to 2¹⁷ results get one: a 64-wide
 * layer over 1,024 environments does (its bias and tanh applied as it stores), bigger products
 * store and leave their epilogue to a fused kernel. GPUs compile them quickly.
 */
export function maxEpilogueElems(cls: AdapterClass): number {
  return cls === "software" ? 1 << 17 : Infinity;
}

// ------------------------------------------------------------------------- uniform windows

/**
 * Small inputs read through uniform windows: on llvmpipe a storage-buffer load runs a
 * per-lane loop with a bounds check (~3.5 ns per element and SIMD lane on 2 cores, whatever
 * the access pattern), while a uniform load is one gather (~0.25 ns). Real GPUs serialise
 * divergent uniform reads, so there every input stays a storage binding.
 */

/** Inputs of up to this many full windows are read through uniform bindings. */
export const MAX_UNIFORM_WINDOWS = 4;

/** Smaller window sizes (bytes) for small inputs, smallest first. */
const SMALL_WINDOWS = [256, 4096];

let uniformOverride: boolean | null = null;

/**
 * Force uniform-window reads on or off (tests and benchmarks compare the two paths); null
 * restores the default. Buffers made while it was off are never bound as uniform windows.
 */
export function setUniformInputs(on: boolean | null): void {
  uniformOverride = on;
}

const uniformDisabledByEnv = (() => {
  try {
    return Deno.env.get("METAGRAD_UNIFORM_INPUTS") === "0";
  } catch {
    return false; // no --allow-env, or a browser: keep the default
  }
})();

/**
 * Whether the device `info` describes reads small inputs through uniform windows: by default
 * on software adapters only, and only when the uniform limits allow full windows.
 * `METAGRAD_UNIFORM_INPUTS=0` in the environment turns it off.
 */
export function uniformInputsEnabled(info: AdapterInfo | null): boolean {
  if (!info) return false;
  const fits = info.limits.maxUniformBufferBindingSize >= UNIFORM_WINDOW_BYTES &&
    info.limits.maxUniformBuffersPerShaderStage >= 2;
  const byDefault = adapterClass(info) === "software" && !uniformDisabledByEnv;
  return fits && (uniformOverride ?? byDefault);
}

/**
 * The byte size a buffer of `bytes` is given so that it can be bound as uniform windows: a
 * window tier for small sizes, whole windows up to the maximum; null when it is too big.
 */
export function uniformBucket(bytes: number): number | null {
  for (const w of SMALL_WINDOWS) if (bytes <= w) return w;
  const windows = Math.ceil(bytes / UNIFORM_WINDOW_BYTES);
  return windows <= MAX_UNIFORM_WINDOWS ? windows * UNIFORM_WINDOW_BYTES : null;
}
