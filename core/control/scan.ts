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
    const ncar = p.numCarry;
    const ny = p.body.outputs.length - ncar;
    // the forward pass also stacks each step's incoming carry: the backward pass recomputes
    // one step at a time from it (memory: the carries, not every intermediate)
    const carryVars = p.body.inputs.slice(p.numConsts, p.numConsts + ncar);
    const augmented = { ...p.body, outputs: [...p.body.outputs, ...carryVars] };
    const all = bindMulti(scanPrimitive, inputs, { ...p, body: augmented });
    const outs = all.slice(0, ncar + ny);
    const carriesSeen = all.slice(ncar + ny);
    return {
      outs,
      residuals: carriesSeen,
      backward: (cts) => scanBackward(inputs, p, differentiable, outs, carriesSeen, cts),
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

/**
 * Cotangents of a scan's operands: a scan in the opposite direction whose step recomputes the
 * forward step from its stacked incoming carry and pulls the cotangents back through it,
 * accumulating the consts' cotangents in its carry.
 */
function scanBackward(
  inputs: readonly Tensor[],
  p: ScanParams,
  differentiable: readonly boolean[],
  outs: readonly Tensor[],
  carriesSeen: readonly Tensor[],
  cts: readonly (Tensor | null)[],
): (Tensor | null)[] {
  const { numConsts: nc, numCarry: ncar, length } = p;
  const consts = inputs.slice(0, nc);
  const xs = inputs.slice(nc + ncar);
  const indices = (n: number, keep: (i: number) => boolean) =>
    Array.from({ length: n }, (_, i) => i).filter(keep);
  const diffConsts = indices(nc, (i) => differentiable[i]);
  const floatCarry = indices(ncar, (k) => isFloat(outs[k].dtype));
  const diffXs = indices(xs.length, (j) => differentiable[nc + ncar + j]);
  const floatYs = indices(outs.length - ncar, (j) => isFloat(outs[ncar + j].dtype));

  const ctCarry = floatCarry.map((k) => cts[k] ?? zerosLike(outs[k]));
  const ctYs = floatYs.map((j) => cts[ncar + j] ?? zerosLike(outs[ncar + j]));
  const accumulators = diffConsts.map((i) => zerosLike(consts[i]));

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
      const o = evalProgram(p.body, [...cs, ...cc, ...xx]);
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
  const r = scanLeaves(
    stepBack,
    [...ctCarry, ...accumulators],
    [...carriesSeen, ...xs, ...ctYs],
    length,
    !p.reverse,
  );
  const result: (Tensor | null)[] = inputs.map(() => null);
  diffConsts.forEach((i, m) => (result[i] = r.carry[floatCarry.length + m]));
  floatCarry.forEach((k, m) => {
    if (differentiable[nc + k]) result[nc + k] = r.carry[m];
  });
  diffXs.forEach((j, m) => (result[nc + ncar + j] = r.ys[m]));
  return result;
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
  const params: ScanParams = {
    body: traced.program,
    numConsts: traced.consts.length,
    numCarry: carry.length,
    length,
    reverse: opts.reverse ?? false,
  };
  const outs = bindMulti(scanPrimitive, [...traced.consts, ...carry, ...xsT], params);
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
