/**
 * Small inputs read through uniform windows (software adapters): every kernel family gives
 * bit-identical results with and without them, at each window tier and across windows.
 */
import assert from "node:assert/strict";
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { type GpuStorage, runtime } from "../core/backend/webgpu/runtime.ts";
import { batchSlices, planReads } from "../core/backend/webgpu/input_reads.ts";
import { setUniformInputs, uniformInputsEnabled } from "../core/backend/webgpu/adapter_profile.ts";
import { randomValues } from "./helpers.ts";

await mg.init();

function t(shape: number[], seed: number, dtype: mg.DType = "f32"): Tensor {
  return mg.tensor(randomValues(shape, dtype, seed), { shape, dtype });
}

/** Run `f` on fresh inputs with uniform reads off, then on; return both results' values. */
async function bothWays(
  make: () => Tensor[],
  f: (...xs: Tensor[]) => Tensor,
): Promise<{ off: number[]; on: number[]; reads: string[] }> {
  const results: number[][] = [];
  let reads: string[] = [];
  for (const on of [false, true]) {
    setUniformInputs(on);
    try {
      const xs = make(); // made in this mode, so their buffers suit it
      reads = planReads(xs.map((x) => x.storage as GpuStorage)).map((r) => r.kind);
      const y = f(...(xs as [Tensor, Tensor, Tensor]));
      results.push(Array.from(await y.data()));
      y.dispose();
      xs.forEach((x) => x.dispose());
    } finally {
      setUniformInputs(null);
    }
  }
  return { off: results[0], on: results[1], reads };
}

const onSoftware = mg.adapterInfo()?.isFallbackAdapter === true;

Deno.test({
  name: "uniform windows are used on software adapters only",
  fn() {
    assert.equal(uniformInputsEnabled(mg.adapterInfo()), onSoftware);
    if (!onSoftware) console.log("  (not a software adapter: the uniform path stays off)");
  },
});

// element counts at each tier edge: 256 B, 4 KiB, one 64 KiB window, 2–4 windows, too big
const SIZES = [1, 64, 65, 1024, 1025, 16384, 16385, 40000, 65536, 65537];

Deno.test({
  name: "elementwise, reductions and gathers read uniform windows bit-identically",
  ignore: !onSoftware,
  async fn() {
    for (const n of SIZES) {
      const big = n * 4 > 4 * 65536;
      const add = await bothWays(
        () => [t([n], n), t([n], n + 1)],
        (a, b) => mg.mul(mg.add(a, b), a),
      );
      assert.deepEqual(add.on, add.off, `add ${n}`);
      assert.deepEqual(add.reads, big ? ["storage", "storage"] : ["uniform", "uniform"], `${n}`);
      const sum = await bothWays(() => [t([n], n)], (a) => mg.sum(a));
      assert.deepEqual(sum.on, sum.off, `sum ${n}`);
      const idx = await bothWays(
        () => [t([n], n), mg.tensor([n - 1, 0, Math.floor(n / 2)], { dtype: "i32" })],
        (a, i) => mg.take(a, i, 0),
      );
      assert.deepEqual(idx.on, idx.off, `take ${n}`);
    }
    // integer and boolean inputs, a broadcast operand and a transposed one
    const w = await bothWays(
      () => [t([37, 41], 1, "bool"), t([37, 41], 2, "i32"), t([41], 3, "i32")],
      (c, a, b) => mg.where(c, a, mg.transpose(mg.reshape(mg.tile(b, [37]), [41, 37]))),
    );
    assert.deepEqual(w.on, w.off);
    assert.deepEqual(w.reads, ["uniform", "uniform", "uniform"]);
    const cs = await bothWays(() => [t([7, 301], 4)], (a) => mg.cumsum(a, 1));
    assert.deepEqual(cs.on, cs.off);
    // under jit: a reduction with a fused prologue and an epilogue reading a broadcast leaf
    const step = mg.jit((g: Tensor, b: Tensor) => mg.sub(b, mg.mul(mg.sum(mg.exp(g), [0]), 0.1)));
    const r = await bothWays(() => [t([300, 129], 5), t([129], 6)], step);
    assert.deepEqual(r.on, r.off);
  },
});

Deno.test({
  name: "matmuls (scalar, vec4, transposed, batched, with epilogues) read uniform windows",
  ignore: !onSoftware,
  async fn() {
    const cases: [number[], number[], boolean][] = [
      [[25, 10, 40], [25, 40, 40], false], // vec4 loads, B over three windows
      [[25, 10, 40], [25, 40, 40], true], // B transposed
      [[250, 40], [40, 40], false],
      [[40, 250], [250, 40], false],
      [[13, 7], [7, 5], false], // odd: scalar loads
      [[3, 129, 65], [65, 33], false], // A over two windows, broadcast B
    ];
    for (const [sa, sb, tb] of cases) {
      const r = await bothWays(
        () => [t(sa, 1), t(sb, 2), t([sb[sb.length - 1]], 3)],
        (a, b, bias) => {
          const p = tb ? mg.matmul(a, mg.swapAxes(b, -1, -2)) : mg.matmul(a, b);
          return mg.relu(mg.add(p, bias));
        },
      );
      assert.deepEqual(r.on, r.off, `${sa}·${sb}${tb ? "ᵀ" : ""}`);
      assert.deepEqual(r.reads, ["uniform", "uniform", "uniform"]);
    }
    // under jit the bias add and relu become the matmul's epilogue
    const f = mg.jit((a: Tensor, b: Tensor, bias: Tensor) =>
      mg.relu(mg.add(mg.matmul(a, b), bias))
    );
    const j = await bothWays(() => [t([25, 10, 40], 5), t([25, 40, 40], 6), t([40], 7)], f);
    assert.deepEqual(j.on, j.off);
    // two products in one kernel (the second read through its own windows)
    const dual = mg.jit((a: Tensor, b: Tensor, c: Tensor, d: Tensor) =>
      mg.sub(mg.matmul(a, b), mg.matmul(c, d, { transposeA: true }))
    );
    const k = await bothWays(
      () => [t([25, 10, 40], 8), t([25, 40, 40], 9), t([25, 7, 10], 10), t([25, 7, 40], 11)],
      dual,
    );
    assert.deepEqual(k.on, k.off);
  },
});

Deno.test({
  name: "batched matmul operands over several windows are read one window per workgroup",
  ignore: !onSoftware,
  async fn() {
    // the planner: 25 matrices of 40×40 (160,000 bytes, 3 windows) fit 3 overlapping windows
    const b = t([25, 40, 40], 1);
    const plan = planReads([b.storage as GpuStorage])[0];
    const slices = batchSlices(b.storage as GpuStorage, plan, 25, 1600, 1600);
    assert.equal(slices?.kind, "slices");
    assert.equal(slices?.kind === "slices" && slices.windows, 3);
    assert.equal(batchSlices(b.storage as GpuStorage, plan, 1, 1600, 1600), null, "one matrix");
    b.dispose();
    // every loop variant reading a sliced operand equals the storage path bit for bit
    const cases: [string, number[], number[], (a: Tensor, b: Tensor) => Tensor][] = [
      ["vec4 B", [25, 10, 40], [25, 40, 40], (a, b) => mg.matmul(a, b)],
      ["B transposed", [25, 10, 40], [25, 40, 40], (a, b) => mg.matmul(a, b, { transposeB: true })],
      ["scalar B", [25, 10, 41], [25, 41, 41], (a, b) => mg.matmul(a, b)],
      [
        "A transposed, sliced",
        [25, 40, 40],
        [25, 40, 3],
        (a, b) => mg.matmul(a, b, { transposeA: true }),
      ],
      [
        "B of 1,600-float matrices, 41 of them",
        [41, 2, 40],
        [41, 40, 40],
        (a, b) => mg.matmul(a, b),
      ],
    ];
    for (const [name, sa, sb, f] of cases) {
      const r = await bothWays(() => [t(sa, 2), t(sb, 3)], f);
      assert.deepEqual(r.on, r.off, name);
    }
    // a second product whose B is sliced, in one kernel with the first
    const dual = mg.jit((a: Tensor, b: Tensor, c: Tensor, d: Tensor) =>
      mg.relu(mg.add(mg.matmul(a, b), mg.matmul(c, d)))
    );
    const k = await bothWays(
      () => [t([25, 10, 40], 4), t([1, 40, 40], 5), t([25, 10, 40], 6), t([25, 40, 40], 7)],
      dual,
    );
    assert.deepEqual(k.on, k.off, "second product");
  },
});

Deno.test({
  name: "a product's A over several windows is read by row blocks, one window per workgroup",
  ignore: !onSoftware,
  async fn() {
    // the kernels dispatched, to see which read A by row blocks (`A_w0(`: window 0's reader)
    const codes: string[] = [];
    const dispatch = runtime.dispatch;
    runtime.dispatch = function (this: typeof runtime, ...args: Parameters<typeof dispatch>) {
      codes.push(args[0].code);
      return dispatch.apply(this, args);
    };
    try {
      const cases: [string, number[], number[], boolean][] = [
        ["an MLP's last layer under jit", [1024, 64], [64, 2], true],
        ["a hidden layer, odd rows", [1023, 64], [64, 64], true],
        ["three windows, odd K and N", [777, 61], [61, 3], false],
        ["a long K: a block of rows fills no window", [129, 500], [500, 2], false],
      ];
      for (const [name, sa, sb, jitted] of cases) {
        codes.length = 0;
        const layer = (a: Tensor, b: Tensor, bias: Tensor) =>
          mg.tanh(mg.add(mg.matmul(a, b), bias));
        const r = await bothWays(
          () => [t(sa, 1), t(sb, 2), t([sb[1]], 3)],
          // (a new jit in each mode: a kept plan would keep the first mode's reads)
          jitted ? (a, b, bias) => mg.jit(layer)(a, b, bias) : layer,
        );
        assert.deepEqual(r.on, r.off, name);
        const byRows = codes.some((c) => c.includes("A_w0("));
        assert.equal(byRows, sa[1] !== 500, `${name}: A read by row blocks`);
      }
    } finally {
      runtime.dispatch = dispatch;
    }
  },
});

Deno.test({
  name: "convolution and pooling read uniform windows bit-identically",
  ignore: !onSoftware,
  async fn() {
    const r = await bothWays(
      () => [t([2, 3, 11, 9], 1), t([4, 3, 3, 3], 2)],
      (x, w) => mg.maxPool2d(mg.conv2d(x, w, { padding: 1 }), 2),
    );
    assert.deepEqual(r.on, r.off);
    assert.deepEqual(r.reads, ["uniform", "uniform"]);
  },
});

Deno.test({
  name: "a jit step's kept kernel plan is derived again when an input cannot be read as windows",
  ignore: !onSoftware,
  async fn() {
    // a matmul with an epilogue and a plain reduction: both keep their plan (KernelMemo)
    const f = mg.jit((a: Tensor, b: Tensor, c: Tensor) => {
      const p = mg.relu(mg.add(mg.matmul(a, b), c));
      return mg.add(mg.sum(p, [0]), mg.sum(a, [1]).sum());
    });
    const make = () => [t([23, 31], 1), t([31, 17], 2), t([17], 3)];
    const windowed = make(); // pooled buffers sized for uniform windows
    setUniformInputs(false);
    const plain = make(); // buffers made while windows were off: never bound as windows
    setUniformInputs(null);
    const expected = Array.from(
      await mg.relu(mg.add(mg.matmul(plain[0], plain[1]), plain[2]))
        .sum([0]).add(mg.sum(plain[0], [1]).sum()).data(),
    );
    for (const xs of [windowed, plain, windowed, plain]) {
      const y = f(...(xs as [Tensor, Tensor, Tensor]));
      const got = Array.from(await y.data()) as number[];
      y.dispose();
      assert.equal(got.length, expected.length);
      got.forEach((v, i) =>
        assert.ok(Math.abs(v - expected[i]) <= 1e-4 * (1 + Math.abs(v)), `${i}`)
      );
    }
    // a fused elementwise kernel keeps its plan the same way
    const g = mg.jit((a: Tensor, c: Tensor) => mg.add(mg.mul(mg.tanh(a), 2), c.sum()));
    const want = Array.from(await g(plain[0], plain[2]).data()) as number[];
    for (const xs of [windowed, plain, windowed]) {
      const y = g(xs[0], xs[2]);
      assert.deepEqual(Array.from(await y.data()), want);
      y.dispose();
    }
    [...windowed, ...plain].forEach((x) => x.dispose());
  },
});
