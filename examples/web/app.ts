/// <reference lib="dom" />
/**
 * The web page's program (bundled by `examples/web/serve.ts` into app.js): meta-trains MAML on
 * sinusoid regression with a progress line and a learning curve, then adapts the meta-learned
 * network and a from-scratch one to the points a visitor clicks on a new sine, step by step.
 *
 * URL parameters: `steps` (meta-steps, default 1000) and `seed` (default 0). The page's state is
 * on `globalThis.metagradDemo` (phase, losses, points, the MSE after each inner step) for
 * scripts and tests; `metagradDemo.pagePoint(x)` says where on the page the point of the
 * current sine at x lies.
 */
import * as mg from "../../mod.ts";
import { maml, type MamlState, metaTrain } from "../../algorithms/mod.ts";
import { sampleSinusoid, sinusoidParameters } from "../../envs/mod.ts";

/** The page's state, readable from outside (`globalThis.metagradDemo`). */
interface DemoState {
  phase: "starting" | "training" | "ready" | "adapting" | "adapted" | "error";
  adapter: string;
  step: number;
  steps: number;
  /** Meta-training query loss at each reported step. */
  curve: { step: number[]; loss: number[] };
  /** The sine the visitor samples: y = amplitude · sin(x − phase). */
  target: { amplitude: number; phase: number };
  /** Clicked support points [x, y]. */
  points: [number, number][];
  /** MSE against the target sine on a grid, after 0…10 inner steps, for each model. */
  mse: { metaLearned: number[]; scratch: number[] };
  /** How many points the last finished adaptation used. */
  adaptedPoints: number;
  error?: string;
  /** Page coordinates of the target sine's point at x (what a click there adds). */
  pagePoint(x: number): { x: number; y: number };
}

const INNER_STEPS = 10;
const PLOT = { width: 480, height: 320, xDomain: [-5, 5], yDomain: [-6, 6] } as const;
const GRID = Array.from({ length: 101 }, (_, i) => -5 + i * 0.1);

const query = new URLSearchParams(location.search);
const STEPS = positiveInteger("steps", 1000);
const SEED = positiveInteger("seed", 0);

const demo: DemoState = {
  phase: "starting",
  adapter: "",
  step: 0,
  steps: STEPS,
  curve: { step: [], loss: [] },
  target: { amplitude: 1, phase: 0 },
  points: [],
  mse: { metaLearned: [], scratch: [] },
  adaptedPoints: 0,
  pagePoint,
};
(globalThis as unknown as { metagradDemo: DemoState }).metagradDemo = demo;

const $ = (id: string) => document.getElementById(id)!;

function positiveInteger(name: string, fallback: number): number {
  const raw = query.get(name);
  if (raw === null) return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 0) {
    throw new RangeError(`URL parameter ${name} must be a non-negative integer, got "${raw}"`);
  }
  return v;
}

function fail(e: unknown): void {
  demo.phase = "error";
  demo.error = e instanceof Error ? e.message : String(e);
  $("status").textContent = `error: ${demo.error}`;
  console.error(e);
}

function sineAt(x: number): number {
  return demo.target.amplitude * Math.sin(x - demo.target.phase);
}

/** Page coordinates of data point (x, y) on the adaptation chart. */
function toPage(x: number, y: number): { x: number; y: number } {
  const svg = $("plot").querySelector("svg")!;
  const box = svg.getBoundingClientRect(), area = mg.plotArea(PLOT);
  const scale = box.width / PLOT.width;
  const [x0, x1] = PLOT.xDomain, [y0, y1] = PLOT.yDomain;
  return {
    x: box.left + (area.left + ((x - x0) / (x1 - x0)) * area.width) * scale,
    y: box.top + (area.top + (1 - (y - y0) / (y1 - y0)) * area.height) * scale,
  };
}

function pagePoint(x: number): { x: number; y: number } {
  return toPage(x, sineAt(x));
}

/** Data x of a click on the adaptation chart, or null outside its plot area. */
function clickToX(ev: MouseEvent): number | null {
  const svg = $("plot").querySelector("svg")!;
  const box = svg.getBoundingClientRect(), area = mg.plotArea(PLOT);
  const scale = box.width / PLOT.width;
  const px = (ev.clientX - box.left) / scale - area.left;
  if (px < 0 || px > area.width) return null;
  const [x0, x1] = PLOT.xDomain;
  return x0 + (px / area.width) * (x1 - x0);
}

/** The adaptation chart: the target, the points, and each model's curve at `step`. */
function drawPlot(curves: { metaLearned?: number[]; scratch?: number[] } = {}, step = 0): void {
  const series: mg.Series[] = [
    { name: "target sine", x: GRID, y: GRID.map(sineAt), style: "dashed", color: "#888" },
  ];
  if (curves.metaLearned) {
    series.push({ name: "MAML init, adapted", x: GRID, y: curves.metaLearned, color: "#1f77b4" });
  }
  if (curves.scratch) {
    series.push({ name: "random init, adapted", x: GRID, y: curves.scratch, color: "#d62728" });
  }
  if (demo.points.length) {
    series.push({
      name: "your points",
      x: demo.points.map((p) => p[0]),
      y: demo.points.map((p) => p[1]),
      style: "points",
      color: "#222",
    });
  }
  $("plot").innerHTML = mg.lineChartSvg(series, {
    ...PLOT,
    legend: false, // drawn below the chart: inside it would cover clicked points
    title: demo.points.length ? `after ${step} inner steps` : "click to add points of this sine",
    xLabel: "x",
    yLabel: "y",
  });
  $("step-label").textContent = demo.points.length
    ? `${demo.points.length} point(s), inner step ${step}/${INNER_STEPS}`
    : "";
}

function drawCurve(): void {
  if (demo.curve.step.length < 1) return;
  $("curve").innerHTML = mg.lineChartSvg(
    [{ name: "meta-batch query MSE", x: demo.curve.step, y: demo.curve.loss }],
    {
      width: 440,
      height: 320,
      logY: true,
      title: "MAML meta-training",
      xLabel: "meta-step",
      yLabel: "query MSE",
    },
  );
}

function drawTable(): void {
  const { metaLearned, scratch } = demo.mse;
  const rows = metaLearned.map((m, k) =>
    `<tr><td>${k}</td><td>${m.toFixed(3)}</td><td>${scratch[k]?.toFixed(3) ?? ""}</td></tr>`
  );
  $("mse").innerHTML = rows.length
    ? `<tr><th>inner step</th><th>MSE, MAML init</th><th>MSE, random init</th></tr>${rows.join("")}`
    : "";
}

/**
 * The n-th new sine: the task distribution's draws from fixed keys, skipping those flatter than
 * amplitude 1 (a near-flat line is fitted by any network and shows nothing). Returns the count
 * of draws used, so the next call starts after them.
 */
async function newTarget(n: number): Promise<number> {
  for (;; n++) {
    const { amplitude, phase } = sinusoidParameters(mg.random.key(SEED + 1000 + n), {
      tasks: 1,
      shots: 1,
    });
    demo.target = { amplitude: await amplitude.item(), phase: await phase.item() };
    amplitude.dispose();
    phase.dispose();
    if (demo.target.amplitude >= 1) break;
  }
  demo.points = [];
  demo.mse = { metaLearned: [], scratch: [] };
  demo.adaptedPoints = 0;
  drawPlot();
  drawTable();
  return n + 1;
}

async function main(): Promise<void> {
  if (!("gpu" in navigator)) {
    throw new Error("this browser has no WebGPU (navigator.gpu); try a recent Chrome or Edge");
  }
  const info = await mg.init();
  demo.adapter = info.description;
  const learner = maml({ model: mg.nn.sinusoidMlp(), loss: "mse", innerLr: 0.01 });
  // the same initialisation twice: one is meta-trained (its tensors are donated), one is not
  const scratch = learner.init(mg.random.key(SEED));
  let state = learner.init(mg.random.key(SEED));
  demo.phase = "training";
  $("status").textContent = `meta-training on ${info.description}: compiling…`;
  state = await metaTrain(
    learner.metaStep,
    state,
    (k) => sampleSinusoid(k, { tasks: 25, shots: 10 }),
    {
      steps: STEPS,
      key: mg.random.key(SEED + 1),
      every: Math.max(1, Math.min(25, Math.floor(STEPS / 20))),
      onProgress(p) {
        demo.step = p.step;
        demo.curve.step.push(p.step);
        demo.curve.loss.push(p.loss);
        $("status").textContent = `meta-training on ${info.description}: step ${p.step}/${STEPS}` +
          `  query MSE ${p.loss.toFixed(3)}  ${p.stepsPerSecond.toFixed(1)} steps/s` +
          `  ETA ${p.etaSeconds.toFixed(0)} s`;
        drawCurve();
      },
    },
  );
  $("status").textContent = `meta-trained ${STEPS} steps on ${info.description}. ` +
    `Click the chart on the right to add points of the new sine.`;
  let draws = await newTarget(0);
  demo.phase = "ready";

  let generation = 0;
  const adaptAll = async () => {
    const mine = ++generation;
    demo.phase = "adapting";
    const n = demo.points.length;
    const support = {
      xs: mg.tensor(demo.points.map((p) => p[0]), { shape: [n, 1] }),
      ys: mg.tensor(demo.points.map((p) => p[1]), { shape: [n, 1] }),
    };
    const grid = mg.tensor(GRID, { shape: [GRID.length, 1] });
    const truth = GRID.map(sineAt);
    const models = { metaLearned: state, scratch };
    const params: Record<string, unknown> = { metaLearned: state.params, scratch: scratch.params };
    const mse: DemoState["mse"] = { metaLearned: [], scratch: [] };
    try {
      for (let k = 0; k <= INNER_STEPS; k++) {
        const curves: Record<string, number[]> = {};
        for (const name of ["metaLearned", "scratch"] as const) {
          const s: MamlState = { ...models[name], params: params[name] };
          const pred = mg.tidy(() => learner.predict(s, params[name], grid));
          const y = Array.from(await pred.toFloat64());
          pred.dispose();
          curves[name] = y;
          mse[name].push(y.reduce((acc, v, i) => acc + (v - truth[i]) ** 2, 0) / y.length);
          if (k < INNER_STEPS) {
            const next = mg.tidy(() => learner.adapt(s, support, 1));
            if (k > 0) mg.tree.leaves<mg.Tensor>(params[name]).forEach((t) => t.dispose());
            params[name] = next;
          }
        }
        if (mine !== generation) return; // a newer click started its own adaptation
        demo.mse = { metaLearned: [...mse.metaLearned], scratch: [...mse.scratch] };
        drawPlot(curves, k);
        drawTable();
        await new Promise((r) => setTimeout(r, 120)); // let the visitor see each step
      }
      demo.adaptedPoints = n;
      demo.phase = "adapted";
    } finally {
      for (const name of ["metaLearned", "scratch"] as const) {
        if (params[name] !== models[name].params) {
          mg.tree.leaves<mg.Tensor>(params[name]).forEach((t) => t.dispose());
        }
      }
      support.xs.dispose();
      support.ys.dispose();
      grid.dispose();
    }
  };

  $("plot").addEventListener("click", (ev) => {
    if (demo.phase !== "ready" && demo.phase !== "adapting" && demo.phase !== "adapted") return;
    const x = clickToX(ev as MouseEvent);
    if (x === null) return;
    demo.points.push([x, sineAt(x)]);
    adaptAll().catch(fail);
  });
  $("clear").addEventListener("click", () => {
    generation++;
    demo.points = [];
    demo.mse = { metaLearned: [], scratch: [] };
    demo.phase = "ready";
    drawPlot();
    drawTable();
  });
  let drawing = false; // one draw at a time: each starts after the last one's keys
  $("new-sine").addEventListener("click", () => {
    if (drawing) return;
    drawing = true;
    generation++;
    newTarget(draws).then((next) => {
      draws = next;
      demo.phase = "ready";
    }).catch(fail).finally(() => (drawing = false));
  });
}

globalThis.addEventListener("unhandledrejection", (e) => fail((e as PromiseRejectionEvent).reason));
main().catch(fail);
