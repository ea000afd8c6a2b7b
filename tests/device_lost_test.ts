/** A lost device is reported clearly; init() acquires a new one; old tensors say what happened. */
import * as mg from "../mod.ts";
import { runtime } from "../core/backend/webgpu/runtime.ts";
import { assertAllClose, assertRejectsWith, assertThrowsWith } from "./helpers.ts";

Deno.test("device loss: clear errors, then recovery with init()", async () => {
  await mg.init();
  const x = mg.tensor([1, 2, 3]);
  const old = mg.tensor([7]);
  assertAllClose(await x.add(1).toFloat64(), [2, 3, 4]);
  await old.data();
  const device = runtime.device!;
  device.destroy();
  await device.lost;
  assertThrowsWith(() => mg.add(x, 1), "device lost", "init()");
  await assertRejectsWith(x.data(), "device lost", "init()");
  x.dispose(); // disposing after a loss never throws
  await mg.init();
  assertAllClose(await mg.ones([3]).add(1).toFloat64(), [2, 2, 2]);
  assertAllClose(await mg.tensor([5]).toFloat64(), [5]);
  assertThrowsWith(() => mg.add(old, 1), "device that was lost", "recreate");
});

Deno.test("a buffer larger than the device allows is refused with the limit", async () => {
  const info = await mg.init();
  const n = Math.ceil(info.limits.maxBufferSize / 4) + 1024;
  assertThrowsWith(() => mg.zeros([n]), "maxBufferSize", String(info.limits.maxBufferSize));
});
