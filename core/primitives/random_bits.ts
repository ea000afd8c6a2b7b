/**
 * randomBits(key, {shape, tag, offset}): counter-based random u32s (Threefry-2x32, 20 rounds,
 * as in JAX). Element i is word (i mod 2) of threefry(key, (offset + ⌊i/2⌋, tag)). `tag`
 * separates streams (0 sampling, 1 split, 2 foldIn). Both backends produce identical bits.
 */
import { broadcastStrides, fmtShape, sizeOf } from "../shape.ts";
import { runSimple } from "../backend/webgpu/kernels/simple.ts";
import { runElementwise } from "../backend/webgpu/kernels/elementwise.ts";
import { param } from "../backend/webgpu/wgsl.ts";
import { bind, type Primitive } from "../primitive.ts";

export interface RandomBitsParams {
  shape: readonly number[];
  tag: number;
  offset: number;
}

const ROT = [[13, 15, 26, 6], [17, 29, 16, 24]];

function rotl(x: number, r: number): number {
  return ((x << r) | (x >>> (32 - r))) >>> 0;
}

/** Threefry-2x32 of one counter pair under one key; returns both output words. */
export function threefry2x32(k0: number, k1: number, c0: number, c1: number): [number, number] {
  const ks = [k0 >>> 0, k1 >>> 0, (k0 ^ k1 ^ 0x1bd11bda) >>> 0];
  let x0 = (c0 + ks[0]) >>> 0, x1 = (c1 + ks[1]) >>> 0;
  for (let i = 0; i < 5; i++) {
    for (const r of ROT[i % 2]) {
      x0 = (x0 + x1) >>> 0;
      x1 = rotl(x1, r);
      x1 = (x1 ^ x0) >>> 0;
    }
    x0 = (x0 + ks[(i + 1) % 3]) >>> 0;
    x1 = (x1 + ks[(i + 2) % 3] + i + 1) >>> 0;
  }
  return [x0, x1];
}

function threefryWgsl(): string {
  const lines = [
    `fn rotl(x: u32, r: u32) -> u32 { return (x << r) | (x >> (32u - r)); }`,
    `fn threefry(k0: u32, k1: u32, c0: u32, c1: u32) -> vec2<u32> {`,
    `  let ks = array<u32, 3>(k0, k1, k0 ^ k1 ^ 0x1bd11bdau);`,
    `  var x0 = c0 + k0; var x1 = c1 + k1;`,
  ];
  for (let i = 0; i < 5; i++) {
    for (const r of ROT[i % 2]) lines.push(`  x0 = x0 + x1; x1 = rotl(x1, ${r}u); x1 = x1 ^ x0;`);
    lines.push(`  x0 = x0 + ks[${(i + 1) % 3}]; x1 = x1 + ks[${(i + 2) % 3}] + ${i + 1}u;`);
  }
  lines.push(`  return vec2<u32>(x0, x1);`, `}`);
  // element i of a block: word (i mod 2) of threefry(key, (offset + ⌊i/2⌋, tag))
  lines.push(
    `fn threefry_word(k0: u32, k1: u32, i: u32, offset: u32, tag: u32) -> u32 {`,
    `  let r = threefry(k0, k1, offset + (i >> 1u), tag);`,
    `  return select(r.x, r.y, (i & 1u) == 1u);`,
    `}`,
  );
  return lines.join("\n");
}

/** The WGSL functions of Threefry-2x32 (`threefry`, `threefry_word`), for fused kernels. */
export const THREEFRY_WGSL: string = threefryWgsl();

export const randomBits: Primitive<RandomBitsParams> = {
  name: "randomBits",
  abstractEval([key], p) {
    if (key.dtype !== "u32" || key.shape.length < 1 || key.shape.at(-1) !== 2) {
      throw new TypeError(
        `random: a key is a u32 tensor of shape [2] (from key(seed) or split), got ${key.dtype}${
          fmtShape(key.shape)
        }`,
      );
    }
    // A stack of keys [..., 2] draws one independent block per key (vmap over keys).
    return { shape: [...key.shape.slice(0, -1), ...p.shape], dtype: "u32" };
  },
  reference([key], _a, p, out) {
    const n = sizeOf(p.shape);
    const keys = key.length / 2;
    const res = new Float64Array(sizeOf(out.shape));
    for (let k = 0; k < keys; k++) {
      for (let b = 0; b < n; b += 2) {
        const [x0, x1] = threefry2x32(key[2 * k], key[2 * k + 1], (p.offset + b / 2) >>> 0, p.tag);
        res[k * n + b] = x0;
        if (b + 1 < n) res[k * n + b + 1] = x1;
      }
    }
    return res;
  },
  webgpu([key], p, out) {
    // params: count, offset, tag, n (elements per key)
    const body = `
  let k = t / ${param(3)};
  let i = t % ${param(3)};
  let r = threefry(in0(2u * k), in0(2u * k + 1u), ${param(1)} + (i >> 1u), ${param(2)});
  out[t] = select(r.x, r.y, (i & 1u) == 1u);`;
    runSimple(
      "randomBits",
      body,
      [sizeOf(out.shape), p.offset >>> 0, p.tag, Math.max(1, sizeOf(p.shape))],
      [{
        storage: key.storage,
        dtype: "u32",
      }],
      { storage: out.storage, dtype: "u32" },
      THREEFRY_WGSL,
    );
  },
  batch: ([key], _batched, p) => bind(randomBits, [key], p),
};

/**
 * Parameters of `threefryBits`: `randomBits`' and, for a window of its bits that jit computes
 * on its own, one-word mode — element j of a block is word `word` of threefry(key, (offset +
 * j·step, tag)) — instead of words alternating along the block.
 */
export interface ThreefryBitsParams extends RandomBitsParams {
  /** One-word mode: the word every element takes (0 or 1). */
  word?: number;
  /** One-word mode: the counter's step from one element of the block to the next. */
  step?: number;
}

/** The counter and word of element `j` of a block of `threefryBits` with parameters `p`. */
export function threefryCounter(p: ThreefryBitsParams, j: number): [number, number] {
  return p.word === undefined
    ? [(p.offset + (j >> 1)) >>> 0, j & 1]
    : [(p.offset + j * (p.step ?? 1)) >>> 0, p.word];
}

/**
 * threefryBits(k0, k1, {shape, tag, offset}): `randomBits` with its keys given as their two
 * words, each of shape [...keys, 1, …, 1] (one 1 per axis of the block `shape`): the same bits,
 * computed per element from the element's position, so jit fuses the draw into the kernels
 * that read it (it rewrites randomBits into this form, and windows of its bits into
 * threefryBits of their own: `ThreefryBitsParams`; users never call it).
 */
export const threefryBits: Primitive<ThreefryBitsParams> = {
  name: "threefryBits",
  abstractEval([k0, k1], p) {
    const lead = k0.shape.length - p.shape.length;
    const ok = [k0, k1].every((k) =>
      k.dtype === "u32" && lead >= 0 && k.shape.length === k0.shape.length &&
      k.shape.every((d, i) => d === k0.shape[i] && (i < lead || d === 1))
    );
    if (!ok) {
      throw new TypeError(
        `internal: threefryBits takes two u32 key words of one shape ending in ${p.shape.length} ` +
          `axes of size 1, got ${fmtShape(k0.shape)} and ${fmtShape(k1.shape)}`,
      );
    }
    return { shape: [...k0.shape.slice(0, lead), ...p.shape], dtype: "u32" };
  },
  reference([k0, k1], _a, p, out) {
    const n = Math.max(1, sizeOf(p.shape));
    const res = new Float64Array(sizeOf(out.shape));
    for (let i = 0; i < res.length; i++) {
      const k = Math.floor(i / n);
      const [counter, word] = threefryCounter(p, i % n);
      res[i] = threefry2x32(k0[k], k1[k], counter, p.tag)[word];
    }
    return res;
  },
  positional: {
    expr: (_inputs, p, [k0, k1], _out, index) => {
      const j = `(${index} % ${Math.max(1, sizeOf(p.shape))}u)`;
      if (p.word === undefined) {
        return `threefry_word(${k0}, ${k1}, ${j}, ${p.offset >>> 0}u, ${p.tag >>> 0}u)`;
      }
      const counter = `${p.offset >>> 0}u + ${j} * ${(p.step ?? 1) >>> 0}u`;
      return `threefry(${k0}, ${k1}, ${counter}, ${p.tag >>> 0}u).${p.word === 1 ? "y" : "x"}`;
    },
  },
  webgpu(keys, p, out, memo) {
    runElementwise(
      {
        label: "threefryBits",
        expr: threefryBits.positional!.expr(keys, p, ["v0", "v1"], out, "gi"),
        helpers: THREEFRY_WGSL,
      },
      keys.map((k) => ({
        storage: k.storage,
        dtype: "u32",
        strides: broadcastStrides(k.shape, out.shape),
        offset: 0,
      })),
      out.shape,
      "u32",
      out.storage,
      memo,
    );
  },
};
