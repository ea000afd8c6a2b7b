/**
 * Gradient test cases covering every differentiable primitive, instantiated on the current
 * default backend (shared by the reference and WebGPU gradient test files).
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { assertTreesClose, randomValues } from "./helpers.ts";

function t(shape: number[], seed: number, lo = -2, hi = 2): Tensor {
  return mg.tensor(randomValues(shape, "f32", seed, lo, hi), { shape });
}
const idx = (v: number[]) => mg.tensor(v, { dtype: "i32" });

/** A named case: a function and its arguments. */
export type Case = [string, (...xs: Tensor[]) => unknown, Tensor[]];

/** [group name, cases] for every differentiable primitive; tensors are created on call. */
export function gradCases(): Array<[string, Case[]]> {
  const UNARY: Case[] = [
    ["neg", mg.neg, [t([3, 4], 1)]],
    ["abs", mg.abs, [t([5], 2, 0.2, 2)]],
    ["exp", mg.exp, [t([2, 3], 3)]],
    ["log", mg.log, [t([4], 4, 0.5, 3)]],
    ["log1p", mg.log1p, [t([4], 5, -0.5, 2)]],
    ["expm1", mg.expm1, [t([4], 6)]],
    ["sin", mg.sin, [t([4], 7)]],
    ["cos", mg.cos, [t([4], 8)]],
    ["tanh", mg.tanh, [t([4], 9)]],
    ["sqrt", mg.sqrt, [t([4], 10, 0.5, 3)]],
    ["rsqrt", mg.rsqrt, [t([4], 11, 0.5, 3)]],
    ["reciprocal", mg.reciprocal, [t([4], 12, 0.5, 3)]],
    ["sigmoid", mg.sigmoid, [t([4], 13)]],
    ["erf", mg.erf, [t([4], 14)]],
    ["relu", mg.relu, [t([6], 15, 0.1, 2).mul(mg.tensor([1, -1, 1, -1, 1, -1]))]],
    ["softplus", mg.softplus, [t([4], 16)]],
    ["gelu", mg.gelu, [t([4], 17)]],
    ["elu", mg.elu, [t([6], 18, 0.1, 2).mul(mg.tensor([1, -1, 1, -1, 1, -1]))]],
    ["square", mg.square, [t([4], 19)]],
  ];

  const BINARY: Case[] = [
    ["add broadcast", mg.add, [t([3, 1], 20), t([4], 21)]],
    ["sub broadcast", mg.sub, [t([2, 3, 4], 22), t([3, 1], 23)]],
    ["mul broadcast", mg.mul, [t([3, 4], 24), t([1, 4], 25)]],
    ["div broadcast", mg.div, [t([3, 4], 26), t([4], 27, 0.5, 2)]],
    ["pow", mg.pow, [t([3], 28, 0.5, 2), t([3], 29)]],
    ["pow scalar exponent", (a) => mg.pow(a, 3), [t([4], 30)]],
    ["maximum", mg.maximum, [t([5], 31), t([5], 32)]],
    ["minimum", mg.minimum, [t([5], 33), t([1], 34)]],
    ["mod", mg.mod, [t([4], 35, 0.5, 2.5), mg.tensor([3, 3, 3, 3])]],
    ["where", (c, a, b) => mg.where(mg.greater(c, 0), a, b), [t([4], 36), t([4], 37), t([1], 38)]],
  ];

  const REDUCE: Case[] = [
    ["sum all", (x) => mg.sum(x), [t([3, 4], 40)]],
    ["sum axes 0,2", (x) => mg.sum(x, [0, 2]), [t([2, 3, 4], 41)]],
    ["sum keepdims", (x) => mg.sum(x, 1, true), [t([2, 3, 4], 42)]],
    ["mean axes", (x) => mg.mean(x, [1, 2]), [t([2, 3, 4], 43)]],
    ["max", (x) => mg.max(x, 1), [t([3, 5], 44)]],
    ["min", (x) => mg.min(x, [0, 1]), [t([3, 5], 45)]],
    ["prod", (x) => mg.prod(x, 0), [t([3, 2], 46, 0.5, 1.5)]],
    ["logsumexp", (x) => mg.logsumexp(x, -1), [t([3, 5], 47)]],
    ["softmax", (x) => mg.softmax(x, 0), [t([4, 3], 48)]],
    ["logSoftmax", (x) => mg.logSoftmax(x), [t([2, 5], 49)]],
    ["variance", (x) => mg.variance(x, 1), [t([3, 6], 50)]],
  ];

  const LINALG: Case[] = [
    ["matmul", (a, b) => mg.matmul(a, b), [t([3, 4], 60), t([4, 5], 61)]],
    ["matmul batched broadcast", (a, b) => mg.matmul(a, b), [
      t([2, 1, 3, 4], 62),
      t([3, 4, 2], 63),
    ]],
    ["matmul aᵀ", (a, b) => mg.matmul(a, b, { transposeA: true }), [t([4, 3], 64), t([4, 2], 65)]],
    ["matmul bᵀ", (a, b) => mg.matmul(a, b, { transposeB: true }), [
      t([2, 3, 4], 66),
      t([5, 4], 67),
    ]],
    ["matmul aᵀbᵀ", (a, b) => mg.matmul(a, b, { transposeA: true, transposeB: true }), [
      t([4, 3], 68),
      t([2, 4], 69),
    ]],
    ["vector @ matrix", (a, b) => mg.matmul(a, b), [t([4], 70), t([4, 3], 71)]],
  ];

  const SHAPE: Case[] = [
    [
      "reshape",
      (x) =>
        mg.reshape(x, [4, 3]).mul(mg.arange(12, undefined, 1, { dtype: "f32" }).reshape([4, 3])),
      [t([3, 4], 80)],
    ],
    ["transpose", (x) => mg.transpose(x, [2, 0, 1]), [t([2, 3, 4], 81)]],
    ["broadcastTo", (x) => mg.broadcastTo(x, [2, 3, 4]), [t([3, 1], 82)]],
    ["slice with steps", (x) => mg.slice(x, [[1, 6, 2], [null, null, -2]]), [t([7, 5], 83)]],
    ["slice index", (x) => mg.slice(x, [2, [1, 3]]), [t([4, 5], 84)]],
    ["pad", (x) => mg.pad(x, [[1, 2], [0, 3]], 0.5), [t([2, 3], 85)]],
    ["concat", (a, b) => mg.concat([a, b], 1), [t([2, 3], 86), t([2, 2], 87)]],
    ["stack", (a, b) => mg.stack([a, b], 0), [t([3], 88), t([3], 89)]],
    ["flip", (x) => mg.flip(x, [0, 1]), [t([3, 4], 90)]],
    ["tile", (x) => mg.tile(x, [2, 2]), [t([2, 3], 91)]],
    ["repeat", (x) => mg.repeat(x, 3, 1), [t([2, 3], 92)]],
    ["split", (x) => mg.split(x, [1, 3], 1)[1], [t([2, 4], 93)]],
  ];

  const INDEXING: Case[] = [
    ["take", (x) => mg.take(x, idx([2, 0, 2, -1]), 1), [t([3, 4], 100)]],
    ["scatterAdd", (u) => mg.scatterAdd(u, idx([0, 2, 0]), 0, 4), [t([3, 2], 101)]],
    ["pickAlongAxis", (x) => mg.pickAlongAxis(x, idx([1, 0, 3])), [t([3, 4], 102)]],
    [
      "takeAlongAxis",
      (x) => mg.takeAlongAxis(x, mg.reshape(idx([1, 0, 3, 2, 2, -1]), [3, 2]), 1),
      [t([3, 4], 103)],
    ],
    ["cumsum", (x) => mg.cumsum(x, 1), [t([2, 5], 103)]],
    ["cumsum reverse", (x) => mg.cumsum(x, 0, true), [t([4, 2], 104)]],
  ];

  const CONV: Case[] = [
    ["conv2d", (x, w) => mg.conv2d(x, w), [t([2, 2, 5, 5], 110), t([3, 2, 3, 3], 111)]],
    ["conv2d stride 2 pad 1", (x, w) => mg.conv2d(x, w, { stride: 2, padding: 1 }), [
      t([1, 2, 6, 5], 112),
      t([2, 2, 3, 3], 113),
    ]],
    [
      "conv2d dilation + asymmetric pad",
      (x, w) => mg.conv2d(x, w, { dilation: 2, padding: [1, 0, 2, 1] }),
      [t([1, 1, 7, 6], 114), t([2, 1, 2, 3], 115)],
    ],
    ["conv2d groups", (x, w) => mg.conv2d(x, w, { groups: 2, padding: 1 }), [
      t([1, 4, 4, 4], 116),
      t([6, 2, 3, 3], 117),
    ]],
    ["conv2d stride leaves a remainder", (x, w) => mg.conv2d(x, w, { stride: 3 }), [
      t([1, 1, 8, 8], 118),
      t([1, 1, 2, 2], 119),
    ]],
    // order 2 differentiates the weight gradient, a convolution by a 5×5 map of a 3×3
    // cotangent: the kernel-taps-as-patches path on WebGPU
    [
      "conv2d whose order-2 gradient has a kernel larger than its input",
      (x, w) => mg.conv2d(x, w),
      [t([2, 2, 7, 7], 123), t([3, 2, 3, 3], 124)],
    ],
    ["maxPool 2", (x) => mg.maxPool2d(x, 2), [t([1, 2, 4, 6], 120)]],
    ["maxPool 3 stride 2 pad 1", (x) => mg.maxPool2d(x, 3, { stride: 2, padding: 1 }), [
      t([1, 1, 5, 5], 121),
    ]],
    ["avgPool", (x) => mg.avgPool2d(x, [2, 3], { stride: 1 }), [t([2, 1, 4, 5], 122)]],
  ];
  return [
    ["unary", UNARY],
    ["binary with broadcasting", BINARY],
    ["reductions", REDUCE],
    ["matmul", LINALG],
    ["shape ops", SHAPE],
    ["indexing and scans", INDEXING],
    ["convolution and pooling", CONV],
  ];
}

/**
 * Sum of the outputs weighted by fixed random values (one seed per output leaf): a scalar
 * whose gradient is the vjp of f with a dense cotangent, so every element of every input's
 * gradient is exercised.
 */
export function weighted(f: (...xs: Tensor[]) => unknown, backend: mg.BackendName) {
  return (...xs: Tensor[]) => {
    const outs = mg.tree.leaves<unknown>(f(...xs)).filter((o): o is Tensor =>
      o instanceof mg.Tensor && o.dtype === "f32"
    );
    let total: Tensor | null = null;
    outs.forEach((o, i) => {
      const w = mg.tensor(randomValues(o.shape, "f32", 900 + i), { shape: o.shape, backend });
      const term = mg.sum(mg.mul(o, w));
      total = total ? mg.add(total, term) : term;
    });
    return total!;
  };
}

/** Its value, every input's gradient, and the Hessian-vector product along a fixed random direction. */
export function derivatives(
  f: (...xs: Tensor[]) => unknown,
  args: Tensor[],
  backend: mg.BackendName,
) {
  const loss = weighted(f, backend);
  // the f32 arguments (integer ones are indices)
  const all = args.flatMap((a, i) => (a.dtype === "f32" ? [i] : []));
  const grads = mg.grad(loss, { argnums: all })(...args);
  const dirs = all.map((i) =>
    mg.tensor(randomValues(args[i].shape, "f32", 950 + i), { shape: args[i].shape, backend })
  );
  const hvps = mg.grad(
    (...xs: Tensor[]) => {
      const g = mg.grad(loss, { argnums: all })(...xs) as Tensor[];
      return g.map((gi, k) => mg.sum(mg.mul(gi, dirs[k]))).reduce((a, b) => mg.add(a, b));
    },
    { argnums: all },
  )(...args);
  return { values: f(...args), grads, hvps };
}

/**
 * Every case of `group` on WebGPU against the float64 reference backend: its value, each input's
 * gradient and the Hessian-vector product, at every element. Returns one line per failing case (empty
 * when all agree). Runs in Deno's suite and in the browser check page.
 */
export async function compareDerivatives(group: string): Promise<string[]> {
  const restore = mg.getBackend();
  const failures: string[] = [];
  mg.setBackend("reference");
  const ref = gradCases().find(([g]) => g === group)![1];
  mg.setBackend("webgpu");
  const gpu = gradCases().find(([g]) => g === group)![1];
  try {
    for (let c = 0; c < gpu.length; c++) {
      const [name, f, args] = gpu[c];
      try {
        const g = derivatives(f, args, "webgpu");
        // cases make index tensors when called: on the default backend, so switch it
        mg.setBackend("reference");
        let r;
        try {
          r = derivatives(ref[c][1], ref[c][2], "reference");
        } finally {
          mg.setBackend("webgpu");
        }
        await assertTreesClose(g.values, r.values, `${name}: value`, { rtol: 1e-4, atol: 1e-5 });
        await assertTreesClose(g.grads, r.grads, `${name}: gradient`, { rtol: 1e-4, atol: 1e-5 });
        await assertTreesClose(g.hvps, r.hvps, `${name}: HVP`, { rtol: 1e-4, atol: 1e-5 });
      } catch (e) {
        failures.push(`${group} / ${name}: ${(e as Error).message}`);
      }
    }
  } finally {
    mg.setBackend(restore);
  }
  return failures;
}
