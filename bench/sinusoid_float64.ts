/**
 * An independent float64 MAML for the sinusoid acceptance configuration (issue #6), written out
 * by hand in plain TypeScript: no metagrad autodiff, vmap, jit or WebGPU in the training. It
 * tells implementation error apart from what the configuration itself reaches: run it beside
 * `bench/sinusoid_report.ts` and compare the post-adaptation MSEs on the same test tasks.
 *
 * Configuration: 1-40-40-1 ReLU MLP (PyTorch's default init, or Glorot), 25 tasks of K = 10
 * support + 10 query points per meta-step, one inner SGD step at α = 0.01, Adam 1e-3. The
 * second-order term (I − α·H_support)·∇L_query is a Hessian-vector product taken as a central
 * difference of the support gradient with the ReLU pattern held fixed: with the pattern fixed the
 * gradient is a polynomial in the weights, so the difference is exact to rounding (without
 * fixing it, a step that crosses a ReLU kink returns an O(1/ε) spike, which stalls Adam).
 * `--help` lists the options.
 *
 * Training tasks come from this script's own generator (xorshift128+); scoring uses
 * metagrad's test sets shared with `bench/sinusoid_report.ts` (`bench/sinusoid_test_sets.ts`),
 * so the two scripts' figures are directly comparable.
 */
import { choiceOption, numberOption, parseCommandLine } from "../core/command_line.ts";
import * as mg from "../mod.ts";
import { sampleSinusoid } from "../envs/mod.ts";
import { summarize } from "../algorithms/mod.ts";
import { TEST_SETS, type TestSet } from "./sinusoid_test_sets.ts";

const USAGE = `usage: deno run -A bench/sinusoid_float64.ts [--steps 10000] [--seeds 0,1,2]
    [--first-order] [--init torch|glorot]`;

const { values } = parseCommandLine(USAGE, {
  options: {
    steps: { type: "string", default: "10000" },
    seeds: { type: "string", default: "0" },
    "first-order": { type: "boolean", default: false },
    init: { type: "string", default: "torch" },
  },
});
const steps = numberOption("--steps", values.steps, USAGE, { integer: true, min: 1 });
const seeds = values.seeds.split(",").map((s) =>
  numberOption("--seeds", s, USAGE, { integer: true, min: 0 })
);
const firstOrder = values["first-order"];
const init = choiceOption("--init", values.init, ["torch", "glorot"], USAGE);

const SIZES = [1, 40, 40, 1];
const ALPHA = 0.01, TASKS = 25, K = 10, HVP_EPS = 1e-4;

/** xorshift128+ seeded through splitmix64's mixer; uniform doubles in [0, 1). */
function generator(seed: number): () => number {
  let s0 = 0n, s1 = 0n;
  let z = BigInt(seed) + 0x9e3779b97f4a7c15n;
  const mix = () => {
    z = (z + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
    let x = z;
    x = ((x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
    x = ((x ^ (x >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
    return x ^ (x >> 31n);
  };
  s0 = mix();
  s1 = mix();
  return () => {
    let x = s0;
    const y = s1;
    s0 = y;
    x = (x ^ (x << 23n)) & 0xffffffffffffffffn;
    s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return Number(((s1 + y) & 0xffffffffffffffffn) >> 11n) / 2 ** 53;
  };
}

/** Parameters as one flat Float64Array per leaf: [W0, b0, W1, b1, W2, b2], W as [in, out]. */
type Params = Float64Array[];

function initParams(rand: () => number, kind: string): Params {
  const ps: Params = [];
  for (let l = 0; l + 1 < SIZES.length; l++) {
    const fanIn = SIZES[l], fanOut = SIZES[l + 1];
    const bound = kind === "torch" ? 1 / Math.sqrt(fanIn) : Math.sqrt(6 / (fanIn + fanOut));
    const w = new Float64Array(fanIn * fanOut).map(() => (2 * rand() - 1) * bound);
    const b = new Float64Array(fanOut).map(() => kind === "torch" ? (2 * rand() - 1) * bound : 0);
    ps.push(w, b);
  }
  return ps;
}

/** The ReLU on/off pattern of every hidden unit at every point, per hidden layer. */
type Pattern = Uint8Array[];

/**
 * Mean squared error of the MLP on (x, y) and its gradient. With `fixed`, the ReLUs follow that
 * pattern instead of their inputs' signs (used for the Hessian-vector product); `record`
 * receives the pattern this call saw.
 */
function lossAndGrad(
  ps: Params,
  x: Float64Array,
  y: Float64Array,
  fixed?: Pattern,
  record?: Pattern,
): [number, Params] {
  const n = x.length, layers = SIZES.length - 1;
  const acts: Float64Array[] = [x];
  const masks: Uint8Array[] = [];
  let h = x;
  for (let l = 0; l < layers; l++) {
    const fi = SIZES[l], fo = SIZES[l + 1], w = ps[2 * l], b = ps[2 * l + 1];
    const z = new Float64Array(n * fo);
    for (let p = 0; p < n; p++) {
      for (let j = 0; j < fo; j++) {
        let s = b[j];
        for (let i = 0; i < fi; i++) s += h[p * fi + i] * w[i * fo + j];
        z[p * fo + j] = s;
      }
    }
    if (l < layers - 1) {
      const m = fixed ? fixed[l] : new Uint8Array(n * fo).map((_, k) => z[k] > 0 ? 1 : 0);
      for (let k = 0; k < z.length; k++) z[k] *= m[k];
      masks.push(m);
    }
    acts.push(z);
    h = z;
  }
  record?.push(...masks);
  let loss = 0;
  let d = new Float64Array(n);
  for (let p = 0; p < n; p++) {
    const e = h[p] - y[p];
    loss += e * e / n;
    d[p] = 2 * e / n;
  }
  const grads: Params = new Array(ps.length);
  for (let l = layers - 1; l >= 0; l--) {
    const fi = SIZES[l], fo = SIZES[l + 1], w = ps[2 * l], a = acts[l];
    if (l < layers - 1) { for (let k = 0; k < d.length; k++) d[k] *= masks[l][k]; }
    const gw = new Float64Array(fi * fo), gb = new Float64Array(fo);
    const prev = new Float64Array(n * fi);
    for (let p = 0; p < n; p++) {
      for (let j = 0; j < fo; j++) {
        const dj = d[p * fo + j];
        if (dj === 0) continue;
        gb[j] += dj;
        for (let i = 0; i < fi; i++) {
          gw[i * fo + j] += a[p * fi + i] * dj;
          prev[p * fi + i] += w[i * fo + j] * dj;
        }
      }
    }
    grads[2 * l] = gw;
    grads[2 * l + 1] = gb;
    d = prev;
  }
  return [loss, grads];
}

const axpy = (ps: Params, a: number, vs: Params): Params =>
  ps.map((p, i) => p.map((v, k) => v + a * vs[i][k]));

interface Task {
  xs: Float64Array;
  ys: Float64Array;
  xq: Float64Array;
  yq: Float64Array;
}

/** One task's query loss after one inner step and the gradient of it with respect to θ. */
function taskMetaGrad(ps: Params, t: Task): [number, Params] {
  const pattern: Pattern = [];
  const [, gs] = lossAndGrad(ps, t.xs, t.ys, undefined, pattern);
  const adapted = axpy(ps, -ALPHA, gs);
  const [lq, gq] = lossAndGrad(adapted, t.xq, t.yq);
  if (firstOrder) return [lq, gq];
  const [, gPlus] = lossAndGrad(axpy(ps, HVP_EPS, gq), t.xs, t.ys, pattern);
  const [, gMinus] = lossAndGrad(axpy(ps, -HVP_EPS, gq), t.xs, t.ys, pattern);
  return [
    lq,
    gq.map((g, i) => g.map((v, k) => v - ALPHA * (gPlus[i][k] - gMinus[i][k]) / (2 * HVP_EPS))),
  ];
}

function sampleTask(rand: () => number): Task {
  const amp = 0.1 + 4.9 * rand(), phase = Math.PI * rand();
  const xs = new Float64Array(K).map(() => -5 + 10 * rand());
  const xq = new Float64Array(K).map(() => -5 + 10 * rand());
  const f = (x: Float64Array) => x.map((v) => amp * Math.sin(v - phase));
  return { xs, ys: f(xs), xq, yq: f(xq) };
}

/** Query MSE after `k` inner steps, per task. */
function scoreTasks(ps: Params, tasks: Task[], k: number): number[] {
  return tasks.map((t) => {
    let p = ps;
    for (let s = 0; s < k; s++) p = axpy(p, -ALPHA, lossAndGrad(p, t.xs, t.ys)[1]);
    return lossAndGrad(p, t.xq, t.yq)[0];
  });
}

function summary(v: number[]): string {
  const { mean, ci95 } = summarize(v);
  return `${mean.toFixed(3)} ± ${ci95.toFixed(3)}`;
}

/** metagrad's test tasks, read back to float64 (the same draws sinusoid_report scores on). */
async function metagradTasks({ key, opts }: TestSet): Promise<Task[]> {
  const b = sampleSinusoid(mg.random.key(key), opts);
  const [xs, ys, xq, yq] = await Promise.all([b.xs, b.ys, b.xq, b.yq].map((t) => t.toFloat64()));
  const k = opts.shots; // queries default to the shots
  return Array.from({ length: opts.tasks }, (_, i) => ({
    xs: xs.slice(i * k, (i + 1) * k),
    ys: ys.slice(i * k, (i + 1) * k),
    xq: xq.slice(i * k, (i + 1) * k),
    yq: yq.slice(i * k, (i + 1) * k),
  }));
}

/**
 * Check the hand-written meta-gradient once against central differences of the meta-loss along
 * a random direction (the meta-loss itself uses the true ReLUs, not a fixed pattern).
 */
function checkMetaGradient(): void {
  const rand = generator(99);
  const ps = initParams(rand, init);
  const task = sampleTask(rand);
  const dir = ps.map((p) => p.map(() => 2 * rand() - 1));
  const metaLoss = (q: Params) =>
    lossAndGrad(axpy(q, -ALPHA, lossAndGrad(q, task.xs, task.ys)[1]), task.xq, task.yq)[0];
  const h = 1e-6;
  const fd = (metaLoss(axpy(ps, h, dir)) - metaLoss(axpy(ps, -h, dir))) / (2 * h);
  const g = taskMetaGrad(ps, task)[1];
  const analytic = g.reduce((s, gi, i) => s + gi.reduce((t, x, k) => t + x * dir[i][k], 0), 0);
  console.log(
    `meta-gradient check: central difference ${fd.toFixed(6)}, hand-written ${analytic.toFixed(6)}`,
  );
  if (!firstOrder && Math.abs(fd - analytic) > 1e-4 * Math.max(1, Math.abs(fd))) {
    throw new Error("sinusoid_float64: the meta-gradient disagrees with finite differences");
  }
}

checkMetaGradient();
const info = await mg.init();
const test = await metagradTasks(TEST_SETS.test);
const iidTest = await metagradTasks(TEST_SETS.iidTest);
const wideTest = await metagradTasks(TEST_SETS.wideTest);
const rows: string[] = [];
for (const seed of seeds) {
  const rand = generator(seed);
  let ps = initParams(rand, init);
  const m = ps.map((p) => new Float64Array(p.length));
  const v = ps.map((p) => new Float64Array(p.length));
  const t0 = performance.now();
  let recent = 0, recentSteps = 0;
  for (let step = 1; step <= steps; step++) {
    const sums = ps.map((p) => new Float64Array(p.length));
    let loss = 0;
    for (let t = 0; t < TASKS; t++) {
      const [l, g] = taskMetaGrad(ps, sampleTask(rand));
      loss += l / TASKS;
      g.forEach((gi, i) => gi.forEach((x, k) => (sums[i][k] += x / TASKS)));
    }
    recent += loss;
    recentSteps++;
    const c1 = 1 - 0.9 ** step, c2 = 1 - 0.999 ** step;
    ps = ps.map((p, i) =>
      p.map((value, k) => {
        const g = sums[i][k];
        m[i][k] = 0.9 * m[i][k] + 0.1 * g;
        v[i][k] = 0.999 * v[i][k] + 0.001 * g * g;
        return value - 1e-3 * (m[i][k] / c1) / (Math.sqrt(v[i][k] / c2) + 1e-8);
      })
    );
    if (step % 1000 === 0 || step === steps) {
      const rate = step / ((performance.now() - t0) / 1000);
      console.log(
        `seed ${seed} step ${step}/${steps}: mean meta-loss ${
          (recent / recentSteps).toFixed(3)
        }, ` +
          `1 step on 4,096 tasks ${summary(scoreTasks(ps, wideTest, 1))}, ${
            rate.toFixed(0)
          } steps/s`,
      );
      recent = 0;
      recentSteps = 0;
    }
  }
  rows.push(
    `| ${firstOrder ? "first" : "second"} order, ${init} init | ${seed} | ${
      summary(scoreTasks(ps, test, 1))
    } | ${summary(scoreTasks(ps, iidTest, 1))} | ${summary(scoreTasks(ps, wideTest, 1))} | ${
      summary(scoreTasks(ps, wideTest, 10))
    } | ${((performance.now() - t0) / 1000).toFixed(0)} s |`,
  );
}
console.log(
  `\nfloat64 MAML in plain TypeScript, ${steps} meta-steps; test tasks drawn by metagrad on ` +
    info.description,
);
console.log(
  "| float64 MAML | seed | 1 step, 100 stratified tasks | 1 step, 100 independent tasks | " +
    "1 step, 4,096 tasks | 10 steps, 4,096 tasks | time |",
);
console.log("|---|---|---|---|---|---|---|");
for (const r of rows) console.log(r);
