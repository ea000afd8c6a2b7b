/** Optimizers against hand-computed updates; differentiating through Adam; under jit. */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { assertAllClose, assertThrowsWith } from "./helpers.ts";

const { optim } = mg;
mg.setBackend("reference");

const T = (v: number[]) => mg.tensor(v);
const vals = async (t: unknown) => await (t as Tensor).toFloat64();

/** Run `steps` updates with the given gradients; return the parameter after each. */
async function run(
  opt: mg.optim.GradientTransformation<any>,
  p0: number[],
  grads: number[][],
): Promise<number[][]> {
  let params: { w: Tensor } = { w: T(p0) };
  let state = opt.init(params);
  const out: number[][] = [];
  for (const g of grads) {
    const [u, s] = opt.update({ w: T(g) }, state, params);
    params = optim.applyUpdates(params, u);
    state = s;
    out.push([...(await vals(params.w))]);
  }
  return out;
}

Deno.test("sgd, momentum and Nesterov match hand-computed steps", async () => {
  assertAllClose((await run(optim.sgd(0.1), [1, 2], [[1, -1]]))[0], [0.9, 2.1]);
  // momentum 0.9, constant gradient 1: velocity 1, 1.9, 2.71
  const m = await run(optim.sgd(0.1, { momentum: 0.9 }), [0], [[1], [1], [1]]);
  assertAllClose(m.map((x) => x[0]), [-0.1, -0.29, -0.561], { rtol: 1e-12 });
  // Nesterov: direction μ·v + g: 1.9, 2.71, 3.439
  const n = await run(optim.sgd(0.1, { momentum: 0.9, nesterov: true }), [0], [[1], [1], [1]]);
  assertAllClose(n.map((x) => x[0]), [-0.19, -0.461, -0.8049], { rtol: 1e-12 });
});

function adamReference(
  p: number,
  grads: number[],
  lr: number,
  b1 = 0.9,
  b2 = 0.999,
  eps = 1e-8,
  wd = 0,
): number[] {
  let m = 0, v = 0;
  const out: number[] = [];
  grads.forEach((g, i) => {
    const t = i + 1;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const update = (m / (1 - b1 ** t)) / (Math.sqrt(v / (1 - b2 ** t)) + eps) + wd * p;
    p = p - lr * update;
    out.push(p);
  });
  return out;
}

Deno.test("adam and adamw match hand-computed steps, bias correction included", async () => {
  const grads = [0.5, -1, 2, 0.25];
  const a = await run(optim.adam(0.1), [1], grads.map((g) => [g]));
  assertAllClose(a.map((x) => x[0]), adamReference(1, grads, 0.1), { rtol: 1e-12 });
  const w = await run(
    optim.adamw(0.1, { weightDecay: 0.05, b1: 0.8, b2: 0.99 }),
    [1],
    grads.map((g) => [g]),
  );
  assertAllClose(w.map((x) => x[0]), adamReference(1, grads, 0.1, 0.8, 0.99, 1e-8, 0.05), {
    rtol: 1e-12,
  });
  assertThrowsWith(
    () => optim.adamw(0.1).update({ w: T([1]) }, optim.adamw(0.1).init({ w: T([1]) })),
    "adamw",
    "params",
  );
});

Deno.test("rmsprop, global-norm clipping and chain", async () => {
  // rmsprop decay 0.9: nu1 = 0.1·g², update = g/√nu
  const r = await run(optim.rmsprop(0.01, { decay: 0.9, eps: 0 }), [0], [[2], [2]]);
  const nu1 = 0.4, nu2 = 0.9 * 0.4 + 0.4;
  assertAllClose(r.map((x) => x[0]), [
    -0.01 * 2 / Math.sqrt(nu1),
    -0.01 * 2 / Math.sqrt(nu1) - 0.01 * 2 / Math.sqrt(nu2),
  ], { rtol: 1e-12 });
  const clip = optim.clipByGlobalNorm(1);
  const [u] = clip.update({ a: T([3]), b: T([4]) }, null);
  assertAllClose(await vals((u as { a: Tensor }).a), [0.6]);
  assertAllClose(await vals((u as { b: Tensor }).b), [0.8]);
  const [same] = optim.clipByGlobalNorm(10).update({ a: T([3]), b: T([4]) }, null);
  assertAllClose(await vals((same as { a: Tensor }).a), [3]);
  const c = await run(optim.chain(optim.clipByGlobalNorm(1), optim.sgd(0.5)), [0, 0], [[3, 4]]);
  assertAllClose(c[0], [-0.3, -0.4]);
});

Deno.test("learning-rate schedules", async () => {
  const at = async (f: (s: Tensor) => Tensor | number, step: number) => {
    const r = f(mg.tensor(step));
    return typeof r === "number" ? r : (await r.toFloat64())[0];
  };
  const cos = optim.schedules.cosineDecay(1, 10, 0.1);
  assertAllClose([await at(cos, 0), await at(cos, 5), await at(cos, 10), await at(cos, 20)], [
    1,
    0.55,
    0.1,
    0.1,
  ], { rtol: 1e-12, atol: 1e-12 });
  const warm = optim.schedules.linearWarmup(1, 4, optim.schedules.exponentialDecay(1, 0.5, 2));
  assertAllClose([await at(warm, 0), await at(warm, 3), await at(warm, 4), await at(warm, 8)], [
    0.25,
    1,
    1,
    0.25,
  ], { rtol: 1e-12 });
  assertAllClose([await at(optim.schedules.constant(0.3), 7)], [0.3]);
  const line = optim.schedules.linearDecay(0.1, 10, 0.02);
  assertAllClose(
    await Promise.all([0, 5, 10, 30].map((k) => at(line, k))),
    [0.1, 0.06, 0.02, 0.02],
    {
      rtol: 1e-12,
    },
  );
  const drop = optim.schedules.piecewiseConstant([3, 2, 1], [2, 5]);
  assertAllClose(await Promise.all([0, 1, 2, 4, 5, 9].map((k) => at(drop, k))), [3, 3, 2, 2, 1, 1]);
  assertThrowsWith(
    () => optim.schedules.piecewiseConstant([1, 2], [5, 3]),
    "increasing boundaries and one more value than boundaries",
  );
  // a schedule drives an optimizer through its step count
  const s = await run(optim.sgd(optim.schedules.linearWarmup(1, 2)), [0], [[1], [1], [1]]);
  assertAllClose(s.map((x) => x[0]), [-0.5, -1.5, -2.5]);
});

Deno.test("differentiating through three Adam steps matches finite differences", async () => {
  const target = T([0.3, -0.2]);
  const loss = (p: Tensor) => mg.sum(mg.square(mg.sub(mg.mul(p, p), target)));
  const opt = optim.adam(0.05);
  const unrolled = (p0: Tensor) => {
    let p = p0;
    let state = opt.init(p);
    for (let i = 0; i < 3; i++) {
      const [u, s] = opt.update(mg.grad(loss)(p), state, p);
      p = optim.applyUpdates(p, u);
      state = s;
    }
    return loss(p);
  };
  await mg.checkGrads(unrolled, [T([0.9, 0.4])], { rtol: 1e-5, atol: 1e-7 });
});

Deno.test("an optimizer step runs under jit with the same result", async () => {
  mg.setBackend("webgpu");
  try {
    const opt = optim.adam(0.01);
    const params = { w: mg.tensor([[0.5, -0.5], [0.25, 1]]), b: mg.tensor([0.1, 0.2]) };
    const grads = { w: mg.tensor([[1, 2], [3, 4]]), b: mg.tensor([-1, 1]) };
    const step = (p: typeof params, s: unknown, g: typeof grads) => {
      const [u, next] = opt.update(g, s as never, p);
      return [optim.applyUpdates(p, u), next];
    };
    const s0 = opt.init(params);
    const eager = step(params, s0, grads);
    const jitted = mg.jit(step)(params, s0, grads);
    const [le] = mg.tree.flatten<Tensor>(eager), [lj] = mg.tree.flatten<Tensor>(jitted);
    for (let i = 0; i < le.length; i++) {
      assertAllClose(await lj[i].toFloat64(), await le[i].toFloat64(), { rtol: 1e-6, atol: 1e-7 });
    }
  } finally {
    mg.setBackend("reference");
  }
});
