/** reshape(x, {shape}): same values, new shape; a view sharing x's storage (no kernel). */
import { fmtShape, sameNonUnitDims, sizeOf, unitReshaped } from "../shape.ts";
import type { Primitive } from "../primitive.ts";
import { shareStorage } from "../tensor.ts";
import { reshape as reshapeOp } from "../ops/shape.ts";
import { bind } from "../primitive.ts";

export const reshape: Primitive<{ shape: readonly number[] }> = {
  name: "reshape",
  batch: ([x], _b, { shape }, size) => bind(reshape, [x], { shape: [size, ...shape] }),
  vjp: (g, [x]) => [reshapeOp(g, x.shape)],
  abstractEval([x], { shape }) {
    if (sizeOf(shape) !== sizeOf(x.shape)) {
      throw new RangeError(
        `reshape: cannot reshape ${fmtShape(x.shape)} (${sizeOf(x.shape)} elements) to ${
          fmtShape(shape)
        } ` +
          `(${sizeOf(shape)} elements)`,
      );
    }
    return { shape, dtype: x.dtype };
  },
  reference([x]) {
    return x.slice();
  },
  webgpu() {
    throw new Error("internal: reshape is a view and never runs a kernel");
  },
  view: (x, _p, out) => shareStorage(x, out.shape),
  // only a reshape that adds or drops axes of size 1 keeps a layout's strides
  window: (_p, w, out) => sameNonUnitDims(w.shape, out.shape) ? unitReshaped(w, out.shape) : null,
};
