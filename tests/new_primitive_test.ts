/**
 * A new primitive is one file: this test defines an elementwise one (`cube`, a rule) and a
 * non-elementwise one (`reverse` along an axis: shape rule, reference, a WebGPU kernel, vjp,
 * batching rule and a window), each with its op, and nothing else in the library changes — yet
 * both are differentiated (to second order), batched, jitted and fused on WebGPU, and match the
 * float64 reference.
 */
import assert from "node:assert/strict";
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { bind, type Primitive } from "../core/primitive.ts";
import { elementwisePrimitive } from "../core/primitives/elementwise.ts";
import { runElementwise } from "../core/backend/webgpu/kernels/elementwise.ts";
import { stridesOf } from "../core/shape.ts";
import { assertTreesClose, randomValues } from "./helpers.ts";

// ---- an elementwise primitive: its rule, and its op
const cubePrim = elementwisePrimitive({
  name: "cube",
  arity: 1,
  accepts: "float",
  out: (d) => d,
  ref: () => (x) => x * x * x,
  wgsl: ([x]) => `(${x} * ${x} * ${x})`,
  vjp: (g, [x]) => [mg.mul(g, mg.mul(mg.square(x), 3))],
});
const cube = (x: Tensor): Tensor => bind(cubePrim, [x], {});

// ---- a non-elementwise primitive: every rule in one object, and its op
interface ReverseParams {
  axis: number;
}
const reversePrim: Primitive<ReverseParams> = {
  name: "reverse",
  abstractEval: ([x], { axis }) => {
    if (!(axis >= 0 && axis < x.shape.length)) {
      throw new RangeError(`reverse: axis ${axis} is out of range for rank ${x.shape.length}`);
    }
    return x;
  },
  reference: ([x], [a], { axis }) => {
    const out = new Float64Array(x.length), st = stridesOf(a.shape), n = a.shape[axis];
    for (let i = 0; i < x.length; i++) {
      const c = Math.floor(i / st[axis]) % n;
      out[i] = x[i + (n - 1 - 2 * c) * st[axis]];
    }
    return out;
  },
  // a strided read of the input: the elementwise kernel family with a negative stride
  webgpu: ([x], { axis }, out) => {
    const strides = stridesOf(x.shape);
    const offset = (x.shape[axis] - 1) * strides[axis];
    strides[axis] = -strides[axis];
    runElementwise(
      { label: "reverse", expr: "v0", helpers: "" },
      [{ storage: x.storage, dtype: x.dtype, strides, offset }],
      out.shape,
      out.dtype,
      out.storage,
    );
  },
  vjp: (g, _x, _out, p) => [reverse(g, p.axis)],
  batch: ([x], _b, { axis }) => reverse(x, axis + 1),
  window: ({ axis }, w, out) => {
    const strides = [...w.strides];
    strides[axis] = -strides[axis];
    return { offset: w.offset + (w.shape[axis] - 1) * w.strides[axis], strides, shape: out.shape };
  },
};
const reverse = (x: Tensor, axis: number): Tensor => bind(reversePrim, [x], { axis });

const t = (shape: number[], seed: number, backend: mg.BackendName) =>
  mg.tensor(randomValues(shape, "f32", seed, -1.5, 1.5), { shape, backend });

/** The same function written with built-in ops: what the new primitives must equal. */
const viaNew = (x: Tensor, w: Tensor) =>
  mg.sum(mg.mul(mg.tanh(cube(reverse(mg.matmul(x, w), 1))), reverse(x, 0)));
const viaBuiltins = (x: Tensor, w: Tensor) =>
  mg.sum(mg.mul(mg.tanh(mg.pow(mg.flip(mg.matmul(x, w), [1]), 3)), mg.flip(x, [0])));

for (const backend of ["reference", "webgpu"] as const) {
  Deno.test(`${backend}: primitives defined in one file each are differentiated, batched and jitted`, async () => {
    const x = t([5, 3], 1, backend), w = t([3, 3], 2, backend);
    await assertTreesClose(viaNew(x, w), viaBuiltins(x, w), "value");
    await assertTreesClose(mg.grad(viaNew)(x, w), mg.grad(viaBuiltins)(x, w), "grad");
    // second order: a Hessian-vector product through both new primitives
    const v = t([5, 3], 3, backend);
    await assertTreesClose(
      mg.hvp((a: Tensor) => viaNew(a, w), x, v),
      mg.hvp((a: Tensor) => viaBuiltins(a, w), x, v),
      "hvp",
      { rtol: 1e-4, atol: 1e-5 },
    );
    const xs = t([4, 5, 3], 4, backend);
    await assertTreesClose(
      mg.vmap((a: Tensor) => viaNew(a, w))(xs),
      mg.vmap((a: Tensor) => viaBuiltins(a, w))(xs),
      "vmap",
    );
    await assertTreesClose(mg.jit(mg.grad(viaNew))(x, w), mg.grad(viaBuiltins)(x, w), "jit(grad)");
  });
}

Deno.test("webgpu: jit fuses the new elementwise primitive and reads the new view in place", () => {
  const x = t([6, 4], 5, "webgpu");
  const f = mg.jit((a: Tensor) => mg.add(cube(reverse(a, 0)), 1));
  const plan = f.lower(x).plan;
  assert.equal(plan.split("\n").length, 1, plan);
  assert.match(plan, /^fused\[cube,add\]: .* ← window of /);
});
