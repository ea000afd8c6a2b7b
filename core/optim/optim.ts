/**
 * Optimizers as pure gradient transformations (optax style): `init(params) → state` and
 * `update(grads, state, params) → [updates, state]`, over pytrees. Everything is ops on
 * tensors — the step count too — so updates run under jit and can be differentiated through
 * (Meta-SGD, learned optimizers, MAML with an Adam inner loop).
 */

import type { Tensor } from "../tensor.ts";
import * as tree from "../tree.ts";
import { full, zerosLike } from "../ops/creation.ts";
import { add, cos, div, maximum, minimum, mul, pow, sqrt, sub, where } from "../ops/math.ts";
import { sum } from "../ops/reduce.ts";
import { checkNumber, checkOptions, describe } from "../validate.ts";

/** A learning rate: a number, or a schedule mapping the (f32 scalar) step to a rate. */
export type Schedule = number | ((step: Tensor) => Tensor | number);

/** A pure optimizer / gradient transformation over pytrees of tensors. */
export interface GradientTransformation<S = unknown> {
  /** The initial state for these parameters. */
  init(params: unknown): S;
  /** Updates to add to the parameters, and the next state. */
  update(grads: unknown, state: S, params?: unknown): [unknown, S];
}

const mapTree = (fn: (...xs: Tensor[]) => Tensor, ...trees: unknown[]): any =>
  tree.map(fn, trees[0], ...trees.slice(1));

/**
 * A learning rate checked at construction: a finite number ≥ 0, or a schedule function (NaN,
 * ±Infinity and negative rates would only show up later as NaN parameters).
 */
function checkSchedule(lr: unknown, where: string): Schedule {
  if (typeof lr === "function") return lr as Schedule;
  if (typeof lr === "number") return checkNumber(lr, "the learning rate", where, { min: 0 });
  throw new TypeError(
    `${where}: the learning rate must be a number ≥ 0 or a schedule (step) => rate, got ${
      describe(lr)
    }`,
  );
}

/** A decay rate in [0, 1). */
const decayRate = (v: unknown, name: string, where: string) =>
  checkNumber(v, name, where, { min: 0, max: 1, exclusiveMax: true });

function rateAt(lr: Schedule, step: Tensor): Tensor | number {
  return typeof lr === "number" ? lr : lr(step);
}

function firstLeaf(params: unknown): Tensor {
  const leaf = tree.leaves<Tensor>(params)[0];
  if (!leaf) throw new TypeError("optimizer init: params has no tensors");
  return leaf;
}

/** A step counter on the parameters' backend (f32 so schedules can use it directly). */
function counter(params: unknown): Tensor {
  return full([], 0, { backend: firstLeaf(params).backend });
}

/**
 * params + updates, leaf by leaf.
 *
 * @example
 * ```ts
 * import { optim, tensor } from "@metagrad/metagrad";
 * const p = optim.applyUpdates({ w: tensor([1, 2]) }, { w: tensor([0.5, 0.5]) }); // { w: [1.5, 2.5] }
 * ```
 */
export function applyUpdates<T>(params: T, updates: unknown): T {
  return mapTree((p, u) => add(p, u), params, updates);
}

/**
 * Stochastic gradient descent, optionally with (Nesterov) momentum.
 *
 * @example
 * ```ts
 * import { optim, tensor } from "@metagrad/metagrad";
 * const opt = optim.sgd(0.1, { momentum: 0.9 });
 * const params = { w: tensor([1, 2]) };
 * let state = opt.init(params);
 * const [updates, next] = opt.update({ w: tensor([1, 1]) }, state);
 * ```
 */
export function sgd(
  lr: Schedule,
  opts: { momentum?: number; nesterov?: boolean } = {},
): GradientTransformation<{ step: Tensor; velocity: unknown }> {
  checkSchedule(lr, "optim.sgd");
  checkOptions(opts, "optim.sgd", ["momentum", "nesterov"]);
  const mu = decayRate(opts.momentum ?? 0, "momentum", "optim.sgd");
  return {
    init: (params) => ({
      step: counter(params),
      velocity: mu ? mapTree((p) => zerosLike(p), params) : null,
    }),
    update(grads, state) {
      const rate = rateAt(lr, state.step);
      let direction = grads;
      let velocity = state.velocity;
      if (mu) {
        velocity = mapTree((v, g) => add(mul(v, mu), g), state.velocity, grads);
        direction = opts.nesterov
          ? mapTree((v, g) => add(mul(v, mu), g), velocity, grads)
          : velocity;
      }
      return [mapTree((d) => mul(d, -1).mul(rate), direction), {
        step: add(state.step, 1),
        velocity,
      }];
    },
  };
}

/** Options of `adam` and `adamw`. */
export interface AdamOptions {
  /** Decay of the first-moment average (default 0.9). */
  b1?: number;
  /** Decay of the second-moment average (default 0.999). */
  b2?: number;
  /** Added to the denominator for stability (default 1e-8). */
  eps?: number;
}

function adamLike(
  lr: Schedule,
  opts: AdamOptions,
  weightDecay: number,
): GradientTransformation<{ step: Tensor; m: unknown; v: unknown }> {
  const where = weightDecay ? "optim.adamw" : "optim.adam";
  checkSchedule(lr, where);
  checkOptions(opts, where, ["b1", "b2", "eps", "weightDecay"]);
  const b1 = decayRate(opts.b1 ?? 0.9, "b1", where);
  const b2 = decayRate(opts.b2 ?? 0.999, "b2", where);
  const eps = checkNumber(opts.eps ?? 1e-8, "eps", where, { min: 0 });
  checkNumber(weightDecay, "weightDecay", where, { min: 0 });
  return {
    init: (params) => ({
      step: counter(params),
      m: mapTree((p) => zerosLike(p), params),
      v: mapTree((p) => zerosLike(p), params),
    }),
    update(grads, state, params) {
      if (weightDecay && params === undefined) {
        throw new TypeError("adamw: update needs params for the weight decay");
      }
      const step = add(state.step, 1);
      const m = mapTree((m, g) => add(mul(m, b1), mul(g, 1 - b1)), state.m, grads);
      const v = mapTree((v, g) => add(mul(v, b2), mul(mul(g, g), 1 - b2)), state.v, grads);
      // bias corrections 1 − β^t, as tensors of the step
      const c1 = sub(1, pow(b1, step)), c2 = sub(1, pow(b2, step));
      const rate = rateAt(lr, state.step);
      const updates = mapTree(
        (m: Tensor, v: Tensor, ...p: Tensor[]) => {
          let u = div(div(m, c1), add(sqrt(div(v, c2)), eps));
          if (weightDecay) u = add(u, mul(p[0], weightDecay));
          return mul(mul(u, -1), rate);
        },
        m,
        v,
        ...(weightDecay ? [params] : []),
      );
      return [updates, { step, m, v }];
    },
  };
}

/**
 * Adam (Kingma & Ba) with bias correction.
 *
 * @example
 * ```ts
 * import { optim } from "@metagrad/metagrad";
 * const opt = optim.adam(1e-3);
 * ```
 */
export function adam(
  lr: Schedule,
  opts: AdamOptions = {},
): GradientTransformation<{ step: Tensor; m: unknown; v: unknown }> {
  return adamLike(lr, opts, 0);
}

/**
 * AdamW: Adam with decoupled weight decay (needs params in update).
 *
 * @example
 * ```ts
 * import { optim } from "@metagrad/metagrad";
 * const opt = optim.adamw(1e-3, { weightDecay: 1e-2 });
 * ```
 */
export function adamw(
  lr: Schedule,
  opts: AdamOptions & { weightDecay?: number } = {},
): GradientTransformation<{ step: Tensor; m: unknown; v: unknown }> {
  return adamLike(lr, opts, opts.weightDecay ?? 1e-2);
}

/**
 * RMSProp: divide by a running root mean square of the gradients.
 *
 * @example
 * ```ts
 * import { optim } from "@metagrad/metagrad";
 * const opt = optim.rmsprop(1e-3, { decay: 0.9 });
 * ```
 */
export function rmsprop(
  lr: Schedule,
  opts: { decay?: number; eps?: number } = {},
): GradientTransformation<{ step: Tensor; nu: unknown }> {
  checkSchedule(lr, "optim.rmsprop");
  checkOptions(opts, "optim.rmsprop", ["decay", "eps"]);
  const decay = decayRate(opts.decay ?? 0.9, "decay", "optim.rmsprop");
  const eps = checkNumber(opts.eps ?? 1e-8, "eps", "optim.rmsprop", { min: 0 });
  return {
    init: (params) => ({ step: counter(params), nu: mapTree((p) => zerosLike(p), params) }),
    update(grads, state) {
      const nu = mapTree((n, g) => add(mul(n, decay), mul(mul(g, g), 1 - decay)), state.nu, grads);
      const rate = rateAt(lr, state.step);
      const updates = mapTree((g, n) => mul(div(g, add(sqrt(n), eps)), -1).mul(rate), grads, nu);
      return [updates, { step: add(state.step, 1), nu }];
    },
  };
}

/** The global L2 norm of a pytree of tensors. */
export function globalNorm(t: unknown): Tensor {
  const squares = tree.leaves<Tensor>(t).map((x) => sum(mul(x, x)));
  return sqrt(squares.reduce((a, b) => add(a, b)));
}

/**
 * Scale the whole update so its global norm is at most `maxNorm` (a stateless transform;
 * compose it before an optimizer with `chain`).
 *
 * @example
 * ```ts
 * import { optim } from "@metagrad/metagrad";
 * const opt = optim.chain(optim.clipByGlobalNorm(1), optim.adam(1e-3));
 * ```
 */
export function clipByGlobalNorm(maxNorm: number): GradientTransformation<null> {
  checkNumber(maxNorm, "maxNorm", "optim.clipByGlobalNorm", { min: 0, exclusiveMin: true });
  return {
    init: () => null,
    update(grads) {
      const norm = globalNorm(grads);
      const scale = div(maxNorm, maximum(norm, maxNorm));
      return [mapTree((g) => mul(g, scale), grads), null];
    },
  };
}

/**
 * Compose transformations left to right: each one's updates are the next one's gradients.
 *
 * @example
 * ```ts
 * import { optim } from "@metagrad/metagrad";
 * const opt = optim.chain(optim.clipByGlobalNorm(10), optim.sgd(0.1));
 * ```
 */
export function chain(...ts: GradientTransformation<any>[]): GradientTransformation<unknown[]> {
  ts.forEach((t, i) => checkTransformation(t, `optim.chain: argument ${i}`));
  return {
    init: (params) => ts.map((t) => t.init(params)),
    update(grads, state, params) {
      let g = grads;
      const next = ts.map((t, i) => {
        const [u, s] = t.update(g, state[i], params);
        g = u;
        return s;
      });
      return [g, next];
    },
  };
}

/** Throws unless `t` is a gradient transformation (an object with init and update). */
export function checkTransformation(t: unknown, where: string): GradientTransformation<any> {
  const o = t as Partial<GradientTransformation>;
  if (
    !o || typeof o !== "object" || typeof o.init !== "function" || typeof o.update !== "function"
  ) {
    throw new TypeError(
      `${where}: expected an optimizer ({ init, update }, e.g. optim.adam(1e-3)), got ${
        describe(t)
      }`,
    );
  }
  return t as GradientTransformation<any>;
}

/** Schedule arguments: finite rates, and step counts that are positive integers. */
const rateArg = (v: unknown, name: string, where: string) => checkNumber(v, name, where);
const stepsArg = (v: unknown, name: string, where: string) =>
  checkNumber(v, name, where, { min: 1, integer: true });

/**
 * Learning-rate schedules: functions of the f32 step tensor.
 *
 * @example
 * ```ts
 * import { optim } from "@metagrad/metagrad";
 * const lr = optim.schedules.cosineDecay(1e-3, 10_000);
 * const warm = optim.schedules.linearWarmup(1e-3, 500);
 * const drop = optim.schedules.piecewiseConstant([3e-3, 1e-3], [2000]);
 * const anneal = optim.schedules.linearDecay(0.1, 10_000); // 0.1 → 0
 * ```
 */
export const schedules = {
  /** A fixed rate. */
  constant: (value: number): (step: Tensor) => number => {
    rateArg(value, "value", "schedules.constant");
    return (_step: Tensor): number => value;
  },
  /** value · factor^(step / every). */
  exponentialDecay: (value: number, factor: number, every = 1): (step: Tensor) => Tensor => {
    rateArg(value, "value", "schedules.exponentialDecay");
    checkNumber(factor, "factor", "schedules.exponentialDecay", { min: 0, exclusiveMin: true });
    checkNumber(every, "every", "schedules.exponentialDecay", { min: 0, exclusiveMin: true });
    return (step: Tensor): Tensor => mul(pow(factor, div(step, every)), value);
  },
  /** Half a cosine from value down to value·alpha over `steps`, then flat. */
  cosineDecay: (value: number, steps: number, alpha = 0): (step: Tensor) => Tensor => {
    rateArg(value, "value", "schedules.cosineDecay");
    stepsArg(steps, "steps", "schedules.cosineDecay");
    rateArg(alpha, "alpha", "schedules.cosineDecay");
    return (step: Tensor): Tensor => cosine(step, value, steps, alpha);
  },

  /**
   * values[0] until boundaries[0], then values[1] until boundaries[1], …: a learning-rate drop
   * at given steps (the step count lives in the optimizer state, so a resumed run keeps it).
   */
  piecewiseConstant: (
    values: readonly number[],
    boundaries: readonly number[],
  ): (step: Tensor) => Tensor | number => {
    values.forEach((v, i) => rateArg(v, `values[${i}]`, "schedules.piecewiseConstant"));
    boundaries.forEach((b, i) => rateArg(b, `boundaries[${i}]`, "schedules.piecewiseConstant"));
    const increasing = boundaries.every((b, i) => i === 0 || b > boundaries[i - 1]);
    if (values.length !== boundaries.length + 1 || !increasing) {
      throw new RangeError(
        `schedules.piecewiseConstant: needs increasing boundaries and one more value than ` +
          `boundaries, got values [${values.join(", ")}] and boundaries [${boundaries.join(", ")}]`,
      );
    }
    return (step: Tensor): Tensor | number =>
      boundaries.reduce<Tensor | number>(
        (rate, b, i) => where(step.ge(b), values[i + 1], rate),
        values[0],
      );
  },
  /** A straight line from value to `end` (default 0) over `steps`, then flat. */
  linearDecay: (value: number, steps: number, end = 0): (step: Tensor) => Tensor => {
    rateArg(value, "value", "schedules.linearDecay");
    stepsArg(steps, "steps", "schedules.linearDecay");
    rateArg(end, "end", "schedules.linearDecay");
    return (step: Tensor): Tensor => add(mul(minimum(div(step, steps), 1), end - value), value);
  },
  /** From 0 up to value over `steps`, then `after` (a schedule of the steps since) or flat. */
  linearWarmup: (
    value: number,
    steps: number,
    after?: (step: Tensor) => Tensor | number,
  ): (step: Tensor) => Tensor => {
    rateArg(value, "value", "schedules.linearWarmup");
    stepsArg(steps, "steps", "schedules.linearWarmup");
    return (step: Tensor): Tensor => {
      const warm = mul(minimum(div(add(step, 1), steps), 1), value);
      if (!after) return warm;
      const rest = after(maximum(sub(step, steps), 0));
      return where(step.lt(steps), warm, rest);
    };
  },
};

/** cosineDecay's value at `step`. */
function cosine(step: Tensor, value: number, steps: number, alpha: number): Tensor {
  const t = minimum(div(step, steps), 1);
  const c = mul(add(cos(mul(t, Math.PI)), 1), 0.5);
  return mul(add(mul(c, 1 - alpha), alpha), value);
}
