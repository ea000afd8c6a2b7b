/** Without an adapter, WebGPU use fails with a message that says what to install. */
import * as mg from "../mod.ts";
import { assertRejectsWith } from "./helpers.ts";

Deno.test("no WebGPU adapter: init and reads reject with install advice; the reference backend still works", async () => {
  Object.defineProperty(navigator, "gpu", {
    value: { requestAdapter: () => Promise.resolve(null) },
    configurable: true,
  });
  await assertRejectsWith(mg.init(), "no WebGPU adapter", "mesa-vulkan-drivers", "reference");
  const r = mg.ones([2], { backend: "reference" }).add(1);
  if ((await r.data())[0] !== 2) throw new Error("reference backend broken");
  let msg = "";
  try {
    mg.ones([2], { backend: "webgpu" });
  } catch (e) {
    msg = (e as Error).message;
  }
  if (!msg.includes("no WebGPU adapter")) {
    throw new Error(`expected the adapter error, got: ${msg}`);
  }
});
