import * as mg from "../mod.ts";
import { assertAllClose, assertMatchesReference, assertThrowsWith, host } from "./helpers.ts";

Deno.test("reshape is a view (no kernel) and infers -1", async () => {
  await mg.init();
  const x = mg.arange(12);
  const before = mg.runtimeStats().dispatches;
  const y = mg.reshape(x, [3, -1]);
  if (mg.runtimeStats().dispatches !== before) throw new Error("reshape dispatched a kernel");
  if (y.shape.join() !== "3,4") throw new Error(`shape ${y.shape}`);
  assertAllClose(await y.toFloat64(), [...Array(12).keys()]);
  x.dispose(); // the view keeps the storage alive
  assertAllClose(await y.toFloat64(), [...Array(12).keys()]);
  assertThrowsWith(() => mg.reshape(y, [5, -1]), "reshape", "[3, 4]", "12 elements");
});

Deno.test("transpose, swapAxes, moveAxis, broadcastTo match the reference", async () => {
  const x = host([2, 3, 5, 7], "f32", 1);
  for (const perm of [[3, 2, 1, 0], [0, 2, 1, 3], [1, 0, 3, 2], [2, 3, 0, 1]]) {
    await assertMatchesReference(`transpose ${perm}`, [x], (t) => mg.transpose(t, perm));
  }
  await assertMatchesReference(
    "transpose i32",
    [host([67, 129], "i32", 2)],
    (t) => mg.transpose(t),
  );
  await assertMatchesReference("swapAxes", [x], (t) => mg.swapAxes(t, 1, -1));
  await assertMatchesReference("moveAxis", [x], (t) => mg.moveAxis(t, 0, -1));
  await assertMatchesReference(
    "broadcastTo",
    [host([3, 1], "f32", 3)],
    (t) => mg.broadcastTo(t, [2, 3, 4]),
  );
  await assertMatchesReference("mT", [host([4, 3, 5], "f32", 4)], (t) => t.mT);
  assertThrowsWith(() => mg.broadcastTo(mg.zeros([3]), [4]), "broadcastTo", "[3]", "[4]");
});

Deno.test("slice with steps, negative indices and reversal matches the reference", async () => {
  const x = host([11, 13], "f32", 5);
  const specs: mg.SliceSpec[][] = [
    [[2, 9], [1, 12, 3]],
    [[null, null, -1], [-3, null]],
    [5, [null, null, -2]],
    [[-100, 100], 0],
    [[8, 2, -3], null],
    [[4, 4], null], // empty
  ];
  for (const s of specs) {
    await assertMatchesReference(`slice ${JSON.stringify(s)}`, [x], (t) => mg.slice(t, s));
  }
  await assertMatchesReference("flip", [host([3, 4, 5], "i32", 6)], (t) => mg.flip(t, [0, 2]));
  assertAllClose(
    await mg.slice(mg.reshape(mg.arange(12), [3, 4]), [1, [null, null, -1]]).toFloat64(),
    [7, 6, 5, 4],
  );
  assertThrowsWith(() => mg.slice(mg.zeros([3]), [3]), "slice", "index 3", "size 3");
});

Deno.test("pad, concat, stack, split, tile, repeat match the reference", async () => {
  await assertMatchesReference(
    "pad",
    [host([3, 4], "f32", 7)],
    (t) => mg.pad(t, [[1, 2], [0, 3]], -1),
  );
  await assertMatchesReference("pad i32", [host([5], "i32", 8)], (t) => mg.pad(t, 2, 9));
  await assertMatchesReference("concat", [
    host([2, 3], "f32", 9),
    host([2, 1], "f32", 10),
    host([2, 4], "f32", 11),
  ], (a, b, c) => mg.concat([a, b, c], 1));
  await assertMatchesReference(
    "concat axis 0",
    [host([2, 3], "f32", 12), host([5, 3], "f32", 13)],
    (a, b) => mg.concat([a, b], 0),
  );
  await assertMatchesReference(
    "stack",
    [host([3, 5], "f32", 14), host([3, 5], "f32", 15)],
    (a, b) => mg.stack([a, b], 1),
  );
  await assertMatchesReference(
    "split",
    [host([6, 4], "f32", 16)],
    (t) => mg.split(t, [1, 2, 3], 0)[1],
  );
  await assertMatchesReference("tile", [host([2, 3], "f32", 17)], (t) => mg.tile(t, [2, 1, 3]));
  await assertMatchesReference("repeat", [host([2, 3], "f32", 18)], (t) => mg.repeat(t, 3, 1));
  assertAllClose(await mg.tile(mg.tensor([1, 2]), [2]).toFloat64(), [1, 2, 1, 2]);
  assertAllClose(await mg.repeat(mg.tensor([1, 2]), 2).toFloat64(), [1, 1, 2, 2]);
  assertThrowsWith(
    () => mg.concat([mg.zeros([2, 3]), mg.zeros([3, 3])], 1),
    "concat",
    "[2, 3]",
    "[3, 3]",
    "axis 1",
  );
  assertThrowsWith(() => mg.stack([mg.zeros([2]), mg.zeros([3])]), "stack", "[2]", "[3]");
});

Deno.test("expandDims and squeeze", async () => {
  const x = mg.zeros([3]);
  if (mg.expandDims(x, 0).shape.join() !== "1,3" || mg.expandDims(x, -1).shape.join() !== "3,1") {
    throw new Error("expandDims");
  }
  if (mg.squeeze(mg.zeros([1, 3, 1])).shape.join() !== "3") throw new Error("squeeze");
  assertThrowsWith(() => mg.squeeze(mg.zeros([2, 3]), 0), "squeeze", "size 2");
  assertAllClose(await mg.squeeze(mg.ones([1, 2])).toFloat64(), [1, 1]);
});

Deno.test("split follows NumPy: a count of equal pieces, or the indices to cut at", async () => {
  const x = mg.arange(6);
  const pieces = (ps: mg.Tensor[]) => Promise.all(ps.map(async (p) => [...await p.data()]));
  const same = (got: number[][], want: number[][], what: string) => {
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      throw new Error(`${what}: ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
    }
  };
  same(await pieces(mg.split(x, 3)), [[0, 1], [2, 3], [4, 5]], "3 pieces");
  same(await pieces(mg.split(x, [1, 4])), [[0], [1, 2, 3], [4, 5]], "cut at 1 and 4");
  same(await pieces(mg.split(x, [2])), [[0, 1], [2, 3, 4, 5]], "cut at 2");
  same(await pieces(mg.split(x, [-2])), [[0, 1, 2, 3], [4, 5]], "a negative index");
  same(await pieces(mg.split(x, [4, 9])), [[0, 1, 2, 3], [4, 5], []], "past the end: empty");
  const m = mg.reshape(mg.arange(12), [2, 6]);
  same(await pieces(mg.split(m, [5], 1)), [[0, 1, 2, 3, 4, 6, 7, 8, 9, 10], [5, 11]], "axis 1");
  assertThrowsWith(() => mg.split(x, [1.5]), "split", "positions to cut at");
  // the other NumPy-named ops flatten without an axis, as NumPy and JAX do
  const m2 = mg.tensor([[1, 5, 2], [7, 0, 3]]);
  same(await pieces([mg.take(m2, mg.tensor([1, 3], { dtype: "i32" }))]), [[5, 7]], "take");
  same(await pieces([mg.cumsum(m2)]), [[1, 6, 8, 15, 15, 18]], "cumsum");
  same(await pieces([mg.repeat(m2, 2)]), [[1, 1, 5, 5, 2, 2, 7, 7, 0, 0, 3, 3]], "repeat");
  assertThrowsWith(() => mg.split(x, 4), "split", "4 equal pieces");
});
