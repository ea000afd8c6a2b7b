/** broadcastTo(x, {shape}): NumPy broadcasting to an explicit shape (materialised). */
import { broadcastShapes, broadcastStrides, fmtShape, shapesEqual } from "../shape.ts";
import type { Primitive } from "../primitive.ts";
import { stridedReadGpu, stridedReadRef } from "./strided.ts";
import { sumToShape } from "../ops/reduce.ts";
import { bind } from "../primitive.ts";
import { alignRank } from "./batching.ts";

export const broadcastTo: Primitive<{ shape: readonly number[] }> = {
  name: "broadcastTo",
  // inside a fused kernel a broadcast is just a stride-0 read of the leaf
  fusion: (_inputs, _p, [v]) => v,
  batch: ([x], _b, { shape }, size) =>
    bind(broadcastTo, [alignRank(x, shape.length)], { shape: [size, ...shape] }),
  vjp: (g, [x]) => [sumToShape(g, x.shape)],
  abstractEval([x], { shape }) {
    const b = broadcastShapes("broadcastTo", x.shape, shape);
    if (!shapesEqual(b, shape)) {
      throw new RangeError(
        `broadcastTo: ${fmtShape(x.shape)} cannot be broadcast to ${fmtShape(shape)}`,
      );
    }
    return { shape, dtype: x.dtype };
  },
  reference([x], [a], _p, out) {
    return stridedReadRef(x, out.shape, broadcastStrides(a.shape, out.shape), 0);
  },
  webgpu([x], _p, out) {
    stridedReadGpu(
      "broadcastTo",
      x.storage,
      x.dtype,
      out.shape,
      broadcastStrides(x.shape, out.shape),
      0,
      out.storage,
    );
  },
};
