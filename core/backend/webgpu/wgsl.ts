/** Small helpers shared by every WGSL kernel family. */
import type { DType } from "../../dtype.ts";

/** Element type a dtype is stored as in a storage buffer. */
export function storageType(d: DType): "f32" | "i32" | "u32" {
  return d === "bool" ? "u32" : d;
}

/** WGSL type of a loaded value. */
export function valueType(d: DType): "f32" | "i32" | "u32" | "bool" {
  return d;
}

/** Expression turning a raw storage element into a value of `valueType(d)`. */
export function loadAs(d: DType, raw: string): string {
  return d === "bool" ? `(${raw} != 0u)` : raw;
}

/** Expression turning a value of `valueType(d)` into a storage element. */
export function storeAs(d: DType, value: string): string {
  return d === "bool" ? `select(0u, 1u, ${value})` : value;
}

/** Accessor of the i-th u32 of the uniform parameter block (static swizzle, no dynamic index). */
export function param(i: number): string {
  return `u.d[${i >> 2}].${"xyzw"[i & 3]}`;
}

/**
 * How a kernel reads one input. `storage`: a read-only storage binding. `uniform`: `windows`
 * uniform bindings of `vec4s` four-element rows each, consecutive 64 KiB slices of the buffer.
 * llvmpipe loads a storage element through a per-lane loop with bounds checks (~3.5 ns per
 * element and lane on 2 cores) but a uniform element as one gather (~0.25 ns), so small inputs
 * are read through uniform windows on software adapters (see `input_reads.ts`).
 * `slices`: full windows at byte offsets min(w·stride, last), overlapping so that each batch
 * matrix of a batched matmul operand lies inside one window; the kernel picks that window once
 * per workgroup (see `matmul.ts`) instead of loading every window for every element.
 */
export type InputRead =
  | { kind: "storage" }
  | { kind: "uniform"; windows: number; vec4s: number }
  | {
    kind: "slices";
    windows: number;
    stride: number;
    last: number;
    /** Windows by a matmul's row blocks (one per workgroup row) instead of batch matrices. */
    rows?: boolean;
  };

export const STORAGE_READ: InputRead = { kind: "storage" };

/** Bytes of one full uniform window: WebGPU's guaranteed maxUniformBufferBindingSize. */
export const UNIFORM_WINDOW_BYTES = 65536;

/** Short tag of a read plan for kernel cache keys. */
export function readTag(r: InputRead): string {
  return r.kind === "storage" ? "s" : r.kind === "slices"
    ? `v${r.windows}${r.rows ? "r" : ""}` // the offsets are parameters
    : `u${r.windows}x${r.vec4s}`;
}

const helperIds = new Map<string, number>();

/**
 * A small number standing for a text of helper functions in kernel-cache keys: the texts
 * run to kilobytes, and a key is built for every dispatch.
 */
export function helperId(helpers: string): number {
  let id = helperIds.get(helpers);
  if (id === undefined) helperIds.set(helpers, id = helperIds.size);
  return id;
}

/** Number of bindings an input read this way takes. */
export function readBindings(r: InputRead): number {
  return r.kind === "storage" ? 1 : r.windows;
}

/** Number of bindings a kernel's inputs take (its `KernelSource.inputs`). */
export function inputBindingCount(reads: readonly InputRead[]): number {
  return reads.reduce((n, r) => n + readBindings(r), 0);
}

/**
 * Declarations of input `name` from binding `binding` on, and the loader the kernel calls:
 * `name(i)` returns element i (of `vec4<T>` rows when `vec4`, indexed by row).
 */
export function inputDecl(
  name: string,
  binding: number,
  dtype: DType,
  read: InputRead,
  vec4 = false,
): string {
  const st = storageType(dtype);
  const elem = vec4 ? `vec4<${st}>` : st;
  if (read.kind === "storage") {
    return `@group(0) @binding(${binding}) var<storage, read> ${name}_s: array<${elem}>;
fn ${name}(i: u32) -> ${elem} { return ${name}_s[i]; }`;
  }
  const lines: string[] = [];
  const rows = `array<vec4<${st}>, ${
    read.kind === "slices" ? UNIFORM_WINDOW_BYTES / 16 : read.vec4s
  }>`;
  for (let w = 0; w < read.windows; w++) {
    lines.push(`@group(0) @binding(${binding + w}) var<uniform> ${name}_u${w}: ${rows};`);
  }
  const row = vec4 ? "i" : "(i >> 2u)";
  const pick = vec4 ? "" : "[i & 3u]";
  if (read.kind === "slices") {
    // `name_w{w}(i)` reads window w, bound at element `name_off` (set by the kernel)
    lines.push(`var<private> ${name}_off: u32;`);
    const off = vec4 ? `${name}_off / 4u` : `${name}_off`;
    for (let w = 0; w < read.windows; w++) {
      lines.push(
        `fn ${name}_w${w}(k: u32) -> ${elem} { let i = k - ${off}; return ${name}_u${w}[${row}]${pick}; }`,
      );
    }
  } else if (read.windows === 1) {
    lines.push(`fn ${name}(i: u32) -> ${elem} { return ${name}_u0[${row}]${pick}; }`);
  } else {
    // every window is loaded and the right one selected. A scalar is selected element by
    // element: selecting whole rows first made llvmpipe gather all four lanes of each window
    // (3 windows: 3.9 ns per load, no better than storage; element-wise 1.3 ns).
    const per = UNIFORM_WINDOW_BYTES / 16;
    const at = (w: number) => `${name}_u${w}[r]${pick ? "[c]" : ""}`;
    let v = at(0);
    for (let w = 1; w < read.windows; w++) v = `select(${v}, ${at(w)}, w == ${w}u)`;
    lines.push(
      `fn ${name}(i: u32) -> ${elem} { let q = ${row}; let r = q % ${per}u; let w = q / ${per}u;${
        pick ? " let c = i & 3u;" : ""
      } return ${v}; }`,
    );
  }
  return lines.join("\n");
}

/**
 * Common preamble: the parameter block, read-only inputs (`in0(i)`, `in1(i)`, ... read as
 * `reads` says, storage by default), and read-write output arrays: `out`, then `out1`,
 * `out2`, ... when `out` lists several dtypes.
 */
export function bindings(
  params: number,
  inputs: DType[],
  out: DType | readonly DType[],
  reads: readonly InputRead[] = [],
): string {
  const lines = [
    `struct Params { d: array<vec4<u32>, ${Math.max(1, Math.ceil(params / 4))}> };`,
    `@group(0) @binding(0) var<uniform> u: Params;`,
  ];
  let binding = 1;
  inputs.forEach((d, i) => {
    const read = reads[i] ?? STORAGE_READ;
    lines.push(inputDecl(`in${i}`, binding, d, read));
    binding += readBindings(read);
  });
  const outs = typeof out === "string" ? [out] : out;
  outs.forEach((d, k) => {
    lines.push(
      `@group(0) @binding(${binding + k}) var<storage, read_write> ${outputName(k)}: array<${
        storageType(d)
      }>;`,
    );
  });
  return lines.join("\n");
}

/** The WGSL name of a kernel's k-th output array (`bindings`). */
export function outputName(k: number): string {
  return k === 0 ? "out" : `out${k}`;
}

/** Entry point whose `t` is the linear thread index over a 2D grid of workgroups. */
export function entry(workgroupSize: number, body: string): string {
  return `@compute @workgroup_size(${workgroupSize})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * ${workgroupSize}u;
${body}
}`;
}

/** Workgroup counts covering `threads` threads, split over y past 65,535 groups in x. */
export function grid(
  threads: number,
  workgroupSize: number,
  maxPerDim = 65535,
): [number, number, number] {
  const groups = Math.ceil(threads / workgroupSize);
  if (groups <= maxPerDim) return [groups, 1, 1];
  const y = Math.ceil(groups / maxPerDim);
  if (y > maxPerDim) {
    throw new RangeError(`a dispatch of ${threads} threads exceeds the device's grid`);
  }
  return [maxPerDim, y, 1];
}

/**
 * Helpers every kernel may call: a NaN test that survives Vulkan's `x != x` folding (it looks
 * at the bits), `div_index(x, d)` = ⌊x / d⌋ for indices below `SMALL_INDEX` (see there), and
 * NaN and ∞ made from runtime bits — as constant expressions (`bitcast<f32>(0x7f800000u)`)
 * they are shader-creation errors in the WGSL spec, which Chrome's Tint enforces.
 */
export const WGSL_HELPERS = `
fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn div_index(x: u32, d: u32) -> u32 {
  let q = u32(f32(x) / f32(d));
  let r = bitcast<i32>(x - q * d);
  return select(select(q, q + 1u, r >= i32(d)), q - 1u, r < 0);
}
fn nan_f32() -> f32 { var bits = 0x7fc00000u; return bitcast<f32>(bits); }
fn inf_f32() -> f32 { var bits = 0x7f800000u; return bitcast<f32>(bits); }
`;

/**
 * Index spaces up to this size split linear indices into coordinates with `div_index`: f32
 * division (8 lanes per instruction on llvmpipe) and one correction step, exact because below
 * 2²¹ the quotient's error (≤ 2.5 ulp) is under 1. Integer division is one scalar instruction
 * per lane there, ~1.1 ns for `/` and 1.4 for `%` against 0.25 ns for a uniform load: the
 * elementwise kernels of the MAML step spent most of their time splitting indices.
 */
export const SMALL_INDEX = 1 << 21;

/**
 * WGSL that takes coordinate `c` off `rem` along a dimension of size `d` (both expressions):
 * `let c = rem % d; rem = rem / d;`, through `div_index` when the index space is small.
 */
export function splitIndex(rem: string, d: string, small: boolean): string {
  return small
    ? `let q = div_index(${rem}, ${d}); let c = ${rem} - q * ${d}; ${rem} = q;`
    : `let c = ${rem} % ${d}; ${rem} = ${rem} / ${d};`;
}

/**
 * `code` without the functions its entry point never reaches. Kernels are assembled with the
 * shared helper libraries (NaN tests, `pow_f`, `erf_f`, ...); WebGPU front ends parse, validate
 * and translate every function before dropping unused ones, ~1.7 ms per kernel of the
 * helpers alone on llvmpipe (a cold first call creates ~30 kernels on the JS thread).
 */
export function pruneFunctions(code: string): string {
  // top-level items: a function runs from `fn` to the brace that closes its body
  const items: { name: string | null; text: string }[] = [];
  let i = 0;
  while (i < code.length) {
    const fnAt = code.indexOf("\nfn ", i - 1);
    const start = fnAt < 0 ? code.length : fnAt + 1;
    if (start > i) items.push({ name: null, text: code.slice(i, start) });
    if (start >= code.length) break;
    let depth = 0, j = code.indexOf("{", start);
    for (; j < code.length; j++) {
      if (code[j] === "/" && code[j + 1] === "/") j = code.indexOf("\n", j) >>> 0; // a comment
      else if (code[j] === "{") depth++;
      else if (code[j] === "}" && --depth === 0) break;
    }
    if (j >= code.length) return code; // not our generated layout: leave it whole
    const name = /^fn\s+(\w+)/.exec(code.slice(start))![1];
    items.push({ name, text: code.slice(start, j + 1) });
    i = j + 1;
  }
  const bodies = new Map(items.filter((it) => it.name).map((it) => [it.name!, it.text]));
  const calls = (text: string) => [...text.matchAll(/\b(\w+)\s*\(/g)].map((m) => m[1]);
  // reachable from the entry point and from code outside functions
  const reached = new Set<string>();
  const todo = items.filter((it) => !it.name || it.name === "main").flatMap((it) => calls(it.text));
  while (todo.length) {
    const f = todo.pop()!;
    if (reached.has(f) || !bodies.has(f)) continue;
    reached.add(f);
    todo.push(...calls(bodies.get(f)!));
  }
  return items.filter((it) => !it.name || it.name === "main" || reached.has(it.name))
    .map((it) => it.text).join("");
}

/** Bit pattern of an f32, for passing floats through the u32 parameter block. */
export function f32Bits(x: number): number {
  const f = new Float32Array([x]);
  return new Uint32Array(f.buffer)[0];
}

/**
 * Parameter slots for strided leaves starting at `start`: the shape's `rank` dims, then per
 * leaf a base offset and `rank` strides (the layout `stridedLoads` reads).
 */
export function stridedLayout(
  start: number,
  rank: number,
  leaves: number,
): { shapeP: number; leafP: number[]; end: number } {
  const leafP = Array.from({ length: leaves }, (_, k) => start + rank + k * (1 + rank));
  return { shapeP: start, leafP, end: start + rank + leaves * (1 + rank) };
}

/**
 * A leaf read as the sum of `extent` elements `stride` apart from where its strides point: a
 * small reduction computed inside the kernel that reads it (`jit` inlines sums of at most
 * `MAX_INLINE_SUM` terms), so it costs loads instead of a dispatch of its own.
 */
export interface SummedRead {
  extent: number;
  stride: number;
}

/** Parameter slots of the summed leaves (extent, then stride, each) from `start` on. */
export function summedLayout(
  summed: readonly boolean[],
  start: number,
): { sumP: (number | null)[]; end: number } {
  let p = start;
  const sumP = summed.map((on) => on ? (p += 2) - 2 : null);
  return { sumP, end: p };
}

/**
 * Parameter slots of the bounded leaves (`rank` lows, then `rank` sizes, each) from `start` on:
 * a leaf read only inside a box of the index space, 0 outside (a zero-padded value, read where
 * its unpadded input lies).
 */
export function boundedLayout(
  bounded: readonly boolean[],
  rank: number,
  start: number,
): { boundP: (number | null)[]; end: number } {
  let p = start;
  const boundP = bounded.map((on) => on ? (p += 2 * rank) - 2 * rank : null);
  return { boundP, end: p };
}

/**
 * `let v{k}` for leaf k at element index `at` through `load`: the element itself, or, when
 * `sumP` (the parameter index of its extent, then its stride) is given, the sum of its terms.
 */
export function leafValue(
  k: number,
  d: DType,
  at: string,
  load: (index: string) => string,
  sumP: number | null,
): string {
  if (sumP === null) return `  let v${k} = ${loadAs(d, load(at))};`;
  const term = load(`${at} + r * ${param(sumP + 1)}`);
  return `  var v${k} = 0.0;\n` +
    `  for (var r = 0u; r < ${param(sumP)}; r = r + 1u) { v${k} = v${k} + ${term}; }`;
}

/**
 * WGSL lines that load `v0..vN-1`: leaf k read at the element whose row-major index over a
 * (collapsed) shape is `linear`, through its loader `array(k)(index)`. The shape's dims sit in
 * parameters `shapeP...`, leaf k's base offset and strides in `leafP[k]...`; stride 0
 * broadcasts; `sumP[k]`, when not null, makes leaf k a `SummedRead` whose extent and stride sit
 * there. `small`: the index space is at most `SMALL_INDEX`. Shared by the fused elementwise
 * kernels, reduction prologues and matmul epilogues.
 */
export function stridedLoads(
  linear: string,
  rank: number,
  shapeP: number,
  leafP: readonly number[],
  dtypes: readonly DType[],
  array: (k: number) => string,
  small: boolean,
  sumP: readonly (number | null)[] = [],
  boundP: readonly (number | null)[] = [],
): string[] {
  const lines = [`  var rem = ${linear};`];
  dtypes.forEach((_, k) => {
    lines.push(`  var i${k} = ${param(leafP[k])};`);
    if (boundP[k] != null) lines.push(`  var ok${k} = true;`);
  });
  for (let d = rank - 1; d >= 0; d--) {
    // the outermost coordinate is what remains: no division needed
    lines.push(
      d > 0 ? `  { ${splitIndex("rem", param(shapeP + d), small)}` : `  { let c = rem;`,
    );
    dtypes.forEach((_, k) => {
      lines.push(`    i${k} = i${k} + c * ${param(leafP[k] + 1 + d)};`);
      // c − low wraps below 0 (u32): one comparison tests both ends of the box
      const b = boundP[k];
      if (b != null) {
        lines.push(`    ok${k} = ok${k} && (c - ${param(b + d)}) < ${param(b + rank + d)};`);
      }
    });
    lines.push(`  }`);
  }
  dtypes.forEach((d, k) => {
    if (boundP[k] == null) {
      lines.push(leafValue(k, d, `i${k}`, (at) => `${array(k)}(${at})`, sumP[k] ?? null));
      return;
    }
    // outside the box the index means nothing (its base wrapped below 0): load element 0
    const loaded = loadAs(d, `${array(k)}(select(0u, i${k}, ok${k}))`);
    lines.push(`  let v${k} = select(${zeroOf(d)}, ${loaded}, ok${k});`);
  });
  return lines;
}

/** The zero of a dtype's WGSL value type. */
function zeroOf(d: DType): string {
  return d === "bool" ? "false" : d === "f32" ? "0.0" : d === "i32" ? "0i" : "0u";
}
