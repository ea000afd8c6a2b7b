import * as mg from "../mod.ts";
import { assertAllClose, assertMatchesReference, assertThrowsWith, host } from "./helpers.ts";

const CASES: Array<[readonly number[], number | number[] | undefined]> = [
  [[1], undefined],
  [[7], 0],
  [[67, 129], undefined],
  [[67, 129], 0],
  [[67, 129], 1],
  [[2, 3, 5, 7], [0, 2]],
  [[2, 3, 5, 7], [1, 3]],
  [[2, 3, 5, 7], [0, 1, 2, 3]],
  [[3, 1000, 3], 1], // long axis with inner stride: multi-stage partials
  [[5003], 0], // several stages over a prime length
  [[4, 1], 1],
];

Deno.test("sum/prod/max/min over any axes with keepdims match the reference", async () => {
  let seed = 1;
  for (const [shape, axes] of CASES) {
    for (const keepdims of [false, true]) {
      await assertMatchesReference(
        `sum ${shape} ${axes} ${keepdims}`,
        [host(shape, "f32", seed++)],
        (x) => mg.sum(x, axes, keepdims),
        {
          rtol: 1e-5,
          atol: 1e-4,
        },
      );
      await assertMatchesReference(
        `max ${shape} ${axes}`,
        [host(shape, "f32", seed++)],
        (x) => mg.max(x, axes, keepdims),
      );
      await assertMatchesReference(
        `min ${shape} ${axes}`,
        [host(shape, "f32", seed++)],
        (x) => mg.min(x, axes, keepdims),
      );
    }
    await assertMatchesReference(
      `prod ${shape} ${axes}`,
      [host(shape, "f32", seed++, 0.9, 1.1)],
      (x) => mg.prod(x, axes),
      {
        rtol: 1e-4,
      },
    );
  }
});

Deno.test("integer and bool reductions are exact", async () => {
  let seed = 300;
  for (const dtype of ["i32", "u32"] as const) {
    for (const [shape, axes] of CASES) {
      await assertMatchesReference(
        `${dtype} sum`,
        [host(shape, dtype, seed++, -100, 100)],
        (x) => mg.sum(x, axes),
      );
      await assertMatchesReference(
        `${dtype} max`,
        [host(shape, dtype, seed++, -100, 100)],
        (x) => mg.max(x, axes),
      );
      await assertMatchesReference(
        `${dtype} min`,
        [host(shape, dtype, seed++, -100, 100)],
        (x) => mg.min(x, axes),
      );
    }
  }
  const b = host([33, 65], "bool", 7);
  await assertMatchesReference("bool sum counts", [b], (x) => mg.sum(x, 1));
  await assertMatchesReference("any", [b], (x) => mg.any(x, 0));
  await assertMatchesReference("all", [b], (x) => mg.all(x, 1));
});

Deno.test("argmax/argmin pick the first extreme and treat NaN as the extreme", async () => {
  let seed = 900;
  for (
    const [shape, axis] of [[[7], 0], [[67, 129], 0], [[67, 129], 1], [[3, 1000, 3], 1], [
      [5003],
      0,
    ]] as const
  ) {
    await assertMatchesReference(
      `argmax ${shape}`,
      [host(shape, "f32", seed++)],
      (x) => mg.argmax(x, axis),
    );
    await assertMatchesReference(
      `argmin ${shape}`,
      [host(shape, "f32", seed++)],
      (x) => mg.argmin(x, axis),
    );
  }
  await assertMatchesReference("argmax flat", [host([2, 3, 5, 7], "f32", 5)], (x) => mg.argmax(x));
  const ties = mg.tensor([[1, 3, 3, 0], [2, 2, 2, 2], [0, NaN, 5, NaN]]);
  assertAllClose(await mg.argmax(ties, 1).toFloat64(), [1, 0, 1]);
  assertAllClose(await mg.argmin(ties, 1).toFloat64(), [3, 0, 1]);
  // ties across a multi-stage reduction keep the first index
  const long = mg.full([3000], 1).mul(mg.cast(mg.arange(3000).ge(1000), "f32")); // 0 … then 1s from 1000
  assertAllClose(await mg.argmax(long).toFloat64(), [1000]);
  assertAllClose(await mg.argmin(long).toFloat64(), [0]);
  assertAllClose(await mg.max(mg.tensor([1, NaN, 3])).toFloat64(), [NaN]);
});

Deno.test("mean, variance, logsumexp, softmax are stable compositions", async () => {
  await assertMatchesReference("mean", [host([67, 129], "f32", 1)], (x) => mg.mean(x, 1));
  await assertMatchesReference(
    "variance",
    [host([67, 129], "f32", 2)],
    (x) => mg.variance(x, 0, false, 1),
    { rtol: 1e-4 },
  );
  await assertMatchesReference(
    "std keepdims",
    [host([5, 7], "f32", 3)],
    (x) => mg.std(x, 1, true),
    { rtol: 1e-4 },
  );
  await assertMatchesReference(
    "logsumexp",
    [host([13, 17], "f32", 4, -50, 50)],
    (x) => mg.logsumexp(x, 1),
  );
  await assertMatchesReference(
    "softmax",
    [host([13, 17], "f32", 5, -50, 50)],
    (x) => mg.softmax(x, 0),
  );
  // x − lse cancels near the max: f32 rounding of |x| ≈ 50 is ~4e-6 absolute
  await assertMatchesReference(
    "logSoftmax",
    [host([13, 17], "f32", 6, -50, 50)],
    (x) => mg.logSoftmax(x),
    { atol: 2e-5 },
  );
  assertAllClose(await mg.logsumexp(mg.tensor([1000, 1000])).toFloat64(), [1000 + Math.log(2)]);
  assertAllClose(await mg.softmax(mg.tensor([1e4, 0])).toFloat64(), [1, 0]);
  assertAllClose(await mg.variance(mg.tensor([1e4 + 1, 1e4 + 2, 1e4 + 3, 1e4 + 4])).toFloat64(), [
    1.25,
  ], { rtol: 1e-4 });
});

Deno.test("reductions reject empty axes without an identity and bad axes", () => {
  assertThrowsWith(() => mg.max(mg.zeros([0, 3]), 0), "max", "size 0");
  assertThrowsWith(() => mg.sum(mg.zeros([2, 3]), 2), "sum", "axis 2", "rank 2");
  assertThrowsWith(() => mg.sum(mg.zeros([2, 3]), [1, -1]), "repeated axis");
});

Deno.test("sum over an empty axis is 0", async () => {
  assertAllClose(await mg.sum(mg.zeros([0, 3]), 0).toFloat64(), [0, 0, 0]);
});
