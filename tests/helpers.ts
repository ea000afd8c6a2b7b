/** Small test helpers: seeded host data, all-close, and backend-vs-reference comparison. */
import * as mg from "../mod.ts";
import type { DType, Tensor } from "../mod.ts";
import { hostRng } from "../core/autodiff/check_grads.ts";

/** Deterministic PRNG (mulberry32) for host-side test data. */
export const rng = hostRng;

/** Host values for a tensor of `shape` and `dtype` drawn from [lo, hi). */
export function randomValues(
  shape: readonly number[],
  dtype: DType,
  seed: number,
  lo = -3,
  hi = 3,
): number[] {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return Array.from({ length: n }, () => {
    const v = lo + (hi - lo) * r();
    if (dtype === "f32") return Math.fround(v);
    if (dtype === "bool") return r() < 0.5 ? 1 : 0;
    if (dtype === "u32") return Math.floor(Math.abs(v));
    return Math.floor(v);
  });
}

export interface Tolerance {
  rtol?: number;
  atol?: number;
}

/** Assert elementwise |a − e| ≤ atol + rtol·|e|, with NaN matching NaN and ±∞ matching exactly. */
export function assertAllClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: Tolerance = {},
  what = "",
): void {
  const rtol = tol.rtol ?? 1e-5, atol = tol.atol ?? 1e-6;
  if (actual.length !== expected.length) {
    throw new Error(`${what}: length ${actual.length} != expected ${expected.length}`);
  }
  let worst = -1, worstErr = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(e) || Number.isNaN(a)) {
      if (Number.isNaN(e) !== Number.isNaN(a)) {
        throw new Error(`${what}: at ${i}: got ${a}, expected ${e}`);
      }
      continue;
    }
    if (!Number.isFinite(e) || !Number.isFinite(a)) {
      if (a !== e) throw new Error(`${what}: at ${i}: got ${a}, expected ${e}`);
      continue;
    }
    const err = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (err > worstErr) {
      worstErr = err;
      worst = i;
    }
  }
  if (worst >= 0) {
    throw new Error(
      `${what}: not close at index ${worst}: got ${actual[worst]}, expected ${expected[worst]} ` +
        `(rtol ${rtol}, atol ${atol})`,
    );
  }
}

/** A host-side tensor description, instantiated on each backend. */
export interface HostTensor {
  values: number[];
  shape: readonly number[];
  dtype: DType;
}

export function host(
  shape: readonly number[],
  dtype: DType = "f32",
  seed = 1,
  lo = -3,
  hi = 3,
): HostTensor {
  return { values: randomValues(shape, dtype, seed, lo, hi), shape, dtype };
}

export function on(h: HostTensor, backend: mg.BackendName): Tensor {
  return mg.tensor(Float64Array.from(h.values), { shape: h.shape, dtype: h.dtype, backend });
}

/**
 * Run `fn` on WebGPU and on the reference backend with the same inputs and assert the
 * results agree (shape, dtype and values within tolerance).
 */
export async function assertMatchesReference(
  what: string,
  inputs: HostTensor[],
  fn: (...xs: Tensor[]) => Tensor,
  tol: Tolerance = {},
): Promise<void> {
  const gpu = fn(...inputs.map((h) => on(h, "webgpu")));
  const ref = fn(...inputs.map((h) => on(h, "reference")));
  if (gpu.backend !== "webgpu" || ref.backend !== "reference") {
    throw new Error(`${what}: ran on the wrong backend`);
  }
  if (JSON.stringify(gpu.shape) !== JSON.stringify(ref.shape) || gpu.dtype !== ref.dtype) {
    throw new Error(
      `${what}: webgpu gave ${gpu.dtype}[${gpu.shape}], reference ${ref.dtype}[${ref.shape}]`,
    );
  }
  const exact = gpu.dtype !== "f32";
  assertAllClose(
    await gpu.toFloat64(),
    await ref.toFloat64(),
    exact ? { rtol: 0, atol: 0 } : tol,
    what,
  );
}

/** Assert that `fn` throws an error whose message contains every fragment. */
export function assertThrowsWith(fn: () => unknown, ...fragments: string[]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof Error)) {
    throw new Error(`expected an error mentioning ${fragments.join(", ")}; nothing was thrown`);
  }
  for (const f of fragments) {
    if (!err.message.includes(f)) throw new Error(`error message lacks "${f}":\n${err.message}`);
  }
}

/** Shapes every elementwise/reduction test sweeps: size 1, primes, non-multiples of 64. */
export const ODD_SHAPES: readonly (readonly number[])[] = [[], [1], [7], [3, 5], [67, 129], [
  2,
  3,
  5,
  7,
]];

/** Assert that the promise rejects with an error whose message contains every fragment. */
export async function assertRejectsWith(
  p: Promise<unknown>,
  ...fragments: string[]
): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  if (!(err instanceof Error)) {
    throw new Error(`expected a rejection mentioning ${fragments.join(", ")}; it resolved`);
  }
  for (const f of fragments) {
    if (!err.message.includes(f)) throw new Error(`error message lacks "${f}":\n${err.message}`);
  }
}

/** Leaf-by-leaf closeness of two pytrees of tensors (same structure, shapes and dtypes). */
export async function assertTreesClose(
  a: unknown,
  b: unknown,
  what: string,
  tol: Tolerance = { rtol: 1e-5, atol: 1e-6 },
): Promise<void> {
  const [la] = mg.tree.flatten<Tensor>(a), [lb] = mg.tree.flatten<Tensor>(b);
  if (la.length !== lb.length) throw new Error(`${what}: ${la.length} vs ${lb.length} leaves`);
  for (let i = 0; i < la.length; i++) {
    if (la[i].shape.join() !== lb[i].shape.join() || la[i].dtype !== lb[i].dtype) {
      throw new Error(`${what}: ${la[i].dtype}[${la[i].shape}] vs ${lb[i].dtype}[${lb[i].shape}]`);
    }
    assertAllClose(await la[i].toFloat64(), await lb[i].toFloat64(), tol, what);
  }
}

/** The same tree with every tensor copied onto `backend` (values read and re-created). */
export async function onBackend<T>(tree: T, backend: mg.BackendName): Promise<T> {
  const [leaves, def] = mg.tree.flatten(tree);
  const copies = await Promise.all(
    leaves.map(async (l) =>
      l instanceof mg.Tensor
        ? mg.tensor(await l.toFloat64(), { shape: l.shape, dtype: l.dtype, backend })
        : l
    ),
  );
  return mg.tree.unflatten(def, copies);
}

/** A learner as the update-equivalence check sees it. */
export interface PureLearner<S> {
  init(key: Tensor): S;
  update(state: S): [S, unknown];
}

/**
 * `updates` updates of a learner made by `make()` on the float64 reference backend, plain, and
 * on WebGPU, jitted and donating, from the same initial state: state and metrics must agree
 * after every update. Returns the learner built on WebGPU and its last state.
 */
export async function assertJittedUpdatesMatchFloat64<S>(
  make: () => PureLearner<S>,
  what: string,
  updates = 2,
  tol: Tolerance = { rtol: 2e-3, atol: 2e-4 },
): Promise<[PureLearner<S>, S]> {
  mg.setBackend("reference");
  const plain = make();
  let refState = plain.init(mg.random.key(3));
  mg.setBackend("webgpu");
  const compiled = make();
  const update = mg.jit(compiled.update, { donateArgnums: [0] });
  let gpuState: S = await onBackend(refState, "webgpu");
  for (let u = 1; u <= updates; u++) {
    mg.setBackend("reference");
    const [r, rm] = plain.update(refState);
    mg.setBackend("webgpu");
    const [g, gm] = update(gpuState);
    await assertTreesClose(g, r, `${what}: state after update ${u}`, tol);
    await assertTreesClose(gm, rm, `${what}: metrics of update ${u}`, tol);
    [refState, gpuState] = [r, g];
  }
  return [compiled, gpuState];
}
