/**
 * Which backend new tensors are created on, and moving values between host and backends.
 * Ops run on the backend of their inputs.
 */
import { type DType, type TensorData, typedArrayFor } from "../dtype.ts";
import { RefStorage } from "./reference/storage.ts";
import type { BackendName, Storage } from "./storage.ts";
import { GpuStorage, runtime } from "./webgpu/runtime.ts";

let current: BackendName = "webgpu";

/** Device-side representation of host values: bools travel as u32. */
function toDeviceArray(
  values: ArrayLike<number>,
  dtype: DType,
): Float32Array<ArrayBuffer> | Int32Array<ArrayBuffer> | Uint32Array<ArrayBuffer> {
  switch (dtype) {
    case "f32":
      return Float32Array.from(values);
    case "i32":
      return Int32Array.from(values);
    case "u32":
      return Uint32Array.from(values);
    case "bool":
      return Uint32Array.from(values, (v) => (v ? 1 : 0));
  }
}

export function setDefaultBackend(name: BackendName): void {
  if (name !== "webgpu" && name !== "reference") {
    throw new RangeError(
      `setBackend: unknown backend ${JSON.stringify(name)}; use "webgpu" or "reference"`,
    );
  }
  current = name;
}

export function defaultBackend(): BackendName {
  return current;
}

/** Values already rounded to the dtype's value set. */
export function storageFromHost(
  values: ArrayLike<number>,
  dtype: DType,
  backend: BackendName = current,
): Storage {
  if (backend === "reference") return new RefStorage(Float64Array.from(values));
  const dev = toDeviceArray(values, dtype);
  const st = new GpuStorage(values.length * 4);
  runtime.enqueue(() => runtime.upload(st, dev, "tensor upload"));
  return st;
}

export async function readStorage(
  storage: Storage,
  dtype: DType,
  size: number,
): Promise<TensorData> {
  if (storage instanceof RefStorage) {
    const out = typedArrayFor(dtype, size);
    for (let i = 0; i < size; i++) out[i] = storage.values[i];
    return out;
  }
  const bytes = await runtime.read(storage as GpuStorage, size * 4);
  switch (dtype) {
    case "f32":
      return new Float32Array(bytes);
    case "i32":
      return new Int32Array(bytes);
    case "u32":
      return new Uint32Array(bytes);
    case "bool":
      return Uint8Array.from(new Uint32Array(bytes), (v) => (v ? 1 : 0));
  }
}

/** Values at the backend's full precision (float64 on the reference backend). */
export async function readFloat64(
  storage: Storage,
  dtype: DType,
  size: number,
): Promise<Float64Array> {
  if (storage instanceof RefStorage) return storage.values.slice(0, size);
  return Float64Array.from(await readStorage(storage, dtype, size));
}
