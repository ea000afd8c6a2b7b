/** `profile`: per-kernel GPU timing with timestamp queries, without changing any result. */
import assert from "node:assert/strict";
import * as mg from "../mod.ts";
import { assertAllClose } from "./helpers.ts";

// tests that need timestamp queries are reported as ignored on adapters without them
const hasTimestamps = (await mg.init()).features.includes("timestamp-query");

Deno.test({
  name: "profile: rows per kernel and grid, counts matching the runtime's, same values",
  ignore: !hasTimestamps,
}, async () => {
  const a = mg.random.normal(mg.random.key(0), [37, 53]);
  const b = mg.random.normal(mg.random.key(1), [53, 29]);
  const compute = () => mg.sum(mg.relu(mg.matmul(a, b)), 1);
  const expected = await compute().toFloat64();
  let dispatched = 0;
  const p = await mg.profile(async () => {
    const before = mg.runtimeStats().dispatches;
    const values = await compute().toFloat64();
    dispatched = mg.runtimeStats().dispatches - before;
    return values;
  });
  assertAllClose(p.value, expected, { rtol: 0, atol: 0 }, "profiled result");
  assert.equal(p.dispatches, dispatched);
  assert.ok(p.kernels.some((k) => k.label.startsWith("matmul 1×[37×53]·[53×29]")), p.table());
  assert.ok(p.kernels.every((k) => k.totalMs >= 0 && k.dispatches >= 1));
  for (let i = 1; i < p.kernels.length; i++) {
    assert.ok(p.kernels[i - 1].totalMs >= p.kernels[i].totalMs, "rows are slowest first");
  }
  assert.ok(p.gpuMs > 0 && p.wallMs >= 0);
  assert.ok(p.passOverheadMs >= 0 && p.passOverheadMs < p.gpuMs, `${p.passOverheadMs} ms`);
  const table = p.table(2).split("\n");
  assert.equal(table.length, 2 + Math.min(2, p.kernels.length));
  assert.match(table[0], new RegExp(`^${dispatched} dispatches, `));
});

Deno.test({
  name: "profile: a compiled program over the query-set size, and no nesting",
  ignore: !hasTimestamps,
}, async () => {
  // 2,100 dependent dispatches in one jit submission: more than one query set's 2,048
  const chain = (x: mg.Tensor) => {
    let y = x;
    for (let i = 0; i < 2100; i++) y = mg.matmul(y, mg.eye(3));
    return y;
  };
  const x = mg.tensor([[1, 2, 3]]);
  const f = mg.jit(chain);
  const expected = await f(x).toFloat64();
  const p = await mg.profile(() => f(x).toFloat64());
  assertAllClose(p.value, expected, { rtol: 0, atol: 0 });
  assertAllClose(p.value, [1, 2, 3]);
  assert.equal(p.kernels.reduce((s, k) => s + k.dispatches, 0), p.dispatches);
  assert.ok(p.dispatches >= 2100, `${p.dispatches} dispatches timed`);

  await assert.rejects(
    () => mg.profile(() => mg.profile(() => 1)),
    /profile: a profile is already running/,
  );
  // the failed inner call left the runtime usable and unprofiled
  const again = await mg.profile(() => mg.add(x, 1).toFloat64());
  assertAllClose(again.value, [2, 3, 4]);
  assert.ok(again.dispatches >= 1);
});
