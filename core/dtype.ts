/**
 * Element types. Tensors are f32, i32, u32 or bool; on the GPU a bool occupies a u32 (0 or 1)
 * because WGSL has no host-shareable bool.
 */
export type DType = "f32" | "i32" | "u32" | "bool";

/** Every supported dtype, for validation and iteration. */
export const DTYPES: readonly DType[] = ["f32", "i32", "u32", "bool"];

/** Bytes one element occupies in device memory. */
export const BYTES_PER_ELEMENT = 4;

/** The typed array a tensor's values are read into. */
export type TypedArrayFor<D extends DType> = D extends "f32" ? Float32Array
  : D extends "i32" ? Int32Array
  : D extends "u32" ? Uint32Array
  : Uint8Array;

/** Any typed array a tensor can be read into. */
export type TensorData = Float32Array | Int32Array | Uint32Array | Uint8Array;

export function isFloat(d: DType): boolean {
  return d === "f32";
}

export function isInteger(d: DType): boolean {
  return d === "i32" || d === "u32";
}

/** A dtype by metagrad's name or a NumPy/JAX alias (`"float32"`, `"int32"`, ...). */
export type DTypeLike = DType | "float32" | "int32" | "uint32" | "bool_" | "boolean";

/** NumPy/JAX spellings accepted wherever a dtype is (`"float32"` means `"f32"`). */
export const DTYPE_ALIASES: Readonly<Record<string, DType>> = {
  float32: "f32",
  int32: "i32",
  uint32: "u32",
  bool_: "bool",
  boolean: "bool",
};

/**
 * The dtype `d` names — one of `DTYPES` or a NumPy/JAX alias (`DTYPE_ALIASES`) — or a
 * TypeError that lists them. Every dtype argument goes through here.
 */
export function assertDType(d: unknown, where: string): DType {
  if (typeof d === "string") {
    if ((DTYPES as readonly string[]).includes(d)) return d as DType;
    const alias = DTYPE_ALIASES[d];
    if (alias) return alias;
  }
  throw new TypeError(
    `${where}: unknown dtype ${typeof d === "string" ? JSON.stringify(d) : String(d)}; use one of ${
      DTYPES.join(", ")
    } (or ${Object.keys(DTYPE_ALIASES).join(", ")})`,
  );
}

/** The values each integer dtype holds, for `checkFits`. */
const INTEGER_RANGE: Partial<Record<DType, [number, number]>> = {
  i32: [-(2 ** 31), 2 ** 31 - 1],
  u32: [0, 2 ** 32 - 1],
};

/**
 * Throws a RangeError when the host value `v` does not fit `dtype` — an integer out of range
 * or NaN/±Infinity for i32 and u32, as JAX refuses out-of-range Python ints — instead of
 * wrapping it. Fractions truncate toward zero, as a cast does.
 */
export function checkFits(v: number, dtype: DType, where: string): void {
  const range = INTEGER_RANGE[dtype];
  if (!range) return;
  if (!Number.isFinite(v) || Math.trunc(v) < range[0] || Math.trunc(v) > range[1]) {
    throw new RangeError(
      `${where}: ${v} does not fit ${dtype} (${range[0]}…${range[1]}); use a wider range of ` +
        `values, another dtype, or cast a tensor explicitly (cast wraps)`,
    );
  }
}

/**
 * Result dtype of combining two tensors. bool < (i32 | u32) < f32; i32 with u32 has no
 * lossless common type in 32 bits, so it is an error rather than a silent wrap.
 */
export function promoteTypes(a: DType, b: DType, op: string): DType {
  if (a === b) return a;
  if (a === "f32" || b === "f32") return "f32";
  if (a === "bool") return b;
  if (b === "bool") return a;
  throw new TypeError(
    `${op}: cannot mix ${a} and ${b} (no 32-bit type holds both); cast one with cast(x, "${a}")`,
  );
}

/**
 * dtype a JS number takes when combined with a tensor of dtype `other` ("weak" typing, as in
 * JAX): it adopts the tensor's dtype unless that would lose its value.
 */
export function weakNumberDType(value: number, other: DType): DType {
  if (other === "f32") return "f32";
  if (!Number.isInteger(value)) return "f32";
  if (other === "bool") return value === 0 || value === 1 ? "bool" : "i32";
  if (other === "u32" && value < 0) return "i32";
  return other;
}

/**
 * dtype a weakly typed scalar (a JS number jit traced: i32 if it was an integer, else f32)
 * takes beside a tensor of dtype `other`: integers adopt an integer or float dtype (and count
 * bools as i32), floats make f32.
 */
export function weakTensorDType(weak: DType, other: DType): DType {
  if (weak === "f32" || other === "f32") return "f32";
  return other === "bool" ? "i32" : other;
}

/** Round a float64 value to the dtype's value set (wrapping integers as 32-bit hardware does). */
export function roundToDType(v: number, d: DType): number {
  switch (d) {
    case "f32":
      return v;
    case "i32":
      return v | 0; // ToInt32: truncate, then wrap modulo 2^32

    case "u32":
      return v >>> 0;
    case "bool":
      return v !== 0 ? 1 : 0;
  }
}

export function typedArrayFor(d: DType, n: number): TensorData {
  switch (d) {
    case "f32":
      return new Float32Array(n);
    case "i32":
      return new Int32Array(n);
    case "u32":
      return new Uint32Array(n);
    case "bool":
      return new Uint8Array(n);
  }
}
