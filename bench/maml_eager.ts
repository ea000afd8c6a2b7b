/**
 * Second-order MAML meta-gradient on the sinusoid task (Finn et al. 2017): an MLP 1-40-40-1,
 * 25 tasks × (10 support + 10 query) points, inner SGD with α = 0.01, eager (a JS loop over
 * tasks; vmap/jit come with issue #4). Reports time per meta-gradient (reading the loss back
 * every step), peak live bytes and dispatches per step.
 *
 *   deno run -A bench/maml_eager.ts
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";

type Params = { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor; w3: Tensor; b3: Tensor };

function initParams(key: Tensor): Params {
  const [k1, k2, k3] = mg.random.split(key, 3);
  const he = (k: Tensor, fanIn: number, shape: number[]) =>
    mg.random.normal(k, shape, { std: Math.sqrt(2 / fanIn) });
  return {
    w1: he(k1, 1, [1, 40]),
    b1: mg.zeros([40]),
    w2: he(k2, 40, [40, 40]),
    b2: mg.zeros([40]),
    w3: he(k3, 40, [40, 1]),
    b3: mg.zeros([1]),
  };
}

function mlp(p: Params, x: Tensor): Tensor {
  const h1 = mg.relu(mg.add(mg.matmul(x, p.w1), p.b1));
  const h2 = mg.relu(mg.add(mg.matmul(h1, p.w2), p.b2));
  return mg.add(mg.matmul(h2, p.w3), p.b3);
}

const mse = (p: Params, x: Tensor, y: Tensor) => mg.mean(mg.square(mg.sub(mlp(p, x), y)));

/** A batch of sinusoid tasks on the device: x ∈ U[−5, 5], y = A sin(x − φ). */
function sampleTasks(key: Tensor, tasks: number, shots: number) {
  const [ka, kp, kx] = mg.random.split(key, 3);
  const amp = mg.random.uniform(ka, [tasks, 1, 1], { minval: 0.1, maxval: 5 });
  const phase = mg.random.uniform(kp, [tasks, 1, 1], { minval: 0, maxval: Math.PI });
  const x = mg.random.uniform(kx, [tasks, 2 * shots, 1], { minval: -5, maxval: 5 });
  const y = mg.mul(amp, mg.sin(mg.sub(x, phase)));
  return {
    xs: mg.split(x, 2, 1)[0],
    ys: mg.split(y, 2, 1)[0],
    xq: mg.split(x, 2, 1)[1],
    yq: mg.split(y, 2, 1)[1],
  };
}

export function metaLoss(
  p: Params,
  batch: ReturnType<typeof sampleTasks>,
  innerSteps: number,
  alpha: number,
  firstOrder: boolean,
): Tensor {
  const tasks = batch.xs.shape[0];
  let total: Tensor | null = null;
  for (let t = 0; t < tasks; t++) {
    const pick = (a: Tensor) => mg.slice(a, [t]);
    const [xs, ys, xq, yq] = [pick(batch.xs), pick(batch.ys), pick(batch.xq), pick(batch.yq)];
    let adapted = p;
    for (let s = 0; s < innerSteps; s++) {
      let g = mg.grad(mse)(adapted, xs, ys) as Params;
      if (firstOrder) g = mg.stopGradient(g);
      adapted = mg.tree.map((w: Tensor, gw: Tensor) => mg.sub(w, mg.mul(gw, alpha)), adapted, g);
    }
    const l = mse(adapted, xq, yq);
    total = total ? mg.add(total, l) : l;
  }
  return mg.div(total!, tasks);
}

export interface MamlFigure {
  innerSteps: number;
  firstOrder: boolean;
  msPerStep: number;
  peakBytes: number;
  dispatchesPerStep: number;
}

export async function benchMamlEager(
  innerSteps: number,
  firstOrder: boolean,
  steps = 3,
): Promise<MamlFigure> {
  const params = initParams(mg.random.key(0));
  const step = (i: number) =>
    mg.tidy(() => {
      const batch = sampleTasks(mg.random.foldIn(mg.random.key(1), i), 25, 10);
      return mg.valueAndGrad((p: Params) => metaLoss(p, batch, innerSteps, 0.01, firstOrder))(
        params,
      );
    });
  const [l0, g0] = step(0); // warm-up: compiles kernels
  await l0.item();
  mg.tree.map((t: Tensor) => t.dispose(), [l0, g0]);
  mg.resetPeakMemory();
  const base = mg.memory().liveBytes;
  const d0 = mg.runtimeStats().dispatches;
  const t0 = performance.now();
  for (let i = 1; i <= steps; i++) {
    const [loss, grads] = step(i);
    await loss.item(); // read back every step, as a training loop logging the loss would
    mg.tree.map((t: Tensor) => t.dispose(), [loss, grads]);
  }
  const ms = (performance.now() - t0) / steps;
  const figure = {
    innerSteps,
    firstOrder,
    msPerStep: ms,
    peakBytes: mg.memory().peakBytes - base,
    dispatchesPerStep: (mg.runtimeStats().dispatches - d0) / steps,
  };
  mg.tree.map((t: Tensor) => t.dispose(), params);
  return figure;
}

if (import.meta.main) {
  const info = await mg.init();
  console.log(`adapter: ${info.description}`);
  console.log(
    "| MAML sinusoid, eager | ms / meta-step | meta-steps/s | peak live bytes | dispatches / step |\n|---|---:|---:|---:|---:|",
  );
  for (const [inner, fo] of [[1, false], [5, false], [1, true]] as const) {
    const f = await benchMamlEager(inner, fo, inner === 5 ? 2 : 3);
    console.log(
      `| ${fo ? "first" : "second"}-order, ${inner} inner step${inner > 1 ? "s" : ""} | ${
        f.msPerStep.toFixed(0)
      } | ` +
        `${(1000 / f.msPerStep).toFixed(2)} | ${f.peakBytes} | ${f.dispatchesPerStep.toFixed(0)} |`,
    );
  }
}
