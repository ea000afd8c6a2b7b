/**
 * Layers as pure modules: `init(key) → { params, state }` and
 * `apply(params, state, x, ctx) → [y, state]`. Parameters and state are pytrees, so layers
 * work under grad, vmap and jit, and MAML can adapt any parameter tree.
 */
import type { Tensor } from "../tensor.ts";
import * as random from "../random.ts";
import { arange, full } from "../ops/creation.ts";
import { add, div, greater, mul, rsqrt, sub, where } from "../ops/math.ts";
import { mean, softmax, sum, variance } from "../ops/reduce.ts";
import { customVjp } from "../autodiff/api.ts";
import { reshape, swapAxes } from "../ops/shape.ts";
import { matmul } from "../ops/linalg.ts";
import { take } from "../ops/indexing.ts";
import {
  avgPool2d as avgPoolOp,
  conv2d as convOp,
  type Conv2dOptions,
  maxPool2d as maxPoolOp,
  type Pool2dOptions,
} from "../ops/conv.ts";
import { glorotUniform, heNormal, type Initializer, zerosInit } from "./init.ts";

/** Context of an application: training mode and a key for stochastic layers. */
export interface ApplyContext {
  /** Training mode (dropout active, batch norm uses and updates batch statistics). */
  train?: boolean;
  /** Randomness for stochastic layers (dropout). */
  key?: Tensor;
}

/** A pure layer: parameters and state in, output and new state out. */
export interface Module<P = any, S = any> {
  /** Fresh parameters and state from a key. */
  init(key: Tensor): { params: P; state: S };
  /** Apply the layer; returns the output and the (possibly updated) state. */
  apply(params: P, state: S, x: Tensor, ctx?: ApplyContext): [Tensor, S];
}

/**
 * A fully connected layer y = x·W + b over the last axis.
 *
 * @example
 * ```ts
 * import { nn, random, ones } from "@metagrad/metagrad";
 * const layer = nn.dense(3, 2);
 * const { params, state } = layer.init(random.key(0));
 * const [y] = layer.apply(params, state, ones([5, 3])); // [5, 2]
 * ```
 */
export function dense(
  inFeatures: number,
  outFeatures: number,
  opts: { init?: Initializer; bias?: boolean; biasInit?: Initializer } = {},
): Module<{ w: Tensor; b?: Tensor }, null> {
  const winit = opts.init ?? glorotUniform;
  const bias = opts.bias ?? true;
  return {
    init(key) {
      const params: { w: Tensor; b?: Tensor } = { w: winit(key, [inFeatures, outFeatures]) };
      if (bias) {
        params.b = opts.biasInit
          ? opts.biasInit(random.foldIn(key, 1), [outFeatures], inFeatures)
          : zerosInit(key, [outFeatures]);
      }
      return { params, state: null };
    },
    apply(p, _s, x) {
      if (x.shape.at(-1) !== inFeatures) {
        throw new RangeError(
          `dense: expects inputs [..., ${inFeatures}], got [${x.shape.join(", ")}]`,
        );
      }
      const y = matmul(x, p.w);
      return [p.b ? add(y, p.b) : y, null];
    },
  };
}

/**
 * A 2-D convolution layer over NCHW inputs (weights OIHW, He-normal by default).
 *
 * @example
 * ```ts
 * import { nn, random, ones } from "@metagrad/metagrad";
 * const conv = nn.conv2d(1, 64, 3, { padding: 1 });
 * const { params, state } = conv.init(random.key(0));
 * const [y] = conv.apply(params, state, ones([2, 1, 28, 28])); // [2, 64, 28, 28]
 * ```
 */
export function conv2d(
  inChannels: number,
  outChannels: number,
  kernel: number | readonly [number, number],
  opts: Conv2dOptions & { init?: Initializer; bias?: boolean } = {},
): Module<{ w: Tensor; b?: Tensor }, null> {
  const [kh, kw] = typeof kernel === "number" ? [kernel, kernel] : kernel;
  const groups = opts.groups ?? 1;
  const winit = opts.init ?? heNormal;
  return {
    init(key) {
      const params: { w: Tensor; b?: Tensor } = {
        w: winit(key, [outChannels, inChannels / groups, kh, kw]),
      };
      if (opts.bias ?? true) params.b = zerosInit(key, [outChannels]);
      return { params, state: null };
    },
    apply(p, _s, x) {
      const y = convOp(x, p.w, opts);
      return [p.b ? add(y, reshape(p.b, [outChannels, 1, 1])) : y, null];
    },
  };
}

/** A stateless module from a function of the input. */
export function fn(f: (x: Tensor) => Tensor): Module<null, null> {
  return { init: () => ({ params: null, state: null }), apply: (_p, _s, x) => [f(x), null] };
}

/**
 * Max pooling as a module. @example
 * ```ts
 * import { nn } from "@metagrad/metagrad";
 * const pool = nn.maxPool2d(2);
 * ```
 */
export function maxPool2d(
  window: number | readonly [number, number],
  opts: Pool2dOptions = {},
): Module<null, null> {
  return fn((x) => maxPoolOp(x, window, opts));
}

/**
 * Average pooling as a module. @example
 * ```ts
 * import { nn } from "@metagrad/metagrad";
 * const pool = nn.avgPool2d(2);
 * ```
 */
export function avgPool2d(
  window: number | readonly [number, number],
  opts: Pool2dOptions = {},
): Module<null, null> {
  return fn((x) => avgPoolOp(x, window, opts));
}

/**
 * Flatten everything but the leading (batch) axis. @example
 * ```ts
 * import { nn } from "@metagrad/metagrad";
 * const flat = nn.flatten();
 * ```
 */
export function flatten(): Module<null, null> {
  return fn((x) => reshape(x, [x.shape[0], -1]));
}

/**
 * Layer normalisation over the last axis with learned scale and shift.
 *
 * @example
 * ```ts
 * import { nn } from "@metagrad/metagrad";
 * const ln = nn.layerNorm(64);
 * ```
 */
export function layerNorm(
  features: number,
  opts: { eps?: number } = {},
): Module<{ gamma: Tensor; beta: Tensor }, null> {
  const eps = opts.eps ?? 1e-5;
  return {
    init: (key) => ({
      params: {
        gamma: full([features], 1, { backend: key.backend }),
        beta: zerosInit(key, [features]),
      },
      state: null,
    }),
    apply(p, _s, x) {
      const mu = mean(x, -1, true);
      const xhat = mul(sub(x, mu), rsqrt(add(variance(x, -1, true), eps)));
      return [add(mul(xhat, p.gamma), p.beta), null];
    },
  };
}

/** Batch-norm statistics source. */
export type BatchNormMode =
  /** Batch statistics in training (updating the running averages), running ones otherwise. */
  | "standard"
  /** Always the current batch's statistics — MAML's per-task "transductive" batch norm. */
  | "transductive";

/**
 * Batch normalisation over every axis but 1 (channels of NCHW, features of [N, C]), with
 * running statistics as state.
 *
 * @example
 * ```ts
 * import { nn } from "@metagrad/metagrad";
 * const bn = nn.batchNorm(64, { mode: "transductive" });
 * ```
 */
export function batchNorm(
  channels: number,
  opts: { momentum?: number; eps?: number; mode?: BatchNormMode } = {},
): Module<{ gamma: Tensor; beta: Tensor }, { mean: Tensor; var: Tensor }> {
  const momentum = opts.momentum ?? 0.9, eps = opts.eps ?? 1e-5, mode = opts.mode ?? "standard";
  return {
    init: (key) => ({
      params: {
        gamma: full([channels], 1, { backend: key.backend }),
        beta: zerosInit(key, [channels]),
      },
      state: {
        mean: zerosInit(key, [channels]),
        var: full([channels], 1, { backend: key.backend }),
      },
    }),
    apply(p, s, x, ctx = {}) {
      if (x.shape[1] !== channels) {
        throw new RangeError(
          `batchNorm: expects ${channels} channels on axis 1, got [${x.shape.join(", ")}]`,
        );
      }
      const { axes, bshape } = channelAxes(x);
      const useBatch = mode === "transductive" || ctx.train;
      const y = useBatch ? batchNormalize(x, p.gamma, p.beta, eps) : add(
        mul(
          mul(sub(x, reshape(s.mean, bshape)), reshape(rsqrt(add(s.var, eps)), bshape)),
          reshape(p.gamma, bshape),
        ),
        reshape(p.beta, bshape),
      );
      const next = ctx.train
        ? {
          mean: add(mul(s.mean, momentum), mul(mean(x, axes), 1 - momentum)),
          var: add(mul(s.var, momentum), mul(variance(x, axes), 1 - momentum)),
        }
        : s;
      return [y, next];
    },
  };
}

/** Per-channel batch statistics of x [N, C, ...]: the axes reduced, the broadcast shape. */
function channelAxes(x: Tensor) {
  return {
    axes: x.shape.map((_, i) => i).filter((i) => i !== 1),
    bshape: x.shape.map((d, i) => (i === 1 ? d : 1)),
    count: x.size / x.shape[1],
  };
}

/**
 * y = (x − mean) / √(var + eps) · γ + β with batch statistics, and its gradient written out
 * (dβ = Σ gy, dγ = Σ gy·x̂, dx = γ/σ · (gy − dβ/n − x̂·dγ/n)) instead of differentiated op by
 * op: the backward is two reductions and one fused elementwise pass instead of a dozen full-
 * size intermediates — batch norm dominated the Conv-4 step. The rule is itself made of
 * differentiable ops, so second-order MAML differentiates through it.
 */
const batchNormalize = customVjp(
  (x: Tensor, gamma: Tensor, beta: Tensor, eps: number) => normalizeForward(x, gamma, beta, eps)[0],
  (x: Tensor, gamma: Tensor, beta: Tensor, eps: number) => normalizeForward(x, gamma, beta, eps),
  (r: { x: Tensor; mu: Tensor; rstd: Tensor; gamma: Tensor }, gy: Tensor) => {
    const { axes, bshape, count } = channelAxes(r.x);
    const xhat = mul(sub(r.x, reshape(r.mu, bshape)), reshape(r.rstd, bshape));
    const dbeta = sum(gy, axes);
    const dgamma = sum(mul(gy, xhat), axes);
    const centred = sub(
      sub(gy, reshape(div(dbeta, count), bshape)),
      mul(xhat, reshape(div(dgamma, count), bshape)),
    );
    const dx = mul(centred, reshape(mul(r.gamma, r.rstd), bshape));
    return [dx, dgamma, dbeta, null];
  },
);

function normalizeForward(
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  eps: number,
): [Tensor, { x: Tensor; mu: Tensor; rstd: Tensor; gamma: Tensor }] {
  const { axes, bshape } = channelAxes(x);
  const mu = mean(x, axes);
  const rstd = rsqrt(add(variance(x, axes), eps));
  const scale = reshape(mul(gamma, rstd), bshape);
  const y = add(mul(sub(x, reshape(mu, bshape)), scale), reshape(beta, bshape));
  return [y, { x, mu, rstd, gamma }];
}

/**
 * Inverted dropout: zero a fraction `rate` of activations in training and scale the rest by
 * 1/(1 − rate); needs `ctx.key` in training, identity otherwise.
 *
 * @example
 * ```ts
 * import { nn } from "@metagrad/metagrad";
 * const drop = nn.dropout(0.1);
 * ```
 */
export function dropout(rate: number): Module<null, null> {
  if (!(rate >= 0 && rate < 1)) {
    throw new RangeError(`dropout: rate must be in [0, 1), got ${rate}`);
  }
  return {
    init: () => ({ params: null, state: null }),
    apply(_p, _s, x, ctx = {}) {
      if (!ctx.train || rate === 0) return [x, null];
      if (!ctx.key) {
        throw new TypeError(
          "dropout: training mode needs a key in the apply context ({ train: true, key })",
        );
      }
      const keepMask = greater(random.uniform(ctx.key, x.shape), rate);
      return [where(keepMask, div(x, 1 - rate), 0), null];
    },
  };
}

/**
 * A lookup table from integer ids to vectors.
 *
 * @example
 * ```ts
 * import { nn } from "@metagrad/metagrad";
 * const emb = nn.embedding(1000, 32);
 * ```
 */
export function embedding(
  vocab: number,
  dim: number,
  opts: { init?: Initializer } = {},
): Module<{ table: Tensor }, null> {
  return {
    init: (key) => ({
      params: {
        table: (opts.init ?? ((k, s) => random.normal(k, s, { std: 1 })))(key, [vocab, dim]),
      },
      state: null,
    }),
    apply: (p, _s, ids) => [take(p.table, ids, 0), null],
  };
}

/**
 * Modules applied in order; params and state are arrays with one entry per module, and each
 * module gets its own key.
 *
 * @example
 * ```ts
 * import { nn, random, ones, relu } from "@metagrad/metagrad";
 * const net = nn.sequential(nn.dense(1, 40), nn.fn(relu), nn.dense(40, 1));
 * const { params, state } = net.init(random.key(0));
 * const [y] = net.apply(params, state, ones([10, 1]));
 * ```
 */
export function sequential(...modules: Module[]): Module<unknown[], unknown[]> {
  return {
    init(key) {
      const keys = random.split(key, Math.max(2, modules.length));
      const parts = modules.map((m, i) => m.init(keys[i]));
      return { params: parts.map((p) => p.params), state: parts.map((p) => p.state) };
    },
    apply(params, state, x, ctx = {}) {
      const keys = ctx.train && ctx.key ? random.split(ctx.key, Math.max(2, modules.length)) : [];
      const next: unknown[] = [];
      let y = x;
      modules.forEach((m, i) => {
        const [out, s] = m.apply(params[i], state[i], y, { ...ctx, key: keys[i] ?? ctx.key });
        y = out;
        next.push(s);
      });
      return [y, next];
    },
  };
}

/**
 * Multi-head self-attention over [..., T, d] inputs, optionally causal (position t attends to
 * positions ≤ t only).
 *
 * @example
 * ```ts
 * import { nn, random, ones } from "@metagrad/metagrad";
 * const attn = nn.multiHeadAttention(16, 4, { causal: true });
 * const { params, state } = attn.init(random.key(0));
 * const [y] = attn.apply(params, state, ones([2, 10, 16])); // [2, 10, 16]
 * ```
 */
export function multiHeadAttention(
  dModel: number,
  numHeads: number,
  opts: { causal?: boolean } = {},
): Module<{ wq: Tensor; wk: Tensor; wv: Tensor; wo: Tensor }, null> {
  if (!Number.isInteger(dModel / numHeads)) {
    throw new RangeError(
      `multiHeadAttention: ${dModel} features do not split into ${numHeads} heads`,
    );
  }
  const dh = dModel / numHeads;
  return {
    init(key) {
      const [k1, k2, k3, k4] = random.split(key, 4);
      const g = (k: Tensor) => glorotUniform(k, [dModel, dModel]);
      return { params: { wq: g(k1), wk: g(k2), wv: g(k3), wo: g(k4) }, state: null };
    },
    apply(p, _s, x) {
      const T = x.shape.at(-2)!;
      const lead = x.shape.slice(0, -2);
      // [..., T, d] → [..., h, T, dh]
      const heads = (w: Tensor) =>
        swapAxes(reshape(matmul(x, w), [...lead, T, numHeads, dh]), -2, -3);
      const q = heads(p.wq), k = heads(p.wk), v = heads(p.wv);
      let scores = mul(matmul(q, k, { transposeB: true }), 1 / Math.sqrt(dh)); // [..., h, T, T]
      if (opts.causal) {
        const pos = arange(T, undefined, 1, { backend: x.backend });
        const future = greater(reshape(pos, [1, T]), reshape(pos, [T, 1])); // key after query
        scores = where(future, -1e9, scores);
      }
      const mixed = matmul(softmax(scores, -1), v); // [..., h, T, dh]
      const merged = reshape(swapAxes(mixed, -2, -3), [...lead, T, dModel]);
      return [matmul(merged, p.wo), null];
    },
  };
}

/**
 * A causal (left-padded), optionally dilated 1-D convolution over [N, C, T]: output t sees
 * inputs ≤ t only (the building block of temporal-convolution learners such as SNAIL).
 *
 * @example
 * ```ts
 * import { nn } from "@metagrad/metagrad";
 * const tc = nn.causalConv1d(8, 16, 2, { dilation: 4 });
 * ```
 */
export function causalConv1d(
  inChannels: number,
  outChannels: number,
  kernel: number,
  opts: { dilation?: number; init?: Initializer } = {},
): Module<{ w: Tensor; b: Tensor }, null> {
  const dilation = opts.dilation ?? 1;
  const inner = conv2d(inChannels, outChannels, [1, kernel], {
    dilation: [1, dilation],
    padding: [0, 0, (kernel - 1) * dilation, 0],
    init: opts.init,
  });
  return {
    init: (key) => inner.init(key) as { params: { w: Tensor; b: Tensor }; state: null },
    apply(p, s, x) {
      const [N, C, T] = x.shape;
      const [y] = inner.apply(p, s, reshape(x, [N, C, 1, T]));
      return [reshape(y, [N, outChannels, T]), null];
    },
  };
}
