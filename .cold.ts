import * as mg from "./mod.ts";
import { sampleSinusoid } from "./envs/sinusoid.ts";
import { initMlp, metaLossVmap, type Params } from "./bench/maml_common.ts";
import type { RegressionBatch } from "./envs/sinusoid.ts";
await mg.init();
const c = { innerSteps: 1, alpha: 0.01, firstOrder: false };
const params = initMlp(mg.random.key(0), 40);
const batch = sampleSinusoid(mg.random.key(10), { tasks: 25, shots: 10 });
await mg.sync();
const f = mg.jit(mg.valueAndGrad((p: Params, b: RegressionBatch) => metaLossVmap(p, b, c)));
const t0 = performance.now();
const p = await mg.profile(async () => {
  const out = f(params, batch);
  await (out as any)[0].item();
});
console.log("first call", (performance.now() - t0).toFixed(0), "ms");
console.log(p.table(40));
