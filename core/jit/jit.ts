/**
 * jit: trace a function once per input signature into a program, optimise it (dead code,
 * common subexpressions, elementwise fusion) and replay it — all of a call's kernels in one
 * submission, each intermediate freed after its last use.
 */
import { keep } from "../memory.ts";
import { noteDonation, Tensor } from "../tensor.ts";
import { Tracer } from "../tracer.ts";
import { flatten, type TreeDef, unflatten } from "../tree.ts";
import type { Fn } from "../fn.ts";
import { defaultBackend } from "../backend/select.ts";
import type { DType } from "../dtype.ts";
import { full } from "../ops/creation.ts";
import { Compiled, eliminateCommonSubexpressions, eliminateDeadCode } from "./compile.ts";
import { eqnOutputs, exactJson, type Program, programText, type Var } from "./ir.ts";
import { ForeignTracerError, JitTrace, JitTracer } from "./jit_trace.ts";

/** Options of `jit`. */
export interface JitOptions {
  /**
   * Arguments that are not traced but baked into the program (Python-style constants: sizes,
   * flags, loop counts); a new value compiles a new program. JS numbers in other arguments
   * are traced as weakly typed scalars (as JAX does), so a learning rate that changes every
   * call reuses one program; strings, booleans and other non-tensor leaves are static.
   */
  staticArgnums?: readonly number[];
  /**
   * Arguments whose tensors the caller hands over (e.g. parameters and optimiser state in a
   * training step): they are disposed as soon as the program has read them, so the step
   * does not hold old and new state at once. Using a donated tensor afterwards is an error.
   */
  donateArgnums?: readonly number[];
  /** The function's name in messages (default: f's own name). */
  name?: string;
}

/** One equation of a lowered program. */
export interface LoweredEquation {
  /** Primitive name, e.g. "add", "matmul", "reduce". */
  primitive: string;
  /** The primitive's parameters. */
  params: unknown;
  /** Shape of the result (the first one, for a primitive with several). */
  shape: readonly number[];
  /** dtype of the result (the first one, for a primitive with several). */
  dtype: string;
}

/** What `jit(f).lower(...args)` returns. */
export interface Lowered {
  /** The optimised program as text. */
  text: string;
  /** The optimised program's equations, in order. */
  equations: LoweredEquation[];
  /** Kernels one call dispatches (after fusion; views excluded). */
  kernels: number;
  /**
   * Those kernels in order, one per line: what each computes (`fused[exp,mul]`,
   * `matmul+add`, `reduce[sum]+mul,sub`…), its result and the values it reads; a scan's body
   * kernels (run once per step) indented under it.
   */
  plan: string;
}

/** A jitted function: call it like f (same argument and result types); `lower` shows what it compiles to. */
export type Jitted<F extends Fn = Fn> = F & {
  /** Trace (or fetch from the cache) the program for these arguments. */
  lower(...args: Parameters<F>): Lowered;
};

interface Entry {
  compiled: Compiled;
  outDef: TreeDef;
  /** Per output leaf: index into the program's outputs, or the non-tensor value itself. */
  outLeaves: Array<{ out: number } | { value: unknown }>;
}

const INLINE = Symbol("inline");

/**
 * The dtype a JS number argument is traced as (a weak scalar): i32 for an integer i32 holds,
 * f32 otherwise. Part of the signature; its value is not, so new values reuse the program.
 */
function weakDType(x: number): DType {
  return Number.isInteger(x) && x >= -(2 ** 31) && x < 2 ** 31 ? "i32" : "f32";
}

function signature(args: readonly unknown[], staticArgnums: readonly number[]): string {
  return exactJson(args.map((arg, i) => {
    if (staticArgnums.includes(i)) return ["static", safeJson(arg)];
    const [leaves, def] = flatten(arg);
    return [
      def,
      leaves.map((l) =>
        l instanceof Tensor
          ? `${l.dtype}[${l.shape.join(",")}]@${l.backend}`
          : typeof l === "number"
          ? ["weak", weakDType(l)]
          : ["v", safeJson(l)]
      ),
    ];
  }));
}

function safeJson(x: unknown): unknown {
  if (typeof x === "function") {
    throw new TypeError("jit: functions cannot be static arguments (close over them instead)");
  }
  return x;
}

function traceProgram(
  f: Fn,
  args: readonly unknown[],
  staticArgnums: readonly number[],
): Entry | typeof INLINE {
  const leavesOf = args.map((a, i) => (staticArgnums.includes(i) ? null : flatten(a)));
  const firstTensor = leavesOf.flatMap((l) => (l ? l[0] : [])).find((x): x is Tensor =>
    x instanceof Tensor
  );
  const trace = new JitTrace(firstTensor?.backend ?? defaultBackend());
  const tensorsIn: Tensor[] = [];
  const traced = args.map((a, i) => {
    const lf = leavesOf[i];
    if (!lf) return a;
    return unflatten(
      lf[1],
      lf[0].map((l) => {
        if (typeof l === "number") return trace.input([], weakDType(l), true);
        if (!(l instanceof Tensor)) return l;
        tensorsIn.push(l);
        return trace.input(l.shape, l.dtype);
      }),
    );
  });
  let out: unknown;
  try {
    out = trace.run(() => f(...traced));
  } catch (e) {
    if (e instanceof ForeignTracerError) return INLINE; // closes over another transformation's values
    const numbers = leavesOf.some((l) => l?.[0].some((x) => typeof x === "number"));
    if (numbers && e instanceof Error && !e.message.includes("staticArgnums")) {
      e.message += " (jit traces JS number arguments as scalars, as JAX does: one that sets a " +
        "shape, a count or control flow must be listed in staticArgnums)";
    }
    throw e;
  }
  const [leaves, outDef] = flatten(out);
  const outputs: Var[] = [];
  const outLeaves = leaves.map((l) => {
    if (!(l instanceof Tensor)) return { value: l };
    if (l instanceof Tracer && !(l instanceof JitTracer && l.trace === trace)) return null;
    outputs.push(trace.varOf(l));
    return { out: outputs.length - 1 };
  });
  if (outLeaves.some((l) => l === null)) return INLINE;
  let program: Program = { inputs: trace.inputs, eqns: trace.eqns, outputs };
  program = eliminateDeadCode(eliminateCommonSubexpressions(program));
  for (const c of trace.constants()) keep(c); // the program owns its constants
  return {
    compiled: new Compiled(program, trace.backend),
    outDef,
    outLeaves: outLeaves as Entry["outLeaves"],
  };
}

/**
 * Compile f: traced once per input signature (shapes, dtypes, pytree structure, static
 * values), then replayed as one submission with fused elementwise kernels. Nests with grad
 * and vmap in any order (under another transformation, or inside another jit, it is inlined
 * into the enclosing trace).
 *
 * @example
 * ```ts
 * import { jit, tensor, exp, mul, add } from "@metagrad/metagrad";
 * const f = jit((x: any) => add(mul(exp(x), 2), 1)); // one fused kernel
 * await f(tensor([0, 1])).array();
 * console.log(f.lower(tensor([0, 1])).text);
 * ```
 */
export function jit<F extends Fn>(f: F, opts: JitOptions = {}): Jitted<F> {
  const staticArgnums = opts.staticArgnums ?? [];
  const cache = new Map<string, Entry | typeof INLINE>();
  let traces = 0;
  const lookup = (args: readonly unknown[]) => {
    const key = signature(args, staticArgnums);
    let entry = cache.get(key);
    if (entry) {
      // least recently used last out: a hit moves to the end of the map's order
      cache.delete(key);
      cache.set(key, entry);
      return entry;
    }
    entry = traceProgram(f, args, staticArgnums);
    cache.set(key, entry);
    if (cache.size > MAX_PROGRAMS) cache.delete(cache.keys().next().value!);
    if (++traces === RETRACE_WARNING) warnRetracing(f, staticArgnums, traces);
    return entry;
  };
  const donationTarget = `${
    opts.name ?? `jit(${f.name || "an anonymous function"})`
  } (donateArgnums ${JSON.stringify(opts.donateArgnums ?? [])})`;
  const jitted = ((...args: unknown[]) => {
    const tracerIn = args.some((a, i) =>
      !staticArgnums.includes(i) && flatten(a)[0].some((l) => l instanceof Tracer)
    );
    if (tracerIn) return f(...args); // inside grad / vmap / another jit: becomes part of that trace
    const entry = lookup(args);
    if (entry === INLINE) return f(...args);
    const donate = opts.donateArgnums ?? [];
    const donated: boolean[] = [];
    const backend = entry.compiled.backend;
    const inputs = args.flatMap((a, i) => {
      if (staticArgnums.includes(i)) return [];
      const ts: Tensor[] = [];
      for (const l of flatten(a)[0]) {
        if (l instanceof Tensor) {
          ts.push(l);
          donated.push(donate.includes(i));
        } else if (typeof l === "number") {
          // a traced JS number: a scalar made for this call, which the program frees
          ts.push(full([], l, { dtype: weakDType(l), backend }));
          donated.push(true);
        }
      }
      return ts;
    });
    // a tensor passed twice (donated and not) must not be freed under the other use
    inputs.forEach((t, n) => {
      if (donated[n] && inputs.some((u, m) => u === t && !donated[m])) donated[n] = false;
    });
    inputs.forEach((t, n) => {
      if (donated[n]) noteDonation(t, donationTarget);
    });
    const outs = entry.compiled.runOwned(inputs, donated);
    return unflatten(
      entry.outDef,
      entry.outLeaves.map((l) => ("value" in l ? l.value : outs[l.out])),
    );
  }) as Jitted<F>;
  jitted.lower = (...args: Parameters<F>) => {
    const entry = lookup(args);
    if (entry === INLINE) {
      throw new TypeError(
        "jit.lower: f closes over values of another transformation; it runs inline",
      );
    }
    const program = entry.compiled.program;
    return {
      text: programText(program),
      equations: program.eqns.map((e) => {
        const first = eqnOutputs(e)[0];
        return {
          primitive: e.prim.name,
          params: e.params,
          shape: first?.shape ?? [],
          dtype: first?.dtype ?? "f32",
        };
      }),
      kernels: entry.compiled.kernelCount,
      plan: entry.compiled.planText(),
    };
  };
  return jitted;
}

/** Programs one jitted function keeps (least recently used dropped first). */
const MAX_PROGRAMS = 32;
/** Traces of one jitted function after which it warns, once, that it keeps retracing. */
const RETRACE_WARNING = 16;

function warnRetracing(f: Fn, staticArgnums: readonly number[], traces: number): void {
  console.warn(
    `metagrad jit(${f.name || "an anonymous function"}): traced ${traces} times — each new ` +
      `signature compiles a new program. Argument shapes, dtypes or pytree structure keep ` +
      `changing${
        staticArgnums.length ? `, or the static arguments ${JSON.stringify(staticArgnums)} do` : ""
      }; JS numbers are traced as scalars and do not retrace. The last ${MAX_PROGRAMS} ` +
      `programs are kept.`,
  );
}

/**
 * The traced program of f for these arguments, as text (before optimisation), like JAX's
 * make_jaxpr.
 *
 * @example
 * ```ts
 * import { makeJaxpr, tensor, sin } from "@metagrad/metagrad";
 * console.log(makeJaxpr((x: any) => sin(x).mul(2))(tensor([1, 2])));
 * ```
 */
export function makeJaxpr(f: Fn, opts: JitOptions = {}): (...args: unknown[]) => string {
  return (...args: unknown[]) => {
    const entry = traceProgram(f, args, opts.staticArgnums ?? []);
    if (entry === INLINE) {
      throw new TypeError("makeJaxpr: f closes over values of another transformation");
    }
    return programText(entry.compiled.program);
  };
}
