/**
 * Running a traced program: `Compiled` simplifies it and plans its kernels (plan.ts) on
 * WebGPU, then on each call frees each intermediate after its last use and sends the call's
 * work in one submission (two when a small output the caller reads is staged first).
 */
import { sizeOf } from "../shape.ts";
import { GpuStorage, runtime } from "../backend/webgpu/runtime.ts";
import {
  adapterClass,
  maxEpilogueElems as maxEpilogueElemsFor,
} from "../backend/webgpu/adapter_profile.ts";
import { runElementwise } from "../backend/webgpu/kernels/elementwise.ts";
import { runReduce } from "../backend/webgpu/kernels/reduce.ts";
import { encodeMatmul } from "../primitives/matmul.ts";
import { bind, bindMulti, type KernelMemo } from "../primitive.ts";
import { ELEMENTWISE_HELPERS } from "../primitives/elementwise.ts";
import { shareStorage, Tensor } from "../tensor.ts";
import { keep } from "../memory.ts";
import { simplify } from "./simplify.ts";
import { type Eqn, isMultiEqn, type Program, type Var, varText } from "./ir.ts";

import { eliminateCommonSubexpressions, eliminateDeadCode } from "./passes.ts";
import {
  checkPlanOrder,
  FUSED_HELPERS,
  type FusedCode,
  type FusedReduce,
  isConstant,
  isSummed,
  leafOperands,
  leafSources,
  type LeafSums,
  type PlainReduce,
  planSteps,
  type Step,
  stepInputs,
  stepOutputs,
} from "./plan.ts";

export { eliminateCommonSubexpressions, eliminateDeadCode } from "./passes.ts";

/** A program ready to run on concrete tensors. */
export class Compiled {
  readonly steps: Step[];
  /** The program as run: on WebGPU, rewritten (`simplify`) so more of it fuses. */
  readonly program: Program;
  /** Index of the step after which each value is no longer needed. */
  readonly #lastUse = new Map<number, number>();
  /** Small outputs (by position) made before the last step: the ones worth staging. */
  readonly #stageable = new Map<number, number>();
  /**
   * How the caller reads each stageable output: the last call whose value it read and the
   * calls between its last two reads. A call that many calls after the last read is predicted
   * to be read and its output staged (every call when reading every step; every tenth when
   * reading every tenth).
   */
  readonly #reads = new Map<number, { last: number; every: number }>();
  #calls = 0;
  /** Per step, what its kernel family derived on the first call (`KernelMemo`). */
  readonly #memos: KernelMemo[] = [];
  /**
   * Constants the program returns (a scan body's per-step reward of 1), by step: made on the
   * first call and kept, each call returning a handle on them instead of filling them again.
   */
  readonly #keptConstants = new Map<number, Tensor | null>();

  constructor(program: Program, readonly backend: "webgpu" | "reference") {
    // (the rewrites may make one value twice: windows of random bits computed on their own)
    this.program = program = backend === "webgpu"
      ? eliminateDeadCode(eliminateCommonSubexpressions(simplify(program)))
      : program;
    // one binding is the output; the rest may be fused inputs
    const maxLeaves = backend === "webgpu" && runtime.info
      ? runtime.info.limits.maxStorageBuffersPerShaderStage - 1
      : 7;
    const maxEpilogueElems = runtime.info
      ? maxEpilogueElemsFor(adapterClass(runtime.info))
      : Infinity;
    this.steps = planSteps(program, backend === "webgpu", maxLeaves, maxEpilogueElems);
    checkPlanOrder(program, this.steps);
    this.steps.forEach((s, i) => {
      const ins = stepInputs(s);
      for (const v of ins) this.#lastUse.set(v.id, i);
    });
    for (const v of program.outputs) this.#lastUse.set(v.id, Infinity);
    if (backend === "webgpu") {
      this.#findStageable();
      const returned = new Set(program.outputs.map((v) => v.id));
      this.steps.forEach((s, i) => {
        if (
          s.kind === "eqn" && !isMultiEqn(s.eqn) && isConstant(s.eqn) &&
          returned.has(s.eqn.out.id) && sizeOf(s.eqn.out.shape) * 4 <= MAX_KEPT_CONSTANT_BYTES
        ) this.#keptConstants.set(i, null);
      });
    }
  }

  /**
   * Outputs of at most STAGE_BYTES made by a step before the last (a loss before its
   * gradient): step index by output position.
   */
  #findStageable(): void {
    const madeAt = new Map<number, number>();
    this.steps.forEach((s, i) => {
      for (const v of stepOutputs(s)) madeAt.set(v.id, i);
    });
    this.program.outputs.forEach((v, j) => {
      const at = madeAt.get(v.id);
      const small = sizeOf(v.shape) * 4 <= STAGE_BYTES;
      if (small && at !== undefined && at < this.steps.length - 1) this.#stageable.set(j, at);
    });
  }

  /**
   * The kernels a call runs, one line each: kernel, result, and the values it reads (views
   * and scan's inner kernels are not listed).
   */
  planText(): string {
    const lines: string[] = [];
    for (const s of this.steps) {
      if (s.kind === "eqn" && (isMultiEqn(s.eqn) || s.eqn.prim.view)) {
        if (isMultiEqn(s.eqn)) {
          lines.push(`${s.eqn.prim.name} → ${s.eqn.outs.map(varText)}`);
          const inner = s.eqn.prim.planText?.(s.eqn.params);
          if (inner) lines.push(...inner.split("\n").map((l) => `  ${l}`));
        }
        continue;
      }
      const label = s.kind === "eqn" ? s.eqn.prim.name : s.label;
      const outs = stepOutputs(s).map(varText).join(" ");
      // a leaf summed as it is read shows as Σ[axes] of the value it reads
      const leafText = (f: FusedCode & LeafSums) =>
        leafSources(f).map((v, k) => {
          const r = f.sums?.[k];
          return (r ? (isSummed(r) ? `Σ[${r.axes}]` : "window of ") : "") + varText(v);
        });
      const reads = s.kind === "fused"
        ? leafText(s)
        : s.kind === "matmulEpilogue"
        ? [...s.mm.inputs, ...(s.mm2?.inputs ?? [])].map(varText).concat(leafText(s))
        : s.kind === "fusedReduce"
        ? leafText(s)
        : s.kind === "reduceEpilogue"
        ? [...(s.reduce.kind === "eqn" ? s.reduce.eqn.inputs.map(varText) : leafText(s.reduce))]
          .concat(leafText(s))
        : stepInputs(s).map(varText);
      lines.push(`${label}: ${outs} ← ${reads.join(" ")}`);
    }
    return lines.join("\n");
  }

  /** Number of kernels (steps) a call runs, views excluded. */
  get kernelCount(): number {
    let n = 0;
    for (const s of this.steps) {
      if (s.kind !== "eqn") n++;
      else if (isMultiEqn(s.eqn)) n += s.eqn.prim.kernelCount(s.eqn.params);
      else if (!s.eqn.prim.view) n++;
    }
    return n;
  }

  /** The caller read output `j` of call `call`. */
  #readOf(j: number, call: number): void {
    const r = this.#reads.get(j);
    if (!r) this.#reads.set(j, { last: call, every: 0 });
    else if (call > r.last) [r.every, r.last] = [call - r.last, call];
  }

  /**
   * `run`, with every result a handle the caller owns: a result that is a non-donated input,
   * a constant, or an earlier result gets its own handle on the same storage.
   */
  runOwned(args: readonly Tensor[], donated: readonly boolean[] = []): Tensor[] {
    const outs = this.run(args, donated);
    const given = new Set<Tensor>([
      ...args.filter((_, n) => !donated[n]),
      ...this.program.outputs.flatMap((v) => (v.constant ? [v.constant] : [])),
    ]);
    return outs.map((t) => {
      if (given.has(t)) return shareStorage(t);
      given.add(t);
      return t;
    });
  }

  /** Free the values step `i` read for the last time. */
  #free(
    inputs: readonly Var[],
    i: number,
    env: Map<number, Tensor>,
    owned: Set<Tensor>,
    outputs: Set<number>,
  ): void {
    for (const v of inputs) {
      const t = env.get(v.id);
      if (t && this.#lastUse.get(v.id) === i && owned.has(t) && !outputs.has(v.id)) {
        t.dispose();
        owned.delete(t);
      }
    }
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
    // outputs this call is predicted to have read, by the step that makes them
    const call = this.#calls++;
    const stageAfter = new Map<number, number[]>();
    for (const [j, r] of this.#reads) {
      if (call - r.last !== r.every) continue;
      const at = this.#stageable.get(j)!;
      stageAfter.set(at, [...stageAfter.get(at) ?? [], j]);
    }
    let staged = false;
    const stage = (i: number) => {
      for (const j of stageAfter.get(i) ?? []) {
        const storage = get(this.program.outputs[j]).storage as GpuStorage;
        staged = runtime.stageForRead(storage) || staged;
      }
    };
    const execute = () => {
      this.steps.forEach((s, i) => {
        let out: Tensor;
        let inputs: readonly Var[];
        if (s.kind === "eqn" && isMultiEqn(s.eqn)) {
          const e = s.eqn;
          inputs = e.inputs;
          bindMulti(e.prim, inputs.map(get), e.params).forEach((t, k) => {
            env.set(e.outs[k].id, t);
            owned.add(t);
          });
          this.#free(inputs, i, env, owned, outputs);
          stage(i);
          return;
        } else if (s.kind === "eqn" && this.#keptConstants.has(i)) {
          const e = s.eqn as Eqn;
          inputs = e.inputs;
          let kept = this.#keptConstants.get(i);
          if (!kept) {
            kept = bind(e.prim, [], e.params, this.backend, this.#memos[i] ??= {});
            keep(kept); // the program's, whatever scope its first call ran in
            this.#keptConstants.set(i, kept);
          }
          out = shareStorage(kept);
          env.set(e.out.id, out);
        } else if (s.kind === "eqn") {
          const e = s.eqn as Eqn;
          inputs = e.inputs;
          // nullary equations (literals, fills) are made on the program's backend
          out = bind(e.prim, inputs.map(get), e.params, this.backend, this.#memos[i] ??= {});
          env.set(e.out.id, out);
        } else if (s.kind === "fused") {
          inputs = leafSources(s);
          const outs = runFused(s, inputs.map(get), this.#memos[i] ??= {});
          stepOutputs(s).forEach((v, k) => env.set(v.id, outs[k]));
          for (const t of outs.slice(1)) owned.add(t);
          out = outs[0];
        } else if (s.kind === "fusedReduce") {
          inputs = leafSources(s);
          out = runReduction(s, inputs.map(get), this.#memos[i] ??= {});
          env.set(s.eqn.out.id, out);
        } else if (s.kind === "reduceEpilogue") {
          inputs = stepInputs(s);
          const memo = this.#memos[i] ??= {};
          const epilogueLeaves = leafSources(s).map(get);
          out = runReduction(s.reduce, stepInputs(s.reduce).map(get), memo, s, epilogueLeaves);
          env.set(s.out.id, out);
        } else {
          inputs = stepInputs(s);
          out = runMatmulEpilogue(
            s,
            s.mm.inputs.map(get),
            s.mm2?.inputs.map(get) ?? [],
            leafSources(s).map(get),
            this.#memos[i] ??= {},
          );
          env.set(s.out.id, out);
        }
        owned.add(out);
        this.#free(inputs, i, env, owned, outputs);
        stage(i);
      });
    };
    if (this.backend === "webgpu") {
      runtime.inOneSubmission(execute);
      // the rest runs while the staged reads' maps wait
      if (staged) runtime.flush();
    } else execute();
    const result = this.program.outputs.map(get);
    for (const j of this.#stageable.keys()) {
      (result[j].storage as GpuStorage).onRead = () => this.#readOf(j, call);
    }
    // a donated input the program never read (or only passed through) is released too
    const kept = new Set(result);
    for (const t of owned) if (!kept.has(t) && args.includes(t)) t.dispose();
    return result;
  }
}

function runFused(
  s: Extract<Step, { kind: "fused" }>,
  inputs: Tensor[],
  memo: KernelMemo,
): Tensor[] {
  // storages taken now: the work may run later (before the device exists), after a caller
  // disposed a result
  const outs = stepOutputs(s);
  const storages = outs.map((v) => new GpuStorage(sizeOf(v.shape) * 4));
  const storageOf = (v: Var) => storages[outs.findIndex((w) => w.id === v.id)];
  const operands = leafOperands(s, inputs, s.out.shape);
  const extra = (s.extraOuts ?? []).map((o) => ({
    expr: o.name,
    dtype: o.v.dtype,
    storage: storageOf(o.v),
    at: o.at,
  }));
  runtime.enqueueHolding(operands.map((o) => o.storage), () =>
    runElementwise(
      { label: s.label, expr: s.expr, prelude: s.prelude, helpers: FUSED_HELPERS },
      operands,
      s.out.shape,
      s.out.dtype,
      storages[0],
      memo,
      extra,
    ));
  return outs.map((v, k) => new Tensor(v.shape, v.dtype, storages[k]));
}

/**
 * A reduction over one contiguous run of axes: of a fused prologue or of its stored input,
 * storing through `epilogue` (a group whose `acc` is the reduced value) when given.
 */
function runReduction(
  s: FusedReduce | PlainReduce,
  inputs: Tensor[],
  memo: KernelMemo,
  epilogue?: Extract<Step, { kind: "reduceEpilogue" }>,
  epilogueInputs: Tensor[] = [],
): Tensor {
  const e = s.eqn;
  const shape = e.inputs[0].shape;
  const axes = e.params.axes as number[];
  const a0 = axes[0], a1 = axes[axes.length - 1] + 1;
  const out = epilogue?.out ?? e.out;
  const storage = new GpuStorage(sizeOf(out.shape) * 4);
  const read = s.kind === "fusedReduce"
    ? {
      leaves: leafOperands(s, inputs, shape),
      prelude: s.prelude,
      expr: s.expr,
      helpers: ELEMENTWISE_HELPERS,
      shape,
    }
    : inputs[0].storage as GpuStorage;
  const epi = epilogue && {
    leaves: leafOperands(epilogue, epilogueInputs, out.shape),
    prelude: epilogue.prelude,
    expr: epilogue.expr,
    helpers: ELEMENTWISE_HELPERS,
    shape: out.shape,
  };
  const held = [
    ...(read instanceof GpuStorage ? [read] : read.leaves.map((l) => l.storage)),
    ...(epi?.leaves ?? []).map((l) => l.storage),
  ];
  runtime.enqueueHolding(held, () =>
    runReduce(
      epilogue?.label ?? (s.kind === "fusedReduce" ? s.label : e.params.op),
      e.params.op,
      e.inputs[0].dtype,
      read,
      sizeOf(shape.slice(0, a0)),
      sizeOf(shape.slice(a0, a1)),
      sizeOf(shape.slice(a1)),
      storage,
      epi,
      memo,
    ));
  return new Tensor(out.shape, out.dtype, storage);
}

/** Constants a program returns, up to this size, are made once and kept (`Compiled`). */
const MAX_KEPT_CONSTANT_BYTES = 1 << 16;

/** Outputs up to this size are staged for reading once made, when callers read them. */
const STAGE_BYTES = 1024;

function runMatmulEpilogue(
  s: Extract<Step, { kind: "matmulEpilogue" }>,
  ab: Tensor[],
  ab2: Tensor[],
  leaves: Tensor[],
  memo: KernelMemo,
): Tensor {
  const out = s.out;
  const storage = new GpuStorage(sizeOf(out.shape) * 4);
  const operand = (t: Tensor) => ({
    shape: t.shape,
    dtype: t.dtype,
    storage: t.storage as GpuStorage,
  });
  const [a, b] = ab.map(operand);
  const [a2, b2] = ab2.map(operand);
  const epilogueLeaves = leafOperands(s, leaves, out.shape);
  const held = [a, b, ...(s.mm2 ? [a2, b2] : []), ...epilogueLeaves].map((o) => o.storage);
  runtime.enqueueHolding(held, () =>
    encodeMatmul(
      a,
      b,
      s.mm.params,
      // the matmul's own shape; the group's (`out`, maybe a reshape of it) orders the same
      { shape: s.mm.out.shape, dtype: "f32", storage },
      {
        leaves: epilogueLeaves,
        prelude: s.prelude,
        expr: s.expr,
        helpers: ELEMENTWISE_HELPERS,
        shape: out.shape,
      },
      s.mm2 && { a: a2, b: b2, p: s.mm2.params },
      memo,
    ));
  return new Tensor(out.shape, out.dtype, storage);
}
