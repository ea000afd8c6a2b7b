import * as mg from "../mod.ts";
await mg.init();
const x = mg.tensor([1, -2, 3]);
const f = (
  x: mg.Tensor,
) => [
  mg.where(mg.greater(x, 0), x, Infinity),
  mg.where(mg.greater(x, 0), NaN, x),
  mg.maximum(x, -Infinity),
  mg.max(x),
];
console.log((await Promise.all(f(x).map((t) => t.toFloat64()))).map((a) => Array.from(a)));
console.log(
  (await Promise.all(mg.jit(f)(x).map((t: mg.Tensor) => t.toFloat64()))).map((a) => Array.from(a)),
);
