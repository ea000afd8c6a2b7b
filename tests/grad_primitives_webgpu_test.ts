/**
 * The same gradient cases on WebGPU: against finite differences with f32 tolerances (a few
 * elements per tensor: every evaluation is a readback, ≥ 10 ms), and every element of every
 * gradient and Hessian-vector product against the float64 reference backend's.
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { gradCases } from "./grad_cases.ts";
import { assertTreesClose, randomValues } from "./helpers.ts";

for (const [group, cases] of gradCases()) {
  Deno.test(`gradients of ${group} match finite differences at order 1 and 2 (WebGPU, f32)`, async () => {
    for (const [name, f, args] of cases) {
      try {
        await mg.checkGrads(f, args, {
          order: 2,
          maxElements: 3,
          eps: 3e-3,
          rtol: 3e-2,
          atol: 3e-3,
        });
      } catch (e) {
        throw new Error(`${name}: ${(e as Error).message}`);
      }
    }
  });
}

/**
 * Sum of the outputs weighted by fixed random values (one seed per output leaf): a scalar
 * whose gradient is the vjp of f with a dense cotangent, so every element of every input's
 * gradient is exercised.
 */
function weighted(f: (...xs: Tensor[]) => unknown, backend: mg.BackendName) {
  return (...xs: Tensor[]) => {
    const outs = mg.tree.leaves<unknown>(f(...xs)).filter((o): o is Tensor =>
      o instanceof mg.Tensor && o.dtype === "f32"
    );
    let total: Tensor | null = null;
    outs.forEach((o, i) => {
      const w = mg.tensor(randomValues(o.shape, "f32", 900 + i), { shape: o.shape, backend });
      const term = mg.sum(mg.mul(o, w));
      total = total ? mg.add(total, term) : term;
    });
    return total!;
  };
}

/** Every input's gradient, and the Hessian-vector product along a fixed random direction. */
function derivatives(f: (...xs: Tensor[]) => unknown, args: Tensor[], backend: mg.BackendName) {
  const loss = weighted(f, backend);
  // the f32 arguments (integer ones are indices)
  const all = args.flatMap((a, i) => (a.dtype === "f32" ? [i] : []));
  const grads = mg.grad(loss, { argnums: all })(...args);
  const dirs = all.map((i) =>
    mg.tensor(randomValues(args[i].shape, "f32", 950 + i), { shape: args[i].shape, backend })
  );
  const hvps = mg.grad(
    (...xs: Tensor[]) => {
      const g = mg.grad(loss, { argnums: all })(...xs) as Tensor[];
      return g.map((gi, k) => mg.sum(mg.mul(gi, dirs[k]))).reduce((a, b) => mg.add(a, b));
    },
    { argnums: all },
  )(...args);
  return { grads, hvps };
}

for (const [group, _] of gradCases()) {
  Deno.test(`gradients and HVPs of ${group}: WebGPU equals the reference at every element`, async () => {
    mg.setBackend("reference");
    const ref = gradCases().find(([g]) => g === group)![1];
    mg.setBackend("webgpu");
    const gpu = gradCases().find(([g]) => g === group)![1];
    for (let c = 0; c < gpu.length; c++) {
      const [name, f, args] = gpu[c];
      const g = derivatives(f, args, "webgpu");
      // cases make index tensors when called: on the default backend, so switch it
      mg.setBackend("reference");
      let r;
      try {
        r = derivatives(ref[c][1], ref[c][2], "reference");
      } finally {
        mg.setBackend("webgpu");
      }
      await assertTreesClose(g.grads, r.grads, `${name}: gradient`, { rtol: 1e-4, atol: 1e-5 });
      await assertTreesClose(g.hvps, r.hvps, `${name}: HVP`, { rtol: 1e-4, atol: 1e-5 });
    }
  });
}
