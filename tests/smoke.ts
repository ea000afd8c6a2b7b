/**
 * A short end-to-end check on the default adapter: matmul, broadcasting, a reduction and the
 * PRNG against the reference backend. `tests/smoke_test.ts` runs it in the suite and in
 * `deno task test:gl`; as a script (`deno run -A tests/smoke.ts`) it checks an adapter by hand.
 */
import * as mg from "../mod.ts";
import { assertAllClose } from "./helpers.ts";

/** Runs the checks; throws on a mismatch. Returns the adapter's description. */
export async function smoke(): Promise<string> {
  const info = await mg.init();
  const a = mg.tensor([[1, 2], [3, 4]]);
  assertAllClose(await mg.matmul(a, a).toFloat64(), [7, 10, 15, 22]);
  assertAllClose(await mg.sum(mg.add(a, mg.tensor([10, 20])), 0).toFloat64(), [24, 46]);
  const u = await mg.random.uniform(mg.random.key(0), [3]).toFloat64();
  const r = await mg.random.uniform(mg.random.key(0, { backend: "reference" }), [3]).toFloat64();
  assertAllClose(u, r, { rtol: 0, atol: 0 });
  return `${info.description}${info.backendHint ? ` (${info.backendHint})` : ""}`;
}

if (import.meta.main) {
  console.log(`smoke: ok on ${await smoke()}`);
}
