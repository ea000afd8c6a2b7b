/**
 * Work issued before the device exists is queued and replayed once it arrives. This file's
 * first test must run before anything initialises WebGPU in its process.
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { assertAllClose } from "./helpers.ts";

Deno.test("eager ops and jitted programs called before init() match the results after it", async () => {
  const values = (n: number, s: number) =>
    mg.tensor(Array.from({ length: n }, (_, i) => Math.sin(i * 7 + s)));
  const w = values(25, 1).reshape([5, 5]), u = values(15, 2).reshape([3, 5]);
  const x = values(6, 3).reshape([2, 3]);
  // a matmul whose epilogue reads another matmul's result, freed right after: the queued
  // epilogue must still see that result
  const f = (h: Tensor, x: Tensor) => mg.tanh(mg.add(mg.matmul(h, w), mg.matmul(x, u)));
  const jf = mg.jit(f);
  let h = values(10, 4).reshape([2, 5]);
  for (let t = 0; t < 3; t++) {
    const next = jf(h, x);
    if (t > 0) h.dispose();
    h = next;
  }
  const before = await h.toFloat64();
  let ref = values(10, 4).reshape([2, 5]);
  for (let t = 0; t < 3; t++) ref = f(ref, x);
  assertAllClose(before, await ref.toFloat64(), { rtol: 1e-5, atol: 1e-6 }, "queued jit");
  const [c] = mg.scan(
    (c: Tensor, xt: Tensor) => [f(mg.add(c, xt), x), null],
    ref,
    mg.zeros([4, 2, 5]),
  );
  let r2 = ref;
  for (let t = 0; t < 4; t++) r2 = f(r2, x);
  assertAllClose(await c.toFloat64(), await r2.toFloat64(), { rtol: 1e-5, atol: 1e-6 }, "scan");
});
