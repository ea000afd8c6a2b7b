import * as mg from "../mod.ts";
import { assertAllClose, assertMatchesReference, host, type HostTensor } from "./helpers.ts";

const idx = (values: number[], shape = [values.length]): HostTensor => ({
  values,
  shape,
  dtype: "i32",
});

Deno.test("take gathers along any axis with multi-dim, negative and clamped indices", async () => {
  const x = host([5, 7, 3], "f32", 1);
  await assertMatchesReference("take axis 0", [x, idx([4, 0, 2, 2])], (t, i) => mg.take(t, i, 0));
  await assertMatchesReference(
    "take axis 1 2-D idx",
    [x, idx([6, 0, -1, 3, 2, 2], [2, 3])],
    (t, i) => mg.take(t, i, 1),
  );
  await assertMatchesReference(
    "take axis 2 clamped",
    [x, idx([99, -99, 1])],
    (t, i) => mg.take(t, i, 2),
  );
  await assertMatchesReference(
    "take i32 table",
    [host([10, 4], "i32", 2), idx([9, 1])],
    (t, i) => mg.take(t, i),
  );
});

Deno.test("scatterAdd is the transpose of take and accumulates repeats", async () => {
  await assertMatchesReference(
    "scatterAdd 1-D",
    [host([6], "f32", 3), idx([0, 2, 0, 4, 4, 4])],
    (u, i) => mg.scatterAdd(u, i, 0, 5),
  );
  await assertMatchesReference("scatterAdd middle axis", [
    host([2, 4, 3], "f32", 4),
    idx([1, 1, 0, 5]),
  ], (u, i) => mg.scatterAdd(u, i, 1, 6));
  await assertMatchesReference(
    "scatterAdd i32",
    [host([5, 2], "i32", 5), idx([3, 3, 0, 1, 3])],
    (u, i) => mg.scatterAdd(u, i, 0, 4),
  );
  // <take(x, i), u> == <x, scatterAdd(u, i)>: the adjoint identity autodiff relies on
  const x = mg.tensor(host([6, 3], "f32", 6).values, { shape: [6, 3] });
  const i = mg.tensor([5, 0, 0, 2], { dtype: "i32" });
  const u = mg.tensor(host([4, 3], "f32", 7).values, { shape: [4, 3] });
  const lhs = await mg.sum(mg.mul(mg.take(x, i, 0), u)).item();
  const rhs = await mg.sum(mg.mul(x, mg.scatterAdd(u, i, 0, 6))).item();
  assertAllClose([lhs], [rhs], { rtol: 1e-5 });
});

Deno.test("oneHot and takeAlongAxis", async () => {
  assertAllClose(await mg.oneHot(mg.tensor([0, 2, 5], { dtype: "i32" }), 3).toFloat64(), [
    1,
    0,
    0,
    0,
    0,
    1,
    0,
    0,
    0,
  ]);
  assertAllClose(await mg.oneHot(mg.tensor([1, 0], { dtype: "i32" }), 2, { axis: 0 }).toFloat64(), [
    0,
    1,
    1,
    0,
  ]);
  await assertMatchesReference(
    "takeAlongAxis",
    [host([4, 6], "f32", 8), idx([5, 0, 3, 3])],
    (x, i) => mg.takeAlongAxis(x, i),
  );
});

Deno.test("cumsum forward and reverse along any axis", async () => {
  const x = host([4, 67, 3], "f32", 9);
  for (const axis of [0, 1, 2]) {
    for (const reverse of [false, true]) {
      await assertMatchesReference(
        `cumsum ${axis} ${reverse}`,
        [x],
        (t) => mg.cumsum(t, axis, reverse),
        { atol: 1e-5 },
      );
    }
  }
  await assertMatchesReference("cumsum i32", [host([9, 5], "i32", 10)], (t) => mg.cumsum(t, 0));
  assertAllClose(await mg.cumsum(mg.tensor([1, 2, 3]), 0, true).toFloat64(), [6, 5, 3]);
});
