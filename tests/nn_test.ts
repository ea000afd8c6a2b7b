/** core/nn: layers, initialisers and losses against manual computations and finite differences. */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { assertAllClose, assertThrowsWith, randomValues } from "./helpers.ts";

const { nn } = mg;
mg.setBackend("reference");
const t = (shape: number[], seed: number, lo = -1, hi = 1) =>
  mg.tensor(randomValues(shape, "f32", seed, lo, hi), { shape });
const v = async (x: unknown) => [...(await (x as Tensor).toFloat64())];

Deno.test("dense, conv2d and sequential compute what they say, with correct gradients", async () => {
  const layer = nn.dense(3, 2);
  const { params, state } = layer.init(mg.random.key(0));
  const x = t([4, 3], 1);
  const [y] = layer.apply(params, state, x);
  assertAllClose(await v(y), await v(mg.add(mg.matmul(x, params.w), params.b!)));
  await mg.checkGrads((p: typeof params, x: Tensor) => layer.apply(p, null, x)[0], [{
    w: t([3, 2], 2),
    b: t([2], 3),
  }, x], { order: 2 });
  const conv = nn.conv2d(2, 3, 3, { padding: 1, stride: 2 });
  const c = conv.init(mg.random.key(1));
  const img = t([1, 2, 5, 5], 4);
  const [out] = conv.apply(c.params, c.state, img);
  assertAllClose(
    await v(out),
    await v(
      mg.add(
        mg.conv2d(img, c.params.w, { padding: 1, stride: 2 }),
        mg.reshape(c.params.b!, [3, 1, 1]),
      ),
    ),
  );
  assertThrowsWith(() => layer.apply(params, state, t([4, 5], 5)), "dense", "[..., 3]", "[4, 5]");
});

Deno.test("layerNorm and batchNorm normalise, track running statistics, and differentiate", async () => {
  const ln = nn.layerNorm(6);
  const lp = ln.init(mg.random.key(0));
  const x = t([4, 6], 7, -3, 5);
  const [y] = ln.apply(lp.params, lp.state, x);
  assertAllClose(await v(mg.mean(y, -1)), [0, 0, 0, 0], { atol: 1e-9 });
  assertAllClose(await v(mg.variance(y, -1)), [1, 1, 1, 1], { rtol: 1e-4 }); // var/(var + eps)
  await mg.checkGrads((p: typeof lp.params, x: Tensor) => ln.apply(p, null, x)[0], [{
    gamma: t([6], 8, 0.5, 1.5),
    beta: t([6], 9),
  }, x]);

  const bn = nn.batchNorm(3, { momentum: 0.5 });
  const b = bn.init(mg.random.key(1));
  const img = t([4, 3, 2, 2], 10, 2, 6);
  const [yb, s1] = bn.apply(b.params, b.state, img, { train: true });
  assertAllClose(await v(mg.mean(yb, [0, 2, 3])), [0, 0, 0], { atol: 1e-9 });
  const batchMean = await v(mg.mean(img, [0, 2, 3])),
    batchVar = await v(mg.variance(img, [0, 2, 3]));
  assertAllClose(await v(s1.mean), batchMean.map((m) => 0.5 * m), { rtol: 1e-12 });
  assertAllClose(await v(s1.var), batchVar.map((q) => 0.5 + 0.5 * q), { rtol: 1e-12 });
  // evaluation uses the running statistics and leaves them alone
  const [ye, s2] = bn.apply(b.params, s1, img);
  if (s2 !== s1) throw new Error("eval changed the state");
  const expected = mg.div(
    mg.sub(img, mg.reshape(s1.mean, [1, 3, 1, 1])),
    mg.reshape(mg.sqrt(mg.add(s1.var, 1e-5)), [1, 3, 1, 1]),
  );
  assertAllClose(await v(ye), await v(expected), { rtol: 1e-9 });
  const tb = nn.batchNorm(3, { mode: "transductive" });
  await mg.checkGrads((p: typeof b.params, x: Tensor) => tb.apply(p, b.state, x)[0], [{
    gamma: t([3], 11, 0.5, 1.5),
    beta: t([3], 12),
  }, img], {
    order: 2,
    maxElements: 6,
  });
  // inside a vmap over tasks (how MAML and ProtoNet batch episodes) the batched custom rule
  // gives the per-task gradients, to second order
  const tasks = t([3, 4, 3, 2, 2], 15, -2, 2);
  const weights = t([4, 3, 2, 2], 16);
  const taskLoss = (p: typeof b.params, x: Tensor) =>
    mg.sum(mg.square(mg.mul(tb.apply(p, b.state, x)[0], weights)));
  const p0 = { gamma: t([3], 17, 0.5, 1.5), beta: t([3], 18) };
  const batched = mg.grad((p: typeof b.params) =>
    mg.sum(mg.vmap((x: Tensor) => taskLoss(p, x))(tasks))
  )(p0);
  const looped = [0, 1, 2].map((i) =>
    mg.grad((p: typeof b.params) => taskLoss(p, mg.squeeze(mg.slice(tasks, [[i, i + 1]]), 0)))(p0)
  );
  assertAllClose(
    await v(batched.gamma),
    await v(mg.add(mg.add(looped[0].gamma, looped[1].gamma), looped[2].gamma)),
    { rtol: 1e-9, atol: 1e-12 },
  );
  await mg.checkGrads(
    (p: typeof b.params, xs: Tensor) => mg.vmap((x: Tensor) => taskLoss(p, x))(xs),
    [p0, tasks],
    { order: 2, maxElements: 6 },
  );
  // training mode differentiates through the batch statistics too (and the state update)
  await mg.checkGrads(
    (p: typeof b.params, x: Tensor) => {
      const [y, next] = bn.apply(p, b.state, x, { train: true });
      return mg.add(mg.sum(mg.mul(y, y)), mg.sum(next.var));
    },
    [{ gamma: t([3], 13, 0.5, 1.5), beta: t([3], 14) }, img],
    { order: 2, maxElements: 6 },
  );
});

Deno.test("dropout scales, keeps the expected fraction, is keyed, and is off in evaluation", async () => {
  const d = nn.dropout(0.25);
  const x = mg.ones([20_000]);
  const [y] = d.apply(null, null, x, { train: true, key: mg.random.key(3) });
  const values = await v(y);
  const kept = values.filter((e) => e !== 0);
  assertAllClose([kept.length / values.length], [0.75], { atol: 0.01 });
  assertAllClose([kept[0]], [1 / 0.75], { rtol: 1e-9 });
  const [again] = d.apply(null, null, x, { train: true, key: mg.random.key(3) });
  if ((await v(again)).some((e, i) => e !== values[i])) throw new Error("same key, different mask");
  const [evalOut] = d.apply(null, null, x);
  if (evalOut !== x) throw new Error("dropout must be the identity in evaluation");
  assertThrowsWith(() => d.apply(null, null, x, { train: true }), "dropout", "key");
});

Deno.test("embedding looks rows up and scatters gradients back", async () => {
  const e = nn.embedding(5, 3);
  const { params } = e.init(mg.random.key(2));
  const ids = mg.tensor([4, 0, 4], { dtype: "i32" });
  const [y] = e.apply(params, null, ids);
  const table = await v(params.table);
  assertAllClose(await v(y), [
    ...table.slice(12, 15),
    ...table.slice(0, 3),
    ...table.slice(12, 15),
  ]);
  const g = mg.grad((p: typeof params) => mg.sum(e.apply(p, null, ids)[0]))(params);
  assertAllClose(await v(g.table), [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2]);
});

Deno.test("initialisers have the documented scales", async () => {
  const k = mg.random.key(9);
  const gu = await v(nn.glorotUniform(k, [200, 300]));
  const bound = Math.sqrt(6 / 500);
  if (gu.some((x) => Math.abs(x) > bound)) throw new Error("glorotUniform out of bounds");
  assertAllClose(
    [Math.sqrt(gu.reduce((a, b) => a + b * b, 0) / gu.length)],
    [bound / Math.sqrt(3)],
    { rtol: 0.02 },
  );
  const hn = await v(nn.heNormal(k, [64, 32, 3, 3]));
  assertAllClose([Math.sqrt(hn.reduce((a, b) => a + b * b, 0) / hn.length)], [
    Math.sqrt(2 / (32 * 9)),
  ], { rtol: 0.02 });
  assertAllClose(await v(nn.constantInit(0.5)(k, [2])), [0.5, 0.5]);
});

Deno.test("fanInUniform: PyTorch's default bounds for weights and (via the layer's fan-in) biases", async () => {
  const layer = nn.dense(400, 300, { init: nn.fanInUniform, biasInit: nn.fanInUniform });
  const { params } = layer.init(mg.random.key(8));
  const bound = 1 / Math.sqrt(400);
  const w = await v(params.w), b = await v(params.b!);
  if (w.some((x) => Math.abs(x) > bound) || b.some((x) => Math.abs(x) > bound)) {
    throw new Error("fanInUniform drew outside ±1/√fanIn");
  }
  const sd = (a: number[]) => Math.sqrt(a.reduce((s, x) => s + x * x, 0) / a.length);
  assertAllClose([sd(w), sd(b)], [bound / Math.sqrt(3), bound / Math.sqrt(3)], { rtol: 0.15 });
  // the default bias stays zero, and the weights do not change when a bias initialiser is given
  const plain = nn.dense(400, 300).init(mg.random.key(8)).params;
  assertAllClose(await v(plain.b!), new Array(300).fill(0), { atol: 0 });
  const glorotWithBias = nn.dense(400, 300, { biasInit: nn.fanInUniform }).init(mg.random.key(8));
  assertAllClose(await v(glorotWithBias.params.w), await v(plain.w), { atol: 0 });
});

Deno.test("truncatedNormal: inside ±2σ with the truncated normal's spread", async () => {
  const std = 0.01;
  const w = await v(nn.truncatedNormal(std)(mg.random.key(9), [200, 100]));
  if (w.some((x) => Math.abs(x) > 2 * std)) throw new Error("truncatedNormal drew outside ±2σ");
  const mean = w.reduce((a, b) => a + b, 0) / w.length;
  const sd = Math.sqrt(w.reduce((s, x) => s + (x - mean) ** 2, 0) / w.length);
  // N(0, σ²) truncated at ±2σ: sd = σ·√(1 − 4φ(2)/(2Φ(2) − 1)) = 0.8796σ; 20,000 draws
  // give standard errors of 0.006σ (mean) and 0.5% (sd)
  assertAllClose([mean / std, sd / std], [0, 0.8796], { atol: 0.03, rtol: 0 });
  // redrawn, not clipped: 0.57% of a truncated normal lies in 1.95σ < |x| ≤ 2σ, while
  // clipping would pile the 4.6% beyond 2σ there
  const edge = w.filter((x) => Math.abs(x) > 1.95 * std).length / w.length;
  if (edge > 0.01) throw new Error(`${edge} of the draws sit at the ±2σ edge`);
});

Deno.test("orthogonal initialiser: orthonormal rows or columns on both backends, keyed, scaled", async () => {
  for (const backend of ["reference", "webgpu"] as const) {
    mg.setBackend(backend);
    try {
      const k = mg.random.key(4, { backend });
      for (const shape of [[48, 20], [20, 48], [16, 4, 3, 3], [33, 33]]) {
        const w = nn.orthogonal(2)(k, shape);
        if (w.shape.join() !== shape.join()) throw new Error(`shape ${w.shape} for ${shape}`);
        const m = mg.reshape(w, [shape[0], -1]);
        const [r, c] = m.shape;
        const gram = r >= c ? mg.matmul(mg.transpose(m), m) : mg.matmul(m, mg.transpose(m));
        const n = Math.min(r, c);
        assertAllClose(
          await v(gram),
          await v(mg.mul(mg.eye(n), 4)),
          { atol: 1e-4 },
          `${backend} ${shape}`,
        );
      }
      const a = await v(nn.orthogonal()(k, [8, 8])),
        b = await v(nn.orthogonal()(mg.random.key(5, { backend }), [8, 8]));
      if (a.every((x, i) => Math.abs(x - b[i]) < 1e-6)) {
        throw new Error("different keys gave one matrix");
      }
    } finally {
      mg.setBackend("reference");
    }
  }
  assertThrowsWith(() => nn.orthogonal()(mg.random.key(0), [5]), "orthogonal", "[5]");
});

Deno.test("losses and distributions match closed forms and differentiate", async () => {
  assertAllClose(await v(nn.mse(mg.tensor([1, 2]), mg.tensor([1, 4]))), [2]);
  const logits = mg.tensor([[2, 0, -1], [0.5, 0.5, 3]]);
  const labels = mg.tensor([0, 2], { dtype: "i32" });
  const lse = (r: number[]) => Math.log(r.reduce((a, b) => a + Math.exp(b), 0));
  const ce = ((lse([2, 0, -1]) - 2) + (lse([0.5, 0.5, 3]) - 3)) / 2;
  assertAllClose(await v(nn.softmaxCrossEntropy(logits, labels)), [ce], { rtol: 1e-12 });
  assertAllClose(await v(nn.softmaxCrossEntropy(logits, mg.oneHot(labels, 3))), [ce], {
    rtol: 1e-12,
  });
  assertAllClose(
    await v(nn.softmaxCrossEntropy(mg.tensor([[1000, 0]]), mg.tensor([1], { dtype: "i32" }))),
    [1000],
    { rtol: 1e-12 },
  );
  assertAllClose(await v(nn.accuracy(logits, mg.tensor([0, 0], { dtype: "i32" }))), [0.5]);
  const bce = (x: number, y: number) => Math.max(x, 0) - x * y + Math.log1p(Math.exp(-Math.abs(x)));
  assertAllClose(await v(nn.binaryCrossEntropyWithLogits(mg.tensor([3, -2]), mg.tensor([1, 1]))), [
    (bce(3, 1) + bce(-2, 1)) / 2,
  ], { rtol: 1e-12 });
  const lp = -0.5 * Math.log(2 * Math.PI) - Math.log(2) - 0.5 * ((0.5 - 1) / 2) ** 2;
  assertAllClose(
    await v(nn.gaussianLogProb(mg.tensor([0.5]), mg.tensor([1]), mg.tensor([Math.log(2)]))),
    [lp],
    { rtol: 1e-12 },
  );
  assertAllClose(
    await v(nn.gaussianKl(mg.tensor([0.3]), mg.tensor([0.2]), mg.tensor([0.3]), mg.tensor([0.2]))),
    [0],
    { atol: 1e-12 },
  );
  const kl = Math.log(2 / 1) + (1 + 0.25) / (2 * 4) - 0.5; // KL(N(0.5,1) ‖ N(0,2))
  assertAllClose(
    await v(
      nn.gaussianKl(mg.tensor([0.5]), mg.tensor([0]), mg.tensor([0]), mg.tensor([Math.log(2)])),
    ),
    [kl],
    { rtol: 1e-12 },
  );
  assertAllClose(await v(nn.gaussianEntropy(mg.tensor([0]))), [0.5 * (1 + Math.log(2 * Math.PI))], {
    rtol: 1e-12,
  });
  assertAllClose(
    await v(nn.categoricalLogProb(mg.tensor([[0, 0]]), mg.tensor([1], { dtype: "i32" }))),
    [Math.log(0.5)],
    { rtol: 1e-12 },
  );
  assertAllClose(await v(nn.categoricalEntropy(mg.tensor([[0, 0]]))), [Math.log(2)], {
    rtol: 1e-12,
  });
  const p = [Math.exp(0) / (1 + Math.E), Math.E / (1 + Math.E)];
  assertAllClose(await v(nn.categoricalKl(mg.tensor([[0, 1]]), mg.tensor([[0, 0]]))), [
    p[0] * Math.log(p[0] / 0.5) + p[1] * Math.log(p[1] / 0.5),
  ], {
    rtol: 1e-12,
  });
  await mg.checkGrads((x: Tensor) => nn.softmaxCrossEntropy(x, labels), [logits], { order: 2 });
  await mg.checkGrads((x: Tensor) => nn.binaryCrossEntropyWithLogits(x, mg.tensor([1, 0])), [
    mg.tensor([0.3, -0.7]),
  ], { order: 2 });
  await mg.checkGrads(
    (m: Tensor, s: Tensor) => nn.gaussianKl(m, s, mg.tensor([0.1, 0]), mg.tensor([0.2, -0.1])),
    [mg.tensor([0.5, 1]), mg.tensor([0.3, 0])],
  );
});

Deno.test("model builders: mlp, sinusoid MLP and Conv-4 (shapes, gradients, WebGPU)", async () => {
  const net3 = nn.mlp([3, 5, 2], { activation: mg.tanh, finalActivation: mg.sigmoid });
  const n3 = net3.init(mg.random.key(4));
  const x3 = t([4, 3], 21);
  const [p0, , p2] = n3.params as { w: Tensor; b: Tensor }[];
  const expected3 = mg.sigmoid(
    mg.add(mg.matmul(mg.tanh(mg.add(mg.matmul(x3, p0.w), p0.b)), p2.w), p2.b),
  );
  assertAllClose(await v(net3.apply(n3.params, n3.state, x3)[0]), await v(expected3), {
    rtol: 1e-12,
  });
  assertThrowsWith(() => nn.mlp([3]), "mlp", "at least two");
  const mlp = nn.sinusoidMlp();
  const m = mlp.init(mg.random.key(0));
  const [y] = mlp.apply(m.params, m.state, mg.linspace(-5, 5, 10).reshape([10, 1]));
  if (y.shape.join() !== "10,1") throw new Error(`mlp output ${y.shape}`);
  const small = nn.conv4({ inChannels: 1, imageSize: 16, ways: 3, hidden: 4 });
  const c = small.init(mg.random.key(1));
  const imgs = t([2, 1, 16, 16], 20);
  const [logits] = small.apply(c.params, c.state, imgs);
  if (logits.shape.join() !== "2,3") throw new Error(`conv4 output ${logits.shape}`);
  assertThrowsWith(
    () => small.apply(c.params, c.state, mg.zeros([2, 1, 28, 28])),
    "conv4",
    "[N, 1, 16, 16]",
    "[2, 1, 28, 28]",
  );
  await mg.checkGrads((p: unknown) => small.apply(p as unknown[], c.state, imgs)[0], [c.params], {
    maxElements: 2,
  });
  mg.setBackend("webgpu");
  try {
    const net = nn.conv4({ inChannels: 1, imageSize: 28, ways: 5 });
    const w = net.init(mg.random.key(2));
    const batch = mg.random.normal(mg.random.key(3), [25, 1, 28, 28]);
    const loss = (p: unknown) =>
      nn.softmaxCrossEntropy(
        net.apply(p as unknown[], w.state, batch)[0],
        mg.zeros([25], { dtype: "i32" }),
      );
    const [value, grads] = mg.valueAndGrad(loss)(w.params);
    const l = await (value as Tensor).item();
    if (!(l > 0 && Number.isFinite(l))) throw new Error(`conv4 loss ${l}`);
    if (mg.tree.leaves<Tensor>(grads).length !== mg.tree.leaves<Tensor>(w.params).length) {
      throw new Error("gradient tree mismatch");
    }
  } finally {
    mg.setBackend("reference");
  }
});

Deno.test("multi-head attention matches a manual computation and is causal when asked", async () => {
  const d = 6, h = 2, T = 4;
  const attn = nn.multiHeadAttention(d, h, { causal: true });
  const { params } = attn.init(mg.random.key(5));
  const x = t([2, T, d], 30);
  const [y] = attn.apply(params, null, x);
  // manual, one head at a time, in float64 on the host
  const X = await v(x),
    P = {
      wq: await v(params.wq),
      wk: await v(params.wk),
      wv: await v(params.wv),
      wo: await v(params.wo),
    };
  const mm = (a: number[], b: number[], n: number, k: number, m: number) =>
    Array.from({ length: n * m }, (_, i) => {
      let s = 0;
      for (let j = 0; j < k; j++) s += a[Math.floor(i / m) * k + j] * b[j * m + (i % m)];
      return s;
    });
  const expected: number[] = [];
  for (let b = 0; b < 2; b++) {
    const xb = X.slice(b * T * d, (b + 1) * T * d);
    const q = mm(xb, P.wq, T, d, d), k = mm(xb, P.wk, T, d, d), vv = mm(xb, P.wv, T, d, d);
    const merged = new Array(T * d).fill(0);
    for (let hh = 0; hh < h; hh++) {
      const dh = d / h;
      for (let i = 0; i < T; i++) {
        const scores = Array.from({ length: T }, (_, j) => {
          if (j > i) return -Infinity;
          let s = 0;
          for (let c = 0; c < dh; c++) s += q[i * d + hh * dh + c] * k[j * d + hh * dh + c];
          return s / Math.sqrt(dh);
        });
        const mx = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - mx));
        const z = e.reduce((a, c) => a + c, 0);
        for (let c = 0; c < dh; c++) {
          let s = 0;
          for (let j = 0; j < T; j++) s += (e[j] / z) * vv[j * d + hh * dh + c];
          merged[i * d + hh * dh + c] = s;
        }
      }
    }
    expected.push(...mm(merged, P.wo, T, d, d));
  }
  assertAllClose(await v(y), expected, { rtol: 1e-9, atol: 1e-12 });
  // changing the last position leaves earlier outputs unchanged
  const x2 = mg.concat([mg.slice(x, [null, [0, T - 1]]), t([2, 1, d], 31)], 1);
  const [y2] = attn.apply(params, null, x2);
  assertAllClose(
    await v(mg.slice(y2, [null, [0, T - 1]])),
    await v(mg.slice(y, [null, [0, T - 1]])),
    { rtol: 1e-12 },
  );
  await mg.checkGrads((p: typeof params, x: Tensor) => attn.apply(p, null, x)[0], [params, x], {
    maxElements: 4,
  });
});

Deno.test("causal dilated conv1d sees only the past", async () => {
  const tc = nn.causalConv1d(2, 3, 2, { dilation: 2 });
  const { params } = tc.init(mg.random.key(6));
  const x = t([1, 2, 7], 40);
  const [y] = tc.apply(params, null, x);
  if (y.shape.join() !== "1,3,7") throw new Error(`shape ${y.shape}`);
  const W = await v(params.w), B = await v(params.b), X = await v(x);
  const expected: number[] = [];
  for (let o = 0; o < 3; o++) {
    for (let tt = 0; tt < 7; tt++) {
      let s = B[o];
      for (let c = 0; c < 2; c++) {
        for (let k = 0; k < 2; k++) {
          const src = tt - (1 - k) * 2;
          if (src >= 0) s += W[(o * 2 + c) * 2 + k] * X[c * 7 + src];
        }
      }
      expected.push(s);
    }
  }
  assertAllClose(await v(y), expected, { rtol: 1e-12 });
});

Deno.test("GRU and LSTM cells match their equations and differentiate", async () => {
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  const gru = nn.gruCell(2, 3);
  const gp = gru.init(mg.random.key(7));
  const bi = t([9], 50), bh = t([9], 51);
  const params = { ...gp, bi, bh };
  const x = t([1, 2], 52), h = t([1, 3], 53);
  const y = gru.apply(params, h, x);
  const [Wi, Wh, Bi, Bh, X, H] = await Promise.all([params.wi, params.wh, bi, bh, x, h].map(v));
  const gi = Array.from({ length: 9 }, (_, j) => X[0] * Wi[j] + X[1] * Wi[9 + j] + Bi[j]);
  const gh = Array.from(
    { length: 9 },
    (_, j) => H[0] * Wh[j] + H[1] * Wh[9 + j] + H[2] * Wh[18 + j] + Bh[j],
  );
  const expected = [0, 1, 2].map((k) => {
    const r = sig(gi[k] + gh[k]), z = sig(gi[3 + k] + gh[3 + k]);
    const n = Math.tanh(gi[6 + k] + r * gh[6 + k]);
    return (1 - z) * n + z * H[k];
  });
  assertAllClose(await v(y), expected, { rtol: 1e-12 });
  await mg.checkGrads((p: typeof params, h: Tensor, x: Tensor) => gru.apply(p, h, x), [
    params,
    h,
    x,
  ], { order: 2, maxElements: 4 });

  const lstm = nn.lstmCell(2, 3);
  const lp = lstm.init(mg.random.key(8));
  const c = t([1, 3], 54);
  const [h2, c2] = lstm.apply(lp, [h, c], x);
  const [Li, Lh, Lb, C] = await Promise.all([lp.wi, lp.wh, lp.b, c].map(v));
  if (Lb.slice(3, 6).some((b) => b !== 1)) throw new Error("forget bias should start at 1");
  const g = Array.from(
    { length: 12 },
    (_, j) =>
      X[0] * Li[j] + X[1] * Li[12 + j] + H[0] * Lh[j] + H[1] * Lh[12 + j] + H[2] * Lh[24 + j] +
      Lb[j],
  );
  const cExp = [0, 1, 2].map((k) => sig(g[3 + k]) * C[k] + sig(g[k]) * Math.tanh(g[6 + k]));
  assertAllClose(await v(c2), cExp, { rtol: 1e-12 });
  assertAllClose(await v(h2), cExp.map((cc, k) => sig(g[9 + k]) * Math.tanh(cc)), { rtol: 1e-12 });
  await mg.checkGrads((p: typeof lp, h: Tensor, c: Tensor, x: Tensor) => lstm.apply(p, [h, c], x), [
    lp,
    h,
    c,
    x,
  ], { maxElements: 4 });
});

Deno.test("the layer-normalised GRU (pytorch_rl2's cell) matches its equations and differentiates", async () => {
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  const H = 3;
  const cell = nn.gruCell(2, H, { layerNorm: true, candidate: "relu", updateBias: 1 });
  const init = cell.init(mg.random.key(7));
  const [Bh0, Si0] = await Promise.all([init.bh, init.si!].map(v));
  assertAllClose(Bh0, [0, 0, 0, 1, 1, 1, 0, 0, 0], { rtol: 0 }, "update-gate bias 1 at init");
  assertAllClose(Si0, Array(9).fill(1), { rtol: 0 }, "scales start at 1");
  const params = {
    ...init,
    bi: t([9], 50),
    bh: t([9], 51),
    si: t([9], 55, 0.5, 2),
    sh: t([9], 56, 0.5, 2),
  };
  const x = t([2, 2], 52), h = t([2, 3], 53);
  const y = cell.apply(params, h, x);
  const [Wi, Wh, Bi, Bh, Si, Sh, X, Hs] = await Promise.all(
    [params.wi, params.wh, params.bi, params.bh, params.si, params.sh, x, h].map(v),
  );
  /** Each gate's 3 pre-activations normalised (population variance, ε = 1e-5), scaled, shifted. */
  const norm = (g: number[], scale: number[], shift: number[]) =>
    g.map((_, j) => {
      const block = g.slice(Math.floor(j / H) * H, Math.floor(j / H) * H + H);
      const mu = block.reduce((a, b) => a + b) / H;
      const varr = block.reduce((a, b) => a + (b - mu) ** 2, 0) / H;
      return ((g[j] - mu) / Math.sqrt(varr + 1e-5)) * scale[j] + shift[j];
    });
  const expected: number[] = [];
  for (let b = 0; b < 2; b++) {
    const xb = X.slice(2 * b, 2 * b + 2), hb = Hs.slice(3 * b, 3 * b + 3);
    const gi = norm(Array.from({ length: 9 }, (_, j) => xb[0] * Wi[j] + xb[1] * Wi[9 + j]), Si, Bi);
    const gh = norm(
      Array.from({ length: 9 }, (_, j) => hb[0] * Wh[j] + hb[1] * Wh[9 + j] + hb[2] * Wh[18 + j]),
      Sh,
      Bh,
    );
    for (let k = 0; k < H; k++) {
      const r = sig(gi[k] + gh[k]), z = sig(gi[3 + k] + gh[3 + k]);
      const n = Math.max(0, gi[6 + k] + r * gh[6 + k]);
      expected.push((1 - z) * n + z * hb[k]);
    }
  }
  assertAllClose(await v(y), expected, { rtol: 1e-10 });
  await mg.checkGrads((p: typeof params, h: Tensor, x: Tensor) => cell.apply(p, h, x), [
    params,
    h,
    x,
  ], { order: 2, maxElements: 4 });
  // two cells' projections side by side normalise each cell's gates apart (RL²'s two towers)
  const other = { ...params, wi: t([2, 9], 57), si: t([9], 58, 0.5, 2), bi: t([9], 59) };
  const both = cell.project!({
    ...params,
    wi: mg.concat([params.wi, other.wi], 1),
    si: mg.concat([params.si, other.si], 0),
    bi: mg.concat([params.bi, other.bi], 0),
  }, x);
  assertAllClose(
    await v(both),
    await v(mg.concat([cell.project!(params, x), cell.project!(other, x)], 1)),
    { rtol: 1e-10, atol: 1e-12 },
  );
  assertThrowsWith(() => nn.gruCell(2, 3, { candidate: "gelu" as never }), "gruCell", "candidate");
  assertThrowsWith(() => nn.gruCell(2, 3, { layerNorm: 1 as never }), "gruCell", "layerNorm");
  assertThrowsWith(() => nn.gruCell(2, 3, { updatebias: 1 } as never), "gruCell", "updatebias");
  assertThrowsWith(
    () =>
      nn.gruCell(2, 3, { layerNorm: true }).apply(nn.gruCell(2, 3).init(mg.random.key(0)), h, x),
    "gruCell",
    "si and sh",
  );
});

Deno.test("GRU and LSTM sequences (scan) equal stepping the cell, with gradients, on both backends", async () => {
  for (const backend of ["reference", "webgpu"] as const) {
    mg.setBackend(backend);
    try {
      const xs = t([2, 5, 3], 60); // [batch, T, features]
      for (
        const [name, cell] of [
          ["gru", nn.gruCell(3, 4)],
          ["lstm", nn.lstmCell(3, 4)],
          ["layer-normalised gru", nn.gruCell(3, 4, { layerNorm: true, candidate: "relu" })],
        ] as const
      ) {
        const c = cell as mg.nn.RecurrentCell<unknown, unknown>;
        const p = c.init(mg.random.key(9, { backend }));
        const s0 = c.initialState([2], backend);
        for (const reverse of [false, true]) {
          const [sT, hs] = nn.runRecurrent(c, p, s0, xs, { reverse });
          let s = s0;
          const outs: Tensor[] = [];
          for (let i = 0; i < 5; i++) {
            const step = reverse ? 4 - i : i;
            s = c.apply(p, s, mg.slice(xs, [null, step]));
            outs[step] = c.output(s);
          }
          const what = `${backend} ${name} reverse=${reverse}`;
          const tol = backend === "reference" ? { rtol: 1e-12 } : { rtol: 1e-5, atol: 1e-6 };
          assertAllClose(await v(hs), await v(mg.stack(outs, 1)), tol, what);
          assertAllClose(await v(c.output(sT)), await v(c.output(s)), tol, what);
          // a cell without the input projection split runs every step whole: the same values
          const whole = { ...c, project: undefined, applyProjected: undefined };
          assertAllClose(
            await v(nn.runRecurrent(whole, p, s0, xs, { reverse })[1]),
            await v(hs),
            tol,
          );
        }
        // the layer form, time-major and batch-free inputs
        if (name === "layer-normalised gru") continue;
        const layer = name === "gru" ? nn.gru(3, 4) : nn.lstm(3, 4);
        const [ys] = layer.apply(p as never, null, xs);
        const [ysT] =
          (name === "gru" ? nn.gru(3, 4, { timeMajor: true }) : nn.lstm(3, 4, { timeMajor: true }))
            .apply(p as never, null, mg.moveAxis(xs, 1, 0));
        const [ys1] = layer.apply(p as never, null, mg.slice(xs, [1]));
        if (
          ys.shape.join() !== "2,5,4" || ysT.shape.join() !== "5,2,4" || ys1.shape.join() !== "5,4"
        ) {
          throw new Error(`${name} shapes ${ys.shape} ${ysT.shape} ${ys1.shape}`);
        }
        assertAllClose(await v(ysT), await v(mg.moveAxis(ys, 1, 0)), { rtol: 1e-6, atol: 1e-7 });
        assertAllClose(await v(ys1), await v(mg.slice(ys, [1])), { rtol: 1e-6, atol: 1e-7 });
        if (backend === "reference") {
          await mg.checkGrads(
            (q: unknown, x: Tensor) => mg.sum(mg.square(layer.apply(q as never, null, x)[0])),
            [p, mg.slice(xs, [[0, 1], [0, 3]])],
            { order: 2, maxElements: 3 },
          );
        }
      }
    } finally {
      mg.setBackend("reference");
    }
  }
  assertThrowsWith(
    () =>
      nn.runRecurrent(
        nn.gruCell(3, 4),
        nn.gruCell(3, 4).init(mg.random.key(0)),
        mg.zeros([4]),
        mg.zeros([3]),
      ),
    "runRecurrent",
    "[3]",
  );
});
