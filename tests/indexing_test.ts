import * as mg from "../mod.ts";
import {
  assertAllClose,
  assertMatchesReference,
  assertThrowsWith,
  host,
  type HostTensor,
  on,
} from "./helpers.ts";

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
    "pickAlongAxis",
    [host([4, 6], "f32", 8), idx([5, 0, 3, 3])],
    (x, i) => mg.pickAlongAxis(x, i),
  );
});

/** NumPy's take_along_axis written out with loops over row-major indices (the oracle). */
function takeAlongAxisLoops(
  x: number[],
  xs: number[],
  ix: number[],
  is: number[],
  axis: number,
): { values: number[]; shape: number[] } {
  const shape = xs.map((d, k) => (k === axis ? is[k] : Math.max(d, is[k])));
  const strides = (s: number[]) => s.map((_, k) => s.slice(k + 1).reduce((p, q) => p * q, 1));
  const [sx, si] = [strides(xs), strides(is)];
  const size = shape.reduce((p, q) => p * q, 1);
  const values: number[] = [];
  for (let flat = 0; flat < size; flat++) {
    let rest = flat, at = 0, ati = 0;
    const pos = shape.map((_, k) => {
      const stride = shape.slice(k + 1).reduce((p, q) => p * q, 1);
      const v = Math.floor(rest / stride);
      rest %= stride;
      return v;
    });
    pos.forEach((p, k) => (ati += (is[k] === 1 ? 0 : p) * si[k]));
    let j = ix[ati];
    if (j < 0) j += xs[axis];
    j = Math.min(Math.max(j, 0), xs[axis] - 1); // out of range: clamped, as take does
    pos.forEach((p, k) => (at += (k === axis ? j : xs[k] === 1 ? 0 : p) * sx[k]));
    values.push(x[at]);
  }
  return { values, shape };
}

Deno.test("takeAlongAxis follows NumPy: indices of x's rank, any count per row, broadcasting", async () => {
  const cases: [number[], number[], number][] = [
    [[4, 6], [4, 1], -1], // the usual logp[..., None] pick, axis kept
    [[4, 6], [4, 3], 1], // several per row, repeats and negatives
    [[5, 3], [2, 3], 0], // along the first axis
    [[2, 5, 3], [1, 4, 3], 1], // broadcasting over the leading axis
  ];
  let seed = 40;
  for (const [xs, is, axis] of cases) {
    const x = host(xs, "f32", seed++);
    const a = axis < 0 ? axis + xs.length : axis;
    const i = host(is, "i32", seed++, -xs[a] - 2, xs[a] + 2); // some out of range
    const expected = takeAlongAxisLoops(x.values, xs, i.values, is, a);
    for (const backend of ["webgpu", "reference"] as const) {
      const got = mg.takeAlongAxis(on(x, backend), on(i, backend), axis);
      if (got.shape.join() !== expected.shape.join()) {
        throw new Error(`${xs}/${is}: shape [${got.shape}], expected [${expected.shape}]`);
      }
      assertAllClose(await got.toFloat64(), expected.values, {}, `${xs}/${is} ${backend}`);
    }
  }
  assertThrowsWith(
    () => mg.takeAlongAxis(mg.ones([4, 6]), mg.zeros([4], { dtype: "i32" })),
    "takeAlongAxis",
    "rank 2",
    "pickAlongAxis",
  );
  assertThrowsWith(
    () => mg.pickAlongAxis(mg.ones([4, 6]), mg.zeros([4, 1], { dtype: "i32" })),
    "pickAlongAxis",
    "use takeAlongAxis",
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
