/**
 * Gradient checking against central finite differences. Use the reference backend (float64)
 * for tight tolerances; on WebGPU (f32) use eps ≈ 1e-2 and loose tolerances.
 */
import { keep, tidy } from "../memory.ts";
import { Tensor } from "../tensor.ts";
import { flatten, unflatten } from "../tree.ts";
import { tensor } from "../ops/creation.ts";
import { mul } from "../ops/math.ts";
import { sum } from "../ops/reduce.ts";
import { type Fn, grad } from "./api.ts";

/** Options of `checkGrads`. */
export interface CheckGradsOptions {
  /** Check derivatives up to this order (1: gradient; 2: also Hessian-vector products). */
  order?: number;
  /** Finite-difference step (default 1e-6 on the reference backend, 1e-2 on WebGPU). */
  eps?: number;
  /** Relative tolerance (default 1e-5 reference, 5e-2 WebGPU). */
  rtol?: number;
  /** Absolute tolerance (default 1e-6 reference, 5e-3 WebGPU). */
  atol?: number;
  /** Elements checked per tensor (a seeded random subset of larger ones; default 20). */
  maxElements?: number;
  /** Seed for the random projections and element choices. */
  seed?: number;
}

/** A seeded host-side PRNG (mulberry32) for test data and random projections. */
export function hostRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomLike(t: Tensor, r: () => number): Tensor {
  return tensor(Float64Array.from({ length: t.size }, () => r() * 2 - 1), {
    shape: t.shape,
    dtype: "f32",
    backend: t.backend,
  });
}

/** Σ over the output leaves of <leaf, fixed random weights>: a scalar whose gradient tests the full vjp. */
function scalarize(f: Fn, r: () => number): Fn {
  let weights: Tensor[] | null = null;
  return (...args: unknown[]) => {
    const [leaves] = flatten(f(...args));
    const ts = leaves.filter((l): l is Tensor => l instanceof Tensor && l.dtype === "f32");
    // created inside grad's scope on first use: keep() so later evaluations can reuse them
    weights ??= ts.map((t) => keep(randomLike(t, r)));
    return ts.map((t, i) => sum(mul(t, weights![i]))).reduce((a, b) => a.add(b));
  };
}

async function checkFirstOrder(
  F: Fn,
  args: unknown[],
  o: Required<CheckGradsOptions>,
  r: () => number,
  label: string,
): Promise<void> {
  const argnums = args.map((_, i) => i).filter((i) =>
    flatten(args[i])[0].some((l) => l instanceof Tensor && l.dtype === "f32")
  );
  const analytic = grad(F, { argnums }) as unknown as (...a: unknown[]) => unknown[];
  const grads = analytic(...args);
  const failures: string[] = [];
  for (let k = 0; k < argnums.length; k++) {
    const i = argnums[k];
    const [leaves, def] = flatten(args[i]);
    const [gLeaves] = flatten(grads[k]);
    for (let j = 0; j < leaves.length; j++) {
      const leaf = leaves[j];
      if (!(leaf instanceof Tensor) || leaf.dtype !== "f32") continue;
      const base = await leaf.toFloat64();
      const g = await (gLeaves[j] as Tensor).toFloat64();
      const picks = leaf.size <= o.maxElements
        ? [...base.keys()]
        : Array.from({ length: o.maxElements }, () => Math.floor(r() * leaf.size));
      for (const e of picks) {
        const at = async (delta: number) => {
          const v = base.slice();
          v[e] += delta;
          const moved = tensor(v, { shape: leaf.shape, dtype: "f32", backend: leaf.backend });
          const newArgs = [...args];
          newArgs[i] = unflatten(def, leaves.map((l, m) => (m === j ? moved : l)));
          const y = tidy(() => F(...newArgs) as Tensor);
          const value = (await y.toFloat64())[0]; // full precision on the reference backend
          y.dispose();
          moved.dispose();
          return value;
        };
        const numeric = (await at(o.eps) - await at(-o.eps)) / (2 * o.eps);
        const err = Math.abs(g[e] - numeric);
        if (!(err <= o.atol + o.rtol * Math.max(Math.abs(g[e]), Math.abs(numeric)))) {
          failures.push(
            `${label} argument ${i}, leaf ${j}, element ${e}: analytic ${
              g[e]
            } vs finite difference ${numeric}`,
          );
        }
      }
    }
  }
  if (failures.length) {
    throw new Error(
      `checkGrads: ${failures.length} mismatch(es):\n  ${failures.slice(0, 10).join("\n  ")}`,
    );
  }
}

/**
 * Check f's derivatives against central finite differences at `args` (all f32 tensor leaves
 * of all arguments). Vector-valued f is reduced with fixed random weights. With order 2 the
 * gradient of x ↦ <∇F(x), v> (a Hessian-vector product, reverse over reverse) is checked too.
 * Throws a descriptive error on mismatch.
 *
 * @example
 * ```ts
 * import { checkGrads, tanh, tensor, setBackend } from "@metagrad/metagrad";
 * setBackend("reference");
 * await checkGrads((x: any) => tanh(x), [tensor([0.1, -0.7])], { order: 2 });
 * ```
 */
export async function checkGrads(
  f: Fn,
  args: unknown[],
  opts: CheckGradsOptions = {},
): Promise<void> {
  const onGpu = flatten(args)[0].some((l) => l instanceof Tensor && l.backend === "webgpu");
  const o: Required<CheckGradsOptions> = {
    order: opts.order ?? 1,
    eps: opts.eps ?? (onGpu ? 1e-2 : 1e-6),
    rtol: opts.rtol ?? (onGpu ? 5e-2 : 1e-5),
    atol: opts.atol ?? (onGpu ? 5e-3 : 1e-6),
    maxElements: opts.maxElements ?? 20,
    seed: opts.seed ?? 7,
  };
  const r = hostRng(o.seed);
  let F = scalarize(f, r);
  await checkFirstOrder(F, args, o, r, "order 1:");
  for (let order = 2; order <= o.order; order++) {
    const prev = F;
    const argnums = args.map((_, i) => i).filter((i) =>
      flatten(args[i])[0].some((l) => l instanceof Tensor && l.dtype === "f32")
    );
    const directions = argnums.map((i) => {
      const [leaves, def] = flatten(args[i]);
      return unflatten(
        def,
        leaves.map((l) => (l instanceof Tensor && l.dtype === "f32" ? randomLike(l, r) : null)),
      );
    });
    F = (...a: unknown[]) => {
      const gs = (grad(prev, { argnums }) as unknown as (...x: unknown[]) => unknown[])(...a);
      let total: Tensor | null = null;
      gs.forEach((g, k) => {
        const [gl] = flatten(g), [vl] = flatten(directions[k]);
        gl.forEach((x, m) => {
          if (!(x instanceof Tensor) || !(vl[m] instanceof Tensor)) return;
          const d = sum(mul(x, vl[m] as Tensor));
          total = total ? total.add(d) : d;
        });
      });
      return total!;
    };
    await checkFirstOrder(F, args, o, r, `order ${order}:`);
  }
}
