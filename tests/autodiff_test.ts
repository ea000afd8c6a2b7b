/** Closed forms, API behaviour and memory of the differentiation transformations. */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { assertAllClose, assertThrowsWith, randomValues } from "./helpers.ts";

const F = (x: unknown) => x as Tensor;

for (const backend of ["reference", "webgpu"] as const) {
  const tol = backend === "reference" ? { rtol: 1e-9, atol: 1e-12 } : { rtol: 1e-4, atol: 1e-5 };
  const T = (v: number | number[] | number[][], shape?: number[]) =>
    mg.tensor(Array.isArray(v) ? v.flat() : [v], {
      shape: shape ??
        (Array.isArray(v)
          ? (Array.isArray(v[0]) ? [v.length, (v[0] as number[]).length] : [v.length])
          : []),
      backend,
    });

  Deno.test(`${backend}: d³/dx³ sin = −cos (grad nested three times)`, async () => {
    const xs = [0.3, -1.1, 2.5];
    const d = (f: (x: Tensor) => Tensor) => (x: Tensor) =>
      F(mg.grad((y: Tensor) => mg.sum(f(y)))(x));
    const third = d(d(d(mg.sin)));
    assertAllClose(await third(T(xs)).toFloat64(), xs.map((x) => -Math.cos(x)), tol);
  });

  Deno.test(`${backend}: the Hessian of ½xᵀAx is A (symmetric A), and hvp agrees`, async () => {
    const A = [[4, 1, -2], [1, 3, 0.5], [-2, 0.5, 5]];
    const a = T(A);
    const f = (x: Tensor) => mg.mul(0.5, mg.dot(x, mg.matmul(a, x)));
    const x = T([0.2, -0.4, 1.3]);
    assertAllClose(await F(mg.hessian(f)(x)).toFloat64(), A.flat(), tol);
    assertAllClose(
      await F(mg.hvp(f, x, T([1, 2, 3]))).toFloat64(),
      A.map((r) => r[0] + 2 * r[1] + 3 * r[2]),
      tol,
    );
  });

  Deno.test(`${backend}: perturbation confusion is avoided: d/dx [x · d/dy (x·y)] = 2x`, async () => {
    const c = T(5);
    const f = (x: Tensor) => mg.mul(x, F(mg.grad((y: Tensor) => mg.mul(x, y))(c)));
    assertAllClose(await F(mg.grad(f)(T(3))).toFloat64(), [6], tol);
  });

  Deno.test(`${backend}: second-order MAML meta-gradient of one SGD step on least squares has the closed form`, async () => {
    // L(w; X, y) = ||Xw − y||² / 2n;  w' = w − α∇L_s(w);  ∇_w L_q(w') = (I − α X_sᵀX_s/n) ∇L_q(w')
    const n = 10, d = 3, alpha = 0.1;
    const Xs = randomValues([n, d], "f32", 1), ys = randomValues([n], "f32", 2);
    const Xq = randomValues([n, d], "f32", 3), yq = randomValues([n], "f32", 4);
    const w0 = randomValues([d], "f32", 5);
    const loss = (w: Tensor, X: Tensor, y: Tensor) =>
      mg.div(mg.sum(mg.square(mg.sub(mg.matmul(X, w), y))), 2 * n);
    const [xs, ysT, xq, yqT, w] = [T(Xs, [n, d]), T(ys), T(Xq, [n, d]), T(yq), T(w0)];
    const metaLoss = (w: Tensor) => {
      const adapted = mg.sub(w, mg.mul(F(mg.grad(loss)(w, xs, ysT)), alpha));
      return loss(adapted, xq, yqT);
    };
    const meta = await F(mg.grad(metaLoss)(w)).toFloat64();
    // closed form in float64 on the host
    const mat = (X: number[], i: number, j: number) => X[i * d + j];
    const gradL = (wv: number[], X: number[], y: number[]) =>
      Array.from({ length: d }, (_, j) => {
        let s = 0;
        for (let i = 0; i < n; i++) {
          let r = -y[i];
          for (let k = 0; k < d; k++) r += mat(X, i, k) * wv[k];
          s += mat(X, i, j) * r;
        }
        return s / n;
      });
    const gs = gradL(w0, Xs, ys);
    const wAdapted = w0.map((v, j) => v - alpha * gs[j]);
    const gq = gradL(wAdapted, Xq, yq);
    const expected = Array.from({ length: d }, (_, j) => {
      let s = gq[j];
      for (let k = 0; k < d; k++) {
        let h = 0;
        for (let i = 0; i < n; i++) h += mat(Xs, i, j) * mat(Xs, i, k);
        s -= alpha * (h / n) * gq[k];
      }
      return s;
    });
    assertAllClose(
      meta,
      expected,
      backend === "reference" ? { rtol: 1e-5, atol: 1e-9 } : { rtol: 1e-3, atol: 1e-4 },
    );
  });

  Deno.test(`${backend}: jvp, linearize, jacfwd and jacrev agree with closed forms`, async () => {
    const x = T([0.5, -1, 2]);
    const [y, dy] = mg.jvp((x: Tensor) => mg.mul(mg.exp(x), mg.sin(x)), [x], [T([1, 0, 2])]);
    const d = (v: number) => Math.exp(v) * (Math.sin(v) + Math.cos(v));
    assertAllClose(await F(dy).toFloat64(), [d(0.5), 0, 2 * d(2)], {
      ...tol,
      rtol: Math.max(tol.rtol, 1e-6),
    });
    assertAllClose(await F(y).toFloat64(), [0.5, -1, 2].map((v) => Math.exp(v) * Math.sin(v)), {
      ...tol,
      rtol: Math.max(tol.rtol, 1e-6),
    });
    const A = T([[1, 2, 0], [0, -1, 3]]);
    const f = (x: Tensor) => mg.tanh(mg.matmul(A, x));
    const jf = await F(mg.jacfwd(f)(x)).toFloat64(), jr = await F(mg.jacrev(f)(x)).toFloat64();
    assertAllClose(jf, jr, { rtol: 1e-5, atol: 1e-6 });
    const z = [0.5 + 2 * -1, -(-1) + 6];
    const expected = [[1, 2, 0], [0, -1, 3]].flatMap((row, i) =>
      row.map((a) => a * (1 - Math.tanh(z[i]) ** 2))
    );
    assertAllClose(jr, expected, { rtol: 1e-5, atol: 1e-6 });
  });

  Deno.test(`${backend}: pytrees, argnums, hasAux, stopGradient, customVjp`, async () => {
    const params = { w: T([[1, 2], [3, 4]]), layers: [{ b: T([0.5, -0.5]) }] };
    const x = T([1, -1]);
    const loss = (p: typeof params, x: Tensor) =>
      mg.sum(mg.square(mg.add(mg.matmul(p.w, x), p.layers[0].b)));
    const g = mg.grad(loss)(params, x);
    // r = Wx + b = [-0.5, -1.5]; dL/dW = 2 r xᵀ; dL/db = 2r
    assertAllClose(await F(g.w).toFloat64(), [-1, 1, -3, 3], tol);
    assertAllClose(await F(g.layers[0].b).toFloat64(), [-1, -3], tol);
    const [gp, gx] = mg.grad(loss, { argnums: [0, 1] })(params, x);
    assertAllClose(await F(gp.w).toFloat64(), [-1, 1, -3, 3], tol);
    assertAllClose(
      await F(gx).toFloat64(),
      [2 * (-0.5 * 1 + -1.5 * 3), 2 * (-0.5 * 2 + -1.5 * 4)],
      tol,
    );
    const [[value, aux], ga] = mg.valueAndGrad(
      (x: Tensor) => [mg.sum(mg.square(x)), { doubled: mg.mul(x, 2) }],
      { hasAux: true },
    )(x);
    assertAllClose(await F(value).toFloat64(), [2], tol);
    assertAllClose(await F(aux.doubled).toFloat64(), [2, -2], tol);
    assertAllClose(await F(ga).toFloat64(), [2, -2], tol);
    assertAllClose(
      await F(mg.grad((x: Tensor) => mg.sum(mg.mul(x, mg.stopGradient(x))))(x)).toFloat64(),
      [1, -1],
      tol,
    );
    const ste = mg.customVjp(
      (x: Tensor) => mg.clip(x, -1, 1),
      (x: Tensor) => [mg.clip(x, -1, 1), null],
      (_r: unknown, g: Tensor) => [g],
    );
    assertAllClose(
      await F(mg.grad((x: Tensor) => mg.sum(ste(x)))(T([3, 0.5]))).toFloat64(),
      [1, 1],
      tol,
    );
    // a stable log-sum-exp with a hand-written gradient, checked against the automatic one
    const lse = mg.customVjp(
      (x: Tensor) => mg.logsumexp(x),
      (x: Tensor) => {
        const out = mg.logsumexp(x);
        return [out, { softmax: mg.softmax(x) }];
      },
      (r: { softmax: Tensor }, g: Tensor) => [mg.mul(r.softmax, g)],
    );
    const v = T([1, 2, 3]);
    assertAllClose(
      await F(mg.grad(lse)(v)).toFloat64(),
      await F(mg.grad((x: Tensor) => mg.logsumexp(x))(v)).toFloat64(),
      { rtol: 1e-6, atol: 1e-7 },
    );
    // under a vmap inside grad the rule is batched: the straight-through gradient per row, and
    // a shared (unbatched) argument's cotangent summed over the batch
    const scaled = mg.customVjp(
      (x: Tensor, w: Tensor) => mg.mul(mg.clip(x, -1, 1), w),
      (x: Tensor, w: Tensor) => [mg.mul(mg.clip(x, -1, 1), w), { x, w }],
      (r: { x: Tensor; w: Tensor }, g: Tensor) => [mg.mul(g, r.w), mg.mul(g, mg.clip(r.x, -1, 1))],
    );
    const rows = T([[3, 0.5], [-2, 0.25], [0.1, -4]]);
    const w = T([2, -1]);
    const [gRows, gw] = mg.grad(
      (xs: Tensor, ww: Tensor) =>
        mg.sum(mg.vmap((x: Tensor) => mg.square(mg.sum(scaled(x, ww))))(xs)),
      { argnums: [0, 1] },
    )(rows, w) as Tensor[];
    // per row r: s_r = Σ clip(x_r)·w; ∂/∂x_r = 2 s_r w (straight through), ∂/∂w = Σ_r 2 s_r clip(x_r)
    const clipped = [[1, 0.5], [-1, 0.25], [0.1, -1]];
    const sums = clipped.map(([a, b]) => 2 * a - b);
    assertAllClose(await F(gRows).toFloat64(), sums.flatMap((s) => [4 * s, -2 * s]), tol);
    assertAllClose(
      await F(gw).toFloat64(),
      [0, 1].map((j) => clipped.reduce((acc, c, r) => acc + 2 * sums[r] * c[j], 0)),
      tol,
    );
  });

  Deno.test(`${backend}: user mistakes give clear errors`, () => {
    assertThrowsWith(
      () => mg.grad((x: Tensor) => mg.mul(x, 2))(T([1, 2])),
      "grad",
      "scalar",
      "f32[2]",
    );
    assertThrowsWith(
      () => mg.grad((x: Tensor) => mg.sum(x))(mg.tensor([1], { dtype: "i32", backend })),
      "grad",
      "i32",
      "argnums",
    );
    assertThrowsWith(() => mg.grad((x: Tensor) => mg.sum(x), { argnums: 2 })(T(1)), "argnums 2");
    let leaked: Tensor | null = null;
    mg.grad((x: Tensor) => {
      leaked = x;
      return mg.sum(x);
    })(T(1));
    assertThrowsWith(() => mg.add(leaked!, 1), "escaped", "grad");
  });
}

Deno.test("checkpoint gives identical gradients with lower peak memory on a 10-step unrolled loop", async () => {
  await mg.init();
  const x0 = mg.random.normal(mg.random.key(0), [64, 64], { std: 0.5 });
  const w = mg.random.normal(mg.random.key(1), [64, 64], { std: 0.1 });
  await mg.sync();
  // an inner loop of 10 SGD steps on ||tanh(xW)||², differentiated with respect to W (second order)
  const step = (x: Tensor, w: Tensor) => {
    const inner = (x: Tensor) => mg.mean(mg.square(mg.tanh(mg.matmul(x, w))));
    return mg.sub(x, mg.mul(F(mg.grad(inner)(x)), 0.5));
  };
  const unrolled = (remat: boolean) => (w: Tensor) => {
    const s = remat ? mg.checkpoint(step) : step;
    let x = x0;
    for (let i = 0; i < 10; i++) x = s(x, w);
    return mg.mean(mg.square(x));
  };
  const measure = async (remat: boolean) => {
    await mg.sync();
    mg.resetPeakMemory();
    const base = mg.memory().liveBytes;
    const g = F(mg.grad(unrolled(remat))(w));
    const values = await g.toFloat64();
    const peak = mg.memory().peakBytes - base;
    g.dispose();
    return { values, peak };
  };
  const plain = await measure(false);
  const remat = await measure(true);
  assertAllClose(remat.values, plain.values, { rtol: 1e-5, atol: 1e-7 });
  if (!(remat.peak < plain.peak * 0.7)) {
    throw new Error(`checkpoint peak ${remat.peak} B is not clearly below ${plain.peak} B`);
  }
  console.log(
    `peak live bytes: ${plain.peak} without checkpoint, ${remat.peak} with (${
      (remat.peak / plain.peak * 100).toFixed(0)
    }%)`,
  );
});

Deno.test("grad frees its intermediates: live tensors return to baseline plus the results", async () => {
  const w = mg.random.normal(mg.random.key(2), [32, 32]);
  const f = (w: Tensor) => mg.mean(mg.square(mg.tanh(mg.matmul(w, w))));
  F(mg.grad(f)(w)).dispose();
  await mg.sync();
  const before = mg.memory();
  for (let i = 0; i < 20; i++) F(mg.grad(f)(w)).dispose();
  const [v, g] = mg.valueAndGrad(f)(w);
  const after = mg.memory();
  if (after.liveTensors !== before.liveTensors + 2) {
    throw new Error(`live tensors ${before.liveTensors} → ${after.liveTensors}`);
  }
  F(v).dispose();
  F(g).dispose();
});

Deno.test("gradients on WebGPU match finite differences with f32 tolerances", async () => {
  const x = mg.tensor(randomValues([3, 4], "f32", 9), { shape: [3, 4] });
  const w = mg.tensor(randomValues([4, 2], "f32", 10), { shape: [4, 2] });
  await mg.checkGrads((x: Tensor, w: Tensor) => mg.logSoftmax(mg.tanh(mg.matmul(x, w))), [x, w], {
    order: 2,
  });
  const img = mg.tensor(randomValues([1, 2, 5, 5], "f32", 11), { shape: [1, 2, 5, 5] });
  const k = mg.tensor(randomValues([2, 2, 3, 3], "f32", 12), { shape: [2, 2, 3, 3] });
  await mg.checkGrads(
    (x: Tensor, k: Tensor) => mg.maxPool2d(mg.relu(mg.conv2d(x, k, { padding: 1 })), 2),
    [img, k],
  );
});
