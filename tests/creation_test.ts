import * as mg from "../mod.ts";
import { assertAllClose } from "./helpers.ts";

for (const backend of ["webgpu", "reference"] as const) {
  Deno.test(`creation functions (${backend})`, async () => {
    const o = { backend };
    const check = async (t: mg.Tensor, shape: number[], dtype: mg.DType, values: number[]) => {
      if (t.shape.join() !== shape.join() || t.dtype !== dtype) {
        throw new Error(`${t} != ${dtype}[${shape}]`);
      }
      assertAllClose(await t.toFloat64(), values, { rtol: 1e-6, atol: 1e-7 });
    };
    await check(mg.tensor([[1, 2, 3], [4, 5, 6]], o), [2, 3], "f32", [1, 2, 3, 4, 5, 6]);
    await check(mg.tensor(3, o), [], "f32", [3]);
    await check(mg.tensor([true, false], o), [2], "bool", [1, 0]);
    await check(mg.tensor(new Int32Array([1, -2]), o), [2], "i32", [1, -2]);
    await check(mg.tensor(new Uint32Array([4294967295]), o), [1], "u32", [4294967295]);
    await check(mg.tensor([1.9, -1.9], { ...o, dtype: "i32" }), [2], "i32", [1, -1]);
    await check(mg.zeros([2, 2], o), [2, 2], "f32", [0, 0, 0, 0]);
    await check(mg.ones([3], { ...o, dtype: "u32" }), [3], "u32", [1, 1, 1]);
    await check(mg.full([2], -7, { ...o, dtype: "i32" }), [2], "i32", [-7, -7]);
    await check(mg.full([2], true, o), [2], "bool", [1, 1]);
    await check(mg.arange(5, undefined, 1, o), [5], "i32", [0, 1, 2, 3, 4]);
    await check(mg.arange(1, 2, 0.25, o), [4], "f32", [1, 1.25, 1.5, 1.75]);
    await check(mg.arange(5, 0, -2, o), [3], "i32", [5, 3, 1]);
    await check(mg.linspace(-1, 1, 5, o), [5], "f32", [-1, -0.5, 0, 0.5, 1]);
    await check(mg.eye(2, 3, 1, o), [2, 3], "f32", [0, 1, 0, 0, 0, 1]);
    const like = mg.zeros([2, 1], { ...o, dtype: "i32" });
    await check(mg.onesLike(like), [2, 1], "i32", [1, 1]);
    await check(mg.fullLike(like, 4), [2, 1], "i32", [4, 4]);
    await check(mg.zerosLike(like, { dtype: "f32" }), [2, 1], "f32", [0, 0]);
    const nested = await mg.tensor([[1, 2], [3, 4]], o).array();
    if (JSON.stringify(nested) !== "[[1,2],[3,4]]") {
      throw new Error(`array() gave ${JSON.stringify(nested)}`);
    }
    if (JSON.stringify(await mg.tensor([true, false], o).array()) !== "[true,false]") {
      throw new Error("bool array()");
    }
    if ((await mg.tensor([[5]], o).item()) !== 5) throw new Error("item()");
    const d = await mg.tensor([1, 2], { ...o, dtype: "i32" }).data();
    if (!(d instanceof Int32Array)) throw new Error("data() of i32 must be an Int32Array");
  });
}
