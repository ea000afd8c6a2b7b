/**
 * Algebraic rewrites run before kernel planning on WebGPU. Each keeps the program's values
 * (up to float rounding) and moves work to where fusion can absorb it:
 *
 * - `foldConstants`: an elementwise op (or broadcast, or cast) of constants is a constant,
 *   computed once here with the primitive's reference rule (`1/n` of a mean's gradient).
 * - `scaleOutOfMatmuls`: a matmul operand that is another tensor times a scalar (the α·g of
 *   an SGD inner step, negated) is read unscaled and the scalar applied to the product, where
 *   it joins the product's epilogue instead of being its own kernel: `A·(s·X) = s·(A·X)`.
 * - `hoistReshapes`: `reshape(f(x, s))` for an elementwise f whose other operands are scalars
 *   becomes `f(reshape(x), s)`, so f fuses into whatever reads the reshaped value (reshapes
 *   are views and break elementwise groups). Reshape chains collapse to one reshape.
 *   A reshape of a pad is a pad of the reshaped input when the padded box stays a box
 *   (`padThroughReshape`: a gate's gradient padded into [B, 3H] and read as [B, 3, H]
 *   blocks), so the kernel reading it reads the pad in place (a pad read elsewhere too stays
 *   for those readers).
 * - `mergeReductions`: a reduction of a reduction (read only there) is one reduction over
 *   both sets of axes — for sums also through a scalar factor, so a mean of means is one sum —
 *   and the sum of two sums over the same axes of same-shaped values is one sum of their sum:
 *   `Σ_b Σ_n δ + Σ_bn ε = Σ_bn (δ + ε)` — how per-task bias gradients and the meta-gradient's
 *   other terms meet in second-order MAML.
 * - `outerProducts`: a matmul whose contracted axis has length 1 is an outer product, a
 *   broadcast multiply `a[..., m, 1] · b[..., 1, n]` — elementwise, so it fuses with its
 *   neighbours like any product of values (a 1-input layer's `x·W₁` and its gradients).
 * - `reluMaskFromOutput`: the mask `x > 0` of `relu(x) = where(x > 0, x, 0)`, when read
 *   again (by the backward pass), is recomputed from the ReLU's output as `relu(x) > 0` — the
 *   same bits for every x, NaN included — so `x` has no reader but the ReLU, which can then
 *   be the epilogue of the matmul computing x instead of a kernel of its own. Only done when
 *   the ReLU's output is stored anyway (read by a matmul, say).
 * - `concatOfSlices`: joining consecutive slices of one value along the axis they were cut
 *   on is that value (or one slice of it): a state split into components and stacked back
 *   (an environment's auto-reset) copies nothing.
 * - `randomBitsPerElement`: `randomBits(key)` becomes `threefryBits` of the key's two words
 *   (slices of it), the same bits computed per element from the position, so a draw fuses
 *   into the kernels that turn it into numbers (a policy's actions, a reset's noise) instead
 *   of being a kernel of its own.
 * - `unrolledReductions`: a reduction over at most four elements per result (over a policy's
 *   two actions: their maximum, the sum of their exponentials, the argmax of a sample) is
 *   elementwise arithmetic on windows of its input, fused with its neighbours instead of a
 *   kernel of its own (its terms added in order; NaN and ties as the reduction treats them).
 * - `reshapedConstants`: a reshaped `full` or `iota` is one made in that shape, and so is a
 *   slice of one (of an `iota`, where the slice's elements are evenly spaced), so kernels reading
 *   it (a one-hot's comparison against indices, unrolled into its two columns) compute it where
 *   they read it instead of reading a stored constant.
 * - `randomBitsThroughViews`: a window (slice, or reshape by axes of size 1) of the bits of one
 *   key is bits of that key of its own (`threefryBits`' one-word mode where it takes one word of
 *   each pair), so a key split into parts and a split of a part are computed inside the kernels
 *   drawing under them instead of stored by kernels of their own (a rollout step's keys: 2
 *   kernels less). Bits of per-row keys stay stored: a kernel computing them would repeat each
 *   row's chain of splits at every element it reads (a reset's four draws from per-environment
 *   keys ran 2× slower so).
 * - `composeSlices`: a slice of a slice (through reshapes that only add or drop axes of size
 *   1) is one slice of the first one's input, so a key split into parts and each part's words
 *   are windows of the split's result, read where they lie.
 */
import { sizeOf, stridesOf } from "../shape.ts";
import { elementwise } from "../primitives/elementwise.ts";
import type { MatmulParams } from "../primitives/matmul.ts";
import { slice, type SliceParams } from "../primitives/slice.ts";
import {
  randomBits,
  type RandomBitsParams,
  threefryBits,
  type ThreefryBitsParams,
} from "../primitives/random_bits.ts";
import { reshape } from "../primitives/reshape.ts";
import { pad, type PadParams } from "../primitives/pad.ts";
import { full, iota } from "../primitives/fill.ts";
import { broadcastTo } from "../primitives/broadcast.ts";
import { concat } from "../primitives/concat.ts";
import type { ReduceParams } from "../primitives/reduce.ts";
import {
  type AnyEqn,
  type Eqn,
  eqnOutputs,
  idSource,
  isMultiEqn,
  type Program,
  readers,
  sameShape,
  type Var,
} from "./ir.ts";

/** The rewrites; what they leave unread is for dead-code elimination to drop. */
export function simplify(p: Program): Program {
  // folding again after the reshapes moved: broadcasts of constants they left behind
  const hoisted = hoistReshapes(outerProducts(scaleOutOfMatmuls(foldConstants(p))));
  const merged = reluMaskFromOutput(mergeReductions(foldConstants(hoisted)));
  const reshaped = reshapedConstants(unrolledReductions(merged));
  return randomBitsThroughViews(composeSlices(randomBitsPerElement(concatOfSlices(reshaped))));
}

/** A size-1 value that broadcasts into any result of rank ≥ its own. */
const isScalarOf = (v: Var, rank: number) => sizeOf(v.shape) === 1 && v.shape.length <= rank;
/** The same, of dtype f32. */
const isScalar = (v: Var, rank: number) => v.dtype === "f32" && isScalarOf(v, rank);

function producers(p: Program): Map<number, AnyEqn> {
  const m = new Map<number, AnyEqn>();
  for (const e of p.eqns) for (const v of eqnOutputs(e)) m.set(v.id, e);
  return m;
}

export function foldConstants(p: Program): Program {
  const constant = new Map<number, Eqn>(); // value id → the `full` computing it
  const eqns = p.eqns.map((e) => {
    if (isMultiEqn(e)) return e;
    if (e.prim === full) {
      constant.set(e.out.id, e);
      return e;
    }
    const fulls = e.inputs.map((v) => constant.get(v.id));
    if (!e.prim.fusion || e.inputs.length === 0 || fulls.some((f) => !f)) return e;
    // every input is one value repeated: evaluate on one element of each
    const avals = e.inputs.map((v) => ({ shape: [], dtype: v.dtype }));
    const values = fulls.map((f) => Float64Array.of(f!.params.value));
    const [value] = e.prim.reference(values, avals, e.params, { shape: [], dtype: e.out.dtype });
    const folded: Eqn = {
      ...fulls[0]!,
      params: { shape: e.out.shape, dtype: e.out.dtype, value },
      out: e.out,
    };
    constant.set(e.out.id, folded);
    return folded;
  });
  return { ...p, eqns };
}

export function outerProducts(p: Program): Program {
  const fresh = idSource(p);
  const eqns: AnyEqn[] = [];
  for (const e of p.eqns) {
    if (isMultiEqn(e) || e.prim.kind !== "matmul" || e.out.dtype !== "f32") {
      eqns.push(e);
      continue;
    }
    const [a, b] = e.inputs;
    const { transposeA, transposeB } = e.params as MatmulParams;
    const k = transposeA ? a.shape.at(-2) : a.shape.at(-1);
    if (k !== 1) {
      eqns.push(e);
      continue;
    }
    // a transposed [.., 1, m] is [.., m, 1] in the same order; likewise b's [.., n, 1]
    const lay = (v: Var, transposed: boolean, shape: number[]) => {
      if (!transposed) return v;
      const out = fresh(shape, v.dtype);
      eqns.push({ prim: reshape, params: { shape }, inputs: [v], out });
      return out;
    };
    const column = lay(a, transposeA, [...a.shape.slice(0, -2), a.shape.at(-1)!, 1]);
    const row = lay(b, transposeB, [...b.shape.slice(0, -2), 1, b.shape.at(-2)!]);
    eqns.push({ prim: elementwise.mul, params: {}, inputs: [column, row], out: e.out });
  }
  return { ...p, eqns };
}

/** `s·x`, `x·s`, `x/s` or `-x` with `x` of the result's shape and `s` a scalar: which input is x. */
function scalingInput(e: AnyEqn, rank: number): number {
  if (isMultiEqn(e) || e.out.dtype !== "f32") return -1;
  const [a, b] = e.inputs;
  if (e.prim === elementwise.neg) return 0;
  if (e.prim === elementwise.mul) {
    if (isScalar(b, rank) && sameShape(a, e.out)) return 0;
    if (isScalar(a, rank) && sameShape(b, e.out)) return 1;
  }
  if (e.prim === elementwise.div && isScalar(b, rank) && sameShape(a, e.out)) return 0;
  return -1;
}

export function scaleOutOfMatmuls(p: Program): Program {
  const producer = producers(p);
  const read = readers(p);
  const fresh = idSource(p);
  const isMatmul = (e: AnyEqn | null): e is Eqn =>
    !!e && !isMultiEqn(e) && e.prim.kind === "matmul";
  /** The scaling steps from `v` inward (outermost first) and the unscaled tensor under them. */
  const unscale = (v: Var, rank: number) => {
    const steps: { eqn: Eqn; slot: number }[] = [];
    let x = v;
    for (;;) {
      const e = producer.get(x.id);
      const slot = e ? scalingInput(e, rank) : -1;
      // an inner step read elsewhere too would be computed anyway: stop there
      if (slot < 0 || (x !== v && read.get(x.id)!.length !== 1)) break;
      steps.push({ eqn: e as Eqn, slot });
      x = (e as Eqn).inputs[slot];
    }
    return { steps, x };
  };
  const eqns: AnyEqn[] = [];
  for (const e of p.eqns) {
    if (!isMatmul(e) || e.inputs[0].id === e.inputs[1].id) {
      eqns.push(e);
      continue;
    }
    const rank = e.out.shape.length;
    const found = e.inputs.map((v) =>
      read.get(v.id)!.every(isMatmul) ? unscale(v, rank) : { steps: [], x: v }
    );
    const k = found.findIndex((f) => f.steps.length > 0);
    if (k < 0) {
      eqns.push(e);
      continue;
    }
    const { steps, x } = found[k];
    const inputs = [...e.inputs];
    inputs[k] = x;
    let value = fresh(e.out.shape, "f32");
    eqns.push({ ...e, inputs, out: value });
    for (let i = steps.length - 1; i >= 0; i--) { // innermost first
      const { eqn, slot } = steps[i];
      const args = [...eqn.inputs];
      args[slot] = value;
      value = i === 0 ? e.out : fresh(e.out.shape, "f32");
      eqns.push({ ...eqn, inputs: args, out: value });
    }
  }
  return { ...p, eqns };
}

/** Elementwise primitives whose parameters do not mention shapes. */
const hoistable = (e: AnyEqn | undefined): e is Eqn =>
  !!e && !isMultiEqn(e) && !!e.prim.fusion && e.prim !== broadcastTo &&
  e.prim !== full;

export function hoistReshapes(p: Program): Program {
  const producer = new Map<number, AnyEqn>(); // of the rewritten program, filled as it is built
  const uses = new Map<number, number>();
  for (const [id, list] of readers(p)) uses.set(id, list.length);
  const fresh = idSource(p);
  const removed = new Set<AnyEqn>();
  const eqns: AnyEqn[] = [];
  const rename = new Map<number, Var>();
  const sub = (v: Var) => rename.get(v.id) ?? v;

  /** Emit `out = reshape(src)`, moving it above elementwise producers read only here. */
  const emitReshape = (template: Eqn, src: Var, out: Var) => {
    let from = src;
    for (;;) { // reshape(reshape(x)) = reshape(x)
      const prod = producer.get(from.id);
      if (!prod || isMultiEqn(prod) || !prod.prim.view) break;
      if (uses.get(from.id) === 1) removed.add(prod);
      else uses.set(prod.inputs[0].id, (uses.get(prod.inputs[0].id) ?? 0) + 1);
      uses.set(from.id, (uses.get(from.id) ?? 1) - 1);
      from = prod.inputs[0];
    }
    if (sameShape(from, out)) {
      rename.set(out.id, from);
      return;
    }
    const f = producer.get(from.id);
    const rank = out.shape.length;
    if (
      f && !isMultiEqn(f) &&
      (f.prim === full ||
        f.prim === broadcastTo && isScalarOf(f.inputs[0], rank))
    ) { // a constant, or a scalar's broadcast, made at the new shape directly
      if (uses.get(from.id) === 1) removed.add(f);
      const made: Eqn = { ...f, params: { ...f.params, shape: out.shape }, out };
      producer.set(out.id, made);
      eqns.push(made);
      return;
    }
    if (
      hoistable(f) && !removed.has(f) && uses.get(from.id) === 1 &&
      f.inputs.every((v) => sameShape(v, f.out) || isScalarOf(v, rank))
    ) {
      removed.add(f);
      const inputs = f.inputs.map((v) => {
        if (!sameShape(v, f.out)) return v; // a scalar broadcasts either way
        const reshaped = fresh(out.shape, v.dtype);
        uses.set(reshaped.id, 1); // read by the moved f only
        emitReshape(template, v, reshaped);
        return rename.get(reshaped.id) ?? reshaped;
      });
      const moved: Eqn = { ...f, inputs, out };
      producer.set(out.id, moved);
      eqns.push(moved);
      return;
    }
    const through = f && !isMultiEqn(f) && f.prim === pad && !removed.has(f)
      ? padThroughReshape(f.inputs[0].shape, f.params as PadParams, out.shape)
      : null;
    if (through) {
      // a pad read elsewhere too stays for those readers: a zero pad is read in place where
      // it can be (the planner's `inlinePads`), so two of them usually cost no kernel
      if (uses.get(from.id) === 1) removed.add(f!);
      else {
        uses.set(from.id, uses.get(from.id)! - 1);
        uses.set(f!.inputs[0].id, (uses.get(f!.inputs[0].id) ?? 0) + 1);
      }
      const reshaped = fresh(through.inputShape, f!.inputs[0].dtype);
      // (a plain view of the pad's input: hoisting it further would move the input's
      // producer out of the kernel that computes it beside its neighbours)
      const input: Eqn = {
        prim: reshape,
        params: { shape: through.inputShape },
        inputs: [f!.inputs[0]],
        out: reshaped,
      };
      producer.set(reshaped.id, input);
      eqns.push(input);
      const moved: Eqn = { ...(f as Eqn), params: through.params, inputs: [reshaped], out };
      producer.set(out.id, moved);
      eqns.push(moved);
      return;
    }
    const view: Eqn = { ...template, inputs: [from], out };
    producer.set(out.id, view);
    eqns.push(view);
  };

  for (const e of p.eqns) {
    const inputs = e.inputs.map(sub);
    if (!isMultiEqn(e) && !!e.prim.view) {
      emitReshape(e, inputs[0], e.out);
      continue;
    }
    const kept = { ...e, inputs };
    for (const v of eqnOutputs(e)) producer.set(v.id, kept);
    eqns.push(kept);
  }
  return {
    ...p,
    eqns: eqns.filter((e) => !removed.has(e)),
    outputs: p.outputs.map(sub),
  };
}

/**
 * `reshape(pad(x, params), shape)` as `pad(reshape(x, inputShape), padded)`, or null when the
 * padded box is no box in `shape`. Axes of size 1 are never padded (a padded axis of size 1
 * would hold no input element); the other axes of both shapes fall into groups of equal
 * product. A group keeps a box when at most one of its source axes is padded, every source
 * axis before it has size 1, and the padded run — its lo, its input length, times the size of
 * the axes after it — is a whole number of rows of the group's first target axis. Interior
 * padding never moves.
 */
export function padThroughReshape(
  xShape: readonly number[],
  params: PadParams,
  shape: readonly number[],
): { inputShape: number[]; params: PadParams } | null {
  if (params.interior.some((n) => n !== 0) || sizeOf(xShape) === 0) return null;
  const outShape = xShape.map((d, i) => params.lo[i] + d + params.hi[i]);
  if (sizeOf(outShape) !== sizeOf(shape)) return null;
  const src = outShape.map((_, i) => i).filter((i) => outShape[i] !== 1);
  const dst = shape.map((_, i) => i).filter((i) => shape[i] !== 1);
  const inputShape = shape.map(() => 1);
  const lo = shape.map(() => 0);
  const hi = shape.map(() => 0);
  let a = 0, b = 0;
  while (a < src.length || b < dst.length) {
    // one group: source axes src[a0, a), target axes dst[b0, b) of equal product
    const a0 = a, b0 = b;
    let pa = 1, pb = 1;
    do {
      if (pa <= pb && a < src.length) pa *= outShape[src[a++]];
      else if (b < dst.length) pb *= shape[dst[b++]];
      else return null;
    } while (pa !== pb);
    const group = src.slice(a0, a);
    const padded = group.filter((i) => params.lo[i] !== 0 || params.hi[i] !== 0);
    for (const j of dst.slice(b0, b)) inputShape[j] = shape[j];
    if (padded.length === 0) continue;
    if (padded.length > 1 || padded[0] !== group[0]) return null;
    const at = padded[0];
    const inner = group.slice(1).reduce((n, i) => n * outShape[i], 1);
    const first = dst[b0];
    const row = pa / shape[first]; // elements of the group per index of its first target axis
    const [l, d] = [params.lo[at] * inner, xShape[at] * inner];
    if (l % row !== 0 || d % row !== 0) return null;
    inputShape[first] = d / row;
    lo[first] = l / row;
    hi[first] = shape[first] - lo[first] - inputShape[first];
  }
  return {
    inputShape,
    params: { ...params, lo, hi, interior: shape.map(() => 0) },
  };
}

export function reluMaskFromOutput(p: Program): Program {
  const producer = producers(p);
  const read = readers(p);
  const fresh = idSource(p);
  const isZero = (v: Var) => {
    const e = producer.get(v.id);
    return !!e && !isMultiEqn(e) && e.prim === full && e.params.value === 0 &&
      sizeOf(v.shape) === 1;
  };
  /**
   * Whether `v` is stored whatever fusion does: a program output, or read by a primitive no
   * kernel group absorbs (a matmul, say), directly or through reshapes.
   */
  const storedAnyway = (v: Var): boolean =>
    read.get(v.id)!.some((r) =>
      r === null || isMultiEqn(r) ||
      (r.prim.view ? storedAnyway(r.out) : !r.prim.fusion && r.prim.kind !== "reduction")
    );
  const rename = new Map<number, Var>();
  const eqns: AnyEqn[] = [];
  for (const e of p.eqns) {
    eqns.push({ ...e, inputs: e.inputs.map((v) => rename.get(v.id) ?? v) });
    if (isMultiEqn(e) || e.prim !== elementwise.where) continue;
    const [mask, x, zero] = e.inputs;
    const gt = producer.get(mask.id);
    if (
      !gt || isMultiEqn(gt) || gt.prim !== elementwise.gt || gt.inputs[0].id !== x.id ||
      !isZero(gt.inputs[1]) || !isZero(zero) || x.dtype !== "f32" ||
      !sameShape(x, e.out) || !sameShape(mask, e.out) || rename.has(mask.id) ||
      read.get(mask.id)!.length < 2 || !storedAnyway(e.out) // else the rewrite stores it
    ) continue;
    const again = fresh(mask.shape, mask.dtype);
    eqns.push({ ...gt, inputs: [e.out, gt.inputs[1]], out: again });
    rename.set(mask.id, again); // readers after the ReLU
  }
  return { ...p, eqns, outputs: p.outputs.map((v) => rename.get(v.id) ?? v) };
}

/** Reductions that compose: reducing twice with one of these is reducing once. */
const NESTING_OPS = ["sum", "prod", "max", "min"];

export function mergeReductions(p: Program): Program {
  const read = readers(p);
  const made = new Set<number>(); // new values, each read once
  const readOnce = (v: Var) => made.has(v.id) || read.get(v.id)?.length === 1;
  const newVar = idSource(p);
  const fresh = (shape: readonly number[], dtype: Var["dtype"]) => {
    const v = newVar(shape, dtype);
    made.add(v.id);
    return v;
  };
  const producer = new Map<number, AnyEqn>(); // of the rewritten program
  const reduceOf = (v: Var, op?: string): Eqn | null => {
    const e = producer.get(v.id);
    return e && !isMultiEqn(e) && e.prim.kind === "reduction" &&
        NESTING_OPS.includes(e.params.op) &&
        (op === undefined || e.params.op === op) && readOnce(v)
      ? e
      : null;
  };
  /** `outer` over `inner`'s input: the axes of both, numbered in that input. */
  const nested = (outer: Eqn, inner: Eqn): Eqn => {
    const x = inner.inputs[0];
    const innerAxes = inner.params.axes as number[];
    const kept = x.shape.map((_, a) => a).filter((a) => !innerAxes.includes(a));
    const axes = [...innerAxes, ...(outer.params.axes as number[]).map((a) => kept[a])];
    return { ...outer, inputs: [x], params: { ...outer.params, axes: axes.sort((a, b) => a - b) } };
  };
  /**
   * The sum computing `v`, maybe through reshapes (each read only by the next), over its
   * innermost source: `flat`; `views` are the reshapes.
   */
  const flatSum = (v: Var): { eqn: Eqn; flat: Eqn; views: Eqn[] } | null => {
    const views: Eqn[] = [];
    let at = producer.get(v.id);
    while (at && !isMultiEqn(at) && !!at.prim.view && readOnce(at.out)) {
      views.push(at);
      at = producer.get(at.inputs[0].id);
    }
    const eqn = at && !isMultiEqn(at) ? reduceOf(at.out, "sum") : null;
    if (!eqn) return null;
    const inner = producer.get(eqn.inputs[0].id);
    const isSum = inner && !isMultiEqn(inner) && inner.prim.kind === "reduction" &&
      inner.params.op === "sum";
    return { eqn, flat: isSum ? nested(eqn, inner) : eqn, views };
  };
  /** For a sum `e` of a scalar multiple of an f32 sum (each read once): the two. */
  const scaledSum = (e: Eqn) => {
    const by = producer.get(e.inputs[0].id);
    if (!by || isMultiEqn(by) || !readOnce(e.inputs[0])) return null;
    const slot = scalingInput(by, by.out.shape.length);
    // the scalar must also broadcast into the smaller result
    if (slot < 0 || by.inputs.some((v, k) => k !== slot && v.shape.length > e.out.shape.length)) {
      return null;
    }
    const sum = reduceOf(by.inputs[slot], "sum");
    return sum && sum.inputs[0].dtype === "f32" ? { by, slot, sum } : null;
  };
  const removed = new Set<AnyEqn>();
  const eqns: AnyEqn[] = [];
  for (const e of p.eqns) {
    let eq: AnyEqn = e;
    if (!isMultiEqn(e) && e.prim.kind === "reduction") {
      const inner = reduceOf(e.inputs[0], e.params.op);
      const scaled = e.params.op === "sum" ? scaledSum(e) : null;
      if (inner && inner.inputs[0].dtype === inner.out.dtype) { // (a bool sum counts in i32)
        eq = nested(e, inner);
        removed.add(inner);
      } else if (scaled) { // Σ (s · Σ x) = s · Σ Σ x: a mean of means is one sum
        const merged = fresh(e.out.shape, "f32");
        const sum = { ...nested(e, scaled.sum), out: merged };
        producer.set(merged.id, sum);
        eqns.push(sum);
        const args = [...scaled.by.inputs];
        args[scaled.slot] = merged;
        eq = { ...scaled.by, inputs: args, out: e.out };
        removed.add(scaled.sum).add(scaled.by);
      }
    } else if (!isMultiEqn(e) && e.prim === elementwise.add && e.inputs[0].id !== e.inputs[1].id) {
      // Σ a + Σ b = Σ (a + b); each Σ may itself sum a sum, read elsewhere too
      const [s0, s1] = e.inputs.map(flatSum);
      const [a, b] = [s0?.flat.inputs[0], s1?.flat.inputs[0]];
      if (
        s0 && s1 && a && b && sameShape(s0.eqn.out, s1.eqn.out) &&
        e.inputs.every((v) => sameShape(v, e.out)) && sameShape(a, b) && a.dtype === "f32" &&
        b.dtype === "f32" &&
        JSON.stringify(s0.flat.params.axes) === JSON.stringify(s1.flat.params.axes)
      ) {
        const both = fresh(a.shape, "f32");
        eqns.push({ ...e, inputs: [a, b], out: both });
        const view = s0.views[0] ?? s1.views[0];
        const summed = view ? fresh(s0.eqn.out.shape, "f32") : e.out;
        eq = { ...s0.flat, inputs: [both], out: summed };
        if (view) { // back to the add's shape
          producer.set(summed.id, eq);
          eqns.push(eq);
          eq = { ...view, params: { shape: e.out.shape }, inputs: [summed], out: e.out };
        }
        for (const r of [s0, s1]) for (const x of [r.eqn, ...r.views]) removed.add(x);
      }
    }
    for (const v of eqnOutputs(eq)) producer.set(v.id, eq);
    eqns.push(eq);
  }
  return { ...p, eqns: eqns.filter((e) => !removed.has(e)) };
}

export function concatOfSlices(p: Program): Program {
  const made = producers(p);
  const rename = new Map<number, Var>();
  const sub = (v: Var) => rename.get(v.id) ?? v;
  const eqns: AnyEqn[] = [];
  for (const e0 of p.eqns) {
    const e = { ...e0, inputs: e0.inputs.map(sub) } as AnyEqn;
    const joined = isMultiEqn(e) || e.prim !== concat ? null : sliceJoined(e, made);
    if (isMultiEqn(e) || !joined) {
      eqns.push(e);
      continue;
    }
    // the source as this pass left it (an earlier join may have renamed it)
    const source = sub(joined.source), params = joined.params;
    const whole = params.start.every((st, i) =>
      st === 0 && params.stop[i] === source.shape[i] && params.step[i] === 1
    );
    if (whole) rename.set(e.out.id, source);
    else eqns.push({ prim: slice, params, inputs: [source], out: e.out } as Eqn);
  }
  return { ...p, eqns, outputs: p.outputs.map(sub) };
}

/**
 * When every operand of `concat` is a slice of one value, consecutive along the concat axis
 * with step 1 there and the same window on every other axis: that value and the one slice
 * the concat equals.
 */
function sliceJoined(
  e: Eqn,
  made: Map<number, AnyEqn>,
): { source: Var; params: SliceParams } | null {
  const axis = e.params.axis as number;
  const cuts = e.inputs.map((v) => made.get(v.id));
  if (cuts.some((c) => !c || isMultiEqn(c) || c.prim !== slice)) return null;
  const slices = cuts as Eqn[];
  const source = slices[0].inputs[0];
  const ps = slices.map((c) => c.params as SliceParams);
  const first = ps[0];
  for (let k = 0; k < ps.length; k++) {
    const q = ps[k];
    if (slices[k].inputs[0].id !== source.id || q.step[axis] !== 1) return null;
    if (k > 0 && q.start[axis] !== ps[k - 1].stop[axis]) return null;
    const sameElsewhere = q.start.every((st, i) =>
      i === axis ||
      (st === first.start[i] && q.stop[i] === first.stop[i] && q.step[i] === first.step[i])
    );
    if (!sameElsewhere || q.stop[axis] <= q.start[axis]) return null;
  }
  const stop = [...first.stop];
  stop[axis] = ps.at(-1)!.stop[axis];
  return { source, params: { start: first.start, stop, step: first.step } };
}

export function randomBitsPerElement(p: Program): Program {
  const fresh = idSource(p);
  const eqns: AnyEqn[] = [];
  for (const e of p.eqns) {
    if (isMultiEqn(e) || e.prim !== randomBits || sizeOf(e.out.shape) === 0) {
      eqns.push(e);
      continue;
    }
    const [key] = e.inputs;
    const params = e.params as RandomBitsParams;
    const lead = key.shape.slice(0, -1);
    const wordShape = [...lead, ...params.shape.map(() => 1)];
    const words = [0, 1].map((w) => {
      const start = [...lead.map(() => 0), w], stop = [...lead, w + 1];
      const cut = fresh([...lead, 1], "u32");
      eqns.push({
        prim: slice,
        params: { start, stop, step: start.map(() => 1) },
        inputs: [key],
        out: cut,
      });
      if (sameDims(cut.shape, wordShape)) return cut;
      const shaped = fresh(wordShape, "u32");
      eqns.push({ prim: reshape, params: { shape: wordShape }, inputs: [cut], out: shaped });
      return shaped;
    });
    eqns.push({ prim: threefryBits, params, inputs: words, out: e.out });
  }
  return { ...p, eqns };
}

const sameDims = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

export function randomBitsThroughViews(p: Program): Program {
  const fresh = idSource(p);
  const made = producers(p);
  const eqns: AnyEqn[] = [];
  /** `e`, or the equations computing its value as bits of their own (pushed in order). */
  const place = (e: AnyEqn): void => {
    const src = isMultiEqn(e) ? undefined : made.get(e.inputs[0]?.id);
    // (of one key only: a window of per-row keys' bits is read where it lies, since a kernel
    // computing it would repeat each row's chain of key splits at every element it reads)
    const bits = src && !isMultiEqn(src) && src.prim === threefryBits &&
        src.inputs.every((k) => sizeOf(k.shape) === 1)
      ? src
      : null;
    const own = bits &&
      (e.prim === slice
        ? slicedBits(e as Eqn, bits)
        : e.prim === reshape
        ? reshapedBits(e as Eqn, bits)
        : null);
    if (!own) {
      eqns.push(e);
      return;
    }
    // the key words seen through the same view, themselves maybe bits of their own
    const words = bits!.inputs.map((k) => {
      if (sameDims(k.shape, own.wordShape)) return k;
      const out = fresh(own.wordShape, k.dtype);
      const view: Eqn = own.wordView(k, out);
      made.set(out.id, view);
      place(view); // (as the view, or as bits of their own: either way computing `out`)
      return out;
    });
    const out = (e as Eqn).out;
    const computed: Eqn = { prim: threefryBits, params: own.params, inputs: words, out };
    made.set(out.id, computed);
    eqns.push(computed);
  };
  for (const e of p.eqns) place(e);
  return { ...p, eqns };
}

/** How a view of `threefryBits` is bits of its own: parameters, key words' shape and view. */
interface OwnBits {
  params: ThreefryBitsParams;
  wordShape: number[];
  wordView: (k: Var, out: Var) => Eqn;
}

/**
 * A slice (positive steps) of `bits` as threefryBits of its own: the key axes sliced alike in
 * the key words; the block's picked elements j = o + c·i (i their row-major index) must be
 * evenly spaced, and words alternating along the block stay so only for c = 1 from an even o,
 * become one word for an even c (or a single element), and are left a slice otherwise.
 */
function slicedBits(e: Eqn, bits: Eqn): OwnBits | null {
  const sp = e.params as SliceParams;
  const p = bits.params as ThreefryBitsParams;
  if (sp.step.some((st) => st <= 0) || sizeOf(e.out.shape) === 0) return null;
  const lead = bits.out.shape.length - p.shape.length;
  const block = e.out.shape.slice(lead);
  const full = stridesOf(p.shape), own = stridesOf(block);
  const o = p.shape.reduce((acc, _d, b) => acc + sp.start[lead + b] * full[b], 0);
  const last = block.findLastIndex((d) => d !== 1);
  const c = last < 0 ? 1 : sp.step[lead + last] * full[last];
  if (!block.every((d, b) => d === 1 || sp.step[lead + b] * full[b] === c * own[b])) return null;
  const base = { shape: block, tag: p.tag };
  let params: ThreefryBitsParams;
  if (p.word !== undefined) {
    const step = p.step ?? 1;
    params = { ...base, offset: (p.offset + o * step) >>> 0, word: p.word, step: c * step };
  } else if (c === 1 && o % 2 === 0 && last >= 0) {
    params = { ...base, offset: (p.offset + o / 2) >>> 0 };
  } else if (c % 2 === 0 || last < 0) {
    params = { ...base, offset: (p.offset + (o >> 1)) >>> 0, word: o & 1, step: c / 2 };
  } else return null;
  const wordShape = [...e.out.shape.slice(0, lead), ...block.map(() => 1)];
  const wordView = (k: Var, out: Var): Eqn => ({
    prim: slice,
    params: {
      start: [...sp.start.slice(0, lead), ...block.map(() => 0)],
      stop: [...sp.stop.slice(0, lead), ...block.map(() => 1)],
      step: [...sp.step.slice(0, lead), ...block.map(() => 1)],
    },
    inputs: [k],
    out,
  });
  return { params, wordShape, wordView };
}

/**
 * A reshape of `bits` that only adds or drops axes of size 1, as threefryBits of its own: the
 * key axes end at the last one of the key's axes longer than 1 (the block's elements keep
 * their order), and the key words are reshaped alike.
 */
function reshapedBits(e: Eqn, bits: Eqn): OwnBits | null {
  const p = bits.params as ThreefryBitsParams;
  const shape = e.out.shape;
  if (!sameNonUnit(bits.out.shape, shape) || sizeOf(shape) === 0) return null;
  const lead = bits.out.shape.length - p.shape.length;
  const longKeyAxes = bits.out.shape.slice(0, lead).filter((d) => d !== 1).length;
  let split = 0;
  for (let seen = 0; seen < longKeyAxes; split++) if (shape[split] !== 1) seen++;
  const block = shape.slice(split);
  const wordShape = [...shape.slice(0, split), ...block.map(() => 1)];
  const wordView = (k: Var, out: Var): Eqn => ({
    prim: reshape,
    params: { shape: wordShape },
    inputs: [k],
    out,
  });
  return { params: { ...p, shape: block }, wordShape, wordView };
}

export function composeSlices(p: Program): Program {
  const made = producers(p);
  const fresh = idSource(p);
  const eqns: AnyEqn[] = [];
  for (const e of p.eqns) {
    const composed = isMultiEqn(e) || e.prim !== slice ? null : sliceOfSlice(e, made);
    if (isMultiEqn(e) || !composed) {
      eqns.push(e);
      continue;
    }
    const { source, params, shape } = composed;
    if (sameDims(shape, e.out.shape)) {
      eqns.push({ prim: slice, params, inputs: [source], out: e.out });
      continue;
    }
    const cut = fresh(shape, e.out.dtype);
    eqns.push({ prim: slice, params, inputs: [source], out: cut });
    eqns.push({ prim: reshape, params: { shape: e.out.shape }, inputs: [cut], out: e.out });
  }
  return { ...p, eqns };
}

/**
 * `e` (a slice) as one slice of an earlier slice's input, when `e` reads that slice through
 * reshapes that only add or drop axes of size 1 and every step is positive: the source, the
 * composed window and its shape (`e`'s result up to axes of size 1).
 */
function sliceOfSlice(
  e: Eqn,
  made: Map<number, AnyEqn>,
): { source: Var; params: SliceParams; shape: number[] } | null {
  let v = e.inputs[0];
  let prev = made.get(v.id);
  while (
    prev && !isMultiEqn(prev) && !!prev.prim.view &&
    sameNonUnit(prev.inputs[0].shape, prev.out.shape)
  ) {
    v = prev.inputs[0];
    prev = made.get(v.id);
  }
  if (!prev || isMultiEqn(prev) || prev.prim !== slice) return null;
  const first = prev.params as SliceParams, second = e.params as SliceParams;
  if ([...first.step, ...second.step].some((st) => st <= 0) || sizeOf(e.out.shape) === 0) {
    return null;
  }
  const cutShape = prev.out.shape, readShape = e.inputs[0].shape;
  const outer = cutShape.flatMap((d, a) => d === 1 ? [] : [a]);
  const inner = readShape.flatMap((d, b) => d === 1 ? [] : [b]);
  const start = [...first.start], stop = [...first.stop], step = [...first.step];
  const shape = [...cutShape];
  outer.forEach((a, k) => {
    const b = inner[k];
    const len = e.out.shape[b];
    start[a] = first.start[a] + second.start[b] * first.step[a];
    step[a] = first.step[a] * second.step[b];
    stop[a] = start[a] + (len - 1) * step[a] + 1;
    shape[a] = len;
  });
  return { source: prev.inputs[0], params: { start, stop, step }, shape };
}

/** Whether two shapes are the same once their axes of size 1 are dropped. */
const sameNonUnit = (a: readonly number[], b: readonly number[]) =>
  sameDims(a.filter((d) => d !== 1), b.filter((d) => d !== 1));

export function reshapedConstants(p: Program): Program {
  const made = producers(p);
  const eqns: AnyEqn[] = [];
  for (const e of p.eqns) {
    const src = isMultiEqn(e) ? undefined : made.get(e.inputs[0]?.id);
    const constant = !!src && !isMultiEqn(src) && src.inputs.length === 0 &&
      (src.prim === full || src.prim === iota);
    const folded = constant ? constantView(e as Eqn, src as Eqn) : null;
    if (folded) made.set(folded.out.id, folded); // a view of this view is then one of a constant
    eqns.push(folded ?? e);
  }
  return { ...p, eqns };
}

/**
 * `view` (a reshape, or a window: a slice, a transpose) of the constant `src` (a `full` or an
 * `iota`) as a constant made in the view's shape, or null: any view of a `full`; a reshape of an
 * `iota`, or a window of it whose elements, in row-major order, are the iota's at evenly spaced
 * positions (leading rows, one element, a reversed or strided run) — another iota.
 */
function constantView(view: Eqn, src: Eqn): Eqn | null {
  const shape = view.out.shape;
  if (view.prim.view) return { ...src, params: { ...src.params, shape }, out: view.out };
  if (!view.prim.window) return null;
  if (src.prim === full) return { ...src, params: { ...src.params, shape }, out: view.out };
  const w = view.prim.window(view.params, {
    offset: 0,
    strides: stridesOf(src.out.shape),
    shape: src.out.shape,
  }, view.out);
  if (w === null) return null;
  // its elements, in row-major order, are the iota's at offset + c·i for one spacing c
  const rowMajor = stridesOf(shape);
  const last = shape.findLastIndex((d) => d !== 1);
  const c = last < 0 ? 1 : w.strides[last];
  if (!shape.every((d, i) => d === 1 || w.strides[i] === c * rowMajor[i])) return null;
  const { start, step } = src.params as { start: number; step: number };
  return {
    ...src,
    params: {
      ...src.params,
      length: sizeOf(shape),
      start: start + w.offset * step,
      step: step * c,
      shape,
    },
    out: view.out,
  };
}

/** Reductions over at most this many elements per result are unrolled (`unrolledReductions`). */
const MAX_UNROLLED_TERMS = 4;

/** Elementwise ops per term `unrolledReductions` takes apart before it slices what they read. */
const MAX_PUSHED_OPS = 16;

/** An elementwise op whose parameters do not depend on shapes (so it applies to any window). */
const pushable = (e: Eqn) => !!e.prim.fusion && e.inputs.length > 0 && e.prim !== broadcastTo;

export function unrolledReductions(p: Program): Program {
  const fresh = idSource(p);
  const made = producers(p);
  const readBy = readers(p);
  const eqns: AnyEqn[] = [];
  const emit = (prim: Eqn["prim"], params: unknown, inputs: Var[], out: Var) => {
    eqns.push({ prim, params, inputs, out } as Eqn);
    return out;
  };
  const binary = (name: string, a: Var, b: Var, dtype: Var["dtype"], out?: Var) =>
    emit(elementwise[name], {}, [a, b], out ?? fresh(a.shape, dtype));
  const constant = (value: number, dtype: Var["dtype"]) =>
    emit(full, { shape: [], dtype, value }, [], fresh([], dtype));
  for (const e of p.eqns) {
    if (isMultiEqn(e) || e.prim.kind !== "reduction") {
      eqns.push(e);
      continue;
    }
    const [x] = e.inputs;
    const { op, axes } = e.params as ReduceParams;
    const terms = axes.reduce((n, a) => n * x.shape[a], 1);
    if (terms < 2 || terms > MAX_UNROLLED_TERMS || sizeOf(e.out.shape) === 0) {
      eqns.push(e);
      continue;
    }
    // term r: x at the r-th position (row-major) over the reduced axes, in the result's shape;
    // elementwise producers are taken apart the same way (`at`), so the terms' arithmetic
    // reads windows of stored values instead of a value of the input's shape
    const coords = (r: number) => {
      const c = new Map<number, number>();
      for (let k = axes.length - 1; k >= 0; k--) {
        c.set(axes[k], r % x.shape[axes[k]]);
        r = Math.floor(r / x.shape[axes[k]]);
      }
      return c;
    };
    const memo = new Map<string, Var>();
    let budget = MAX_PUSHED_OPS * terms;
    // A value is taken apart only when nothing else reads it: computed two ways (whole for one
    // reader, by windows for this one) its bits could differ — shader compilers reassociate
    // `(a + 0.5) + 0.5` as `a + 1` in one kernel and not in another — and a max's gradient
    // compares the two with `eq` (found by tests/jit_fuzz_test.ts).
    const takenApart = new Set<AnyEqn>([e]);
    const onlyHere = (v: Var) =>
      (readBy.get(v.id) ?? []).every((r) => r !== null && takenApart.has(r));
    /** `v` (broadcasting into x's shape) at window `r`, its reduced axes dropped. */
    const at = (v: Var, r: number): Var => {
      const key = `${v.id}|${r}`;
      const hit = memo.get(key);
      if (hit) return hit;
      const lead = x.shape.length - v.shape.length;
      const local = axes.map((a) => a - lead).filter((a) => a >= 0);
      const shape = v.shape.filter((_, i) => !local.includes(i));
      const c = coords(r);
      const src = made.get(v.id);
      let out: Var;
      if (local.every((a) => v.shape[a] === 1)) {
        out = shaped(v, shape);
      } else if (src && !isMultiEqn(src) && src.prim === full) {
        out = emit(full, { ...src.params, shape }, [], fresh(shape, v.dtype));
      } else if (
        src && !isMultiEqn(src) && pushable(src) && onlyHere(v) && budget-- > 0
      ) {
        takenApart.add(src);
        const inputs = src.inputs.map((u) => at(u, r));
        out = emit(src.prim, src.params, inputs, fresh(shape, v.dtype));
      } else {
        const start = v.shape.map((_, i) => (local.includes(i) ? c.get(i + lead)! : 0));
        const stop = v.shape.map((d, i) => (local.includes(i) ? start[i] + 1 : d));
        const cutShape = v.shape.map((d, i) => (local.includes(i) ? 1 : d));
        const cut = emit(
          slice,
          { start, stop, step: v.shape.map(() => 1) },
          [v],
          fresh(cutShape, v.dtype),
        );
        out = shaped(cut, shape);
      }
      memo.set(key, out);
      return out;
    };
    /** `v` reshaped to `shape` (through a reshape that made `v` from a value of that shape). */
    const shaped = (v: Var, shape: readonly number[]): Var => {
      if (sameDims(v.shape, shape)) return v;
      const src = made.get(v.id);
      if (
        src && !isMultiEqn(src) && !!src.prim.view &&
        sameDims(src.inputs[0].shape, shape)
      ) {
        return src.inputs[0];
      }
      return emit(reshape, { shape }, [v], fresh(shape, v.dtype));
    };
    const term = (r: number) => shaped(at(x, r), e.out.shape);
    const values = Array.from({ length: terms }, (_, r) => term(r));
    const last = (k: number) => (k === terms - 1 ? e.out : undefined);
    if (op === "sum" || op === "prod" || op === "max" || op === "min") {
      const name = { sum: "add", prod: "mul", max: "maximum", min: "minimum" }[op];
      let acc = values[0];
      for (let k = 1; k < terms; k++) acc = binary(name, acc, values[k], x.dtype, last(k));
      continue;
    }
    // argmax / argmin: the first NaN wins, then the first strictly better value
    const float = x.dtype === "f32";
    let acc = values[0];
    let best = emit(
      full,
      { shape: e.out.shape, dtype: "i32", value: 0 },
      [],
      fresh(e.out.shape, "i32"),
    );
    for (let k = 1; k < terms; k++) {
      const v = values[k];
      let take = binary(op === "argmax" ? "gt" : "lt", v, acc, "bool");
      if (float) {
        const vNaN = binary("ne", v, v, "bool"), accNaN = binary("ne", acc, acc, "bool");
        const accOk = emit(elementwise.not, {}, [accNaN], fresh(e.out.shape, "bool"));
        take = binary("and", accOk, binary("or", vNaN, take, "bool"), "bool");
      }
      if (k < terms - 1) {
        acc = emit(elementwise.where, {}, [take, v, acc], fresh(e.out.shape, x.dtype));
      }
      best = emit(
        elementwise.where,
        {},
        [take, constant(k, "i32"), best],
        last(k) ?? fresh(e.out.shape, "i32"),
      );
    }
  }
  return { ...p, eqns };
}
