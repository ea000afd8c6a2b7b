/**
 * vmap: for every primitive, vmap(f)(xs) equals stacking f(x_i), and vmap(grad(f)) equals the
 * per-example gradients — on both backends.
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { gradCases } from "./grad_cases.ts";
import { assertAllClose, assertThrowsWith } from "./helpers.ts";

const SCALES = [1, 1.1, 0.9];

function scaled(args: Tensor[], s: number): Tensor[] {
  return args.map((a) => (a.dtype === "f32" ? mg.mul(a, s) : a));
}

async function close(a: unknown, b: unknown, what: string, tol = { rtol: 1e-4, atol: 1e-5 }) {
  const [la] = mg.tree.flatten<Tensor>(a), [lb] = mg.tree.flatten<Tensor>(b);
  if (la.length !== lb.length) throw new Error(`${what}: ${la.length} vs ${lb.length} leaves`);
  for (let i = 0; i < la.length; i++) {
    if (la[i].shape.join() !== lb[i].shape.join()) {
      throw new Error(`${what}: shape ${la[i].shape} vs ${lb[i].shape}`);
    }
    assertAllClose(await la[i].toFloat64(), await lb[i].toFloat64(), tol, what);
  }
}

for (const backend of ["reference", "webgpu"] as const) {
  Deno.test(`${backend}: vmap of every primitive equals stacking per-example results; vmap(grad) equals per-example grads`, async () => {
    mg.setBackend(backend);
    try {
      for (const [group, cases] of gradCases()) {
        for (const [name, f, args] of cases) {
          const what = `${group} / ${name}`;
          const examples = SCALES.map((s) => scaled(args, s));
          const batched = args.map((_, j) => mg.stack(examples.map((e) => e[j])));
          const expected = mg.stack(examples.map((e) => f(...e) as Tensor));
          await close(mg.vmap(f)(...batched), expected, `vmap ${what}`);
          // only the first argument batched, the rest broadcast
          if (args.length > 1) {
            const inAxes = args.map((_, j) => (j === 0 ? 0 : null));
            const exp1 = mg.stack(examples.map((e) => f(e[0], ...args.slice(1)) as Tensor));
            await close(
              mg.vmap(f, { inAxes })(batched[0], ...args.slice(1)),
              exp1,
              `vmap (first arg only) ${what}`,
            );
          }
          // per-example gradients of a scalarised f with respect to every argument
          const w = mg.random.normal(mg.random.key(3, { backend }), (f(...args) as Tensor).shape);
          const F = (...xs: Tensor[]) => mg.sum(mg.mul(f(...xs) as Tensor, w));
          const argnums = args.map((_, j) => j);
          const perExample = examples.map((e) => mg.grad(F, { argnums })(...e) as Tensor[]);
          const stacked = argnums.map((j) => mg.stack(perExample.map((g) => g[j])));
          await close(mg.vmap(mg.grad(F, { argnums }))(...batched), stacked, `vmap(grad) ${what}`);
        }
      }
    } finally {
      mg.setBackend("webgpu");
    }
  });
}

Deno.test("vmap axes, nesting, grad of vmap, random keys", async () => {
  mg.setBackend("reference");
  try {
    const x = mg.reshape(mg.arange(24, undefined, 1, { dtype: "f32" }), [2, 3, 4]);
    // batch along axis 2, output batch axis last
    const f = (v: Tensor) => mg.mul(mg.sum(v, 0), 2); // v: [2, 3] → [3]
    const out = mg.vmap(f, { inAxes: 2, outAxes: 1 })(x) as Tensor;
    await close(out, mg.mul(mg.sum(x, 0), 2), "inAxes 2 / outAxes 1");
    // pytree in-axes: params broadcast, batch batched
    const params = { w: mg.tensor([[1, 2], [3, 4]]), b: mg.tensor([1, -1]) };
    const batch = mg.tensor([[1, 0], [0, 1], [1, 1]]);
    const apply = (p: typeof params, v: Tensor) => mg.add(mg.matmul(p.w, v), p.b);
    const y = mg.vmap(apply, { inAxes: [{ w: null, b: null }, 0] })(params, batch) as Tensor;
    await close(
      y,
      mg.add(mg.matmul(batch, params.w, { transposeB: true }), params.b),
      "pytree inAxes",
    );
    // nested vmap: outer products
    const a = mg.tensor([1, 2, 3]), b = mg.tensor([10, 20]);
    const outer = mg.vmap(mg.vmap((u: Tensor, v: Tensor) => mg.mul(u, v), { inAxes: [null, 0] }), {
      inAxes: [0, null],
    })(a, b);
    await close(outer, mg.outer(a, b), "nested vmap");
    // grad of a vmapped function
    const g = mg.grad((w: Tensor) => mg.sum(mg.vmap((v: Tensor) => mg.dot(w, v))(batch)))(
      mg.tensor([0.5, 0.5]),
    );
    await close(g, mg.sum(batch, 0), "grad(vmap)");
    // an output that does not depend on the batch is broadcast
    const c = mg.vmap((_v: Tensor) => mg.tensor([7]))(batch) as Tensor;
    if (c.shape.join() !== "3,1") throw new Error(`constant output shape ${c.shape}`);
    // random keys vmapped give the per-key draws
    const keys = mg.random.splitStacked(mg.random.key(0, { backend: "reference" }), 4);
    const draws = mg.vmap((k: Tensor) => mg.random.normal(k, [3]))(keys);
    await close(
      draws,
      mg.stack(
        mg.random.split(mg.random.key(0, { backend: "reference" }), 4).map((k) =>
          mg.random.normal(k, [3])
        ),
      ),
      "vmap keys",
    );
  } finally {
    mg.setBackend("webgpu");
  }
});

Deno.test("take of a shared operand with per-example indices gathers without copying it", async () => {
  for (const backend of ["reference", "webgpu"] as const) {
    const x = mg.random.normal(mg.random.key(1, { backend }), [5, 7, 3]);
    // per-example rows, with a negative and an out-of-range index (wrapped / clamped)
    const idx = mg.tensor([[4, 0, -1], [2, 2, 9], [1, 3, 0], [-5, 6, 2]], {
      dtype: "i32",
      backend,
    });
    for (const axis of [0, 1]) {
      const f = (i: Tensor) => mg.take(x, i, axis);
      const expected = mg.stack([0, 1, 2, 3].map((b) => f(mg.slice(idx, [b]))));
      await close(mg.vmap(f)(idx), expected, `${backend}: vmap(take(x, i, ${axis}))`);
      const shared = (xx: Tensor, i: Tensor) => mg.take(xx, i, axis);
      const program = mg.makeJaxpr(mg.vmap(shared, { inAxes: [null, 0] }))(x, idx);
      if (program.includes("broadcastTo")) {
        throw new Error(`the operand was copied per example:\n${program}`);
      }
    }
    // per-example gradients with respect to the shared operand
    const w = mg.random.normal(mg.random.key(2, { backend }), [5, 3, 3]);
    const loss = (xx: Tensor, i: Tensor) => mg.sum(mg.mul(mg.take(xx, i, 1), w));
    const perExample = [0, 1, 2, 3].map((b) => mg.grad(loss)(x, mg.slice(idx, [b])) as Tensor);
    await close(
      mg.vmap(mg.grad(loss), { inAxes: [null, 0] })(x, idx),
      mg.stack(perExample),
      `${backend}: vmap(grad) through take with shared operand`,
    );
  }
});

Deno.test("vmap mistakes give clear errors", () => {
  const a = mg.zeros([3, 2]), b = mg.zeros([4, 2]);
  assertThrowsWith(
    () => mg.vmap((x: Tensor, y: Tensor) => mg.add(x, y))(a, b),
    "vmap",
    "inconsistent batch sizes",
    "3",
    "4",
  );
  assertThrowsWith(() => mg.vmap((x: Tensor) => x, { inAxes: 2 })(a), "vmap", "batch axis 2");
  assertThrowsWith(
    () => mg.vmap((x: Tensor) => mg.matmul(x, mg.zeros([3, 3])))(a),
    "matmul",
    "k = 2 vs 3",
  );
  assertThrowsWith(
    () => mg.vmap((x: Tensor) => x, { inAxes: null })(a),
    "no argument has a batch axis",
  );
  assertThrowsWith(() =>
    mg.vmap((x: Tensor) => {
      x.data();
      return x;
    })(a), "inside vmap");
});

Deno.test("stopGradient holds through vmap and jit", async () => {
  const xs = mg.tensor([1, 2, 3]);
  // d/dw Σ_i stop(w·x_i)·w = Σ_i w·x_i (not 2w·x_i)
  const f = (w: Tensor) =>
    mg.sum(mg.vmap((x: Tensor) => mg.mul(mg.stopGradient(mg.mul(w, x)), w))(xs));
  for (const g of [mg.grad(f), mg.grad(mg.jit(f)), mg.jit(mg.grad(f))]) {
    assertAllClose(await (g(mg.tensor(2)) as Tensor).toFloat64(), [12]);
  }
});
