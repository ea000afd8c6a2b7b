/**
 * The adapter's loop cap (`AdapterInfo.maxLoopIterations`): llvmpipe stops every loop of an
 * invocation after 65,535 iterations in all, silently, so a matmul over k ≥ 65,535, a cumsum
 * along a long axis and a scatter-add of many indices returned partial sums and zeros. Those
 * kernels now run in parts that fit the cap; checked here against float64 sums written out, at
 * the real cap and with the cap lowered (so the parts, and the scratch buffers that carry them,
 * are exercised on any adapter), eager and under jit with fused epilogues.
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { runtime } from "../core/backend/webgpu/runtime.ts";
import { checkLoopBudget } from "../core/backend/webgpu/kernels/simple.ts";
import { assertAllClose, assertThrowsWith } from "./helpers.ts";

const uniform = (seed: number, shape: number[]) =>
  mg.random.uniform(mg.random.key(seed), shape, { minval: -1, maxval: 1 });

/** op(a)·op(b) in float64 from host copies: a is [m, k] (or [k, m] transposed), b [k, n] (or [n, k]). */
async function hostMatmul(
  a: Tensor,
  b: Tensor,
  m: number,
  k: number,
  n: number,
  tA: boolean,
  tB: boolean,
) {
  const x = await a.toFloat64(), y = await b.toFloat64();
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let q = 0; q < k; q++) {
        s += x[tA ? q * m + i : i * k + q] * y[tB ? j * k + q : q * n + j];
      }
      out[i * n + j] = s;
    }
  }
  return out;
}

/** Runs `body` with the loop cap lowered to `cap` (restored after). */
async function withCap(cap: number, body: () => Promise<void>) {
  const info = runtime.info as { maxLoopIterations: number };
  const saved = info.maxLoopIterations;
  info.maxLoopIterations = cap;
  try {
    await body();
  } finally {
    info.maxLoopIterations = saved;
  }
}

/** The long-k products, cumsums and scatter-adds of length `long`, against float64. */
async function checkLongLoops(long: number, where: string) {
  const tol = { rtol: 1e-4, atol: 2e-3 * Math.sqrt(long / 1000) };
  for (const [tA, tB] of [[false, false], [true, false], [false, true], [true, true]]) {
    const m = 3, n = 5;
    const a = uniform(1, tA ? [long, m] : [m, long]), b = uniform(2, tB ? [n, long] : [long, n]);
    const c = uniform(3, [m, n]);
    const want = await hostMatmul(a, b, m, long, n, tA, tB);
    const op = (x: Tensor, t: boolean) => (t ? mg.transpose(x) : x);
    const product = (x: Tensor, y: Tensor) => mg.matmul(op(x, tA), op(y, tB));
    assertAllClose(
      await product(a, b).toFloat64(),
      want,
      tol,
      `${where}: matmul tA ${tA} tB ${tB}`,
    );
    // under jit the bias add and tanh are the matmul's epilogue: applied once, after every part
    const fused = (x: Tensor, y: Tensor, z: Tensor) => mg.tanh(mg.add(product(x, y), z));
    const cv = await c.toFloat64();
    assertAllClose(
      await mg.jit(fused)(a, b, c).toFloat64(),
      want.map((v, i) => Math.tanh(v + cv[i])),
      tol,
      `${where}: jitted tanh(matmul + c), tA ${tA} tB ${tB}`,
    );
  }
  // a batched product whose second term (A·B + C·D, one kernel under jit) is long too
  {
    const a = uniform(4, [2, 3, long]), b = uniform(5, [2, long, 4]);
    const c = uniform(6, [2, 3, 7]), d = uniform(7, [2, 7, 4]);
    const f = (a: Tensor, b: Tensor, c: Tensor, d: Tensor) =>
      mg.add(mg.matmul(c, d), mg.matmul(a, b));
    const want = new Float64Array(24);
    for (let z = 0; z < 2; z++) {
      const ab = await hostMatmul(mg.slice(a, [z]), mg.slice(b, [z]), 3, long, 4, false, false);
      const cd = await hostMatmul(mg.slice(c, [z]), mg.slice(d, [z]), 3, 7, 4, false, false);
      for (let i = 0; i < 12; i++) want[z * 12 + i] = ab[i] + cd[i];
    }
    assertAllClose(
      await mg.jit(f)(a, b, c, d).toFloat64(),
      want,
      tol,
      `${where}: jitted A·B + C·D`,
    );
  }
  // two products whose k sums are each under the cap and together over it (one kernel loops both)
  {
    const half = Math.ceil(long * 0.6);
    const [a, b] = [uniform(11, [3, half]), uniform(12, [half, 4])];
    const [c, d] = [uniform(13, [3, half]), uniform(14, [half, 4])];
    const ab = await hostMatmul(a, b, 3, half, 4, false, false);
    const cd = await hostMatmul(c, d, 3, half, 4, false, false);
    const f = (a: Tensor, b: Tensor, c: Tensor, d: Tensor) =>
      mg.add(mg.matmul(a, b), mg.matmul(c, d));
    assertAllClose(
      await mg.jit(f)(a, b, c, d).toFloat64(),
      ab.map((v, i) => v + cd[i]),
      tol,
      `${where}: jitted A·B + C·D, k ${half} each`,
    );
  }
  // cumsum along a long axis, forward and reversed, and along the leading axis of [long, 2]
  const x = uniform(8, [long]);
  const xv = await x.toFloat64();
  for (const reverse of [false, true]) {
    const want = new Float64Array(long);
    let s = 0;
    for (let i = 0; i < long; i++) {
      const at = reverse ? long - 1 - i : i;
      want[at] = s += xv[at];
    }
    assertAllClose(
      await mg.cumsum(x, 0, reverse).toFloat64(),
      want,
      tol,
      `${where}: cumsum (reverse ${reverse})`,
    );
  }
  const cols = mg.reshape(mg.concat([x, mg.neg(x)]), [2, long]);
  const down = await mg.cumsum(mg.transpose(cols), 0).toFloat64();
  let s = 0;
  for (let i = 0; i < long; i++) {
    s += xv[i];
    if (Math.abs(down[2 * i] - s) > tol.atol || Math.abs(down[2 * i + 1] + s) > tol.atol) {
      throw new Error(
        `${where}: cumsum down [${long}, 2] wrong at row ${i}: ${down[2 * i]} vs ${s}`,
      );
    }
  }
  // scatter-add (take's gradient) of `long` indices into 3 slots
  const idx = mg.tensor(Array.from({ length: long }, (_, i) => (i * 7) % 3), { dtype: "i32" });
  const weights = uniform(9, [long]);
  const g = mg.grad((v: Tensor) => mg.sum(mg.mul(mg.take(v, idx, 0), weights)))(mg.zeros([3]));
  const wv = await weights.toFloat64();
  const want = [0, 0, 0];
  for (let i = 0; i < long; i++) want[(i * 7) % 3] += wv[i];
  assertAllClose(await g.toFloat64(), want, tol, `${where}: scatter-add of ${long} indices`);
}

Deno.test("the adapter's loop cap is measured; llvmpipe's is 65,535", async () => {
  const info = await mg.init();
  const cap = runtime.info!.maxLoopIterations;
  if (info.description.includes("llvmpipe") && cap !== 65535) {
    throw new Error(`llvmpipe's loop cap measured as ${cap}, expected 65535`);
  }
  if (!(cap === Infinity || (Number.isInteger(cap) && cap > 1000))) {
    throw new Error(`implausible loop cap ${cap}`);
  }
});

Deno.test("long loops run in parts within the adapter's cap: matmul k = 70,001, cumsum, scatter-add", async () => {
  await mg.init();
  await checkLongLoops(70_001, "at the adapter's cap");
});

Deno.test("long loops in many parts (cap lowered to 3,000), and a clear error where a kernel cannot split", async () => {
  await mg.init();
  await withCap(3_000, () => checkLongLoops(10_007, "cap 3,000"));
  await withCap(3_000, () => {
    assertThrowsWith(() => checkLoopBudget("conv2d", 10, 5_000), "conv2d", "5000", "3000", "loops");
    return Promise.resolve();
  });
});
