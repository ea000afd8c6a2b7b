/**
 * The jit IR: a straight-line program of primitive applications over typed variables, in
 * the spirit of a jaxpr. Printed with `programText`.
 */
import type { DType } from "../dtype.ts";
import { bind, bindMulti, type MultiPrimitive, type Primitive } from "../primitive.ts";
import type { Tensor } from "../tensor.ts";
import { shapesEqual } from "../shape.ts";

/** A value in a program: an input, a constant (a captured concrete tensor) or an equation's result. */
export interface Var {
  readonly id: number;
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** Set for constants. */
  readonly constant?: Tensor;
}

/** Whether two values have the same shape. */
export function sameShape(a: Var, b: Var): boolean {
  return shapesEqual(a.shape, b.shape);
}

/** One primitive application. */
export interface Eqn {
  readonly prim: Primitive<any>;
  readonly params: any;
  readonly inputs: readonly Var[];
  readonly out: Var;
}

/** One application of a primitive with several results (scan). */
export interface MultiEqn {
  readonly prim: MultiPrimitive<any>;
  readonly params: any;
  readonly inputs: readonly Var[];
  readonly outs: readonly Var[];
}

export type AnyEqn = Eqn | MultiEqn;

export function isMultiEqn(e: AnyEqn): e is MultiEqn {
  return "outs" in e;
}

/** The values an equation defines. */
export function eqnOutputs(e: AnyEqn): readonly Var[] {
  return isMultiEqn(e) ? e.outs : [e.out];
}

export interface Program {
  readonly inputs: readonly Var[];
  readonly eqns: readonly AnyEqn[];
  readonly outputs: readonly Var[];
}

/** A source of new variables, with ids above every id the program uses. */
export function idSource(p: Program): (shape: readonly number[], dtype: Var["dtype"]) => Var {
  let next = 0;
  const see = (v: Var) => (next = Math.max(next, v.id + 1));
  p.inputs.forEach(see);
  p.outputs.forEach(see);
  for (const e of p.eqns) {
    e.inputs.forEach(see);
    eqnOutputs(e).forEach(see);
  }
  return (shape, dtype) => ({ id: next++, shape: [...shape], dtype });
}

/** The equations reading each value, once per operand (null: a program output). */
export function readers(p: Program): Map<number, (AnyEqn | null)[]> {
  const m = new Map<number, (AnyEqn | null)[]>();
  const add = (v: Var, e: AnyEqn | null) => {
    const list = m.get(v.id);
    if (list) list.push(e);
    else m.set(v.id, [e]);
  };
  for (const e of p.eqns) for (const v of e.inputs) add(v, e);
  for (const v of p.outputs) add(v, null);
  return m;
}

/**
 * Run a program op by op through `bind`, so every active transformation sees its equations
 * (how scan's rules differentiate and batch a traced body). Inputs in program order.
 */
export function evalProgram(p: Program, inputs: readonly Tensor[]): Tensor[] {
  if (inputs.length !== p.inputs.length) {
    throw new Error(`internal: program of ${p.inputs.length} inputs given ${inputs.length}`);
  }
  const env = new Map<number, Tensor>();
  p.inputs.forEach((v, i) => env.set(v.id, inputs[i]));
  const get = (v: Var) => {
    const t = v.constant ?? env.get(v.id);
    if (!t) throw new Error(`internal: program value ${v.id} used before it was computed`);
    return t;
  };
  for (const e of p.eqns) {
    const args = e.inputs.map(get);
    if (isMultiEqn(e)) {
      bindMulti(e.prim, args, e.params).forEach((t, i) => env.set(e.outs[i].id, t));
    } else env.set(e.out.id, bind(e.prim, args, e.params));
  }
  return p.outputs.map(get);
}

function name(id: number): string {
  let s = "";
  let n = id;
  do {
    s = String.fromCharCode(97 + (n % 26)) + s;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return s;
}

/** A variable as programs print it, e.g. `c:f32[3,4]`. */
export function varText(v: Var): string {
  return `${name(v.id)}:${v.dtype}[${v.shape.join(",")}]`;
}

/**
 * JSON that keeps apart the numbers `JSON.stringify` merges — NaN, ±Infinity (all `null`) and
 * −0 (`0`) — for keys of equations and signatures: `full(NaN)` and `full(Infinity)` are
 * different constants, and a static argument of −0 a different program from 0.
 */
export function exactJson(v: unknown): string {
  return JSON.stringify(
    v,
    (_key, x) =>
      typeof x === "number" && (!Number.isFinite(x) || Object.is(x, -0))
        ? { number: Object.is(x, -0) ? "-0" : String(x) }
        : x,
  );
}

function fmtParams(params: unknown): string {
  if (!params || typeof params !== "object" || Object.keys(params).length === 0) return "";
  const parts = Object.entries(params as Record<string, unknown>).map(([k, v]) =>
    `${k}=${exactJson(v)}`
  );
  return `[${parts.join(" ")}]`;
}

/** Human-readable text of a program, e.g. `{ lambda a:f32[3] ; b:f32[3]. let c:f32[3] = add b a in (c) }`. */
export function programText(p: Program): string {
  const consts = new Map<number, Var>();
  for (const e of p.eqns) for (const v of e.inputs) if (v.constant) consts.set(v.id, v);
  for (const v of p.outputs) if (v.constant) consts.set(v.id, v);
  const lines = [
    `{ lambda ${[...consts.values()].map(varText).join(" ")} ; ${
      p.inputs.map(varText).join(" ")
    }. let`,
  ];
  for (const e of p.eqns) {
    const args = e.inputs.map((v) => name(v.id)).join(" ");
    if (isMultiEqn(e)) {
      lines.push(
        `    ${e.outs.map(varText).join(" ")} = ${e.prim.name}${e.prim.describe(e.params)} ${args}`,
      );
    } else lines.push(`    ${varText(e.out)} = ${e.prim.name}${fmtParams(e.params)} ${args}`);
  }
  lines.push(`  in (${p.outputs.map((v) => name(v.id)).join(", ")}) }`);
  return lines.join("\n");
}
