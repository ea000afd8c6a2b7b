/**
 * Few-shot algorithms: meta-gradients against finite differences and closed forms, batched
 * (vmap) against looped versions, episode sampling, and clear errors for bad input.
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import {
  anil,
  maml,
  type MamlState,
  matchingNet,
  mergeSummaries,
  metaSgd,
  metaTrain,
  protoNet,
  reptile,
  summarize,
  type TaskBatch,
} from "../algorithms/mod.ts";
import { sampleEpisodes, sampleSinusoid, sinusoidParameters } from "../envs/mod.ts";
import { assertAllClose, assertThrowsWith, assertTreesClose } from "./helpers.ts";

const STRICT = { rtol: 1e-9, atol: 1e-12 };

const { nn } = mg;
mg.setBackend("reference");
const v = async (x: unknown) => [...(await (x as Tensor).toFloat64())];
const leaves = (t: unknown) => mg.tree.leaves<Tensor>(t);

const tiny = () => nn.mlp([1, 4, 1], { activation: mg.tanh });
const regression = (tasks = 3): TaskBatch => sampleSinusoid(mg.random.key(4), { tasks, shots: 4 });

/** The SGD outer step recovers the meta-gradient: g = (θ − θ') / lr. */
function sgdLearner(extra: Partial<Parameters<typeof maml>[0]> = {}) {
  return maml({
    model: tiny(),
    loss: "mse",
    innerSteps: 2,
    innerLr: 0.1,
    metaOptimizer: mg.optim.sgd(1),
    jit: false,
    ...extra,
  });
}

function metaGradient(learner: ReturnType<typeof maml>, state: MamlState, batch: TaskBatch) {
  const copy = (t: unknown) => mg.tree.map((x: Tensor) => mg.add(x, 0), t);
  const before = { params: copy(state.params), lrs: copy(state.lrs) };
  const [next] = learner.metaStep(
    { ...state, params: copy(state.params), lrs: copy(state.lrs) },
    batch,
  );
  return mg.tree.map((a: Tensor, b: Tensor) => mg.sub(a, b), before, {
    params: next.params,
    lrs: next.lrs,
  });
}

Deno.test("MAML: second-order meta-gradient (2 inner steps) equals finite differences", async () => {
  const learner = sgdLearner();
  const state = learner.init(mg.random.key(1));
  const batch = regression();
  const g = metaGradient(learner, state, batch);
  const metaLoss = (params: unknown) => {
    const per = [0, 1, 2].map((i) => {
      const task = { xs: mg.slice(batch.xs, [i]), ys: mg.slice(batch.ys, [i]) };
      const adapted = learner.adapt({ ...state, params }, task);
      return mg.nn.mse(
        learner.predict(state, adapted, mg.slice(batch.xq, [i])),
        mg.slice(batch.yq, [i]),
      );
    });
    return mg.div(mg.add(mg.add(per[0], per[1]), per[2]), 3);
  };
  await mg.checkGrads(metaLoss, [state.params]);
  await assertTreesClose(g.params, mg.grad(metaLoss)(state.params), "metaStep's gradient", {
    rtol: 1e-9,
    atol: 1e-9,
  });
});

Deno.test("MAML variants: first order, vmap = loop, Meta-SGD and ANIL", async () => {
  const batch = regression();
  // first order: the meta-gradient is the query gradient at the adapted parameters
  const fo = sgdLearner({ firstOrder: true, innerSteps: 1 });
  const state = fo.init(mg.random.key(1));
  const g = metaGradient(fo, state, batch);
  let expected: unknown = null;
  for (let i = 0; i < 3; i++) {
    const task = { xs: mg.slice(batch.xs, [i]), ys: mg.slice(batch.ys, [i]) };
    const adapted = fo.adapt(state, task);
    const gq = mg.grad((p: unknown) =>
      mg.nn.mse(fo.predict(state, p, mg.slice(batch.xq, [i])), mg.slice(batch.yq, [i]))
    )(adapted);
    expected = expected ? mg.tree.map((a: Tensor, b: Tensor) => mg.add(a, b), expected, gq) : gq;
  }
  await assertTreesClose(
    g.params,
    mg.tree.map((a: Tensor) => mg.div(a, 3), expected),
    "first order",
    STRICT,
  );

  // the vmapped and the looped meta-step agree (second order, 2 steps)
  const looped = sgdLearner({ taskLoop: "loop" });
  const vm = sgdLearner();
  const s0 = vm.init(mg.random.key(2));
  await assertTreesClose(
    metaGradient(vm, s0, batch),
    metaGradient(looped, s0, batch),
    "vmap vs loop",
    STRICT,
  );

  // Meta-SGD: learned per-parameter rates get finite-difference-correct gradients
  const msgd = metaSgd({
    model: tiny(),
    loss: "mse",
    innerSteps: 1,
    jit: false,
    metaOptimizer: mg.optim.sgd(1),
  });
  const ms = msgd.init(mg.random.key(3));
  if (leaves(ms.lrs).length !== leaves(ms.params).length) throw new Error("one rate per parameter");
  const lrLoss = (lrs: Tensor[]) => {
    const task = { xs: mg.slice(batch.xs, [0]), ys: mg.slice(batch.ys, [0]) };
    const adapted = msgd.adapt({ ...ms, lrs }, task);
    return mg.nn.mse(msgd.predict(ms, adapted, mg.slice(batch.xq, [0])), mg.slice(batch.yq, [0]));
  };
  await mg.checkGrads(lrLoss, [ms.lrs]);

  // ANIL adapts only the head: the body is unchanged by adaptation
  const an = anil({ model: tiny(), loss: "mse", innerSteps: 3, innerLr: 0.5, jit: false });
  const as = an.init(mg.random.key(4));
  const adapted = an.adapt(as, {
    xs: mg.slice(batch.xs, [0]),
    ys: mg.slice(batch.ys, [0]),
  }) as any[];
  await assertTreesClose(adapted[0], (as.params as any[])[0], "ANIL body", STRICT);
  const moved = (await v(mg.sub(adapted[2].w, (as.params as any[])[2].w))).some((d) => d !== 0);
  if (!moved) throw new Error("ANIL did not adapt the head");
});

Deno.test("Reptile: batched and serial updates equal their formulas", async () => {
  const batch = regression(2);
  for (const mode of ["batched", "serial"] as const) {
    const learner = reptile({
      model: tiny(),
      loss: "mse",
      innerSteps: 2,
      innerLr: 0.1,
      metaLr: 0.5,
      mode,
      jit: false,
    });
    const s = learner.init(mg.random.key(1));
    const theta = s.params;
    const [next] = learner.metaStep({
      ...s,
      params: mg.tree.map((x: Tensor) => mg.add(x, 0), theta),
    }, batch);
    const task = (i: number) => ({ xs: mg.slice(batch.xs, [i]), ys: mg.slice(batch.ys, [i]) });
    const toward = (a: unknown, b: unknown) =>
      mg.tree.map((t: Tensor, f: Tensor) => mg.add(t, mg.mul(mg.sub(f, t), 0.5)), a, b);
    let expected: unknown;
    if (mode === "batched") {
      const phis = [0, 1].map((i) => learner.adapt(s, task(i)));
      expected = toward(
        theta,
        mg.tree.map((a: Tensor, b: Tensor) => mg.div(mg.add(a, b), 2), phis[0], phis[1]),
      );
    } else {
      const after1 = toward(theta, learner.adapt(s, task(0)));
      expected = toward(after1, learner.adapt({ ...s, params: after1 }, task(1)));
    }
    await assertTreesClose(next.params, expected, `reptile ${mode}`, STRICT);
  }
  // a meta-optimizer with a schedule: ε = 0.5, then 0.25 (linear decay over 2 steps)
  const annealed = reptile({
    model: tiny(),
    loss: "mse",
    innerSteps: 2,
    innerLr: 0.1,
    metaOptimizer: mg.optim.sgd(mg.optim.schedules.linearDecay(0.5, 2)),
    jit: false,
  });
  const copy = (t: unknown) => mg.tree.map((x: Tensor) => mg.add(x, 0), t);
  let state = annealed.init(mg.random.key(1));
  for (const epsilon of [0.5, 0.25]) {
    const theta = copy(state.params);
    const phis = [0, 1].map((i) =>
      annealed.adapt(state, { xs: mg.slice(batch.xs, [i]), ys: mg.slice(batch.ys, [i]) })
    );
    const expected = mg.tree.map(
      (t: Tensor, a: Tensor, b: Tensor) =>
        mg.add(t, mg.mul(mg.sub(mg.div(mg.add(a, b), 2), t), epsilon)),
      theta,
      phis[0],
      phis[1],
    );
    [state] = annealed.metaStep({ ...state, params: copy(theta) }, batch);
    await assertTreesClose(state.params, expected, `reptile, ε = ${epsilon}`, STRICT);
  }
});

/** Each task's amplitude and phase, recovered exactly from its points: y = a·sin x − b·cos x. */
async function fitSinusoids(batch: TaskBatch, tasks: number, points: number) {
  const x = [...await v(batch.xs), ...await v(batch.xq)];
  const y = [...await v(batch.ys), ...await v(batch.yq)];
  const half = x.length / 2;
  return Array.from({ length: tasks }, (_, t) => {
    let ss = 0, sc = 0, cc = 0, ys = 0, yc = 0; // normal equations of the 2-parameter fit
    for (
      const i of [...Array(points).keys()].flatMap((j) => [t * points + j, half + t * points + j])
    ) {
      const s = Math.sin(x[i]), c = -Math.cos(x[i]);
      ss += s * s, sc += s * c, cc += c * c, ys += y[i] * s, yc += y[i] * c;
    }
    const det = ss * cc - sc * sc, a = (ys * cc - yc * sc) / det, b = (yc * ss - ys * sc) / det;
    return {
      amplitude: Math.hypot(a, b),
      phase: Math.atan2(b, a),
      x: x.slice(t * points, (t + 1) * points),
    };
  });
}

Deno.test("sinusoid tasks: y = A·sin(x − φ) in range; stratified amplitudes and phases fill their strata", async () => {
  const tasks = 50, shots = 5;
  const iid = await fitSinusoids(
    sampleSinusoid(mg.random.key(9), { tasks, shots }),
    tasks,
    shots,
  );
  const strat = await fitSinusoids(
    sampleSinusoid(mg.random.key(9), { tasks, shots, stratified: true }),
    tasks,
    shots,
  );
  for (const { amplitude, phase, x } of [...iid, ...strat]) {
    if (
      !(amplitude >= 0.1 - 1e-4 && amplitude < 5 + 1e-4 && phase > -1e-4 && phase < Math.PI + 1e-4)
    ) {
      throw new Error(`sinusoid task out of range: A = ${amplitude}, φ = ${phase}`);
    }
    if (x.some((xi) => xi < -5 || xi >= 5)) throw new Error("sinusoid inputs out of [−5, 5)");
  }
  // stratified: the i-th smallest amplitude (phase) lies in the i-th of 50 equal strata
  const fills = (vals: number[], lo: number, hi: number) =>
    vals.map((u) => ((u - lo) / (hi - lo)) * tasks).sort((p, q) => p - q)
      .every((p, i) => p > i - 0.01 && p < i + 1.01);
  if (
    !fills(strat.map((t) => t.amplitude), 0.1, 5) || !fills(strat.map((t) => t.phase), 0, Math.PI)
  ) {
    throw new Error(
      "stratified sinusoid tasks must put one amplitude and one phase in each stratum",
    );
  }
  if (fills(iid.map((t) => t.amplitude), 0.1, 5)) {
    throw new Error("independent draws came stratified");
  }
  const drawn = sinusoidParameters(mg.random.key(9), { tasks, shots, stratified: true });
  assertAllClose(strat.map((t) => t.amplitude), await v(drawn.amplitude), { atol: 1e-4 });
  assertAllClose(strat.map((t) => t.phase), await v(drawn.phase), { atol: 1e-4 });
  // only the task parameters change: the points are the same draws
  assertAllClose(strat.flatMap((t) => t.x), iid.flatMap((t) => t.x), STRICT);
  assertThrowsWith(
    () => sampleSinusoid(mg.random.key(0), { tasks: 5000, shots: 2, stratified: true }),
    "sampleSinusoid",
    "4096",
  );
});

Deno.test("episode sampler: classes, labels, rotations, shuffling and errors", async () => {
  // pixel values encode (class, example): 100·class + example
  const C = 6, S = 5;
  const vals: number[] = [];
  for (let c = 0; c < C; c++) {
    for (let e = 0; e < S; e++) for (let p = 0; p < 4; p++) vals.push(100 * c + e + p / 10);
  }
  const images = mg.tensor(vals).reshape([C, S, 1, 2, 2]);
  const b = sampleEpisodes(mg.random.key(3), images, {
    tasks: 3,
    ways: 4,
    shots: 2,
    queries: 2,
    rotations: true,
  });
  if (b.xs.shape.join() !== "3,8,1,2,2" || b.yq.shape.join() !== "3,8") throw new Error("shapes");
  const xs = await v(b.xs), ys = await v(b.ys), xq = await v(b.xq), yq = await v(b.yq);
  const rotationsOf = new Map<number, string>(
    [["0,0.1,0.2,0.3", 0], ["0.1,0.3,0,0.2", 1], ["0.3,0.2,0.1,0", 2], ["0.2,0,0.3,0.1", 3]].map((
      [k, r],
    ) => [r as number, k as string]),
  );
  for (let t = 0; t < 3; t++) {
    const classOf = new Map<number, string>();
    const seen = new Set<string>();
    for (const [x, y] of [[xs, ys], [xq, yq]]) {
      for (let i = 0; i < 8; i++) {
        const px = x.slice((t * 8 + i) * 4, (t * 8 + i + 1) * 4);
        const cls = Math.floor(Math.min(...px) / 100);
        const frac = px.map((p) => Math.round((p - Math.min(...px)) * 10) / 10).join(",");
        const rot = [...rotationsOf].find(([, k]) => k === frac)?.[0];
        if (rot === undefined) throw new Error(`pixels ${px} are not a rotation`);
        const id = `${cls}/${rot}`;
        const label = y[t * 8 + i];
        if (classOf.has(label) && classOf.get(label) !== id) {
          throw new Error(`label ${label} mixes classes`);
        }
        classOf.set(label, id);
        const example = `${id}/${Math.round(Math.min(...px)) % 100}`;
        if (seen.has(example)) throw new Error(`example ${example} drawn twice`);
        seen.add(example);
      }
    }
    if (classOf.size !== 4 || new Set(classOf.values()).size !== 4) {
      throw new Error("not 4 distinct classes");
    }
    const counts = [0, 1, 2, 3].map((l) =>
      ys.slice(t * 8, t * 8 + 8).filter((y) => y === l).length
    );
    if (counts.some((c) => c !== 2)) throw new Error(`support label counts ${counts}`);
  }
  if (ys.slice(0, 8).join() === "0,0,1,1,2,2,3,3") throw new Error("support set is not shuffled");
  assertThrowsWith(
    () => sampleEpisodes(mg.random.key(0), images, { tasks: 1, ways: 7, shots: 1 }),
    "7-way",
    "6",
  );
  assertThrowsWith(
    () => sampleEpisodes(mg.random.key(0), images, { tasks: 1, ways: 2, shots: 3, queries: 3 }),
    "3 shots + 3 queries",
    "5 examples",
  );
  assertThrowsWith(
    () => sampleEpisodes(mg.random.key(0), mg.zeros([6, 5, 2, 2]), { tasks: 1, ways: 2, shots: 1 }),
    "[classes, examples, channels, height, width]",
  );
});

/** Gaussian clusters as a tiny image set: 8 classes × 10 examples of 1×2×2 "images". */
function clusters(): Tensor {
  const centres = mg.random.normal(mg.random.key(20), [8, 1, 1, 2, 2], { std: 2 });
  return mg.add(centres, mg.random.normal(mg.random.key(21), [8, 10, 1, 2, 2], { std: 0.3 }));
}

Deno.test("Prototypical and Matching Networks: losses match manual forms, gradients check, loop = vmap", async () => {
  const embedding = nn.sequential(nn.flatten(), nn.dense(4, 3));
  const batch = sampleEpisodes(mg.random.key(5), clusters(), {
    tasks: 2,
    ways: 3,
    shots: 2,
    queries: 2,
  });
  const task = {
    xs: mg.slice(batch.xs, [0]),
    ys: mg.slice(batch.ys, [0]),
    xq: mg.slice(batch.xq, [0]),
    yq: mg.slice(batch.yq, [0]),
  };
  const pn = protoNet({ embedding, ways: 3, jit: false });
  const ps = pn.init(mg.random.key(1));
  const emb = (x: Tensor) =>
    embedding.apply((ps.params as any).embed, ps.modelState as unknown[], x)[0];
  // manual: prototypes as per-class means, logits −‖q − c‖²
  const zs = await v(emb(task.xs)), zq = await v(emb(task.xq)), ys = await v(task.ys);
  const protos = [0, 1, 2].map((c) =>
    [0, 1, 2].map((d) => ys.reduce((a, y, i) => a + (y === c ? zs[i * 3 + d] / 2 : 0), 0))
  );
  const manual = [0, 1, 2, 3, 4, 5].flatMap((q) =>
    protos.map((p) => -p.reduce((a, pd, d) => a + (zq[q * 3 + d] - pd) ** 2, 0))
  );
  assertAllClose(await v(pn.logits(ps, task)), manual, { rtol: 1e-9 });
  const protoLoss = (params: unknown) =>
    mg.nn.softmaxCrossEntropy(pn.logits({ ...ps, params }, task), task.yq);
  await mg.checkGrads(protoLoss, [ps.params]);
  const loop = protoNet({
    embedding,
    ways: 3,
    jit: false,
    taskLoop: "loop",
    optimizer: mg.optim.sgd(1),
  });
  const vm = protoNet({ embedding, ways: 3, jit: false, optimizer: mg.optim.sgd(1) });
  const copy = (t: unknown) => mg.tree.map((x: Tensor) => mg.add(x, 0), t);
  const [a] = loop.metaStep({ ...ps, params: copy(ps.params) }, batch);
  const [b] = vm.metaStep({ ...ps, params: copy(ps.params) }, batch);
  await assertTreesClose(a.params, b.params, "protoNet loop vs vmap", { rtol: 1e-9, atol: 1e-12 });

  // Matching Networks without FCE: cosine attention over the support labels
  const mn = matchingNet({ embedding, ways: 3, jit: false });
  const ms = mn.init(mg.random.key(1));
  const norm = (z: number[], i: number) => Math.hypot(z[i * 3], z[i * 3 + 1], z[i * 3 + 2]);
  const manualM = [0, 1, 2, 3, 4, 5].flatMap((q) => {
    const sims = [0, 1, 2, 3, 4, 5].map((s) =>
      [0, 1, 2].reduce((acc, d) => acc + zq[q * 3 + d] * zs[s * 3 + d], 0) /
      (norm(zq, q) * norm(zs, s))
    );
    const m = Math.max(...sims);
    const e = sims.map((x) => Math.exp(x - m));
    const tot = e.reduce((x, y) => x + y, 0);
    return [0, 1, 2].map((c) =>
      Math.log(e.reduce((acc, w, s) => acc + (ys[s] === c ? w / tot : 0), 0) + 1e-8)
    );
  });
  assertAllClose(await v(mn.logits({ ...ms, params: ps.params }, task)), manualM, { rtol: 1e-6 });
  // with full-context embeddings: gradients through both LSTMs and the attention LSTM
  const fce = matchingNet({ embedding, ways: 3, jit: false, fce: { features: 3, steps: 2 } });
  const fs = fce.init(mg.random.key(2));
  await mg.checkGrads(
    (params: unknown) => mg.nn.softmaxCrossEntropy(fce.logits({ ...fs, params }, task), task.yq),
    [fs.params],
    { maxElements: 4 },
  );
  assertThrowsWith(
    () =>
      matchingNet({ embedding, ways: 3, fce: { features: 5 } }).logits(
        fce.init(mg.random.key(0)),
        task,
      ),
    "fce.features is 5",
    "3 features",
  );
});

Deno.test("learning: ProtoNet separates clusters and MAML improves sinusoid adaptation (vmap + jit, WebGPU)", async () => {
  mg.setBackend("webgpu");
  try {
    const data = clusters();
    const pn = protoNet({
      embedding: nn.sequential(nn.flatten(), nn.dense(4, 8)),
      ways: 4,
      optimizer: mg.optim.adam(0.01),
    });
    let ps = pn.init(mg.random.key(0));
    const test = sampleEpisodes(mg.random.key(99), data, {
      tasks: 50,
      ways: 4,
      shots: 1,
      queries: 4,
    });
    const before = (await pn.evaluate(ps, test)).accuracy!;
    for (let i = 0; i < 60; i++) {
      [ps] = pn.metaStep(
        ps,
        sampleEpisodes(mg.random.key(100 + i), data, { tasks: 8, ways: 4, shots: 1, queries: 4 }),
      );
    }
    const after = (await pn.evaluate(ps, test)).accuracy!;
    if (!(after.mean >= 0.9 && after.mean > before.mean)) {
      throw new Error(`protoNet accuracy ${before.mean} → ${after.mean}`);
    }

    const learner = maml({
      model: nn.sinusoidMlp(),
      loss: "mse",
      innerLr: 0.01,
      metaOptimizer: mg.optim.adam(3e-3),
    });
    let s = learner.init(mg.random.key(0));
    const tasks = sampleSinusoid(mg.random.key(77), { tasks: 50, shots: 10 });
    const start = (await learner.evaluate(s, tasks, 1)).loss;
    for (let i = 0; i < 150; i++) {
      [s] = learner.metaStep(s, sampleSinusoid(mg.random.key(1000 + i), { tasks: 25, shots: 10 }));
    }
    const end = (await learner.evaluate(s, tasks, 1)).loss;
    if (!(end.mean < 0.8 * start.mean)) {
      throw new Error(`MAML post-adaptation MSE ${start.mean} → ${end.mean}`);
    }
  } finally {
    mg.setBackend("reference");
  }
});

Deno.test("meta-learners reject bad batches with clear errors", () => {
  const learner = sgdLearner();
  const s = learner.init(mg.random.key(0));
  const b = regression();
  assertThrowsWith(
    () => learner.metaStep(s, { ...b, yq: mg.slice(b.yq, [[0, 2]]) }),
    "disagree on the number of tasks",
  );
  assertThrowsWith(
    () => learner.metaStep(s, { ...b, xs: mg.zeros([3]) }),
    "batch.xs must be [tasks, examples, ...]",
  );
  assertThrowsWith(() => maml({ model: tiny(), loss: "mse", innerSteps: -1 }), "innerSteps");
  assertThrowsWith(() => protoNet({ embedding: tiny(), ways: 1 }), "ways must be an integer ≥ 2");
  const s1 = summarize([1, 2, 3]);
  assertAllClose([s1.mean, s1.ci95], [2, 1.96 / Math.sqrt(3)], { rtol: 1e-12 });
  // chunked evaluation pools exactly
  const all = [0.2, 0.9, 0.4, 1, 0.6, 0.6, 0.1];
  const merged = mergeSummaries([
    summarize(all.slice(0, 2)),
    summarize(all.slice(2, 3)),
    summarize(all.slice(3)),
  ]);
  const direct = summarize(all);
  assertAllClose([merged.mean, merged.ci95, merged.n], [direct.mean, direct.ci95, 7], {
    rtol: 1e-12,
  });
});

Deno.test("metaTrain stops a diverged run with the step and the last finite loss", async () => {
  const learner = sgdLearner({ metaOptimizer: mg.optim.sgd(1e30) });
  const steps: number[] = [];
  let error: unknown;
  try {
    await metaTrain(learner.metaStep, learner.init(mg.random.key(0)), () => regression(), {
      steps: 20,
      key: mg.random.key(1),
      every: 1,
      onProgress: (p) => steps.push(p.step),
    });
  } catch (e) {
    error = e;
  }
  const message = error instanceof Error ? error.message : String(error);
  if (
    !/^metaTrain: the meta-loss is (NaN|-?Infinity) at step 2 \(last finite read: .+ at step 1\)/
      .test(message)
  ) {
    throw new Error(`expected metaTrain to stop at step 2, got: ${message}`);
  }
  if (steps.join() !== "1") throw new Error(`progress after divergence: ${steps}`);
});
