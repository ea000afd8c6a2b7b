/** transpose(x, {perm}): out axis i is input axis perm[i]. */
import { fmtShape, stridesOf } from "../shape.ts";
import type { Primitive } from "../primitive.ts";
import { stridedReadGpu, stridedReadRef } from "./strided.ts";
import { transpose as transposeOp } from "../ops/shape.ts";
import { bind } from "../primitive.ts";

export const transpose: Primitive<{ perm: readonly number[] }> = {
  name: "transpose",
  window: ({ perm }, w, out) => ({
    offset: w.offset,
    strides: perm.map((a) => w.strides[a]),
    shape: out.shape,
  }),
  batch: ([x], _b, { perm }) => bind(transpose, [x], { perm: [0, ...perm.map((p) => p + 1)] }),
  vjp(g, _x, _out, { perm }) {
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return [transposeOp(g, inverse)];
  },
  abstractEval([x], { perm }) {
    const r = x.shape.length;
    if (perm.length !== r || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
      throw new RangeError(
        `transpose: perm ${JSON.stringify(perm)} is not a permutation of the ${r} axes of ${
          fmtShape(x.shape)
        }`,
      );
    }
    return { shape: perm.map((p) => x.shape[p]), dtype: x.dtype };
  },
  reference([x], [a], { perm }, out) {
    const s = stridesOf(a.shape);
    return stridedReadRef(x, out.shape, perm.map((p) => s[p]), 0);
  },
  webgpu([x], { perm }, out) {
    const s = stridesOf(x.shape);
    stridedReadGpu(
      "transpose",
      x.storage,
      x.dtype,
      out.shape,
      perm.map((p) => s[p]),
      0,
      out.storage,
    );
  },
};
