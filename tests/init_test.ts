/** This file's isolate acquires the device lazily: ops run before any init() call. */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { assertAllClose } from "./helpers.ts";

Deno.test("ops before init() are queued and run once the device is acquired", async () => {
  if (mg.adapterInfo() !== null) {
    throw new Error("device already acquired; this test must run first in its file");
  }
  const x = mg.tensor([[1, 2], [3, 4]]);
  const y = mg.matmul(x, x).add(1);
  // a jitted matmul whose epilogue reads another matmul's result, freed right after it: the
  // queued epilogue must still see that result (and a scan over the same program)
  const values = (n: number, s: number) =>
    mg.tensor(Array.from({ length: n }, (_, i) => Math.sin(i * 7 + s)));
  const w = values(25, 1).reshape([5, 5]), u = values(15, 2).reshape([3, 5]);
  const v = values(6, 3).reshape([2, 3]);
  const f = (h: Tensor, v: Tensor) => mg.tanh(mg.add(mg.matmul(h, w), mg.matmul(v, u)));
  const jf = mg.jit(f);
  let h = values(10, 4).reshape([2, 5]);
  for (let t = 0; t < 3; t++) {
    const next = jf(h, v);
    if (t > 0) h.dispose();
    h = next;
  }
  const [scanned] = mg.scan((c: Tensor) => [f(c, v), null], h, null, { length: 2 });
  assertAllClose(await y.toFloat64(), [8, 11, 16, 23]);
  let ref = values(10, 4).reshape([2, 5]);
  for (let t = 0; t < 3; t++) ref = f(ref, v);
  assertAllClose(await h.toFloat64(), await ref.toFloat64(), { rtol: 1e-5, atol: 1e-6 }, "jit");
  ref = f(f(ref, v), v);
  assertAllClose(
    await scanned.toFloat64(),
    await ref.toFloat64(),
    { rtol: 1e-5, atol: 1e-6 },
    "scan",
  );
  const info = mg.adapterInfo();
  if (!info || !info.description) throw new Error("adapter info missing after the first read");
  if (info.limits.maxStorageBuffersPerShaderStage <= 8) {
    throw new Error("the device was created with default limits");
  }
});

Deno.test("init() returns the adapter and is idempotent", async () => {
  const a = await mg.init();
  const b = await mg.init();
  if (a !== b) throw new Error("init() should resolve to the same adapter info");
});
