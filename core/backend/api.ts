/** Public controls of the backends: selection, device init, adapter info, runtime counters. */
import { defaultBackend, setDefaultBackend } from "./select.ts";
import type { BackendName } from "./storage.ts";
import type { AdapterInfo } from "./webgpu/device.ts";
import { runtime, type RuntimeStats } from "./webgpu/runtime.ts";

export type { AdapterInfo, BackendName, RuntimeStats };

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
 * Counters of the WebGPU runtime: dispatches, submits, readbacks, compiled pipelines and
 * device bytes. Differences between two snapshots measure a computation.
 *
 * @example
 * ```ts
 * import { runtimeStats, ones } from "@metagrad/metagrad";
 * const before = runtimeStats().dispatches;
 * ones([4]).add(1);
 * console.log(runtimeStats().dispatches - before);
 * ```
 */
export function runtimeStats(): RuntimeStats {
  return { ...runtime.stats };
}

/**
 * Submit queued GPU work and wait for it to finish (for timing; reads do this themselves).
 *
 * @example
 * ```ts
 * import { sync, ones } from "@metagrad/metagrad";
 * ones([1024]).add(1);
 * await sync();
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
