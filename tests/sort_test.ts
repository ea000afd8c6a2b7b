/**
 * argsort and sort: WebGPU's bitonic network against the float64 reference's stable sort on odd
 * shapes (duplicates, ±∞, NaN, −0, integers), along any axis, under vmap and jit; sort's gradient
 * against finite differences; `random.permutation` above 128 (sorted) equal to the same keys'
 * O(n²) ranking.
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { assertAllClose, assertThrowsWith, randomValues } from "./helpers.ts";

const exactly = { rtol: 0, atol: 0 };

/** Values with many duplicates, ±∞, NaN and signed zeros. */
function awkward(n: number, seed: number): number[] {
  const special = [Infinity, -Infinity, NaN, -0, 0, 1e30, -1e-30];
  return randomValues([n], "f32", seed, -3, 3).map((v, i) =>
    i % 11 === 3 ? special[i % special.length] : Math.round(v * 2) / 2
  );
}

Deno.test("argsort on WebGPU equals the reference's stable sort: odd shapes, duplicates, NaN, ±∞, ±0, integers", async () => {
  await mg.init();
  for (const shape of [[1], [7], [3, 5], [67, 129], [2, 1000], [5000]]) {
    const n = shape.reduce((a, b) => a * b, 1);
    for (const dtype of ["f32", "i32", "u32"] as const) {
      const values = dtype === "f32"
        ? awkward(n, n)
        : randomValues([n], "f32", n + 1, dtype === "u32" ? 0 : -50, 50).map(Math.round);
      const make = (backend: mg.BackendName) => mg.tensor(values, { shape, dtype, backend });
      const [gpu, ref] = [mg.argsort(make("webgpu")), mg.argsort(make("reference"))];
      assertAllClose(
        await gpu.toFloat64(),
        await ref.toFloat64(),
        exactly,
        `argsort ${dtype}[${shape}]`,
      );
    }
  }
  // along a middle axis, and sorted values
  const x = mg.tensor(awkward(60, 9), [3, 4, 5]);
  const xr = mg.tensor(awkward(60, 9), { shape: [3, 4, 5], backend: "reference" });
  assertAllClose(
    await mg.argsort(x, 1).toFloat64(),
    await mg.argsort(xr, 1).toFloat64(),
    exactly,
    "axis 1",
  );
  const sorted = await mg.sort(mg.tensor([3, NaN, -Infinity, 0.5, -0, 2])).toFloat64();
  assertAllClose(sorted.slice(0, 5), [-Infinity, -0, 0.5, 2, 3], exactly, "sorted");
  if (!Number.isNaN(sorted[5])) throw new Error("NaN should sort last");
  assertThrowsWith(() => mg.argsort(mg.tensor(1)), "argsort", "axis");
  assertThrowsWith(() => mg.argsort(mg.tensor([true, false])), "argsort", "bool");
});

Deno.test("argsort under vmap and jit; sort's gradient is a gather's", async () => {
  await mg.init();
  const rows = mg.tensor(awkward(40, 3), [5, 8]);
  const batched = mg.vmap((r: Tensor) => mg.argsort(r))(rows);
  assertAllClose(await batched.toFloat64(), await mg.argsort(rows).toFloat64(), exactly, "vmap");
  const jitted = mg.jit((r: Tensor) => mg.sort(r, 0))(rows);
  assertAllClose(await jitted.toFloat64(), await mg.sort(rows, 0).toFloat64(), exactly, "jit");
  mg.setBackend("reference");
  try {
    const v = mg.tensor([0.3, -1.2, 2.5, 0.7, -0.1]);
    await mg.checkGrads((t: Tensor) => mg.mul(mg.sort(t), mg.tensor([1, 2, 3, 4, 5])), [v]);
  } finally {
    mg.setBackend("webgpu");
  }
});

Deno.test("random.permutation above 128 sorts the keys the ranking of 128 and below would rank", async () => {
  await mg.init();
  for (const n of [128, 129, 4097, 70_001]) {
    const p = await mg.random.permutation(mg.random.key(n), n).toFloat64();
    const seen = new Uint8Array(n);
    for (const v of p) seen[v] = 1;
    if (seen.some((s) => s === 0)) throw new Error(`permutation(${n}) is not a permutation`);
  }
  // the same keys through both paths: the ranking (n ≤ 128) and the bitonic sort agree
  const key = mg.random.key(5);
  const bits = mg.random.randomBits(key, [127]);
  const ranked = await mg.random.permutation(key, 127).toFloat64();
  assertAllClose(ranked, await mg.argsort(bits).toFloat64(), exactly, "ranking vs argsort");
  const onGpu = await mg.random.permutation(mg.random.key(6), 5000).toFloat64();
  mg.setBackend("reference");
  try {
    const onRef = await mg.random.permutation(mg.random.key(6), 5000).toFloat64();
    assertAllClose(onGpu, onRef, exactly, "permutation(5000), WebGPU vs reference");
  } finally {
    mg.setBackend("webgpu");
  }
});

Deno.test("pickAlongAxis and takeAlongAxis select: an infinity or NaN elsewhere in the row does not leak", async () => {
  for (const backend of ["webgpu", "reference"] as const) {
    if (backend === "webgpu") await mg.init();
    mg.setBackend(backend);
    // masked logits: −∞ for forbidden actions, as action masking writes them
    const logits = mg.tensor([[0.5, -Infinity, 2], [NaN, 1, Infinity]]);
    const picked = await mg.pickAlongAxis(logits, mg.tensor([2, 1], { dtype: "i32" })).toFloat64();
    assertAllClose(picked, [2, 1], exactly, `${backend}: pickAlongAxis`);
    const taken = await mg.takeAlongAxis(logits, mg.tensor([[0, 1], [2, 1]], { dtype: "i32" }))
      .toFloat64();
    assertAllClose(taken, [0.5, -Infinity, Infinity, 1], exactly, `${backend}: takeAlongAxis`);
    const logp = mg.logSoftmax(mg.tensor([[0, -Infinity, 0]]), -1);
    const lp = await mg.pickAlongAxis(logp, mg.tensor([0], { dtype: "i32" })).toFloat64();
    assertAllClose(
      lp,
      [Math.log(0.5)],
      { rtol: 1e-6 },
      `${backend}: log-prob beside a masked action`,
    );
  }
  mg.setBackend("webgpu");
});
