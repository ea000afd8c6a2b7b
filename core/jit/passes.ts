/**
 * Program-level passes that need no device: dead-code and common-subexpression elimination.
 */
import { type AnyEqn, eqnOutputs, exactJson, isMultiEqn, type Program, type Var } from "./ir.ts";

/** Remove equations whose results no output needs. */
export function eliminateDeadCode(p: Program): Program {
  const live = new Set<number>(p.outputs.map((v) => v.id));
  const kept: AnyEqn[] = [];
  for (let i = p.eqns.length - 1; i >= 0; i--) {
    const e = p.eqns[i];
    if (!eqnOutputs(e).some((v) => live.has(v.id))) continue;
    kept.push(e);
    for (const v of e.inputs) live.add(v.id);
  }
  return { ...p, eqns: kept.reverse() };
}

/** Reuse the result of an identical earlier equation (same primitive, params and inputs). */
export function eliminateCommonSubexpressions(p: Program): Program {
  const seen = new Map<string, Var>();
  const rename = new Map<number, Var>();
  const sub = (v: Var) => rename.get(v.id) ?? v;
  const eqns: AnyEqn[] = [];
  for (const e of p.eqns) {
    const inputs = e.inputs.map(sub);
    if (isMultiEqn(e)) { // sub-programs are not compared
      eqns.push({ ...e, inputs });
      continue;
    }
    // creation of random bits is pure in its key, so it is safe to merge too
    const key = `${e.prim.name}|${exactJson(e.params)}|${inputs.map((v) => v.id).join(",")}`;
    const prev = seen.get(key);
    if (prev) {
      rename.set(e.out.id, prev);
      continue;
    }
    seen.set(key, e.out);
    eqns.push({ ...e, inputs });
  }
  return { ...p, eqns, outputs: p.outputs.map(sub) };
}
