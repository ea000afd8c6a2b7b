/**
 * Reverse-mode tracing. Each `vjp`/`grad` call opens a GradTrace at a new level; its inputs
 * become GradTracers and every op on them is recorded as a node holding a vjp closure. The
 * backward pass walks the nodes in reverse, calling the rules — which are ordinary ops, so
 * when an outer trace is active they are recorded too: that is how grad(grad(f)) works.
 */
import { isFloat } from "../dtype.ts";
import { addPinnedCheck } from "../memory.ts";
import { bind, bindMulti, type MultiPrimitive, type Primitive } from "../primitive.ts";
import type { Tensor } from "../tensor.ts";
import { newLevel, type Trace, Tracer } from "../tracer.ts";
import { add } from "../ops/math.ts";
import { fmtShape } from "../shape.ts";

/** One recorded computation: maps output cotangents to input cotangents. */
export interface Node {
  inputs: readonly Tensor[];
  outputs: GradTracer[];
  vjp(cotangents: (Tensor | null)[]): (Tensor | null)[];
}

export class GradTracer extends Tracer {
  constructor(readonly trace: GradTrace, readonly value: Tensor, readonly node: Node | null) {
    super(value.shape, value.dtype);
  }

  override get primal(): Tensor {
    return this.value;
  }

  /** Reading a traced value reads its primal (eager tracing has concrete values). */
  override data(): ReturnType<Tensor["data"]> {
    return this.value.data();
  }

  override toFloat64(): Promise<Float64Array> {
    return this.value.toFloat64();
  }

  override toString(): string {
    return `GradTracer(${this.dtype}${fmtShape(this.shape)}, level ${this.trace.level})`;
  }
}

const activeTraces: GradTrace[] = [];

addPinnedCheck((t) => activeTraces.some((tr) => tr.referenced.has(t as Tensor)));

export class GradTrace implements Trace {
  readonly level = newLevel();
  readonly name = "grad";
  active = true;
  readonly nodes: Node[] = [];
  /** Concrete tensors the backward pass will read; kept alive across inner tidy scopes. */
  readonly referenced = new Set<Tensor>();

  /** Make this trace current for the duration of `fn`. */
  run<T>(fn: () => T): T {
    activeTraces.push(this);
    try {
      return fn();
    } finally {
      activeTraces.splice(activeTraces.indexOf(this), 1);
      this.active = false;
    }
  }

  unbox(x: Tensor): Tensor {
    return x instanceof GradTracer && x.trace === this ? x.value : x;
  }

  /** Wrap a value as an input of this trace (a leaf of the backward pass). */
  input(x: Tensor): GradTracer {
    this.#reference(x);
    return new GradTracer(this, x, null);
  }

  #reference(x: Tensor): void {
    if (!(x instanceof Tracer)) this.referenced.add(x);
  }

  /** Record a node whose outputs are `values`; returns the boxed outputs. */
  record(
    inputs: readonly Tensor[],
    values: readonly Tensor[],
    vjp: Node["vjp"],
    extra: readonly Tensor[] = [],
  ): GradTracer[] {
    const node: Node = { inputs, outputs: [], vjp };
    for (const v of values) node.outputs.push(new GradTracer(this, v, node));
    for (const x of [...inputs.map((t) => this.unbox(t)), ...values, ...extra]) this.#reference(x);
    this.nodes.push(node);
    return node.outputs;
  }

  process<P>(prim: Primitive<P>, inputs: readonly Tensor[], params: P): Tensor {
    const primals = inputs.map((x) => this.unbox(x));
    const out = bind(prim, primals, params);
    // Integer and bool results carry no gradient: do not record them.
    if (!prim.vjp || !isFloat(out.dtype)) return out;
    const rule = prim.vjp;
    return this.record(
      inputs,
      [out],
      ([g]) => (g ? rule(g, primals, out, params) : inputs.map(() => null)),
    )[0];
  }

  processMulti<P>(prim: MultiPrimitive<P>, inputs: readonly Tensor[], params: P): Tensor[] {
    const primals = inputs.map((x) => this.unbox(x));
    const differentiable = inputs.map((x) =>
      x instanceof GradTracer && x.trace === this && isFloat(x.dtype)
    );
    if (!differentiable.some((d) => d)) return bindMulti(prim, primals, params);
    const { outs, residuals, backward } = prim.vjp(primals, params, differentiable);
    // only float results carry gradients; integer ones are returned as they are
    const floats = outs.filter((o) => isFloat(o.dtype));
    const boxed = this.record(
      inputs,
      floats,
      (gs) => {
        const all: (Tensor | null)[] = [];
        let k = 0;
        for (const o of outs) all.push(isFloat(o.dtype) ? gs[k++] : null);
        return backward(all);
      },
      residuals,
    );
    let k = 0;
    return outs.map((o) => (isFloat(o.dtype) ? boxed[k++] : o));
  }

  /**
   * Backward pass: cotangents of this trace's tracers, given cotangents for `outputs`.
   * Reusable (a vjp function may be called many times).
   */
  backward(outputs: readonly Tensor[], cotangents: readonly Tensor[]): Map<GradTracer, Tensor> {
    const ct = new Map<GradTracer, Tensor>();
    const accumulate = (t: Tensor, g: Tensor) => {
      if (!(t instanceof GradTracer) || t.trace !== this) return;
      if (g.shape.length !== t.shape.length || g.shape.some((d, i) => d !== t.shape[i])) {
        throw new Error(
          `internal: cotangent ${fmtShape(g.shape)} for a value of shape ${fmtShape(t.shape)}`,
        );
      }
      const prev = ct.get(t);
      ct.set(t, prev ? add(prev, g) : g);
    };
    outputs.forEach((o, i) => accumulate(o, cotangents[i]));
    for (let n = this.nodes.length - 1; n >= 0; n--) {
      const node = this.nodes[n];
      const gs = node.outputs.map((o) => ct.get(o) ?? null);
      if (gs.every((g) => g === null)) continue;
      const ins = node.vjp(gs);
      node.inputs.forEach((x, i) => {
        const g = ins[i];
        if (g) accumulate(x, g);
      });
    }
    return ct;
  }
}

/** The innermost active grad trace among the tracers in `xs`, if any. */
export function innermostGradTrace(xs: readonly unknown[]): GradTrace | null {
  let top: GradTrace | null = null;
  for (const x of xs) {
    if (x instanceof GradTracer && x.trace.active && (!top || x.trace.level > top.level)) {
      top = x.trace;
    }
  }
  return top;
}
