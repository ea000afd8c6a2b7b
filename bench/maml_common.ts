/**
 * The sinusoid MAML workload shared by the benchmarks and the vmap/jit acceptance test: an
 * MLP 1-H-H-1 with ReLU, inner SGD, MSE; the meta-loss as an eager per-task loop and as a
 * vmap over tasks. (Layers and optimisers proper arrive with issue #5.)
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import type { RegressionBatch } from "../envs/sinusoid.ts";

export type Params = { w1: Tensor; b1: Tensor; w2: Tensor; b2: Tensor; w3: Tensor; b3: Tensor };

export function initMlp(key: Tensor, hidden = 40): Params {
  const [k1, k2, k3] = mg.random.split(key, 3);
  const he = (k: Tensor, fanIn: number, shape: number[]) =>
    mg.random.normal(k, shape, { std: Math.sqrt(2 / fanIn) });
  return {
    w1: he(k1, 1, [1, hidden]),
    b1: mg.zeros([hidden]),
    w2: he(k2, hidden, [hidden, hidden]),
    b2: mg.zeros([hidden]),
    w3: he(k3, hidden, [hidden, 1]),
    b3: mg.zeros([1]),
  };
}

export function mlp(p: Params, x: Tensor): Tensor {
  const h1 = mg.relu(mg.add(mg.matmul(x, p.w1), p.b1));
  const h2 = mg.relu(mg.add(mg.matmul(h1, p.w2), p.b2));
  return mg.add(mg.matmul(h2, p.w3), p.b3);
}

export const mse = (p: Params, x: Tensor, y: Tensor): Tensor =>
  mg.mean(mg.square(mg.sub(mlp(p, x), y)));

export interface MamlConfig {
  innerSteps: number;
  alpha: number;
  firstOrder: boolean;
}

/** Query loss after adapting to one task's support set. */
export function taskLoss(
  p: Params,
  xs: Tensor,
  ys: Tensor,
  xq: Tensor,
  yq: Tensor,
  c: MamlConfig,
): Tensor {
  let adapted = p;
  for (let s = 0; s < c.innerSteps; s++) {
    let g = mg.grad(mse)(adapted, xs, ys) as Params;
    if (c.firstOrder) g = mg.stopGradient(g);
    adapted = mg.tree.map((w: Tensor, gw: Tensor) => mg.sub(w, mg.mul(gw, c.alpha)), adapted, g);
  }
  return mse(adapted, xq, yq);
}

/** Mean query loss over tasks, with a JS loop over tasks (the eager baseline). */
export function metaLossLoop(p: Params, b: RegressionBatch, c: MamlConfig): Tensor {
  const tasks = b.xs.shape[0];
  let total: Tensor | null = null;
  for (let t = 0; t < tasks; t++) {
    const pick = (a: Tensor) => mg.slice(a, [t]);
    const l = taskLoss(p, pick(b.xs), pick(b.ys), pick(b.xq), pick(b.yq), c);
    total = total ? mg.add(total, l) : l;
  }
  return mg.div(total!, tasks);
}

/** Mean query loss over tasks, vectorised with vmap (one batched computation). */
export function metaLossVmap(p: Params, b: RegressionBatch, c: MamlConfig): Tensor {
  const perTask = mg.vmap((xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor) =>
    taskLoss(p, xs, ys, xq, yq, c)
  );
  return mg.mean(perTask(b.xs, b.ys, b.xq, b.yq) as Tensor);
}
