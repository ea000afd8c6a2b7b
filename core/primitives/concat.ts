/** concat(xs, {axis}): join tensors of equal shape except along `axis`. */
import { fmtShape, sizeOf, stridesOf } from "../shape.ts";
import { runCopyInto } from "../backend/webgpu/kernels/copy_into.ts";
import { runtime } from "../backend/webgpu/runtime.ts";
import type { Primitive } from "../primitive.ts";
import { slice as sliceOp, type SliceSpec } from "../ops/shape.ts";
import { bind } from "../primitive.ts";
import { materialize } from "./batching.ts";

export const concat: Primitive<{ axis: number }> = {
  name: "concat",
  batch: (xs, batched, { axis }, size) =>
    bind(concat, xs.map((x, i) => materialize(x, batched[i], size)), { axis: axis + 1 }),
  vjp(g, xs, _out, { axis }) {
    let at = 0;
    return xs.map((x) => {
      const spec: SliceSpec[] = x.shape.map(() => null);
      spec[axis] = [at, at + x.shape[axis]];
      at += x.shape[axis];
      return x.dtype === "f32" ? sliceOp(g, spec) : null;
    });
  },
  abstractEval(xs, { axis }) {
    if (xs.length === 0) throw new RangeError("concat: needs at least one tensor");
    const r = xs[0].shape.length;
    if (axis < 0 || axis >= r) {
      throw new RangeError(`concat: axis ${axis} out of range for rank ${r}`);
    }
    for (const x of xs) {
      if (x.dtype !== xs[0].dtype) {
        throw new TypeError(
          `concat: dtypes differ (${xs.map((t) => t.dtype).join(", ")}); cast first`,
        );
      }
      if (x.shape.length !== r || x.shape.some((d, i) => i !== axis && d !== xs[0].shape[i])) {
        throw new RangeError(
          `concat: shapes ${
            xs.map((t) => fmtShape(t.shape)).join(", ")
          } differ outside axis ${axis}`,
        );
      }
    }
    const shape = [...xs[0].shape];
    shape[axis] = xs.reduce((acc, x) => acc + x.shape[axis], 0);
    return { shape, dtype: xs[0].dtype };
  },
  reference(xs, avals, { axis }, out) {
    const res = new Float64Array(sizeOf(out.shape));
    const outer = sizeOf(out.shape.slice(0, axis));
    const innerOut = sizeOf(out.shape.slice(axis));
    let at = 0;
    xs.forEach((x, k) => {
      const inner = sizeOf(avals[k].shape.slice(axis));
      for (let o = 0; o < outer; o++) {
        res.set(x.subarray(o * inner, (o + 1) * inner), o * innerOut + at);
      }
      at += inner;
    });
    return res;
  },
  // a stack (every operand of length 1 along the axis) picks its operand by coordinate, so jit
  // computes it inside the kernel reading it: the parts broadcast into the result
  positional: {
    applies: (xs, { axis }) => xs.length > 1 && xs.every((x) => x.shape[axis] === 1),
    expr(_xs, { axis }, args, out, index) {
      const inner = sizeOf(out.shape.slice(axis + 1));
      const at = `((${index} / ${inner}u) % ${out.shape[axis]}u)`;
      return args.reduce((acc, a, k) => k === 0 ? a : `select(${acc}, ${a}, ${at} >= ${k}u)`);
    },
  },
  webgpu(xs, { axis }, out) {
    runtime.allocBuffer(out.storage, "concat");
    const os = stridesOf(out.shape);
    let at = 0;
    for (const x of xs) {
      if (sizeOf(x.shape) > 0) {
        runCopyInto("concat", x.storage, x.dtype, x.shape, out.storage, at * os[axis], os);
      }
      at += x.shape[axis];
    }
  },
};
