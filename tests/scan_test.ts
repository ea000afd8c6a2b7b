/** scan and fori: values, reverse mode (orders 1 and 2), batching and jit against unrolled loops. */
import assert from "node:assert/strict";
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { assertAllClose, assertThrowsWith, assertTreesClose, rng } from "./helpers.ts";

function randn(shape: number[], seed: number, scale = 1): Tensor {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return mg.tensor(Array.from({ length: n }, () => (r() * 2 - 1) * scale)).reshape(shape);
}

/** A small RNN cell: closure weights, a pytree carry and a pytree y. */
function cell(w: Tensor, u: Tensor) {
  return (c: { h: Tensor; n: Tensor }, x: Tensor): [{ h: Tensor; n: Tensor }, Tensor[]] => {
    const h = mg.tanh(mg.add(mg.matmul(c.h, w), mg.matmul(x, u)));
    return [{ h, n: mg.add(c.n, 1) }, [mg.sum(mg.square(h)), h]];
  };
}

/** The same loop written out in JS. */
function unrolled<C, Y>(f: (c: C, x: Tensor) => [C, Y], init: C, xs: Tensor, reverse = false) {
  let c = init;
  const ys: Y[] = [];
  const T = xs.shape[0];
  for (let i = 0; i < T; i++) {
    const t = reverse ? T - 1 - i : i;
    const [c2, y] = f(c, mg.slice(xs, [t]));
    c = c2;
    ys[t] = y;
  }
  const stacked = mg.tree.map((...leaves: Tensor[]) => mg.stack(leaves), ys[0], ...ys.slice(1));
  return [c, stacked] as [C, Y];
}

for (const backend of ["reference", "webgpu"] as const) {
  Deno.test(`${backend}: scan equals the unrolled loop (pytrees, reverse, integer carry)`, async () => {
    mg.setBackend(backend);
    try {
      const w = randn([5, 5], 1, 0.5), u = randn([3, 5], 2), xs = randn([7, 2, 3], 3);
      const init = { h: randn([2, 5], 4), n: mg.zeros([], { dtype: "i32" }) };
      for (const reverse of [false, true]) {
        const got = mg.scan(cell(w, u), init, xs, { reverse });
        await assertTreesClose(
          got,
          unrolled(cell(w, u), init, xs, reverse),
          `scan reverse=${reverse}`,
        );
        if ((await (got[0].n as Tensor).item()) !== 7) throw new Error("counter carry");
      }
      // running sum; length-only scan; a zero-length scan returns the initial carry
      const [total, partial] = mg.scan(
        (c: Tensor, x: Tensor) => [mg.add(c, x), mg.add(c, x)],
        mg.tensor(0),
        mg.tensor([1, 2, 3, 4]),
      );
      assertAllClose(await total.toFloat64(), [10], {}, "total");
      assertAllClose(await (partial as Tensor).toFloat64(), [1, 3, 6, 10], {}, "partial");
      const [pow] = mg.scan((c: Tensor) => [mg.mul(c, 2), null], mg.tensor(1), null, {
        length: 5,
      });
      assertAllClose(await pow.toFloat64(), [32], {}, "length-only");
      const [same, none] = mg.scan(
        (c: Tensor, x: Tensor) => [mg.add(c, x), x],
        mg.tensor([1, 2]),
        mg.zeros([0, 2]),
      );
      assertAllClose(await same.toFloat64(), [1, 2], {}, "zero-length carry");
      if ((none as Tensor).shape.join() !== "0,2") throw new Error("zero-length ys shape");
      // fori: sum of i·x over i in [2, 6)
      const x = mg.tensor([1, -2]);
      const s = mg.fori(
        2,
        6,
        (i: Tensor, acc: Tensor) => mg.add(acc, mg.mul(mg.cast(i, "f32"), x)),
        mg.zeros([2]),
      );
      assertAllClose(await s.toFloat64(), [14, -28], {}, "fori");
    } finally {
      mg.setBackend("webgpu");
    }
  });

  Deno.test(`${backend}: grad and grad∘grad of scan equal those of the unrolled loop`, async () => {
    mg.setBackend(backend);
    try {
      const u = randn([3, 5], 2), xs = randn([6, 2, 3], 3);
      const n0 = mg.zeros([], { dtype: "i32" });
      const loss = (run: typeof mg.scan) => (w: Tensor, h0: Tensor, xs: Tensor) => {
        const [c, ys] = run(cell(w, u), { h: h0, n: n0 }, xs);
        return mg.add(mg.sum(mg.square(c.h)), mg.sum(mg.mul(ys[0], mg.arange(6))));
      };
      const scanned = loss(mg.scan);
      const plain = loss(((f: any, i: any, x: any) => unrolled(f, i, x)) as typeof mg.scan);
      const args: [Tensor, Tensor, Tensor] = [randn([5, 5], 1, 0.5), randn([2, 5], 4), xs];
      const argnums = [0, 1, 2];
      await assertTreesClose(
        mg.valueAndGrad(scanned, { argnums })(...args),
        mg.valueAndGrad(plain, { argnums })(...args),
        "grad",
      );
      // reverse over reverse: a Hessian-vector product in w
      const v = randn([5, 5], 9);
      const hv = (f: typeof scanned) => mg.hvp((w: Tensor) => f(w, args[1], xs), args[0], v);
      await assertTreesClose(hv(scanned), hv(plain), "hvp", { rtol: 1e-4, atol: 1e-4 });
      if (backend === "reference") {
        await mg.checkGrads(scanned, args, { order: 2 });
      }
    } finally {
      mg.setBackend("webgpu");
    }
  });

  Deno.test(`${backend}: vmap of scan equals stacking per-example scans`, async () => {
    mg.setBackend(backend);
    try {
      const u = randn([3, 5], 2);
      const run = (w: Tensor, h0: Tensor, xs: Tensor) => {
        const [c, ys] = mg.scan(cell(w, u), { h: h0, n: mg.zeros([], { dtype: "i32" }) }, xs);
        return [c.h, ys[1]];
      };
      const ws = randn([3, 5, 5], 1, 0.5), h0s = randn([3, 2, 5], 4), xss = randn([3, 4, 2, 3], 3);
      const perExample = (axes: (number | null)[]) => {
        const outs = [0, 1, 2].map((b) => {
          const pick = (
            t: Tensor,
            ax: number | null,
          ) => (ax === null ? mg.slice(t, [0]) : mg.slice(t, [b]));
          return run(pick(ws, axes[0]), pick(h0s, axes[1]), pick(xss, axes[2]));
        });
        return [mg.stack(outs.map((o) => o[0])), mg.stack(outs.map((o) => o[1]))];
      };
      for (const axes of [[0, 0, 0], [0, null, null], [null, 0, null], [null, null, 0]]) {
        const args = [ws, h0s, xss].map((t, i) => (axes[i] === null ? mg.slice(t, [0]) : t)) as [
          Tensor,
          Tensor,
          Tensor,
        ];
        await assertTreesClose(
          mg.vmap(run, { inAxes: axes })(...args),
          perExample(axes),
          `vmap inAxes ${axes}`,
        );
      }
      // per-example gradients through a scan
      const g = mg.vmap(mg.grad((w: Tensor, h0: Tensor, xs: Tensor) => mg.sum(run(w, h0, xs)[1])), {
        inAxes: [null, 0, 0],
      })(mg.slice(ws, [0]), h0s, xss) as Tensor;
      const gLoop = mg.stack(
        [0, 1, 2].map((b) =>
          mg.grad((w: Tensor) => mg.sum(run(w, mg.slice(h0s, [b]), mg.slice(xss, [b]))[1]))(
            mg.slice(ws, [0]),
          ) as Tensor
        ),
      );
      await assertTreesClose(g, gLoop, "vmap(grad(scan))");
    } finally {
      mg.setBackend("webgpu");
    }
  });

  Deno.test(`${backend}: jit keeps scan one equation whatever the length, and matches eager`, async () => {
    mg.setBackend(backend);
    try {
      const u = randn([3, 5], 2), w = randn([5, 5], 1, 0.5), h0 = randn([2, 5], 4);
      const f = (w: Tensor, h0: Tensor, xs: Tensor) => {
        const [c, ys] = mg.scan(cell(w, u), { h: h0, n: mg.zeros([], { dtype: "i32" }) }, xs);
        return mg.add(mg.sum(c.h), mg.sum(ys[0]));
      };
      const sizes: number[] = [];
      // (both lengths above 4: sums over at most 4 steps are unrolled into adds)
      for (const T of [6, 40]) {
        const xs = randn([T, 2, 3], T);
        const jf = mg.jit(mg.valueAndGrad(f, { argnums: [0, 1] }));
        await assertTreesClose(
          jf(w, h0, xs),
          mg.valueAndGrad(f, { argnums: [0, 1] })(w, h0, xs),
          `jit(grad) T=${T}`,
        );
        const lowered = jf.lower(w, h0, xs);
        const scans = lowered.equations.filter((e) => e.primitive === "scan").length;
        if (scans !== 2) {
          throw new Error(`T=${T}: expected a forward and a backward scan, got ${scans}`);
        }
        sizes.push(lowered.equations.length);
        if (backend === "webgpu") {
          // the plan shows each scan's body kernels, indented under it
          const plan = lowered.plan.split("\n");
          const at = plan.findIndex((l) => l.startsWith("scan →"));
          assert.ok(at >= 0 && plan[at + 1] === `  each of ${T} steps:`, lowered.plan);
          assert.ok(/^ {2}\S.*: .* ← /.test(plan[at + 2]), `a body kernel line: ${plan[at + 2]}`);
        }
        // grad and vmap of a jitted scan; jit of vmap of scan
        const jv = mg.jit(mg.vmap(f, { inAxes: [null, 0, null] }));
        const h0s = mg.stack([h0, mg.neg(h0)]);
        await assertTreesClose(
          jv(w, h0s, xs),
          mg.vmap(f, { inAxes: [null, 0, null] })(w, h0s, xs),
          `jit(vmap) T=${T}`,
        );
        await assertTreesClose(
          mg.grad(mg.jit(f))(w, h0, xs),
          mg.grad(f)(w, h0, xs),
          `grad(jit) T=${T}`,
        );
      }
      if (sizes[0] !== sizes[1]) throw new Error(`program grew with the length: ${sizes}`);
    } finally {
      mg.setBackend("webgpu");
    }
  });
}

Deno.test("scan: a jitted loop runs in one submission and frees its per-step values", async () => {
  await mg.init();
  const w = randn([16, 16], 1, 0.3);
  const f = mg.jit((h: Tensor, xs: Tensor) =>
    mg.scan((c: Tensor, x: Tensor) => [mg.tanh(mg.add(mg.matmul(c, w), x)), null], h, xs)[0]
  );
  const h = randn([4, 16], 2), xs = randn([50, 4, 16], 3);
  await f(h, xs).data(); // compile
  const before = mg.memory(), stats0 = mg.runtimeStats();
  const out = f(h, xs);
  const stats1 = mg.runtimeStats();
  if (stats1.submits - stats0.submits > 1) {
    throw new Error(`expected one submission, got ${stats1.submits - stats0.submits}`);
  }
  const after = mg.memory();
  if (after.liveTensors !== before.liveTensors + 1) {
    throw new Error(`live tensors ${before.liveTensors} → ${after.liveTensors} (expected +1)`);
  }
  let ref = h;
  for (let t = 0; t < 50; t++) ref = mg.tanh(mg.add(mg.matmul(ref, w), mg.slice(xs, [t])));
  assertAllClose(
    await out.toFloat64(),
    await ref.toFloat64(),
    { rtol: 1e-4, atol: 1e-5 },
    "jit scan",
  );
});

Deno.test("scan: clear errors for a carry that changes, mismatched xs and missing lengths", () => {
  mg.setBackend("reference");
  try {
    assertThrowsWith(
      () =>
        mg.scan((c: Tensor) => [mg.stack([c, c]), null], mg.tensor([1, 2]), null, { length: 2 }),
      "carry leaf 0 is f32[2] initially",
      "f32[2, 2]",
    );
    assertThrowsWith(
      () => mg.scan((c: any) => [[c], null], mg.tensor(1) as any, null, { length: 2 }),
      "pytree structure differs",
    );
    assertThrowsWith(
      () =>
        mg.scan((c: Tensor, x: Tensor[]) => [c, x], mg.tensor(1), [mg.zeros([3]), mg.zeros([4])]),
      "has 4 steps where another xs leaf has 3",
    );
    assertThrowsWith(() => mg.scan((c: Tensor) => [c, null], mg.tensor(1)), "give xs or a length");
    assertThrowsWith(
      () => mg.scan((c: Tensor) => [c, null], 3 as unknown as Tensor, null, { length: 1 }),
      "leaf 0 of init is number",
    );
    assertThrowsWith(
      () => mg.scan((c: Tensor) => c as any, mg.tensor(1), null, { length: 1 }),
      "must return [carry, y]",
    );
  } finally {
    mg.setBackend("webgpu");
  }
});

/** A body-kernel line of a plan's `n`-th scan (0-based): its lines under "each of T steps". */
function scanBodyLines(plan: string, n: number): string[] {
  const lines = plan.split("\n");
  const starts = lines.flatMap((l, i) => (l.startsWith("scan →") ? [i] : []));
  const body: string[] = [];
  for (let i = starts[n] + 2; i < lines.length && lines[i].startsWith("  "); i++) {
    body.push(lines[i]);
  }
  return body;
}

Deno.test("scan's backward reads the forward's products and sums weight gradients after the loop", async () => {
  await mg.init();
  const T = 9;
  const u = randn([3, 5], 2), b = randn([5], 5), xs = randn([T, 2, 3], 3);
  const ws = randn([2, 5, 5], 1, 0.5), h0s = randn([2, 2, 5], 4);
  // an RNN whose per-step output is a transpose: y = hᵀ
  const step = (w: Tensor, u: Tensor, b: Tensor) => (h: Tensor, x: Tensor): [Tensor, Tensor] => {
    const next = mg.tanh(mg.add(mg.add(mg.matmul(h, w), mg.matmul(x, u)), b));
    return [next, mg.transpose(next)];
  };
  const run = (scanFn: typeof mg.scan) => (w: Tensor, u: Tensor, b: Tensor, h0: Tensor) => {
    const [h, ys] = scanFn(step(w, u, b), h0, xs);
    return mg.add(mg.sum(mg.square(h)), mg.sum(mg.mul(ys, mg.arange(2))));
  };
  const plainScan = ((f: any, i: any, x: any) => unrolled(f, i, x)) as typeof mg.scan;
  // one network (rank-2 factors: the steps join the contracted axis as a view) and two
  // networks under vmap (rank-3 factors: one batched product and a sum over the steps)
  const single = (scanFn: typeof mg.scan) => (w: Tensor, u: Tensor, b: Tensor) =>
    run(scanFn)(w, u, b, mg.slice(h0s, [0]));
  const towers = (scanFn: typeof mg.scan) => (w: Tensor, u: Tensor, b: Tensor) =>
    mg.sum(mg.vmap(run(scanFn), { inAxes: [0, null, null, 0] })(w, u, b, h0s));
  for (
    const [what, f, w] of [
      ["one network", single, mg.slice(ws, [0])],
      ["two networks (vmap)", towers, ws],
    ] as const
  ) {
    const argnums = [0, 1, 2];
    const jitted = mg.jit(mg.grad(f(mg.scan), { argnums }));
    await assertTreesClose(
      jitted(w, u, b),
      mg.grad(f(plainScan), { argnums })(w, u, b),
      `${what}: gradients`,
      { rtol: 1e-4, atol: 1e-5 },
    );
    // the backward loop (the plan's second scan) makes no value the shape of a weight or the
    // bias: their gradients are not accumulated step by step
    const plan = jitted.lower(w, u, b).plan;
    const body = scanBodyLines(plan, 1);
    assert.ok(body.length > 0, plan);
    const weightShapes = ["f32[5,5]", "f32[2,5,5]", "f32[3,5]", "f32[5]", "f32[1,5]"];
    const weightShaped = body.filter((l) =>
      l.split("←")[0].split(" ").some((out) => weightShapes.some((s) => out.endsWith(`:${s}`)))
    );
    assert.deepEqual(weightShaped, [], `${what}: backward body\n${body.join("\n")}`);
    // the forward loop saves its products (h·w + b and x·u) for the backward loop, which
    // makes only the product that pulls the cotangent back through w
    const products = body.filter((l) => l.trim().startsWith("matmul"));
    assert.equal(products.length, 1, `${what}: backward body\n${body.join("\n")}`);
    // nor does either loop transpose its per-step output
    for (const n of [0, 1]) {
      const transposes = scanBodyLines(plan, n).filter((l) => l.trim().startsWith("transpose"));
      assert.deepEqual(transposes, [], `${what}: scan ${n} body\n${plan}`);
    }
  }
  // reverse over reverse through the hoisted sums: a Hessian-vector product in w
  const v = randn([5, 5], 9);
  const hv = (scanFn: typeof mg.scan) =>
    mg.hvp((w: Tensor) => single(scanFn)(w, u, b), mg.slice(ws, [0]), v);
  await assertTreesClose(hv(mg.scan), hv(plainScan), "hvp", { rtol: 1e-4, atol: 1e-4 });
});

Deno.test("scan's backward recomputes and accumulates per step what would not fit saved", async () => {
  await mg.init();
  // a product of 4 MiB per step over 65 steps: 260 MiB stacked, over both budgets (the
  // program is only lowered, never run)
  const n = 1024, T = 65;
  const w = mg.zeros([n, n]), h = mg.zeros([n, n]);
  const f = (w: Tensor, h: Tensor) => {
    const [last] = mg.scan((c: Tensor) => [mg.tanh(mg.matmul(c, w)), null], h, null, {
      length: T,
    });
    return mg.sum(last);
  };
  const body = scanBodyLines(mg.jit(mg.grad(f)).lower(w, h).plan, 1);
  // the forward product recomputed, the cotangent's, and the weight gradient accumulated
  const products = body.filter((l) => l.trim().startsWith("matmul"));
  assert.equal(products.length, 3, `backward body\n${body.join("\n")}`);
  assert.ok(body.some((l) => l.includes(`:f32[${n},${n}] ←`)), body.join("\n"));
  w.dispose();
  h.dispose();
});

Deno.test("scan: a customVjp inside the body, reading a differentiated value from outside it, gives the plain gradient", async () => {
  // the rule cannot be recorded at the grad level below the body's trace (its residuals would
  // be the body's values): the body keeps the function's own ops, and so its gradient
  const plainScale = (x: Tensor, s: Tensor) => mg.mul(x, s);
  const customScale = mg.customVjp(
    plainScale,
    (x: Tensor, s: Tensor) => [mg.mul(x, s), { x, s }],
    (r: { x: Tensor; s: Tensor }, g: Tensor) => [mg.mul(r.s, g), mg.mul(r.x, g)],
  );
  const xs = randn([4, 3], 31);
  const lossWith = (scale: typeof plainScale) => (w: Tensor) => {
    const [c, ys] = mg.scan(
      (h: Tensor, x: Tensor) => {
        const n = mg.add(scale(mg.sin(h), w), x);
        return [n, mg.square(n)];
      },
      mg.zeros([3]),
      xs,
    );
    return mg.add(mg.sum(c), mg.sum(ys));
  };
  const w = randn([3], 32);
  const expected = await mg.grad(lossWith(plainScale))(w).toFloat64();
  assertAllClose(await mg.grad(lossWith(customScale))(w).toFloat64(), expected, { rtol: 1e-6 });
  assertAllClose(await mg.jit(mg.grad(lossWith(customScale)))(w).toFloat64(), expected, {
    rtol: 1e-5,
    atol: 1e-6,
  });
});
