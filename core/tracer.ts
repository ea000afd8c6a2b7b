/**
 * Tracers: tensors whose operations are intercepted by a transformation (grad, vmap, jit's
 * tracing). Each active transformation is a Trace with a level; `bind` hands an op to the
 * highest-level trace among its inputs, which is how nested transformations stay apart
 * (no perturbation confusion).
 */
import type { BackendName, Storage } from "./backend/storage.ts";
import type { MultiPrimitive, Primitive } from "./primitive.ts";
import { Tensor } from "./tensor.ts";

export interface Trace {
  /** Larger = more deeply nested; ops go to the highest level among their inputs. */
  readonly level: number;
  /** Transformation name, for error messages. */
  readonly name: string;
  /** False once the transformation has returned; its tracers must not be used after. */
  readonly active: boolean;
  /** Run `prim` on `inputs`, some of which are this trace's tracers. */
  process<P>(prim: Primitive<P>, inputs: readonly Tensor[], params: P): Tensor;
  /** The same for a primitive with several results (scan). */
  processMulti<P>(prim: MultiPrimitive<P>, inputs: readonly Tensor[], params: P): Tensor[];
}

let nextLevel = 1;

/** A fresh level, above every trace created before. */
export function newLevel(): number {
  return nextLevel++;
}

export abstract class Tracer extends Tensor {
  abstract readonly trace: Trace;

  constructor(shape: readonly number[], dtype: Tensor["dtype"]) {
    super(shape, dtype, null);
  }

  /**
   * The value this tracer stands for (possibly itself a tracer of an outer transformation);
   * null when it is abstract (jit tracing knows only shapes and dtypes).
   */
  abstract get primal(): Tensor | null;

  override get isDisposed(): boolean {
    return false;
  }

  /** Tracers hold no memory; disposing one is a no-op. */
  override dispose(): void {}

  override get storage(): Storage {
    throw new TypeError(`internal: a ${this.trace.name} tracer has no storage of its own`);
  }

  override get backend(): BackendName {
    const p = this.primal;
    if (!p) {
      throw new TypeError(`internal: a ${this.trace.name} tracer must report its backend itself`);
    }
    return p.backend;
  }
}

/** The trace that should process an op on `inputs`, or null for concrete evaluation. */
export function topTrace(op: string, inputs: readonly Tensor[]): Trace | null {
  let top: Trace | null = null;
  for (const x of inputs) {
    if (!(x instanceof Tracer)) continue;
    if (!x.trace.active) {
      throw new ReferenceError(
        `${op}: a value traced by ${x.trace.name} was used after ${x.trace.name} returned (it escaped, e.g. ` +
          `through a closure or a global); return it from the function instead`,
      );
    }
    if (!top || x.trace.level > top.level) top = x.trace;
  }
  return top;
}

/**
 * Traces that also capture ops with no tensor inputs (creation ops such as full and iota),
 * so a jitted program records them instead of baking their results in as constants.
 */
const ambient: (Trace | null)[] = [];

export function pushAmbientTrace(t: Trace): void {
  ambient.push(t);
}

export function popAmbientTrace(t: Trace): void {
  ambient.splice(ambient.lastIndexOf(t), 1);
}

export function ambientTrace(): Trace | null {
  return ambient.at(-1) ?? null;
}

/**
 * Run `fn` with no ambient trace: a concrete evaluation that happens while a jit is tracing
 * (a scan over constants, say) must make concrete tensors, not record into that program.
 */
export function withoutAmbientTrace<T>(fn: () => T): T {
  ambient.push(null);
  try {
    return fn();
  } finally {
    ambient.splice(ambient.lastIndexOf(null), 1);
  }
}
