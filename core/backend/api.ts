/** Public controls of the backends: selection, device init, adapter info, runtime counters. */
import { defaultBackend, setDefaultBackend } from "./select.ts";
import type { BackendName } from "./storage.ts";
import type { AdapterInfo } from "./webgpu/device.ts";
import { runtime, type RuntimeStats } from "./webgpu/runtime.ts";
import type { KernelTiming } from "./webgpu/profiler.ts";

export type { AdapterInfo, BackendName, KernelTiming, RuntimeStats };

/**
 * Acquire the WebGPU device now (otherwise it is acquired at the first op) and return the
 * adapter's description. Rejects with a clear message when no adapter exists.
 *
 * @example
 * ```ts
 * import { init } from "@metagrad/metagrad";
 * const info = await init();
 * console.log(info.description); // e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"
 * ```
 */
export function init(): Promise<AdapterInfo> {
  return runtime.init();
}

/**
 * The adapter in use, or null before the device is acquired.
 *
 * @example
 * ```ts
 * import { adapterInfo, init } from "@metagrad/metagrad";
 * await init();
 * console.log(adapterInfo()?.isFallbackAdapter);
 * ```
 */
export function adapterInfo(): AdapterInfo | null {
  return runtime.info;
}

/**
 * Choose where new tensors are created: "webgpu" (default) or "reference" (float64
 * TypeScript, the test oracle). Ops run where their inputs live.
 *
 * @example
 * ```ts
 * import { setBackend, tensor } from "@metagrad/metagrad";
 * setBackend("reference");
 * const x = tensor([1, 2, 3]); // computed in float64 on the CPU
 * setBackend("webgpu");
 * ```
 */
export function setBackend(name: BackendName): void {
  setDefaultBackend(name);
}

/**
 * The backend new tensors are created on.
 *
 * @example
 * ```ts
 * import { getBackend } from "@metagrad/metagrad";
 * console.log(getBackend()); // "webgpu"
 * ```
 */
export function getBackend(): BackendName {
  return defaultBackend();
}

/**
 * Counters of the WebGPU runtime: dispatches, submits, readbacks (and how many of them jit
 * staged early), compiled pipelines and device bytes. Differences between two snapshots
 * measure a computation (after `sync()`, which runs deferred elementwise ops).
 *
 * @example
 * ```ts
 * import { ones, runtimeStats, sync } from "@metagrad/metagrad";
 * const before = runtimeStats().dispatches;
 * const y = ones([4]).add(1).mul(2);
 * await sync();
 * console.log(runtimeStats().dispatches - before); // 1: the three ops ran as one kernel
 * ```
 */
export function runtimeStats(): RuntimeStats {
  return { ...runtime.stats };
}

/**
 * Submit queued GPU work and wait for it to finish (for timing; reads do this themselves).
 * Deferred eager elementwise ops whose results are still held run first (`setEagerFusion`).
 *
 * @example
 * ```ts
 * import { sync, ones } from "@metagrad/metagrad";
 * const y = ones([1024]).add(1);
 * await sync(); // y is computed
 * ```
 */
export function sync(): Promise<void> {
  return runtime.sync();
}

/**
 * Release the buffers kept in the WebGPU pool back to the driver.
 *
 * @example
 * ```ts
 * import { trimPool } from "@metagrad/metagrad";
 * trimPool();
 * ```
 */
export function trimPool(): void {
  if (runtime.ready) runtime.trimPool();
}

/** What `profile` measured. */
export interface Profile<T> {
  /** What the profiled function returned. */
  value: T;
  /** GPU time per kernel and grid, slowest first. */
  kernels: KernelTiming[];
  /** Dispatches timed. */
  dispatches: number;
  /** Their summed GPU time in milliseconds. */
  gpuMs: number;
  /** Wall time of the function and its GPU work, in milliseconds. */
  wallMs: number;
  /**
   * What one timed pass around an empty kernel measures on this adapter (ms): every row's
   * time includes it once per dispatch, so for tiny kernels compare against it.
   */
  passOverheadMs: number;
  /** The `top` slowest rows as an aligned text table. */
  table(top?: number): string;
}

/**
 * Time every GPU kernel that `fn` runs, using the adapter's timestamp queries, and sum the
 * times by kernel (the op, or the fused ops of a compiled program) and grid. While a profile
 * runs, each dispatch gets its own compute pass, so whole-step timings differ a little from
 * unprofiled runs; the per-kernel split is what this is for. Throws on adapters without the
 * "timestamp-query" feature.
 *
 * @example
 * ```ts
 * import { matmul, ones, profile } from "@metagrad/metagrad";
 * const p = await profile(() => matmul(ones([256, 256]), ones([256, 256])).data());
 * console.log(p.table(10));
 * ```
 */
export async function profile<T>(fn: () => T | Promise<T>): Promise<Profile<T>> {
  await runtime.init();
  const passOverheadMs = await runtime.passOverheadMs();
  runtime.startProfiling();
  const t0 = performance.now();
  let value: T;
  let kernels: KernelTiming[];
  try {
    value = await fn();
  } finally {
    kernels = await runtime.stopProfiling();
  }
  const wallMs = performance.now() - t0;
  const gpuMs = kernels.reduce((s, k) => s + k.totalMs, 0);
  const dispatches = kernels.reduce((s, k) => s + k.dispatches, 0);
  return {
    value,
    kernels,
    dispatches,
    gpuMs,
    wallMs,
    passOverheadMs,
    table(top = 20) {
      const lines = [
        `${dispatches} dispatches, ${gpuMs.toFixed(2)} ms of GPU time, ${
          wallMs.toFixed(1)
        } ms wall; an empty kernel's timed pass measures ${
          (passOverheadMs * 1000).toFixed(0)
        } µs on this adapter, included in every dispatch's time`,
        `${"ms".padStart(9)} ${"share".padStart(6)} ${"count".padStart(6)}  ${
          "grid".padEnd(14)
        } kernel`,
      ];
      for (const k of kernels.slice(0, top)) {
        const label = k.label.length > 90 ? `${k.label.slice(0, 87)}...` : k.label;
        lines.push(
          `${k.totalMs.toFixed(3).padStart(9)} ${
            (100 * k.totalMs / (gpuMs || 1)).toFixed(1).padStart(5)
          }% ${String(k.dispatches).padStart(6)}  ${k.grid.padEnd(14)} ${label}`,
        );
      }
      return lines.join("\n");
    },
  };
}
