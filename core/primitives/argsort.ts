/**
 * argsort(x): the i32 indices that sort each row of x along its last axis, ascending and stable
 * (equal values keep their order; NaN sorts last). On WebGPU a bitonic network over (key, index)
 * pairs padded to a power of two: one dispatch per stage, log₂n·(log₂n + 1)/2 in all, none with a
 * loop — so it stays within the loop caps of software adapters at any length.
 */
import { fmtShape, sizeOf } from "../shape.ts";
import { GpuStorage } from "../backend/webgpu/runtime.ts";
import { runSimple } from "../backend/webgpu/kernels/simple.ts";
import { param } from "../backend/webgpu/wgsl.ts";
import type { Primitive } from "../primitive.ts";
import { bind } from "../primitive.ts";

/**
 * WGSL: x's element as a u32 whose unsigned order is x's order — NaN above +∞, and −0 equal to
 * 0 (as NumPy compares them; the index then decides).
 */
function sortableKey(dtype: string): string {
  if (dtype === "u32") return "in0(at)";
  if (dtype === "i32") return "bitcast<u32>(in0(at)) ^ 0x80000000u";
  // f32: negatives reversed (all bits flipped), positives above them (sign bit set)
  const ordered = `select(bitcast<u32>(in0(at)) ^ 0x80000000u, ~bitcast<u32>(in0(at)), ` +
    `in0(at) < 0.0)`;
  return `select(select(${ordered}, 0x80000000u, in0(at) == 0.0), 0xffffffffu, is_nan(in0(at)))`;
}

export const argsort: Primitive<Record<string, never>> = {
  name: "argsort",
  batch: ([x]) => bind(argsort, [x], {}),
  abstractEval([x]) {
    if (x.shape.length === 0) {
      throw new RangeError("argsort: needs at least one axis, got a scalar");
    }
    if (x.dtype === "bool") throw new TypeError("argsort: cast bool to i32 first");
    return { shape: x.shape, dtype: "i32" };
  },
  reference([x], [a]) {
    const n = a.shape[a.shape.length - 1], rows = sizeOf(a.shape) / Math.max(n, 1);
    const res = new Float64Array(x.length);
    const order = (v: number) => (Number.isNaN(v) ? Infinity : v);
    for (let r = 0; r < rows; r++) {
      const idx = Array.from({ length: n }, (_, i) => i);
      idx.sort((i, j) => {
        const a1 = x[r * n + i], b1 = x[r * n + j];
        const na = Number.isNaN(a1), nb = Number.isNaN(b1);
        if (na || nb) return na && nb ? i - j : na ? 1 : -1;
        return order(a1) - order(b1) || i - j;
      });
      idx.forEach((v, i) => (res[r * n + i] = v));
    }
    return res;
  },
  webgpu([x], _p, out) {
    const n = x.shape[x.shape.length - 1];
    const rows = sizeOf(x.shape) / Math.max(n, 1);
    if (rows * n === 0) {
      runSimple("argsort", "", [0], [], { storage: out.storage, dtype: "i32" });
      return;
    }
    let width = 1;
    while (width < n) width *= 2;
    if (rows * width * 2 >= 2 ** 31) {
      throw new RangeError(`argsort: ${fmtShape(x.shape)} is too large to sort on the device`);
    }
    // (key, index) pairs, each row padded with (max, index ≥ n) so the padding sorts last
    const pairs = new GpuStorage(rows * width * 8);
    try {
      runSimple(
        "argsort keys",
        `
  let r = t / ${param(2)};
  let i = t % ${param(2)};
  var key = 0xffffffffu;
  if (i < ${param(1)}) { let at = r * ${param(1)} + i; key = ${sortableKey(x.dtype)}; }
  out[2u * t] = key;
  out[2u * t + 1u] = i;`,
        [rows * width, n, width],
        [{ storage: x.storage, dtype: x.dtype }],
        { storage: pairs, dtype: "u32" },
      );
      // one compare-exchange per pair of lanes (i, i ^ j) within blocks of size k
      const stage = `
  let r = t / ${param(1)};
  let i = t % ${param(1)};
  let l = i ^ ${param(3)};
  if (l > i) {
    let a = 2u * (r * ${param(1)} + i);
    let b = 2u * (r * ${param(1)} + l);
    let ka = out[a]; let kb = out[b];
    let ia = out[a + 1u]; let ib = out[b + 1u];
    let aAfterB = ka > kb || (ka == kb && ia > ib);
    let ascending = (i & ${param(2)}) == 0u;
    if (aAfterB == ascending) {
      out[a] = kb; out[b] = ka; out[a + 1u] = ib; out[b + 1u] = ia;
    }
  }`;
      for (let k = 2; k <= width; k *= 2) {
        for (let j = k / 2; j >= 1; j /= 2) {
          runSimple("argsort stage", stage, [rows * width, width, k, j], [], {
            storage: pairs,
            dtype: "u32",
          });
        }
      }
      runSimple(
        "argsort indices",
        `
  let r = t / ${param(1)};
  let i = t % ${param(1)};
  out[t] = i32(in0(2u * (r * ${param(2)} + i) + 1u));`,
        [rows * n, n, width],
        [{ storage: pairs, dtype: "u32" }],
        { storage: out.storage, dtype: "i32" },
      );
    } finally {
      pairs.release();
    }
  },
};
