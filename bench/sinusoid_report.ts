/**
 * Sinusoid acceptance report (issue #6): meta-train second-order MAML, first-order MAML and
 * Reptile (K = 10, meta-batch 25, Adam 1e-3 for MAML) and a joint-training baseline, then
 * score each on 100 new tasks by fine-tuning with k SGD steps at α = 0.01 (k = 1 and 10) and
 * measuring the query MSE, mean ± 95% CI. Run by hand (`--help` for the options); results go
 * to README.
 *
 * The 100 test tasks are drawn stratified in amplitude and phase (see `sinusoid_test_sets.ts`); every
 * method is also scored on the same 100 drawn independently, on 4,096 stratified tasks (the
 * expectation) and on 40 further draws of 100, so that the test draw and run-to-run variance can
 * be told apart.
 */
import { choiceOption, numberOption, parseCommandLine } from "../core/command_line.ts";
import * as mg from "../mod.ts";
import {
  maml,
  type MamlState,
  type MetaMetrics,
  metaTrain,
  reptile,
  type Summary,
  type TaskBatch,
} from "../algorithms/mod.ts";
import { sampleSinusoid, sinusoidParameters } from "../envs/mod.ts";
import { TEST_SETS, TEST_SHOTS } from "./sinusoid_test_sets.ts";

const METHODS = ["maml2", "maml1", "reptile", "joint"] as const;
const INITS = ["glorot", "torch", "he", "finn"] as const;
const USAGE = `usage: deno run -A bench/sinusoid_report.ts [--steps 10000]
    [--only maml2,maml1,reptile,joint] [--init glorot|torch|he|finn] [--seeds 0,1,2] [--out f.json]

  --init   torch: U(±1/√fanIn) weights and biases, PyTorch's default; he: N(0, 2/fanIn)
           weights, zero biases; finn: N(0, 0.01²) truncated at ±2σ, zero biases, as in
           Finn et al.'s code; glorot (default): Glorot-uniform weights, zero biases
  --seeds  one training run per seed: init key(s), task stream key(7 + s)
  --out    also write the scores as JSON`;

const { values } = parseCommandLine(USAGE, {
  options: {
    steps: { type: "string", default: "10000" },
    only: { type: "string", default: "maml2,maml1,reptile,joint" },
    out: { type: "string" },
    init: { type: "string", default: "glorot" },
    seeds: { type: "string", default: "0" },
  },
});
const init = choiceOption("--init", values.init, INITS, USAGE);
const steps = numberOption("--steps", values.steps, USAGE, { integer: true, min: 1 });
const which = values.only.split(",").map((m) => choiceOption("--only", m, METHODS, USAGE));
const seeds = values.seeds.split(",").map((s) =>
  numberOption("--seeds", s, USAGE, { integer: true, min: 0 })
);
const info = await mg.init();
const model = init === "torch"
  ? mg.nn.mlp([1, 40, 40, 1], { init: mg.nn.fanInUniform, biasInit: mg.nn.fanInUniform })
  : init === "he"
  ? mg.nn.mlp([1, 40, 40, 1], { init: mg.nn.heNormal })
  : init === "finn"
  ? mg.nn.mlp([1, 40, 40, 1], { init: mg.nn.truncatedNormal(0.01) })
  : mg.nn.sinusoidMlp();
const ALPHA = 0.01;
const [test, iidTest, wideTest] = Object.values(TEST_SETS).map(({ key, opts }) =>
  sampleSinusoid(mg.random.key(key), opts)
);
const DRAWS = 40;
const draws = Array.from(
  { length: DRAWS },
  (_, i) =>
    sampleSinusoid(mg.random.key(1000 + i), { tasks: 100, shots: TEST_SHOTS, stratified: true }),
);
for (const { name, key, opts } of Object.values(TEST_SETS)) {
  const { amplitude } = sinusoidParameters(mg.random.key(key), opts);
  const meanSquare = await mg.mean(mg.square(amplitude)).item();
  console.log(
    `${name}: mean A² ${meanSquare.toFixed(2)} (distribution: ${
      ((5 ** 3 - 0.1 ** 3) / (3 * 4.9)).toFixed(2)
    })`,
  );
}
/** The scoring protocol shared by every method: k SGD steps at α from the learned init. */
const scorer = maml({ model, loss: "mse", innerLr: ALPHA });
/** Reptile's own protocol (Nichol et al.'s sinusoid demo): 32 SGD steps at 0.02. */
const longScorer = maml({ model, loss: "mse", innerLr: 0.02 });
const modelState = model.init(mg.random.key(0)).state;

interface Scores {
  k1: Summary;
  k10: Summary;
  k32: Summary;
  iidK1: Summary;
  wideK1: Summary;
  wideK10: Summary;
  /** The 1-step score of each further 100-task draw. */
  drawK1: number[];
}

async function score(params: unknown): Promise<Scores> {
  const state: MamlState = { params, modelState, lrs: [], opt: null };
  return {
    k1: (await scorer.evaluate(state, test, 1)).loss,
    k10: (await scorer.evaluate(state, test, 10)).loss,
    k32: (await longScorer.evaluate(state, test, 32)).loss,
    iidK1: (await scorer.evaluate(state, iidTest, 1)).loss,
    wideK1: (await scorer.evaluate(state, wideTest, 1)).loss,
    wideK10: (await scorer.evaluate(state, wideTest, 10)).loss,
    drawK1: await Promise.all(
      draws.map(async (d) => (await scorer.evaluate(state, d, 1)).loss.mean),
    ),
  };
}

interface Row extends Scores {
  method: string;
  seed: number;
  steps: number;
  seconds: number;
}
const rows: Row[] = [];
const failures: string[] = [];
/** mean ± CI; "diverged" where the fine-tuning ran away (NaN or above 1,000 on these tasks). */
const fmt = (s: Summary) =>
  Number.isFinite(s.mean) && s.mean < 1e3
    ? `${s.mean.toFixed(3)} ± ${s.ci95.toFixed(3)}`
    : "diverged";
const spread = (v: number[]) =>
  `${(v.reduce((a, b) => a + b, 0) / v.length).toFixed(3)}, ${Math.min(...v).toFixed(3)}–${
    Math.max(...v).toFixed(3)
  }`;

async function train<S extends { params: unknown }>(
  name: string,
  seed: number,
  init: S,
  step: (s: S, b: TaskBatch) => [S, MetaMetrics],
): Promise<void> {
  const t0 = performance.now();
  let state: S;
  try {
    state = await metaTrain(step, init, (k) => sampleSinusoid(k, { tasks: 25, shots: 10 }), {
      steps,
      key: mg.random.key(7 + seed),
      every: 500,
      onProgress: (p) =>
        console.log(
          `${name} step ${p.step}/${steps} loss ${p.loss.toFixed(3)} ${
            p.stepsPerSecond.toFixed(1)
          } steps/s ETA ${p.etaSeconds.toFixed(0)} s`,
        ),
    });
  } catch (e) {
    // a diverged method is a result to report, not a reason to lose the other methods' rows
    const message = e instanceof Error ? e.message : String(e);
    console.log(`${name} (seed ${seed}): ${message}`);
    failures.push(`${name} (seed ${seed}): ${message}`);
    return;
  }
  const seconds = (performance.now() - t0) / 1000;
  const s = await score(state.params);
  rows.push({ method: name, seed, steps, seconds, ...s });
  console.log(
    `${name} (seed ${seed}): post-1-step MSE ${fmt(s.k1)}, post-10-step ${fmt(s.k10)}; ` +
      `on the 100 independent tasks ${fmt(s.iidK1)}; on 4,096 tasks ${fmt(s.wideK1)} / ` +
      `${fmt(s.wideK10)}; over ${DRAWS} draws of 100 ${spread(s.drawK1)} (${seconds.toFixed(0)} s)`,
  );
}

for (const seed of seeds) {
  if (which.includes("maml2")) {
    const l = maml({ model, loss: "mse", innerLr: ALPHA, innerSteps: 1 });
    await train("MAML (second order)", seed, l.init(mg.random.key(seed)), l.metaStep);
  }
  if (which.includes("maml1")) {
    const l = maml({ model, loss: "mse", innerLr: ALPHA, innerSteps: 1, firstOrder: true });
    await train("MAML (first order)", seed, l.init(mg.random.key(seed)), l.metaStep);
  }
  if (which.includes("reptile")) {
    // Nichol et al.'s sinusoid settings: 5 SGD steps at 0.02, ε = 0.1 annealed linearly to 0
    const l = reptile({
      model,
      loss: "mse",
      innerSteps: 5,
      innerLr: 0.02,
      metaOptimizer: mg.optim.sgd(mg.optim.schedules.linearDecay(0.1, steps)),
    });
    await train("Reptile (batched)", seed, l.init(mg.random.key(seed)), l.metaStep);
  }
  if (which.includes("joint")) {
    // no meta-learning: one network fitted to the pooled points of all training tasks
    const opt = mg.optim.adam(1e-3);
    const init = model.init(mg.random.key(seed)).params;
    const step = mg.jit(
      (s: { params: unknown; opt: any }, b: ReturnType<typeof sampleSinusoid>) => {
        const loss = (p: unknown) =>
          mg.nn.mse(
            model.apply(p, modelState, mg.reshape(b.xs, [-1, 1]))[0],
            mg.reshape(b.ys, [-1, 1]),
          );
        const [value, g] = mg.valueAndGrad(loss)(s.params);
        const [updates, o] = opt.update(g, s.opt, s.params);
        return [{ params: mg.optim.applyUpdates(s.params, updates), opt: o }, { loss: value }] as [
          { params: unknown; opt: any },
          MetaMetrics,
        ];
      },
      { donateArgnums: [0] },
    );
    await train(
      "Joint training (no meta-learning)",
      seed,
      { params: init, opt: opt.init(init) },
      step as any,
    );
  }
}

console.log(
  `\nadapter: ${info.description}; ${steps} meta-steps; K = 10; ${init} init; first three ` +
    "columns: 100 stratified test tasks",
);
console.log(
  "| method | seed | 1 step, α = 0.01 | 10 steps, α = 0.01 | 32 steps, α = 0.02 | " +
    "1 step, 100 independent tasks | 1 step, 4,096 tasks | 10 steps, 4,096 tasks | " +
    `1 step, ${DRAWS} draws of 100: mean, range | train time |`,
);
console.log("|---|---|---|---|---|---|---|---|---|---|");
for (const r of rows) {
  console.log(
    `| ${r.method} | ${r.seed} | ${fmt(r.k1)} | ${fmt(r.k10)} | ${fmt(r.k32)} | ${fmt(r.iidK1)} | ${
      fmt(r.wideK1)
    } | ${fmt(r.wideK10)} | ${spread(r.drawK1)} | ${r.seconds.toFixed(0)} s |`,
  );
}
for (const f of failures) console.log(`not scored: ${f}`);
if (values.out) {
  await Deno.writeTextFile(
    values.out,
    JSON.stringify({ adapter: info.description, steps, init, seeds, rows, failures }, null, 2),
  );
}
