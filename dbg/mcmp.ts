import * as mg from "../mod.ts";
import { mamlRl } from "../algorithms/mod.ts";
import { pointNavigation } from "../envs/mod.ts";
import { onBackend } from "../tests/helpers.ts";
await mg.init();
const config = {
  env: pointNavigation({ horizon: Number(Deno.args[0]) }),
  metaBatch: 2,
  trajectories: Number(Deno.args[1]),
  hidden: [6],
  damping: 0.1,
};
mg.setBackend("reference");
const plain = mamlRl(config);
const start = plain.init(mg.random.key(3));
const [, rm] = plain.update(start);
mg.setBackend("webgpu");
const compiled = mamlRl(config);
const s2 = await onBackend(start, "webgpu");
const [, em] = compiled.update(s2);
const [, gm] = mg.jit(compiled.update)(s2);
for (const [n, m] of [["ref", rm], ["eager", em], ["jit", gm]] as const) {
  console.log(
    n,
    await m.preReturn.item(),
    await m.postReturn.item(),
    await m.kl.item(),
    await m.stepFraction.item(),
  );
}
