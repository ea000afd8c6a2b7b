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

Deno.test("donated arguments are freed during the call, lowering peak memory, and cannot be reused", async () => {
  const n = 256;
  const update = (p: { w: Tensor; m: Tensor }, g: Tensor) => ({
    w: mg.sub(p.w, mg.mul(g, 0.1)),
    m: mg.add(mg.mul(p.m, 0.9), g),
  });
  const plain = mg.jit(update);
  const donating = mg.jit(update, { donateArgnums: [0] });
  const make = () => mg.tidy(() => ({ w: mg.ones([n, n]), m: mg.zeros([n, n]) }));
  const g = mg.tidy(() => mg.full([n, n], 0.5));
  const peak = async (fn: typeof plain) => {
    let p = make();
    fn(p, g); // compile (outputs dropped below)
    p = make();
    await mg.sync();
    mg.resetPeakMemory();
    const base = mg.memory().liveBytes;
    const out = fn(p, g);
    const high = mg.memory().peakBytes - base;
    return { p, out, high };
  };
  const a = await peak(plain);
  const b = await peak(donating);
  if (!b.p.w.isDisposed || !b.p.m.isDisposed) throw new Error("donated inputs were not released");
  if (a.p.w.isDisposed) throw new Error("a non-donated input was released");
  if (!(b.high < a.high)) {
    throw new Error(`donation did not lower peak bytes: ${b.high} vs ${a.high}`);
  }
  const w = await (b.out.w as Tensor).toFloat64();
  if (Math.abs(w[0] - 0.95) > 1e-6) throw new Error(`wrong update ${w[0]}`);
  let msg = "";
  try {
    mg.add(b.p.w, 1);
  } catch (e) {
    msg = (e as Error).message;
  }
  if (!msg.includes("donated to jit(update)") || !msg.includes("donateArgnums")) {
    throw new Error(`using a donated tensor should name the function it went to, got: ${msg}`);
  }
});
