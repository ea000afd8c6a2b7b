/**
 * Work moved out of a scan's body before it is bound: what a loop would otherwise do once per
 * step, done once on the stacked values after it.
 *
 * - Sums. A carried accumulator `acc' = acc + term` whose term is a product contracting a batch
 *   axis (`matmul`) or a sum over axes (`reduce`) of per-step values: Σₜ term(aₜ, bₜ) is the
 *   same contraction over the stacked aₜ and bₜ with the steps joined to the contracted axis —
 *   one product after the loop instead of a product and an add per step. This is a reverse
 *   scan's gradient of the weights a loop reads (an RNN's Σₜ hₜᵀ·dgₜ), so scan's backward asks
 *   for it; the factors are stacked like any per-step output (memory of the order of the
 *   stacked carries the backward already holds, refused over `HOIST_MAX_BYTES`).
 * - Layouts. A per-step output that is a `transpose` of a body value: the value is stacked
 *   and transposed once (one kernel, not one per step).
 */
import type { Program, Var } from "../jit/ir.ts";
import { eqnOutputs, isMultiEqn, readers } from "../jit/ir.ts";
import { eliminateDeadCode } from "../jit/passes.ts";
import { isFloat } from "../dtype.ts";
import { sizeOf } from "../shape.ts";
import type { Tensor } from "../tensor.ts";
import { matmul } from "../ops/linalg.ts";
import { sum } from "../ops/reduce.ts";
import { moveAxis, reshape, transpose } from "../ops/shape.ts";

/**
 * The largest stacked factor a hoisted sum may add (bytes): WebGPU's default storage-binding
 * size, so a hoist never creates a tensor a kernel could not bind where the loop's
 * accumulation needed none.
 */
export const HOIST_MAX_BYTES = 128 * 1024 * 1024;

/** Where a stacked value comes from after the loop: an xs operand or a stacked output. */
type Stacked = { xs: number } | { ys: number };

interface HoistedSum {
  /** The accumulator's carry index in the traced body. */
  carry: number;
  /** Whether the term is a `matmul` (params) or a sum over `axes`. */
  term:
    | { kind: "matmul"; transposeA: boolean; transposeB: boolean }
    | { kind: "sum"; axes: readonly number[] };
  factors: Stacked[];
  factorShapes: (readonly number[])[];
  shape: readonly number[];
}

/** A body with work moved out of it, and how to rebuild the scan's results. */
export interface HoistedBody {
  /** The body to bind: consts, the kept carries, xs → the kept carries, ys, stacked factors. */
  program: Program;
  /** Carry indices (of the traced body) still carried. */
  keptCarry: number[];
  /**
   * The scan's results in the traced body's terms: `outs` are the bound scan's results, `xs`
   * its stacked operands; hoisted accumulators come back as their after-loop sums (the loop
   * started them at zero).
   */
  finish(outs: readonly Tensor[], xs: readonly Tensor[]): Tensor[];
}

/** Layout of a traced body's operands. */
export interface BodyLayout {
  numConsts: number;
  numCarry: number;
  length: number;
  /** Carry indices that are accumulators started at zero, which may become after-loop sums. */
  sums?: readonly number[];
}

/**
 * Move the sums and output transposes that can leave the loop out of a traced scan body
 * (the module's doc says which). Returns null when nothing moves.
 */
export function hoistFromBody(body: Program, layout: BodyLayout): HoistedBody | null {
  const { numConsts: nc, numCarry: ncar, length } = layout;
  if (length < 2) return null; // nothing to gain from one step
  const carryIn = body.inputs.slice(nc, nc + ncar);
  const xsIn = body.inputs.slice(nc + ncar);
  const definedBy = new Map<number, (typeof body.eqns)[number]>();
  const read = readers(body);
  const uses = (v: Var) => read.get(v.id)?.length ?? 0;
  const varying = new Set<number>([...carryIn, ...xsIn].map((v) => v.id));
  for (const e of body.eqns) {
    for (const o of eqnOutputs(e)) definedBy.set(o.id, e);
    if (e.inputs.some((v) => varying.has(v.id))) {
      for (const o of eqnOutputs(e)) varying.add(o.id);
    }
  }
  const single = (v: Var) => {
    const e = definedBy.get(v.id);
    return e && !isMultiEqn(e) ? e : undefined;
  };

  const sums: HoistedSum[] = [];
  const removed = new Set<(typeof body.eqns)[number]>();
  const factorVars: Var[] = [];
  const stackedOf = (v: Var): Stacked => {
    const j = xsIn.findIndex((x) => x.id === v.id);
    if (j >= 0) return { xs: j };
    let k = factorVars.findIndex((f) => f.id === v.id);
    if (k < 0) k = factorVars.push(v) - 1;
    return { ys: k };
  };
  for (const k of layout.sums ?? []) {
    const acc = carryIn[k], out = body.outputs[k];
    const add = single(out);
    if (!add || add.prim.name !== "add" || uses(acc) !== 1 || uses(out) !== 1) {
      continue;
    }
    const [l, r] = add.inputs;
    const term = l.id === acc.id ? r : r.id === acc.id ? l : null;
    if (!term || !isFloat(out.dtype) || sizeOf(term.shape) !== sizeOf(out.shape)) continue;
    let core = term; // reshapes commute with the sum over steps
    for (let e = single(core); e?.prim.name === "reshape"; e = single(core)) core = e.inputs[0];
    const e = single(core);
    if (!e) continue;
    let hoisted: HoistedSum["term"] | null = null;
    if (e.prim.name === "matmul") {
      hoisted = {
        kind: "matmul",
        transposeA: e.params.transposeA,
        transposeB: e.params.transposeB,
      };
    } else if (e.prim.name === "reduce" && e.params.op === "sum") {
      hoisted = { kind: "sum", axes: e.params.axes };
    }
    const fits = e.inputs.every((v) => length * sizeOf(v.shape) * 4 <= HOIST_MAX_BYTES);
    if (!hoisted || !fits || !e.inputs.every((v) => varying.has(v.id) && !v.constant)) continue;
    removed.add(add);
    sums.push({
      carry: k,
      term: hoisted,
      factors: e.inputs.map(stackedOf),
      factorShapes: e.inputs.map((v) => v.shape),
      shape: out.shape,
    });
  }

  // per-step outputs that are transposes: stack the value, transpose once
  const ys = body.outputs.slice(ncar);
  const perms: (readonly number[] | null)[] = ys.map((y) => {
    const e = single(y);
    return e?.prim.name === "transpose" && uses(y) === 1 && varying.has(e.inputs[0].id)
      ? e.params.perm
      : null;
  });
  if (sums.length === 0 && perms.every((p) => p === null)) return null;

  const hoistedCarry = new Set(sums.map((s) => s.carry));
  const keptCarry = Array.from({ length: ncar }, (_, k) => k).filter((k) => !hoistedCarry.has(k));
  const emitted = ys.map((y, j) => (perms[j] ? single(y)!.inputs[0] : y));
  const program = eliminateDeadCode({
    inputs: [...body.inputs.slice(0, nc), ...keptCarry.map((k) => carryIn[k]), ...xsIn],
    eqns: body.eqns.filter((e) => !removed.has(e)),
    outputs: [...keptCarry.map((k) => body.outputs[k]), ...emitted, ...factorVars],
  });
  return {
    program,
    keptCarry,
    finish(outs, xs) {
      const carries = outs.slice(0, keptCarry.length);
      const stackedYs = outs.slice(keptCarry.length, keptCarry.length + ys.length);
      const factors = outs.slice(keptCarry.length + ys.length);
      const stacked = (s: Stacked) => ("xs" in s ? xs[s.xs] : factors[s.ys]);
      const result: Tensor[] = new Array(ncar);
      keptCarry.forEach((k, m) => (result[k] = carries[m]));
      for (const s of sums) result[s.carry] = afterLoopSum(s, s.factors.map(stacked), length);
      const yResults = stackedYs.map((y, j) => {
        const perm = perms[j];
        return perm ? transpose(y, [0, ...perm.map((a) => a + 1)]) : y;
      });
      return [...result, ...yResults];
    },
  };
}

/** Σₜ term(factorsₜ) from the factors stacked over the steps ([T, ...shape] each). */
function afterLoopSum(s: HoistedSum, factors: Tensor[], length: number): Tensor {
  if (s.term.kind === "sum") {
    return reshape(sum(factors[0], [0, ...s.term.axes.map((a) => a + 1)]), s.shape);
  }
  const { transposeA, transposeB } = s.term;
  const [sa, sb] = s.factorShapes;
  const ka = transposeA ? sa.length - 2 : sa.length - 1;
  const kb = transposeB ? sb.length - 1 : sb.length - 2;
  // Joining the steps to the contracted axis ([T, ..., k, ...] → [..., T·k, ...]) is a view
  // when that axis leads; otherwise it is a transpose of the stacked factor, which costs more
  // than one batched product over the steps and a sum of its T results (when those fit).
  if ((ka > 0 || kb > 0) && length * sizeOf(s.shape) * 4 <= HOIST_MAX_BYTES) {
    const perStep = matmul(factors[0], factors[1], { transposeA, transposeB });
    return reshape(sum(perStep, [0]), s.shape);
  }
  const joined = (x: Tensor, shape: readonly number[], contracted: number) =>
    reshape(moveAxis(x, 0, contracted), [
      ...shape.slice(0, contracted),
      length * shape[contracted],
      ...shape.slice(contracted + 1),
    ]);
  const a = joined(factors[0], sa, ka);
  const b = joined(factors[1], sb, kb);
  return reshape(matmul(a, b, { transposeA, transposeB }), s.shape);
}
