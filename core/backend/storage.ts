/** What a backend keeps for one tensor's values. Refcounted: views (reshape) share one. */
export interface Storage {
  /** The backend that owns the values. */
  readonly backend: BackendName;
  /** Bytes this storage accounts for in `memory().liveBytes`. */
  readonly bytes: number;
  /** Add a reference (a view now shares this storage). */
  retain(): void;
  /** Drop a reference; the memory is freed when none remain. */
  release(): void;
}

/** Where a tensor's values live: the WebGPU device, or float64 arrays on the CPU (the oracle). */
export type BackendName = "webgpu" | "reference";

/** Process-wide live-memory counters, kept by the storages themselves. */
export const liveCounters = { storages: 0, bytes: 0, peakBytes: 0 };

export function countAlloc(bytes: number): void {
  liveCounters.storages++;
  liveCounters.bytes += bytes;
  if (liveCounters.bytes > liveCounters.peakBytes) liveCounters.peakBytes = liveCounters.bytes;
}

export function countFree(bytes: number): void {
  liveCounters.storages--;
  liveCounters.bytes -= bytes;
}
