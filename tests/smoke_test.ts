/** A short end-to-end check; CI also runs it on the GL path (DENO_WEBGPU_BACKEND=gl). */
import * as mg from "../mod.ts";
import { assertAllClose } from "./helpers.ts";

Deno.test("smoke: matmul, broadcasting, reduction and PRNG on the default adapter", async () => {
  const info = await mg.init();
  console.log(`adapter: ${info.description}${info.backendHint ? ` (${info.backendHint})` : ""}`);
  const a = mg.tensor([[1, 2], [3, 4]]);
  assertAllClose(await mg.matmul(a, a).toFloat64(), [7, 10, 15, 22]);
  assertAllClose(await mg.sum(mg.add(a, mg.tensor([10, 20])), 0).toFloat64(), [24, 46]);
  const u = await mg.random.uniform(mg.random.key(0), [3]).toFloat64();
  const r = await mg.random.uniform(mg.random.key(0, { backend: "reference" }), [3]).toFloat64();
  assertAllClose(u, r, { rtol: 0, atol: 0 });
});
