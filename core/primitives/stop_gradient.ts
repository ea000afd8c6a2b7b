/**
 * stopGradient(x): the identity on values with no derivative. A primitive (not a JS-side
 * unwrap) so it works through every transformation: grad records nothing for it, vmap maps
 * it, jit keeps it as a free view or inlines it into fused kernels.
 */
import type { Primitive } from "../primitive.ts";
import { bind } from "../primitive.ts";
import { shareStorage } from "../tensor.ts";

export const stopGradient: Primitive = {
  name: "stopGradient",
  abstractEval([x]) {
    return { shape: x.shape, dtype: x.dtype };
  },
  reference([x]) {
    return x.slice();
  },
  webgpu() {
    throw new Error("internal: stopGradient is a view and never runs a kernel");
  },
  view: (x, _p, out) => shareStorage(x, out.shape),
  // no vjp: gradients stop here
  batch: ([x]) => bind(stopGradient, [x], {}),
  fusion: (_inputs, _p, [v]) => v,
};
