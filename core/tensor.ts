/**
 * The tensor: a shape, a dtype and refcounted backend storage. Ops enqueue work and return
 * at once; only reading values (`data`, `array`, `item`) waits for the device.
 */
import type { DType, DTypeLike, TensorData } from "./dtype.ts";
import { readFloat64, readStorage } from "./backend/select.ts";
import type { BackendName, Storage } from "./backend/storage.ts";
import { track, untrack } from "./memory.ts";
import { fmtShape, sizeOf } from "./shape.ts";
import type * as OpsModule from "./ops/all.ts";

/**
 * The op functions behind Tensor's methods. Bound late by core/ops/all.ts: the ops import
 * this module, so importing them here would make a cycle that breaks class initialisation.
 */
let ops: typeof OpsModule;

/** @internal Called once by core/ops/all.ts. */
export function registerTensorOps(table: typeof OpsModule): void {
  ops = table;
}

/** Nested JS arrays as returned by `Tensor.array()`. */
export type NestedArray = number | boolean | NestedArray[];

/** Anything ops accept where a tensor is expected: a tensor or a JS number/boolean. */
export type TensorLike = Tensor | number | boolean;

/** Tensors handed over to a jitted function (`donateArgnums`), and to which one. */
const donations = new WeakMap<Tensor, string>();

/** @internal Record that `t` was donated to `to` (named in the error of a later use). */
export function noteDonation(t: Tensor, to: string): void {
  donations.set(t, to);
}

/**
 * An n-dimensional array on a backend (WebGPU by default).
 *
 * @example
 * ```ts
 * import { tensor } from "@metagrad/metagrad";
 * const x = tensor([[1, 2], [3, 4]]);
 * console.log(await x.matmul(x).array()); // [[7, 10], [15, 22]]
 * ```
 */
export class Tensor {
  /** Size of each axis. */
  readonly shape: readonly number[];
  /** Element type. */
  readonly dtype: DType;
  #storage: Storage | null;

  /**
   * @internal Use the creation functions (`tensor`, `zeros`, ...) instead. `storage` is null
   * only for tracers (values being traced by a transformation), which hold no memory.
   */
  constructor(shape: readonly number[], dtype: DType, storage: Storage | null) {
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.#storage = storage;
    if (storage) track(this, storage);
  }

  /** Number of elements. */
  get size(): number {
    return sizeOf(this.shape);
  }

  /** Number of axes. */
  get ndim(): number {
    return this.shape.length;
  }

  /** Backend holding the values. */
  get backend(): BackendName {
    return this.storage.backend;
  }

  /**
   * Weakly typed: a JS number that jit traced as a scalar. In arithmetic it takes the other
   * operand's dtype as the number would (JAX's weak types); concrete tensors never are.
   */
  get weak(): boolean {
    return false;
  }

  /** True after `dispose()` (directly or by `tidy`). */
  get isDisposed(): boolean {
    return this.#storage === null;
  }

  /** @internal The backend storage; throws if disposed. */
  get storage(): Storage {
    if (!this.#storage) {
      const donatedTo = donations.get(this);
      throw new ReferenceError(
        donatedTo
          ? `a ${this.dtype}${fmtShape(this.shape)} tensor was used after it was donated to ` +
            `${donatedTo}, which reused its memory for its results; use the results it ` +
            `returned (the new state) instead, or leave that argument out of donateArgnums`
          : `a ${this.dtype}${fmtShape(this.shape)} tensor was used after it was disposed ` +
            `(by dispose() or a tidy scope); return it from tidy or wrap it in keep()`,
      );
    }
    return this.#storage;
  }

  /** Free the tensor's device memory now. Safe to call twice. */
  dispose(): void {
    if (!this.#storage) return;
    const s = this.#storage;
    this.#storage = null;
    untrack(this);
    s.release();
  }

  /** `using x = ...` disposes x at the end of the block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Values as a typed array (Float32Array, Int32Array, Uint32Array, or Uint8Array for bool). */
  data(): Promise<TensorData> {
    return readStorage(this.storage, this.dtype, this.size);
  }

  /** Values at the backend's precision as float64 (exact on the reference backend). */
  toFloat64(): Promise<Float64Array> {
    return readFloat64(this.storage, this.dtype, this.size);
  }

  /** Values as nested JS arrays (booleans for bool tensors). */
  async array(): Promise<NestedArray> {
    const flat = await this.data();
    const isBool = this.dtype === "bool";
    const build = (axis: number, offset: number): NestedArray => {
      if (axis === this.shape.length) return isBool ? flat[offset] !== 0 : flat[offset];
      const step = sizeOf(this.shape.slice(axis + 1));
      return Array.from({ length: this.shape[axis] }, (_, i) => build(axis + 1, offset + i * step));
    };
    return build(0, 0);
  }

  /** The single value of a size-1 tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) {
      throw new RangeError(
        `item: tensor has shape ${
          fmtShape(this.shape)
        } (${this.size} elements); item needs exactly 1`,
      );
    }
    return (await this.data())[0];
  }

  /** A short description: dtype, shape and backend. */
  toString(): string {
    return `Tensor(${this.dtype}${fmtShape(this.shape)}, ${
      this.#storage ? this.#storage.backend : "disposed"
    })`;
  }

  // ---- arithmetic
  /** Elementwise a + b (see `add`). */
  add(b: TensorLike): Tensor {
    return ops.add(this, b);
  }
  /** Elementwise a − b (see `sub`). */
  sub(b: TensorLike): Tensor {
    return ops.sub(this, b);
  }
  /** Elementwise a · b (see `mul`). */
  mul(b: TensorLike): Tensor {
    return ops.mul(this, b);
  }
  /** Elementwise a / b (see `div`). */
  div(b: TensorLike): Tensor {
    return ops.div(this, b);
  }
  /** Elementwise a ** b (see `pow`). */
  pow(b: TensorLike): Tensor {
    return ops.pow(this, b);
  }
  /** Floor modulo (see `mod`). */
  mod(b: TensorLike): Tensor {
    return ops.mod(this, b);
  }
  /** Elementwise maximum (see `maximum`). */
  maximum(b: TensorLike): Tensor {
    return ops.maximum(this, b);
  }
  /** Elementwise minimum (see `minimum`). */
  minimum(b: TensorLike): Tensor {
    return ops.minimum(this, b);
  }
  /** −x. */
  neg(): Tensor {
    return ops.neg(this);
  }
  /** |x|. */
  abs(): Tensor {
    return ops.abs(this);
  }
  /** eˣ. */
  exp(): Tensor {
    return ops.exp(this);
  }
  /** Natural logarithm. */
  log(): Tensor {
    return ops.log(this);
  }
  /** √x. */
  sqrt(): Tensor {
    return ops.sqrt(this);
  }
  /** x². */
  square(): Tensor {
    return ops.square(this);
  }
  /** tanh x. */
  tanh(): Tensor {
    return ops.tanh(this);
  }
  /** Logistic function. */
  sigmoid(): Tensor {
    return ops.sigmoid(this);
  }
  /** max(x, 0). */
  relu(): Tensor {
    return ops.relu(this);
  }
  // ---- comparisons
  /** x == b → bool. */
  eq(b: TensorLike): Tensor {
    return ops.equal(this, b);
  }
  /** x != b → bool. */
  ne(b: TensorLike): Tensor {
    return ops.notEqual(this, b);
  }
  /** x < b → bool. */
  lt(b: TensorLike): Tensor {
    return ops.less(this, b);
  }
  /** x ≤ b → bool. */
  le(b: TensorLike): Tensor {
    return ops.lessEqual(this, b);
  }
  /** x > b → bool. */
  gt(b: TensorLike): Tensor {
    return ops.greater(this, b);
  }
  /** x ≥ b → bool. */
  ge(b: TensorLike): Tensor {
    return ops.greaterEqual(this, b);
  }
  // ---- reductions
  /** Sum over axes (all by default). */
  sum(axes?: number | number[], keepdims = false): Tensor {
    return ops.sum(this, axes, keepdims);
  }
  /** Mean over axes. */
  mean(axes?: number | number[], keepdims = false): Tensor {
    return ops.mean(this, axes, keepdims);
  }
  /** Maximum over axes. */
  max(axes?: number | number[], keepdims = false): Tensor {
    return ops.max(this, axes, keepdims);
  }
  /** Minimum over axes. */
  min(axes?: number | number[], keepdims = false): Tensor {
    return ops.min(this, axes, keepdims);
  }
  /** Index of the first maximum along an axis. */
  argmax(axis?: number, keepdims = false): Tensor {
    return ops.argmax(this, axis, keepdims);
  }
  /** Index of the first minimum along an axis. */
  argmin(axis?: number, keepdims = false): Tensor {
    return ops.argmin(this, axis, keepdims);
  }
  // ---- linear algebra and shape
  /** Matrix product (see `matmul`). */
  matmul(b: Tensor): Tensor {
    return ops.matmul(this, b);
  }
  /**
   * Same values in a new shape (a view): `x.reshape([2, 3])`, or as NumPy takes it,
   * `x.reshape(2, 3)` and `x.reshape(6)`.
   */
  reshape(shape: readonly number[] | number, ...more: number[]): Tensor {
    return ops.reshape(this, typeof shape === "number" ? [shape, ...more] : shape);
  }
  /** Permute axes (reverse when omitted). */
  transpose(perm?: readonly number[]): Tensor {
    return ops.transpose(this, perm);
  }
  /** Transpose of the last two axes. */
  get mT(): Tensor {
    return ops.swapAxes(this, -1, -2);
  }
  /** Insert a size-1 axis. */
  expandDims(axis: number): Tensor {
    return ops.expandDims(this, axis);
  }
  /** Remove size-1 axes. */
  squeeze(axes?: number | number[]): Tensor {
    return ops.squeeze(this, axes);
  }
  /** Broadcast to a shape. */
  broadcastTo(shape: readonly number[]): Tensor {
    return ops.broadcastTo(this, shape);
  }
  /** Reshape to one axis. */
  flatten(): Tensor {
    return ops.reshape(this, [this.size]);
  }
  /** Convert to another dtype. */
  cast(dtype: DTypeLike): Tensor {
    return ops.cast(this, dtype);
  }
}

/** @internal A new tensor sharing `t`'s storage (refcounted), optionally with another shape. */
export function shareStorage(t: Tensor, shape: readonly number[] = t.shape): Tensor {
  const s = t.storage;
  s.retain();
  return new Tensor(shape, t.dtype, s);
}
