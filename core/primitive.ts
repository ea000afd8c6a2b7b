/**
 * Primitives are the closed op set every transformation interprets. A primitive is defined
 * once, in its own file under core/primitives/, with all of its rules: the shape/dtype rule,
 * the reference implementation (float64 TypeScript, the test oracle) and the WebGPU
 * implementation (a call into a kernel family). `bind` is the single entry point through
 * which every op runs.
 */
import type { DType } from "./dtype.ts";
import { RefStorage } from "./backend/reference/storage.ts";
import { defaultBackend } from "./backend/select.ts";
import type { BackendName } from "./backend/storage.ts";
import { GpuStorage, runtime } from "./backend/webgpu/runtime.ts";
import type { KernelMemo } from "./backend/webgpu/kernel_memo.ts";
import { deferElementwise, shouldDefer } from "./fusion/eager.ts";
import { type AffineLayout, type IndexBox, sizeOf } from "./shape.ts";
import { Tensor } from "./tensor.ts";
import { ambientTrace, topTrace, withoutAmbientTrace } from "./tracer.ts";

/** Abstract value: what is known of a tensor without its values. */
export interface Aval {
  readonly shape: readonly number[];
  readonly dtype: DType;
}

/** Operand handed to a WebGPU implementation. */
export interface GpuOperand extends Aval {
  storage: GpuStorage;
}

/**
 * Given to `fusion` by callers whose kernels are reused across calls (eager fusion): puts a
 * u32 in the kernel's parameter block and returns its index, for the parameter's expression
 * (`fromBits` in fill.ts). Without it, values are written into the source as literals.
 */
export type ParamSlot = (bits: number) => number;

export type { KernelMemo } from "./backend/webgpu/kernel_memo.ts";

export interface Primitive<P = Record<string, never>> {
  readonly name: string;
  /**
   * The kernel families jit fuses elementwise work into: a reduction (prologues and epilogues)
   * or a matmul (epilogues, a second product). Absent for the rest; elementwise and positional
   * primitives say so by their `fusion` and `positional` rules, views by `view` and `window`.
   */
  readonly kind?: "reduction" | "matmul";
  /** Shape and dtype of the result; throws a clear error for invalid inputs. */
  abstractEval(inputs: readonly Aval[], params: P): Aval;
  /** Float64 reference: input values (row-major) to output values. */
  reference(
    inputs: readonly Float64Array[],
    avals: readonly Aval[],
    params: P,
    out: Aval,
  ): Float64Array;
  /** Encode the computation into `out` (its buffer is allocated by the kernel family). */
  webgpu(
    inputs: readonly GpuOperand[],
    params: P,
    out: Aval & { storage: GpuStorage },
    memo?: KernelMemo,
  ): void;
  /**
   * Optional: a result that shares the input's storage instead of computing (views such as
   * reshape). Returning null falls back to computing.
   */
  view?(input: Tensor, params: P, out: Aval): Tensor | null;
  /**
   * Optional, for primitives whose result is its input read through an affine layout (slice,
   * transpose, a reshape that adds or drops axes of size 1): the result's layout given the
   * input's, or null when this call is not such a view (a reshape that regroups elements). jit
   * reads such results where they lie (a window) instead of storing them.
   */
  window?(params: P, input: AffineLayout, out: Aval): AffineLayout | null;
  /**
   * Optional, for primitives whose result is a stored input placed inside a box of zeros (a
   * zero pad): where the input's elements lie as seen from the result's index space — `offset`
   * (may be negative) and `strides` over the result's axes — and the box `lo` + `size` they
   * fill; null when this call is not such a placement. jit reads such results in place (0
   * outside the box) instead of storing them.
   */
  boxedWindow?(params: P, input: Aval, out: Aval): (AffineLayout & IndexBox) | null;
  /**
   * Reverse-mode rule: given the cotangent `g` of the output, the cotangents of the inputs
   * (null = zero or not differentiable). Written with ops, so it is differentiable again.
   * Primitives without it (integer-valued ones) never propagate gradients.
   */
  vjp?(g: Tensor, inputs: readonly Tensor[], out: Tensor, params: P): (Tensor | null)[];
  /**
   * Batching rule for vmap: inputs with `batched[i]` carry an extra leading batch axis of
   * `size`; return the batched result (batch axis first). Written with ops, so it composes
   * with grad and nested vmap.
   */
  batch?(inputs: readonly Tensor[], batched: readonly boolean[], params: P, size: number): Tensor;
  /**
   * For elementwise primitives: the WGSL expression of one output element given the input
   * values' expressions (`args`, of each input's value type). jit fuses chains of such
   * primitives into one kernel with it.
   */
  fusion?(
    inputs: readonly Aval[],
    params: P,
    args: readonly string[],
    param?: ParamSlot,
  ): string;
  /** WGSL functions that `fusion`'s expressions may call. */
  fusionHelpers?: string;
  /**
   * For primitives computed per element whose value depends on the element's position (random
   * bits drawn by counter; a stack picking an operand by coordinate): where `applies` holds
   * (always when absent), the WGSL expression of the result's element at linear index `index`
   * (a u32 expression), given the inputs' values there (each input broadcasts into the result).
   * jit fuses such an equation only into kernels iterating over exactly its result's shape.
   * Its functions must be among the fused kernels' helpers.
   */
  positional?: PositionalRule<P>;
}

/** A primitive's per-element rule that reads the element's position (`Primitive.positional`). */
export interface PositionalRule<P> {
  applies?(inputs: readonly Aval[], params: P): boolean;
  expr(
    inputs: readonly Aval[],
    params: P,
    args: readonly string[],
    out: Aval,
    index: string,
  ): string;
}

/**
 * A primitive with several results whose parameters hold a sub-program (scan). Its rules are
 * whole-transformation rules rather than per-element ones: concrete evaluation, reverse mode
 * (forward pass with residuals plus a backward closure) and batching. Each is written with
 * ops and primitives, so its results are transformable again.
 */
export interface MultiPrimitive<P> {
  readonly name: string;
  readonly multi: true;
  /** Shapes and dtypes of the results; throws a clear error for invalid inputs. */
  abstractEval(inputs: readonly Aval[], params: P): Aval[];
  /** Evaluation on concrete tensors (any backend); results are new tensors the caller owns. */
  impl(inputs: readonly Tensor[], params: P): Tensor[];
  /**
   * Reverse mode on the primal values: compute the results (and what the backward pass needs),
   * and return the backward closure from result cotangents (null = zero) to the cotangents of
   * the inputs flagged `differentiable` (null for the others).
   */
  vjp(
    inputs: readonly Tensor[],
    params: P,
    differentiable: readonly boolean[],
  ): {
    outs: Tensor[];
    residuals: Tensor[];
    backward(cotangents: readonly (Tensor | null)[]): (Tensor | null)[];
  };
  /** Batching: inputs with `batched[i]` carry a leading batch axis; every result gets one. */
  batch(inputs: readonly Tensor[], batched: readonly boolean[], params: P, size: number): Tensor[];
  /** Kernels one application dispatches, for `jit(f).lower(...).kernels`. */
  kernelCount(params: P): number;
  /** Short text of the parameters for printed programs. */
  describe(params: P): string;
  /**
   * Optional: the kernels one application runs on WebGPU, one line each, for
   * `jit(f).lower(...).plan` (a scan's compiled body, run once per step).
   */
  planText?(params: P): string;
}

/** Run a multi-result primitive: through the innermost trace, or on concrete tensors. */
export function bindMulti<P>(
  prim: MultiPrimitive<P>,
  inputs: readonly Tensor[],
  params: P,
): Tensor[] {
  const trace = inputs.length ? topTrace(prim.name, inputs) : ambientTrace();
  if (trace) return trace.processMulti(prim, inputs, params);
  for (const t of inputs) t.storage; // throws a clear error for a disposed tensor
  const backends = new Set(inputs.map((t) => t.backend));
  if (backends.size > 1) {
    throw new TypeError(
      `${prim.name}: inputs live on different backends (${[...backends].join(" and ")}); ` +
        `create all tensors after one setBackend() call`,
    );
  }
  return withoutAmbientTrace(() => prim.impl(inputs, params));
}

/** Run primitive `prim` on concrete tensors (`memo`: see `KernelMemo`). */
export function bind<P>(
  prim: Primitive<P>,
  inputs: readonly Tensor[],
  params: P,
  backend?: BackendName,
  memo?: KernelMemo,
): Tensor {
  const trace = inputs.length ? topTrace(prim.name, inputs) : ambientTrace();
  if (trace) return trace.process(prim, inputs, params);
  const avals = inputs.map((t) => {
    t.storage; // throws a clear error for a disposed tensor
    return { shape: t.shape, dtype: t.dtype };
  });
  const out = prim.abstractEval(avals, params);
  const where = inputs.length ? inputs[0].backend : (backend ?? defaultBackend());
  for (const t of inputs) {
    if (t.backend !== where) {
      throw new TypeError(
        `${prim.name}: inputs live on different backends (${where} and ${t.backend}); ` +
          `create all tensors after one setBackend() call`,
      );
    }
  }
  if (prim.view && inputs.length === 1) {
    const v = prim.view(inputs[0], params, out);
    if (v) return v;
  }
  if (where === "reference") {
    const vals = inputs.map((t) => (t.storage as RefStorage).values);
    const result = prim.reference(vals, avals, params, out);
    const n = sizeOf(out.shape);
    if (result.length !== n) {
      throw new Error(`internal: ${prim.name} reference produced ${result.length} values for ${n}`);
    }
    return new Tensor(out.shape, out.dtype, new RefStorage(result));
  }
  if (!memo && shouldDefer(prim, inputs, out)) {
    return new Tensor(out.shape, out.dtype, deferElementwise(prim, inputs, params, out));
  }
  const storages = inputs.map((t) => t.storage as GpuStorage);
  const outStorage = new GpuStorage(sizeOf(out.shape) * 4);
  try {
    runtime.enqueueHolding([...storages, outStorage], () =>
      prim.webgpu(
        inputs.map((t, i) => ({ shape: t.shape, dtype: t.dtype, storage: storages[i] })),
        params,
        { ...out, storage: outStorage },
        memo,
      ));
  } catch (e) {
    outStorage.release(); // the result tensor is never made
    throw e;
  }
  return new Tensor(out.shape, out.dtype, outStorage);
}
