/**
 * The WebGPU runtime: one device, a buffer pool, a pipeline cache keyed by WGSL source, and
 * a batch of dispatches recorded into one command encoder that is submitted when a value is
 * read or the batch fills. Ops never wait on the GPU; only reads do.
 *
 * Ordering rules that keep pooled buffers safe:
 * - A buffer released while the current batch is open goes to a quarantine and joins the pool
 *   only after that batch is submitted, because `queue.writeBuffer` (used by uploads) executes
 *   before any later-submitted command buffer and would clobber values an encoded dispatch
 *   still has to read. Kernel outputs may reuse quarantined buffers at once: dispatches in
 *   one submission execute in order, so a later write cannot overtake an earlier read.
 * - Each dispatch's uniform block lives at its own offset of a per-batch arena written just
 *   before the batch is submitted, for the same reason.
 */
import { countAlloc, countFree, type Storage } from "../storage.ts";
import { acquireDevice, type AdapterInfo } from "./device.ts";
import { DispatchProfiler, type KernelTiming } from "./profiler.ts";
import { bindings, pruneFunctions } from "./wgsl.ts";
import { uniformBucket, uniformInputsEnabled } from "./adapter_profile.ts";

/**
 * Work recorded for a storage instead of encoded (a deferred elementwise op, `core/fusion/eager.ts`):
 * the runtime runs it before the storage is bound, read or copied, and at the next
 * `flush`; a storage freed first drops it.
 */
export interface PendingWork {
  /** Encode it now (the storage is no longer pending); then release what it holds. */
  run(): void;
  /** Release what it holds without encoding anything. */
  drop(): void;
}

/** A device buffer plus its byte size, refcounted by the tensors that view it. */
export class GpuStorage implements Storage {
  readonly backend = "webgpu" as const;
  buffer: GPUBuffer | null = null;
  /** Which device (generation) the buffer belongs to; a lost device's buffers are unusable. */
  generation = 0;
  #refs = 1;
  /** References held by pending work that reads this storage (part of the refs). */
  #readers = 0;
  /** What will compute this storage's value, while it is deferred. */
  pending: PendingWork | null = null;
  /** Called when the host reads this storage (jit learns which outputs callers read). */
  onRead: (() => void) | null = null;
  constructor(readonly bytes: number) {
    countAlloc(bytes);
  }
  retain(): void {
    this.#refs++;
  }
  release(): void {
    if (--this.#refs === 0) {
      const work = this.pending;
      if (work) {
        this.pending = null;
        runtime.forgetPending(this);
        work.drop();
      }
      countFree(this.bytes);
      runtime.releaseLater(this);
    }
  }
  /** A reference for pending work that will read this storage. */
  holdForReader(): void {
    this.#refs++;
    this.#readers++;
  }
  releaseFromReader(): void {
    this.#readers--;
    this.release();
  }
  /** Whether every holder let go (its buffer went back to the pool, or will once recorded). */
  get released(): boolean {
    return this.#refs === 0;
  }
  /** Whether something besides pending readers (a tensor, a running program) holds it. */
  get heldOutside(): boolean {
    return this.#refs > this.#readers;
  }
}

/** One binding of a dispatch: a range of a storage's buffer (bytes). */
export interface Binding {
  storage: GpuStorage;
  offset?: number;
  size?: number;
  /** Bound as a uniform buffer rather than read-only storage (inputs only; `input_reads.ts`). */
  uniform?: boolean;
}

export interface KernelSource {
  /** WGSL text; pipelines are cached by it. */
  code: string;
  /** Number of input bindings (storage or uniform); the outputs are the bindings after them. */
  inputs: number;
  /** Number of output bindings (read-write storage); 1 when absent. */
  outputs?: number;
  /** Op name for labels and error messages. */
  label: string;
}

interface CachedPipeline {
  id: number;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

const BATCH_DISPATCHES = 512;
const ARENA_BYTES = 1 << 20;
/**
 * Every kernel's parameter block is bound as a fixed window of the per-batch arena at a
 * dynamic offset, so a bind group depends only on the storage buffers and can be cached
 * (creating bind groups was the largest per-dispatch cost).
 */
const UNIFORM_WINDOW = 1024;
const MAX_CACHED_GROUPS = 8192;
const MAX_POOL_BYTES = 1 << 30;

/** Counters the tests and benchmarks read. */
export interface RuntimeStats {
  /** Compute dispatches recorded. */
  dispatches: number;
  /** Buffer-to-buffer copies recorded (`copyBytes`). */
  copies: number;
  /** Command buffers submitted. */
  submits: number;
  /** Values copied back to the host. */
  readbacks: number;
  /**
   * Copies of jit outputs staged for reading as soon as they were made (jit predicted from
   * the caller's earlier reads that they would be read), so their reads overlap the rest of
   * the program.
   */
  stagedReads: number;
  /** Distinct WGSL kernels compiled. */
  pipelinesCompiled: number;
  /** Bytes held in the buffer pool for reuse. */
  poolBytes: number;
  /** Bytes of all device buffers held (live and pooled). */
  deviceBytes: number;
}

class Runtime {
  device: GPUDevice | null = null;
  info: AdapterInfo | null = null;
  #initPromise: Promise<AdapterInfo> | null = null;
  #initError: Error | null = null;
  #deferred: (() => void)[] = [];
  #generation = 0;
  #pipelines = new Map<string, CachedPipeline>();
  #groups = new Map<string, GPUBindGroup>();
  #bufferIds = new WeakMap<GPUBuffer, number>();
  #nextId = 1;
  /** Free buffers by `poolKey` (size and usage). */
  #pool = new Map<number, GPUBuffer[]>();
  #quarantine = new Map<number, GPUBuffer[]>();
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #profiler: DispatchProfiler | null = null;
  /** An empty kernel's timed pass (ms), measured once per device. */
  #passOverheadMs: number | null = null;
  #batchDispatches = 0;
  #holds = 0;
  #arena: Uint8Array<ArrayBuffer> = new Uint8Array(ARENA_BYTES);
  #arenaBuffer: GPUBuffer | null = null;
  #arenaUsed = 0;
  #arenaFree: GPUBuffer[] = [];
  #errors: string[] = [];
  #reported = new Map<string, number>();
  /** Labels of kernels that failed to compile; their follow-on "is invalid" errors are noise. */
  #brokenLabels = new Set<string>();
  /** Error-scope results not yet seen; reads wait for them so errors surface deterministically. */
  #pendingScopes: Promise<void>[] = [];
  #lost: string | null = null;
  /** Whether `stageForRead` stages (benchmarks and tests compare both ways). */
  stagedReads = true;
  #staged = new Map<GpuStorage, StagedRead>();
  /** Storages whose values are pending work, in the order it was recorded. */
  #pendingValues = new Set<GpuStorage>();
  #runningPending = false;
  stats: RuntimeStats = {
    dispatches: 0,
    copies: 0,
    submits: 0,
    readbacks: 0,
    stagedReads: 0,
    pipelinesCompiled: 0,
    poolBytes: 0,
    deviceBytes: 0,
  };

  get ready(): boolean {
    return this.device !== null;
  }

  /** Whether the device was lost (and `init()` not yet called again). */
  get isLost(): boolean {
    return this.#lost !== null;
  }

  /** Acquire the device once; concurrent callers share the promise. */
  init(): Promise<AdapterInfo> {
    if (this.#initError) return Promise.reject(this.#initError);
    if (this.#lost) this.#forgetLostDevice();
    this.#initPromise ??= acquireDevice().then(
      ({ device, info }) => {
        this.device = device;
        this.info = info;
        device.addEventListener("uncapturederror", (e) => {
          this.#errors.push((e as GPUUncapturedErrorEvent).error.message);
        });
        device.lost.then((l) => {
          if (this.device === device) {
            this.#lost = `WebGPU device lost (${l.reason}): ${l.message}`;
          }
        });
        const work = this.#deferred;
        this.#deferred = [];
        for (const w of work) {
          try {
            w();
          } catch (e) {
            this.#errors.push(e instanceof Error ? e.message : String(e));
          }
        }
        return info;
      },
      (err) => {
        this.#initError = err instanceof Error ? err : new Error(String(err));
        this.#deferred = [];
        throw this.#initError;
      },
    );
    return this.#initPromise;
  }

  /**
   * Run device work now, or (before the device exists) queue it and start acquiring the
   * device, so ops can be called before `await init()`.
   */
  enqueue(work: () => void): void {
    if (this.#lost) throw this.#lostError();
    if (this.device) {
      work();
      return;
    }
    if (this.#initError) throw this.#initError;
    this.#deferred.push(work);
    if (!this.#initPromise) this.init().catch(() => {});
  }

  /**
   * `enqueue`, keeping `storages` alive until the work has run: before the device exists the
   * work is deferred, and a tensor disposed meanwhile must not lose its buffer first.
   */
  enqueueHolding(storages: readonly GpuStorage[], work: () => void): void {
    for (const s of storages) s.retain();
    // Exactly once: work that throws runs the inner release and then reaches the outer one;
    // releasing twice would free a buffer its tensor still owns (the pool hands it out again).
    let held = true;
    const releaseAll = () => {
      if (!held) return;
      held = false;
      for (const s of storages) s.release();
    };
    try {
      this.enqueue(() => {
        try {
          work();
        } finally {
          releaseAll();
        }
      });
    } catch (e) {
      releaseAll();
      throw e;
    }
  }

  /** Free a storage's buffer in order with queued work; never throws (dispose must not). */
  releaseLater(storage: GpuStorage): void {
    if (this.device || this.#lost) this.freeBuffer(storage);
    else this.#deferred.push(() => this.freeBuffer(storage));
  }

  #lostError(): Error {
    return new Error(
      `${this.#lost}; call \`await init()\` to acquire a new device and recreate your tensors`,
    );
  }

  /** After a device loss: drop everything tied to the old device so init() starts afresh. */
  #forgetLostDevice(): void {
    this.device = null;
    this.info = null;
    this.#initPromise = null;
    this.#lost = null;
    this.#generation++;
    this.#pipelines.clear();
    this.#groups.clear();
    this.#pool.clear();
    this.#quarantine.clear();
    this.#arenaFree = [];
    this.#encoder = null;
    this.#pass = null;
    this.#profiler = null;
    this.#passOverheadMs = null;
    this.#arenaBuffer = null;
    this.#batchDispatches = 0;
    this.#pendingScopes = [];
    this.#errors = [];
    this.#staged.clear();
    // their leaves lived on the lost device: using one now fails with that message
    this.#pendingValues.clear();
    this.stats.poolBytes = 0;
    this.stats.deviceBytes = 0;
  }

  /** Wait for every outstanding error scope, then throw if any reported an error. */
  async settle(): Promise<void> {
    while (this.#pendingScopes.length) await Promise.all(this.#pendingScopes.splice(0));

    this.checkHealthy();
  }

  checkHealthy(): void {
    if (this.#lost) {
      throw new Error(
        `${this.#lost}; tensors on it are gone: call init() again after fixing the cause`,
      );
    }
    // The same validation error can be reported twice (by the batch's scope and again as an
    // uncaptured event); report each message once per few seconds.
    const now = Date.now();
    for (const [m, t] of this.#reported) if (now - t > 3000) this.#reported.delete(m);
    const isEcho = (m: string) =>
      [...this.#brokenLabels].some((l) => m.includes(`'${l}' label is invalid`));
    const fresh = [...new Set(this.#errors.splice(0))].filter((m) =>
      !this.#reported.has(m) && !isEcho(m)
    );
    if (fresh.length) {
      const msgs = fresh;
      for (const m of msgs) this.#reported.set(m, now);
      throw new Error(
        `WebGPU reported ${msgs.length} error(s); the results of the ops named are invalid:\n  ${
          msgs.join("\n  ")
        }`,
      );
    }
  }

  get gpu(): GPUDevice {
    if (!this.device) throw new Error("internal: WebGPU work ran before the device was acquired");
    return this.device;
  }

  // ---------------------------------------------------------------- buffers

  static bucket(bytes: number): number {
    // buffers that may be read as uniform windows are sized to whole windows
    const windowed = uniformInputsEnabled(runtime.info) ? uniformBucket(bytes) : null;
    if (windowed !== null) return windowed;
    // 4 buckets per octave above 4 KiB keep rounding waste under 19%.
    const b = Math.max(bytes, 16);
    if (b <= 4096) return Math.ceil(b / 256) * 256;
    const p = 2 ** Math.floor(Math.log2(b));
    const step = p / 4;
    return Math.ceil(b / step) * step;
  }

  /** Give `storage` a buffer. `forUpload` buffers must not be in use by the open batch. */
  allocBuffer(storage: GpuStorage, label: string, forUpload = false): GPUBuffer {
    if (storage.pending) this.materialize(storage);
    if (storage.buffer) {
      this.assertCurrent(storage, label);
      return storage.buffer;
    }
    storage.generation = this.#generation;
    const size = Runtime.bucket(storage.bytes);
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST |
      (uniformInputsEnabled(this.info) ? GPUBufferUsage.UNIFORM : 0);
    const key = poolKey(size, usage);
    const limit = this.info!.limits.maxBufferSize;
    if (size > limit) {
      throw new RangeError(
        `${label}: needs a buffer of ${storage.bytes} bytes but this adapter's maxBufferSize is ` +
          `${limit}; split the computation into smaller tensors`,
      );
    }
    let buf = forUpload ? undefined : this.#quarantine.get(key)?.pop();
    if (!buf) {
      buf = this.#pool.get(key)?.pop();
      if (buf) this.stats.poolBytes -= size;
    }
    if (!buf) {
      const dev = this.gpu;
      dev.pushErrorScope("out-of-memory");
      buf = dev.createBuffer({
        label: `${label} output`,
        size,
        usage,
      });
      this.#watch(
        dev.popErrorScope(),
        (m) =>
          `${label}: out of GPU memory allocating ${size} bytes (${m}); free tensors (tidy/dispose) or use smaller batches`,
      );
      this.stats.deviceBytes += size;
    }
    storage.buffer = buf;
    return buf;
  }

  /** Throws when `storage`'s buffer belongs to a device that was lost. */
  assertCurrent(storage: GpuStorage, label: string): void {
    if (storage.buffer && storage.generation !== this.#generation) {
      throw new Error(
        `${label}: this tensor lived on a WebGPU device that was lost; recreate it after init()`,
      );
    }
  }

  freeBuffer(storage: GpuStorage): void {
    const staged = this.#staged.get(storage);
    if (staged) {
      this.#staged.delete(storage);
      staged.staging.destroy();
    }
    const buf = storage.buffer;
    storage.buffer = null;
    if (!buf || storage.generation !== this.#generation) return; // a lost device's buffer
    if (this.#encoder) {
      const key = poolKey(buf.size, buf.usage);
      let list = this.#quarantine.get(key);
      if (!list) this.#quarantine.set(key, list = []);
      list.push(buf);
    } else this.#toPool(buf);
  }

  #toPool(buf: GPUBuffer): void {
    const size = buf.size;
    if (this.stats.poolBytes + size > MAX_POOL_BYTES) {
      this.#destroy(buf);
      return;
    }
    const key = poolKey(size, buf.usage);
    let list = this.#pool.get(key);
    if (!list) this.#pool.set(key, list = []);
    list.push(buf);
    this.stats.poolBytes += size;
  }

  /** Destroy every pooled buffer (e.g. between benchmarks). */
  trimPool(): void {
    this.flush();
    for (const list of this.#pool.values()) {
      for (const b of list) this.#destroy(b);
    }
    this.#pool.clear();
    this.stats.poolBytes = 0;
  }

  /** Copy host values into a storage (allocating its buffer). */
  upload(storage: GpuStorage, data: ArrayBufferView<ArrayBuffer>, label: string): void {
    const buf = this.allocBuffer(storage, label, true);
    if (data.byteLength > 0) {
      this.gpu.queue.writeBuffer(buf, 0, data.buffer, data.byteOffset, data.byteLength);
    }
  }

  // ---------------------------------------------------------------- kernels

  /** The pipeline of `src`; `uniformInputs[i]` says input binding i is a uniform buffer. */
  pipeline(src: KernelSource, uniformInputs: readonly boolean[] = []): CachedPipeline {
    let p = this.#pipelines.get(src.code);
    if (p) return p;
    const dev = this.gpu;
    const entries: GPUBindGroupLayoutEntry[] = [
      {
        binding: 0,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: "uniform", hasDynamicOffset: true },
      },
    ];
    for (let i = 0; i < src.inputs; i++) {
      entries.push({
        binding: i + 1,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: uniformInputs[i] ? "uniform" : "read-only-storage" },
      });
    }
    for (let k = 0; k < (src.outputs ?? 1); k++) {
      entries.push({
        binding: src.inputs + 1 + k,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: "storage" },
      });
    }
    dev.pushErrorScope("validation");
    const layout = dev.createBindGroupLayout({ label: src.label, entries });
    const code = pruneFunctions(src.code);
    const module = dev.createShaderModule({ label: src.label, code });
    const pipeline = dev.createComputePipeline({
      label: src.label,
      layout: dev.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: "main" },
    });
    this.#watch(dev.popErrorScope(), (m) => {
      this.#brokenLabels.add(src.label);
      return `${src.label}: kernel failed to compile: ${m}\n${code}`;
    });
    p = { id: this.#nextId++, pipeline, layout };
    this.#pipelines.set(src.code, p);
    this.stats.pipelinesCompiled++;
    return p;
  }

  /** The WGSL of every kernel compiled on this device so far (for spec-conformance checks). */
  kernelSources(): string[] {
    return [...this.#pipelines.keys()];
  }

  /**
   * Record one dispatch. `uniforms` is the kernel's parameter block; the output (or the
   * `src.outputs` outputs, in order) are bound read-write after the inputs.
   */
  dispatch(
    src: KernelSource,
    uniforms: Uint32Array,
    inputs: Binding[],
    output: Binding | readonly Binding[],
    workgroups: [number, number, number],
  ): void {
    const outputs = Array.isArray(output) ? output : [output as Binding];
    const all = [...inputs, ...outputs];
    // before anything of this dispatch is recorded: pending inputs encode kernels of their own
    for (const b of inputs) if (b.storage.pending) this.materialize(b.storage);
    const limits = this.info!.limits;
    for (const b of all) {
      const bytes = b.size ?? b.storage.bytes;
      if (bytes > limits.maxStorageBufferBindingSize) {
        throw new RangeError(
          `${src.label}: an operand of ${bytes} bytes exceeds this adapter's per-binding limit of ` +
            `${limits.maxStorageBufferBindingSize} bytes and ${src.label} cannot be split into ` +
            `chunks; use smaller tensors`,
        );
      }
    }
    const maxGroups = limits.maxComputeWorkgroupsPerDimension;
    const [gx, gy, gz] = workgroups;
    if (gx > maxGroups || gy > maxGroups || gz > maxGroups) {
      throw new RangeError(
        `${src.label}: dispatch of ${
          workgroups.join("×")
        } workgroups exceeds ${maxGroups} per dimension`,
      );
    }
    if (gx === 0 || gy === 0 || gz === 0) return;
    if (inputs.length !== src.inputs || outputs.length !== (src.outputs ?? 1)) {
      throw new Error(
        `internal: ${src.label} declares ${src.inputs} inputs and ${src.outputs ?? 1} outputs, ` +
          `got ${inputs.length} and ${outputs.length}`,
      );
    }
    const { id, pipeline, layout } = this.#pipelines.get(src.code) ??
      this.pipeline(src, inputs.map((b) => b.uniform === true));
    if (this.#profiler?.full) this.#submit();
    if (!this.#encoder) this.#openBatch();
    const uOffset = this.#pushUniforms(uniforms);
    const arena = this.#arenaBuffer!;
    // each binding's buffer range, and the bind-group cache key they make
    const ranges: GPUBufferBinding[] = [];
    let key = `${id}|${this.#idOf(arena)}`;
    for (const b of all) {
      const buffer = this.allocBuffer(b.storage, src.label);
      const offset = b.offset ?? 0;
      // Shaders that read vec4 expect ≥ 16 bytes even for empty tensors.
      const size = Math.max(
        Math.min(16, buffer.size - offset),
        b.size ?? Math.min(b.storage.bytes, buffer.size - offset),
      );
      ranges.push({ buffer, offset, size });
      key += `|${this.#idOf(buffer)}:${offset}:${size}`;
    }
    let group = this.#groups.get(key);
    if (!group) {
      const entries: GPUBindGroupEntry[] = [{
        binding: 0,
        resource: { buffer: arena, offset: 0, size: UNIFORM_WINDOW },
      }];
      ranges.forEach((r, i) => entries.push({ binding: i + 1, resource: r }));
      group = this.gpu.createBindGroup({ label: src.label, layout, entries });
      if (this.#groups.size >= MAX_CACHED_GROUPS) this.#groups.clear();
      this.#groups.set(key, group);
    }
    if (this.#profiler) {
      // a pass per dispatch, so its start and end can be timestamped
      this.#pass?.end();
      this.#pass = this.#encoder!.beginComputePass(this.#profiler.passFor(src.label, workgroups));
    }
    const pass = this.#pass ??= this.#encoder!.beginComputePass(); // closed by a copy
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group, [uOffset]);
    pass.dispatchWorkgroups(gx, gy, gz);
    this.stats.dispatches++;
    if (++this.#batchDispatches >= BATCH_DISPATCHES && this.#holds === 0) this.#submit();
  }

  /**
   * Record a copy of `bytes` bytes from `src` at byte `srcOffset` into `dst` at byte
   * `dstOffset` (multiples of 4), in order with the dispatches around it. A copy command, not
   * a kernel: on llvmpipe a memcpy, where a dispatch costs 30–100 µs. Scan stacks each step's
   * results into its outputs so.
   */
  copyBytes(
    src: GpuStorage,
    srcOffset: number,
    dst: GpuStorage,
    dstOffset: number,
    bytes: number,
  ): void {
    if (bytes === 0) return;
    if (srcOffset % 4 || dstOffset % 4 || bytes % 4) {
      throw new RangeError(`internal: copyBytes of ${bytes} bytes at ${srcOffset} → ${dstOffset}`);
    }
    if (srcOffset + bytes > src.bytes || dstOffset + bytes > dst.bytes) {
      throw new RangeError(
        `internal: copyBytes of ${bytes} bytes at ${srcOffset} → ${dstOffset} leaves storages ` +
          `of ${src.bytes} and ${dst.bytes} bytes`,
      );
    }
    const from = this.allocBuffer(src, "copy");
    const to = this.allocBuffer(dst, "copy");
    if (!this.#encoder) this.#openBatch();
    this.#pass?.end(); // a copy is recorded outside compute passes
    this.#pass = null;
    this.#encoder!.copyBufferToBuffer(from, srcOffset, to, dstOffset, bytes);
    this.stats.copies++;
    if (++this.#batchDispatches >= BATCH_DISPATCHES && this.#holds === 0) this.#submit();
  }

  #idOf(buffer: GPUBuffer): number {
    let id = this.#bufferIds.get(buffer);
    if (id === undefined) this.#bufferIds.set(buffer, id = this.#nextId++);
    return id;
  }

  /** Destroy a buffer; cached bind groups may reference it, so they go too. */
  #destroy(buffer: GPUBuffer): void {
    this.stats.deviceBytes -= buffer.size;
    buffer.destroy();
    this.#groups.clear();
  }

  /** Record the error an error scope reports, if any. */
  #watch(scope: Promise<GPUError | null>, describe: (message: string) => string): void {
    this.#pendingScopes.push(scope.then((e) => {
      if (e) this.#errors.push(describe(e.message));
    }));
  }

  #openBatch(): void {
    // One validation scope spans the batch (bind groups, encoding, submit), so its errors
    // are reported to the next read instead of arriving late as uncaptured events.
    this.gpu.pushErrorScope("validation");
    this.#encoder = this.gpu.createCommandEncoder({ label: "metagrad batch" });
    this.#pass = this.#profiler ? null : this.#encoder.beginComputePass();
    this.#arenaBuffer = this.#arenaFree.pop() ?? this.gpu.createBuffer({
      label: "metagrad uniforms",
      size: ARENA_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.#arenaUsed = 0;
  }

  #pushUniforms(u: Uint32Array): number {
    const align = Math.max(16, this.info!.limits.minUniformBufferOffsetAlignment);
    const size = Math.max(16, Math.ceil(u.byteLength / 16) * 16);
    if (size > UNIFORM_WINDOW) {
      throw new RangeError(`kernel parameter block of ${size} bytes exceeds ${UNIFORM_WINDOW}`);
    }
    let offset = Math.ceil(this.#arenaUsed / align) * align;
    if (offset + UNIFORM_WINDOW > ARENA_BYTES) {
      this.#submit();
      this.#openBatch();
      offset = 0;
    }
    this.#arena.set(new Uint8Array(u.buffer, u.byteOffset, u.byteLength), offset);
    this.#arenaUsed = offset + size;
    return offset;
  }

  /**
   * Run `fn` without size-triggered submits, so a compiled program's dispatches go out in
   * one command buffer (only an overflowing parameter arena splits it).
   */
  inOneSubmission<T>(fn: () => T): T {
    this.#holds++;
    try {
      return fn();
    } finally {
      this.#holds--;
    }
  }

  /**
   * Copy `storage` into a host-mappable buffer at this point of the open batch, submit the
   * batch and start mapping the copy, so that reading it waits only for the work recorded so
   * far. Deno's map blocks until that work is done, then sleeps 10 ms before resolving: work
   * recorded afterwards runs during the sleep instead of before it. jit stages small outputs
   * (a loss) this way when it predicts the caller reads them. Returns whether it staged.
   */
  stageForRead(storage: GpuStorage): boolean {
    const src = storage.buffer;
    if (!src || !this.stagedReads || this.#profiler || this.#staged.has(storage)) return false;
    const size = Math.ceil(storage.bytes / 4) * 4;
    const staging = this.gpu.createBuffer({
      label: "metagrad staged read",
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    if (this.#encoder) {
      this.#pass?.end(); // a copy is recorded outside compute passes
      this.#pass = null;
      this.#encoder.copyBufferToBuffer(src, 0, staging, 0, size);
      this.#submit();
    } else {
      const enc = this.gpu.createCommandEncoder();
      enc.copyBufferToBuffer(src, 0, staging, 0, size);
      this.gpu.queue.submit([enc.finish()]);
      this.stats.submits++;
    }
    this.stats.stagedReads++;
    const map = staging.mapAsync(GPUMapMode.READ);
    map.catch(() => {}); // freed unread: destroying the buffer aborts the map
    this.#staged.set(storage, { staging, bytes: storage.bytes, map });
    return true;
  }

  // ---------------------------------------------------------------- pending work

  /** Record that `storage`'s value is computed by `work` when first needed (`PendingWork`). */
  defer(storage: GpuStorage, work: PendingWork): void {
    storage.pending = work;
    this.#pendingValues.add(storage);
  }

  /** Encode `storage`'s pending work now, if it has any. */
  materialize(storage: GpuStorage): void {
    const work = storage.pending;
    if (!work) return;
    storage.pending = null;
    this.#pendingValues.delete(storage);
    work.run();
  }

  /** `storage` was freed while pending (its work is dropped). */
  forgetPending(storage: GpuStorage): void {
    this.#pendingValues.delete(storage);
  }

  /**
   * Encode the pending work whose values are still held, oldest first (so a later value reads
   * an earlier one instead of recomputing it). Values held only by other pending work are
   * computed inside it.
   */
  #runHeldPending(): void {
    if (this.#runningPending) return;
    this.#runningPending = true;
    try {
      for (const s of this.#pendingValues) if (s.heldOutside) this.materialize(s);
    } finally {
      this.#runningPending = false;
    }
  }

  /** Encode the pending work still held (`defer`), then submit the open batch, if any. */
  flush(): void {
    if (this.#pendingValues.size) this.#runHeldPending();
    this.#submit();
  }

  /** Submit the open batch, if any. */
  #submit(): void {
    if (!this.#encoder) return;
    this.#pass?.end();
    this.#profiler?.resolve(this.#encoder);
    const arena = this.#arenaBuffer!;
    this.gpu.queue.writeBuffer(arena, 0, this.#arena.buffer, 0, Math.ceil(this.#arenaUsed / 4) * 4);
    this.gpu.queue.submit([this.#encoder.finish()]);
    this.#profiler?.submitted();
    this.#watch(this.gpu.popErrorScope(), (m) => m);
    this.stats.submits++;
    this.#arenaFree.push(arena);
    this.#encoder = null;
    this.#pass = null;
    this.#arenaBuffer = null;
    this.#batchDispatches = 0;
    for (const list of this.#quarantine.values()) for (const b of list) this.#toPool(b);
    this.#quarantine.clear();
  }

  /** Copy a storage's bytes back to the host. The only place that waits on the GPU. */
  async read(storage: GpuStorage, bytes: number): Promise<ArrayBuffer> {
    if (this.#lost) throw this.#lostError(); // only an explicit init() replaces a lost device
    await this.init();
    storage.onRead?.();
    if (bytes === 0) {
      this.flush();
      await this.settle();
      return new ArrayBuffer(0);
    }
    const staged = this.#staged.get(storage);
    if (staged && bytes <= staged.bytes) return await this.#readStaged(storage, staged, bytes);
    const src = this.allocBuffer(storage, "read");
    this.flush();
    const size = Math.ceil(bytes / 4) * 4;
    const staging = this.gpu.createBuffer({
      label: "metagrad readback",
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const enc = this.gpu.createCommandEncoder();
    enc.copyBufferToBuffer(src, 0, staging, 0, size);
    this.gpu.queue.submit([enc.finish()]);
    this.stats.submits++;
    this.stats.readbacks++;
    try {
      await staging.mapAsync(GPUMapMode.READ);
      const out = staging.getMappedRange().slice(0, bytes);
      staging.unmap();
      await this.settle();
      return out;
    } finally {
      staging.destroy();
    }
  }

  async #readStaged(storage: GpuStorage, staged: StagedRead, bytes: number): Promise<ArrayBuffer> {
    this.#staged.delete(storage);
    this.stats.readbacks++;
    try {
      await staged.map;
      const out = staged.staging.getMappedRange().slice(0, bytes);
      staged.staging.unmap();
      await this.settle();
      return out;
    } finally {
      staged.staging.destroy();
    }
  }

  /**
   * Start timing every dispatch (a pass each, timestamped). Throws when the device has no
   * timestamp queries or a profile is already open.
   */
  startProfiling(): void {
    if (this.#profiler) {
      throw new Error("profile: a profile is already running; profiles do not nest");
    }
    if (!this.gpu.features.has("timestamp-query")) {
      throw new Error(
        `profile: the adapter (${this.info?.description}) has no "timestamp-query" feature, so ` +
          "kernels cannot be timed; time whole steps with sync() and performance.now() instead",
      );
    }
    this.flush(); // work recorded before the profile is not timed
    this.#profiler = new DispatchProfiler(this.gpu);
  }

  /** Submit what is recorded, stop timing, and return the per-kernel rows (slowest first). */
  async stopProfiling(): Promise<KernelTiming[]> {
    const profiler = this.#profiler;
    if (!profiler) throw new Error("internal: stopProfiling without startProfiling");
    try {
      this.flush();
    } finally {
      this.#profiler = null;
    }
    const rows = await profiler.finish();
    await this.settle();
    return rows;
  }

  /**
   * What a timed pass costs around an (almost) empty kernel on this adapter, per dispatch: the
   * floor every profile row includes (on llvmpipe the timestamps themselves cost ~0.1 ms).
   */
  async passOverheadMs(): Promise<number> {
    if (this.#passOverheadMs !== null) return this.#passOverheadMs;
    const cell = new GpuStorage(4);
    try {
      const src: KernelSource = {
        code: `${bindings(4, [], "f32")}
@compute @workgroup_size(1) fn main() { out[0] = out[0] + 1.0; }`,
        inputs: 0,
        label: "profile floor",
      };
      this.dispatch(src, new Uint32Array(4), [], { storage: cell }, [1, 1, 1]); // compile first
      this.startProfiling();
      let rows: KernelTiming[];
      try {
        for (let i = 0; i < 32; i++) {
          this.dispatch(src, new Uint32Array(4), [], { storage: cell }, [1, 1, 1]);
        }
      } finally {
        rows = await this.stopProfiling();
      }
      const floor = rows.find((r) => r.label === "profile floor");
      this.#passOverheadMs = floor ? floor.totalMs / floor.dispatches : 0;
      return this.#passOverheadMs;
    } finally {
      cell.release();
    }
  }

  /** Wait until all submitted work is done (for timing). */
  async sync(): Promise<void> {
    if (this.#lost) throw this.#lostError();
    await this.init();
    this.flush();
    await this.gpu.queue.onSubmittedWorkDone();
    await this.settle();
  }
}

/** A storage's bytes copied into a host-mappable buffer ahead of its read (`stageForRead`). */
interface StagedRead {
  staging: GPUBuffer;
  bytes: number;
  map: Promise<void>;
}

/** Pool key: buffers are interchangeable only with the same size and usage. */
function poolKey(size: number, usage: number): number {
  return size * 1024 + (usage & 1023);
}

export const runtime: Runtime = new Runtime();
export { Runtime };
