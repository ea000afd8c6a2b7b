import * as mg from "../mod.ts";
import { chooseTiling, setMatmulTiling, TILINGS } from "../core/backend/webgpu/kernels/matmul.ts";
import type { Tensor } from "../mod.ts";
import { assertMatchesReference, assertThrowsWith, host } from "./helpers.ts";
import { runtime } from "../core/backend/webgpu/runtime.ts";
import { adapterClass } from "../core/backend/webgpu/adapter_profile.ts";

const info = await mg.init();
/** 16×32 register blocks compute correctly here (not on llvmpipe's GL path: AdapterInfo). */
const largeBlocks = info.maxRegisterBlock >= 512;
/** llvmpipe's GL path compiles big kernels 10–30× slower than Vulkan (DESIGN: platform facts). */
const slowCompiles = info.glPath;

const SHAPES: Array<[readonly number[], readonly number[]]> = [
  [[1, 1], [1, 1]],
  [[1, 7], [7, 1]],
  [[7, 13], [13, 5]],
  [[67, 31], [31, 129]],
  [[130, 65], [65, 3]],
  [[3, 17, 19], [3, 19, 23]], // batched
  [[4, 1, 5, 6], [3, 6, 2]], // batch broadcasting [4,1] × [3]
  [[5, 6], [2, 3, 6, 4]], // a single matrix against a batch
  [[2, 8, 9], [9, 5]],
  [[25, 10, 1], [25, 1, 40]], // sinusoid-like shapes
];

// The large llvmpipe tiling only runs with vec4-able shapes (N, K multiples of 4); it has its
// own test below, since forcing it onto odd shapes would compile a needlessly huge kernel.
for (const [name, tiling] of Object.entries(TILINGS).filter(([n]) => n !== "llvmpipeLarge")) {
  Deno.test({
    name: `matmul (${name} tiling) matches the reference on odd and batched shapes`,
    // the GL path compiles the shared-memory tiles for ~2 min; Vulkan runs this test
    ignore: name === "gpu" && slowCompiles,
  }, async () => {
    setMatmulTiling(tiling);
    try {
      let seed = 1;
      for (const [sa, sb] of SHAPES) {
        await assertMatchesReference(
          `matmul ${sa}@${sb}`,
          [host(sa, "f32", seed++), host(sb, "f32", seed++)],
          (a, b) => mg.matmul(a, b),
          {
            rtol: 1e-5,
            atol: 1e-4,
          },
        );
      }
      // transposes folded in
      await assertMatchesReference(
        "aᵀb",
        [host([31, 67], "f32", 50), host([31, 9], "f32", 51)],
        (a, b) => mg.matmul(a, b, { transposeA: true }),
        {
          atol: 1e-4,
        },
      );
      await assertMatchesReference(
        "abᵀ",
        [host([3, 11, 31], "f32", 52), host([3, 9, 31], "f32", 53)],
        (a, b) => mg.matmul(a, b, { transposeB: true }),
        {
          atol: 1e-4,
        },
      );
      // K a multiple of 4 (x·Wᵀ of a backward pass), B broadcast
      await assertMatchesReference(
        "abᵀ, K = 4k",
        [host([3, 11, 32], "f32", 56), host([9, 32], "f32", 57)],
        (a, b) => mg.matmul(a, b, { transposeB: true }),
        { atol: 1e-4 },
      );
      await assertMatchesReference(
        "abᵀ, K = 4k, batched",
        [host([5, 10, 40], "f32", 58), host([5, 13, 40], "f32", 59)],
        (a, b) => mg.matmul(a, b, { transposeB: true }),
        { atol: 1e-4 },
      );
      await assertMatchesReference(
        "aᵀbᵀ",
        [host([31, 67], "f32", 54), host([9, 31], "f32", 55)],
        (a, b) => mg.matmul(a, b, { transposeA: true, transposeB: true }),
        {
          atol: 1e-4,
        },
      );
      await assertMatchesReference(
        "vector @ matrix",
        [host([31], "f32", 56), host([31, 9], "f32", 57)],
        (a, b) => mg.matmul(a, b),
        { atol: 1e-4 },
      );
      await assertMatchesReference(
        "matrix @ vector",
        [host([9, 31], "f32", 58), host([31], "f32", 59)],
        (a, b) => mg.matmul(a, b),
        { atol: 1e-4 },
      );
      await assertMatchesReference("k = 0 gives zeros", [
        host([3, 0], "f32", 1),
        host([0, 4], "f32", 2),
      ], (a, b) => mg.matmul(a, b));
    } finally {
      setMatmulTiling(null);
    }
  });
}

Deno.test("matmul (per-shape default tiling, fitted for small products) on odd and batched shapes", async () => {
  let seed = 400;
  for (
    const [sa, sb] of [
      ...SHAPES,
      [[25, 10, 40], [25, 40, 40]],
      [[7, 40], [40, 24]],
      [[3, 5, 8], [8, 12]],
      // 17 and 23 rows: row blocks of 6 and 8 with clamped rows beside them
      [[17, 300], [300, 24]],
      [[2, 23, 9], [9, 40]],
    ] as Array<[number[], number[]]>
  ) {
    await assertMatchesReference(
      `default ${sa}@${sb}`,
      [host(sa, "f32", seed++), host(sb, "f32", seed++)],
      (a, b) => mg.matmul(a, b),
      {
        atol: 1e-4,
      },
    );
    await assertMatchesReference(
      `default ${sa}@${sb} (grad shapes)`,
      [host(sa, "f32", seed++), host(sb, "f32", seed++)],
      (a, b) => mg.matmul(mg.matmul(a, b), b, { transposeB: true }),
      {
        atol: 1e-3,
        rtol: 1e-4,
      },
    );
  }
});

Deno.test({
  name: "matmul epilogues under jit store every column of partial blocks, in every tiling",
  // ~60 forced-tiling kernels: 3.5 min to compile on the GL path; Vulkan runs this test
  ignore: slowCompiles,
}, async () => {
  // the epilogue loops over rows, column quads and components with bounds the compiler cannot
  // see through: N = 1, 2, 3 (blocks narrower than a quad), 6 and 13 (partial last quads),
  // 24 (vec4 loads of B); a bias read by row and column, transposes, and a second product
  const biasRelu = mg.jit((x: Tensor, w: Tensor, b: Tensor) => mg.relu(mg.add(mg.matmul(x, w), b)));
  const transposed = mg.jit((x: Tensor, w: Tensor) =>
    mg.add(mg.mul(mg.matmul(x, w, { transposeA: true, transposeB: true }), 2), 1)
  );
  const twoProducts = mg.jit((x: Tensor, w: Tensor, y: Tensor, v: Tensor) =>
    mg.tanh(mg.add(mg.matmul(x, w), mg.matmul(y, v)))
  );
  const tilings = [null, TILINGS.llvmpipeSmall, TILINGS.llvmpipe, TILINGS.gpu];
  let seed = 900;
  for (const tiling of tilings) {
    setMatmulTiling(tiling);
    try {
      for (const n of [1, 2, 3, 6, 13, 24]) {
        const what = `${tiling ? JSON.stringify(tiling) : "default"} N = ${n}`;
        await assertMatchesReference(
          `relu(x·w + b), ${what}`,
          [host([3, 7, 13], "f32", seed++), host([13, n], "f32", seed++), host([n], "f32", seed++)],
          (x, w, b) => biasRelu(x, w, b) as Tensor,
          { atol: 1e-4 },
        );
        await assertMatchesReference(
          `2·xᵀ·wᵀ + 1, ${what}`,
          [host([2, 12, 9], "f32", seed++), host([2, n, 12], "f32", seed++)],
          (x, w) => transposed(x, w) as Tensor,
          { atol: 1e-4 },
        );
        await assertMatchesReference(
          `tanh(x·w + y·v), ${what}`,
          [
            host([5, 11], "f32", seed++),
            host([11, n], "f32", seed++),
            host([5, 8], "f32", seed++),
            host([8, n], "f32", seed++),
          ],
          (x, w, y, v) => twoProducts(x, w, y, v) as Tensor,
          { atol: 1e-4 },
        );
      }
    } finally {
      setMatmulTiling(null);
    }
  }
});

Deno.test("a prime-ish row count gets row blocks of at least 4 on software adapters, not 1×8 blocks", async () => {
  await mg.init();
  if (adapterClass(runtime.info!) !== "software") return;
  // an input layer's weight gradient over 6,400 steps: 17 rows
  const t = chooseTiling(17, 384, false, 6400);
  if (t.tm !== 6) throw new Error(`17 rows: ${JSON.stringify(t)}`);
  // a row count a small block divides keeps it (MAML's 10-shot rows: 5)
  if (chooseTiling(10, 40, false, 40).tm !== 5) throw new Error("10 rows");
});

Deno.test("matmul errors name the op and both shapes", () => {
  assertThrowsWith(
    () => mg.matmul(mg.zeros([2, 3]), mg.zeros([4, 5])),
    "matmul",
    "[2, 3]",
    "[4, 5]",
    "k = 3 vs 4",
  );
  assertThrowsWith(
    () => mg.matmul(mg.zeros([2, 2, 3]), mg.zeros([3, 3, 1])),
    "matmul (batch axes)",
    "[2]",
    "[3]",
  );
});

Deno.test({
  name: "matmul (llvmpipeLarge vec4 tiling) on vec4-able shapes with edge tiles and batches",
  ignore: !largeBlocks,
}, async () => {
  setMatmulTiling(TILINGS.llvmpipeLarge);
  try {
    const cases: Array<[number[], number[]]> = [[[37, 44], [44, 132]], [[3, 20, 8], [3, 8, 260]], [[
      5,
      4,
    ], [2, 4, 4]]];
    let seed = 200;
    for (const [sa, sb] of cases) {
      await assertMatchesReference(
        `large ${sa}@${sb}`,
        [host(sa, "f32", seed++), host(sb, "f32", seed++)],
        (a, b) => mg.matmul(a, b),
        { atol: 1e-4 },
      );
    }
  } finally {
    setMatmulTiling(null);
  }
  // the default choice for a big product
  await assertMatchesReference(
    "512² default",
    [host([512, 64], "f32", 300), host([64, 516], "f32", 301)],
    (a, b) => mg.matmul(a, b),
    { atol: 1e-4 },
  );
});

Deno.test({
  name: "matmul (llvmpipeLarge tiling) with transposes, odd K and N, batched edge tiles",
  ignore: !largeBlocks,
}, async () => {
  setMatmulTiling(TILINGS.llvmpipeLarge);
  try {
    // scalar loads (N or K not multiples of 4, or transposed operands) on 16×32 register blocks
    const cases: Array<[number[], number[], boolean, boolean]> = [
      [[2, 70, 45], [2, 45, 261], false, false],
      [[2, 70, 45], [2, 261, 45], false, true],
      [[2, 45, 70], [2, 45, 260], true, false],
    ];
    let seed = 400;
    for (const [sa, sb, transposeA, transposeB] of cases) {
      await assertMatchesReference(
        `large ${sa}${transposeA ? "ᵀ" : ""}@${sb}${transposeB ? "ᵀ" : ""}`,
        [host(sa, "f32", seed++), host(sb, "f32", seed++)],
        (a, b) => mg.matmul(a, b, { transposeA, transposeB }),
        { atol: 1e-4 },
      );
    }
  } finally {
    setMatmulTiling(null);
  }
});

Deno.test({
  name: "matmul tiling choice: big tiles for batches of medium products on llvmpipe",
  // the choice under test is the software adapter's, with 16×32 blocks allowed
  ignore: !info.isFallbackAdapter || info.maxRegisterBlock < 512,
}, () => {
  // per-task convolutions under vmap: 8 tasks × [64×576]·[576×980]
  if (chooseTiling(64, 980, true, 576, 8) !== TILINGS.llvmpipeLarge) {
    throw new Error("grouped conv");
  }
  if (chooseTiling(64, 245, false, 576, 8) !== TILINGS.llvmpipeLarge) throw new Error("odd N");
  // the same product once keeps the smaller blocks; MAML-sized layers get fitted ones
  if (chooseTiling(64, 980, true, 576, 1) === TILINGS.llvmpipeLarge) throw new Error("unbatched");
  if (chooseTiling(10, 40, true, 40, 25).tm !== 5) throw new Error("MAML-sized");
  // medium outputs: 16×16 blocks, 16×8 at most 64 columns wide, 4×4 over a shallow K
  if (chooseTiling(2000, 100, true, 100, 1) !== TILINGS.llvmpipe) throw new Error("medium");
  if (chooseTiling(1024, 64, true, 64, 1) !== TILINGS.llvmpipeNarrow) throw new Error("narrow");
  if (chooseTiling(1024, 64, true, 4, 1) !== TILINGS.llvmpipeSmall) throw new Error("shallow");
  // tiles mostly empty (N = 45 of 256 columns) stay fitted
  if (chooseTiling(64, 45, false, 576, 8) === TILINGS.llvmpipeLarge) throw new Error("narrow N");
  // a small product alone spreads its rows over at least 4 workgroups (llvmpipe's threads take
  // whole workgroups); batched, one workgroup per product is enough
  const groups = (t: ReturnType<typeof chooseTiling>, m: number, n: number, batch: number) =>
    Math.ceil(n / (t.wx * t.tn)) * Math.ceil(m / (t.wy * t.tm)) * batch;
  const alone = chooseTiling(40, 40, true, 250, 1);
  if (groups(alone, 40, 40, 1) < 4) {
    throw new Error(`one [40×40] product: ${JSON.stringify(alone)}`);
  }
  if (chooseTiling(40, 40, true, 10, 25).wy === 1) throw new Error("25 [40×40] products");
});

Deno.test("big products match the reference on every adapter path (the GL path returned zeros)", async () => {
  // [520×300]·[300×516] chose 16×32 register blocks, of which llvmpipe's GL path computed the
  // first 192 accumulators of every 512 as zeros
  await assertMatchesReference(
    "520×300·300×516",
    [host([520, 300], "f32", 400), host([300, 516], "f32", 401)],
    (a, b) => mg.matmul(a, b),
    { rtol: 1e-4, atol: 1e-3 },
  );
  await assertMatchesReference(
    "8 × [64×96]·[96×260] (batched, large blocks on llvmpipe over Vulkan)",
    [host([8, 64, 96], "f32", 402), host([8, 96, 260], "f32", 403)],
    (a, b) => mg.matmul(a, b),
    { rtol: 1e-4, atol: 1e-3 },
  );
});

Deno.test("a register block over what the adapter computes correctly is never chosen, and forcing one raises", () => {
  const limit = runtime.info!.maxRegisterBlock;
  (runtime.info as { maxRegisterBlock: number }).maxRegisterBlock = 256; // as on the GL path
  try {
    if (info.isFallbackAdapter) {
      const t = chooseTiling(1024, 1024, true, 1024, 1);
      if (t.tm * t.tn > 256) throw new Error(`chose ${t.tm}×${t.tn} blocks`);
    }
    setMatmulTiling(TILINGS.llvmpipeLarge);
    try {
      assertThrowsWith(
        () => mg.matmul(mg.ones([64, 8]), mg.ones([8, 256])),
        "matmul",
        "512 accumulators",
        "256",
      );
    } finally {
      setMatmulTiling(null);
    }
  } finally {
    (runtime.info as { maxRegisterBlock: number }).maxRegisterBlock = limit;
  }
});
