import * as mg from "../mod.ts";
import {
  assertAllClose,
  assertMatchesReference,
  host,
  type HostTensor,
  ODD_SHAPES,
} from "./helpers.ts";

const UNARY_FLOAT: Array<[string, (x: mg.Tensor) => mg.Tensor, number, number]> = [
  ["neg", mg.neg, -5, 5],
  ["abs", mg.abs, -5, 5],
  ["sign", mg.sign, -2, 2],
  ["exp", mg.exp, -20, 20],
  ["log", mg.log, 1e-3, 100],
  ["log1p", mg.log1p, -0.9, 10],
  ["expm1", mg.expm1, -5, 5],
  ["sin", mg.sin, -10, 10],
  ["cos", mg.cos, -10, 10],
  ["tanh", mg.tanh, -30, 30],
  ["sqrt", mg.sqrt, 0, 100],
  ["rsqrt", mg.rsqrt, 0.01, 100],
  ["reciprocal", mg.reciprocal, 0.1, 10],
  ["floor", mg.floor, -5, 5],
  ["ceil", mg.ceil, -5, 5],
  ["round", mg.round, -5, 5],
  ["sigmoid", mg.sigmoid, -50, 50],
  ["erf", mg.erf, -4, 4],
  ["relu", mg.relu, -2, 2],
  ["softplus", mg.softplus, -30, 30],
  ["gelu", mg.gelu, -4, 4],
  ["elu", mg.elu, -4, 4],
];

Deno.test("unary float primitives match the reference on odd shapes", async () => {
  let seed = 10;
  for (const [name, fn, lo, hi] of UNARY_FLOAT) {
    for (const shape of ODD_SHAPES) {
      await assertMatchesReference(
        `${name} ${JSON.stringify(shape)}`,
        [host(shape, "f32", seed++, lo, hi)],
        fn,
        {
          rtol: 3e-6,
          atol: name === "erf" ? 2e-7 : 1e-6,
        },
      );
    }
  }
});

Deno.test("accuracy near zero: log1p, expm1, erf keep relative precision", async () => {
  const xs = [1e-8, -1e-8, 1e-5, 3e-4];
  for (const [fn, ref] of [[mg.log1p, Math.log1p], [mg.expm1, Math.expm1]] as const) {
    assertAllClose(
      await fn(mg.tensor(xs)).toFloat64(),
      xs.map(ref),
      { rtol: 1e-6, atol: 0 },
      fn.name,
    );
  }
  const erf = await mg.erf(mg.tensor(xs)).toFloat64();
  assertAllClose(erf, xs.map((x) => x * 2 / Math.sqrt(Math.PI)), { rtol: 1e-6, atol: 0 }, "erf");
});

Deno.test("sin and cos are accurate to a few ulp in every octant, NaN for NaN and ±∞", async () => {
  // the builtins need only be within 2⁻¹¹ (SwiftShader is 2⁻¹² off): metagrad reduces and
  // evaluates its own polynomials below 8192
  const xs = Array.from({ length: 2001 }, (_, i) => Math.fround(-40 + i * 0.04 + 1e-3));
  xs.push(0, -0, 1e-30, Math.fround(Math.PI), Math.fround(Math.PI / 2), 8191.5, -3000.25);
  const x32 = Float32Array.from(xs);
  for (const [fn, ref] of [[mg.sin, Math.sin], [mg.cos, Math.cos]] as const) {
    const got = await fn(mg.tensor(x32)).toFloat64();
    assertAllClose(got, Array.from(x32, ref), { rtol: 0, atol: 4e-7 }, fn.name);
    const special = await fn(mg.tensor([NaN, Infinity, -Infinity])).toFloat64();
    assertAllClose(special, [NaN, NaN, NaN], {}, `${fn.name} of NaN, ±∞`);
  }
  assertAllClose(await mg.sin(mg.tensor([1e-30, -1e-30])).toFloat64(), [1e-30, -1e-30], {
    rtol: 1e-6,
    atol: 0,
  }, "sin of tiny x is x");
});

Deno.test("special values: NaN and infinities propagate like IEEE/NumPy", async () => {
  const x = mg.tensor([NaN, Infinity, -Infinity, 0, -0.5, 2]);
  const check = async (t: mg.Tensor, expected: number[], what: string) =>
    assertAllClose(await t.toFloat64(), expected, {}, what);
  await check(mg.sign(x), [NaN, 1, -1, 0, -1, 1], "sign");
  await check(mg.maximum(x, 1), [NaN, Infinity, 1, 1, 1, 2], "maximum");
  await check(mg.minimum(x, 1), [NaN, 1, -Infinity, 0, -0.5, 1], "minimum");
  await check(
    mg.sigmoid(x),
    [NaN, 1, 0, 0.5, 1 / (1 + Math.exp(0.5)), 1 / (1 + Math.exp(-2))],
    "sigmoid",
  );
  await check(mg.tanh(x), [NaN, 1, -1, 0, Math.tanh(-0.5), Math.tanh(2)], "tanh");
  await check(mg.cast(mg.isNaN(x), "f32"), [1, 0, 0, 0, 0, 0], "isNaN");
  await check(mg.cast(mg.notEqual(x, x), "f32"), [1, 0, 0, 0, 0, 0], "ne(NaN, NaN)");
  await check(mg.cast(mg.equal(x, x), "f32"), [0, 1, 1, 1, 1, 1], "eq");
  await check(mg.cast(mg.less(x, 1), "f32"), [0, 0, 1, 1, 1, 0], "lt");
  await check(mg.pow(mg.tensor([-2, -2, 0, 0, 4, -8]), mg.tensor([3, 0.5, 0, -1, 0.5, 2])), [
    -8,
    NaN,
    1,
    Infinity,
    2,
    64,
  ], "pow");
});

const BINARY_FLOAT: Array<[string, (a: mg.Tensor, b: mg.Tensor) => mg.Tensor]> = [
  ["add", mg.add],
  ["sub", mg.sub],
  ["mul", mg.mul],
  ["div", mg.div],
  ["mod", mg.mod],
  ["maximum", mg.maximum],
  ["minimum", mg.minimum],
  ["eq", mg.equal],
  ["ne", mg.notEqual],
  ["lt", mg.less],
  ["le", mg.lessEqual],
  ["gt", mg.greater],
  ["ge", mg.greaterEqual],
];

/** Broadcasting corners: equal shapes, scalars, size-1 axes on either side, rank mismatch. */
const PAIRS: Array<[readonly number[], readonly number[]]> = [
  [[7], [7]],
  [[67, 129], [67, 129]],
  [[], [5, 3]],
  [[5, 3], []],
  [[3, 1], [1, 4]],
  [[2, 1, 3], [4, 1]],
  [[1], [1]],
  [[2, 3, 5, 7], [5, 1]],
  [[1, 1], [13]],
];

Deno.test("binary float primitives with broadcasting match the reference", async () => {
  let seed = 100;
  for (const [name, fn] of BINARY_FLOAT) {
    for (const [sa, sb] of PAIRS) {
      const a = host(sa, "f32", seed++), b = host(sb, "f32", seed++, 0.5, 3);
      // exact ties exercise eq/le/ge
      if (name === "eq" || name === "le" || name === "ge") {
        b.values = b.values.map((v, i) => (i % 3 === 0 ? a.values[i % a.values.length] : v));
      }
      await assertMatchesReference(
        `${name} ${JSON.stringify(sa)}×${JSON.stringify(sb)}`,
        [a, b],
        fn,
        { rtol: 2e-6, atol: 2e-6 },
      );
    }
  }
  for (const [sa, sb] of PAIRS) {
    await assertMatchesReference(
      "pow",
      [host(sa, "f32", seed++, 0.1, 3), host(sb, "f32", seed++, -2, 2)],
      mg.pow,
      { rtol: 5e-6 },
    );
  }
});

const INT_OPS: Array<[string, (a: mg.Tensor, b: mg.Tensor) => mg.Tensor]> = [
  ["add", mg.add],
  ["sub", mg.sub],
  ["mul", mg.mul],
  ["div", mg.div],
  ["mod", mg.mod],
  ["maximum", mg.maximum],
  ["minimum", mg.minimum],
  ["lt", mg.less],
  ["eq", mg.equal],
  ["bitwiseAnd", mg.bitwiseAnd],
  ["bitwiseOr", mg.bitwiseOr],
  ["bitwiseXor", mg.bitwiseXor],
  ["shiftLeft", mg.shiftLeft],
  ["shiftRight", mg.shiftRight],
];

Deno.test("integer primitives (i32, u32) match the reference exactly, with wrapping and zero divisors", async () => {
  let seed = 500;
  for (const dtype of ["i32", "u32"] as const) {
    for (const [name, fn] of INT_OPS) {
      const big = name === "add" || name === "sub" || name === "mul";
      const [lo, hi] = big ? [-3e9, 3e9] : name.startsWith("shift") ? [0, 40] : [-50, 50];
      const a: HostTensor = host([67, 3], dtype, seed++, lo, hi);
      const b: HostTensor = host(
        [3],
        dtype,
        seed++,
        name.startsWith("shift") ? 0 : -7,
        name.startsWith("shift") ? 40 : 7,
      );
      if (big) a.values = a.values.map((v) => (dtype === "i32" ? v | 0 : v >>> 0));
      if (name === "div" || name === "mod") b.values[0] = 0; // the zero divisor rule
      await assertMatchesReference(`${dtype} ${name}`, [a, b], fn);
    }
    for (const fn of [mg.neg, mg.abs, mg.sign]) {
      await assertMatchesReference(`${dtype} ${fn.name}`, [host([31], dtype, seed++, -40, 40)], fn);
    }
  }
  // i32 extremes
  const ext = { values: [-2147483648, 2147483647, -1, 0, 7], shape: [5], dtype: "i32" as const };
  await assertMatchesReference("i32 extremes neg/abs", [ext], (x) => mg.add(mg.neg(x), mg.abs(x)));
  await assertMatchesReference("i32 floor-div by -1", [ext], (x) => mg.div(x, -1));
});

Deno.test("logical ops, where, and casts match the reference", async () => {
  const a = host([5, 4], "bool", 1), b = host([4], "bool", 2);
  for (const fn of [mg.logicalAnd, mg.logicalOr, mg.logicalXor]) {
    await assertMatchesReference(fn.name, [a, b], fn);
  }
  await assertMatchesReference("logicalNot", [a], mg.logicalNot);
  const x = host([5, 4], "f32", 3), y = host([1, 4], "f32", 4);
  await assertMatchesReference("where", [a, x, y], (c, p, q) => mg.where(c, p, q));
  await assertMatchesReference("where scalar branch", [a, x], (c, p) => mg.where(c, p, 0.5));
  const vals = {
    values: [-2.7, -0.5, 0, 0.5, 2.7, 3e9, -3e9, NaN],
    shape: [8],
    dtype: "f32" as const,
  };
  for (const to of ["i32", "u32", "bool", "f32"] as const) {
    await assertMatchesReference(`cast f32→${to}`, [vals], (t) => mg.cast(t, to));
  }
  const ints = { values: [-5, -1, 0, 1, 2147483647], shape: [5], dtype: "i32" as const };
  for (const to of ["u32", "bool", "f32"] as const) {
    await assertMatchesReference(`cast i32→${to}`, [ints], (t) => mg.cast(t, to));
  }
  await assertMatchesReference("cast bool→f32", [a], (t) => mg.cast(t, "f32"));
});

Deno.test("an elementwise op over more than 65,535 × 64 elements uses the 2-D grid correctly", async () => {
  const n = 65535 * 64 + 4099;
  const x = mg.arange(n, undefined, 1, { dtype: "i32" });
  const y = mg.mul(x, 3);
  const got = await y.data();
  for (const i of [0, 1, 65535 * 64 - 1, 65535 * 64, n - 1]) {
    if (got[i] !== 3 * i) throw new Error(`element ${i}: ${got[i]} != ${3 * i}`);
  }
  let bad = 0;
  for (let i = 0; i < n; i++) if (got[i] !== 3 * i) bad++;
  if (bad) throw new Error(`${bad} wrong elements`);
});

Deno.test("weak typing: JS numbers adopt the tensor dtype unless they would lose value", async () => {
  const i = mg.tensor([1, 2], { dtype: "i32" });
  if (mg.add(i, 1).dtype !== "i32") throw new Error("i32 + 1 should stay i32");
  if (mg.add(i, 0.5).dtype !== "f32") throw new Error("i32 + 0.5 should be f32");
  if (mg.add(mg.tensor([true]), 1).dtype !== "i32") throw new Error("bool + 1 should be i32");
  if (mg.pow(i, 2).dtype !== "f32") throw new Error("pow promotes to f32");
  assertAllClose(await mg.add(i, 0.5).toFloat64(), [1.5, 2.5]);
});

Deno.test("broadcast indices split exactly at every position of index spaces up to 2²¹", async () => {
  await mg.init();
  // out[r, c] = r·C + c from a column of row offsets and a row of column numbers: every element
  // of a 2²¹-element space checks the quotient and the remainder of its index by C (kernels
  // this small split indices with f32 division and one correction step)
  for (const cols of [3, 7, 40, 1000, 2047, 65537, 699051]) {
    const rows = Math.floor((1 << 21) / cols);
    const rowStart = mg.reshape(mg.arange(0, rows * cols, cols), [rows, 1]);
    const out = await mg.add(rowStart, mg.arange(cols)).data();
    for (let i = 0; i < rows * cols; i++) {
      if (out[i] !== i) throw new Error(`C = ${cols}: element ${i} holds ${out[i]}`);
    }
  }
});
