import * as mg from "../mod.ts";
await mg.init();
const check = async (
  name: string,
  f: (x: mg.Tensor, y: mg.Tensor) => mg.Tensor,
  shape: number[],
) => {
  const x = mg.random.normal(mg.random.key(1), shape),
    y = mg.random.normal(mg.random.key(2), shape);
  const a = await f(x, y).toFloat64();
  const b = await mg.jit(f)(x, y).toFloat64();
  let md = 0;
  for (let i = 0; i < a.length; i++) {
    md = Math.max(md, Math.abs(a[i] - b[i]) / (1e-3 + Math.abs(a[i])));
  }
  console.log(name, shape.join("x"), "worst rel", md.toExponential(2));
};
for (const n of [30000, 34000, 70000]) {
  await check("sum0 prologue", (x, y) => mg.sum(mg.mul(mg.tanh(x), y), 0), [n, 2]);
  await check("mean0 prologue", (x, y) => mg.mean(mg.mul(mg.exp(x), y), 0), [n, 2]);
  await check("sum0 16", (x, y) => mg.sum(mg.mul(mg.tanh(x), y), 0), [n, 16]);
  await check("sum all", (x, y) => mg.sum(mg.mul(mg.tanh(x), y)), [n, 2]);
  await check("sum0 epilogue", (x, y) => mg.exp(mg.sum(mg.mul(mg.tanh(x), y), 0)), [n, 2]);
  await check(
    "grad bias",
    (x, y) =>
      mg.grad((b: mg.Tensor) => mg.sum(mg.mul(mg.tanh(mg.add(x, b)), y)))(mg.ones([2]).mul(0.3)),
    [n, 2],
  );
  await check(
    "grad2 bias",
    (x, y) =>
      mg.grad((b: mg.Tensor) =>
        mg.sum(mg.square(mg.grad((c: mg.Tensor) => mg.sum(mg.mul(mg.tanh(mg.add(x, c)), y)))(b)))
      )(mg.ones([2]).mul(0.3)),
    [n, 2],
  );
}
