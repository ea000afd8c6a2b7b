/**
 * randomBits(key, {shape, tag, offset}): counter-based random u32s (Threefry-2x32, 20 rounds,
 * as in JAX). Element i is word (i mod 2) of threefry(key, (offset + ⌊i/2⌋, tag)). `tag`
 * separates streams (0 sampling, 1 split, 2 foldIn). Both backends produce identical bits.
 */
import { fmtShape, sizeOf } from "../shape.ts";
import { runSimple } from "../backend/webgpu/kernels/simple.ts";
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
  return lines.join("\n");
}

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
      threefryWgsl(),
    );
  },
  batch: ([key], _batched, p) => bind(randomBits, [key], p),
};
