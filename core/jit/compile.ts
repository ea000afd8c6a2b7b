/**
 * Compiling a traced program: dead-code elimination, common-subexpression elimination,
 * fusion of elementwise chains into single kernels (WebGPU), and an executor that frees
 * each intermediate after its last use and sends a call's work in one submission.
 */
import { broadcastStrides, sizeOf } from "../shape.ts";
import { GpuStorage, runtime } from "../backend/webgpu/runtime.ts";
import { runElementwise } from "../backend/webgpu/kernels/elementwise.ts";
import { runReduce } from "../backend/webgpu/kernels/reduce.ts";
import { bind } from "../primitive.ts";
import { ELEMENTWISE_HELPERS } from "../primitives/elementwise.ts";
import { Tensor } from "../tensor.ts";
import type { Eqn, Program, Var } from "./ir.ts";

/** Remove equations whose results no output needs. */
export function eliminateDeadCode(p: Program): Program {
  const live = new Set<number>(p.outputs.map((v) => v.id));
  const kept: Eqn[] = [];
  for (let i = p.eqns.length - 1; i >= 0; i--) {
    const e = p.eqns[i];
    if (!live.has(e.out.id)) continue;
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
  const eqns: Eqn[] = [];
  for (const e of p.eqns) {
    const inputs = e.inputs.map(sub);
    // creation of random bits is pure in its key, so it is safe to merge too
    const key = `${e.prim.name}|${JSON.stringify(e.params)}|${inputs.map((v) => v.id).join(",")}`;
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

/** One executable step: a primitive, or a fused elementwise kernel computing `out`. */
type Step =
  | { kind: "eqn"; eqn: Eqn }
  | { kind: "fused"; out: Var; leaves: Var[]; prelude: string; expr: string; label: string }
  | {
    kind: "fusedReduce";
    eqn: Eqn;
    source: Var;
    leaves: Var[];
    prelude: string;
    expr: string;
    label: string;
  };

const PROLOGUE_OPS = ["sum", "max", "min", "prod"];

/**
 * Plan fusion: an elementwise result used exactly once, by an elementwise equation of the
 * same output shape, is computed inside its consumer's kernel instead of materialised.
 */
function planSteps(p: Program, fuse: boolean, maxLeaves: number): Step[] {
  if (!fuse) return p.eqns.map((eqn) => ({ kind: "eqn", eqn }));
  const uses = new Map<number, number>();
  for (const e of p.eqns) for (const v of e.inputs) uses.set(v.id, (uses.get(v.id) ?? 0) + 1);
  for (const v of p.outputs) uses.set(v.id, (uses.get(v.id) ?? 0) + 1);
  // distinct consuming equations (x·x uses x twice but in one place)
  const consumers = new Map<number, Set<Eqn | null>>();
  for (const e of p.eqns) {
    for (const v of e.inputs) {
      (consumers.get(v.id) ?? consumers.set(v.id, new Set()).get(v.id)!).add(e);
    }
  }
  for (const v of p.outputs) {
    (consumers.get(v.id) ?? consumers.set(v.id, new Set()).get(v.id)!).add(null);
  }
  const single = (v: Var) => consumers.get(v.id)?.size === 1 && !consumers.get(v.id)!.has(null);
  const producer = new Map<number, Eqn>();
  for (const e of p.eqns) producer.set(e.out.id, e);
  // A producer whose result broadcasts into its consumer's shape can be recomputed per output
  // element (cheap for elementwise work; saves a dispatch and a buffer).
  const broadcastsInto = (a: Var, b: Var) =>
    a.shape.length <= b.shape.length &&
    a.shape.every((d, i) => d === 1 || d === b.shape[b.shape.length - a.shape.length + i]);
  // Constants (full) are literals: inlined into every elementwise consumer. Other
  // elementwise results are inlined when their only use is an elementwise op.
  const inlinable = (v: Var, consumer: Eqn) => {
    const prod = producer.get(v.id);
    if (!prod || !prod.prim.fusion || !consumer.prim.fusion || sizeOf(v.shape) === 0) return false;
    if (prod.prim.name === "full") return true;
    return single(v) && broadcastsInto(prod.out, consumer.out);
  };
  // A reduction reads its single-use elementwise producer on the fly (a fused prologue).
  const prologueOf = (e: Eqn): Eqn | null => {
    if (e.prim.name !== "reduce" || !PROLOGUE_OPS.includes(e.params.op)) return null;
    const axes = e.params.axes as number[];
    if (axes.length === 0 || axes.some((a, k) => k > 0 && a !== axes[k - 1] + 1)) return null;
    const prod = producer.get(e.inputs[0].id);
    if (!prod || !prod.prim.fusion || prod.prim.name === "full" || !single(prod.out)) return null;
    return sizeOf(prod.out.shape) > 0 ? prod : null;
  };
  const consumer = new Map<number, Eqn>();
  for (const e of p.eqns) for (const v of e.inputs) consumer.set(v.id, e);
  // a non-constant result inlined into its (only) consumer is not a group root itself
  const absorbed = (e: Eqn) => {
    const c = consumer.get(e.out.id);
    if (e.prim.name === "full" || !single(e.out) || c === undefined) return false;
    return inlinable(e.out, c) || prologueOf(c) === e;
  };
  const build = (root: Eqn) => {
    const leaves: Var[] = [];
    const inlined: Var[] = [];
    const names: string[] = [];
    const stmts: string[] = [];
    const bound = new Map<number, string>(); // value id → its WGSL name in the kernel
    const leaf = (v: Var) => {
      let i = leaves.findIndex((l) => l.id === v.id);
      if (i < 0) i = leaves.push(v) - 1;
      return `v${i}`;
    };
    const emit = (eq: Eqn): string => {
      const seen = bound.get(eq.out.id);
      if (seen) return seen;
      names.push(eq.prim.name);
      const args = eq.inputs.map((v) => {
        if (!inlinable(v, eq)) return leaf(v);
        inlined.push(v);
        return emit(producer.get(v.id)!);
      });
      const name = `f${bound.size}`;
      bound.set(eq.out.id, name);
      stmts.push(`  let ${name} = ${eq.prim.fusion!(eq.inputs, eq.params, args)};`);
      return name;
    };
    const rootName = emit(root);
    return {
      leaves,
      inlined, // one entry per inlined use, so fully inlined producers are skipped
      prelude: stmts.join("\n"),
      expr: rootName,
      names: names.filter((n) => n !== "full").reverse(),
    };
  };
  const groups = new Map<Eqn, Step>();
  const inlinedUses = new Map<number, number>();
  const accept = (e: Eqn, g: ReturnType<typeof build>, step: Step) => {
    groups.set(e, step);
    for (const v of g.inlined) inlinedUses.set(v.id, (inlinedUses.get(v.id) ?? 0) + 1);
  };
  for (const e of p.eqns) {
    const prologue = prologueOf(e);
    if (prologue) {
      const g = build(prologue);
      if (g.leaves.length > maxLeaves) continue;
      g.inlined.push(prologue.out);
      accept(e, g, {
        kind: "fusedReduce",
        eqn: e,
        source: prologue.out,
        leaves: g.leaves,
        prelude: g.prelude,
        expr: g.expr,
        label: `reduce[${e.params.op}∘${g.names.join(",")}]`,
      });
      continue;
    }
    if (!e.prim.fusion || absorbed(e) || !e.inputs.some((v) => inlinable(v, e))) continue;
    const g = build(e);
    if (g.leaves.length > maxLeaves) continue; // too many bindings: leave this chain unfused
    accept(e, g, {
      kind: "fused",
      out: e.out,
      leaves: g.leaves,
      prelude: g.prelude,
      expr: g.expr,
      label: `fused[${g.names.join(",")}]`,
    });
  }
  // an equation is skipped when every use of its result was inlined into an accepted group
  const steps: Step[] = [];
  for (const e of p.eqns) {
    const g = groups.get(e);
    if (g) {
      steps.push(g);
      continue;
    }
    const inl = inlinedUses.get(e.out.id) ?? 0;
    if (inl > 0 && inl >= (uses.get(e.out.id) ?? 0)) continue;
    steps.push({ kind: "eqn", eqn: e });
  }
  return steps;
}

/** A program ready to run on concrete tensors. */
export class Compiled {
  readonly steps: Step[];
  /** Index of the step after which each value is no longer needed. */
  readonly #lastUse = new Map<number, number>();

  constructor(readonly program: Program, readonly backend: "webgpu" | "reference") {
    // one binding is the output; the rest may be fused inputs
    const maxLeaves = backend === "webgpu" && runtime.info
      ? runtime.info.limits.maxStorageBuffersPerShaderStage - 1
      : 7;
    this.steps = planSteps(program, backend === "webgpu", maxLeaves);
    this.steps.forEach((s, i) => {
      const ins = s.kind === "eqn" ? s.eqn.inputs : s.leaves;
      for (const v of ins) this.#lastUse.set(v.id, i);
    });
    for (const v of program.outputs) this.#lastUse.set(v.id, Infinity);
  }

  /** Number of kernels (steps) a call runs, views excluded. */
  get kernelCount(): number {
    return this.steps.filter((s) => s.kind === "fused" || !s.eqn.prim.view).length;
  }

  /**
   * Run on concrete inputs. `donated[i]` hands input i over to the program: it is disposed
   * as soon as the program no longer reads it, so its memory serves the outputs.
   */
  run(args: readonly Tensor[], donated: readonly boolean[] = []): Tensor[] {
    const env = new Map<number, Tensor>();
    this.program.inputs.forEach((v, i) => env.set(v.id, args[i]));
    // intermediates this call made, plus donated inputs: freed after their last use
    const owned = new Set<Tensor>(args.filter((_, i) => donated[i]));
    const outputs = new Set(this.program.outputs.map((v) => v.id));
    const get = (v: Var) => {
      if (v.constant) return v.constant;
      const t = env.get(v.id);
      if (!t) throw new Error(`internal: jit value ${v.id} used before it was computed`);
      return t;
    };
    const execute = () => {
      this.steps.forEach((s, i) => {
        let out: Tensor;
        let inputs: readonly Var[];
        if (s.kind === "eqn") {
          inputs = s.eqn.inputs;
          out = bind(s.eqn.prim, inputs.map(get), s.eqn.params);
          env.set(s.eqn.out.id, out);
        } else if (s.kind === "fused") {
          inputs = s.leaves;
          out = runFused(s, s.leaves.map(get));
          env.set(s.out.id, out);
        } else {
          inputs = s.leaves;
          out = runFusedReduce(s, s.leaves.map(get));
          env.set(s.eqn.out.id, out);
        }
        owned.add(out);
        // free what no later step reads
        for (const v of inputs) {
          const t = env.get(v.id);
          if (t && this.#lastUse.get(v.id) === i && owned.has(t) && !outputs.has(v.id)) {
            t.dispose();
            owned.delete(t);
          }
        }
      });
    };
    if (this.backend === "webgpu") runtime.inOneSubmission(execute);
    else execute();
    const result = this.program.outputs.map(get);
    // a donated input the program never read (or only passed through) is released too
    const kept = new Set(result);
    for (const t of owned) if (!kept.has(t) && args.includes(t)) t.dispose();
    return result;
  }
}

function runFused(s: Extract<Step, { kind: "fused" }>, inputs: Tensor[]): Tensor {
  const storage = new GpuStorage(sizeOf(s.out.shape) * 4);
  const operands = inputs.map((t, i) => ({
    storage: t.storage as GpuStorage,
    dtype: s.leaves[i].dtype,
    strides: broadcastStrides(t.shape, s.out.shape),
    offset: 0,
  }));
  runtime.enqueue(() =>
    runElementwise(
      { label: s.label, expr: s.expr, prelude: s.prelude, helpers: ELEMENTWISE_HELPERS },
      operands,
      s.out.shape,
      s.out.dtype,
      storage,
    )
  );
  return new Tensor(s.out.shape, s.out.dtype, storage);
}

function runFusedReduce(s: Extract<Step, { kind: "fusedReduce" }>, inputs: Tensor[]): Tensor {
  const shape = s.source.shape;
  const axes = s.eqn.params.axes as number[];
  const a0 = axes[0], a1 = axes[axes.length - 1] + 1;
  const out = s.eqn.out;
  const storage = new GpuStorage(sizeOf(out.shape) * 4);
  const leaves = inputs.map((t, i) => ({
    storage: t.storage as GpuStorage,
    dtype: s.leaves[i].dtype,
    strides: broadcastStrides(t.shape, shape),
  }));
  runtime.enqueue(() =>
    runReduce(
      s.label,
      s.eqn.params.op,
      s.source.dtype,
      { leaves, prelude: s.prelude, expr: s.expr, helpers: ELEMENTWISE_HELPERS, shape },
      sizeOf(shape.slice(0, a0)),
      sizeOf(shape.slice(a0, a1)),
      sizeOf(shape.slice(a1)),
      storage,
    )
  );
  return new Tensor(out.shape, out.dtype, storage);
}
