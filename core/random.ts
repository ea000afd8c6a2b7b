/**
 * Randomness as explicit keys (JAX style): a key is a u32 tensor [2]; `split` and `foldIn`
 * derive new keys on the device; samplers are pure functions of (key, shape). The WebGPU and
 * reference backends produce identical bits for the same key.
 */
import type { DType } from "./dtype.ts";
import type { BackendName } from "./backend/storage.ts";
import { bind } from "./primitive.ts";
import { randomBits as bitsPrim } from "./primitives/random_bits.ts";
import { assertValidShape, fmtShape } from "./shape.ts";
import { describe } from "./validate.ts";
import { Tensor } from "./tensor.ts";
import { arange, full, tensor } from "./ops/creation.ts";
import {
  add,
  bitwiseOr,
  bitwiseXor,
  cast,
  cos,
  div,
  equal,
  exp,
  floor,
  greater,
  less,
  log,
  logicalAnd,
  logicalNot,
  logicalOr,
  maximum,
  minimum,
  mul,
  neg,
  shiftLeft,
  shiftRight,
  sqrt,
  sub,
  where,
} from "./ops/math.ts";
import { argmax, min, sum } from "./ops/reduce.ts";
import { reshape, slice, stack } from "./ops/shape.ts";
import { argsort, scatterAdd } from "./ops/indexing.ts";

function checkKey(key: Tensor, op: string): Tensor {
  if (!(key instanceof Tensor) || key.dtype !== "u32" || key.ndim !== 1 || key.shape[0] !== 2) {
    const got = key instanceof Tensor
      ? `${key.dtype}${fmtShape(key.shape)}`
      : Array.isArray(key)
      ? `an array of ${(key as unknown[]).length} (a JS array of keys: use splitStacked(key, n) ` +
        `for a [n, 2] tensor that vmap and scan can take)`
      : describe(key);
    throw new TypeError(
      `${op}: expected a key (u32 tensor of shape [2] from key(seed) or split), got ${got}`,
    );
  }
  return key;
}

/**
 * A PRNG key from an integer seed (0 ≤ seed < 2⁵³).
 *
 * @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * const k = random.key(0);
 * const u = random.uniform(k, [3]);
 * ```
 */
export function key(seed: number, opts: { backend?: BackendName } = {}): Tensor {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`key: seed must be an integer in [0, 2^53), got ${seed}`);
  }
  const hi = Math.floor(seed / 2 ** 32), lo = seed >>> 0;
  return tensor(new Uint32Array([hi, lo]), { dtype: "u32", backend: opts.backend });
}

/**
 * `num` independent keys (default 2) derived from `key`, as an array.
 *
 * @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * const [k1, k2] = random.split(random.key(0));
 * ```
 */
export function split(k: Tensor, num = 2): Tensor[] {
  const keys = splitStacked(k, num);
  return Array.from({ length: num }, (_, i) => slice(keys, [i]));
}

/**
 * `num` keys derived from `key`, stacked as a u32 tensor [num, 2] (for vmap over keys).
 *
 * @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * random.splitStacked(random.key(0), 25).shape; // [25, 2]
 * ```
 */
export function splitStacked(k: Tensor, num = 2): Tensor {
  if (!Number.isInteger(num) || num < 1) {
    throw new RangeError(`split: num must be a positive integer, got ${num}`);
  }
  return bind(bitsPrim, [checkKey(k, "split")], { shape: [num, 2], tag: 1, offset: 0 });
}

/**
 * A new key from `key` and an integer (e.g. a step or task index): a JS number, or an i32/u32
 * scalar tensor — a step counter inside `scan`, an index under `vmap` — which gives the same
 * key as the number would.
 *
 * @example
 * ```ts
 * import { random, tensor } from "@metagrad/metagrad";
 * const k7 = random.foldIn(random.key(0), 7);
 * const same = random.foldIn(random.key(0), tensor(7, { dtype: "i32" })); // equal bits
 * ```
 */
export function foldIn(k: Tensor, data: number | Tensor): Tensor {
  if (data instanceof Tensor) return foldInTensor(checkKey(k, "foldIn"), data);
  if (!Number.isInteger(data) || data < 0 || data >= 2 ** 32) {
    throw new RangeError(`foldIn: data must be a u32 integer, got ${describe(data)}`);
  }
  return bind(bitsPrim, [checkKey(k, "foldIn")], { shape: [2], tag: 2, offset: data });
}

/**
 * foldIn with the integer as a tensor (a step index inside scan, a task index under vmap): the
 * same Threefry-2x32 block as the number would give, written with u32 ops so it traces, fuses
 * and batches like any other elementwise code.
 */
function foldInTensor(k: Tensor, data: Tensor): Tensor {
  if (data.ndim !== 0 || (data.dtype !== "i32" && data.dtype !== "u32")) {
    throw new TypeError(
      `foldIn: data must be an integer scalar (i32 or u32), got ${data.dtype}${
        fmtShape(data.shape)
      }`,
    );
  }
  const k0 = slice(k, [0]), k1 = slice(k, [1]);
  const ks = [k0, k1, bitwiseXor(bitwiseXor(k0, k1), 0x1bd11bda)];
  const rotl = (x: Tensor, r: number) => bitwiseOr(shiftLeft(x, r), shiftRight(x, 32 - r));
  let x0 = add(cast(data, "u32"), k0),
    x1 = add(full([], 2, { dtype: "u32", backend: k.backend }), k1);
  for (let i = 0; i < 5; i++) {
    for (const r of THREEFRY_ROTATIONS[i % 2]) {
      x0 = add(x0, x1);
      x1 = bitwiseXor(rotl(x1, r), x0);
    }
    x0 = add(x0, ks[(i + 1) % 3]);
    x1 = add(add(x1, ks[(i + 2) % 3]), i + 1);
  }
  return stack([x0, x1]);
}

/** Threefry-2x32's rotation constants (as in the randomBits primitive). */
const THREEFRY_ROTATIONS = [[13, 15, 26, 6], [17, 29, 16, 24]];

/**
 * Uniform random u32 bits. @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * random.randomBits(random.key(1), [4]);
 * ```
 */
export function randomBits(k: Tensor, shape: readonly number[]): Tensor {
  return bind(bitsPrim, [checkKey(k, "randomBits")], {
    shape: assertValidShape(shape, "randomBits"),
    tag: 0,
    offset: 0,
  });
}

/** Options of the float samplers. */
export interface UniformOptions {
  /** Lower bound, inclusive (default 0). */
  minval?: number;
  /** Upper bound, exclusive (default 1). */
  maxval?: number;
}

/** Uniform in [0, 1) with 24 random bits: exact in f32, identical on both backends. */
function unit(k: Tensor, shape: readonly number[]): Tensor {
  return mul(cast(shiftRight(randomBits(k, shape), 8), "f32"), 2 ** -24);
}

/**
 * Uniform f32 samples in [minval, maxval) (default [0, 1)).
 *
 * @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * const phase = random.uniform(random.key(0), [25], { minval: 0, maxval: Math.PI });
 * ```
 */
export function uniform(k: Tensor, shape: readonly number[], opts: UniformOptions = {}): Tensor {
  const toRange = rangeMap("uniform", opts);
  return toRange(unit(k, shape));
}

/** Checks [minval, maxval) and maps a [0, 1) sample into it. */
function rangeMap(op: string, opts: UniformOptions): (u: Tensor) => Tensor {
  const lo = opts.minval ?? 0, hi = opts.maxval ?? 1;
  if (!(hi > lo)) throw new RangeError(`${op}: maxval (${hi}) must exceed minval (${lo})`);
  return (u) => lo === 0 && hi === 1 ? u : add(mul(u, hi - lo), lo);
}

/**
 * `n` f32 samples in [minval, maxval) with exactly one in each of `n` equal-width strata (to f32
 * rounding at their edges), in random order (stratified sampling; per dimension of a Latin
 * hypercube when several are drawn with independent keys). Each sample alone is uniform, so the mean of any function over them is
 * an unbiased estimate of its expectation, with lower variance than `uniform`'s independent draws:
 * a test set whose parameters cannot all land in one end of the range.
 *
 * @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * const amplitudes = random.stratifiedUniform(random.key(0), 100, { minval: 0.1, maxval: 5 });
 * ```
 */
export function stratifiedUniform(k: Tensor, n: number, opts: UniformOptions = {}): Tensor {
  const toRange = rangeMap("stratifiedUniform", opts);
  if (!Number.isInteger(n) || n < 1 || n > 4096) {
    throw new RangeError(
      `stratifiedUniform: n must be an integer in 1..4096 (one random permutation of the ` +
        `strata), got ${n}`,
    );
  }
  const [kOrder, kOffset] = split(checkKey(k, "stratifiedUniform"), 2);
  const stratum = cast(permutation(kOrder, n), "f32");
  // (stratum + u)/n in [stratum/n, (stratum+1)/n); f32 rounding may reach 1 for large n
  return toRange(minimum(div(add(stratum, unit(kOffset, [n])), n), 1 - 2 ** -24));
}

/** Proposals `gamma` tries per sample (each is accepted with probability > 0.95 for a ≥ 1). */
const GAMMA_PROPOSALS = 8;

/**
 * Gamma(a, 1) samples, one per element of the shape `a` broadcasts with `shape` (Marsaglia and
 * Tsang's method: `GAMMA_PROPOSALS` proposals, the first accepted kept — all fail about once in
 * 10¹⁰ draws, which then return the mean; shapes a < 1 draw Gamma(a + 1)·U^(1/a)). Shapes must be
 * positive.
 *
 * @example
 * ```ts
 * import { random, tensor } from "@metagrad/metagrad";
 * const g = random.gamma(random.key(0), tensor([0.5, 2, 50]), [3]); // means 0.5, 2, 50
 * ```
 */
export function gamma(k: Tensor, a: Tensor | number, shape: readonly number[]): Tensor {
  checkKey(k, "gamma");
  const s = assertValidShape(shape, "gamma");
  const alpha = add(
    typeof a === "number" ? full([], a, { backend: k.backend }) : cast(a, "f32"),
    full(s, 0, { backend: k.backend }),
  );
  const keys = splitStacked(k, 2 * GAMMA_PROPOSALS + 1);
  const key = (i: number) => slice(keys, [i]);
  const small = less(alpha, 1);
  const shapeUsed = where(small, add(alpha, 1), alpha); // Marsaglia–Tsang needs a ≥ 1
  const d = sub(shapeUsed, 1 / 3), c = div(1, sqrt(mul(d, 9)));
  let out = shapeUsed, found = less(alpha, 0); // the mean if every proposal fails; all false
  for (let i = 0; i < GAMMA_PROPOSALS; i++) {
    const x = normal(key(2 * i), s);
    const v = mul(mul(add(mul(c, x), 1), add(mul(c, x), 1)), add(mul(c, x), 1));
    const u = uniform(key(2 * i + 1), s, { minval: 2 ** -24, maxval: 1 });
    const ok = logicalAnd(
      greater(v, 0),
      less(
        log(u),
        add(mul(mul(x, x), 0.5), add(sub(d, mul(d, v)), mul(d, log(maximum(v, 1e-30))))),
      ),
    );
    out = where(logicalAnd(ok, logicalNot(found)), mul(d, v), out);
    found = logicalOr(found, ok);
  }
  // a < 1: Gamma(a + 1) · U^(1/a)
  const u = uniform(key(2 * GAMMA_PROPOSALS), s, { minval: 2 ** -24, maxval: 1 });
  return where(small, mul(out, exp(div(log(u), alpha))), out);
}

/**
 * Beta(a, b) samples as G_a / (G_a + G_b) with Gamma draws (`gamma`).
 *
 * @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * const p = random.beta(random.key(0), 2, 5, [1000]); // mean 2/7
 * ```
 */
export function beta(
  k: Tensor,
  a: Tensor | number,
  b: Tensor | number,
  shape: readonly number[],
): Tensor {
  const [ka, kb] = split(checkKey(k, "beta"));
  const ga = gamma(ka, a, shape), gb = gamma(kb, b, shape);
  return div(ga, add(ga, gb));
}

/**
 * Standard normal f32 samples (Box–Muller), optionally scaled: mean + std·z.
 *
 * @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * const w = random.normal(random.key(0), [40, 40], { std: 0.1 });
 * ```
 */
export function normal(
  k: Tensor,
  shape: readonly number[],
  opts: { mean?: number; std?: number } = {},
): Tensor {
  const [k1, k2] = split(k);
  // u1 in (0, 1] so log(u1) is finite
  const u1 = sub(1, unit(k1, shape));
  const u2 = unit(k2, shape);
  const z = mul(sqrt(mul(log(u1), -2)), cos(mul(u2, 2 * Math.PI)));
  const s = opts.std ?? 1, m = opts.mean ?? 0;
  return s === 1 && m === 0 ? z : add(mul(z, s), m);
}

/**
 * Bernoulli samples (bool) with probability p (a number or a broadcastable tensor).
 *
 * @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * const mask = random.bernoulli(random.key(0), 0.9, [128]);
 * ```
 */
export function bernoulli(k: Tensor, p: number | Tensor, shape: readonly number[]): Tensor {
  return less(unit(k, shape), p);
}

/**
 * Samples from categorical distributions given unnormalised log-probabilities along `axis`
 * (Gumbel-max), as i32 indices.
 *
 * @example
 * ```ts
 * import { random, tensor } from "@metagrad/metagrad";
 * const actions = random.categorical(random.key(0), tensor([[0, 1, 2], [2, 1, 0]])); // i32 [2]
 * ```
 */
export function categorical(k: Tensor, logits: Tensor, axis = -1): Tensor {
  const u = sub(1, unit(k, logits.shape)); // (0, 1]
  const gumbel = neg(log(neg(log(minimum(u, 1 - 2 ** -24)))));
  return argmax(add(logits, gumbel), axis);
}

/**
 * Uniform random integers in [lo, hi) (i32).
 *
 * @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * const labels = random.randint(random.key(0), [10], 0, 5);
 * ```
 */
export function randint(
  k: Tensor,
  shape: readonly number[],
  lo: number,
  hi: number,
  dtype: DType = "i32",
): Tensor {
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi <= lo) {
    throw new RangeError(`randint: needs integers lo < hi, got ${lo}, ${hi}`);
  }
  if (hi - lo > 2 ** 24) {
    throw new RangeError("randint: ranges above 2^24 values are not supported (f32 sampling)");
  }
  const r = floor(mul(unit(k, shape), hi - lo));
  return add(cast(r, dtype), lo);
}

/**
 * A random permutation of 0..n−1 (i32): the stable order of n uniform keys — ranked in one
 * O(n²) kernel up to n = 128, sorted (`argsort`, a bitonic network) above, with the same
 * result either way.
 *
 * @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * const order = random.permutation(random.key(0), 10);
 * ```
 */
export function permutation(k: Tensor, n: number): Tensor {
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`permutation: n must be a positive integer, got ${n}`);
  }
  const bits = randomBits(k, [n]); // u32 keys; ties are broken by index
  // the stable order of the keys: ranked in one O(n²) kernel while that is small, sorted above
  if (n > MAX_RANKED) return argsort(bits);
  const col = reshape(bits, [n, 1]), row = reshape(bits, [1, n]);
  const idx = arange(n, undefined, 1, { backend: k.backend });
  const before = add(
    cast(less(row, col), "i32"),
    cast(less(reshape(idx, [1, n]), reshape(idx, [n, 1])), "i32").mul(cast(row.eq(col), "i32")),
  );
  const rank = sum(before, 1); // position of element i in sorted order
  return scatterAdd(idx, rank, 0, n);
}

/**
 * Permutations up to this length are ranked in one O(n²) kernel, longer ones sorted. Measured
 * on llvmpipe (4 keys vmapped, jit): 128 take the same time either way (~1 ms), 512 take 15 ms
 * ranked (the ranking's scatter alone is most of it) and 4 ms sorted, 2,048 200 ms and 11 ms.
 */
const MAX_RANKED = 128;

/** Options of `choice`. */
export interface ChoiceOptions {
  /** Draw with replacement (default true, as JAX); false gives `count` distinct values. */
  replace?: boolean;
}

/**
 * `count` random values from 0..n−1 (i32). With `replace: false` they are distinct, in random
 * order, and exactly the first `count` entries of `permutation(k, n)` — found in O(n·count)
 * work (one minimum per pick over the same keys) instead of the permutation's O(n²), so
 * choosing 5 classes of thousands stays cheap.
 *
 * @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * const classes = random.choice(random.key(0), 1000, 5, { replace: false }); // 5 distinct
 * const draws = random.choice(random.key(1), 10, 3); // with replacement
 * ```
 */
export function choice(k: Tensor, n: number, count: number, opts: ChoiceOptions = {}): Tensor {
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(count) || count < 0) {
    throw new RangeError(
      `choice: needs a positive integer n and a non-negative integer count, got n = ${n}, ` +
        `count = ${count}`,
    );
  }
  if (opts.replace ?? true) return randint(checkKey(k, "choice"), [count], 0, n);
  if (count > n) {
    throw new RangeError(
      `choice: cannot draw ${count} distinct values from ${n} without replacement; pass ` +
        "{ replace: true } or a smaller count",
    );
  }
  const bits = randomBits(k, [n]); // the permutation's keys, ranked the same way
  if (count === 0) return slice(cast(bits, "i32"), [[0, 0]]);
  const idx = arange(n, undefined, 1, { dtype: "i32", backend: k.backend });
  const top = tensor(new Uint32Array([0xffffffff]), { shape: [], backend: k.backend });
  let taken = less(idx, 0); // all false
  const picks: Tensor[] = [];
  for (let j = 0; j < count; j++) {
    // the smallest (key, index) pair not yet taken: the least key, then its first untaken index
    const least = min(where(taken, top, bits));
    const candidate = logicalAnd(equal(bits, least), logicalNot(taken));
    const pick = argmax(cast(candidate, "i32"));
    picks.push(pick);
    taken = logicalOr(taken, equal(idx, pick));
  }
  return stack(picks);
}
