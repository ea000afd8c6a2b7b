import * as mg from "../mod.ts";
await mg.init();
const x = mg.tensor([1, -2, 3]);
for (
  const f of [
    (x: mg.Tensor) => mg.div(1, mg.add(mg.mul(x, 0), -0)),
    (x: mg.Tensor) => mg.div(1, mg.mul(x, 0)),
    (x: mg.Tensor) => mg.mul(x, 0),
    (x: mg.Tensor) => mg.add(mg.mul(x, 0), -0),
  ]
) {
  console.log(
    Array.from(await f(x).toFloat64()),
    Array.from(await mg.jit(f)(x).toFloat64()),
    mg.jit(f).lower(x).plan,
  );
}
