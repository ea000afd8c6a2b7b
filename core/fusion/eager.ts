/**
 * Eager fusion: on the WebGPU backend an eager elementwise op (a primitive with a `fusion`
 * rule: arithmetic, comparisons, `where`, casts, broadcasts, constants) does not dispatch a
 * kernel when it is called. Its result's storage records the op instead, and the op runs when
 * its value is first needed — bound by another kernel, read, or at the next `sync()` / read —
 * as one kernel together with every still-deferred elementwise op it depends on. So a chain
 * of eager elementwise ops costs one dispatch instead of one each (on llvmpipe a dispatch
 * costs 40–100 µs before any work), and an intermediate disposed before then (a `tidy` scope's
 * temporaries) is never stored at all.
 *
 * A deferred op keeps its inputs' storages alive. Values are computed, not cached, inside the
 * kernels that inline them: an intermediate that is still held when a kernel inlines it stays
 * deferred and is computed again if it is needed on its own later (elementwise work is cheap
 * next to a dispatch). Groups are bounded (`MAX_FUSED_OPS`, the adapter's storage bindings),
 * and scalar constants travel in the parameter block, so the kernels a loop makes repeat and
 * their pipelines are compiled once.
 */
import type { DType } from "../dtype.ts";
import { broadcastStrides, shapesEqual, sizeOf } from "../shape.ts";
import type { Storage } from "../backend/storage.ts";
import { FusedCodeBuilder } from "./codegen.ts";
import { runElementwise, type StridedOperand } from "../backend/webgpu/kernels/elementwise.ts";
import { GpuStorage, type PendingWork, runtime } from "../backend/webgpu/runtime.ts";

/**
 * Most ops one fused kernel computes. Bounds the source a long eager loop makes (a chain of
 * 100 adds runs as 5 kernels, 3 of them one source) and the cost of recomputing a still-held
 * intermediate.
 */
const MAX_FUSED_OPS = 24;

let enabled = true;

/**
 * Turn eager fusion on (the default) or off. With it, an eager elementwise op on the WebGPU
 * backend (arithmetic, comparisons, `where`, casts, broadcasts, constants) is recorded rather
 * than dispatched, and runs when its value is first needed — used by another kind of kernel,
 * read, or at `sync()` — as one kernel with the deferred elementwise ops it depends on. A
 * chain of such ops then costs one dispatch, and a temporary disposed unread (one freed by
 * `tidy`) is never computed: keep results you time until after `sync()`. Results are the same
 * either way; off, every op dispatches its own kernel when called.
 *
 * @example
 * ```ts
 * import { ones, setEagerFusion, sync } from "@metagrad/metagrad";
 * setEagerFusion(false); // one kernel per op, e.g. to profile ops one by one
 * const y = ones([8]).mul(3).add(1);
 * await sync();
 * setEagerFusion(true);
 * ```
 */
export function setEagerFusion(on: boolean): void {
  enabled = on;
}

/**
 * Whether eager elementwise ops are deferred and fused (`setEagerFusion`).
 *
 * @example
 * ```ts
 * import { eagerFusion } from "@metagrad/metagrad";
 * console.log(eagerFusion()); // true
 * ```
 */
export function eagerFusion(): boolean {
  return enabled;
}

/** Shape and dtype (a primitive's `Aval`). */
interface Aval {
  readonly shape: readonly number[];
  readonly dtype: DType;
}

/** A value an op reads: its storage, and the shape and dtype it is read as (a tensor). */
interface Operand extends Aval {
  readonly storage: Storage;
}

/**
 * What eager fusion needs of a primitive — its name, WGSL expression (`fusion`) and kernel —
 * structurally, so that this layer imports nothing from the primitives above it.
 */
export interface FusibleOp {
  readonly name: string;
  fusion?(
    inputs: readonly Aval[],
    params: any,
    args: readonly string[],
    param?: (bits: number) => number,
  ): string;
  fusionHelpers?: string;
  webgpu(inputs: readonly (Aval & { storage: GpuStorage })[], params: any, out: any): void;
}

/** An input of a deferred op: the storage and the shape and dtype the op reads it as. */
interface DeferredInput extends Aval {
  storage: GpuStorage;
}

/** A deferred elementwise op: what its storage will hold once it runs. */
class DeferredOp implements PendingWork {
  constructor(
    readonly prim: FusibleOp,
    readonly params: unknown,
    readonly inputs: readonly DeferredInput[],
    readonly out: Aval,
    readonly self: GpuStorage,
    /** Ops in this op's deferred ancestry, counting shared ones once per path (an upper bound). */
    readonly ops: number,
    /** The materialised values its deferred ancestry reads (each storage and shape once). */
    readonly leaves: readonly DeferredInput[],
  ) {
    for (const i of inputs) i.storage.holdForReader();
  }

  run(): void {
    try {
      encodeGroup(this);
    } finally {
      this.#releaseInputs();
    }
  }

  drop(): void {
    this.#releaseInputs();
  }

  #releaseInputs(): void {
    for (const i of this.inputs) i.storage.releaseFromReader();
  }
}

/**
 * A fused group is compiled once running it op by op would have cost about as much: when the
 * dispatches it saves (its ops less one, summed over the times it ran) reach this. Compiling a
 * kernel costs ~25 ms on llvmpipe whatever its size and a dispatch ~50–100 µs, so a group that
 * recurs (a training loop's step) is fused soon, while one-off code compiles nothing new — an
 * eager second-order MAML step's first call would otherwise compile 50–130 fused kernels.
 */
let fuseAfterSaved = 256;

/** Fused groups compiled (by structure), and the dispatches the others saved so far. */
const compiledGroups = new Set<string>();
const savedSoFar = new Map<string, number>();

/** @internal Tests set 0 to fuse every group the first time it runs. */
export function setFuseAfterSaved(dispatches: number): void {
  fuseAfterSaved = dispatches;
}

/** Whether a group of `ops` ops with this structure runs as one kernel (ski rental). */
function worthCompiling(structure: string, ops: number): boolean {
  if (compiledGroups.has(structure)) return true;
  const saved = (savedSoFar.get(structure) ?? 0) + ops - 1;
  if (saved < fuseAfterSaved) {
    if (savedSoFar.size >= 4096) savedSoFar.clear(); // many one-off groups: forget them
    savedSoFar.set(structure, saved);
    return false;
  }
  savedSoFar.delete(structure);
  compiledGroups.add(structure);
  return true;
}

/** The deferred op behind an input that a kernel may compute inline, or null. */
function inlined(i: DeferredInput): DeferredOp | null {
  const w = i.storage.pending;
  return w instanceof DeferredOp && shapesEqual(w.out.shape, i.shape) ? w : null;
}

/** Most distinct inputs one kernel may bind (one binding is its output). */
function maxLeaves(): number {
  return runtime.info!.limits.maxStorageBuffersPerShaderStage - 1;
}

/** Whether `bind` should defer this op instead of dispatching it now. */
export function shouldDefer(prim: FusibleOp, inputs: readonly Operand[], out: Aval): boolean {
  // (on a lost device the op takes the usual path, which reports the loss)
  if (!enabled || !prim.fusion || !runtime.ready || runtime.isLost) return false;
  const n = sizeOf(out.shape);
  // chunked launches (over the per-binding limit) keep their own path
  const maxBind = runtime.info!.limits.maxStorageBufferBindingSize;
  return n > 0 && n * 4 <= maxBind && inputs.every((t) => t.storage.bytes <= maxBind);
}

/** Record `prim(inputs)` as a deferred op; returns the storage of its result, which holds it. */
export function deferElementwise(
  prim: FusibleOp,
  inputs: readonly Operand[],
  params: unknown,
  out: Aval,
): GpuStorage {
  const ins: DeferredInput[] = inputs.map((t) => ({
    storage: t.storage as GpuStorage,
    shape: t.shape,
    dtype: t.dtype,
  }));
  for (const i of ins) {
    // a tensor of a lost device is reported at the call, as by ops that dispatch at once
    runtime.assertCurrent(i.storage, prim.name);
    // a view of a deferred value with another shape (a reshape) is read as stored
    if (i.storage.pending && !inlined(i)) runtime.materialize(i.storage);
  }
  let { ops, leaves } = ancestry(ins);
  if (ops > MAX_FUSED_OPS || leaves.length > maxLeaves()) {
    for (const i of ins) if (inlined(i)) runtime.materialize(i.storage);
    ({ ops, leaves } = ancestry(ins));
  }
  const storage = new GpuStorage(sizeOf(out.shape) * 4);
  runtime.defer(storage, new DeferredOp(prim, params, ins, out, storage, ops, leaves));
  return storage;
}

function ancestry(ins: readonly DeferredInput[]): { ops: number; leaves: DeferredInput[] } {
  let ops = 1;
  const leaves: DeferredInput[] = [];
  const add = (l: DeferredInput) => {
    if (!leaves.some((m) => m.storage === l.storage && shapesEqual(m.shape, l.shape))) {
      leaves.push(l);
    }
  };
  for (const i of ins) {
    const w = inlined(i);
    if (w) {
      ops += w.ops;
      w.leaves.forEach(add);
    } else add(i);
  }
  return { ops, leaves };
}

/**
 * Encode `root` with every deferred op it reads inline: one kernel whose values are bound with
 * `let` in dependency order, evaluated at each element of `root`'s shape (every value of an
 * elementwise group broadcasts into it).
 */
function encodeGroup(root: DeferredOp): void {
  const order: DeferredOp[] = [];
  const seen = new Set<DeferredOp>();
  const visit = (w: DeferredOp) => {
    if (seen.has(w)) return;
    seen.add(w);
    for (const i of w.inputs) {
      const u = inlined(i);
      if (u) visit(u);
    }
    order.push(w);
  };
  visit(root);
  // alone: the primitive's own kernel, shared with unfused calls
  const runAlone = () =>
    root.prim.webgpu(root.inputs, root.params as never, { ...root.out, storage: root.self });
  if (order.length === 1) return runAlone();
  const code = new FusedCodeBuilder<DeferredInput>((a, b) =>
    a.storage === b.storage && shapesEqual(a.shape, b.shape)
  );
  const leaves = code.leaves;
  const names = new Map<DeferredOp, string>();
  const extra: number[] = [];
  const helpers = new Set<string>();
  // constants go in the parameter block, so other values reuse the kernel
  const param = (bits: number) => extra.push(bits) - 1;
  for (const w of order) {
    const args = w.inputs.map((i) => {
      const u = inlined(i);
      return u ? names.get(u)! : code.leaf(i);
    });
    if (w.prim.fusionHelpers) helpers.add(w.prim.fusionHelpers);
    names.set(w, code.bind(w.prim.fusion!(w.inputs, w.params as never, args, param)));
  }
  if (leaves.length > maxLeaves()) {
    // inlined values turned into stored ones since the group was sized: run the inputs first
    for (const i of root.inputs) if (inlined(i)) runtime.materialize(i.storage);
    encodeGroup(root);
    return;
  }
  const prelude = code.prelude;
  if (!worthCompiling(`${prelude}|${leaves.map((l) => l.dtype + l.shape.length)}`, order.length)) {
    // op by op, in dependency order: each then reads the ones before it as stored values
    for (const w of order) if (w !== root) runtime.materialize(w.self);
    return runAlone();
  }
  const operands: StridedOperand[] = leaves.map((l) => ({
    storage: l.storage,
    dtype: l.dtype,
    strides: broadcastStrides(l.shape, root.out.shape),
    offset: 0,
  }));
  const label = `fused[${order.filter((w) => w.prim.name !== "full").map((w) => w.prim.name)}]`;
  runElementwise(
    {
      label,
      prelude,
      expr: names.get(root)!,
      helpers: [...helpers].join("\n"),
      extra,
    },
    operands,
    root.out.shape,
    root.out.dtype,
    root.self,
  );
}
