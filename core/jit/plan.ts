/**
 * Planning a program's kernels on WebGPU: which equations fuse into one kernel (elementwise
 * chains, reduction prologues and epilogues, matmul epilogues, windows read in place,
 * positional values computed where read), which small kernels merge, and the order the
 * resulting steps run in. `Compiled` (compile.ts) runs the plan.
 */
import { broadcastStrides, sameNonUnitDims, sizeOf, stridesOf, unitReshaped } from "../shape.ts";
import type { GpuStorage } from "../backend/webgpu/runtime.ts";
import { ELEMENTWISE_HELPERS } from "../primitives/elementwise.ts";
import { THREEFRY_WGSL } from "../primitives/random_bits.ts";
import type { Tensor } from "../tensor.ts";
import { FusedCodeBuilder } from "../fusion/codegen.ts";
import { slice as slicePrimitive } from "../primitives/slice.ts";
import { boxStore, broadcastStore, indexIn, type Window, windowStore } from "./kernel_index.ts";
import {
  type AnyEqn,
  type Eqn,
  eqnOutputs,
  isMultiEqn,
  type Program,
  sameShape,
  type Var,
  varText,
} from "./ir.ts";

/** Generated kernel code of a fused group: `let` statements, then the value of its root. */
export interface FusedCode {
  leaves: Var[];
  prelude: string;
  expr: string;
  label: string;
}

/**
 * A leaf that a kernel computes as it reads it: the sum of `input` over `axes` (one contiguous
 * run, f32), seen through the leaf's shape (the sum's, with axes of size 1 added or dropped).
 */
export interface SummedLeaf {
  input: Var;
  axes: number[];
}

/**
 * Further values a fused kernel stores besides `out` (same shape), each with the name of its
 * `let` in the prelude: the kernel computes several values that other kernels read.
 */
export interface StoredValues {
  extraOuts?: { v: Var; name: string; at?: { guard: string; index: string } }[];
}

/**
 * A leaf that a fused kernel reads where it lies in a stored value: a window of `input` with
 * steps (a slice, maybe reshaped by axes of size 1), `offset` and `strides` (elements) over
 * the leaf's shape.
 */
export interface SlicedLeaf {
  input: Var;
  offset: number;
  strides: number[];
}

/**
 * A leaf that is a zero-padded value (`pad`'s result, the transpose of a slice): a plain fused
 * kernel over the pad's shape reads the unpadded input where it lies inside the box `lo` +
 * `size` of its index space — `offset` (negative: before the input's first element) and
 * `strides` place it — and 0 outside, and the pad's fill and copy go.
 */
export interface PaddedLeaf extends SlicedLeaf {
  lo: number[];
  size: number[];
}

/** How a kernel reads a leaf other than as stored: summed as it loads, as a window, or padded. */
export type LeafRead = SummedLeaf | SlicedLeaf | PaddedLeaf;
export const isSummed = (r: LeafRead): r is SummedLeaf => "axes" in r;
export const isPadded = (r: LeafRead): r is PaddedLeaf => "lo" in r;

/** Per leaf of a fused or epilogue kernel, whether it is read as a `LeafRead`. */
export interface LeafSums {
  sums?: (LeafRead | undefined)[];
}

/**
 * One executable step: a primitive; a fused elementwise kernel computing `out`; a reduction
 * reading a fused expression; or a matmul storing through a fused epilogue.
 */
export type Step =
  | { kind: "eqn"; eqn: AnyEqn }
  | ({ kind: "fused"; out: Var } & FusedCode & LeafSums & StoredValues)
  | FusedReduce
  | ({ kind: "matmulEpilogue"; mm: Eqn; mm2?: Eqn; out: Var } & FusedCode & LeafSums)
  | (
    & { kind: "reduceEpilogue"; reduce: FusedReduce | PlainReduce; out: Var }
    & FusedCode
    & LeafSums
  );

/** A reduction reading a fused elementwise expression (its prologue). */
export type FusedReduce = { kind: "fusedReduce"; eqn: Eqn } & FusedCode & LeafSums;
/** A reduction reading its input as stored. */
export type PlainReduce = { kind: "eqn"; eqn: Eqn };

const PROLOGUE_OPS = ["sum", "max", "min", "prod"];

/**
 * Pads of at most this many elements are read in place (`inlinePads`): their readers run in one
 * launch (chunked launches bind ranges, which a padded read's offset before its input defeats).
 */
const MAX_PADDED_READ = 1 << 22;

/** Kernels of at most this many operations are recomputed inside their readers. */
const MAX_REMAT_OPS = 2;

/**
 * Sums over at most this many elements per result, read only by fused or epilogue kernels,
 * are computed inside those readers (`SummedLeaf`) when the readers load at most
 * `MAX_INLINE_SUM_LOADS` terms in all. On llvmpipe a dispatch costs ~80–100 µs before any
 * work, and a term loaded inside a reader 5–8 ns (one lane at a time, often in a kernel of a
 * single workgroup). The second-order MAML step has 7 sums of 10 or 25 terms; inlining all of
 * them (up to 100,000 terms in one reader) made its readers 1 ms per step slower and the step
 * no faster; the 4 whose readers load ≤ 2,500 terms go for ~10 µs of loads each.
 */
const MAX_INLINE_SUM = 32;
const MAX_INLINE_SUM_LOADS = 1 << 13;

/** Functions a plain fused kernel may call (positional members' too). */
export const FUSED_HELPERS = ELEMENTWISE_HELPERS + "\n" + THREEFRY_WGSL;

/** How many kernels back from a kernel `mergeKernels` looks for one to take in. */
const MERGE_WINDOW = 32;
/**
 * Kernels of at most this many elements are merged. Above it a kernel's own work outweighs a
 * dispatch, and merging would keep both kernels' inputs and outputs alive at once (a donated
 * input could no longer make room for the other kernel's result). 2¹⁵ takes in RL²'s two GRUs
 * run stacked ([2, 64, 3, 64] = 24,576 per value of the normalised cell: 16 → 11 kernels a
 * backward step); the MAML steps compile to the same kernels as under 2¹⁴.
 */
const MERGE_MAX_ELEMS = 1 << 15;

/** How a kernel group was formed: its equations, root, iteration shape and label. */
interface GroupPlan {
  members: Set<Eqn>;
  root: Eqn;
  shape: Var;
  label: (ops: string) => string;
  /** A matmul epilogue's accumulator. */
  acc?: Var;
  /** Its second product's, when the kernel computes two. */
  acc2?: Var;
  /**
   * Bindings of the kernel besides this group's leaves (a matmul's two operands; a reduction's
   * input or prologue leaves under its epilogue, and the other way round), as they are now.
   */
  extraLeaves: () => number;
}

/**
 * Plan fusion. Walking from the last equation back, each elementwise equation not yet placed
 * roots a group; a producer joins the group when it is elementwise, its result broadcasts
 * into the root's shape, and every consumer of it is already in the group (so it need not
 * exist outside). Constants (full) are literals copied into any group. A reduction over one
 * contiguous run of axes takes the group of its input as a prologue. Each group becomes one
 * kernel whose values are bound with `let`, so shared subexpressions are computed once.
 */
export function planSteps(
  p: Program,
  fuse: boolean,
  maxLeaves: number,
  maxEpilogueElems: number,
): Step[] {
  if (!fuse) return p.eqns.map((eqn) => ({ kind: "eqn", eqn }));
  return new Planner(p, maxLeaves, maxEpilogueElems).plan();
}

type LeafHost = Extract<
  Step,
  { kind: "fused" | "matmulEpilogue" | "fusedReduce" | "reduceEpilogue" }
>;

/**
 * The planning passes over one program and what they share: the program's use graph
 * (`producer`, `consumers`) and the kernel groups formed so far (`groups`, `groupAt`, `placed`).
 * `plan` runs them: groups grown from the last equation back (reduction prologues and epilogues,
 * matmul epilogues), small kernels recomputed in their readers, short sums and views read in
 * place, then the steps in program order, unread ones dropped, small kernels merged.
 */
class Planner {
  readonly producer = new Map<number, AnyEqn>();
  readonly consumers = new Map<number, Set<AnyEqn | null>>(); // null: a program output
  readonly placed = new Set<AnyEqn>(); // equations computed inside some kernel group
  readonly groupAt = new Map<AnyEqn, Step>(); // where each group's kernel runs
  /** How each group was formed, so `rematerialize` can re-emit it with more members. */
  readonly groups = new Map<AnyEqn, GroupPlan>();
  /** Steps that run inside another step (a reduction under its epilogue). */
  readonly nested = new Set<Step>();
  /** The epilogue step around a nested reduction with a prologue. */
  readonly epilogueAround = new Map<Step, FusedCode>();

  constructor(
    readonly p: Program,
    readonly maxLeaves: number,
    readonly maxEpilogueElems: number,
  ) {}

  /** The plan: the steps a call runs, in order. */
  plan(): Step[] {
    for (const e of this.p.eqns) for (const v of eqnOutputs(e)) this.producer.set(v.id, e);
    for (const e of this.p.eqns) for (const v of e.inputs) this.addUse(v, e);
    for (const v of this.p.outputs) this.addUse(v, null);
    this.formGroups();
    this.rematerialize();
    this.inlineSums();
    this.inlineViews();
    this.inlinePads();
    return this.storePadSumsInProducers(this.mergeKernels(this.ordered()));
  }

  /**
   * Walking from the last equation back: a reduction takes its input's group as a prologue;
   * an elementwise or positional equation not yet placed roots a group, which a matmul or
   * reduction computing one of its values may run as its epilogue.
   */
  formGroups(): void {
    for (let k = this.p.eqns.length - 1; k >= 0; k--) {
      const e = this.p.eqns[k];
      if (this.placed.has(e) || isMultiEqn(e)) continue;
      if (this.withPrologue(e)) continue;
      if (!(elementwise(e) || positional(e)) || isConstant(e)) continue;
      const members = this.grow(e, null, e.out, true);
      // a member that reads its position runs only in a plain fused kernel (index `gi`)
      const plainOnly = [...members].some((m) => positional(m));
      // values of the group's shape that only the group reads: a matmul or reduction computing
      // one can apply the group as its epilogue
      const accumulators = e.out.dtype !== "f32" || plainOnly ? [] : [...members]
        .flatMap((m) => m.inputs)
        .filter((v) =>
          sameShape(v, e.out) &&
          [...this.consumers.get(v.id)!].every((c) => c !== null && members.has(c as Eqn))
        );
      const reduceOf = accumulators
        .map((v) => ({ v, behind: this.behind(v, isFoldingReduce) }))
        .find((c) => c.behind !== null);
      const epilogueOf = accumulators
        .filter((v) => sizeOf(v.shape) <= this.maxEpilogueElems)
        .map((v) => ({ v, behind: this.behind(v, isMatmul) }))
        .find((c) => c.behind !== null);
      if (!epilogueOf && reduceOf && this.reductionEpilogue(e, members, reduceOf)) continue;
      if (epilogueOf && this.matmulEpilogue(e, members, epilogueOf, accumulators)) continue;
      this.fusedGroup(e, members);
    }
  }

  /**
   * Group `members` (rooted at `e`) as the epilogue of the reduction computing `reduceOf.v`
   * (with its own prologue when it has one); false when the kernel would bind too much.
   */
  reductionEpilogue(
    e: Eqn,
    members: Set<Eqn>,
    reduceOf: { v: Var; behind: { eqn: Eqn; views: Eqn[] } | null },
  ): boolean {
    const { v: acc, behind: found } = reduceOf;
    const red = found!.eqn;
    const reduce: FusedReduce | PlainReduce = this.withPrologue(red) ??
      { kind: "eqn", eqn: red };
    const g = this.emit(members, e, acc);
    const readLeaves = reduce.kind === "eqn" ? 1 : reduce.leaves.length;
    if (g.leaves.length + readLeaves <= this.maxLeaves) {
      this.placed.add(red);
      for (const view of found!.views) this.placed.add(view);
      for (const m of members) if (m !== e && !isConstant(m)) this.placed.add(m);
      this.nested.add(reduce);
      const label = (l: string) =>
        `${reduce.kind === "eqn" ? `reduce[${red.params.op}]` : reduce.label}+${l}`;
      const step: Step = {
        kind: "reduceEpilogue",
        reduce,
        out: e.out,
        ...g,
        label: label(g.label),
      };
      this.groupAt.set(e, step);
      this.epilogueAround.set(reduce, step);
      const extraLeaves = () => (reduce.kind === "eqn" ? 1 : reduce.leaves.length);
      this.groups.set(e, { members, root: e, shape: e.out, label, acc, extraLeaves });
      return true;
    }
    return false;
  }

  /**
   * Group `members` (rooted at `e`) as the epilogue of the matmul computing `epilogueOf.v` —
   * with a second product of the same shape that only the group reads, when one fits; false
   * when the kernel would bind too much.
   */
  matmulEpilogue(
    e: Eqn,
    members: Set<Eqn>,
    epilogueOf: { v: Var; behind: { eqn: Eqn; views: Eqn[] } | null },
    accumulators: Var[],
  ): boolean {
    const { v: mmInput, behind: found } = epilogueOf;
    const { eqn: mm, views } = found!;
    // another product of the same shape that only this group reads (`A·B + C·D`, the two
    // halves of a gradient): accumulated in the same kernel instead of stored and reloaded
    const secondOf = accumulators
      .filter((v) => v.id !== mmInput.id && sizeOf(v.shape) <= this.maxEpilogueElems)
      .map((v) => ({
        v,
        behind: this.behind(v, (m) => isMatmul(m) && m !== mm && sameShape(m.out, mm.out)),
      }))
      .find((c) => c.behind !== null);
    const dual = secondOf && this.emit(members, e, mmInput, secondOf.v);
    const useDual = !!dual && dual.leaves.length + 4 <= this.maxLeaves;
    const g = useDual ? dual! : this.emit(members, e, mmInput);
    const operands = useDual ? 4 : 2;
    if (g.leaves.length + operands <= this.maxLeaves) {
      this.placed.add(mm);
      for (const view of views) this.placed.add(view);
      const mm2 = useDual ? secondOf!.behind!.eqn : undefined;
      if (useDual) {
        this.placed.add(mm2!);
        for (const view of secondOf!.behind!.views) this.placed.add(view);
      }
      for (const m of members) if (m !== e && !isConstant(m)) this.placed.add(m);
      const label = (l: string) => `${useDual ? "matmul×2" : "matmul"}+${l}`;
      this.groupAt.set(e, {
        kind: "matmulEpilogue",
        mm,
        mm2,
        out: e.out,
        leaves: g.leaves,
        prelude: g.prelude,
        expr: g.expr,
        label: label(g.label),
      });
      this.groups.set(e, {
        members,
        root: e,
        shape: e.out,
        label,
        acc: mmInput,
        acc2: useDual ? secondOf!.v : undefined,
        extraLeaves: () => operands,
      });
      return true;
    }
    return false;
  }

  /**
   * Group `members` (rooted at `e`) as a plain fused kernel — a group of one op too: later
   * passes may recompute it in its readers, have it read a window or a sum as it loads, or merge
   * it with other kernels.
   */
  fusedGroup(e: Eqn, members: Set<Eqn>): void {
    const g = this.emit(members, e);
    if (g.leaves.length > this.maxLeaves) return; // too many bindings: leave it unfused
    for (const m of members) if (m !== e && !isConstant(m)) this.placed.add(m);
    const label = (l: string) => `fused[${l}]`;
    this.groupAt.set(e, {
      kind: "fused",
      out: e.out,
      leaves: g.leaves,
      prelude: g.prelude,
      expr: g.expr,
      label: label(g.label),
    });
    this.groups.set(e, { members, root: e, shape: e.out, label, extraLeaves: () => 0 });
  }

  /** Every step in program order, without those whose values nothing reads. */
  ordered(): Step[] {
    const planned: Step[] = [];
    for (const e of this.p.eqns) {
      const g = this.groupAt.get(e);
      if (g && !this.nested.has(g)) planned.push(g);
      else if (!this.placed.has(e)) planned.push({ kind: "eqn", eqn: e });
    }
    // steps whose values no step reads and the caller does not get go: a constant computed
    // inside every kernel reading it, a view every reader of which reads through a window
    const read = new Set(this.p.outputs.map((v) => v.id));
    const steps: Step[] = [];
    for (let k = planned.length - 1; k >= 0; k--) {
      const s = planned[k];
      if (!stepOutputs(s).some((v) => read.has(v.id))) continue;
      steps.unshift(s);
      for (const v of stepInputs(s)) read.add(v.id);
    }
    return steps;
  }

  addUse(v: Var, e: AnyEqn | null) {
    let set = this.consumers.get(v.id);
    if (!set) this.consumers.set(v.id, set = new Set());
    set.add(e);
  }

  /** Grow a group from `root` (whose result has shape `shape`); `owner` consumes the root. */
  grow(root: Eqn, owner: Eqn | null, shape: Var, withPositional = false) {
    const members = new Set<Eqn>([root]);
    if (owner) members.add(owner);
    let changed = true;
    while (changed) {
      changed = false;
      for (const m of [...members]) {
        if (m === owner) continue;
        for (const v of m.inputs) {
          const prod = this.producer.get(v.id);
          const byPosition = withPositional && positional(prod);
          if (!(elementwise(prod) || byPosition) || members.has(prod) || this.placed.has(prod)) {
            continue;
          }
          const isConst = isConstant(prod);
          const allInside = [...this.consumers.get(v.id)!].every((c) =>
            c !== null && members.has(c as Eqn)
          );
          if ((isConst || allInside) && broadcastsInto(prod.out, shape)) {
            members.add(prod);
            changed = true;
          }
        }
      }
    }
    if (owner) members.delete(owner);
    return members;
  }

  /** Code of a group; `stored` are further members whose values the kernel also stores. */
  emit(
    members: Set<Eqn>,
    root: Eqn,
    acc?: Var,
    acc2?: Var,
    stored: readonly Var[] = [],
  ): FusedCode & StoredValues {
    const builder = new FusedCodeBuilder<Var>((a, b) => a.id === b.id);
    const names = new Map<number, string>();
    const leaf = (v: Var) => {
      if (acc && v.id === acc.id) return "acc"; // the matmul's accumulator, in an epilogue
      if (acc2 && v.id === acc2.id) return "acc2"; // a second product's
      return builder.leaf(v);
    };
    for (const e of this.p.eqns) { // program order is a topological order
      if (isMultiEqn(e) || !members.has(e)) continue;
      const args = e.inputs.map((v) => {
        const prod = this.producer.get(v.id);
        return prod && members.has(prod as Eqn) ? names.get(v.id)! : leaf(v);
      });
      const value = e.prim.fusion
        ? e.prim.fusion(e.inputs, e.params, args)
        : e.prim.positional!.expr(
          e.inputs,
          e.params,
          args,
          e.out,
          indexIn(e.out.shape, root.out.shape),
        );
      names.set(e.out.id, builder.bind(value));
    }
    const label = this.p.eqns.filter((e) => members.has(e as Eqn) && !isConstant(e)).map((e) =>
      e.prim.name
    ).join(",");
    const code = {
      leaves: builder.leaves,
      prelude: builder.prelude,
      expr: names.get(root.out.id)!,
      label,
    };
    if (stored.length === 0) return code;
    return { ...code, extraOuts: stored.map((v) => ({ v, name: names.get(v.id)! })) };
  }

  /**
   * A small kernel with at most one input whose result only other kernels read (a ReLU's
   * mask, read by the forward `where` and again by the backward one; a constant such as a
   * broadcast 1/n) is recomputed inside each of them instead of being stored: one dispatch
   * less, and each reader loads the input instead of the result. On llvmpipe every dispatch
   * costs ~55 µs before any work.
   */
  rematerialize() {
    // member → keys of every group it is computed in: a kernel already recomputed in several
    // readers is a member of each, and each of them reads what it reads
    const groupsOf = new Map<Eqn, AnyEqn[]>();
    for (const [key, g] of this.groups) {
      for (const m of g.members) groupsOf.set(m, [...groupsOf.get(m) ?? [], key]);
    }
    for (const [key, g] of [...this.groups]) {
      const step = this.groupAt.get(key)!;
      if (step.kind !== "fused" || step.leaves.length > 1) continue;
      if ([...g.members].filter((m) => !isConstant(m)).length > MAX_REMAT_OPS) continue;
      if ([...g.members].some((m) => positional(m))) continue; // its readers' index differs
      const readers = [...this.consumers.get(g.root.out.id) ?? []];
      const hosts = new Set<AnyEqn>();
      if (
        !readers.every((c) => {
          const keys = c ? groupsOf.get(c as Eqn) ?? [] : [];
          if (keys.length === 0) return false;
          for (const host of keys) {
            if (host === key || !broadcastsInto(g.root.out, this.groups.get(host)!.shape)) {
              return false;
            }
            hosts.add(host);
          }
          return true;
        })
      ) continue;
      const emitted = new Map<AnyEqn, ReturnType<Planner["emit"]>>();
      for (const h of hosts) {
        const hg = this.groups.get(h)!;
        const out = this.emit(new Set([...hg.members, ...g.members]), hg.root, hg.acc, hg.acc2);
        if (out.leaves.length + hg.extraLeaves() > this.maxLeaves) break;
        emitted.set(h, out);
      }
      if (emitted.size !== hosts.size) continue;
      for (const m of g.members) groupsOf.set(m, [...emitted.keys()]);
      for (const [h, out] of emitted) {
        const hg = this.groups.get(h)!;
        for (const m of g.members) hg.members.add(m);
        Object.assign(this.groupAt.get(h)!, {
          leaves: out.leaves,
          prelude: out.prelude,
          expr: out.expr,
          label: hg.label(out.label),
        });
      }
      this.groupAt.delete(key);
      this.groups.delete(key);
      this.placed.add(g.root);
    }
  }

  /** Equations not computed inside any kernel group (nor roots of one). */
  free(e: AnyEqn) {
    return !isMultiEqn(e) && !this.placed.has(e) && !this.groupAt.has(e);
  }

  /**
   * The kernels reading `e`'s result as a leaf — directly or through reshapes that only add or
   * drop axes of size 1 (`views`) — when every reader is a kernel of the kinds `hosts` allows
   * (and it reads the leaf as stored); null when some reader is anything else.
   */
  leafReaders(e: Eqn, hosts: readonly Step["kind"][]) {
    // a kernel recomputed in several readers is a member of each
    const groupsOf = new Map<Eqn, AnyEqn[]>();
    for (const [key, g] of this.groups) {
      for (const m of g.members) groupsOf.set(m, [...groupsOf.get(m) ?? [], key]);
    }
    const views: Var[] = [e.out];
    const viewEqns: Eqn[] = [];
    const readers: { step: LeafHost; v: Var }[] = [];
    for (let i = 0; i < views.length; i++) {
      const v = views[i];
      for (const c of this.consumers.get(v.id) ?? []) {
        if (c === null || isMultiEqn(c)) return null;
        // a view sharing the storage that only adds or drops unit axes (a reshape)
        if (c.prim.view && this.free(c) && sameNonUnitDims(c.out.shape, v.shape)) {
          views.push(c.out);
          viewEqns.push(c);
          continue;
        }
        const keys = groupsOf.get(c) ?? [];
        if (keys.length === 0) return null;
        for (const key of keys) {
          const step = this.groupAt.get(key);
          const at = step && "leaves" in step ? step.leaves.findIndex((l) => l.id === v.id) : -1;
          if (!step || !hosts.includes(step.kind) || at < 0 || (step as LeafHost).sums?.[at]) {
            return null;
          }
          if (!readers.some((r) => r.step === step && r.v === v)) {
            readers.push({ step: step as LeafHost, v });
          }
        }
      }
    }
    return readers.length === 0 ? null : { readers, viewEqns };
  }

  /** `e`'s readers read it as `read` says (through `this.leafReaders`); `e` is computed by none. */
  readInside(
    e: Eqn,
    found: NonNullable<ReturnType<Planner["leafReaders"]>>,
    read: (v: Var) => LeafRead,
  ) {
    for (const { step, v } of found.readers) {
      (step.sums ??= [])[step.leaves.findIndex((l) => l.id === v.id)] = read(v);
    }
    this.placed.add(e);
    for (const view of found.viewEqns) this.placed.add(view);
  }

  /**
   * A plain sum of few terms per result (`MAX_INLINE_SUM`) whose every reader is a fused or
   * epilogue kernel reading it as a leaf (`this.leafReaders`): those kernels read its input and sum
   * as they load, and the sum's own dispatch goes.
   */
  inlineSums() {
    for (const e of this.p.eqns) {
      if (!this.free(e) || isMultiEqn(e) || !isFoldingReduce(e) || e.params.op !== "sum") continue;
      const input = e.inputs[0];
      const axes = e.params.axes as number[];
      const extent = axes.reduce((n, a) => n * input.shape[a], 1);
      if (extent > MAX_INLINE_SUM || sizeOf(input.shape) * 4 > 1 << 24) continue;
      const found = this.leafReaders(e, ["fused", "matmulEpilogue"]);
      if (!found) continue;
      const loads = found.readers.reduce(
        (n, r) => n + sizeOf(stepOutputs(r.step)[0].shape) * extent,
        0,
      );
      if (loads > MAX_INLINE_SUM_LOADS) continue;
      this.readInside(e, found, () => ({ input, axes }));
    }
  }

  /**
   * A slice or transpose whose every reader is a fused kernel reading it as a leaf
   * (`this.leafReaders`): those kernels read the window where it lies, through strides and an
   * offset, and the view's copy goes (a state split into its components, a key split into its
   * parts, a transposed operand). Views before it (a slice of a transpose, through reshapes by
   * axes of size 1) fold into the same window; one no step reads any more is dropped.
   */
  inlineViews() {
    // an equation whose result is its input read through another layout (`Primitive.window`)
    const isView = (e: AnyEqn | undefined): e is Eqn =>
      !!e && this.free(e) && !isMultiEqn(e) && !!e.prim.window &&
      e.prim.window(e.params, {
          offset: 0,
          strides: stridesOf(e.inputs[0].shape),
          shape: e.inputs[0].shape,
        }, e.out) !== null;
    /** The window `v` is of a stored value, through the views computing it. */
    // (a view before it read elsewhere too stays a step while those readers need it)
    const windowOf = (v: Var): Window => {
      const e = this.producer.get(v.id);
      if (isView(e)) return viewWindow(e, windowOf(e.inputs[0]));
      return { input: v, offset: 0, strides: stridesOf(v.shape), shape: v.shape };
    };
    const viewWindow = (e: Eqn, w: Window): Window => ({
      ...e.prim.window!(e.params, w, e.out)!,
      input: w.input,
    });
    for (const e of this.p.eqns) {
      // (a view sharing its input's storage needs no window: readers read the storage)
      if (!isView(e) || e.prim.view || sizeOf(e.out.shape) === 0) continue;
      // (reductions read windows but not sums: their kernels take offsets, not sum loops)
      const found = this.leafReaders(e, [
        "fused",
        "matmulEpilogue",
        "fusedReduce",
        "reduceEpilogue",
      ]);
      if (!found) continue;
      const w = viewWindow(e, windowOf(e.inputs[0]));
      this.readInside(e, found, (v) => {
        const { strides } = unitReshaped(w, v.shape);
        return { input: w.input, offset: w.offset, strides };
      });
    }
  }

  /**
   * A zero pad (`Primitive.boxedWindow`) of an f32 value whose every reader is a plain fused
   * kernel over the pad's own shape: those kernels read the input inside the pad's box and 0 outside it, so
   * the pad's fill and copy (two dispatches) go — the gradient of a slice, such as each of a GRU
   * cell's gates in the backward step of a recurrent scan.
   */
  inlinePads() {
    for (const e of this.p.eqns) {
      if (!this.free(e) || isMultiEqn(e) || !e.prim.boxedWindow) continue;
      const input = e.inputs[0];
      if (input.dtype !== "f32" || sizeOf(e.out.shape) > MAX_PADDED_READ) continue;
      const box = e.prim.boxedWindow(e.params, input, e.out);
      if (!box) continue;
      const found = this.leafReaders(e, ["fused"]);
      if (!found) continue;
      if (found.readers.some(({ step }) => !sameShape((step as { out: Var }).out, e.out))) continue;
      if (found.readers.some(({ v }) => !sameShape(v, e.out))) continue;
      // (a reader binding a value over the per-binding limit would run in chunks)
      const leaves = found.readers.flatMap(({ step }) => leafSources(step));
      if (leaves.some((v) => sizeOf(v.shape) > MAX_PADDED_READ)) continue;
      const { offset, strides, lo, size } = box;
      this.readInside(e, found, () => ({ input, offset, strides, lo, size }));
    }
  }

  /** A reduction reading its single-use elementwise this.producer's group as a prologue. */
  withPrologue(e: Eqn): FusedReduce | null {
    if (!prologueAxesOk(e)) return null;
    const src = this.producer.get(e.inputs[0].id);
    if (
      !elementwise(src) || isConstant(src) || this.placed.has(src) ||
      ![...this.consumers.get(src.out.id)!].every((c) => c === e)
    ) return null;
    const members = this.grow(src, e, src.out);
    const g = this.emit(members, src);
    if (g.leaves.length > this.maxLeaves) return null;
    for (const m of members) if (!isConstant(m)) this.placed.add(m);
    const label = (l: string) => `reduce[${e.params.op}∘${l}]`;
    const step: FusedReduce = {
      kind: "fusedReduce",
      eqn: e,
      ...g,
      label: label(g.label),
    };
    this.groupAt.set(e, step);
    const extraLeaves = () => this.epilogueAround.get(step)?.leaves.length ?? 0;
    this.groups.set(e, { members, root: src, shape: src.out, label, extraLeaves });
    return step;
  }

  /**
   * The equation computing `v` if `accept` takes it, directly or through reshapes (they keep
   * the row-major order, so its store index is the group's), each read only by the next.
   */
  behind(v: Var, accept: (e: Eqn) => boolean): { eqn: Eqn; views: Eqn[] } | null {
    const views: Eqn[] = [];
    let prod = this.producer.get(v.id);
    while (
      prod && !isMultiEqn(prod) && !!prod.prim.view &&
      this.consumers.get(prod.inputs[0].id)?.size === 1
    ) {
      views.push(prod);
      prod = this.producer.get(prod.inputs[0].id);
    }
    if (!prod || isMultiEqn(prod) || this.placed.has(prod) || !accept(prod)) return null;
    return { eqn: prod, views };
  }

  /**
   * Multi-output fusion, over the planned kernels: a small elementwise kernel (a fused group or
   * one op) joins another of its shape — at the later one's place when no kernel between them
   * reads what it stores, at its own when none between makes what the later one reads — or of a
   * shape it broadcasts into (its values then stored once, at the elements whose broadcast
   * coordinates are 0). The merged kernel computes both this.groups' values once and stores those
   * that other kernels or the caller read. Groups stepping the components of one state from the
   * same inputs, and a value several this.groups read, become one dispatch instead of several (on
   * llvmpipe a dispatch costs 30–100 µs before any work). Last, a slice of a kernel's value is
   * stored by that kernel (at the window's elements).
   */
  mergeKernels(steps: Step[]): Step[] {
    interface Mergeable {
      members: Set<Eqn>;
      sums: Map<number, LeafRead>;
    }
    const info = new Map<Step, Mergeable>();
    for (const [key, step] of this.groupAt) {
      // (a concatenation stays apart for its pieces' producer to store: `storePadSumsInProducers`)
      if (step.kind !== "fused" || this.padSumPieces(step)) continue;
      const sums = new Map<number, LeafRead>();
      step.sums?.forEach((sum, i) => sum && sums.set(step.leaves[i].id, sum));
      info.set(step, { members: new Set(this.groups.get(key)!.members), sums });
    }
    for (const s of steps) {
      if (s.kind === "eqn" && elementwise(s.eqn) && !isConstant(s.eqn)) {
        info.set(s, { members: new Set([s.eqn]), sums: new Map() });
      }
    }
    // how many kernels (and program outputs) read each value
    const readers = new Map<number, number>();
    const ids = (vs: readonly Var[]) => new Set(vs.map((v) => v.id));
    const count = (vs: Set<number>, d: number) => {
      for (const id of vs) readers.set(id, (readers.get(id) ?? 0) + d);
    };
    for (const s of steps) count(ids(stepInputs(s)), 1);
    count(ids(this.p.outputs), 1);

    const merge = (a: Step, b: Step): Step | null => {
      const ia = info.get(a)!, ib = info.get(b)!;
      // a value summed or sliced as it is read must be stored before the kernel reading it runs
      const summedInputs = [...ia.sums.values(), ...ib.sums.values()].map((sum) => sum.input.id);
      const made = ids([...stepOutputs(a), ...stepOutputs(b)]);
      if (summedInputs.some((id) => made.has(id))) return null;
      const readA = ids(stepInputs(a)), readB = ids(stepInputs(b));
      const readElsewhere = (v: Var) =>
        readers.get(v.id)! - Number(readA.has(v.id)) - Number(readB.has(v.id)) > 0;
      // the merged kernel runs over the larger of the two shapes; the other's values are
      // computed at each of its elements and stored once (`broadcastStore`)
      const [sa, sb] = [stepOutputs(a)[0], stepOutputs(b)[0]];
      // a padded read's box is over its kernel's own index space
      const padded = [...ia.sums.values(), ...ib.sums.values()].some(isPadded);
      if (padded && !sameShape(sa, sb)) return null;
      const big = sizeOf(sa.shape) > sizeOf(sb.shape) ? sa : sb;
      const stored = [...stepOutputs(b), ...stepOutputs(a)].filter(readElsewhere);
      const out = stored.find((v) => sameShape(v, big));
      if (!out) return null;
      const rest = stored.filter((v) => v !== out);
      const members = new Set([...ia.members, ...ib.members]);
      const code = this.emit(members, this.producer.get(out.id) as Eqn, undefined, undefined, rest);
      if (code.leaves.length + stored.length > this.maxLeaves + 1) return null;
      for (const o of code.extraOuts ?? []) {
        if (!sameShape(o.v, big)) o.at = broadcastStore(o.v.shape, big.shape);
      }
      const sums = new Map([...ia.sums, ...ib.sums]);
      const leafSums = code.leaves.map((l) => sums.get(l.id));
      const step: Step = {
        kind: "fused",
        out,
        ...code,
        label: `fused[${code.label}]`,
        ...(leafSums.some((x) => x) ? { sums: leafSums } : {}),
      };
      count(readA, -1);
      count(readB, -1);
      count(ids(stepInputs(step)), 1);
      info.set(step, { members, sums });
      return step;
    };

    const list = [...steps];
    for (let i = list.length - 1; i > 0; i--) {
      if (!info.has(list[i])) continue;
      let shape = stepOutputs(list[i])[0]; // the kernel's shape, larger once it takes in more
      if (sizeOf(shape.shape) > MERGE_MAX_ELEMS) continue;
      // what the kernels between a candidate and list[i] (those staying put) read and make:
      // the merged kernel runs at list[i]'s place when none of them reads the candidate's
      // values, or at the candidate's when none of them makes a value list[i] reads
      const readBetween = new Set<number>(), madeBetween = new Set<number>();
      for (let j = i - 1; j >= 0 && i - j <= MERGE_WINDOW; j--) {
        const a = list[j];
        const outs = stepOutputs(a);
        const fits = sameShape(outs[0], shape) ||
          (sizeOf(outs[0].shape) <= MERGE_MAX_ELEMS &&
            (broadcastsInto(outs[0], shape) || broadcastsInto(shape, outs[0])));
        if (info.has(a) && fits) {
          const atLater = !outs.some((v) => readBetween.has(v.id));
          const atEarlier = !stepInputs(list[i]).some((v) => madeBetween.has(v.id));
          const merged = (atLater || atEarlier) && merge(a, list[i]);
          if (merged && atLater) {
            list.splice(j, 1);
            list[--i] = merged;
            shape = stepOutputs(merged)[0];
            continue;
          }
          if (merged) { // it takes in more when the walk reaches it
            list.splice(i, 1);
            list[j] = merged;
            break;
          }
        }
        for (const v of stepInputs(a)) readBetween.add(v.id);
        for (const v of outs) madeBetween.add(v.id);
      }
    }
    return this.storeSlicesInProducers(list);
  }

  /**
   * A kernel that only adds zero-padded values whose boxes tile its result — a concatenation,
   * as the gradient of slices comes out: the cotangent of a GRU's gate pre-activations
   * assembled from its three gates' — goes when one earlier kernel computes every piece over
   * the piece's own shape: that kernel stores each piece into its box of the result too (a
   * store per element instead of a kernel reading every piece), and stops storing a piece
   * nothing else reads. Runs after `mergeKernels` (which leaves these kernels apart: the
   * producer of every piece is often a merged kernel).
   */
  storePadSumsInProducers(list: Step[]): Step[] {
    const readCount = new Map<number, number>();
    const count = (s: Step, d: number) => {
      for (const v of new Set(stepInputs(s))) readCount.set(v.id, (readCount.get(v.id) ?? 0) + d);
    };
    list.forEach((s) => count(s, 1));
    for (const v of this.p.outputs) readCount.set(v.id, (readCount.get(v.id) ?? 0) + 1);
    for (let k = list.length - 1; k >= 0; k--) {
      const sum = list[k];
      const pieces = this.padSumPieces(sum);
      if (!pieces || sum.kind !== "fused") continue;
      const at = list.findIndex((s, j) =>
        j < k && s.kind === "fused" && pieces.every(({ input }) => stepOutputs(s).includes(input))
      );
      const host = list[at];
      if (at < 0 || host.kind !== "fused") continue;
      if (pieces.some(({ input }) => !sameShape(input, host.out))) continue;
      const own = host.extraOuts ?? [];
      // (a piece stored at a window or broadcast is computed over another index space)
      const nameOf = (v: Var) =>
        v === host.out ? host.expr : own.find((o) => o.v === v && !o.at)?.name;
      if (pieces.some(({ input }) => nameOf(input) === undefined)) continue;
      if (host.leaves.length + stepOutputs(host).length + 1 > this.maxLeaves + 1) continue;
      count(sum, -1);
      list.splice(k, 1);
      const stores = pieces.map(({ input, lo }) => ({
        v: sum.out,
        name: nameOf(input)!,
        at: boxStore(input.shape, lo, sum.out.shape),
      }));
      // pieces no other step (nor the caller) reads are no longer stored on their own
      const kept = own.filter((o) => o.at || (readCount.get(o.v.id) ?? 0) > 0);
      list[at] = { ...host, extraOuts: [...kept, ...stores] };
    }
    return list;
  }

  /**
   * The pieces of a plain fused kernel that only adds zero-padded reads of values whose boxes
   * tile its result, each piece read once, in full and in order; null for any other kernel.
   */
  padSumPieces(s: Step): PaddedLeaf[] | null {
    if (s.kind !== "fused" || s.extraOuts?.length || !s.sums) return null;
    const root = this.producer.get(s.out.id);
    if (!root || isMultiEqn(root) || this.groupAt.get(root) !== s) return null;
    const members = this.groups.get(root)?.members;
    if (!members || [...members].some((m) => m.prim.name !== "add")) return null;
    const operands = [...members].flatMap((m) =>
      m.inputs.filter((v) => {
        const prod = this.producer.get(v.id);
        return !(prod && members.has(prod as Eqn));
      })
    );
    if (operands.length !== s.leaves.length) return null; // some value added twice
    const pieces = s.sums.map((r, i) => {
      if (!r || !isPadded(r) || !sameShape(s.leaves[i], s.out)) return null;
      const contiguous = stridesOf(r.input.shape).every((st, a) => st === r.strides[a]);
      return contiguous && r.size.every((d, a) => d === r.input.shape[a]) ? r : null;
    });
    if (pieces.some((r) => r === null)) return null;
    const boxes = pieces as PaddedLeaf[];
    // disjoint boxes whose volumes add up to the result's: they tile it
    const volume = boxes.reduce((n, b) => n + sizeOf(b.size), 0);
    if (volume !== sizeOf(s.out.shape)) return null;
    const overlap = (a: PaddedLeaf, b: PaddedLeaf) =>
      a.lo.every((l, i) => l < b.lo[i] + b.size[i] && b.lo[i] < l + a.size[i]);
    if (boxes.some((a, i) => boxes.some((b, j) => j > i && overlap(a, b)))) return null;
    return boxes;
  }

  /**
   * A slice of a fused kernel's value (the next key of a split) is stored by that kernel too,
   * and the slice's own step goes.
   */
  storeSlicesInProducers(list: Step[]): Step[] {
    for (let k = list.length - 1; k >= 0; k--) {
      const cut = list[k];
      if (cut.kind !== "eqn" || isMultiEqn(cut.eqn) || cut.eqn.prim !== slicePrimitive) continue;
      const v = cut.eqn.inputs[0];
      const at = list.findIndex((s) => s.kind === "fused" && stepOutputs(s).includes(v));
      const host = list[at];
      if (at < 0 || host.kind !== "fused" || !sameShape(v, host.out)) continue;
      const { start, step } = cut.eqn.params as { start: number[]; step: number[] };
      if (step.some((st) => st <= 0) || sizeOf(cut.eqn.out.shape) === 0) continue;
      if (host.leaves.length + stepOutputs(host).length + 1 > this.maxLeaves + 1) continue;
      const name = v === host.out ? host.expr : host.extraOuts!.find((o) => o.v === v)!.name;
      const stored = {
        v: cut.eqn.out,
        name,
        at: windowStore(v.shape, start, step, cut.eqn.out.shape),
      };
      list[at] = { ...host, extraOuts: [...host.extraOuts ?? [], stored] };
      list.splice(k, 1);
    }
    return list;
  }
}

function broadcastsInto(a: Var, b: Var) {
  return a.shape.length <= b.shape.length &&
    a.shape.every((d, i) => d === 1 || d === b.shape[b.shape.length - a.shape.length + i]);
}

function elementwise(e: AnyEqn | undefined): e is Eqn {
  return !!e && !isMultiEqn(e) && !!e.prim.fusion && sizeOf(e.out.shape) > 0;
}

/** Computed per element from its position (`Primitive.positional`): plain fused kernels only. */
function positional(e: AnyEqn | undefined): e is Eqn {
  return !!e && !isMultiEqn(e) && !!e.prim.positional && sizeOf(e.out.shape) > 0 &&
    (e.prim.positional.applies?.(e.inputs, e.params) ?? true);
}

function prologueAxesOk(e: Eqn) {
  if (e.prim.kind !== "reduction" || !PROLOGUE_OPS.includes(e.params.op)) return false;
  const axes = e.params.axes as number[];
  return axes.length > 0 && axes.every((a, k) => k === 0 || a === axes[k - 1] + 1);
}

function isMatmul(e: Eqn) {
  return e.prim.kind === "matmul";
}

function isFoldingReduce(e: Eqn) {
  return prologueAxesOk(e) && e.out.dtype === "f32";
}

/**
 * An equation without inputs that a kernel computes per element (a `full`, an `iota`): copied
 * into every group that reads it instead of being stored.
 */
export function isConstant(e: AnyEqn): boolean {
  return !isMultiEqn(e) && e.inputs.length === 0 && !!(e.prim.fusion || e.prim.positional);
}

/**
 * How a kernel reads a `SummedLeaf` (`leaf` its shape) of the stored tensor of shape
 * `inputShape` over a result of shape `shape`: the strides of the sum's first term, and its
 * terms' count and spacing (the summed axes are one contiguous run of a row-major tensor).
 */
export function summedRead(
  sum: SummedLeaf,
  inputShape: readonly number[],
  leaf: Var,
  shape: readonly number[],
) {
  const strides = stridesOf(inputShape);
  const a0 = sum.axes[0], a1 = sum.axes[sum.axes.length - 1] + 1;
  const kept = inputShape.flatMap((d, i) => (i < a0 || i >= a1) && d !== 1 ? [strides[i]] : []);
  let next = 0;
  const leafStrides = leaf.shape.map((d) => d === 1 ? 0 : kept[next++]);
  const lead = shape.length - leaf.shape.length;
  return {
    strides: shape.map((_, i) => i < lead ? 0 : leafStrides[i - lead]),
    sum: { extent: sizeOf(inputShape.slice(a0, a1)), stride: strides[a1 - 1] },
  };
}

/** `summedRead` per summed leaf: its shapes are fixed, so a replayed call derives nothing. */
const summedReads = new WeakMap<SummedLeaf, ReturnType<typeof summedRead>>();

/**
 * What a kernel binds for a group's leaves (fused, prologue or epilogue): the tensors and how
 * each is read over `shape` — broadcast strides, or a `SummedLeaf`'s strides and terms.
 */
export function leafOperands(
  s: { leaves: readonly Var[] } & LeafSums,
  tensors: readonly Tensor[],
  shape: readonly number[],
) {
  return tensors.map((t, i) => {
    const leaf = s.leaves[i], r = s.sums?.[i];
    const operand = { storage: t.storage as GpuStorage, dtype: leaf.dtype, offset: 0 };
    if (!r) return { ...operand, strides: broadcastStrides(t.shape, shape) };
    if (isPadded(r)) {
      // (planned only where the kernel's shape is the pad's: the box is over the same axes)
      return { ...operand, strides: r.strides, offset: r.offset, bounds: r };
    }
    if (!isSummed(r)) {
      const lead = shape.length - leaf.shape.length;
      const strides = shape.map((_, k) => k < lead ? 0 : r.strides[k - lead]);
      return { ...operand, strides, offset: r.offset };
    }
    let summed = summedReads.get(r);
    if (!summed) summedReads.set(r, summed = summedRead(r, t.shape, leaf, shape));
    return { ...operand, ...summed };
  });
}

/** The values a fused or epilogue kernel's leaves are read from (a summed leaf's input). */
export function leafSources(s: FusedCode & LeafSums): Var[] {
  return s.leaves.map((v, i) => s.sums?.[i]?.input ?? v);
}

/**
 * Every step reads only program inputs, constants and values earlier steps made: a plan that
 * breaks this would fail mid-call ("used before it was computed"), so it fails at compile time
 * with the step named.
 */
export function checkPlanOrder(p: Program, steps: readonly Step[]): void {
  const made = new Set<number>(p.inputs.map((v) => v.id));
  steps.forEach((s, i) => {
    for (const v of stepInputs(s)) {
      if (!v.constant && !made.has(v.id)) {
        const label = s.kind === "eqn" ? s.eqn.prim.name : `${s.kind} ${s.label}`;
        throw new Error(
          `internal: jit plan step ${i} (${label}) reads ${varText(v)} before any step makes it`,
        );
      }
    }
    for (const v of stepOutputs(s)) made.add(v.id);
  });
}

/** The values a step makes. */
export function stepOutputs(s: Step): readonly Var[] {
  if (s.kind === "eqn") return isMultiEqn(s.eqn) ? s.eqn.outs : [s.eqn.out];
  if (s.kind === "fusedReduce") return [s.eqn.out];
  if (s.kind === "fused" && s.extraOuts) {
    // (several values stored into windows of one result name it once)
    const outs = [s.out, ...s.extraOuts.map((o) => o.v)];
    return outs.filter((v, k) => outs.findIndex((w) => w.id === v.id) === k);
  }
  return [s.out];
}

/** The values a step reads. */
export function stepInputs(s: Step): readonly Var[] {
  if (s.kind === "eqn") return s.eqn.inputs;
  if (s.kind === "matmulEpilogue") {
    return [...s.mm.inputs, ...(s.mm2?.inputs ?? []), ...leafSources(s)];
  }
  if (s.kind === "reduceEpilogue") return [...stepInputs(s.reduce), ...leafSources(s)];
  if (s.kind === "fused") return leafSources(s);
  return leafSources(s);
}
