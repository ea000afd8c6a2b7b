import * as mg from "../mod.ts";
await mg.init();
const N = Number(Deno.args[0]), H = Number(Deno.args[1] ?? 16), which = Deno.args[2] ?? "second";
const k = (i: number) => mg.random.key(i);
const obs = mg.random.normal(k(1), [N, 2]),
  act = mg.random.normal(k(2), [N, 2]),
  adv = mg.random.normal(k(3), [N]);
const W1 = mg.mul(mg.random.normal(k(4), [2, H]), 0.5),
  W2 = mg.mul(mg.random.normal(k(5), [H, 2]), 0.5);
const logp = (V: mg.Tensor) => {
  const h = mg.tanh(mg.matmul(obs, V));
  return mg.neg(mg.sum(mg.square(mg.sub(act, mg.matmul(h, W2))), -1));
};
const inner = (V: mg.Tensor) => mg.mean(mg.mul(logp(V), adv));
const fns: Record<string, (V: mg.Tensor) => mg.Tensor> = {
  first: (V) => mg.grad(inner)(V),
  second: (V) => mg.grad((U: mg.Tensor) => inner(mg.sub(U, mg.mul(mg.grad(inner)(U), 0.1))))(V),
  hvp: (V) => mg.hvp(inner, V, mg.onesLike(V)),
};
const f = fns[which];
const a = await f(W1).toFloat64(), b = await mg.jit(f)(W1).toFloat64();
let worst = 0;
for (let j = 0; j < a.length; j++) {
  worst = Math.max(worst, Math.abs(a[j] - b[j]) / (1e-3 + Math.abs(a[j])));
}
console.log(
  N,
  H,
  which,
  "worst",
  worst.toExponential(2),
  Array.from(a).slice(0, 4).map((x) => x.toFixed(4)).join(","),
  "|",
  Array.from(b).slice(0, 4).map((x) => x.toFixed(4)).join(","),
);
