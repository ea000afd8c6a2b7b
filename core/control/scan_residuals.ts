/**
 * What a scan's forward pass saves for its backward pass. The backward step recomputes the
 * forward step from the carry it came in with (memory: the carries, not every intermediate);
 * the products in it (`matmul`) are the part of that recomputation worth keeping instead —
 * an RNN's h·W + b each step — so the forward loop stacks them (with a bias or scale applied
 * to them) as extra per-step outputs and the backward loop reads them. The elementwise rest is still recomputed, fused into the kernels
 * that need it (JAX's "save dots" checkpoint policy).
 */
import type { AnyEqn, Eqn, Program, Var } from "../jit/ir.ts";
import { idSource, isMultiEqn, readers } from "../jit/ir.ts";
import { eliminateCommonSubexpressions, eliminateDeadCode } from "../jit/passes.ts";
import { sizeOf } from "../shape.ts";
import { HOIST_MAX_BYTES } from "./scan_hoist.ts";

/** At most this many bytes of stacked products are kept per loop (the rest recomputed). */
export const SAVED_PRODUCTS_MAX_BYTES = 256 * 1024 * 1024;

/** The two bodies once the products are saved. */
export interface SavedProducts {
  /** The forward body, its outputs followed by the saved products. */
  forward: Program;
  /** The backward body, the saved products appended to its inputs (per-step xs). */
  backward: Program;
  /** How many products are saved. */
  count: number;
}

/**
 * Move the products of the backward body `back` that depend only on forward values into the
 * forward body `fwd`. `roots` maps each backward input that is a forward value (a const, the
 * step's incoming carry, its x) to the forward body's input for it; the forward's first
 * `forwardConsts` inputs are the loop's consts. Returns null when there is nothing to save
 * (products over `SAVED_PRODUCTS_MAX_BYTES` for `length` steps stay recomputed).
 */
export function saveProducts(
  fwd: Program,
  back: Program,
  roots: ReadonlyMap<number, Var>,
  forwardConsts: number,
  length: number,
): SavedProducts | null {
  // forward values: the roots and whatever single equations compute from them alone; those
  // reading the step's carry or x (not only the forward's consts) vary per step
  const known = new Set<number>(roots.keys());
  const consts = new Set(fwd.inputs.slice(0, forwardConsts).map((v) => v.id));
  const varying = new Set<number>(
    [...roots].filter(([, v]) => !consts.has(v.id) && v.constant === undefined).map(([id]) => id),
  );
  const isKnown = (v: Var) => known.has(v.id) || v.constant !== undefined;
  const definedBy = new Map<number, Eqn>();
  for (const e of back.eqns) {
    if (isMultiEqn(e) || !e.inputs.every(isKnown)) continue;
    known.add(e.out.id);
    definedBy.set(e.out.id, e);
    if (e.inputs.some((v) => varying.has(v.id))) varying.add(e.out.id);
  }
  const users = readers(back);
  // a product's own bias or scale (an add, sub or mul by a loop-invariant value, its only
  // use) is saved with it: the forward fuses it into the product's kernel, and the backward
  // reads the value its elementwise kernels take
  const epilogue = (e: Eqn): Eqn => {
    const next = users.get(e.out.id);
    const u = next?.length === 1 ? next[0] : null; // (null also for a program output)
    if (!u || isMultiEqn(u) || !["add", "sub", "mul"].includes(u.prim.name)) return e;
    const others = u.inputs.filter((v) => v.id !== e.out.id);
    if (!definedBy.has(u.out.id) || others.some((v) => varying.has(v.id))) return e;
    if (sizeOf(u.out.shape) !== sizeOf(e.out.shape)) return e;
    return epilogue(u);
  };
  let budget = SAVED_PRODUCTS_MAX_BYTES;
  const saved: Eqn[] = [];
  for (const e of back.eqns) {
    if (isMultiEqn(e) || e.prim.name !== "matmul" || !definedBy.has(e.out.id)) continue;
    if (!varying.has(e.out.id)) continue; // loop-invariant: nothing per step to keep
    const last = epilogue(e);
    const bytes = length * sizeOf(last.out.shape) * 4;
    if (bytes > HOIST_MAX_BYTES || bytes > budget) continue;
    budget -= bytes;
    saved.push(last);
  }
  if (saved.length === 0) return null;

  // the forward body computes the saved products too: copy what they need, renamed into its
  // variables; common-subexpression elimination merges the copy with the forward's own work
  const fresh = idSource(fwd);
  const renamed = new Map<number, Var>(roots);
  const rename = (v: Var): Var => {
    let r = renamed.get(v.id);
    if (!r) renamed.set(v.id, r = { ...fresh(v.shape, v.dtype), constant: v.constant });
    return r;
  };
  const copied: AnyEqn[] = [];
  const copy = (v: Var): void => {
    if (renamed.has(v.id) || v.constant !== undefined) return;
    const e = definedBy.get(v.id)!;
    e.inputs.forEach(copy);
    copied.push({ ...e, inputs: e.inputs.map(rename), out: rename(e.out) });
  };
  saved.forEach((e) => copy(e.out));
  const forward = eliminateDeadCode(eliminateCommonSubexpressions({
    inputs: fwd.inputs,
    eqns: [...fwd.eqns, ...copied],
    outputs: [...fwd.outputs, ...saved.map((e) => rename(e.out))],
  }));
  const savedEqns = new Set<AnyEqn>(saved);
  const backward = eliminateDeadCode({
    inputs: [...back.inputs, ...saved.map((e) => e.out)],
    eqns: back.eqns.filter((e) => !savedEqns.has(e)),
    outputs: back.outputs,
  });
  return { forward, backward, count: saved.length };
}
