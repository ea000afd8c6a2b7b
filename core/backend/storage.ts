/** What a backend keeps for one tensor's values. Refcounted: views (reshape) share one. */
export interface Storage {
  readonly backend: BackendName;
  /** Bytes this storage accounts for in `memory().liveBytes`. */
  readonly bytes: number;
  retain(): void;
  release(): void;
}

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
