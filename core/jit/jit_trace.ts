/**
 * Tracing for jit: a JitTrace records every op on its tracers as an equation over abstract
 * variables (shape and dtype only). Concrete tensors met during tracing (closure captures,
 * constants made by creation ops) become program constants.
 */
import type { BackendName } from "../backend/storage.ts";
import type { DType } from "../dtype.ts";
import { addPinnedCheck } from "../memory.ts";
import type { MultiPrimitive, Primitive } from "../primitive.ts";
import { fmtShape } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import { newLevel, popAmbientTrace, pushAmbientTrace, type Trace, Tracer } from "../tracer.ts";
import type { AnyEqn, Var } from "./ir.ts";

export class JitTracer extends Tracer {
  constructor(readonly trace: JitTrace, readonly v: Var, readonly weakNumber = false) {
    super(v.shape, v.dtype);
  }

  /** A JS number argument traced as a scalar: it takes the other operand's dtype, as a number does. */
  override get weak(): boolean {
    return this.weakNumber;
  }

  /** JS arithmetic or comparison on a traced number would be NaN or false without a word. */
  override valueOf(): never {
    throw new TypeError(
      `jit: a traced ${this.weakNumber ? "JS number argument" : "value"} was used as a JS ` +
        `number (arithmetic, a comparison, a shape or a loop count); jit traces JS numbers as ` +
        `scalars so new values reuse the program — compute with ops (mg.mul(x, lr)), or list ` +
        `the argument in staticArgnums to have it as a JS number (a new value then compiles anew)`,
    );
  }

  override get primal(): null {
    return null;
  }

  override get backend(): BackendName {
    return this.trace.backend;
  }

  override data(): never {
    throw new TypeError(
      `cannot read the values of a ${this.dtype}${
        fmtShape(this.shape)
      } tensor inside jit (tracing sees shapes ` +
        `only); return it from the jitted function, or pass a value that decides control flow in staticArgnums`,
    );
  }

  override toFloat64(): never {
    return this.data();
  }

  override toString(): string {
    return `JitTracer(${this.dtype}${fmtShape(this.shape)})`;
  }
}

/** Thrown when a tracer of another transformation reaches a jit trace (via a closure). */
export class ForeignTracerError extends Error {}

const activeJitTraces: JitTrace[] = [];
addPinnedCheck((t) => activeJitTraces.some((tr) => tr.hasConstant(t as Tensor)));

export class JitTrace implements Trace {
  readonly level = newLevel();
  readonly name = "jit";
  active = true;
  readonly eqns: AnyEqn[] = [];
  readonly inputs: Var[] = [];
  #constants = new Map<Tensor, Var>();
  #captured = new Map<Tensor, Var>();
  #nextId = 0;

  /**
   * With `capture`, every outside value the function reads — a concrete tensor or another
   * transformation's tracer — becomes an extra program input (see `captured`) instead of a
   * constant: how a scan body's closure turns into explicit operands.
   */
  constructor(readonly backend: BackendName, readonly capture = false) {}

  run<T>(fn: () => T): T {
    activeJitTraces.push(this);
    pushAmbientTrace(this);
    try {
      return fn();
    } finally {
      popAmbientTrace(this);
      activeJitTraces.splice(activeJitTraces.indexOf(this), 1);
      this.active = false;
    }
  }

  hasConstant(t: Tensor): boolean {
    return this.#constants.has(t) || this.#captured.has(t);
  }

  /** The concrete tensors the program captured. */
  constants(): Tensor[] {
    return [...this.#constants.keys()];
  }

  newVar(shape: readonly number[], dtype: DType, constant?: Tensor): Var {
    return { id: this.#nextId++, shape: [...shape], dtype, constant };
  }

  input(shape: readonly number[], dtype: DType, weakNumber = false): JitTracer {
    const v = this.newVar(shape, dtype);
    this.inputs.push(v);
    return new JitTracer(this, v, weakNumber);
  }

  /** Outside values the function read, in first-use order, with their input variables. */
  captured(): [Tensor, Var][] {
    return [...this.#captured];
  }

  /** The variable for a value seen during tracing: a tracer's own, or a constant's. */
  varOf(x: Tensor): Var {
    if (x instanceof JitTracer && x.trace === this) return x.v;
    if (this.capture) {
      let v = this.#captured.get(x);
      if (!v) {
        if (!(x instanceof Tracer)) x.storage; // a disposed tensor is a clear error now
        this.#captured.set(x, v = this.newVar(x.shape, x.dtype));
      }
      return v;
    }
    if (x instanceof Tracer) throw new ForeignTracerError();
    let v = this.#constants.get(x);
    if (!v) {
      x.storage; // a disposed constant is a clear error now, not at run time
      v = this.newVar(x.shape, x.dtype, x);
      this.#constants.set(x, v);
    }
    return v;
  }

  process<P>(prim: Primitive<P>, inputs: readonly Tensor[], params: P): Tensor {
    const vars = inputs.map((x) => this.varOf(x));
    const aval = prim.abstractEval(vars, params);
    const out = this.newVar(aval.shape, aval.dtype);
    this.eqns.push({ prim, params, inputs: vars, out });
    return new JitTracer(this, out);
  }

  processMulti<P>(prim: MultiPrimitive<P>, inputs: readonly Tensor[], params: P): Tensor[] {
    const vars = inputs.map((x) => this.varOf(x));
    const outs = prim.abstractEval(vars, params).map((a) => this.newVar(a.shape, a.dtype));
    this.eqns.push({ prim, params, inputs: vars, outs });
    return outs.map((v) => new JitTracer(this, v));
  }
}
