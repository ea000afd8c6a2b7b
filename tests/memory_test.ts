import * as mg from "../mod.ts";
import { assertAllClose, assertThrowsWith } from "./helpers.ts";

Deno.test("10,000 iterations inside tidy keep live bytes and device bytes flat", async () => {
  await mg.init();
  const x = mg.tensor(Array.from({ length: 1000 }, (_, i) => i / 1000));
  let acc = mg.zeros([]);
  // warm up so the pool holds what one iteration needs
  for (let i = 0; i < 10; i++) {
    const next = mg.tidy(() => acc.add(mg.sum(mg.tanh(x.mul(2).add(1)))));
    acc.dispose();
    acc = next;
  }
  await acc.data();
  const start = mg.memory();
  let deviceAfter1000 = 0;
  for (let i = 0; i < 10_000; i++) {
    if (i === 1000) {
      await acc.data();
      deviceAfter1000 = mg.memory().deviceBytes;
    }
    const next = mg.tidy(() => acc.add(mg.sum(mg.tanh(x.mul(2).add(1)))));
    acc.dispose();
    acc = next;
    if (i % 2500 === 0) {
      // deferred elementwise ops hold the values they read until they run: count after sync
      await mg.sync();
      const m = mg.memory();
      if (m.liveBytes !== start.liveBytes || m.liveTensors !== start.liveTensors) {
        throw new Error(
          `iteration ${i}: live ${m.liveBytes} B / ${m.liveTensors} tensors vs ${start.liveBytes} / ${start.liveTensors}`,
        );
      }
    }
  }
  const value = await acc.item();
  const end = mg.memory();
  if (end.liveBytes !== start.liveBytes || end.liveTensors !== start.liveTensors) {
    throw new Error("live memory grew");
  }
  if (end.deviceBytes !== deviceAfter1000) {
    throw new Error(`device bytes grew: ${deviceAfter1000} → ${end.deviceBytes}`);
  }
  let perStep = 0;
  for (let i = 0; i < 1000; i++) perStep += Math.tanh(2 * (i / 1000) + 1);
  assertAllClose([value], [perStep * 10_010], { rtol: 1e-4 });
});

Deno.test("tidy keeps returned pytrees and frees the rest; keep() exempts", async () => {
  const before = mg.memory().liveTensors;
  let kept: mg.Tensor | undefined;
  const out = mg.tidy(() => {
    const a = mg.ones([4]);
    const b = a.mul(3);
    kept = mg.keep(a.add(1));
    return { b, nested: [b.add(1)] };
  });
  if (out.b.isDisposed || out.nested[0].isDisposed || kept!.isDisposed) {
    throw new Error("returned or kept tensor was freed");
  }
  if (mg.memory().liveTensors !== before + 3) {
    throw new Error(`expected 3 survivors, got ${mg.memory().liveTensors - before}`);
  }
  assertAllClose(await out.nested[0].toFloat64(), [4, 4, 4, 4]);
  out.b.dispose();
  out.nested[0].dispose();
  kept!.dispose();
  if (mg.memory().liveTensors !== before) throw new Error("dispose did not release");
});

Deno.test("using disposes at block end; use after dispose is a clear error", () => {
  let leaked: mg.Tensor;
  {
    using t = mg.ones([2]);
    leaked = t;
  }
  if (!leaked.isDisposed) throw new Error("using did not dispose");
  assertThrowsWith(() => leaked.add(1), "used after it was disposed", "f32[2]");
  leaked.dispose(); // idempotent
});

Deno.test("tidy rejects async functions and frees on exceptions", () => {
  const before = mg.memory().liveTensors;
  assertThrowsWith(() => mg.tidy(() => Promise.resolve(mg.ones([1]))), "tidy", "synchronous");
  assertThrowsWith(() =>
    mg.tidy(() => {
      mg.ones([3]);
      throw new Error("boom");
    }), "boom");
  if (mg.memory().liveTensors !== before) throw new Error("tensors leaked");
});

Deno.test("peak bytes track the high-water mark", async () => {
  mg.resetPeakMemory();
  const base = mg.memory().liveBytes;
  const big = mg.zeros([1 << 20]);
  big.dispose();
  const m = mg.memory();
  if (m.peakBytes < base + 4 * (1 << 20)) {
    throw new Error(`peak ${m.peakBytes} below ${base + 4 * (1 << 20)}`);
  }
  if (m.liveBytes !== base) throw new Error("live bytes not restored");
  await mg.sync();
});
