/**
 * Per-kernel GPU timing with the adapter's timestamp queries. While a profile is open, the
 * runtime gives every dispatch its own compute pass whose beginning and end are timestamped;
 * each submitted batch resolves its queries into a buffer that is read back after the batch
 * (never inside it), and the durations are summed by kernel label and grid.
 */

/** One row of a profile: every dispatch of one kernel (label) with one grid size. */
export interface KernelTiming {
  /** The kernel's label (the op, or for compiled programs the fused ops). */
  label: string;
  /** The workgroup grid, e.g. "4×1×1". */
  grid: string;
  /** Dispatches timed. */
  dispatches: number;
  /** Their summed GPU time in milliseconds. */
  totalMs: number;
}

/** WebGPU's limit on the queries of one query set: two per dispatch. */
const QUERIES_PER_SET = 4096;

interface InFlight {
  querySet: GPUQuerySet;
  resolved: GPUBuffer;
  staging: GPUBuffer;
  keys: string[];
}

export class DispatchProfiler {
  #querySet: GPUQuerySet | null = null;
  #keys: string[] = [];
  #inFlight: InFlight[] = [];
  #reads: Promise<void>[] = [];
  #rows = new Map<string, KernelTiming>();

  constructor(readonly device: GPUDevice) {}

  /** True when the current batch has used every query of its set (the runtime then submits). */
  get full(): boolean {
    return this.#keys.length * 2 >= QUERIES_PER_SET;
  }

  /** The descriptor of the timestamped pass for one dispatch. */
  passFor(label: string, grid: readonly number[]): GPUComputePassDescriptor {
    this.#querySet ??= this.device.createQuerySet({
      label: "metagrad profile",
      type: "timestamp",
      count: QUERIES_PER_SET,
    });
    const i = this.#keys.length;
    this.#keys.push(`${label}\u0000${grid.join("×")}`);
    return {
      timestampWrites: {
        querySet: this.#querySet,
        beginningOfPassWriteIndex: 2 * i,
        endOfPassWriteIndex: 2 * i + 1,
      },
    };
  }

  /** Before the batch's encoder is finished: copy its timestamps out to a readable buffer. */
  resolve(encoder: GPUCommandEncoder): void {
    const n = this.#keys.length;
    if (n === 0) return;
    const bytes = n * 2 * 8;
    const resolved = this.device.createBuffer({
      label: "metagrad profile resolve",
      size: bytes,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    const staging = this.device.createBuffer({
      label: "metagrad profile readback",
      size: bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    encoder.resolveQuerySet(this.#querySet!, 0, 2 * n, resolved, 0);
    encoder.copyBufferToBuffer(resolved, 0, staging, 0, bytes);
    this.#inFlight.push({ querySet: this.#querySet!, resolved, staging, keys: this.#keys });
    this.#querySet = null;
    this.#keys = [];
  }

  /** After the batch is submitted: start reading its timestamps back. */
  submitted(): void {
    for (const batch of this.#inFlight.splice(0)) {
      this.#reads.push(
        batch.staging.mapAsync(GPUMapMode.READ).then(() => {
          const stamps = new BigUint64Array(batch.staging.getMappedRange());
          batch.keys.forEach((key, i) => {
            const ns = Number(stamps[2 * i + 1] - stamps[2 * i]);
            let row = this.#rows.get(key);
            if (!row) {
              const [label, grid] = key.split("\u0000");
              this.#rows.set(key, row = { label, grid, dispatches: 0, totalMs: 0 });
            }
            row.dispatches++;
            row.totalMs += Math.max(0, ns) / 1e6;
          });
          batch.staging.unmap();
        }).finally(() => {
          batch.staging.destroy();
          batch.resolved.destroy();
          batch.querySet.destroy();
        }),
      );
    }
  }

  /** Wait for every batch's timestamps; the rows, slowest first. */
  async finish(): Promise<KernelTiming[]> {
    while (this.#reads.length) await Promise.all(this.#reads.splice(0));
    return [...this.#rows.values()].sort((a, b) => b.totalMs - a.totalMs);
  }
}
