/**
 * The differentiation API: vjp, grad, valueAndGrad, jvp, linearize, hvp, hessian, jacrev,
 * jacfwd, stopGradient, customVjp, checkpoint. Arguments and results are pytrees of tensors.
 * Forward mode is the transpose of reverse mode (the "double vjp"): the vjp function is
 * linear in its cotangent, so differentiating it once more gives Jacobian-vector products
 * without a second set of rules.
 */
import { isFloat } from "../dtype.ts";
import { tidy } from "../memory.ts";
import { fmtShape } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { Tracer } from "../tracer.ts";
import { flatten, type TreeDef, unflatten } from "../tree.ts";
import { eye, onesLike, zerosLike } from "../ops/creation.ts";
import { mul } from "../ops/math.ts";
import { sum } from "../ops/reduce.ts";
import { moveAxis, reshape } from "../ops/shape.ts";
import { type BatchTrace, BatchTracer, vmap } from "../vmap/vmap.ts";
import { bind } from "../primitive.ts";
import { stopGradient as stopGradientPrim } from "../primitives/stop_gradient.ts";
import { GradTrace, type GradTracer, innermostGradTrace } from "./grad_trace.ts";

/** A function transformations accept: pytrees of tensors (and other values) in and out. */
export type { Fn } from "../fn.ts";
import type { Fn } from "../fn.ts";

/** Which positional arguments to differentiate with respect to. */
export type Argnums = number | readonly number[];

/** Options of `grad` and `valueAndGrad`. */
export interface GradOptions {
  /** Argument(s) to differentiate (default 0). A list gives a tuple of gradients. */
  argnums?: Argnums;
  /** f returns [loss, aux]; aux is passed through without gradients. */
  hasAux?: boolean;
}

interface Boxed {
  args: unknown[];
  /** For each argument: its tree structure and, per leaf, the tracer (null = not a tensor). */
  defs: TreeDef[];
  tracers: (GradTracer | null)[][];
}

function box(
  trace: GradTrace,
  args: readonly unknown[],
  which: readonly number[],
  op: string,
): Boxed {
  const defs: TreeDef[] = [];
  const tracers: (GradTracer | null)[][] = [];
  const out = args.map((arg, i) => {
    if (!which.includes(i)) return arg;
    const [leaves, def] = flatten(arg);
    const boxed = leaves.map((leaf, j) => {
      if (!(leaf instanceof Tensor)) return null;
      if (!isFloat(leaf.dtype)) {
        throw new TypeError(
          `${op}: argument ${i} (leaf ${j}) is ${leaf.dtype}${
            fmtShape(leaf.shape)
          }; gradients exist only ` +
            `for f32 tensors — pass integer data through an argument that is not differentiated (argnums)`,
        );
      }
      return trace.input(leaf);
    });
    defs[i] = def;
    tracers[i] = boxed;
    return unflatten(def, leaves.map((l, j) => boxed[j] ?? l));
  });
  return { args: out, defs, tracers };
}

function unboxTree(trace: GradTrace, tree: unknown): unknown {
  const [leaves, def] = flatten(tree);
  return unflatten(def, leaves.map((l) => (l instanceof Tensor ? trace.unbox(l) : l)));
}

function gradsOf(
  b: Boxed,
  which: readonly number[],
  ct: Map<GradTracer, Tensor>,
): unknown[] {
  return which.map((i) =>
    unflatten(b.defs[i], b.tracers[i].map((t) => (t ? ct.get(t) ?? zerosLike(t.value) : null)))
  );
}

function argList(argnums: Argnums, n: number, op: string): number[] {
  const list = typeof argnums === "number" ? [argnums] : [...argnums];
  for (const a of list) {
    if (!Number.isInteger(a) || a < 0 || a >= n) {
      throw new RangeError(`${op}: argnums ${a} out of range for ${n} argument(s)`);
    }
  }
  return list;
}

/**
 * Evaluate f and return its value with a function mapping output cotangents (same pytree
 * structure as the output) to input cotangents (one pytree per argument).
 *
 * @example
 * ```ts
 * import { vjp, tensor, sin } from "@metagrad/metagrad";
 * const [y, back] = vjp((x: any) => sin(x), tensor([0, 1]));
 * const [dx] = back(tensor([1, 1])); // cos(x)
 * ```
 */
export function vjp<A extends any[], R>(
  f: (...args: A) => R,
  ...primals: A
): [R, (cotangent: R) => A];
export function vjp(f: Fn, ...primals: unknown[]): [any, (cotangent: unknown) => any[]] {
  const trace = new GradTrace();
  const which = primals.map((_, i) => i);
  const b = box(trace, primals, which, "vjp");
  const out = trace.run(() => f(...b.args));
  const [outLeaves, outDef] = flatten(out);
  const value = unboxTree(trace, out);
  const back = (cotangent: unknown): unknown[] => {
    const [ctLeaves, ctDef] = flatten(cotangent);
    if (ctLeaves.length !== outLeaves.length || JSON.stringify(ctDef) !== JSON.stringify(outDef)) {
      throw new TypeError("vjp: the cotangent must have the same pytree structure as f's output");
    }
    const outs: Tensor[] = [], cts: Tensor[] = [];
    outLeaves.forEach((o, i) => {
      const c = ctLeaves[i];
      if (!(o instanceof Tensor)) return;
      if (
        !(c instanceof Tensor) || c.shape.length !== o.shape.length ||
        c.shape.some((d, k) => d !== o.shape[k])
      ) {
        throw new TypeError(
          `vjp: cotangent ${i} must be a tensor of the output's shape ${fmtShape(o.shape)}, got ${
            c instanceof Tensor ? fmtShape(c.shape) : typeof c
          }`,
        );
      }
      outs.push(o);
      cts.push(c);
    });
    return gradsOf(b, which, trace.backward(outs, cts));
  };
  return [value, back];
}

function scalarLoss(out: unknown, op: string): Tensor {
  if (!(out instanceof Tensor) || out.size !== 1 || !isFloat(out.dtype)) {
    const what = out instanceof Tensor ? `${out.dtype}${fmtShape(out.shape)}` : typeof out;
    throw new TypeError(
      `${op}: f must return a scalar f32 tensor, got ${what}; reduce it (e.g. with mean) or use vjp`,
    );
  }
  return out;
}

function valueAndGradImpl(f: Fn, opts: GradOptions, op: string, keepValue: boolean) {
  const argnums = opts.argnums ?? 0;
  return (...args: unknown[]) =>
    tidy(() => {
      const which = argList(argnums, args.length, op);
      const trace = new GradTrace();
      const b = box(trace, args, which, op);
      const result = trace.run(() => f(...b.args));
      let lossTree: unknown = result, aux: unknown = undefined;
      if (opts.hasAux) {
        if (!Array.isArray(result) || result.length !== 2) {
          throw new TypeError(`${op}: with hasAux, f must return [loss, aux]`);
        }
        [lossTree, aux] = result;
      }
      const loss = scalarLoss(lossTree, op);
      const grads = gradsOf(b, which, trace.backward([loss], [onesLike(trace.unbox(loss))]));
      const g = typeof argnums === "number" ? grads[0] : grads;
      const value = trace.unbox(loss);
      const auxOut = opts.hasAux ? stopGradient(unboxTree(trace, aux)) : undefined;
      if (keepValue) return opts.hasAux ? [[value, auxOut], g] : [value, g];
      return opts.hasAux ? [g, auxOut] : g;
    });
}

/**
 * The gradient of a scalar-valued f with respect to argument(s) `argnums`, as a function
 * returning pytrees shaped like those arguments. Nests: grad(grad(f)).
 *
 * @example
 * ```ts
 * import { grad, sum, square, tensor } from "@metagrad/metagrad";
 * const loss = (w: any) => sum(square(w));
 * const g = grad(loss)(tensor([1, 2, 3])); // [2, 4, 6]
 * ```
 */
export function grad<A extends any[]>(
  f: (...args: A) => Tensor,
  opts?: { argnums?: 0; hasAux?: false },
): (...args: A) => A[0];
/** `grad` with these options (see the first signature). */
export function grad<A extends any[], const N extends number>(
  f: (...args: A) => Tensor,
  opts: { argnums: N; hasAux?: false },
): (...args: A) => A[N];
/** `grad` with these options (see the first signature). */
export function grad<A extends any[], const N extends readonly number[]>(
  f: (...args: A) => Tensor,
  opts: { argnums: N; hasAux?: false },
): (...args: A) => GradsOf<A, N>;
/** `grad` with these options (see the first signature). */
export function grad<A extends any[], Aux>(
  f: (...args: A) => [Tensor, Aux],
  opts: { argnums?: 0; hasAux: true },
): (...args: A) => [A[0], Aux];
/** `grad` of an untyped function. */
export function grad(f: Fn, opts?: GradOptions): (...args: any[]) => any;
export function grad(f: Fn, opts: GradOptions = {}): (...args: any[]) => any {
  return valueAndGradImpl(f, opts, "grad", false);
}

/** The gradients `argnums` (a list) selects: a tuple of those arguments' types. */
export type GradsOf<A extends any[], N extends readonly number[]> = {
  -readonly [K in keyof N]: N[K] extends number ? A[N[K]] : never;
};

/**
 * Like `grad`, but returns `[value, grads]` (or `[[value, aux], grads]` with hasAux).
 *
 * @example
 * ```ts
 * import { valueAndGrad, mean, square, tensor } from "@metagrad/metagrad";
 * const [loss, g] = valueAndGrad((w: any) => mean(square(w)))(tensor([3, 4]));
 * ```
 */
export function valueAndGrad<A extends any[]>(
  f: (...args: A) => Tensor,
  opts?: { argnums?: 0; hasAux?: false },
): (...args: A) => [Tensor, A[0]];
/** `valueAndGrad` with these options (see the first signature). */
export function valueAndGrad<A extends any[], const N extends number>(
  f: (...args: A) => Tensor,
  opts: { argnums: N; hasAux?: false },
): (...args: A) => [Tensor, A[N]];
/** `valueAndGrad` with these options (see the first signature). */
export function valueAndGrad<A extends any[], const N extends readonly number[]>(
  f: (...args: A) => Tensor,
  opts: { argnums: N; hasAux?: false },
): (...args: A) => [Tensor, GradsOf<A, N>];
/** `valueAndGrad` with these options (see the first signature). */
export function valueAndGrad<A extends any[], Aux>(
  f: (...args: A) => [Tensor, Aux],
  opts: { argnums?: 0; hasAux: true },
): (...args: A) => [[Tensor, Aux], A[0]];
/** `valueAndGrad` of an untyped function. */
export function valueAndGrad(f: Fn, opts?: GradOptions): (...args: any[]) => [any, any];
export function valueAndGrad(f: Fn, opts: GradOptions = {}): (...args: any[]) => [any, any] {
  return valueAndGradImpl(f, opts, "valueAndGrad", true) as (...args: any[]) => [any, any];
}

/**
 * Remove `x` (any pytree) from every differentiation: its gradient is zero.
 *
 * @example
 * ```ts
 * import { grad, stopGradient, mul, tensor } from "@metagrad/metagrad";
 * grad((x: any) => mul(x, stopGradient(x)).sum())(tensor(3)); // 3, not 6
 * ```
 */
export function stopGradient<T>(x: T): T {
  const [leaves, def] = flatten(x);
  return unflatten(
    def,
    leaves.map((l) => (l instanceof Tensor ? bind(stopGradientPrim, [l], {}) : l)),
  );
}

/**
 * f's value and a function computing Jacobian-vector products at `primals` (forward mode,
 * reusing one reverse pass).
 *
 * @example
 * ```ts
 * import { linearize, tensor, exp } from "@metagrad/metagrad";
 * const [y, jvpAt] = linearize((x: any) => exp(x), tensor([0, 1]));
 * const dy = jvpAt(tensor([1, 1])); // exp(x)
 * ```
 */
export function linearize(f: Fn, ...primals: unknown[]): [any, (...tangents: unknown[]) => any] {
  const [out, back] = vjp(f, ...primals);
  const [outLeaves, outDef] = flatten(out);
  const jvpFn = (...tangents: unknown[]) => {
    if (tangents.length !== primals.length) {
      throw new TypeError(`jvp: ${tangents.length} tangents for ${primals.length} primals`);
    }
    // back(u) = Jᵀu is linear in u; its vjp at any u, applied to v, is J·v.
    const u0 = unflatten(outDef, outLeaves.map((l) => (l instanceof Tensor ? zerosLike(l) : l)));
    const [, backOfBack] = vjp((u: unknown) => back(u), u0);
    const [tangentOut] = backOfBack(tangents);
    return tangentOut;
  };
  return [out, jvpFn];
}

/**
 * Forward-mode derivative: `[f(primals), J·tangents]`; tangents match primals' structure.
 *
 * @example
 * ```ts
 * import { jvp, tensor, sin } from "@metagrad/metagrad";
 * const [y, dy] = jvp((x: any) => sin(x), [tensor([0.5])], [tensor([1])]); // dy = cos(0.5)
 * ```
 */
export function jvp<A extends any[], R>(
  f: (...args: A) => R,
  primals: readonly [...A],
  tangents: readonly [...A],
): [R, R];
export function jvp(f: Fn, primals: readonly unknown[], tangents: readonly unknown[]): [any, any] {
  return tidy(() => {
    const [out, jvpFn] = linearize(f, ...primals);
    return [out, jvpFn(...tangents)] as [unknown, unknown];
  });
}

function treeDot(a: unknown, b: unknown): Tensor {
  const [la] = flatten<Tensor>(a), [lb] = flatten<Tensor>(b);
  let total: Tensor | null = null;
  la.forEach((x, i) => {
    if (!(x instanceof Tensor)) return;
    const d = sum(mul(x, lb[i]));
    total = total ? total.add(d) : d;
  });
  if (!total) throw new TypeError("hvp: no tensors to differentiate");
  return total;
}

/**
 * Hessian-vector product of scalar f at x along v (reverse over reverse); x and v are
 * pytrees of the same structure.
 *
 * @example
 * ```ts
 * import { hvp, sum, pow, tensor } from "@metagrad/metagrad";
 * hvp((x: any) => sum(pow(x, 3)), tensor([1, 2]), tensor([1, 0])); // [6, 0]
 * ```
 */
export function hvp<X>(f: (x: X) => Tensor, x: X, v: X): X;
export function hvp(f: Fn, x: unknown, v: unknown): any {
  return grad((y: unknown) => treeDot(grad(f)(y), stopGradient(v)))(x);
}

/** The n unit vectors of a tensor's space, stacked: [n, ...like.shape]. */
function basis(like: Tensor): Tensor {
  return reshape(eye(like.size, like.size, 0, { backend: like.backend }), [
    like.size,
    ...like.shape,
  ]);
}

/**
 * The Hessian of scalar f at a tensor x, shape [...x.shape, ...x.shape]: Hessian-vector
 * products along every unit vector, batched with vmap.
 *
 * @example
 * ```ts
 * import { hessian, sum, mul, tensor } from "@metagrad/metagrad";
 * hessian((x: any) => sum(mul(x, x)))(tensor([1, 2])); // 2·I
 * ```
 */
export function hessian(f: Fn): (x: Tensor) => Tensor {
  return (x: Tensor) =>
    tidy(() => {
      const rows = vmap((v: Tensor) => hvp(f, x, v))(basis(x)) as Tensor; // [n, ...x.shape]
      return reshape(rows, [...x.shape, ...x.shape]);
    });
}

/**
 * The Jacobian of f at a tensor x by reverse mode (one vjp per output element, batched with
 * vmap), shape [...out.shape, ...x.shape].
 *
 * @example
 * ```ts
 * import { jacrev, sin, tensor } from "@metagrad/metagrad";
 * jacrev((x: any) => sin(x))(tensor([0, 1])); // diag(cos x)
 * ```
 */
export function jacrev(f: Fn): (x: Tensor) => Tensor {
  return (x: Tensor) =>
    tidy(() => {
      const [out, back] = vjp(f, x);
      const o = out as Tensor;
      const rows = vmap((ct: Tensor) => back(ct)[0])(basis(o)) as Tensor; // [out.size, ...x.shape]
      return reshape(rows, [...o.shape, ...x.shape]);
    });
}

/**
 * The Jacobian of f at a tensor x by forward mode (one jvp per input element, batched with
 * vmap), shape [...out.shape, ...x.shape].
 *
 * @example
 * ```ts
 * import { jacfwd, exp, tensor } from "@metagrad/metagrad";
 * jacfwd((x: any) => exp(x))(tensor([0, 1])); // diag(exp x)
 * ```
 */
export function jacfwd(f: Fn): (x: Tensor) => Tensor {
  return (x: Tensor) =>
    tidy(() => {
      const [out, jvpAt] = linearize(f, x);
      const o = out as Tensor;
      const cols = vmap((v: Tensor) => jvpAt(v))(basis(x)) as Tensor; // [x.size, ...out.shape]
      return reshape(moveAxis(reshape(cols, [x.size, o.size]), 0, 1), [...o.shape, ...x.shape]);
    });
}

/** Tensor leaves of a pytree with their positions, and a way to put new ones back. */
function tensorSlots(tree: unknown) {
  const [leaves, def] = flatten(tree);
  const slots = leaves.flatMap((l, i) => (l instanceof Tensor ? [i] : []));
  return {
    tensors: slots.map((i) => leaves[i] as Tensor),
    rebuild: (ts: readonly unknown[]) => {
      const copy = [...leaves];
      slots.forEach((s, k) => (copy[s] = ts[k]));
      return unflatten(def, copy);
    },
  };
}

/**
 * A function with a user-defined gradient: `fwd(...args)` returns `[out, residuals]` and
 * `bwd(residuals, outCotangent)` returns one cotangent pytree per argument (null for none).
 * The custom rule applies at the innermost differentiation level; under a vmap inside that
 * differentiation, the rule is batched (f, fwd and bwd are vmapped).
 *
 * @example
 * ```ts
 * import { customVjp, clip, tensor, grad, sum } from "@metagrad/metagrad";
 * // straight-through estimator: clip forward, identity backward
 * const ste = customVjp((x: any) => clip(x, -1, 1), (x: any) => [clip(x, -1, 1), null], (_r: unknown, g: any) => [g]);
 * grad((x: any) => sum(ste(x)))(tensor([3, 0.5])); // [1, 1]
 * ```
 */
export function customVjp<F extends Fn>(
  f: F,
  fwd: (...args: Parameters<F>) => [ReturnType<F>, any],
  bwd: (residuals: any, cotangent: ReturnType<F>) => any[],
): F {
  return ((...args: unknown[]) => {
    const inArgs = tensorSlots(args);
    const trace = innermostGradTrace(inArgs.tensors);
    // a trace other than vmap above the differentiation (the body of a scan being traced, a
    // jvp) must see the ops themselves: recording the rule at the grad level below would
    // keep that trace's values as residuals after it returns. f's own ops differentiate to
    // the same gradient.
    if (!trace || stagedAbove(inArgs.tensors, trace.level)) return f(...args);
    const batching = vmapAbove(inArgs.tensors, trace.level);
    if (batching) return batchedCustomVjp(batching, f, fwd, bwd, args);
    const primalArgs = inArgs.rebuild(inArgs.tensors.map((t) => trace.unbox(t))) as unknown[];
    const [out, residuals] = fwd(...(primalArgs as Parameters<F>));
    const outSlots = tensorSlots(out);
    const [resLeaves] = flatten(residuals);
    const boxed = trace.record(
      inArgs.tensors,
      outSlots.tensors,
      (cts) => {
        const ctTree = outSlots.rebuild(cts.map((c, i) => c ?? zerosLike(outSlots.tensors[i])));
        const gradArgs = bwd(residuals, ctTree as ReturnType<F>);
        if (!Array.isArray(gradArgs) || gradArgs.length !== args.length) {
          throw new TypeError(
            `customVjp: bwd must return one cotangent per argument (${args.length}), got ${gradArgs?.length}`,
          );
        }
        // per argument: null means no gradient for any of its tensors; otherwise its
        // cotangent tree matches the argument's, leaf for leaf
        return args.flatMap((arg, i) => {
          const [al] = flatten(arg);
          const g = gradArgs[i];
          if (g === null || g === undefined) {
            return al.flatMap((l) => (l instanceof Tensor ? [null] : []));
          }
          const [gl] = flatten(g);
          if (gl.length !== al.length) {
            throw new TypeError(
              `customVjp: bwd's cotangent for argument ${i} does not match its structure`,
            );
          }
          return al.flatMap((l, k) =>
            l instanceof Tensor ? [gl[k] instanceof Tensor ? (gl[k] as Tensor) : null] : []
          );
        });
      },
      resLeaves.filter((r): r is Tensor => r instanceof Tensor),
    );
    return outSlots.rebuild(boxed);
  }) as F;
}

/** Whether a trace other than vmap is active among `xs` above `level`. */
function stagedAbove(xs: readonly Tensor[], level: number): boolean {
  return xs.some((x) =>
    x instanceof Tracer && x.trace.active && x.trace.level > level && !(x instanceof BatchTracer)
  );
}

/** The innermost vmap among `xs` when it is inside the differentiation at `level`. */
function vmapAbove(xs: readonly Tensor[], level: number): BatchTrace | null {
  let top: BatchTrace | null = null;
  for (const x of xs) {
    if (x instanceof BatchTracer && x.trace.active && x.trace.level > level) {
      if (!top || x.trace.level > top.level) top = x.trace;
    }
  }
  return top;
}

/**
 * vmap of a custom-vjp function is the custom-vjp function of the vmapped f, fwd and bwd
 * (batch axis 0): the arguments are unwrapped from `batching`, the rule runs one level down,
 * and the results are wrapped back. Cotangents of arguments that were not batched are summed
 * over the batch, as they are shared by every example.
 */
function batchedCustomVjp(
  batching: BatchTrace,
  f: Fn,
  fwd: (...args: any[]) => [any, any],
  bwd: (residuals: any, cotangent: any) => any[],
  args: unknown[],
): unknown {
  const batchedLeaf = (l: unknown) => l instanceof BatchTracer && l.trace === batching;
  const [leaves, def] = flatten(args);
  const inAxes = unflatten(def, leaves.map((l) => (batchedLeaf(l) ? 0 : null))) as unknown[];
  const inner = unflatten(
    def,
    leaves.map((l) => (batchedLeaf(l) ? (l as BatchTracer).value : l)),
  ) as unknown[];
  const batchedBwd = (residuals: unknown, cotangent: unknown) => {
    const grads = vmap(bwd as Fn)(residuals, cotangent) as unknown[];
    return grads.map((g, i) => {
      if (g === null || g === undefined) return g;
      const [argLeaves] = flatten(args[i]);
      const [gl, gd] = flatten(g);
      return unflatten(
        gd,
        gl.map((c, k) => (c instanceof Tensor && !batchedLeaf(argLeaves[k]) ? sum(c, 0) : c)),
      );
    });
  };
  const out = customVjp(
    vmap(f, { inAxes }),
    vmap(fwd as Fn, { inAxes }) as (...a: any[]) => [any, any],
    batchedBwd,
  )(...inner);
  const [outLeaves, outDef] = flatten(out);
  return unflatten(
    outDef,
    outLeaves.map((l) => (l instanceof Tensor ? new BatchTracer(batching, l) : l)),
  );
}

/**
 * Rematerialisation: inside a differentiated function, `checkpoint(f)(...args)` stores only
 * f's inputs and recomputes f's intermediates during the backward pass, trading compute for
 * memory (long unrolled inner loops, second-order MAML with many steps).
 *
 * @example
 * ```ts
 * import { checkpoint, grad, sum, tanh, tensor } from "@metagrad/metagrad";
 * const block = checkpoint((x: any) => tanh(tanh(x)));
 * grad((x: any) => sum(block(x)))(tensor([0.5]));
 * ```
 */
export function checkpoint<F extends Fn>(f: F): F {
  return ((...args: unknown[]) => {
    const inArgs = tensorSlots(args);
    const trace = innermostGradTrace(inArgs.tensors);
    if (!trace) return f(...args);
    const primals = inArgs.tensors.map((t) => trace.unbox(t));
    const out = tidy(() => f(...(inArgs.rebuild(primals) as unknown[])));
    const outSlots = tensorSlots(out);
    const boxed = trace.record(inArgs.tensors, outSlots.tensors, (cts) =>
      // recompute this segment under a fresh vjp; its intermediates die with this tidy
      tidy(() => {
        const g = (...ts: Tensor[]) => tensorSlots(f(...(inArgs.rebuild(ts) as unknown[]))).tensors;
        const [, back] = vjp(g, ...primals);
        return back(cts.map((c, i) => c ?? zerosLike(outSlots.tensors[i]))) as (Tensor | null)[];
      }));
    return outSlots.rebuild(boxed);
  }) as F;
}

/** True for values being traced by a transformation (no concrete storage of their own). */
export function isTracer(x: unknown): boolean {
  return x instanceof Tracer;
}
