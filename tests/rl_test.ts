/**
 * The RL learners' parts against hand computations on both backends: discounted returns and
 * GAE (loops written out), the action distributions (closed forms, sampling frequencies), PPO's
 * loss (the clipped objective spelt out element by element), the jitted donating PPO update on
 * WebGPU against the plain float64 one, and a short CartPole run that must learn.
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import {
  a2c,
  a2cLoss,
  actionEntropy,
  actionKl,
  actionLogProb,
  actorCritic,
  addTransitions,
  conjugateGradient,
  discountedReturns,
  fitLinearBaseline,
  gae,
  pearl,
  ppo,
  ppoLoss,
  ravelTree,
  recurrentActorCritic,
  replayBuffer,
  sac,
  sampleAction,
  sampleTransitions,
  softActorObjective,
  softBellmanTarget,
  trpo,
  vpg,
} from "../algorithms/mod.ts";
import {
  cartPole,
  pendulum,
  pointNavigation,
  recurrentRolloutFrom,
  resetEnvs,
} from "../envs/mod.ts";
import {
  assertAllClose,
  assertJittedUpdatesMatchFloat64,
  assertThrowsWith,
  assertTreesClose,
  onBackend,
  randomValues,
} from "./helpers.ts";

const T = 7, Bn = 5;
const host = (seed: number, lo = -2, hi = 2) => randomValues([T, Bn], "f32", seed, lo, hi);
const rewards = host(1), values = host(2), last = randomValues([Bn], "f32", 3);
const dones = randomValues([T, Bn], "f32", 4, 0, 1).map((v) => (v < 0.25 ? 1 : 0));

/** GAE and returns with plain loops over time, per environment (float64). */
function handGae(gamma: number, lambda: number) {
  const adv = new Array(T * Bn).fill(0), ret = new Array(T * Bn).fill(0);
  for (let b = 0; b < Bn; b++) {
    let nextValue = last[b], nextAdv = 0, nextRet = last[b];
    for (let t = T - 1; t >= 0; t--) {
      const i = t * Bn + b, keep = 1 - dones[i];
      const delta = rewards[i] + gamma * nextValue * keep - values[i];
      adv[i] = delta + gamma * lambda * keep * nextAdv;
      ret[i] = rewards[i] + gamma * keep * nextRet;
      [nextValue, nextAdv, nextRet] = [values[i], adv[i], ret[i]];
    }
  }
  return { adv, ret };
}

for (const backend of ["webgpu", "reference"] as const) {
  Deno.test(`discounted returns and GAE equal loops written out (${backend})`, async () => {
    mg.setBackend(backend);
    try {
      const r = mg.tensor(rewards, { shape: [T, Bn] }), v = mg.tensor(values, { shape: [T, Bn] });
      const d = mg.tensor(dones.map((x) => x === 1), { shape: [T, Bn] });
      const l = mg.tensor(last);
      const { adv, ret } = handGae(0.97, 0.9);
      const g = gae(r, v, d, l, 0.97, 0.9);
      assertAllClose(await g.advantages.toFloat64(), adv, { rtol: 1e-5, atol: 1e-5 }, "GAE");
      assertAllClose(
        await g.targets.toFloat64(),
        adv.map((a, i) => a + values[i]),
        { rtol: 1e-5, atol: 1e-5 },
        "targets",
      );
      assertAllClose(await discountedReturns(r, d, l, 0.97).toFloat64(), ret, {
        rtol: 1e-5,
        atol: 1e-5,
      }, "returns");
      // λ = 1 is the discounted return minus the value; λ = 0 the one-step TD error
      const one = await gae(r, v, d, l, 0.97, 1).advantages.toFloat64();
      assertAllClose(one, ret.map((x, i) => x - values[i]), { rtol: 1e-5, atol: 1e-5 }, "λ = 1");
      assertThrowsWith(() => gae(r, v, d, mg.zeros([3]), 0.9, 0.9), "gae", "bootstrap", "[5]");
      assertThrowsWith(() => gae(r, v, d, l, 1.5, 0.9), "gae", "gamma");
    } finally {
      mg.setBackend("webgpu");
    }
  });

  Deno.test(`action distributions: closed forms and sampling frequencies (${backend})`, async () => {
    mg.setBackend(backend);
    try {
      const logits = [[0.5, -1, 2], [0, 0, 0]];
      const cat = { kind: "categorical" as const, logits: mg.tensor(logits) };
      const probs = logits.map((row) => {
        const z = row.reduce((a, x) => a + Math.exp(x), 0);
        return row.map((x) => Math.exp(x) / z);
      });
      const a = mg.tensor([2, 1], { dtype: "i32" });
      assertAllClose(
        await actionLogProb(cat, a).toFloat64(),
        [
          Math.log(probs[0][2]),
          Math.log(probs[1][1]),
        ],
        { rtol: 1e-5 },
        "categorical log-prob",
      );
      assertAllClose(
        await actionEntropy(cat).toFloat64(),
        probs.map((p) => -p.reduce((s, x) => s + x * Math.log(x), 0)),
        { rtol: 1e-5 },
        "categorical entropy",
      );
      const q = { kind: "categorical" as const, logits: mg.tensor([[0, 0, 0], [1, 0, -1]]) };
      const qz = [[0, 0, 0], [1, 0, -1]].map((row) => {
        const z = row.reduce((s, x) => s + Math.exp(x), 0);
        return row.map((x) => Math.exp(x) / z);
      });
      assertAllClose(
        await actionKl(cat, q).toFloat64(),
        probs.map((p, i) => p.reduce((s, x, j) => s + x * Math.log(x / qz[i][j]), 0)),
        { rtol: 1e-5, atol: 1e-7 },
        "categorical KL",
      );
      // sampling frequencies of row 0 over 4,000 draws (batched rows)
      const many = {
        kind: "categorical" as const,
        logits: mg.broadcastTo(mg.tensor([logits[0]]), [4000, 3]),
      };
      const draws = await sampleAction(many, mg.random.key(5)).toFloat64();
      const freq = [0, 1, 2].map((k) => draws.filter((x) => x === k).length / 4000);
      assertAllClose(freq, probs[0], { atol: 0.03 }, "categorical frequencies");
      // diagonal Gaussian: log N, entropy and KL in closed form; sample mean and spread
      const g = {
        kind: "gaussian" as const,
        mean: mg.tensor([[0.5, -1]]),
        logStd: mg.tensor([0.2, -0.3]),
      };
      const x = mg.tensor([[1, 0]]);
      const s = [Math.exp(0.2), Math.exp(-0.3)];
      const logN = [1 - 0.5, 0 + 1].reduce(
        (acc, d, i) => acc - 0.5 * (d / s[i]) ** 2 - Math.log(s[i]) - 0.5 * Math.log(2 * Math.PI),
        0,
      );
      assertAllClose(await actionLogProb(g, x).toFloat64(), [logN], { rtol: 1e-5 }, "log N");
      assertAllClose(
        await actionEntropy(g).toFloat64(),
        [s.reduce((acc, si) => acc + Math.log(si) + 0.5 * (1 + Math.log(2 * Math.PI)), 0)],
        { rtol: 1e-5 },
        "Gaussian entropy",
      );
      const h = { kind: "gaussian" as const, mean: mg.tensor([[0, 0]]), logStd: mg.tensor([0, 0]) };
      const kl = [0.5, -1].reduce(
        (acc, m, i) => acc + 0.5 * (s[i] ** 2 + m ** 2 - 1) - Math.log(s[i]),
        0,
      );
      assertAllClose(await actionKl(g, h).toFloat64(), [kl], { rtol: 1e-5 }, "Gaussian KL");
      const wide = { ...g, mean: mg.broadcastTo(g.mean, [4000, 2]) };
      const xs = await sampleAction(wide, mg.random.key(6)).toFloat64();
      for (let d = 0; d < 2; d++) {
        const col = [...xs].filter((_, i) => i % 2 === d);
        const mean = col.reduce((p, v) => p + v) / col.length;
        const sd = Math.sqrt(col.reduce((p, v) => p + (v - mean) ** 2, 0) / col.length);
        assertAllClose([mean, sd], [[0.5, -1][d], s[d]], { atol: 0.06 }, `Gaussian dim ${d}`);
      }
    } finally {
      mg.setBackend("webgpu");
    }
  });
}

Deno.test("PPO's and A2C's losses equal their objectives spelt out", async () => {
  mg.setBackend("reference");
  try {
    const net = actorCritic([3], { kind: "discrete", n: 2 }, { hidden: [5] });
    const params = net.init(mg.random.key(0));
    const N = 6;
    const obs = mg.tensor(randomValues([N, 3], "f32", 7), { shape: [N, 3] });
    const action = mg.tensor([0, 1, 1, 0, 1, 0], { dtype: "i32" });
    const oldLogProb = mg.tensor(randomValues([N], "f32", 8, -1.2, -0.3));
    const oldValue = mg.tensor(randomValues([N], "f32", 9));
    const advantage = mg.tensor(randomValues([N], "f32", 10));
    const target = mg.tensor(randomValues([N], "f32", 11));
    const batch = { obs, action, logProb: oldLogProb, value: oldValue, advantage, target };
    const cfg = { clip: 0.2, vfCoef: 0.5, entCoef: 0.01 };
    const [loss, kl, ent] = ppoLoss(net, params, batch, cfg);
    // by hand, from the network's outputs
    const { dist, value } = net.apply(params, obs);
    const logits = await (dist as { logits: Tensor }).logits.toFloat64();
    const v = await value.toFloat64();
    const [acts, lp0, v0, adv, tgt] = await Promise.all(
      [action, oldLogProb, oldValue, advantage, target].map((t) => t.toFloat64()),
    );
    const meanA = adv.reduce((p, x) => p + x) / N;
    const sdA = Math.sqrt(adv.reduce((p, x) => p + (x - meanA) ** 2, 0) / N);
    let surrogate = 0, valueLoss = 0, entropy = 0, approx = 0;
    for (let i = 0; i < N; i++) {
      const l = [logits[2 * i], logits[2 * i + 1]];
      const z = Math.log(Math.exp(l[0]) + Math.exp(l[1]));
      const logp = l[acts[i]] - z;
      const r = Math.exp(logp - lp0[i]);
      const a = (adv[i] - meanA) / (sdA + 1e-8);
      surrogate += Math.min(r * a, Math.min(Math.max(r, 0.8), 1.2) * a) / N;
      const vc = v0[i] + Math.min(Math.max(v[i] - v0[i], -0.2), 0.2);
      valueLoss += 0.5 * Math.max((v[i] - tgt[i]) ** 2, (vc - tgt[i]) ** 2) / N;
      entropy += -[0, 1].reduce((p, k) => p + Math.exp(l[k] - z) * (l[k] - z), 0) / N;
      approx += (r - 1 - (logp - lp0[i])) / N;
    }
    // A2C's: the plain policy gradient on raw advantages and a squared value error
    let pg = 0, mse = 0;
    for (let i = 0; i < N; i++) {
      const l = [logits[2 * i], logits[2 * i + 1]];
      const z = Math.log(Math.exp(l[0]) + Math.exp(l[1]));
      pg -= (l[acts[i]] - z) * adv[i] / N;
      mse += (v[i] - tgt[i]) ** 2 / N;
    }
    const [a2cValue, , a2cEntropy] = a2cLoss(net, params, batch, { vfCoef: 0.5, entCoef: 0.01 });
    assertAllClose([await a2cValue.item()], [pg + 0.5 * mse - 0.01 * entropy], {
      rtol: 1e-6,
      atol: 1e-9,
    }, "A2C loss");
    assertAllClose(
      [await loss.item(), await kl.item(), await ent.item(), await a2cEntropy.item()],
      [-surrogate + 0.5 * valueLoss - 0.01 * entropy, approx, entropy, entropy],
      { rtol: 1e-6, atol: 1e-9 }, // (scalar constants such as 1 ± ε are f32 on the reference backend too)
      "PPO loss",
    );
    // the unclipped value losses, on targets spread past the Huber loss's knee (|V − R| = 1)
    const wide = { ...batch, target: mg.mul(target, 3) };
    const errors = v.map((x, i) => x - 3 * tgt[i]);
    if (!errors.some((e) => Math.abs(e) < 1) || !errors.some((e) => Math.abs(e) > 1)) {
      throw new Error(`the case should reach both sides of the knee: ${errors}`);
    }
    const rest = -surrogate - 0.01 * entropy;
    const huber = errors.reduce((p, e) => p + (Math.abs(e) < 1 ? e * e / 2 : Math.abs(e) - 0.5), 0);
    const squared = errors.reduce((p, e) => p + e * e / 2, 0);
    for (const [kind, expected] of [["huber", huber / N], ["squared", squared / N]] as const) {
      const [got] = ppoLoss(net, params, wide, { ...cfg, valueLoss: kind });
      assertAllClose([await got.item()], [rest + 0.5 * expected], {
        rtol: 1e-6,
        atol: 1e-9,
      }, `PPO loss, ${kind} value loss`);
    }
    assertThrowsWith(
      () => ppoLoss(net, params, wide, { ...cfg, valueLoss: "mse" as never }),
      "ppoObjective",
      "valueLoss",
      "huber",
    );
  } finally {
    mg.setBackend("webgpu");
  }
});

Deno.test("PPO and A2C: the jitted, donating update on WebGPU equals the plain float64 one (CartPole, Pendulum)", async () => {
  await mg.init();
  for (const [env, learner] of [[cartPole(), ppo], [pendulum(), ppo], [cartPole(), a2c]] as const) {
    const config = { env, numEnvs: 2, numSteps: 16, epochs: 2, minibatches: 2, hidden: [8] };
    // sampled actions are identical bits; continuous dynamics drift at f32 rounding
    await assertJittedUpdatesMatchFloat64(() => learner(config), env.name);
  }
});

Deno.test("PPO on CartPole learns: 30 updates lift the mean episode return well above random", async () => {
  const learner = ppo({ env: cartPole(), totalSteps: 4 * 128 * 30 });
  const update = mg.jit(learner.update, { donateArgnums: [0] });
  let state = learner.init(mg.random.key(0));
  let metrics;
  for (let i = 0; i < learner.updates; i++) [state, metrics] = update(state);
  const ret = await metrics!.episodeReturn.item();
  // a random policy's episodes last ~22 steps
  if (!(ret > 60)) throw new Error(`mean episode return ${ret} after 30 updates`);
});

Deno.test("PPO refuses bad configurations clearly", () => {
  assertThrowsWith(() => ppo({} as never), "ppo", "env", "required");
  assertThrowsWith(() => ppo({ env: cartPole(), lr: NaN }), "ppo", "lr");
  assertThrowsWith(() => ppo({ env: cartPole(), minibatches: 3 }), "ppo", "divide");
  assertThrowsWith(() => ppo({ env: cartPole(), gamma: 1.5 }), "ppo", "gamma");
  assertThrowsWith(() => ppo({ env: cartPole(), numEnv: 4 } as never), "ppo", '"numEnv"');
});

/** Solve A x = b (n×n, row-major) by Gaussian elimination with partial pivoting, in float64. */
function solve(a: number[], b: number[], n: number): number[] {
  const m = a.map((v) => v), x = b.map((v) => v);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r * n + c]) > Math.abs(m[p * n + c])) p = r;
    for (let k = 0; k < n; k++) [m[c * n + k], m[p * n + k]] = [m[p * n + k], m[c * n + k]];
    [x[c], x[p]] = [x[p], x[c]];
    for (let r = c + 1; r < n; r++) {
      const f = m[r * n + c] / m[c * n + c];
      for (let k = c; k < n; k++) m[r * n + k] -= f * m[c * n + k];
      x[r] -= f * x[c];
    }
  }
  for (let r = n - 1; r >= 0; r--) {
    let s = x[r];
    for (let k = r + 1; k < n; k++) s -= m[r * n + k] * x[k];
    x[r] = s / m[r * n + r];
  }
  return x;
}

Deno.test("conjugate gradient solves a Fisher system to 1e-3 against an explicit matrix; the linear baseline equals a float64 ridge solve", async () => {
  mg.setBackend("reference");
  try {
    // a small Gaussian policy: F = ∇² mean KL(π_old ‖ π_θ) at θ_old, as TRPO uses it
    const net = actorCritic([2], { kind: "box", shape: [2], low: -1, high: 1 }, {
      hidden: [4],
      critic: false,
    });
    const params = net.init(mg.random.key(1));
    const obs = mg.random.normal(mg.random.key(2), [32, 2]);
    const [theta, unravel] = ravelTree(params);
    const old = net.apply(params, obs).dist;
    const meanKl = (v: Tensor) => mg.mean(actionKl(old, net.apply(unravel(v), obs).dist));
    const n = theta.size;
    const damping = 0.1;
    const fisher = await mg.hessian(meanKl)(theta).toFloat64();
    const dense = [...fisher].map((v, i) => v + (i % (n + 1) === 0 ? damping : 0));
    const g = mg.random.normal(mg.random.key(3), [n]);
    const exact = solve(dense, [...await g.toFloat64()], n);
    const fvp = (v: Tensor) => mg.add(mg.hvp(meanKl, theta, v), mg.mul(v, damping));
    const x = await conjugateGradient(fvp, g, { iterations: n }).toFloat64();
    const err = Math.hypot(...x.map((v, i) => v - exact[i])) / Math.hypot(...exact);
    if (!(err < 1e-3)) throw new Error(`CG relative error ${err}`);

    // the linear feature baseline: the ridge normal equations solved in float64 by hand
    const T = 6, B = 3, d = 2, k = 2 * d + 4;
    const o = mg.random.normal(mg.random.key(4), [T, B, d]);
    const steps = mg.random.randint(mg.random.key(5), [T, B], 0, 50);
    const returns = mg.random.normal(mg.random.key(6), [T, B]);
    const w = await fitLinearBaseline(o, steps, returns, 1e-3).toFloat64();
    const [ov, sv, rv] = await Promise.all([o, steps, returns].map((t) => t.toFloat64()));
    const rows = Array.from({ length: T * B }, (_, i) => {
      const ob = [...ov.slice(i * d, (i + 1) * d)].map((v) => Math.min(Math.max(v, -10), 10));
      const t = sv[i] / 100;
      return [...ob, ...ob.map((v) => v * v), t, t * t, t * t * t, 1];
    });
    const gram = Array.from(
      { length: k * k },
      (_, i) =>
        rows.reduce((s, r) => s + r[Math.floor(i / k)] * r[i % k], 0) +
        (i % (k + 1) === 0 ? 1e-3 : 0),
    );
    const rhs = Array.from({ length: k }, (_, j) => rows.reduce((s, r, i) => s + r[j] * rv[i], 0));
    assertAllClose(w, solve(gram, rhs, k), { rtol: 1e-6, atol: 1e-8 }, "baseline weights");
  } finally {
    mg.setBackend("webgpu");
  }
});

Deno.test("TRPO: the jitted update on WebGPU equals the plain float64 one, and no step exceeds the KL bound", async () => {
  await mg.init();
  const config = {
    env: pointNavigation(),
    tasks: { goal: mg.tensor([[0.3, -0.4]], { backend: "reference" }) },
    numEnvs: 4,
    numSteps: 20,
    hidden: [8],
    maxKl: 0.01,
  };
  mg.setBackend("reference");
  const plain = trpo(config);
  let refState = plain.init(mg.random.key(5));
  mg.setBackend("webgpu");
  const compiled = trpo({ ...config, tasks: await onBackend(config.tasks, "webgpu") });
  const update = mg.jit(compiled.update, { donateArgnums: [0] });
  let gpuState = await onBackend(refState, "webgpu");
  for (let u = 1; u <= 3; u++) {
    mg.setBackend("reference");
    const [r, rm] = plain.update(refState);
    mg.setBackend("webgpu");
    const [g, gm] = update(gpuState);
    // the first update from identical parameters: f32 against float64 through CG. (Later ones
    // start from parameters already a rounding apart, which CG on a Fisher matrix amplifies.)
    if (u === 1) {
      await assertTreesClose(g.params, r.params, "TRPO params after one update", {
        rtol: 2e-3,
        atol: 2e-4,
      });
    }
    for (const [m, where] of [[rm, "reference"], [gm, "webgpu"]] as const) {
      const kl = await m.kl.item(), fraction = await m.stepFraction.item();
      if (kl > 0.01 * 1.001) throw new Error(`${where} update ${u}: KL ${kl} over the bound`);
      if (fraction > 0 && !((await m.improvement.item()) > 0)) {
        throw new Error(`${where} update ${u}: a step accepted without improvement`);
      }
    }
    [refState, gpuState] = [r, g];
  }
});

Deno.test("replay buffer: a ring of transitions written and sampled on the device, like a list by hand", async () => {
  for (const backend of ["webgpu", "reference"] as const) {
    mg.setBackend(backend);
    try {
      let buf = replayBuffer({ x: mg.zeros([2]), r: mg.zeros([]) }, 5);
      const expected: number[][] = [];
      let position = 0;
      for (const [n, base] of [[3, 10], [4, 20], [2, 30]]) {
        const rows = Array.from({ length: n }, (_, i) => [base + i, -(base + i)]);
        buf = addTransitions(buf, {
          x: mg.tensor(rows),
          r: mg.tensor(rows.map((r) => r[0] / 10)),
        });
        for (const row of rows) {
          expected[position] = row;
          position = (position + 1) % 5;
        }
      }
      assertAllClose(await buf.data.x.toFloat64(), expected.flat(), { rtol: 0, atol: 0 }, "rows");
      if ((await buf.position.item()) !== position || (await buf.size.item()) !== 5) {
        throw new Error(
          `${backend}: position ${await buf.position.item()} size ${await buf.size.item()}`,
        );
      }
      // samples come from the filled rows only, each a stored (x, r) pair
      const small = addTransitions(replayBuffer({ x: mg.zeros([2]), r: mg.zeros([]) }, 8), {
        x: mg.tensor([[1, -1], [2, -2], [3, -3]]),
        r: mg.tensor([0.1, 0.2, 0.3]),
      });
      const s = sampleTransitions(small, mg.random.key(3), 300);
      const xs = await s.x.toFloat64(), rs = await s.r.toFloat64();
      const seen = new Set<number>();
      for (let i = 0; i < 300; i++) {
        if (![1, 2, 3].includes(xs[2 * i]) || xs[2 * i + 1] !== -xs[2 * i]) {
          throw new Error(`${backend}: sampled row ${xs[2 * i]}, ${xs[2 * i + 1]}`);
        }
        assertAllClose([rs[i]], [xs[2 * i] / 10], { rtol: 1e-6 }, "pairs stay together");
        seen.add(xs[2 * i]);
      }
      if (seen.size !== 3) throw new Error(`${backend}: only rows ${[...seen]} sampled`);
    } finally {
      mg.setBackend("webgpu");
    }
  }
  assertThrowsWith(
    () => addTransitions(replayBuffer({ x: mg.zeros([2]) }, 4), { x: mg.zeros([5, 2]) }),
    "addTransitions",
    "5 transitions",
  );
});

Deno.test("SAC: the jitted training chunk on WebGPU equals the plain float64 one", async () => {
  await mg.init();
  const config = { env: pendulum(), hidden: [8], batchSize: 16, bufferSize: 64 };
  mg.setBackend("reference");
  const plain = sac(config);
  let refState = plain.explore(plain.init(mg.random.key(2)), 20);
  mg.setBackend("webgpu");
  const compiled = sac(config);
  const train = mg.jit(compiled.train, { staticArgnums: [1], donateArgnums: [0] });
  let gpuState = await onBackend(refState, "webgpu");
  mg.setBackend("reference");
  const [r, rm] = plain.train(refState, 3);
  mg.setBackend("webgpu");
  const [g, gm] = train(gpuState, 3);
  await assertTreesClose(g.params, r.params, "SAC networks after 3 steps", {
    rtol: 2e-3,
    atol: 2e-4,
  });
  await assertTreesClose(g.target, r.target, "SAC targets", { rtol: 2e-3, atol: 2e-4 });
  // (the losses are differences of similar terms, so their f32 rounding shows more)
  await assertTreesClose(gm, rm, "SAC metrics", { rtol: 2e-2, atol: 2e-3 });
  [refState, gpuState] = [r, g];
  // the temperature moves toward the entropy target; the buffer holds 20 + 3 transitions
  if ((await g.buffer.size.item()) !== 23) throw new Error("buffer size");
  assertThrowsWith(() => sac({ env: cartPole() }), "sac", "discrete");
  // the entropy target is −1 per dimension of the box rescaled to [−1, 1], in the box's units:
  // on the point robot's ±0.1 box, −2 (its old default) lies above the box's largest entropy,
  // 2 log 0.2 ≈ −3.22, and the temperature grew without bound (a uniformly random policy)
  const box = pointNavigation({ goals: "semicircle" });
  assertAllClose([sac({ env: box }).config.targetEntropy], [2 * (Math.log(0.1) - 1)], {
    rtol: 1e-12,
  }, "point robot entropy target");
  assertAllClose([sac({ env: pendulum() }).config.targetEntropy], [Math.log(2) - 1], {
    rtol: 1e-12,
  }, "Pendulum entropy target");
  assertThrowsWith(() => sac({ env: box, targetEntropy: -2 }), "sac", "targetEntropy -2", "-3.219");
  assertThrowsWith(() => pearl({ env: box, targetEntropy: -3 }), "pearl", "largest entropy");
  // several environments of an environment with tasks: one task row per environment
  const nav = sac({
    env: pointNavigation({ goals: "semicircle", horizon: 3 }),
    numEnvs: 3,
    hidden: [8],
    batchSize: 8,
    bufferSize: 64,
  });
  const [navState] = nav.train(nav.explore(nav.init(mg.random.key(4)), 5), 2);
  if ((await navState.buffer.size.item()) !== 21) throw new Error("3 environments × 7 steps");
  // every stored next observation is where the step went, x + clip(a, ±0.1) — also at the time
  // limits (steps 3 and 6), where the environment itself restarted at the origin
  const rows = navState.buffer.data;
  const [obs, next, act] = await Promise.all(
    [rows.obs, rows.nextObs, rows.action].map((t) => mg.slice(t, [[0, 21]]).toFloat64()),
  );
  assertAllClose(
    Array.from(next),
    Array.from(obs, (x, i) => x + Math.min(0.1, Math.max(-0.1, act[i]))),
    { rtol: 1e-5, atol: 1e-6 },
    "SAC next observations across time limits",
  );
});

Deno.test("recurrent rollouts carry the GRU state step to step, reset at episode ends when asked", async () => {
  await mg.init();
  const env = cartPole();
  const ac = recurrentActorCritic(env.observationShape, env.actionSpace, { hidden: 6 });
  const params = ac.init(mg.random.key(0));
  const B = 4, T = 40;
  for (const reset of [true, false]) {
    const [, last, tr] = mg.jit((key: Tensor) =>
      recurrentRolloutFrom(
        env,
        ac.policy,
        params,
        resetEnvs(env, {}, key, B),
        ac.initialHidden(B),
        {},
        key,
        T,
        reset ? { resetTo: ac.initialHidden(B) } : {},
      )
    )(mg.random.key(1));
    // replay every step by hand: h[t+1] = done[t] && reset ? 0 : GRU(h[t], obs[t])
    const expected = mg.stack(
      Array.from({ length: T }, (_, t) => {
        const h = ac.apply(params, mg.slice(tr.obs, [t]), mg.slice(tr.hidden, [t])).hidden;
        return reset ? mg.where(mg.reshape(mg.slice(tr.done, [t]), [B, 1]), 0, h) : h;
      }),
    );
    const recorded = mg.concat([mg.slice(tr.hidden, [[1, T]]), mg.expandDims(last, 0)], 0);
    assertAllClose(await recorded.toFloat64(), await expected.toFloat64(), {
      rtol: 1e-5,
      atol: 1e-6,
    }, `hidden states (reset ${reset})`);
    const dones = await tr.done.toFloat64();
    if (!dones.some((d) => d)) throw new Error("no episode ended: the reset went unchecked");
  }
});

Deno.test("VPG (REINFORCE with the linear baseline): jitted WebGPU equals float64, and 10 updates learn", async () => {
  await mg.init();
  const config = { env: pointNavigation(), numEnvs: 4, numSteps: 20, hidden: [8] };
  const goal = [[0.3, -0.4]];
  mg.setBackend("reference");
  const plain = vpg({ ...config, tasks: { goal: mg.tensor(goal) } });
  const refState = plain.init(mg.random.key(5));
  const [r, rm] = plain.update(refState);
  mg.setBackend("webgpu");
  const compiled = vpg({ ...config, tasks: { goal: mg.tensor(goal) } });
  const update = mg.jit(compiled.update, { donateArgnums: [0] });
  const [g, gm] = update(await onBackend(refState, "webgpu"));
  await assertTreesClose(g.params, r.params, "VPG params after one update", {
    rtol: 2e-3,
    atol: 2e-4,
  });
  // (the loss averages log π against zero-mean advantages: a small difference of large terms)
  await assertTreesClose(gm.loss, rm.loss, "VPG loss", { rtol: 2e-2, atol: 5e-3 });
  // learning: from standing still (−50 over 100 steps) toward the optimum (−0.68)
  const learner = vpg({ env: pointNavigation(), tasks: { goal: mg.tensor(goal) } });
  const step = mg.jit(learner.update, { donateArgnums: [0] });
  let state = learner.init(mg.random.key(0));
  let ret = 0;
  for (let i = 0; i < 10; i++) {
    const [s, m] = step(state);
    state = s;
    if (i === 9) ret = await m.episodeReturn.item();
  }
  const normalised = (ret + 50) / (50 - 0.68);
  if (!(normalised > 0.5)) throw new Error(`normalised return ${normalised} after 10 updates`);
});

Deno.test("soft actor-critic pieces: the Bellman target and the actor's objective by hand", async () => {
  await mg.init();
  // r + γ(1 − d)(min(Q₁', Q₂') − α log π'): [1 + 0.9·(2 + 0.5), 0 + 0]
  const y = softBellmanTarget(
    mg.tensor([1, 0]),
    mg.tensor([0, 1]),
    mg.tensor([2, 5]),
    mg.tensor([3, 4]),
    mg.tensor([-1, 7]),
    mg.tensor(0.5),
    0.9,
  );
  assertAllClose(await y.toFloat64(), [3.25, 0], { rtol: 1e-6 });
  // mean(α log π − min(Q₁, Q₂)) = mean([−0.5 − 2, −1 − 1]); its gradient: α/n on log π, −1/n
  // on the smaller critic only, none on α
  const f = (lp: Tensor, q1: Tensor, q2: Tensor, a: Tensor) => softActorObjective(lp, q1, q2, a);
  const args: [Tensor, Tensor, Tensor, Tensor] = [
    mg.tensor([-1, -2]),
    mg.tensor([3, 1]),
    mg.tensor([2, 4]),
    mg.tensor(0.5),
  ];
  assertAllClose([await f(args[0], args[1], args[2], args[3]).item()], [-2.25], { rtol: 1e-6 });
  const grads = mg.grad(f, { argnums: [0, 1, 2, 3] })(...args) as Tensor[];
  const want = [[0.25, 0.25], [0, -0.5], [-0.5, 0], [0]];
  for (let i = 0; i < 4; i++) assertAllClose(await grads[i].toFloat64(), want[i], { atol: 1e-6 });
});
