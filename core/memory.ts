/**
 * Explicit, safe memory: tensors made inside `tidy(fn)` are freed when it returns, except
 * those it returns; `dispose()` / `using` free one tensor; a FinalizationRegistry frees the
 * device memory of tensors that were dropped without either.
 */
import { liveCounters, type Storage } from "./backend/storage.ts";
import { runtime } from "./backend/webgpu/runtime.ts";
import { leaves } from "./tree.ts";

/** Anything a scope can free. */
export interface Disposable {
  /** Free the resource now. */
  dispose(): void;
  /** True once freed. */
  readonly isDisposed: boolean;
}

const scopes: Set<Disposable>[] = [];
export const tensorCounter = { live: 0 };

const finalizer = new FinalizationRegistry<Storage>((storage) => {
  tensorCounter.live--;
  storage.release();
});

/**
 * Tensors an active transformation still needs (e.g. values recorded for a backward pass)
 * must survive the end of an inner `tidy`; they move to the enclosing scope instead.
 */
const pinChecks: ((t: Disposable) => boolean)[] = [];

function isPinned(t: Disposable): boolean {
  return pinChecks.some((check) => check(t));
}

/** Installed by the transformations that record values (grad, jit). */
export function addPinnedCheck(check: (t: Disposable) => boolean): void {
  pinChecks.push(check);
}

/** Tensors made inside each open `disposeOnThrow` call, innermost last. */
const failFrames: Disposable[][] = [];

/** Called by every new tensor. */
export function track(t: Disposable, storage: Storage | null): void {
  tensorCounter.live++;
  if (storage) finalizer.register(t, storage, t);
  scopes.at(-1)?.add(t);
  failFrames.at(-1)?.push(t);
}

/**
 * Run an op's body; if it throws, dispose the tensors it made first (the scalars and casts
 * of its operands), so a refused call leaves memory as it was. Costs an array per call; on
 * success the tensors belong to the enclosing frame, as if made there.
 */
export function disposeOnThrow<T>(fn: () => T): T {
  return collectMade(fn).result;
}

/**
 * Run `fn` and return its result with the tensors made while it ran (so a caller can tell a
 * callback's fresh tensors, which it may free, from ones the callback returned from a cache).
 * If `fn` throws, those tensors are disposed. The tensors also count as made by any
 * enclosing `collectMade`.
 */
export function collectMade<T>(fn: () => T): { result: T; made: Set<Disposable> } {
  const made: Disposable[] = [];
  failFrames.push(made);
  try {
    const result = fn();
    failFrames.pop();
    failFrames.at(-1)?.push(...made);
    return { result, made: new Set(made) };
  } catch (e) {
    failFrames.pop();
    for (const t of made) if (!t.isDisposed) t.dispose();
    throw e;
  }
}

/** Called by `dispose()`. */
export function untrack(t: Disposable): void {
  tensorCounter.live--;
  finalizer.unregister(t);
  for (const s of scopes) s.delete(t);
}

/**
 * Run `fn`, then free every tensor created inside it except those in its result (any pytree).
 * Scopes nest: the survivors belong to the enclosing scope.
 *
 * @example
 * ```ts
 * import { tidy, ones } from "@metagrad/metagrad";
 * const y = tidy(() => ones([3]).mul(2).add(1)); // the intermediates are freed
 * ```
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Disposable>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    for (const t of scope) t.dispose();
    throw new TypeError(
      "tidy: fn returned a Promise; tidy needs a synchronous function (await outside it)",
    );
  }
  // A returned tracer keeps what it stands for (its primal chain) alive as well.
  const keepSet = new Set<unknown>();
  for (const leaf of leaves(result)) {
    for (
      let x: unknown = leaf;
      x && typeof x === "object";
      x = (x as { primal?: unknown }).primal
    ) keepSet.add(x);
  }
  const parent = scopes.at(-1);
  for (const t of scope) {
    if (keepSet.has(t) || isPinned(t)) parent?.add(t);
    else if (!t.isDisposed) t.dispose();
  }
  return result;
}

/**
 * Exempt a tensor from the enclosing `tidy` scopes (it then lives until disposed), and from
 * any caller that frees what a callback made (`metaTrain` frees the batches its sampler makes;
 * a sampler that caches one it made lazily keeps it).
 *
 * @example
 * ```ts
 * import { tidy, keep, zeros } from "@metagrad/metagrad";
 * let saved;
 * tidy(() => { saved = keep(zeros([2])); });
 * ```
 */
export function keep<T extends Disposable>(t: T): T {
  for (const s of scopes) s.delete(t);
  for (const frame of failFrames) {
    const i = frame.indexOf(t);
    if (i >= 0) frame.splice(i, 1);
  }
  return t;
}

/** A snapshot of memory use. */
export interface MemoryInfo {
  /** Tensor objects not yet disposed. */
  liveTensors: number;
  /** Bytes held by live tensors (views share). */
  liveBytes: number;
  /** Highest liveBytes since the process started or `resetPeakMemory()`. */
  peakBytes: number;
  /** Device bytes kept in the buffer pool for reuse. */
  poolBytes: number;
  /** Device bytes of all buffers the WebGPU backend holds (live + pooled). */
  deviceBytes: number;
}

/**
 * Current memory use.
 *
 * @example
 * ```ts
 * import { memory } from "@metagrad/metagrad";
 * console.log(memory().liveBytes);
 * ```
 */
export function memory(): MemoryInfo {
  return {
    liveTensors: tensorCounter.live,
    liveBytes: liveCounters.bytes,
    peakBytes: liveCounters.peakBytes,
    poolBytes: runtime.stats.poolBytes,
    deviceBytes: runtime.stats.deviceBytes,
  };
}

/**
 * Restart peak tracking at the current live bytes.
 *
 * @example
 * ```ts
 * import { resetPeakMemory, memory } from "@metagrad/metagrad";
 * resetPeakMemory();
 * const peak = memory().peakBytes;
 * ```
 */
export function resetPeakMemory(): void {
  liveCounters.peakBytes = liveCounters.bytes;
}
