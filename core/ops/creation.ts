/** Creating tensors from host values and by fill patterns. */
import { assertDType, checkFits, type DType, type DTypeLike, roundToDType } from "../dtype.ts";
import { defaultBackend, storageFromHost } from "../backend/select.ts";
import type { BackendName } from "../backend/storage.ts";
import { bind } from "../primitive.ts";
import { full as fullPrim, iota } from "../primitives/fill.ts";
import { assertValidShape, sizeOf } from "../shape.ts";
import { brief } from "../validate.ts";
import { Tensor } from "../tensor.ts";

/** Nested JS arrays of numbers or booleans (rectangular). */
export type NestedInput = number | boolean | readonly NestedInput[];

/** Options accepted by the creation functions. */
export interface CreateOptions {
  /** Element type; inferred from the values when omitted (numbers → f32). */
  dtype?: DTypeLike;
  /** Backend to place the tensor on; the current default when omitted. */
  backend?: BackendName;
}

const CREATE_KEYS = ["dtype", "backend"];

/** Creation options after `createOptions`: the dtype by its canonical name. */
interface CheckedOptions {
  dtype?: DType;
  backend?: BackendName;
}

/**
 * The options object of a creation function, checked: a dtype string stands for `{ dtype }`
 * (as `jnp.zeros(shape, dtype)`), `shapeToo` lets `tensor(values, [2, 3])` pass a shape, and
 * anything else — a misspelt key, a number — is a TypeError saying how to pass options.
 */
function createOptions<K extends string>(
  opts: unknown,
  op: string,
  extraKeys: readonly K[] = [],
): CheckedOptions & { [k in K]?: unknown } {
  if (opts === undefined || opts === null) return {};
  if (typeof opts === "string") return { dtype: assertDType(opts, op) };
  if (Array.isArray(opts) && (extraKeys as readonly string[]).includes("shape")) {
    return { shape: opts } as CheckedOptions & { [k in K]?: unknown };
  }
  if (typeof opts !== "object" || Array.isArray(opts)) {
    throw new TypeError(
      `${op}: options must be an object such as { dtype: "i32" }, got ${
        Array.isArray(opts) ? `the array ${brief(JSON.stringify(opts))}` : typeof opts
      }${op === "tensor" ? "" : "; the shape is the first argument"}`,
    );
  }
  const known = [...CREATE_KEYS, ...extraKeys];
  for (const k of Object.keys(opts)) {
    if (!known.includes(k)) {
      throw new TypeError(`${op}: unknown option ${JSON.stringify(k)}; known: ${known.join(", ")}`);
    }
  }
  const o = opts as CreateOptions;
  return {
    ...(o as Record<string, unknown>),
    ...(o.dtype !== undefined ? { dtype: assertDType(o.dtype, op) } : {}),
    ...(o.backend !== undefined ? { backend: assertBackend(o.backend, op) } : {}),
  };
}

function assertBackend(b: unknown, op: string): BackendName {
  if (b === "webgpu" || b === "reference") return b;
  throw new TypeError(`${op}: unknown backend ${JSON.stringify(b)}; use "webgpu" or "reference"`);
}

/** Typed arrays `tensor()` accepts (8/16-bit integers are widened to 32 bits). */
export type HostArray =
  | Float32Array
  | Float64Array
  | Int32Array
  | Uint32Array
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array;

function inferFromTyped(a: HostArray): DType {
  if (a instanceof Int32Array || a instanceof Int16Array || a instanceof Int8Array) return "i32";
  if (a instanceof Uint32Array || a instanceof Uint16Array) return "u32";
  if (a instanceof Uint8Array) return "u32";
  return "f32";
}

function flattenNested(
  values: NestedInput,
  op: string,
): { shape: number[]; flat: number[]; sawBool: boolean; sawNumber: boolean } {
  const shape: number[] = [];
  let probe: NestedInput = values;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0] as NestedInput;
    if (probe === undefined) break;
  }
  const flat: number[] = [];
  let sawBool = false, sawNumber = false;
  const walk = (v: NestedInput, depth: number, path: string) => {
    if (depth === shape.length) {
      if (typeof v === "boolean") {
        sawBool = true;
        flat.push(v ? 1 : 0);
      } else if (typeof v === "number") {
        sawNumber = true;
        flat.push(v);
      } else {
        throw new TypeError(
          `${op}: ragged nested array: element ${path} should be a number but is ${
            Array.isArray(v) ? "an array" : typeof v
          }`,
        );
      }
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) {
      throw new TypeError(
        `${op}: ragged nested array: element ${path || "[]"} should be an array of length ${
          shape[depth]
        } ` +
          `(inferred shape [${shape.join(", ")}])`,
      );
    }
    v.forEach((c, i) => walk(c as NestedInput, depth + 1, `${path}[${i}]`));
  };
  walk(values, 0, "");
  return { shape, flat, sawBool, sawNumber };
}

/**
 * A tensor from nested arrays, a typed array (flat, with `shape`), or a number.
 *
 * @example
 * ```ts
 * import { tensor } from "@metagrad/metagrad";
 * const a = tensor([[1, 2, 3], [4, 5, 6]]);            // f32 [2, 3]
 * const b = tensor(new Int32Array([1, 2, 3, 4]), { shape: [2, 2] });
 * const c = tensor([true, false]);                      // bool [2]
 * ```
 */
export function tensor(
  values: NestedInput | HostArray,
  options: CreateOptions & { shape?: readonly number[] } | readonly number[] = {},
): Tensor {
  const opts = createOptions(options, "tensor", ["shape"]) as CheckedOptions & {
    shape?: readonly number[];
  };
  let shape: number[];
  let flat: ArrayLike<number>;
  let dtype: DType;
  if (ArrayBuffer.isView(values)) {
    const a = values as HostArray;
    shape = opts.shape ? assertValidShape(opts.shape, "tensor") : [a.length];
    if (sizeOf(shape) !== a.length) {
      throw new RangeError(
        `tensor: ${a.length} values do not fill shape [${shape.join(", ")}] (${
          sizeOf(shape)
        } elements)`,
      );
    }
    flat = a;
    dtype = opts.dtype ?? inferFromTyped(a);
  } else {
    const f = flattenNested(values as NestedInput, "tensor");
    if (f.sawBool && f.sawNumber) {
      throw new TypeError("tensor: mixes booleans and numbers; use one kind");
    }
    shape = f.shape;
    if (opts.shape) {
      const s = assertValidShape(opts.shape, "tensor");
      if (sizeOf(s) !== f.flat.length) {
        throw new RangeError(`tensor: ${f.flat.length} values do not fill shape [${s.join(", ")}]`);
      }
      shape = s;
    }
    flat = f.flat;
    dtype = opts.dtype ?? (f.sawBool ? "bool" : "f32");
  }
  dtype = assertDType(dtype, "tensor");
  const rounded = dtype === "f32" ? flat : Array.from(flat, (v) => {
    checkFits(v, dtype, "tensor");
    return roundToDType(v, dtype);
  });
  return new Tensor(
    shape,
    dtype,
    storageFromHost(rounded, dtype, opts.backend ?? defaultBackend()),
  );
}

/**
 * A tensor filled with `value`.
 *
 * @example
 * ```ts
 * import { full } from "@metagrad/metagrad";
 * const t = full([2, 3], 7, { dtype: "i32" });
 * ```
 */
export function full(
  shape: readonly number[],
  value: number | boolean,
  options: CreateOptions | DTypeLike = {},
): Tensor {
  const opts = createOptions(options, "full");
  const s = assertValidShape(shape, "full");
  const dtype = assertDType(opts.dtype ?? (typeof value === "boolean" ? "bool" : "f32"), "full");
  if (typeof value !== "number" && typeof value !== "boolean") {
    throw new TypeError(`full: value must be a number or boolean, got ${typeof value}`);
  }
  checkFits(Number(value), dtype, "full");
  return bind(fullPrim, [], { shape: s, dtype, value: Number(value) }, opts.backend);
}

/**
 * A tensor of zeros.
 *
 * @example
 * ```ts
 * import { zeros } from "@metagrad/metagrad";
 * const z = zeros([3, 4]);
 * ```
 */
export function zeros(shape: readonly number[], opts: CreateOptions | DTypeLike = {}): Tensor {
  return full(shape, 0, opts);
}

/**
 * A tensor of ones.
 *
 * @example
 * ```ts
 * import { ones } from "@metagrad/metagrad";
 * const o = ones([2, 2], { dtype: "i32" });
 * ```
 */
export function ones(shape: readonly number[], opts: CreateOptions | DTypeLike = {}): Tensor {
  return full(shape, 1, opts);
}

function likeOpts(x: Tensor, options: CreateOptions | DTypeLike, op: string): CheckedOptions {
  const opts = createOptions(options, op);
  return { dtype: opts.dtype ?? x.dtype, backend: opts.backend ?? x.backend };
}

/**
 * Zeros with the shape, dtype and backend of `x`.
 *
 * @example
 * ```ts
 * import { zerosLike, ones } from "@metagrad/metagrad";
 * const z = zerosLike(ones([2, 3]));
 * ```
 */
export function zerosLike(x: Tensor, opts: CreateOptions | DTypeLike = {}): Tensor {
  return full(x.shape, 0, likeOpts(x, opts, "zerosLike"));
}

/**
 * Ones with the shape, dtype and backend of `x`.
 *
 * @example
 * ```ts
 * import { onesLike, zeros } from "@metagrad/metagrad";
 * const o = onesLike(zeros([2, 3]));
 * ```
 */
export function onesLike(x: Tensor, opts: CreateOptions | DTypeLike = {}): Tensor {
  return full(x.shape, 1, likeOpts(x, opts, "onesLike"));
}

/**
 * `value` with the shape, dtype and backend of `x`.
 *
 * @example
 * ```ts
 * import { fullLike, zeros } from "@metagrad/metagrad";
 * const f = fullLike(zeros([2]), 3);
 * ```
 */
export function fullLike(
  x: Tensor,
  value: number | boolean,
  opts: CreateOptions | DTypeLike = {},
): Tensor {
  return full(x.shape, value, likeOpts(x, opts, "fullLike"));
}

/**
 * Evenly spaced values in [start, stop) (NumPy's arange). With one argument: [0, stop).
 * dtype is i32 when all arguments are integers, else f32.
 *
 * @example
 * ```ts
 * import { arange } from "@metagrad/metagrad";
 * const a = arange(5);          // i32 [0, 1, 2, 3, 4]
 * const b = arange(0, 1, 0.25); // f32 [0, 0.25, 0.5, 0.75]
 * ```
 */
export function arange(
  start: number,
  stop?: number,
  step = 1,
  options: CreateOptions | DTypeLike = {},
): Tensor {
  const opts = createOptions(options, "arange");
  if (stop === undefined) [start, stop] = [0, start];
  for (const [name, v] of [["start", start], ["stop", stop], ["step", step]] as const) {
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new TypeError(`arange: ${name} must be a finite number, got ${v}`);
    }
  }
  if (step === 0 || !Number.isFinite(step)) {
    throw new RangeError("arange: step must be a finite non-zero number");
  }
  const length = Math.max(0, Math.ceil((stop - start) / step));
  const dtype = opts.dtype ?? ([start, stop, step].every(Number.isInteger) ? "i32" : "f32");
  if (length > 0) {
    checkFits(start, dtype, "arange");
    checkFits(start + (length - 1) * step, dtype, "arange");
  }
  return bind(iota, [], { length, start, step, dtype }, opts.backend);
}

/**
 * `num` evenly spaced f32 values from start to stop inclusive.
 *
 * @example
 * ```ts
 * import { linspace } from "@metagrad/metagrad";
 * const x = linspace(-5, 5, 11);
 * ```
 */
export function linspace(
  start: number,
  stop: number,
  num: number,
  options: CreateOptions | DTypeLike = {},
): Tensor {
  const opts = createOptions(options, "linspace");
  if (!Number.isInteger(num) || num < 0) {
    throw new RangeError(`linspace: num must be an integer ≥ 0, got ${num}`);
  }
  const step = num > 1 ? (stop - start) / (num - 1) : 0;
  return bind(iota, [], { length: num, start, step, dtype: opts.dtype ?? "f32" }, opts.backend);
}

/**
 * The n×m identity-like matrix (ones on the diagonal shifted by k).
 *
 * @example
 * ```ts
 * import { eye } from "@metagrad/metagrad";
 * const i3 = eye(3);
 * ```
 */
export function eye(n: number, m = n, k = 0, options: CreateOptions | DTypeLike = {}): Tensor {
  const opts = createOptions(options, "eye");
  for (const [name, v] of [["n", n], ["m", m], ["k", k]] as const) {
    if (!Number.isInteger(v) || (name !== "k" && v < 0)) {
      throw new RangeError(
        `eye: ${name} must be an integer${name === "k" ? "" : " ≥ 0"}, got ${v}`,
      );
    }
  }
  const values = new Float64Array(n * m);
  for (let i = 0; i < n; i++) if (i + k >= 0 && i + k < m) values[i * m + i + k] = 1;
  const dtype = opts.dtype ?? "f32";
  return new Tensor(
    [n, m],
    dtype,
    storageFromHost(values, dtype, opts.backend ?? defaultBackend()),
  );
}

/** A scalar tensor on `like`'s backend (or the default), used for JS numbers in ops. */
export function scalar(value: number | boolean, dtype: DType, backend?: BackendName): Tensor {
  return full([], value, { dtype, backend });
}
