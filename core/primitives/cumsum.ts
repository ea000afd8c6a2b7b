/** cumsum(x, {axis, reverse}): inclusive running sums along one axis (reverse: from the end). */
import { fmtShape, sizeOf } from "../shape.ts";
import { roundToDType } from "../dtype.ts";
import { runSimpleInParts } from "../backend/webgpu/kernels/simple.ts";
import { param } from "../backend/webgpu/wgsl.ts";
import type { Primitive } from "../primitive.ts";
import { bind } from "../primitive.ts";

export const cumsum: Primitive<{ axis: number; reverse: boolean }> = {
  name: "cumsum",
  batch: ([x], _b, { axis, reverse }) => bind(cumsum, [x], { axis: axis + 1, reverse }),
  vjp: (g, _x, _out, { axis, reverse }) => [bind(cumsum, [g], { axis, reverse: !reverse })],
  abstractEval([x], { axis }) {
    if (axis < 0 || axis >= x.shape.length) {
      throw new RangeError(`cumsum: axis ${axis} out of range for ${fmtShape(x.shape)}`);
    }
    if (x.dtype === "bool") throw new TypeError("cumsum: cast bool to i32 first");
    return { shape: x.shape, dtype: x.dtype };
  },
  reference([x], [a], { axis, reverse }) {
    const outer = sizeOf(a.shape.slice(0, axis)),
      L = a.shape[axis],
      inner = sizeOf(a.shape.slice(axis + 1));
    const res = new Float64Array(x.length);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        let acc = 0;
        for (let s = 0; s < L; s++) {
          const l = reverse ? L - 1 - s : s;
          const at = (o * L + l) * inner + i;
          acc = roundToDType(acc + x[at], a.dtype);
          res[at] = acc;
        }
      }
    }
    return res;
  },
  webgpu([x], { axis, reverse }, out) {
    const outer = sizeOf(x.shape.slice(0, axis)),
      L = x.shape[axis],
      inner = sizeOf(x.shape.slice(axis + 1));
    const t = x.dtype;
    // params: count (= outer·inner lines), L, inner, then the part of the line [s0, s1)
    const body = `
  let i = t % ${param(2)};
  let o = t / ${param(2)};
  let L = ${param(1)};
  let s0 = ${param(3)};
  var acc: ${t} = ${t}(0);
  if (s0 > 0u) {
    // the earlier parts' running sum: the output at the step before this part
    let before = ${reverse ? "L - s0" : "s0 - 1u"};
    acc = out[(o * L + before) * ${param(2)} + i];
  }
  for (var s = s0; s < ${param(4)}; s = s + 1u) {
    let l = ${reverse ? "L - 1u - s" : "s"};
    let at = (o * L + l) * ${param(2)} + i;
    acc = acc + in0(at);
    out[at] = acc;
  }`;
    runSimpleInParts(
      `cumsum${reverse ? " (reverse)" : ""}`,
      body,
      [outer * inner, L, inner],
      L,
      [{ storage: x.storage, dtype: t }],
      { storage: out.storage, dtype: t },
    );
  },
};
