import * as mg from "../mod.ts";
await mg.init();
const N = Number(Deno.args[0]), which = Deno.args[1];
const k = (i: number) => mg.random.key(i);
const obs = mg.random.normal(k(1), [N, 2]),
  act = mg.random.normal(k(2), [N, 2]),
  adv = mg.random.normal(k(3), [N]);
const W0 = mg.random.normal(k(4), [2, 2]);
const logp = (W: mg.Tensor) => mg.sum(mg.square(mg.sub(act, mg.matmul(obs, W))), -1);
const inner = (W: mg.Tensor) => mg.mean(mg.mul(logp(W), adv));
const fns: Record<string, (W: mg.Tensor) => mg.Tensor> = {
  first: (W) => mg.grad(inner)(W),
  second: (W) => mg.grad((V: mg.Tensor) => inner(mg.sub(V, mg.mul(mg.grad(inner)(V), 0.1))))(W),
  outer: (W) =>
    mg.grad((V: mg.Tensor) =>
      mg.mean(mg.mul(mg.exp(mg.neg(logp(mg.sub(V, mg.mul(mg.grad(inner)(V), 0.1))))), adv))
    )(W),
  sumsq: (W) => mg.sum(mg.square(mg.sub(act, mg.matmul(obs, W))), 0),
  mmT: (W) => mg.matmul(mg.transpose(obs), mg.mul(act, mg.reshape(adv, [N, 1]))),
};
const f = fns[which];
const a = await f(W0).toFloat64(), b = await mg.jit(f)(W0).toFloat64();
let worst = 0;
for (let j = 0; j < a.length; j++) {
  worst = Math.max(worst, Math.abs(a[j] - b[j]) / (1e-3 + Math.abs(a[j])));
}
console.log(
  N,
  which,
  "worst",
  worst.toExponential(2),
  Array.from(a).slice(0, 4).map((x) => x.toFixed(4)).join(","),
  "|",
  Array.from(b).slice(0, 4).map((x) => x.toFixed(4)).join(","),
);
