/** A jitted training step allocates nothing new per call (its own isolate: no stray garbage). */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";

Deno.test("repeated jit calls keep live tensors and device memory flat", async () => {
  const step = mg.jit(
    mg.valueAndGrad((w: Tensor, x: Tensor) => mg.mean(mg.square(mg.tanh(mg.matmul(x, w))))),
  );
  const [w, x] = mg.tidy(
    () => [
      mg.random.normal(mg.random.key(0), [16, 8]),
      mg.random.normal(mg.random.key(1), [32, 16]),
    ],
  );
  // the same loop twice: the second pass must find everything it needs in the pool
  // warm up across a submit boundary, which is where the pool reaches its steady state
  for (let i = 0; i < 20; i++) {
    mg.tree.map((t: Tensor) => t.dispose(), step(w, x));
    if (i % 10 === 0) await mg.sync();
  }
  await mg.sync();
  const m0 = mg.memory();
  for (let i = 0; i < 200; i++) {
    mg.tree.map((t: Tensor) => t.dispose(), step(w, x));
    if (i % 50 === 0) await mg.sync();
  }
  await mg.sync();
  const m1 = mg.memory();
  if (m1.liveTensors !== m0.liveTensors || m1.liveBytes !== m0.liveBytes) {
    throw new Error(`live memory grew: ${JSON.stringify([m0, m1])}`);
  }
  if (m1.deviceBytes !== m0.deviceBytes) {
    throw new Error(`device bytes grew: ${m0.deviceBytes} → ${m1.deviceBytes}`);
  }
});
