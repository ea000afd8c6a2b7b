/**
 * Every learner's compiled path against its plain one, and the MAML family against an
 * inner loop written out by hand:
 * - the jitted, donating `metaStep` on WebGPU equals the un-jitted step on the reference
 *   backend (float64) for the same state and batch — every leaf of the new state and the
 *   metrics, two steps in a row (so the optimizer state and a reused program are covered);
 * - MAML (second and first order), Meta-SGD and ANIL against `grad` on a two-layer network
 *   written here with the update spelt out — not `learner.adapt` — including Meta-SGD's
 *   meta-update of its rates in closed form; `evaluate`'s mean ± CI against a hand computation.
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import {
  anil,
  type LearnedLr,
  maml,
  matchingNet,
  metaSgd,
  protoNet,
  reptile,
  type TaskBatch,
} from "../algorithms/mod.ts";
import { sampleSinusoid } from "../envs/mod.ts";
import { assertAllClose, assertTreesClose, onBackend } from "./helpers.ts";

const { nn } = mg;
const mlp = () => nn.mlp([1, 8, 1], { activation: mg.tanh });
const embedding = () => nn.mlp([6, 8, 5], { activation: mg.tanh });

/** A few-shot classification batch: tasks × (ways · 2) examples of 6 features, labels in order. */
function episodes(key: Tensor, tasks = 2, ways = 3): TaskBatch {
  const [k1, k2] = mg.random.split(key);
  const labels = mg.tile(mg.repeat(mg.arange(ways), 2), [tasks, 1]); // [tasks, ways · 2]
  const centers = mg.random.normal(k1, [tasks, ways, 6]);
  const around = (k: Tensor) =>
    mg.add(
      mg.repeat(centers, 2, 1),
      mg.mul(mg.random.normal(k, [tasks, ways * 2, 6]), 0.3),
    );
  const [ka, kb] = mg.random.split(k2);
  return { xs: around(ka), ys: labels, xq: around(kb), yq: labels };
}

interface Case {
  name: string;
  // deno-lint-ignore no-explicit-any
  make: (jit: boolean) => { init(key: Tensor): any; metaStep(s: any, b: TaskBatch): [any, any] };
  batch: (key: Tensor) => TaskBatch;
}

const regression = (key: Tensor) => sampleSinusoid(key, { tasks: 3, shots: 4 });
const outer = () => mg.optim.sgd(0.05);
const learnedModes: LearnedLr[] = ["perStep", "perLayer", "perStepPerLayer", "perParameter"];

const CASES: Case[] = [
  {
    name: "maml (second order, 2 steps)",
    make: (jit) =>
      maml({ model: mlp(), loss: "mse", innerSteps: 2, innerLr: 0.1, metaOptimizer: outer(), jit }),
    batch: regression,
  },
  {
    name: "maml (first order)",
    make: (jit) =>
      maml({
        model: mlp(),
        loss: "mse",
        innerSteps: 2,
        firstOrder: true,
        metaOptimizer: outer(),
        jit,
      }),
    batch: regression,
  },
  ...learnedModes.map((learnedLr): Case => ({
    name: `maml (learnedLr ${learnedLr})`,
    make: (jit) =>
      maml({ model: mlp(), loss: "mse", innerSteps: 2, learnedLr, metaOptimizer: outer(), jit }),
    batch: regression,
  })),
  {
    name: "metaSgd",
    make: (jit) => metaSgd({ model: mlp(), loss: "mse", metaOptimizer: outer(), jit }),
    batch: regression,
  },
  {
    name: "anil",
    make: (jit) => anil({ model: mlp(), loss: "mse", innerSteps: 2, metaOptimizer: outer(), jit }),
    batch: regression,
  },
  {
    name: "maml (classification, Adam)",
    make: (jit) =>
      maml({ model: embedding(), loss: "crossEntropy", innerLr: 0.2, innerSteps: 1, jit }),
    batch: episodes,
  },
  ...(["batched", "serial"] as const).map((mode): Case => ({
    name: `reptile (${mode})`,
    make: (jit) =>
      reptile({ model: mlp(), loss: "mse", innerSteps: 2, innerLr: 0.05, metaLr: 0.5, mode, jit }),
    batch: regression,
  })),
  {
    name: "protoNet",
    make: (jit) => protoNet({ embedding: embedding(), ways: 3, optimizer: outer(), jit }),
    batch: episodes,
  },
  {
    name: "matchingNet",
    make: (jit) => matchingNet({ embedding: embedding(), ways: 3, optimizer: outer(), jit }),
    batch: episodes,
  },
  {
    name: "matchingNet (full-context embeddings)",
    make: (jit) =>
      matchingNet({
        embedding: embedding(),
        ways: 3,
        fce: { features: 5, steps: 2 },
        optimizer: outer(),
        jit,
      }),
    batch: episodes,
  },
];

Deno.test("every learner: the jitted, donating metaStep on WebGPU equals the plain step in float64", async () => {
  await mg.init();
  for (const c of CASES) {
    mg.setBackend("reference");
    const plain = c.make(false);
    let refState = plain.init(mg.random.key(7));
    const batch = c.batch(mg.random.key(8));
    mg.setBackend("webgpu");
    const compiled = c.make(true);
    let gpuState = await onBackend(refState, "webgpu");
    const gpuBatch = await onBackend(batch, "webgpu");
    for (let step = 1; step <= 2; step++) {
      const [r, rm] = plain.metaStep(refState, batch);
      const [g, gm] = compiled.metaStep(gpuState, gpuBatch); // donates gpuState
      await assertTreesClose(g, r, `${c.name}: state after step ${step}`, {
        rtol: 1e-4,
        atol: 2e-5,
      });
      await assertTreesClose(gm, rm, `${c.name}: metrics of step ${step}`, {
        rtol: 1e-4,
        atol: 1e-5,
      });
      [refState, gpuState] = [r, g];
    }
  }
});

// ---------------------------------------------------------------- written out by hand

type Layer = { w: Tensor; b: Tensor };
/** nn.mlp([1, 8, 1]) with tanh, parameters in its layout: [dense, activation (null), dense]. */
type MlpParams = [Layer, null, Layer];

function forward(p: MlpParams, x: Tensor): Tensor {
  const h = mg.tanh(mg.add(mg.matmul(x, p[0].w), p[0].b));
  return mg.add(mg.matmul(h, p[2].w), p[2].b);
}

const mse = (p: MlpParams, x: Tensor, y: Tensor) => mg.mean(mg.square(mg.sub(forward(p, x), y)));
const leavesOf = (p: MlpParams): Tensor[] => [p[0].b, p[0].w, p[2].b, p[2].w]; // flatten order
const fromLeaves = (l: Tensor[]): MlpParams => [{ b: l[0], w: l[1] }, null, { b: l[2], w: l[3] }];
const task = (b: TaskBatch, i: number) => ({
  xs: mg.slice(b.xs, [i]),
  ys: mg.slice(b.ys, [i]),
  xq: mg.slice(b.xq, [i]),
  yq: mg.slice(b.yq, [i]),
});
const STRICT = { rtol: 1e-9, atol: 1e-12 };

/** k SGD steps θ ← θ − α ⊙ ∇L_support(θ) on the leaves `adapted` selects; rates per leaf. */
function handAdapt(
  p: MlpParams,
  xs: Tensor,
  ys: Tensor,
  steps: number,
  rate: (leaf: number, step: number) => Tensor | number,
  opts: { firstOrder?: boolean; adapted?: number[] } = {},
): MlpParams {
  const which = opts.adapted ?? [0, 1, 2, 3];
  let leaves = leavesOf(p);
  for (let s = 0; s < steps; s++) {
    const g = leavesOf(mg.grad(mse)(fromLeaves(leaves), xs, ys));
    leaves = leaves.map((l, j) => {
      if (!which.includes(j)) return l;
      const gj = opts.firstOrder ? mg.stopGradient(g[j]) : g[j];
      return mg.sub(l, mg.mul(gj, rate(j, s)));
    });
  }
  return fromLeaves(leaves);
}

Deno.test("MAML, first-order MAML, Meta-SGD and ANIL equal an inner loop written out by hand", async () => {
  mg.setBackend("reference");
  try {
    const batch = regression(mg.random.key(3));
    const tasks = [0, 1, 2].map((i) => task(batch, i));
    const meanOver = (f: (t: ReturnType<typeof task>) => Tensor) =>
      mg.div(tasks.map(f).reduce((a, b) => mg.add(a, b)), tasks.length);
    const sgdOne = mg.optim.sgd(1); // θ ← θ − ∇: the new state is the meta-gradient spelt out

    // MAML, second and first order, 2 steps at α = 0.1
    for (const firstOrder of [false, true]) {
      const learner = maml({
        model: mlp(),
        loss: "mse",
        innerSteps: 2,
        innerLr: 0.1,
        firstOrder,
        metaOptimizer: sgdOne,
        jit: false,
      });
      const state = learner.init(mg.random.key(4));
      const theta = state.params as MlpParams;
      const metaLoss = (p: MlpParams) =>
        meanOver((t) => mse(handAdapt(p, t.xs, t.ys, 2, () => 0.1, { firstOrder }), t.xq, t.yq));
      const g = mg.grad(metaLoss)(theta);
      const expected = leavesOf(theta).map((l, j) => mg.sub(l, leavesOf(g)[j]));
      const [next, metrics] = learner.metaStep(await onBackend(state, "reference"), batch);
      await assertTreesClose(
        leavesOf(next.params as MlpParams),
        expected,
        `MAML ${firstOrder ? "first" : "second"} order`,
        STRICT,
      );
      await assertTreesClose(metrics.loss, metaLoss(theta), "meta-loss", STRICT);
    }

    // Meta-SGD, one step: θ' = θ − α ⊙ ∇L_s(θ), and ∂L_q/∂α = −∇L_s(θ) ⊙ ∇L_q(θ') in closed form
    const msgd = metaSgd({
      model: mlp(),
      loss: "mse",
      innerLr: 0.05,
      metaOptimizer: sgdOne,
      jit: false,
    });
    const ms = msgd.init(mg.random.key(5));
    const theta = ms.params as MlpParams;
    const alphas = ms.lrs; // per leaf, θ's shapes
    const expectedAlphas = alphas.map((a) => a);
    for (const t of tasks) {
      const gs = leavesOf(mg.grad(mse)(theta, t.xs, t.ys));
      const adapted = fromLeaves(
        leavesOf(theta).map((l, j) => mg.sub(l, mg.mul(alphas[j], gs[j]))),
      );
      const gq = leavesOf(mg.grad(mse)(adapted, t.xq, t.yq));
      gs.forEach((g, j) => {
        // α ← α − (1/n)·(−g_s ⊙ g_q)
        expectedAlphas[j] = mg.add(expectedAlphas[j], mg.div(mg.mul(g, gq[j]), tasks.length));
      });
      // and the one-step value the learner adapts to is this θ'
      await assertTreesClose(
        leavesOf(msgd.adapt(ms, t) as MlpParams),
        leavesOf(adapted),
        "Meta-SGD θ'",
        STRICT,
      );
    }
    const [mNext] = msgd.metaStep(await onBackend(ms, "reference"), batch);
    await assertTreesClose(
      mNext.lrs,
      expectedAlphas,
      "Meta-SGD's rates after one meta-step",
      STRICT,
    );

    // ANIL, one step at α = 0.5: the head moves by −α∇_head L_s, the body does not
    const an = anil({ model: mlp(), loss: "mse", innerSteps: 1, innerLr: 0.5, jit: false });
    const as = an.init(mg.random.key(6));
    const t0 = tasks[0];
    const expected = handAdapt(as.params as MlpParams, t0.xs, t0.ys, 1, () => 0.5, {
      adapted: [2, 3],
    });
    await assertTreesClose(
      leavesOf(an.adapt(as, t0) as MlpParams),
      leavesOf(expected),
      "ANIL one step",
      STRICT,
    );
  } finally {
    mg.setBackend("webgpu");
  }
});

Deno.test("evaluate: mean ± 95% CI of the per-task losses after adaptation, by hand", async () => {
  mg.setBackend("reference");
  try {
    const learner = maml({ model: mlp(), loss: "mse", innerLr: 0.1, innerSteps: 1, jit: false });
    const state = learner.init(mg.random.key(9));
    const test = sampleSinusoid(mg.random.key(10), { tasks: 6, shots: 5 });
    const perTask: number[] = [];
    for (let i = 0; i < 6; i++) {
      const t = task(test, i);
      const adapted = handAdapt(state.params as MlpParams, t.xs, t.ys, 3, () => 0.1);
      perTask.push(await mse(adapted, t.xq, t.yq).item());
    }
    const mean = perTask.reduce((a, b) => a + b) / perTask.length;
    const sd = Math.sqrt(perTask.reduce((a, b) => a + (b - mean) ** 2, 0) / (perTask.length - 1));
    const { loss } = await learner.evaluate(state, test, 3);
    // (the jitted evaluation and the hand loop round their f32 constants alike; float64 sums)
    assertAllClose([loss.mean, loss.ci95, loss.n], [mean, 1.96 * sd / Math.sqrt(6), 6], {
      rtol: 1e-6,
      atol: 1e-12,
    });
  } finally {
    mg.setBackend("webgpu");
  }
});
