import * as mg from "../mod.ts";
import { bind } from "../core/primitive.ts";
import assert from "node:assert/strict";
import {
  conv2d as convPrim,
  type Conv2dParams,
  setIm2colPassBytes,
} from "../core/primitives/conv2d.ts";
import { assertAllClose, assertMatchesReference, assertThrowsWith, host } from "./helpers.ts";

const params = (p: Partial<Conv2dParams>): Conv2dParams => ({
  stride: [1, 1],
  padding: [0, 0, 0, 0],
  dilation: [1, 1],
  lhsDilation: [1, 1],
  groups: 1,
  ...p,
});

const hasTimestamps = async () => {
  await mg.init();
  const adapter = await navigator.gpu.requestAdapter();
  return adapter?.features.has("timestamp-query") ?? false;
};

Deno.test("conv2d with stride, padding, dilation and groups matches the reference", async () => {
  const cases: Array<[number[], number[], mg.Conv2dOptions]> = [
    [[1, 1, 5, 5], [1, 1, 3, 3], {}],
    [[2, 3, 11, 13], [4, 3, 3, 3], { padding: 1 }],
    [[2, 3, 11, 13], [5, 3, 3, 2], { stride: 2, padding: [1, 0] }],
    [[1, 4, 9, 9], [6, 2, 3, 3], { groups: 2, dilation: 2, padding: "same" }],
    [[3, 2, 7, 6], [2, 2, 1, 1], { stride: [2, 3] }],
    [[2, 1, 28, 28], [8, 1, 3, 3], { padding: [1, 2, 0, 1] }],
  ];
  let seed = 1;
  for (const [xs, ws, opts] of cases) {
    await assertMatchesReference(
      `conv2d ${xs} ${ws} ${JSON.stringify(opts)}`,
      [host(xs, "f32", seed++), host(ws, "f32", seed++)],
      (x, w) => mg.conv2d(x, w, opts),
      {
        atol: 1e-4,
      },
    );
  }
});

Deno.test("conv2d split into several im2col passes (batches whose patches exceed a binding)", async () => {
  let seed = 40;
  for (
    const [xs, ws, opts, outSide] of [
      [[5, 2, 5, 6], [3, 2, 3, 3], { padding: 1 }, [5, 6]],
      [[7, 1, 4, 4], [2, 1, 2, 2], { stride: 2 }, [2, 2]],
      [[3, 3, 6, 5], [4, 3, 3, 3], { dilation: 2, padding: 2 }, [6, 5]],
    ] as Array<[number[], number[], mg.Conv2dOptions, number[]]>
  ) {
    // two images' patches per pass, so an odd batch ends with a short pass
    const perImage = xs[1] * ws[2] * ws[3] * outSide[0] * outSide[1] * 4;
    setIm2colPassBytes(2 * perImage);
    try {
      await assertMatchesReference(
        `conv2d passes ${xs} ${ws}`,
        [host(xs, "f32", seed++), host(ws, "f32", seed++)],
        (x, w) => mg.conv2d(x, w, opts),
        { atol: 1e-4 },
      );
    } finally {
      setIm2colPassBytes(null);
    }
  }
});

Deno.test("conv2d with input dilation (the transposed-conv form autodiff uses)", async () => {
  const p = {
    stride: [1, 1],
    padding: [2, 2, 2, 2],
    dilation: [1, 1],
    lhsDilation: [2, 2],
    groups: 1,
  } as const;
  await assertMatchesReference(
    "lhs-dilated conv",
    [host([1, 2, 5, 4], "f32", 1), host([3, 2, 3, 3], "f32", 2)],
    (x, w) => bind(convPrim, [x, w], p),
    {
      atol: 1e-4,
    },
  );
});

Deno.test("conv2d with a kernel larger than its input (second-order gradients) matches the reference", async () => {
  // [x, w, params, whether the kernel's taps should form the patch matrix]
  const cases: Array<[number[], number[], Conv2dParams, boolean]> = [
    [[2, 3, 3, 3], [4, 3, 7, 7], params({ padding: [5, 5, 5, 5] }), true],
    [[2, 4, 2, 3], [6, 2, 5, 4], params({ padding: [3, 4, 2, 3], groups: 2 }), true],
    [
      [3, 2, 3, 2],
      [3, 2, 4, 4],
      params({ padding: [6, 6, 6, 6], stride: [2, 2], dilation: [2, 2] }),
      true,
    ],
    [
      [1, 4, 3, 3],
      [4, 2, 6, 6],
      params({ padding: [5, 4, 5, 5], lhsDilation: [2, 2], groups: 2 }),
      true,
    ],
    // one image, many output channels: im2col's patch matrix is the smaller one
    [[1, 2, 2, 2], [8, 2, 3, 3], params({ padding: [2, 2, 2, 2] }), false],
  ];
  const timed = await hasTimestamps();
  let seed = 70;
  for (const [xs, ws, p, kernelPatches] of cases) {
    const x = host(xs, "f32", seed++), w = host(ws, "f32", seed++);
    await assertMatchesReference(
      `conv2d ${xs} ${ws} ${JSON.stringify(p)}`,
      [x, w],
      (a, b) => bind(convPrim, [a, b], p),
      { atol: 1e-4 },
    );
    if (!timed) continue;
    const [xt, wt] = [x, w].map((h) => mg.tensor(h.values, { shape: h.shape }));
    const profiled = await mg.profile(() => bind(convPrim, [xt, wt], p).toFloat64());
    const used = profiled.kernels.some((k) => k.label === "conv2d kernel patches");
    assert.equal(used, kernelPatches, `${xs} ${ws}: ${profiled.table()}`);
  }
});

Deno.test("a 1×1 convolution equals a matmul over channels", async () => {
  const x = mg.tensor(host([1, 3, 2, 2], "f32", 3).values, { shape: [1, 3, 2, 2] });
  const w = mg.tensor(host([4, 3, 1, 1], "f32", 4).values, { shape: [4, 3, 1, 1] });
  const conv = mg.conv2d(x, w);
  const mm = mg.matmul(mg.reshape(w, [4, 3]), mg.reshape(x, [3, 4]));
  assertAllClose(await conv.toFloat64(), await mm.toFloat64(), { atol: 1e-5 });
});

Deno.test("max and average pooling match the reference", async () => {
  const x = host([2, 3, 9, 10], "f32", 5);
  await assertMatchesReference("maxPool 2", [x], (t) => mg.maxPool2d(t, 2));
  await assertMatchesReference(
    "maxPool 3 stride 2 pad 1",
    [x],
    (t) => mg.maxPool2d(t, 3, { stride: 2, padding: 1 }),
  );
  await assertMatchesReference("avgPool 2", [x], (t) => mg.avgPool2d(t, 2));
  await assertMatchesReference(
    "avgPool 3 same",
    [x],
    (t) => mg.avgPool2d(t, [3, 2], { stride: 1, padding: "same" }),
  );
  assertAllClose(
    await mg.maxPool2d(mg.reshape(mg.arange(16, undefined, 1, { dtype: "f32" }), [1, 1, 4, 4]), 2)
      .toFloat64(),
    [5, 7, 13, 15],
  );
});

Deno.test("max-pool gradient goes to each window's first maximum (ties, ragged edges, vmap)", async () => {
  // values from {0, 1, 2} tie often; 5×7 leaves a row and a column outside the 2×2 windows
  const shape = [2, 3, 5, 7];
  const values = host(shape, "f32", 31).values.map((v) => Math.floor(Math.abs(v)) % 3);
  const weights = host([2, 3, 2, 3], "f32", 32).values;
  const expected = new Array(values.length).fill(0);
  for (let plane = 0; plane < 6; plane++) {
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 3; j++) {
        let best = -1, at = -1;
        for (let a = 0; a < 2; a++) {
          for (let b = 0; b < 2; b++) {
            const k = plane * 35 + (2 * i + a) * 7 + 2 * j + b;
            if (values[k] > best) [best, at] = [values[k], k];
          }
        }
        expected[at] += weights[plane * 6 + i * 3 + j];
      }
    }
  }
  const before = mg.getBackend();
  for (const backend of ["reference", "webgpu"] as const) {
    mg.setBackend(backend);
    const x = mg.tensor(values, { shape });
    const w = mg.tensor(weights, { shape: [2, 3, 2, 3] });
    const loss = (t: mg.Tensor) => mg.sum(mg.mul(mg.maxPool2d(t, 2), w));
    assertAllClose(await mg.grad(loss)(x).toFloat64(), expected, { atol: 1e-6 }, backend);
    assertAllClose(await mg.jit(mg.grad(loss))(x).toFloat64(), expected, { atol: 1e-6 }, backend);
    const perPlane = mg.vmap(
      mg.grad((t: mg.Tensor, wt: mg.Tensor) => mg.sum(mg.mul(mg.maxPool2d(t, 2), wt))),
    );
    const batched = perPlane(mg.reshape(x, [6, 1, 5, 7]), mg.reshape(w, [6, 1, 2, 3]));
    assertAllClose(await batched.toFloat64(), expected, { atol: 1e-6 }, `${backend} vmap`);
  }
  mg.setBackend(before);
});

Deno.test("conv2d errors say what is wrong", () => {
  assertThrowsWith(
    () => mg.conv2d(mg.zeros([1, 3, 5, 5]), mg.zeros([2, 4, 3, 3])),
    "conv2d",
    "[2, 4, 3, 3]",
    "[1, 3, 5, 5]",
  );
  assertThrowsWith(
    () => mg.conv2d(mg.zeros([1, 3, 5, 5]), mg.zeros([2, 1, 3, 3]), { groups: 2 }),
    "groups 2",
  );
  assertThrowsWith(
    () => mg.conv2d(mg.zeros([3, 5, 5]), mg.zeros([2, 3, 3, 3])),
    "conv2d",
    "[N, C, H, W]",
  );
  assertThrowsWith(() => mg.conv2d(mg.zeros([1, 1, 2, 2]), mg.zeros([1, 1, 3, 3])), "does not fit");
});
