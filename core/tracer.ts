/**
 * Tracers: tensors whose operations are intercepted by a transformation (grad now; vmap and
 * jit later). Each active transformation is a Trace with a level; `bind` hands an op to the
 * highest-level trace among its inputs, which is how nested transformations stay apart
 * (no perturbation confusion).
 */
import type { BackendName, Storage } from "./backend/storage.ts";
import type { Primitive } from "./primitive.ts";
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

  /** The value this tracer stands for (possibly itself a tracer of an outer transformation). */
  abstract get primal(): Tensor;

  override get isDisposed(): boolean {
    return false;
  }

  /** Tracers hold no memory; disposing one is a no-op. */
  override dispose(): void {}

  override get storage(): Storage {
    throw new TypeError(`internal: a ${this.trace.name} tracer has no storage of its own`);
  }

  override get backend(): BackendName {
    return this.primal.backend;
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
