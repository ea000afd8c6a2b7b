/**
 * vmap: vectorising a per-example function over a batch axis. A BatchTrace at a new level
 * wraps each batched argument leaf in a BatchTracer that holds the whole batch (batch axis
 * first) while presenting the per-example shape; every op goes through the primitive's
 * batching rule, so the batch runs as one computation — no loop over examples.
 */
import { fmtShape } from "../shape.ts";
import { disposeOnThrow } from "../memory.ts";
import { Tensor } from "../tensor.ts";
import { newLevel, type Trace, Tracer } from "../tracer.ts";
import type { MultiPrimitive, Primitive } from "../primitive.ts";
import { flatten, unflatten } from "../tree.ts";
import { broadcastTo, expandDims, moveAxis } from "../ops/shape.ts";
import type { Fn } from "../fn.ts";

export class BatchTracer extends Tracer {
  constructor(readonly trace: BatchTrace, readonly value: Tensor) {
    super(value.shape.slice(1), value.dtype);
  }

  override get primal(): Tensor {
    return this.value;
  }

  override data(): never {
    throw new TypeError(
      `cannot read the values of a ${this.dtype}${
        fmtShape(this.shape)
      } tensor inside vmap (it stands for a ` +
        `whole batch); return it from the function and read the batched result`,
    );
  }

  override toFloat64(): never {
    return this.data();
  }

  override toString(): string {
    return `BatchTracer(${this.dtype}${
      fmtShape(this.shape)
    }, batch ${this.trace.size}, level ${this.trace.level})`;
  }
}

export class BatchTrace implements Trace {
  readonly level = newLevel();
  readonly name = "vmap";
  active = true;
  constructor(readonly size: number) {}

  run<T>(fn: () => T): T {
    try {
      return fn();
    } finally {
      this.active = false;
    }
  }

  process<P>(prim: Primitive<P>, inputs: readonly Tensor[], params: P): Tensor {
    // Validate at the per-example level first so errors show the shapes the user wrote.
    prim.abstractEval(inputs.map((x) => ({ shape: x.shape, dtype: x.dtype })), params);
    const batched = inputs.map((x) => x instanceof BatchTracer && x.trace === this);
    const values = inputs.map((x, i) => (batched[i] ? (x as BatchTracer).value : x));
    if (!prim.batch) throw new Error(`vmap: primitive ${prim.name} has no batching rule`);
    return this.#box(prim.name, prim.batch(values, batched, params, this.size));
  }

  #box(op: string, out: Tensor): BatchTracer {
    if (out.shape[0] !== this.size) {
      throw new Error(
        `internal: batching rule of ${op} returned ${fmtShape(out.shape)} for batch ${this.size}`,
      );
    }
    return new BatchTracer(this, out);
  }

  processMulti<P>(prim: MultiPrimitive<P>, inputs: readonly Tensor[], params: P): Tensor[] {
    prim.abstractEval(inputs.map((x) => ({ shape: x.shape, dtype: x.dtype })), params);
    const batched = inputs.map((x) => x instanceof BatchTracer && x.trace === this);
    const values = inputs.map((x, i) => (batched[i] ? (x as BatchTracer).value : x));
    return prim.batch(values, batched, params, this.size).map((out) => this.#box(prim.name, out));
  }
}

/** Per-argument batch axes: a number or null for every leaf, or a pytree of them. */
export type InAxes = number | null | readonly unknown[];

/** Options of `vmap`. */
export interface VmapOptions {
  /**
   * Batch axis of each argument: one number for all (default 0), or an array with one entry
   * per argument — a number, null (not batched: broadcast), or a pytree of those per leaf.
   */
  inAxes?: InAxes;
  /** Where the batch axis goes in the outputs (a number, or a pytree per output leaf). */
  outAxes?: number | unknown;
}

/**
 * The batch axis of every leaf of `arg` (in `flatten` order), from a spec that is a number,
 * null, or a pytree mirroring the argument whose entries are numbers or null.
 */
function leafAxes(spec: unknown, arg: unknown, where: string): (number | null)[] {
  if (spec === null || spec === undefined || typeof spec === "number") {
    return flatten(arg)[0].map(() => (spec ?? null) as number | null);
  }
  if (Array.isArray(spec) && Array.isArray(arg) && spec.length === arg.length) {
    return arg.flatMap((a, i) => leafAxes(spec[i], a, `${where}[${i}]`));
  }
  if (
    typeof spec === "object" && arg && typeof arg === "object" && !Array.isArray(arg) &&
    !(arg instanceof Tensor)
  ) {
    const keys = Object.keys(arg).sort();
    const specKeys = Object.keys(spec as object).sort();
    if (JSON.stringify(keys) === JSON.stringify(specKeys)) {
      return keys.flatMap((k) =>
        leafAxes(
          (spec as Record<string, unknown>)[k],
          (arg as Record<string, unknown>)[k],
          `${where}.${k}`,
        )
      );
    }
  }
  throw new TypeError(
    `vmap: ${where} must be a number, null, or a pytree matching the argument's structure`,
  );
}

/**
 * Vectorise f over a batch axis of its arguments: `vmap(f)(xs)` equals stacking
 * `f(xs[i])` — computed as one batched program. Composes with grad and with itself.
 *
 * @example
 * ```ts
 * import { vmap, grad, dot, sum, square, tensor } from "@metagrad/metagrad";
 * const xs = tensor([[1, 2], [3, 4], [5, 6]]);
 * vmap((x: any) => dot(x, x))(xs); // [5, 25, 61]
 * // per-example gradients
 * vmap(grad((w: any, x: any) => sum(square(w.mul(x)))), { inAxes: [null, 0] })(tensor([1, 1]), xs);
 * ```
 */
export function vmap<F extends Fn>(f: F, opts: VmapOptions = {}): F {
  // a call that throws frees the batched values it made (disposeOnThrow)
  return ((...args: unknown[]) => disposeOnThrow(() => vmapCall(f, opts, args))) as F;
}

function vmapCall(f: Fn, opts: VmapOptions, args: unknown[]): unknown {
  const inAxes = opts.inAxes === undefined ? 0 : opts.inAxes;
  const perArg: unknown[] = Array.isArray(inAxes) ? [...inAxes] : args.map(() => inAxes);
  if (perArg.length !== args.length) {
    throw new TypeError(`vmap: inAxes has ${perArg.length} entries for ${args.length} arguments`);
  }
  // find the batch size and check it agrees everywhere
  let size: number | null = null;
  const plan = args.map((arg, i) => {
    const axes = leafAxes(perArg[i], arg, `inAxes[${i}]`);
    const [leaves] = flatten(arg);
    axes.forEach((ax, j) => {
      const leaf = leaves[j];
      if (ax === null || ax === undefined) return;
      if (!(leaf instanceof Tensor)) {
        throw new TypeError(`vmap: argument ${i} leaf ${j} has a batch axis but is not a tensor`);
      }
      const a = ax < 0 ? ax + leaf.ndim : ax;
      if (a < 0 || a >= leaf.ndim) {
        throw new RangeError(
          `vmap: batch axis ${ax} out of range for argument ${i} of shape ${fmtShape(leaf.shape)}`,
        );
      }
      const n = leaf.shape[a];
      if (size !== null && n !== size) {
        throw new RangeError(
          `vmap: inconsistent batch sizes ${size} and ${n} (argument ${i}, shape ${
            fmtShape(leaf.shape)
          }, axis ${a})`,
        );
      }
      size = n;
    });
    return axes;
  });
  if (size === null) {
    throw new TypeError("vmap: no argument has a batch axis (all inAxes are null)");
  }
  const trace = new BatchTrace(size);
  const boxed = args.map((arg, i) => {
    const [leaves, def] = flatten(arg);
    return unflatten(
      def,
      leaves.map((leaf, j) => {
        const ax = plan[i][j];
        if (ax === null || ax === undefined || !(leaf instanceof Tensor)) return leaf;
        return new BatchTracer(trace, moveAxis(leaf, ax, 0));
      }),
    );
  });
  const out = trace.run(() => f(...boxed));
  const [outLeaves, outDef] = flatten(out);
  const outAxes = opts.outAxes ?? 0;
  const axes = typeof outAxes === "number"
    ? outLeaves.map(() => outAxes)
    : leafAxes(outAxes, out, "outAxes");
  return unflatten(
    outDef,
    outLeaves.map((leaf, j) => {
      if (!(leaf instanceof Tensor)) return leaf;
      // an output that does not depend on the batch is broadcast along it, as JAX does
      const batchedValue = leaf instanceof BatchTracer && leaf.trace === trace
        ? leaf.value
        : broadcastTo(expandDims(leaf, 0), [size!, ...leaf.shape]);
      const ax = axes[j] ?? 0;
      const rank = batchedValue.ndim;
      if (!Number.isInteger(ax) || ax < -rank || ax >= rank) {
        throw new RangeError(
          `vmap: outAxes ${ax} is out of range for output ${j}, which has rank ${
            rank - 1
          } per example (shape ${fmtShape(leaf.shape)}); the batch axis can go at ${-rank}…${
            rank - 1
          }`,
        );
      }
      return ax === 0 ? batchedValue : moveAxis(batchedValue, 0, ax);
    }),
  );
}
