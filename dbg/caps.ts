import * as mg from "../mod.ts";
await mg.init();
const n = (shape: number[], s = 1) =>
  mg.random.uniform(mg.random.key(s), shape, { minval: 0, maxval: 1 });
const close = (a: number, b: number, tol: number) =>
  Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));
const cases: [string, () => Promise<[number, number]>][] = [
  ["sum 10M", async () => {
    const x = mg.ones([10_000_000]);
    return [await mg.sum(x).item(), 1e7];
  }],
  ["sum axis0 [1M,2]", async () => {
    const x = mg.ones([1_000_000, 2]);
    return [(await mg.sum(x, 0).toFloat64())[1], 1e6];
  }],
  ["sum axis1 [2,1M]", async () => {
    const x = mg.ones([2, 1_000_000]);
    return [(await mg.sum(x, 1).toFloat64())[1], 1e6];
  }],
  ["max [3M]", async () => {
    const x = mg.arange(3_000_000);
    return [await mg.max(x).item(), 2_999_999];
  }],
  ["argmax [200k]", async () => {
    const x = mg.arange(200_000);
    return [await mg.argmax(x).item(), 199_999];
  }],
  ["cumsum [200k]", async () => {
    const x = mg.ones([200_000]);
    const c = await mg.cumsum(x).toFloat64();
    return [c[199_999], 200_000];
  }],
  ["cumsum axis0 [100k,2]", async () => {
    const x = mg.ones([100_000, 2]);
    const c = await mg.cumsum(x, 0).toFloat64();
    return [c[199_999], 100_000];
  }],
  ["softmax [1,200k]", async () => {
    const x = mg.zeros([1, 200_000]);
    const c = await mg.softmax(x, -1).toFloat64();
    return [c[199_999] * 200_000, 1];
  }],
  ["logsumexp [1,200k]", async () => {
    const x = mg.zeros([1, 200_000]);
    return [await mg.reshape(mg.logsumexp(x, -1), []).item(), Math.log(200_000)];
  }],
  ["permutation 100k", async () => {
    const p = await mg.random.permutation(mg.random.key(0), 100_000).toFloat64();
    return [p.reduce((a, b) => a + b, 0), 100_000 * 99_999 / 2];
  }],
  ["sort [100k]", async () => {
    const x = mg.neg(mg.arange(100_000));
    const s = await mg.sort(x).toFloat64();
    return [s[99_999], 0];
  }],
  ["matmul K=70000", async () => {
    const r = await mg.matmul(mg.ones([2, 70_000]), mg.ones([70_000, 1])).toFloat64();
    return [r[1], 70_000];
  }],
  ["matmul K=70000 tA", async () => {
    const r = await mg.matmul(mg.transpose(mg.ones([70_000, 8])), mg.ones([70_000, 8])).toFloat64();
    return [r[63], 70_000];
  }],
  ["matmul 1024 K=80000", async () => {
    const r = await mg.matmul(mg.ones([64, 80_000]), mg.ones([80_000, 256])).toFloat64();
    return [r[64 * 256 - 1], 80_000];
  }],
  ["mean var [5M]", async () => {
    const x = mg.ones([5_000_000]);
    return [await mg.mean(x).item(), 1];
  }],
  ["normal 10M mean", async () => {
    const x = mg.random.normal(mg.random.key(0), [10_000_000]);
    return [Math.round(await mg.mean(mg.square(x)).item() * 100) / 100, 1];
  }],
  ["take 1M", async () => {
    const x = mg.arange(1_000_000);
    const t = await mg.take(x, mg.tensor([999_999], { dtype: "i32" })).toFloat64();
    return [t[0], 999_999];
  }],
  ["transpose big", async () => {
    const x = mg.reshape(mg.arange(2_000_000), [1000, 2000]);
    const t = await mg.transpose(x).toFloat64();
    return [t[2_000_000 - 1], 1_999_999];
  }],
];
for (const [name, f] of cases) {
  try {
    const [got, want] = await f();
    console.log((close(got, want, 1e-3) ? "ok  " : "BAD ") + name, got, want);
  } catch (e) {
    console.log("ERR " + name, (e as Error).message.slice(0, 150));
  }
}
{
  const n = 100_000;
  const idx = mg.tensor(Array.from({ length: n }, (_, i) => i % 3), { dtype: "i32" });
  const g = mg.grad((x: mg.Tensor) => mg.sum(mg.take(x, idx, 0)))(mg.zeros([3]));
  console.log("scatterAdd via take vjp [100k→3]", Array.from(await g.toFloat64()), [
    33334,
    33333,
    33333,
  ]);
  const r = mg.cumsum(mg.ones([200_000]), 0, { reverse: true } as never);
}
