/**
 * Issue #4's acceptance core: the second-order MAML meta-step on the sinusoid model written
 * as jit(valueAndGrad(metaLoss)) with vmap over tasks matches the eager per-task loop and
 * uses far fewer dispatches.
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { sampleSinusoid } from "../envs/sinusoid.ts";
import {
  initMlp,
  type MamlConfig,
  metaLossLoop,
  metaLossVmap,
  type Params,
} from "../bench/maml_common.ts";
import { assertAllClose } from "./helpers.ts";

Deno.test("second-order MAML: jit(valueAndGrad) with vmap over 25 tasks matches the eager loop with ≥ 10× fewer dispatches", async () => {
  await mg.init();
  const params = mg.tidy(() => initMlp(mg.random.key(0)));
  const batch = mg.tidy(() => sampleSinusoid(mg.random.key(1), { tasks: 25, shots: 10 }));
  const c: MamlConfig = { innerSteps: 1, alpha: 0.01, firstOrder: false };
  await mg.sync();

  let d0 = mg.runtimeStats().dispatches;
  const [lossLoop, gradsLoop] = mg.valueAndGrad((p: Params) => metaLossLoop(p, batch, c))(params);
  const loopValues = await Promise.all(
    [lossLoop, ...mg.tree.leaves<Tensor>(gradsLoop)].map((t) => t.toFloat64()),
  );
  const loopDispatches = mg.runtimeStats().dispatches - d0;

  const step = mg.jit(mg.valueAndGrad((p: Params, b: typeof batch) => metaLossVmap(p, b, c)));
  mg.tree.map((t: Tensor) => t.dispose(), step(params, batch)); // compile
  await mg.sync();
  d0 = mg.runtimeStats().dispatches;
  const [lossJit, gradsJit] = step(params, batch);
  const jitValues = await Promise.all(
    [lossJit, ...mg.tree.leaves<Tensor>(gradsJit)].map((t) => t.toFloat64()),
  );
  const jitDispatches = mg.runtimeStats().dispatches - d0;

  jitValues.forEach((v, i) =>
    assertAllClose(v, loopValues[i], { rtol: 1e-4, atol: 1e-5 }, `leaf ${i}`)
  );
  console.log(`dispatches per meta-step: eager loop ${loopDispatches}, vmap+jit ${jitDispatches}`);
  if (loopDispatches < 10 * jitDispatches) {
    throw new Error(`only ${(loopDispatches / jitDispatches).toFixed(1)}× fewer dispatches`);
  }
});
