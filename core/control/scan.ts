/**
 * scan: a loop traced once into a body program and kept a loop by every transformation —
 * under jit it is one equation (the body compiled once, run `length` times inside the same
 * submission), under grad its backward pass is another scan running the other way, under
 * vmap it scans a batched body. RNN sequences, unrolled inner loops and rollouts are written
 * with it; `fori` is the counted-loop form.
 *
 * The body's closure (parameters, data, another transformation's tracers) is found while
 * tracing it and becomes explicit operands ("consts"), so the rules below see every value the
 * loop depends on.
 */
import { isFloat } from "../dtype.ts";
import { tidy } from "../memory.ts";
import { type Aval, bindMulti, type MultiPrimitive } from "../primitive.ts";
import { fmtShape, sizeOf } from "../shape.ts";
import { shareStorage, Tensor } from "../tensor.ts";
import { flatten, structureEquals, type TreeDef, unflatten } from "../tree.ts";
import { defaultBackend } from "../backend/select.ts";
import type { BackendName } from "../backend/storage.ts";
import { Compiled, eliminateCommonSubexpressions, eliminateDeadCode } from "../jit/compile.ts";
import { evalProgram, type Program, programText, type Var } from "../jit/ir.ts";
import { GpuStorage, runtime } from "../backend/webgpu/runtime.ts";
import { JitTrace } from "../jit/jit_trace.ts";
import { hoistFromBody } from "./scan_hoist.ts";
import { saveProducts } from "./scan_residuals.ts";
import { vjp } from "../autodiff/api.ts";
import { vmap } from "../vmap/vmap.ts";
import { arange, zeros, zerosLike } from "../ops/creation.ts";
import { add } from "../ops/math.ts";
import { broadcastTo, expandDims, moveAxis, slice, stack } from "../ops/shape.ts";

/** Parameters of the scan primitive. Operands: consts, then the initial carry, then xs. */
export interface ScanParams {
  /** Inputs: consts, carry, one step's x; outputs: the next carry, then one step's y. */
  readonly body: Program;
  readonly numConsts: number;
  readonly numCarry: number;
  readonly length: number;
  readonly reverse: boolean;
}

const sameAval = (a: Aval, b: Aval) =>
  a.dtype === b.dtype && a.shape.length === b.shape.length &&
  a.shape.every((d, i) => d === b.shape[i]);

const fmtAval = (a: Aval) => `${a.dtype}${fmtShape(a.shape)}`;

/** Compiled bodies, per program and backend: a jitted scan compiles its body once. */
const compiledBodies = new WeakMap<Program, Map<BackendName, Compiled>>();

function compiledBody(body: Program, backend: BackendName): Compiled {
  let byBackend = compiledBodies.get(body);
  if (!byBackend) compiledBodies.set(body, byBackend = new Map());
  let c = byBackend.get(backend);
  if (!c) byBackend.set(backend, c = new Compiled(body, backend));
  return c;
}

/** One step's slices of the stacked operands (tidy frees slice's intermediate). */
const stepOf = (xs: readonly Tensor[], t: number) => tidy(() => xs.map((x) => slice(x, [t])));

/**
 * A scan's per-step traffic on the device as copy commands: each step's xs are copied out of
 * the stacked operands, and its ys into their slots of the stacked results, made once. A
 * slice or a stack would be a kernel per value per step (on llvmpipe 30–100 µs each).
 */
function stepCopies(p: ScanParams) {
  const nx = p.body.inputs.length - p.numConsts - p.numCarry;
  const xVars = p.body.inputs.slice(p.numConsts + p.numCarry);
  const yVars = p.body.outputs.slice(p.numCarry);
  const bytes = (v: Var) => sizeOf(v.shape) * 4; // every dtype is stored in 4 bytes
  // held until recorded: before the device exists the copy waits in the queue
  const copy = (src: GpuStorage, at: number, dst: GpuStorage, to: number, n: number) =>
    runtime.enqueueHolding([src, dst], () => runtime.copyBytes(src, at, dst, to, n));
  const ys = yVars.map((v) =>
    new Tensor([p.length, ...v.shape], v.dtype, new GpuStorage(p.length * bytes(v)))
  );
  return {
    ys,
    xsAt(xs: readonly Tensor[], t: number): Tensor[] {
      return xs.slice(0, nx).map((x, j) => {
        const v = xVars[j];
        const storage = new GpuStorage(bytes(v));
        copy(x.storage as GpuStorage, t * bytes(v), storage, 0, bytes(v));
        return new Tensor(v.shape, v.dtype, storage);
      });
    },
    storeYs(stepYs: readonly Tensor[], t: number): void {
      stepYs.forEach((y, k) => {
        const n = bytes(yVars[k]);
        copy(y.storage as GpuStorage, 0, ys[k].storage as GpuStorage, t * n, n);
        y.dispose();
      });
    },
  };
}

export const scanPrimitive: MultiPrimitive<ScanParams> = {
  name: "scan",
  multi: true,

  abstractEval(inputs, p) {
    const { body, numConsts: nc, numCarry: ncar, length } = p;
    if (inputs.length !== body.inputs.length) {
      throw new Error(`internal: scan of ${body.inputs.length} operands given ${inputs.length}`);
    }
    inputs.forEach((a, i) => {
      const v = body.inputs[i];
      const expected = i < nc + ncar ? v : { shape: [length, ...v.shape], dtype: v.dtype };
      if (!sameAval(a, expected)) {
        throw new TypeError(
          `scan: operand ${i} is ${fmtAval(a)} where the body was traced for ${fmtAval(expected)}`,
        );
      }
    });
    return body.outputs.map((v, k) =>
      k < ncar
        ? { shape: v.shape, dtype: v.dtype }
        : { shape: [length, ...v.shape], dtype: v.dtype }
    );
  },

  impl(inputs, p) {
    const { numConsts: nc, numCarry: ncar, length } = p;
    const backend = inputs[0]?.backend ?? defaultBackend();
    const body = compiledBody(p.body, backend);
    const consts = inputs.slice(0, nc);
    const xs = inputs.slice(nc + ncar);
    let carry = inputs.slice(nc, nc + ncar);
    let ownCarry = carry.map(() => false); // the caller's initial carry is never freed
    const ys: Tensor[][] = p.body.outputs.slice(ncar).map(() => []);
    // on the device, steps' xs are copied out of the stacked operands and their ys into the
    // stacked results by copy commands, not kernels (`stepCopies`)
    const copies = backend === "webgpu" && length > 0 ? stepCopies(p) : null;
    for (let i = 0; i < length; i++) {
      const t = p.reverse ? length - 1 - i : i;
      const xt = copies ? copies.xsAt(xs, t) : stepOf(xs, t);
      const outs = body.runOwned(
        [...consts, ...carry, ...xt],
        [...consts.map(() => false), ...ownCarry, ...xt.map(() => true)],
      );
      carry = outs.slice(0, ncar);
      ownCarry = carry.map(() => true);
      if (copies) copies.storeYs(outs.slice(ncar), t);
      else outs.slice(ncar).forEach((y, k) => ys[k].push(y));
    }
    if (copies) return [...carry.map((c, k) => (ownCarry[k] ? c : shareStorage(c))), ...copies.ys];
    const carryOut = carry.map((c, k) => (ownCarry[k] ? c : shareStorage(c)));
    const ysOut = ys.map((list, k) => {
      const v = p.body.outputs[ncar + k];
      if (list.length === 0) return zeros([0, ...v.shape], { dtype: v.dtype, backend });
      if (p.reverse) list.reverse();
      const stacked = stack(list);
      for (const y of list) y.dispose();
      return stacked;
    });
    return [...carryOut, ...ysOut];
  },

  vjp(inputs, p, differentiable) {
    // the forward loop also stacks what the backward loop reads per step: the carries it
    // came in with and the products it saves (`planBackward`)
    const plan = planBackward(inputs, p, differentiable);
    const all = bindMulti(scanPrimitive, inputs, { ...p, body: plan.forward });
    const outs = all.slice(0, p.body.outputs.length);
    const stacked = all.slice(p.body.outputs.length);
    return {
      outs,
      residuals: stacked,
      backward: (cts) => plan.backward(outs, stacked, cts),
    };
  },

  batch(values, batched, p, size) {
    const { numConsts: nc, numCarry: ncar } = p;
    const consts = values.slice(0, nc);
    // once anything is batched the carry becomes batched after one step, so batch it from
    // the start: the body then has one signature for every step
    const init = values.slice(nc, nc + ncar).map((c, k) =>
      batched[nc + k] ? c : broadcastTo(expandDims(c, 0), [size, ...c.shape])
    );
    const xsBatched = batched.slice(nc + ncar);
    const xs = values.slice(nc + ncar).map((x, j) => (xsBatched[j] ? moveAxis(x, 0, 1) : x));
    const batchedBody = vmap(
      (cs: Tensor[], c: Tensor[], x: Tensor[]) => evalProgram(p.body, [...cs, ...c, ...x]),
      {
        inAxes: [
          batched.slice(0, nc).map((b) => (b ? 0 : null)),
          0,
          xsBatched.map((b) => (b ? 0 : null)),
        ],
      },
    );
    const r = scanLeaves(
      (c, x) => {
        const o = batchedBody(consts, c, x) as Tensor[];
        return [o.slice(0, ncar), o.slice(ncar)];
      },
      init,
      xs,
      p.length,
      p.reverse,
    );
    return [...r.carry, ...r.ys.map((y) => moveAxis(y, 1, 0))];
  },

  kernelCount(p) {
    // xs and ys move by copy commands
    return p.length * compiledBody(p.body, "webgpu").kernelCount;
  },

  planText(p) {
    return `each of ${p.length} steps:\n${compiledBody(p.body, "webgpu").planText()}`;
  },

  describe(p) {
    const body = programText(p.body).split("\n").join("\n      ");
    return `[length=${p.length} reverse=${p.reverse} consts=${p.numConsts} carry=${p.numCarry}\n      body=${body}]`;
  },
};

/** A scan's backward pass, planned when its forward pass is bound. */
interface BackwardPlan {
  /** The forward body, its outputs followed by what it stacks for the backward loop. */
  forward: Program;
  /** Cotangents of the scan's operands from its results and their stacked extras. */
  backward(
    outs: readonly Tensor[],
    stacked: readonly Tensor[],
    cts: readonly (Tensor | null)[],
  ): (Tensor | null)[];
}

/** A flat list's tree structure. */
const listDef = (n: number): TreeDef => ({
  kind: "array",
  children: Array.from({ length: n }, () => ({ kind: "leaf" }) as TreeDef),
});

/**
 * The backward pass of a scan: a scan in the opposite direction whose step pulls the
 * cotangents back through the forward step, recomputed from the carry that step came in with
 * — except its products, which the forward loop saves (`saveProducts`) — accumulating the
 * consts' cotangents (summed after the loop where they are products or sums of per-step
 * values: `hoistFromBody`). The step is traced here, before the forward loop is bound, so
 * the forward knows what to stack.
 */
function planBackward(
  inputs: readonly Tensor[],
  p: ScanParams,
  differentiable: readonly boolean[],
): BackwardPlan {
  const { body, numConsts: nc, numCarry: ncar, length } = p;
  const consts = inputs.slice(0, nc);
  const xs = inputs.slice(nc + ncar);
  const indices = (n: number, keep: (i: number) => boolean) =>
    Array.from({ length: n }, (_, i) => i).filter(keep);
  const diffConsts = indices(nc, (i) => differentiable[i]);
  const floatCarry = indices(ncar, (k) => isFloat(body.outputs[k].dtype));
  const diffXs = indices(xs.length, (j) => differentiable[nc + ncar + j]);
  const floatYs = indices(body.outputs.length - ncar, (j) => isFloat(body.outputs[ncar + j].dtype));
  const carryVars = body.inputs.slice(nc, nc + ncar);
  const xVars = body.inputs.slice(nc + ncar);

  // step: carry [carry cotangents, const accumulators], x [incoming carry, x, y cotangents]
  const stepBack = (carry: Tensor[], x: Tensor[]): [Tensor[], Tensor[]] => {
    const gCarry = carry.slice(0, floatCarry.length);
    const acc = carry.slice(floatCarry.length);
    const carryT = x.slice(0, ncar);
    const xT = x.slice(ncar, ncar + xs.length);
    const gY = x.slice(ncar + xs.length);
    const forward = (cd: Tensor[], cf: Tensor[], xd: Tensor[]) => {
      const cs = [...consts], cc = [...carryT], xx = [...xT];
      diffConsts.forEach((i, m) => (cs[i] = cd[m]));
      floatCarry.forEach((k, m) => (cc[k] = cf[m]));
      diffXs.forEach((j, m) => (xx[j] = xd[m]));
      const o = evalProgram(body, [...cs, ...cc, ...xx]);
      return [floatCarry.map((k) => o[k]), floatYs.map((j) => o[ncar + j])];
    };
    const [, pullback] = vjp(
      forward,
      diffConsts.map((i) => consts[i]),
      floatCarry.map((k) => carryT[k]),
      diffXs.map((j) => xT[j]),
    );
    const [gConsts, gCarryPrev, gX] = pullback([gCarry, gY]) as Tensor[][];
    return [[...gCarryPrev, ...acc.map((a, m) => add(a, gConsts[m]))], gX];
  };
  const aval = (v: Aval) => ({ shape: v.shape, dtype: v.dtype });
  const carryAvals = [
    ...floatCarry.map((k) => aval(body.outputs[k])),
    ...diffConsts.map((i) => aval(consts[i])),
  ];
  const xAvals = [
    ...carryVars.map(aval),
    ...xVars.map(aval),
    ...floatYs.map((j) => aval(body.outputs[ncar + j])),
  ];
  const traced = traceBody(
    (c, x) => stepBack(c as Tensor[], x as Tensor[]),
    carryAvals,
    listDef(carryAvals.length),
    xAvals,
    listDef(xAvals.length),
    inputs[0]?.backend ?? defaultBackend(),
  );
  const nb = traced.consts.length, nCarry = carryAvals.length;
  const at = { carryT: nb + nCarry, xT: nb + nCarry + ncar };

  // the backward inputs that are forward values, as the forward body's inputs
  const constantVars = new Map<Tensor, Var>();
  for (const e of body.eqns) {
    for (const v of e.inputs) if (v.constant) constantVars.set(v.constant, v);
  }
  const roots = new Map<number, Var>();
  traced.consts.forEach((t, m) => {
    const i = consts.indexOf(t);
    const v = i >= 0 ? body.inputs[i] : constantVars.get(t);
    if (v) roots.set(traced.program.inputs[m].id, v);
  });
  carryVars.forEach((v, k) => roots.set(traced.program.inputs[at.carryT + k].id, v));
  xVars.forEach((v, j) => roots.set(traced.program.inputs[at.xT + j].id, v));
  const saved = saveProducts(body, traced.program, roots, nc, length);
  const back = saved?.backward ?? traced.program;
  const forwardOuts = saved?.forward ?? body;
  const numSaved = saved?.count ?? 0;

  // stack only the incoming carries the backward step still reads
  const read = new Set<number>([
    ...back.eqns.flatMap((e) => e.inputs.map((v) => v.id)),
    ...back.outputs.map((v) => v.id),
  ]);
  const carriesRead = indices(ncar, (k) => read.has(back.inputs[at.carryT + k].id));
  const unread = new Set(
    indices(ncar, (k) => !carriesRead.includes(k)).map((k) => back.inputs[at.carryT + k]),
  );
  const backBody: Program = { ...back, inputs: back.inputs.filter((v) => !unread.has(v)) };
  const nOut = body.outputs.length;
  const forward: Program = {
    ...forwardOuts,
    outputs: [
      ...forwardOuts.outputs.slice(0, nOut),
      ...carriesRead.map((k) => carryVars[k]),
      ...forwardOuts.outputs.slice(nOut),
    ],
  };

  return {
    forward,
    backward(outs, stacked, cts) {
      const carriesSeen = stacked.slice(0, carriesRead.length);
      const products = stacked.slice(carriesRead.length, carriesRead.length + numSaved);
      const ctCarry = floatCarry.map((k) => cts[k] ?? zerosLike(outs[k]));
      const ctYs = floatYs.map((j) => cts[ncar + j] ?? zerosLike(outs[ncar + j]));
      // the accumulators start at zero: bindScan may sum each after the loop instead
      const carry = [...ctCarry, ...diffConsts.map((i) => () => zerosLike(consts[i]))];
      const r = bindScan(backBody, traced.consts, carry, [
        ...carriesSeen,
        ...xs,
        ...ctYs,
        ...products,
      ], {
        length,
        reverse: !p.reverse,
        sums: diffConsts.map((_, m) => floatCarry.length + m),
      });
      const result: (Tensor | null)[] = inputs.map(() => null);
      diffConsts.forEach((i, m) => (result[i] = r[floatCarry.length + m]));
      floatCarry.forEach((k, m) => {
        if (differentiable[nc + k]) result[nc + k] = r[m];
      });
      diffXs.forEach((j, m) => (result[nc + ncar + j] = r[nCarry + m]));
      return result;
    },
  };
}

/**
 * Bind a scan of a traced body (inputs: consts, carry, xs), moving out of the loop what
 * `hoistFromBody` can; a carry given as a function is made only if it stays in the loop.
 * Returns the final carry, then the stacked ys.
 */
function bindScan(
  body: Program,
  consts: readonly Tensor[],
  carry: readonly (Tensor | (() => Tensor))[],
  xs: readonly Tensor[],
  opts: { length: number; reverse: boolean; sums?: readonly number[] },
): Tensor[] {
  const { length, reverse } = opts;
  const hoisted = hoistFromBody(body, {
    numConsts: consts.length,
    numCarry: carry.length,
    length,
    sums: opts.sums,
  });
  const kept = hoisted?.keptCarry ?? carry.map((_, k) => k);
  const init = kept.map((k) => {
    const c = carry[k];
    return c instanceof Tensor ? c : c();
  });
  const bound = bindMulti(scanPrimitive, [...consts, ...init, ...xs], {
    body: hoisted?.program ?? body,
    numConsts: consts.length,
    numCarry: kept.length,
    length,
    reverse,
  });
  return hoisted ? hoisted.finish(bound, xs) : bound;
}

/** A traced body: its program and the outside values it reads. */
interface TracedBody {
  program: Program;
  consts: Tensor[];
  yDef: TreeDef;
}

/**
 * Trace `f(carry, x)` once on abstract values. Every outside value it reads becomes a const
 * operand; the carry it returns must keep the initial carry's structure, shapes and dtypes.
 */
function traceBody(
  f: (carry: unknown, x: unknown) => unknown,
  carryAvals: readonly Aval[],
  carryDef: TreeDef,
  xAvals: readonly Aval[],
  xDef: TreeDef,
  backend: BackendName,
): TracedBody {
  const trace = new JitTrace(backend, true);
  const carryIn = carryAvals.map((a) => trace.input(a.shape, a.dtype));
  const xIn = xAvals.map((a) => trace.input(a.shape, a.dtype));
  const result = trace.run(() => f(unflatten(carryDef, carryIn), unflatten(xDef, xIn)));
  if (!Array.isArray(result) || result.length !== 2) {
    throw new TypeError("scan: the body must return [carry, y] (y may be null)");
  }
  const [carryLeaves, outDef] = flatten(result[0]);
  if (!structureEquals(outDef, carryDef)) {
    throw new TypeError(
      "scan: the body returned a carry whose pytree structure differs from the initial carry's",
    );
  }
  carryLeaves.forEach((l, i) => {
    if (!(l instanceof Tensor) || !sameAval(l, carryAvals[i])) {
      throw new TypeError(
        `scan: carry leaf ${i} is ${fmtAval(carryAvals[i])} initially but the body returned ${
          l instanceof Tensor ? fmtAval(l) : typeof l
        }; the carry must keep its shape and dtype (cast or reshape in the body)`,
      );
    }
  });
  const [yLeaves, yDef] = flatten(result[1]);
  yLeaves.forEach((l, i) => {
    if (!(l instanceof Tensor)) {
      throw new TypeError(`scan: output leaf ${i} of the body's y is ${typeof l}, not a tensor`);
    }
  });
  const outputs = [...carryLeaves, ...yLeaves].map((l) => trace.varOf(l as Tensor));
  const captured = trace.captured();
  const program: Program = {
    inputs: [...captured.map(([, v]) => v), ...trace.inputs],
    eqns: trace.eqns,
    outputs,
  };
  return {
    program: eliminateDeadCode(eliminateCommonSubexpressions(program)),
    consts: captured.map(([t]) => t),
    yDef,
  };
}

/** scan over flat lists of tensors (what the rules use); ys come back stacked. */
function scanLeaves(
  f: (carry: Tensor[], x: Tensor[]) => [Tensor[], Tensor[]],
  init: readonly Tensor[],
  xs: readonly Tensor[],
  length: number,
  reverse: boolean,
): { carry: Tensor[]; ys: Tensor[] } {
  const r = scanTree(
    (c, x) => f(c as Tensor[], x as Tensor[]),
    [...init],
    [...xs],
    { length, reverse },
  );
  return { carry: r[0] as Tensor[], ys: (r[1] ?? []) as Tensor[] };
}

/** Options of `scan`. */
export interface ScanOptions {
  /** Number of steps; required when xs is null, checked against xs otherwise. */
  length?: number;
  /** Run from the last step to the first (ys keep their positions). */
  reverse?: boolean;
}

function scanTree(
  f: (carry: unknown, x: unknown) => unknown,
  init: unknown,
  xs: unknown,
  opts: ScanOptions,
): [unknown, unknown] {
  const [initLeaves, carryDef] = flatten(init);
  const [xLeaves, xDef] = flatten(xs);
  for (const [what, leaves] of [["init", initLeaves], ["xs", xLeaves]] as const) {
    leaves.forEach((l, i) => {
      if (!(l instanceof Tensor)) {
        throw new TypeError(
          `scan: leaf ${i} of ${what} is ${typeof l}, not a tensor (wrap numbers with tensor())`,
        );
      }
    });
  }
  const carry = initLeaves as Tensor[];
  const xsT = xLeaves as Tensor[];
  let length = opts.length;
  for (const x of xsT) {
    if (x.ndim === 0) throw new TypeError("scan: xs leaves need a leading axis to scan over");
    if (length !== undefined && x.shape[0] !== length) {
      throw new RangeError(
        `scan: xs leaf of shape ${fmtShape(x.shape)} has ${x.shape[0]} steps where ${
          opts.length !== undefined ? "length is" : "another xs leaf has"
        } ${length}`,
      );
    }
    length = x.shape[0];
  }
  if (length === undefined) throw new TypeError("scan: give xs or a length");
  if (!Number.isInteger(length) || length < 0) {
    throw new RangeError(`scan: length must be a non-negative integer, got ${length}`);
  }
  const backend = [...carry, ...xsT][0]?.backend ?? defaultBackend();
  const traced = traceBody(
    f,
    carry,
    carryDef,
    xsT.map((x) => ({ shape: x.shape.slice(1), dtype: x.dtype })),
    xDef,
    backend,
  );
  const outs = bindScan(traced.program, traced.consts, carry, xsT, {
    length,
    reverse: opts.reverse ?? false,
  });
  return [
    unflatten(carryDef, outs.slice(0, carry.length)),
    unflatten(traced.yDef, outs.slice(carry.length)),
  ];
}

/**
 * Loop `f(carry, x) -> [carry, y]` over the leading axis of `xs`, like JAX's `lax.scan`:
 * returns the final carry and the per-step ys stacked along a new leading axis. The body is
 * traced once; under `jit` it stays one loop (not unrolled), `grad` differentiates it with a
 * reverse scan, `vmap` batches it. carry, xs and y are pytrees of tensors.
 *
 * @example
 * ```ts
 * import { scan, tensor, add } from "@metagrad/metagrad";
 * // running sum: carry is the total so far, y the total after each step
 * const [total, partial] = scan((c: any, x: any) => {
 *   const s = add(c, x);
 *   return [s, s];
 * }, tensor(0), tensor([1, 2, 3]));
 * // total = 6, partial = [1, 3, 6]
 * ```
 */
export function scan<C, Y = unknown>(
  f: (carry: C, x: any) => [C, Y],
  init: C,
  xs: unknown = null,
  opts: ScanOptions = {},
): [C, Y] {
  return scanTree(f as (c: unknown, x: unknown) => unknown, init, xs, opts) as [C, Y];
}

/**
 * A counted loop, `for (i = lower; i < upper; i++) carry = f(i, carry)`, as a scan: traced
 * once, differentiable and batchable. `i` is an i32 scalar tensor.
 *
 * @example
 * ```ts
 * import { fori, tensor, mul } from "@metagrad/metagrad";
 * const x = fori(0, 3, (_i: any, x: any) => mul(x, 2), tensor(1)); // 8
 * ```
 */
export function fori<C>(lower: number, upper: number, f: (i: Tensor, carry: C) => C, init: C): C {
  if (!Number.isInteger(lower) || !Number.isInteger(upper)) {
    throw new RangeError(`fori: bounds must be integers, got ${lower} and ${upper}`);
  }
  const first = flatten(init)[0].find((l): l is Tensor => l instanceof Tensor);
  const backend = first?.backend ?? defaultBackend();
  const steps = arange(lower, Math.max(lower, upper), 1, { dtype: "i32", backend });
  return scan((c: C, i: Tensor) => [f(i, c), null], init, steps)[0];
}
