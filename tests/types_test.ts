/**
 * The transformations keep their argument and result types (checked by `deno check`, which
 * `deno task check` runs on the tests): `Same<A, B>` is `true` only when A and B are the same
 * type, and `any` is not, so a transformation that returned `any` would fail to type-check.
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";

type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true
  : false;
const same = <A, B>(_: Same<A, B>) => {};

type Params = { w: Tensor; b: Tensor };
const loss = (p: Params, x: Tensor, _scale: number) => mg.sum(mg.mul(mg.add(p.w, p.b), x));

Deno.test("grad, valueAndGrad, vjp, jvp, hvp, vmap, jit and checkpoint keep their types", async () => {
  const params: Params = { w: mg.ones([2]), b: mg.zeros([2]) };
  const x = mg.tensor([1, 2]);

  const g = mg.grad(loss)(params, x, 1);
  same<typeof g, Params>(true);
  const gx = mg.grad(loss, { argnums: 1 })(params, x, 1);
  same<typeof gx, Tensor>(true);
  const both = mg.grad(loss, { argnums: [0, 1] })(params, x, 1);
  same<typeof both, [Params, Tensor]>(true);
  const [value, vg] = mg.valueAndGrad(loss)(params, x, 1);
  same<typeof value, Tensor>(true);
  same<typeof vg, Params>(true);
  const [[, aux], ag] = mg.valueAndGrad(
    (p: Params) => [mg.sum(p.w), { norm: mg.sum(p.b) }] as [Tensor, { norm: Tensor }],
    { hasAux: true },
  )(params);
  same<typeof aux, { norm: Tensor }>(true);
  same<typeof ag, Params>(true);

  const [out, back] = mg.vjp((p: Params) => mg.mul(p.w, 2), params);
  same<typeof out, Tensor>(true);
  same<ReturnType<typeof back>, [Params]>(true);
  const [y, dy] = mg.jvp((t: Tensor) => mg.sin(t), [x], [x]);
  same<typeof y, Tensor>(true);
  same<typeof dy, Tensor>(true);
  const h = mg.hvp((p: Params) => mg.sum(mg.square(p.w)), params, params);
  same<typeof h, Params>(true);

  const batched = mg.vmap((t: Tensor, p: Params) => mg.add(t, p.w), { inAxes: [0, null] });
  same<ReturnType<typeof batched>, Tensor>(true);
  const step = mg.jit((p: Params, lr: number): Params => ({ w: mg.mul(p.w, lr), b: p.b }));
  const next = step(params, 0.5);
  same<typeof next, Params>(true);
  const block = mg.checkpoint((t: Tensor) => mg.tanh(t));
  same<typeof block, (t: Tensor) => Tensor>(true);

  // and the values are what the types say
  if (!(g.w instanceof mg.Tensor) || !(next.w instanceof mg.Tensor)) throw new Error("not tensors");
  const w = await next.w.data();
  if (w[0] !== 0.5) throw new Error(`jit(step) gave ${w[0]}`);
  same<typeof both[1], Tensor>(true);
});
