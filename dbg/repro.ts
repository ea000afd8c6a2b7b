import * as mg from "../mod.ts";
import { mamlRl } from "../algorithms/mod.ts";
import { pointNavigation } from "../envs/mod.ts";
await mg.init();
const [M, N, H, mode] = [
  Number(Deno.args[0]),
  Number(Deno.args[1]),
  Number(Deno.args[2] ?? 16),
  Deno.args[3] ?? "vmap",
];
const learner = mamlRl({
  env: pointNavigation({ horizon: 100 }),
  metaBatch: 2,
  trajectories: 2,
  hidden: H === 0 ? [] : [H],
  firstOrder: Deno.env.get("FO") === "1",
});
const params = learner.init(mg.random.key(0)).params;
const k = (i: number) => mg.random.key(i);
const batch = (s: number) => ({
  obs: mg.random.normal(k(s), [M, N, 2]),
  action: mg.random.normal(k(s + 1), [M, N, 2]),
  logProb: mg.random.normal(k(s + 2), [M, N]),
  advantage: mg.random.normal(k(s + 3), [M, N]),
  episodeReturn: mg.zeros([M]),
});
const data = { inner: [batch(10)], outer: batch(20) };
const f = (p: any, d: any) =>
  mode === "vmap"
    ? mg.mean(
      mg.vmap((q: any, dd: any) => learner.metaObjective(q, dd.inner, dd.outer), {
        inAxes: [null, 0],
      })(p, d),
    )
    : learner.metaObjective(
      p,
      d.inner.map((b: any) =>
        mg.tree.map(
          (t: mg.Tensor) => (t.ndim >= 2 ? mg.reshape(t, [M * N, ...t.shape.slice(2)]) : t),
          b,
        )
      ),
      mg.tree.map(
        (t: mg.Tensor) => (t.ndim >= 2 ? mg.reshape(t, [M * N, ...t.shape.slice(2)]) : t),
        d.outer,
      ),
    );
const g = Deno.env.get("VAL") ? ((p: any, d: any) => f(p, d)) : mg.grad(f);
const [a] = mg.tree.flatten<mg.Tensor>(g(params, data));
const [b] = mg.tree.flatten<mg.Tensor>(mg.jit(g)(params, data));
let worst = 0;
for (let i = 0; i < a.length; i++) {
  const x = await a[i].toFloat64(), y = await b[i].toFloat64();
  for (let j = 0; j < x.length; j++) {
    worst = Math.max(worst, Math.abs(x[j] - y[j]) / (1e-3 + Math.abs(x[j])));
  }
}
console.log(M, N, H, mode, "worst rel diff", worst.toExponential(2));
