/** This file's isolate acquires the device lazily: ops run before any init() call. */
import * as mg from "../mod.ts";
import { assertAllClose } from "./helpers.ts";

Deno.test("ops before init() are queued and run once the device is acquired", async () => {
  if (mg.adapterInfo() !== null) {
    throw new Error("device already acquired; this test must run first in its file");
  }
  const x = mg.tensor([[1, 2], [3, 4]]);
  const y = mg.matmul(x, x).add(1);
  assertAllClose(await y.toFloat64(), [8, 11, 16, 23]);
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
