/**
 * The jit IR: a straight-line program of primitive applications over typed variables, in
 * the spirit of a jaxpr. Printed with `programText`.
 */
import type { DType } from "../dtype.ts";
import type { Primitive } from "../primitive.ts";
import type { Tensor } from "../tensor.ts";

/** A value in a program: an input, a constant (a captured concrete tensor) or an equation's result. */
export interface Var {
  readonly id: number;
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** Set for constants. */
  readonly constant?: Tensor;
}

/** One primitive application. */
export interface Eqn {
  readonly prim: Primitive<any>;
  readonly params: any;
  readonly inputs: readonly Var[];
  readonly out: Var;
}

export interface Program {
  readonly inputs: readonly Var[];
  readonly eqns: readonly Eqn[];
  readonly outputs: readonly Var[];
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

function typed(v: Var): string {
  return `${name(v.id)}:${v.dtype}[${v.shape.join(",")}]`;
}

function fmtParams(params: unknown): string {
  if (!params || typeof params !== "object" || Object.keys(params).length === 0) return "";
  const parts = Object.entries(params as Record<string, unknown>).map(([k, v]) =>
    `${k}=${JSON.stringify(v)}`
  );
  return `[${parts.join(" ")}]`;
}

/** Human-readable text of a program, e.g. `{ lambda a:f32[3] ; b:f32[3]. let c:f32[3] = add b a in (c) }`. */
export function programText(p: Program): string {
  const consts = new Map<number, Var>();
  for (const e of p.eqns) for (const v of e.inputs) if (v.constant) consts.set(v.id, v);
  for (const v of p.outputs) if (v.constant) consts.set(v.id, v);
  const lines = [
    `{ lambda ${[...consts.values()].map(typed).join(" ")} ; ${p.inputs.map(typed).join(" ")}. let`,
  ];
  for (const e of p.eqns) {
    lines.push(
      `    ${typed(e.out)} = ${e.prim.name}${fmtParams(e.params)} ${
        e.inputs.map((v) => name(v.id)).join(" ")
      }`,
    );
  }
  lines.push(`  in (${p.outputs.map((v) => name(v.id)).join(", ")}) }`);
  return lines.join("\n");
}
