import * as mg from "../mod.ts";
import { mamlRl } from "./maml_rl_dbg.ts";
import { pointNavigation } from "../envs/mod.ts";
await mg.init();
const [mb, tr] = Deno.args.map(Number);
const learner = mamlRl({
  env: pointNavigation({ horizon: 100 }),
  metaBatch: mb,
  trajectories: tr,
  hidden: [16, 16],
});
const state = learner.init(mg.random.key(0));
const [a] = learner.update(state) as any;
const [b] = mg.jit(learner.update)(state) as any;
for (const k of Object.keys(a.dbg)) {
  const [la] = mg.tree.flatten<mg.Tensor>(a.dbg[k]);
  const [lb] = mg.tree.flatten<mg.Tensor>(b.dbg[k]);
  for (let i = 0; i < la.length; i++) {
    const x = await la[i].toFloat64(), y = await lb[i].toFloat64();
    let md = 0, mx = 0, at = -1;
    for (let j = 0; j < x.length; j++) {
      const d = Math.abs(x[j] - y[j]);
      if (d > md) {
        md = d;
        at = j;
      }
      mx = Math.max(mx, Math.abs(x[j]));
    }
    console.log(
      k,
      i,
      la[i].shape,
      "maxdiff",
      md.toExponential(2),
      "at",
      at,
      "maxabs",
      mx.toExponential(2),
    );
  }
}
const ga = await a.dbg.g.toFloat64(), gb = await b.dbg.g.toFloat64();
const bad = [];
for (let j = 0; j < ga.length; j++) {
  if (Math.abs(ga[j] - gb[j]) > 1e-4 * (1 + Math.abs(ga[j]))) {
    bad.push([j, ga[j].toFixed(4), gb[j].toFixed(4)]);
  }
}
console.log(bad.length, JSON.stringify(bad.slice(0, 40)));
const [leaves] = mg.tree.flatten<mg.Tensor>(state.params);
console.log(leaves.map((l) => l.shape.join("x")).join(" "));
