/**
 * Eager fusion (core/fusion/eager.ts): eager elementwise ops are deferred and run
 * as one kernel per chain when their values are needed; results equal the unfused path and
 * the reference backend, freed temporaries are never computed, and a group is compiled only
 * once it recurs.
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { assertAllClose, assertMatchesReference, host } from "./helpers.ts";
import { setFuseAfterSaved } from "../core/fusion/eager.ts";
import type { GpuStorage } from "../core/backend/webgpu/runtime.ts";

// every group fused the first time it runs (by default only once it has recurred enough)
setFuseAfterSaved(0);

/** Dispatches `fn`'s work takes, counted once every held value is computed. */
async function dispatchesOf<T>(fn: () => T): Promise<{ value: T; dispatches: number }> {
  await mg.sync();
  const d0 = mg.runtimeStats().dispatches;
  const value = fn();
  await mg.sync();
  return { value, dispatches: mg.runtimeStats().dispatches - d0 };
}

/** `fn` with eager fusion off (each op its own kernel). */
function unfused<T>(fn: () => T): T {
  const was = mg.eagerFusion();
  mg.setEagerFusion(false);
  try {
    return fn();
  } finally {
    mg.setEagerFusion(was);
  }
}

Deno.test("a chain of 100 eager adds runs as 5 kernels and equals the unfused chain", async () => {
  await mg.init();
  const x = mg.tensor(Float64Array.from(host([67]).values));
  const chain = () =>
    mg.tidy(() => {
      let y = x;
      for (let i = 0; i < 100; i++) y = mg.add(y, x);
      return y;
    });
  const fused = await dispatchesOf(chain);
  const plain = await dispatchesOf(() => unfused(chain));
  // 24 ops per kernel at most: 24 + 24 + 24 + 24 + 4
  assertAllClose([fused.dispatches, plain.dispatches], [5, 100], { rtol: 0, atol: 0 });
  const xs = await x.data();
  assertAllClose(await fused.value.data(), await plain.value.data(), { rtol: 0, atol: 0 });
  assertAllClose(await fused.value.data(), [...xs].map((v) => 101 * v), { rtol: 1e-5 });
  mg.tree.map((t: Tensor) => t.dispose(), [x, fused.value, plain.value]);
});

Deno.test("fused eager graphs match the reference: broadcasting, scalars, where, casts, ints", async () => {
  await mg.init();
  const graph = (a: Tensor, b: Tensor, c: Tensor) => {
    const s = mg.add(a, b); // [5,1] + [7] → [5,7]
    const big = mg.greater(s, 0.5);
    const picked = mg.where(big, mg.mul(mg.sub(a, b), 0.5), mg.exp(mg.div(s, 4)));
    const ints = mg.cast(mg.mod(mg.cast(mg.mul(c, 3), "i32"), 4), "f32"); // [7]
    return mg.add(mg.tanh(picked), mg.mul(ints, mg.sqrt(mg.abs(b))));
  };
  const inputs = [host([5, 1], "f32", 1), host([7], "f32", 2), host([7], "f32", 3)];
  await assertMatchesReference("fused graph", inputs, graph, { rtol: 1e-5, atol: 1e-6 });
  const on = inputs.map((h) => mg.tensor(Float64Array.from(h.values), { shape: h.shape }));
  const fused = await dispatchesOf(() => mg.tidy(() => graph(on[0], on[1], on[2])));
  const plain = await dispatchesOf(() => unfused(() => mg.tidy(() => graph(on[0], on[1], on[2]))));
  if (fused.dispatches !== 1) throw new Error(`fused graph took ${fused.dispatches} kernels`);
  if (plain.dispatches < 15) throw new Error(`unfused graph took ${plain.dispatches} kernels`);
  assertAllClose(await fused.value.data(), await plain.value.data(), { rtol: 1e-6, atol: 1e-7 });
  mg.tree.map((t: Tensor) => t.dispose(), [on, fused.value, plain.value]);
});

Deno.test("temporaries freed unread are never computed; held values are, once each", async () => {
  await mg.init();
  const x = mg.random.normal(mg.random.key(4), [33]);
  const dropped = await dispatchesOf(() =>
    mg.tidy(() => {
      x.mul(2).add(1).exp();
      return null;
    })
  );
  if (dropped.dispatches !== 0) throw new Error(`freed chain ran ${dropped.dispatches} kernels`);
  // a and b both held at the sync: a is stored, then b reads it (2 kernels, not 3); values
  // still held outside a tidy scope (x * 2 here) would be computed too
  const held = await dispatchesOf(() =>
    mg.tidy(() => {
      const a = x.mul(2).add(1);
      return { a, b: a.square() };
    })
  );
  if (held.dispatches !== 2) throw new Error(`held values took ${held.dispatches} kernels`);
  const xs = [...await x.data()];
  assertAllClose(await held.value.a.data(), xs.map((v) => 2 * v + 1), { rtol: 1e-6 });
  assertAllClose(await held.value.b.data(), xs.map((v) => (2 * v + 1) ** 2), { rtol: 1e-5 });
  mg.tree.map((t: Tensor) => t.dispose(), [x, held.value]);
});

Deno.test("deferred values feed every other kind of kernel, views and jit", async () => {
  await mg.init();
  const x = mg.random.normal(mg.random.key(5), [6, 4]);
  const xs = [...await x.data()];
  const y = x.mul(3).sub(1); // deferred
  const yv = xs.map((v) => 3 * v - 1);
  const row = (k: number) => yv.slice(4 * k, 4 * k + 4);
  // a reduction, a matmul, a reshape view (read as stored, then computed on) and a jit program
  const sum = mg.sum(y, 1);
  assertAllClose(await sum.data(), [0, 1, 2, 3, 4, 5].map((k) => row(k).reduce((a, b) => a + b)), {
    rtol: 1e-5,
  });
  const gram = mg.matmul(y, mg.transpose(y));
  assertAllClose([(await gram.data())[7]], [row(1).reduce((s, v, j) => s + v * row(1)[j], 0)], {
    rtol: 1e-5,
  });
  const z = mg.reshape(x.add(2), [4, 6]).mul(mg.arange(6).cast("f32"));
  assertAllClose(await z.data(), xs.map((v, i) => (v + 2) * (i % 6)), { rtol: 1e-6 });
  const f = mg.jit((a: Tensor) => mg.mul(a, a));
  const w = f(x.add(1));
  assertAllClose(await w.data(), xs.map((v) => (v + 1) ** 2), { rtol: 1e-5 });
  // an input disposed after the op was recorded is kept until the op runs
  const u = mg.tensor([1, 2, 3]);
  const v = u.add(1).mul(u);
  u.dispose();
  assertAllClose(await v.data(), [2, 6, 12]);
  mg.tree.map((t: Tensor) => t.dispose(), [x, y, sum, gram, z, w, v]);
});

Deno.test("more distinct inputs than a kernel can bind are split across kernels", async () => {
  await mg.init();
  const ts = Array.from({ length: 45 }, (_, k) => mg.random.normal(mg.random.key(100 + k), [9]));
  await mg.sync();
  const total = mg.tidy(() => ts.reduce((s, t) => mg.add(s, mg.mul(t, 2))));
  const vals = await Promise.all(ts.map((t) => t.data()));
  const expected = Array.from(
    { length: 9 },
    (_, i) => vals[0][i] + vals.slice(1).reduce((s, v) => s + 2 * v[i], 0),
  );
  assertAllClose(await total.data(), expected, { rtol: 1e-5, atol: 1e-5 });
  mg.tree.map((t: Tensor) => t.dispose(), [ts, total]);
});

Deno.test("scalar constants travel as parameters: new values compile nothing", async () => {
  await mg.init();
  const x = mg.random.normal(mg.random.key(6), [17]);
  const xs = [...await x.data()];
  const step = (c: number) => x.mul(c).add(c * 2).maximum(c);
  const first = step(0.5);
  await first.data();
  const compiled = mg.runtimeStats().pipelinesCompiled;
  for (const c of [1.5, -2.25, 3]) {
    const y = step(c);
    assertAllClose(await y.data(), xs.map((v) => Math.max(v * c + 2 * c, c)), { rtol: 1e-6 });
    y.dispose();
  }
  assertAllClose([mg.runtimeStats().pipelinesCompiled], [compiled], { rtol: 0, atol: 0 });
  mg.tree.map((t: Tensor) => t.dispose(), [x, first]);
});

Deno.test("deferred values hold their inputs only until they run or are freed", async () => {
  await mg.init();
  // the inputs' storages are watched, not memory totals: those also move when the garbage
  // collector frees tensors earlier tests left behind
  const x = mg.tidy(() => mg.random.normal(mg.random.key(7), [1000]));
  await mg.sync(); // x computed: a stored input the chain below reads
  const sx = x.storage as GpuStorage;
  // freed before it runs: the whole chain and the inputs it held are released at once
  const y = mg.tidy(() => x.mul(2).add(1).tanh());
  x.dispose();
  if (sx.released) throw new Error("y's chain holds no inputs");
  y.dispose();
  if (!sx.released) throw new Error("a freed deferred chain kept its input");
  // computed: its inputs are released when it runs
  const a = mg.tidy(() => mg.random.normal(mg.random.key(8), [1000]));
  await mg.sync();
  const sa = a.storage as GpuStorage;
  const b = mg.tidy(() => a.mul(2).add(1));
  a.dispose();
  if (sa.released) throw new Error("b's chain holds no inputs");
  await mg.sync();
  if (!sa.released) throw new Error("a computed value kept its inputs");
  assertAllClose([(await b.data()).length], [1000]);
  b.dispose();
});

Deno.test("a group runs op by op until the dispatches it saves would pay for compiling it", async () => {
  await mg.init();
  setFuseAfterSaved(6);
  try {
    const x = mg.random.normal(mg.random.key(9), [5]);
    const xs = [...await x.data()];
    // 4 ops (3 dispatches saved per run): op by op twice, then fused
    const counts: number[] = [];
    for (let r = 0; r < 4; r++) {
      const { value, dispatches } = await dispatchesOf(() =>
        mg.tidy(() => mg.sin(x).mul(x).add(x).abs())
      );
      counts.push(dispatches);
      assertAllClose(await value.data(), xs.map((v) => Math.abs(Math.sin(v) * v + v)), {
        rtol: 1e-5,
        atol: 1e-6,
      });
      value.dispose();
    }
    assertAllClose(counts, [4, 1, 1, 1], { rtol: 0, atol: 0 });
    x.dispose();
  } finally {
    setFuseAfterSaved(0);
  }
});
