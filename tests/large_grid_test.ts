/**
 * Every kernel family on an output larger than 65,535 × 64 elements (the per-dimension
 * workgroup limit × a workgroup), where dispatches must spill into the grid's y dimension.
 */
import * as mg from "../mod.ts";
import { assertMatchesReference, host, type HostTensor } from "./helpers.ts";

const BIG = 65535 * 64 + 4099; // 4,198,339: prime-ish, past the 1-D grid
const idx = (values: number[]): HostTensor => ({ values, shape: [values.length], dtype: "i32" });

Deno.test("kernel families past the 1-D grid limit match the reference", async () => {
  const x = host([BIG], "f32", 1);
  const m = host([2051, 2049], "f32", 2); // 4.2M elements, odd sides
  await assertMatchesReference("elementwise", [x], (t) => mg.tanh(mg.mul(t, 1.5)));
  await assertMatchesReference("strided copy (transpose)", [m], (t) => mg.transpose(t));
  await assertMatchesReference(
    "slice with step",
    [m],
    (t) => mg.slice(t, [[null, null, -1], [1, null, 1]]),
  );
  await assertMatchesReference("pad (copy-into)", [m], (t) => mg.pad(t, [[1, 0], [0, 2]], 3));
  await assertMatchesReference("concat", [m, m], (a, b) => mg.concat([a, b], 0));
  await assertMatchesReference("reduce rows", [m], (t) => mg.sum(t, 1), { rtol: 1e-4, atol: 1e-3 });
  await assertMatchesReference("argmax columns", [m], (t) => mg.argmax(t, 0));
  await assertMatchesReference("cumsum", [m], (t) => mg.cumsum(t, 0), { rtol: 1e-4, atol: 1e-2 });
  await assertMatchesReference(
    "take (gather)",
    [m, idx([2050, 0, 7, -1])],
    (t, i) => mg.take(t, i, 1),
  );
  await assertMatchesReference(
    "random bits",
    [{ values: [0, 3], shape: [2], dtype: "u32" }],
    (k) => mg.random.randomBits(k, [BIG]),
  );
  await assertMatchesReference(
    "maxPool",
    [host([1, 1, 2051, 2049], "f32", 3)],
    (t) => mg.maxPool2d(t, 1),
  );
});
