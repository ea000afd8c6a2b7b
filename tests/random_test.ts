import * as mg from "../mod.ts";
import { threefry2x32, threefryBits } from "../core/primitives/random_bits.ts";
import { bind } from "../core/primitive.ts";
import { assertAllClose, assertThrowsWith } from "./helpers.ts";

const { random } = mg;

async function both<T>(
  fn: (backend: mg.BackendName) => mg.Tensor,
): Promise<[Float64Array, Float64Array]> {
  const a = await fn("webgpu").toFloat64();
  const b = await fn("reference").toFloat64();
  return [a, b];
}

Deno.test("threefry2x32 matches the published known-answer vectors", () => {
  // Random123 / JAX test vectors for Threefry-2x32 with 20 rounds
  const kat = (k: [number, number], c: [number, number], want: [number, number]) => {
    const got = threefry2x32(k[0], k[1], c[0], c[1]);
    if (got[0] !== want[0] || got[1] !== want[1]) {
      throw new Error(
        `threefry(${k}, ${c}) = ${got.map((v) => v.toString(16))}, want ${
          want.map((v) => v.toString(16))
        }`,
      );
    }
  };
  kat([0, 0], [0, 0], [0x6b200159, 0x99ba4efe]);
  kat([0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], [0x1cb996fc, 0xbb002be7]);
  kat([0x13198a2e, 0x03707344], [0x243f6a88, 0x85a308d3], [0xc4923a9c, 0x483df7a0]);
});

Deno.test("threefryBits in one-word mode (windows of bits jit computes on their own) on both backends", async () => {
  await mg.init();
  // element j of a block: word 1 of threefry(key, (7 + 3j, tag 1)), for two keys
  const keys = [[0x13198a2e, 0x03707344], [5, 0xfffffff0]];
  const params = { shape: [4], tag: 1, offset: 7, word: 1, step: 3 };
  const want = keys.flatMap(([a, b]) =>
    Array.from({ length: 4 }, (_, j) => threefry2x32(a, b, 7 + 3 * j, 1)[1])
  );
  for (const backend of ["reference", "webgpu"] as const) {
    const word = (w: number) =>
      mg.tensor(keys.map((k) => k[w]), { shape: [2, 1], dtype: "u32", backend });
    const bits = bind(threefryBits, [word(0), word(1)], params);
    assertAllClose(Array.from(await bits.data()), want, { rtol: 0, atol: 0 }, backend);
  }
});

Deno.test("random bits, split, foldIn are identical on WebGPU and the reference backend", async () => {
  for (const seed of [0, 1, 42, 2 ** 40 + 3]) {
    const [a, b] = await both((backend) =>
      random.randomBits(random.key(seed, { backend }), [1001])
    );
    assertAllClose(a, b, { rtol: 0, atol: 0 }, `bits seed ${seed}`);
    const [s1, s2] = await both((backend) => random.splitStacked(random.key(seed, { backend }), 7));
    assertAllClose(s1, s2, { rtol: 0, atol: 0 }, "split");
    const [f1, f2] = await both((backend) => random.foldIn(random.key(seed, { backend }), 123456));
    assertAllClose(f1, f2, { rtol: 0, atol: 0 }, "foldIn");
    const [u1, u2] = await both((backend) => random.uniform(random.key(seed, { backend }), [333]));
    assertAllClose(u1, u2, { rtol: 0, atol: 0 }, "uniform is bit-identical");
    const [n1, n2] = await both((backend) => random.normal(random.key(seed, { backend }), [333]));
    assertAllClose(n1, n2, { rtol: 1e-5, atol: 1e-5 }, "normal");
    const [p1, p2] = await both((backend) => random.permutation(random.key(seed, { backend }), 50));
    assertAllClose(p1, p2, { rtol: 0, atol: 0 }, "permutation");
  }
});

Deno.test("keys behave: same key same draws, split keys differ, reuse is deterministic", async () => {
  const k = random.key(7);
  const a = await random.uniform(k, [8]).toFloat64();
  const b = await random.uniform(k, [8]).toFloat64();
  assertAllClose(a, b, { rtol: 0, atol: 0 });
  const [k1, k2] = random.split(k);
  const c = await random.uniform(k1, [8]).toFloat64();
  const d = await random.uniform(k2, [8]).toFloat64();
  if (c.every((v, i) => v === d[i]) || c.every((v, i) => v === a[i])) {
    throw new Error("split keys must give new streams");
  }
  const f0 = await random.foldIn(k, 0).toFloat64(), f1 = await random.foldIn(k, 1).toFloat64();
  if (f0[0] === f1[0] && f0[1] === f1[1]) throw new Error("foldIn must depend on data");
});

Deno.test("sampler statistics are right (mean, variance, ranges, frequencies)", async () => {
  const n = 200_000;
  const k = random.key(3);
  const u = random.uniform(k, [n], { minval: -1, maxval: 3 });
  const uv = await u.toFloat64();
  if (uv.some((v) => v < -1 || v >= 3)) throw new Error("uniform out of range");
  assertAllClose([await mg.mean(u).item()], [1], { atol: 0.02 });
  assertAllClose([await mg.variance(u).item()], [16 / 12], { rtol: 0.02 });
  const z = random.normal(random.key(4), [n], { mean: 2, std: 3 });
  assertAllClose([await mg.mean(z).item()], [2], { atol: 0.03 });
  assertAllClose([await mg.std(z).item()], [3], { rtol: 0.01 });
  const b = random.bernoulli(random.key(5), 0.3, [n]);
  assertAllClose([await mg.mean(mg.cast(b, "f32")).item()], [0.3], { atol: 0.005 });
  const r = random.randint(random.key(6), [n], -2, 3);
  const rv = await r.data();
  const counts = [0, 0, 0, 0, 0];
  for (const v of rv) counts[v + 2]++;
  for (const c of counts) assertAllClose([c / n], [0.2], { atol: 0.006 });
  const logits = mg.tensor([Math.log(0.1), Math.log(0.6), Math.log(0.3)]);
  const cat = random.categorical(random.key(8), mg.broadcastTo(logits, [n, 3]));
  const freq = await mg.mean(mg.oneHot(cat, 3), 0).toFloat64();
  assertAllClose(freq, [0.1, 0.6, 0.3], { atol: 0.006 });
});

Deno.test("permutation is a permutation", async () => {
  for (const n of [1, 2, 17, 1000, 5000]) {
    const p = await random.permutation(random.key(n), n).data();
    const sorted = [...p].sort((a, b) => a - b);
    if (!sorted.every((v, i) => v === i)) throw new Error(`permutation(${n}) is not a permutation`);
  }
  assertThrowsWith(() => random.permutation(random.key(0), 0), "permutation", "positive");
});

Deno.test("stratifiedUniform puts one sample in each stratum, in random order, on both backends", async () => {
  for (const n of [1, 7, 100, 4096]) {
    const [gpu, ref] = await both((backend) =>
      random.stratifiedUniform(random.key(n, { backend }), n, { minval: -2, maxval: 3 })
    );
    assertAllClose(gpu, ref, { rtol: 0, atol: 1e-5 }, "stratifiedUniform");
    if (gpu.some((v) => v < -2 || v >= 3)) throw new Error(`stratifiedUniform(${n}) out of range`);
    // the i-th smallest lies in stratum i (to f32 rounding at the edges: 1% of a stratum)
    const position = [...gpu].map((v) => ((v + 2) / 5) * n);
    const sorted = [...position].sort((a, b) => a - b);
    if (!sorted.every((v, i) => v > i - 0.01 && v < i + 1.01)) {
      throw new Error(`stratifiedUniform(${n}) must fill each of its ${n} strata once`);
    }
    const strata = position.map(Math.floor);
    if (n >= 7 && strata.every((v, i) => v === i)) throw new Error("strata must come shuffled");
  }
  assertThrowsWith(
    () => random.stratifiedUniform(random.key(0), 5000),
    "stratifiedUniform",
    "4096",
  );
  assertThrowsWith(() => random.stratifiedUniform(random.key(0), 4, { maxval: -1 }), "maxval");
});

Deno.test("choice without replacement is the permutation's prefix, in O(n·count)", async () => {
  for (const backend of ["webgpu", "reference"] as const) {
    for (const [n, count] of [[1, 1], [7, 3], [776, 5], [776, 20], [20, 20], [13, 0]]) {
      const k = random.key(n * 31 + count, { backend });
      const picked = await random.choice(k, n, count, { replace: false }).toFloat64();
      const prefix = await mg.slice(random.permutation(k, n), [[0, count]]).toFloat64();
      assertAllClose(picked, prefix, { rtol: 0, atol: 0 }, `choice(${n}, ${count}) ${backend}`);
      if (new Set(picked).size !== count) throw new Error(`choice(${n}, ${count}) repeats`);
    }
  }
  // under vmap, per key: the same as one call per key
  const keys = random.splitStacked(random.key(3), 4);
  const batched = await mg.vmap((k: mg.Tensor) => random.choice(k, 50, 6, { replace: false }))(
    keys,
  ).toFloat64();
  const looped: number[] = [];
  for (const k of random.split(random.key(3), 4)) {
    looped.push(...await random.choice(k, 50, 6, { replace: false }).toFloat64());
  }
  assertAllClose(batched, looped, { rtol: 0, atol: 0 }, "vmap(choice)");
  // with replacement: in range, repeats allowed, roughly uniform
  const draws = random.choice(random.key(9), 4, 4000);
  const freq = await mg.mean(mg.oneHot(draws, 4), 0).toFloat64();
  assertAllClose(freq, [0.25, 0.25, 0.25, 0.25], { atol: 0.03 });
  assertThrowsWith(
    () => random.choice(random.key(0), 5, 6, { replace: false }),
    "choice",
    "6 distinct values from 5",
  );
  assertThrowsWith(() => random.choice(random.key(0), 0, 1), "choice", "n = 0");
});

Deno.test("key misuse gives a clear error", () => {
  assertThrowsWith(() => random.uniform(mg.zeros([2]), [3]), "randomBits", "key", "u32");
  assertThrowsWith(() => random.key(-1), "key", "seed");
});

Deno.test("foldIn takes a traced integer: inside scan and vmap it gives the number's key", async () => {
  for (const backend of ["webgpu", "reference"] as const) {
    const k = mg.random.key(42, { backend });
    const expected = await Promise.all(
      [0, 1, 7, 2 ** 31 + 5].map((i) => mg.random.foldIn(k, i).toFloat64()),
    );
    const direct = await mg.random.foldIn(k, mg.tensor(7, { dtype: "i32", backend })).toFloat64();
    assertAllClose(direct, expected[2], { rtol: 0, atol: 0 }, `${backend}: tensor 7`);
    const big = mg.tensor([2 ** 31 + 5], { dtype: "u32", backend }).reshape([]);
    assertAllClose(await mg.random.foldIn(k, big).toFloat64(), expected[3], { rtol: 0, atol: 0 });
    // a step counter inside scan, under jit
    const keys = mg.jit((key: mg.Tensor) =>
      mg.scan(
        (i: mg.Tensor) => [mg.add(i, 1), mg.random.foldIn(key, i)] as [mg.Tensor, mg.Tensor],
        mg.tensor(0, { dtype: "i32", backend }),
        null,
        { length: 2 },
      )[1]
    )(k);
    assertAllClose(await keys.toFloat64(), [...expected[0], ...expected[1]], { rtol: 0, atol: 0 });
    // an index under vmap
    const idx = mg.tensor([1, 7], { dtype: "i32", backend });
    const batched = mg.vmap((i: mg.Tensor) => mg.random.foldIn(k, i))(idx);
    assertAllClose(await batched.toFloat64(), [...expected[1], ...expected[2]], {
      rtol: 0,
      atol: 0,
    });
  }
  assertThrowsWith(() => mg.random.foldIn(mg.random.key(0), mg.tensor(1.5)), "foldIn", "integer");
  const many = mg.random.split(mg.random.key(0), 3);
  assertThrowsWith(() => mg.random.uniform(many as never, [2]), "an array of 3", "splitStacked");
});

Deno.test("gamma and beta: moments match the closed forms on both backends, same bits", async () => {
  const moments = (v: Float64Array) => {
    const m = v.reduce((p, x) => p + x) / v.length;
    return [m, v.reduce((p, x) => p + (x - m) ** 2, 0) / v.length];
  };
  const bits: number[][] = [];
  for (const backend of ["webgpu", "reference"] as const) {
    const k = mg.random.key(3, { backend });
    // several shapes at once, broadcast against the sample shape: Gamma(a) has mean = var = a
    const a = mg.tensor([0.3, 1, 2.5, 40], { backend });
    const g = await mg.random.gamma(k, a, [20000, 4]).toFloat64();
    [0.3, 1, 2.5, 40].forEach((shape, j) => {
      const col = Float64Array.from({ length: 20000 }, (_, i) => g[4 * i + j]);
      const [m, v] = moments(col);
      assertAllClose([m, v], [shape, shape], { rtol: 0.05 }, `${backend}: Gamma(${shape})`);
    });
    const b = await mg.random.beta(k, 2, 5, [20000]).toFloat64();
    const [bm, bv] = moments(b);
    // Beta(2, 5): mean 2/7, variance ab / ((a + b)²(a + b + 1)) = 10 / 392
    assertAllClose([bm, bv], [2 / 7, 10 / 392], { rtol: 0.03 }, `${backend}: Beta(2, 5)`);
    bits.push([...g.slice(0, 64)]);
  }
  assertAllClose(bits[0], bits[1], { rtol: 1e-6, atol: 1e-6 }, "the same draws on both backends");
});
