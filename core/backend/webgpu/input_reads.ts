/**
 * Which kernel inputs are read through uniform windows instead of storage bindings (whether
 * at all, and the window sizes: `adapter_profile.ts`).
 *
 * On llvmpipe a storage-buffer load runs a per-lane loop with a bounds check: ~3.5 ns per
 * element and SIMD lane on 2 cores, whatever the access pattern (uniform, consecutive or
 * scattered addresses measured alike), while a load from a uniform buffer is one gather,
 * ~0.25 ns. Uniform bindings hold at most 64 KiB, so inputs up to four windows (256 KiB)
 * are bound as consecutive 64 KiB slices — smaller ones as one window of 256 B or 4 KiB so
 * their buffers stay small (the pool rounds buffer sizes to these tiers; see
 * `Runtime.bucket`). Real GPUs serialise divergent uniform reads, so there every input
 * stays a storage binding.
 */
import { type Binding, type GpuStorage, type KernelSource, runtime } from "./runtime.ts";
import { uniformBucket, uniformInputsEnabled } from "./adapter_profile.ts";
import { type InputRead, STORAGE_READ, UNIFORM_WINDOW_BYTES } from "./wgsl.ts";

function uniformRead(bytes: number): InputRead | null {
  const size = uniformBucket(bytes);
  if (size === null || bytes === 0) return null;
  if (size < UNIFORM_WINDOW_BYTES) return { kind: "uniform", windows: 1, vec4s: size / 16 };
  return {
    kind: "uniform",
    windows: size / UNIFORM_WINDOW_BYTES,
    vec4s: UNIFORM_WINDOW_BYTES / 16,
  };
}

/**
 * Whether `storage`'s buffer was made for uniform use and holds `span` bytes (pooled buffers
 * are sized so); allocates the buffer if it has none yet.
 */
function uniformFits(storage: GpuStorage, span: number): boolean {
  const buffer = runtime.allocBuffer(storage, "input");
  return buffer.size >= span && (buffer.usage & GPUBufferUsage.UNIFORM) !== 0;
}

/** Bytes from a buffer's start that a read through windows touches. */
function windowSpan(read: InputRead & { kind: "uniform" | "slices" }): number {
  return read.kind === "slices"
    ? read.last + UNIFORM_WINDOW_BYTES
    : (read.windows - 1) * UNIFORM_WINDOW_BYTES + read.vec4s * 16;
}

/**
 * How to read each of `inputs` (whole storages, bound from offset 0): uniform windows for
 * the smallest ones while the device's uniform bindings (less the parameter block's) last,
 * storage for the rest.
 */
export function planReads(inputs: readonly GpuStorage[]): InputRead[] {
  const reads: InputRead[] = inputs.map(() => STORAGE_READ);
  if (!uniformInputsEnabled(runtime.info)) return reads;
  let budget = runtime.info!.limits.maxUniformBuffersPerShaderStage - 1;
  const order = inputs.map((_, i) => i).sort((a, b) => inputs[a].bytes - inputs[b].bytes);
  for (const i of order) {
    const read = uniformRead(inputs[i].bytes);
    if (!read || read.kind !== "uniform" || read.windows > budget) continue;
    if (!uniformFits(inputs[i], windowSpan(read))) continue;
    reads[i] = read;
    budget -= read.windows;
  }
  return reads;
}

/**
 * A batched matmul operand planned as uniform windows, read instead as overlapping windows
 * that each hold whole batch matrices (`slices`), so a workgroup reads one window: `count`
 * matrices of `matrix` elements, `stride` elements apart (or blocks of rows, the last one of
 * which may end early: at element `end`). Null when a matrix does not fit a window with room to
 * align, or more windows would be needed than `maxWindows` (by default the windows `read` has).
 */
export function batchSlices(
  storage: GpuStorage,
  read: InputRead,
  count: number,
  stride: number,
  matrix: number,
  maxWindows = read.kind === "storage" ? 0 : read.windows,
  end = (count - 1) * stride + matrix,
): InputRead | null {
  if (read.kind !== "uniform" || read.windows < 2 || count < 2 || stride < matrix) return null;
  const align = runtime.info!.limits.minUniformBufferOffsetAlignment;
  const step = Math.floor((UNIFORM_WINDOW_BYTES - matrix * 4) / align) * align;
  if (step <= 0) return null;
  const windows = Math.floor(((count - 1) * stride * 4) / step) + 1;
  const buffer = runtime.allocBuffer(storage, "input");
  const last = Math.floor((buffer.size - UNIFORM_WINDOW_BYTES) / align) * align;
  // the last matrix's end (bytes) must lie in the last window
  if (windows > maxWindows || last < 0 || end * 4 > last + UNIFORM_WINDOW_BYTES) return null;
  return { kind: "slices", windows, stride: step, last };
}

/** Whether a plan made for earlier inputs of the same sizes still holds for `inputs`. */
function readsHold(inputs: readonly GpuStorage[], reads: readonly InputRead[]): boolean {
  return reads.every((r, i) => r.kind === "storage" || uniformFits(inputs[i], windowSpan(r)));
}

/**
 * A kernel's launch as derived on a first call from shapes, strides and code — everything but
 * the storages — kept in a caller's `KernelMemo` (a jit step) so that a repeat only binds
 * buffers (deriving it cost tens of µs of JS per kernel).
 */
export interface KeptLaunch {
  src: KernelSource;
  params: Uint32Array;
  grid: [number, number, number];
  reads: InputRead[];
}

/**
 * Launch `kept` again reading `inputs` and writing `out`, if its read plan still fits their
 * buffers; false when it does not and the launch must be derived again.
 */
export function relaunch(
  kept: KeptLaunch,
  inputs: readonly GpuStorage[],
  out: Binding | readonly Binding[],
): boolean {
  if (!readsHold(inputs, kept.reads)) return false;
  runtime.dispatch(kept.src, kept.params, inputBindings(inputs, kept.reads), out, kept.grid);
  return true;
}

/** The bindings of whole-storage inputs read as `reads` says, in binding order. */
export function inputBindings(
  inputs: readonly GpuStorage[],
  reads: readonly InputRead[],
): Binding[] {
  const bindings: Binding[] = [];
  for (let i = 0; i < inputs.length; i++) {
    const storage = inputs[i], r = reads[i] ?? STORAGE_READ;
    if (r.kind === "storage") {
      bindings.push({ storage });
      continue;
    }
    if (r.kind === "slices") {
      for (let w = 0; w < r.windows; w++) {
        const offset = Math.min(w * r.stride, r.last);
        bindings.push({ storage, offset, size: UNIFORM_WINDOW_BYTES, uniform: true });
      }
      continue;
    }
    for (let w = 0; w < r.windows; w++) {
      bindings.push({
        storage,
        offset: w * UNIFORM_WINDOW_BYTES,
        size: r.vec4s * 16,
        uniform: true,
      });
    }
  }
  return bindings;
}
