import * as mg from "../mod.ts";
await mg.init();
const check = async (name: string, f: (x: mg.Tensor) => mg.Tensor, shape: number[]) => {
  const x = mg.random.normal(mg.random.key(1), shape);
  const a = await f(x).toFloat64();
  const b = await mg.jit(f)(x).toFloat64();
  let md = 0;
  for (let i = 0; i < a.length; i++) md = Math.max(md, Math.abs(a[i] - b[i]));
  console.log(name, shape.join("x"), "maxdiff", md);
};
for (const n of [60000, 70000, 140000]) {
  await check("sum-1", (x) => mg.sum(mg.exp(x), -1), [n, 2]);
  await check("sum-1 16", (x) => mg.sum(mg.tanh(x), -1), [n, 16]);
  await check("sum0", (x) => mg.sum(mg.exp(x), 0), [n, 2]);
  await check(
    "vmap-matmul",
    (x) => mg.matmul(mg.reshape(x, [20, n / 20, 2]), mg.ones([20, 2, 16])),
    [n, 2],
  );
  await check(
    "matmulT",
    (x) => mg.matmul(mg.swapAxes(mg.reshape(x, [20, n / 20, 2]), 1, 2), mg.ones([20, n / 20, 16])),
    [n, 2],
  );
}
