/**
 * Tensors over the 128 MiB per-binding limit: elementwise ops and reductions are split into
 * chunks and must give exact results (a peer framework returns garbage here).
 */
import * as mg from "../mod.ts";
import { assertAllClose } from "./helpers.ts";

const N = 50 * 1024 * 1024; // 200 MiB of f32

Deno.test("a 200 MiB tensor: elementwise ops and reductions are correct", async () => {
  const info = await mg.init();
  if (N * 4 <= info.limits.maxStorageBufferBindingSize) {
    throw new Error(
      `binding limit ${info.limits.maxStorageBufferBindingSize} is not below 200 MiB; the test would not exercise chunking`,
    );
  }
  // i32 values are exact, so every element can be checked.
  const idx = mg.arange(N, undefined, 1, { dtype: "i32" });
  const y = mg.mod(
    mg.add(
      mg.mul(idx, 7),
      mg.tensor([0, 1], { dtype: "i32" }).reshape([1, 2]).broadcastTo([N / 2, 2]).reshape([N]),
    ),
    1000,
  );
  const got = await y.data();
  let bad = 0;
  for (let i = 0; i < N; i++) if (got[i] !== ((7 * i + (i & 1)) % 1000)) bad++;
  if (bad) throw new Error(`${bad} wrong elements in the chunked elementwise op`);

  const ones = mg.ones([N]);
  const twice = mg.add(ones, ones);
  assertAllClose([await mg.sum(twice).item()], [2 * N], { rtol: 0, atol: 0 }, "full sum");
  // 7i + parity(i) is always even, so the largest residue is 998
  assertAllClose([await mg.max(mg.cast(y, "f32")).item()], [998], { rtol: 0, atol: 0 }, "max");
  // a row longer than the binding limit, and many rows with an inner stride
  const rows = mg.sum(mg.reshape(twice, [2, N / 2]), 1);
  assertAllClose(await rows.toFloat64(), [N, N], { rtol: 0, atol: 0 }, "row sums");
  const cols = mg.sum(mg.reshape(twice, [N / 4, 4]), 0);
  assertAllClose(
    await cols.toFloat64(),
    [N / 2, N / 2, N / 2, N / 2],
    { rtol: 0, atol: 0 },
    "column sums",
  );
  // a jitted reduction whose reader is its epilogue: stages split across bindings, so the
  // epilogue runs after the reduction instead of inside its last stage
  const halves = mg.jit((t: mg.Tensor) =>
    mg.add(mg.mul(mg.sum(mg.reshape(t, [2, N / 2]), 1), 0.5), 2)
  );
  if (halves.lower(twice).kernels !== 1) throw new Error("the epilogue was not fused");
  assertAllClose(
    await halves(twice).toFloat64(),
    [N / 2 + 2, N / 2 + 2],
    { rtol: 0, atol: 0 },
    "epilogue",
  );
  const imax = mg.argmax(mg.reshape(mg.cast(y, "f32"), [N / 1024, 1024]), 1);
  const im = await imax.data();
  // row r holds (7(1024r + j) + parity) mod 1000; compare with a direct scan of row 0 and the last row
  for (const r of [0, N / 1024 - 1]) {
    let best = -1, at = 0;
    for (let j = 0; j < 1024; j++) {
      const v = got[r * 1024 + j];
      if (v > best) [best, at] = [v, j];
    }
    if (im[r] !== at) throw new Error(`argmax row ${r}: ${im[r]} != ${at}`);
  }
  for (const t of [idx, y, ones, twice, rows, cols, imax]) t.dispose();
  mg.trimPool();
});
