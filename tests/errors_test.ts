import * as mg from "../mod.ts";
import { type GpuStorage, runtime } from "../core/backend/webgpu/runtime.ts";
import { assertRejectsWith, assertThrowsWith } from "./helpers.ts";

Deno.test("shape and dtype mistakes name the op and the shapes", () => {
  assertThrowsWith(
    () => mg.add(mg.zeros([2, 3]), mg.zeros([4])),
    "add",
    "[2, 3]",
    "[4]",
    "cannot be broadcast",
  );
  assertThrowsWith(
    () => mg.add(mg.zeros([2], { dtype: "i32" }), mg.zeros([2], { dtype: "u32" })),
    "add",
    "i32",
    "u32",
    "cast",
  );
  assertThrowsWith(() => mg.bitwiseAnd(mg.zeros([2]), 1), "and", "f32");
  assertThrowsWith(() => mg.take(mg.zeros([3]), mg.zeros([2])), "take", "indices must be integers");
  assertThrowsWith(() => mg.tensor([[1, 2], [3]]), "tensor", "ragged", "[1]");
  assertThrowsWith(() => mg.tensor(new Float32Array(5), { shape: [2, 2] }), "5 values", "[2, 2]");
  assertThrowsWith(() => mg.zeros([2, -1]), "full", "invalid shape");
  assertThrowsWith(() => mg.sum(mg.zeros([2]), 3), "sum", "axis 3");
});

Deno.test("item() on a tensor with several elements rejects clearly", async () => {
  await assertRejectsWith(mg.ones([2]).item(), "item", "[2]");
});

Deno.test("mixing backends is a clear error", () => {
  const a = mg.ones([2], { backend: "reference" });
  const b = mg.ones([2], { backend: "webgpu" });
  assertThrowsWith(() => mg.add(a, b), "add", "different backends", "reference", "webgpu");
  assertThrowsWith(() => mg.setBackend("cuda" as mg.BackendName), "setBackend", "cuda");
});

Deno.test("a WebGPU validation error surfaces as an exception naming the op, then the runtime recovers", async () => {
  await mg.init();
  const out = mg.zeros([4]);
  const storage = out.storage as GpuStorage;
  // A kernel that does not compile: the error must name the op label when values are read.
  runtime.dispatch(
    { code: "this is not wgsl", inputs: 0, label: "broken-test-op" },
    new Uint32Array(4),
    [],
    { storage },
    [1, 1, 1],
  );
  let message = "";
  try {
    await out.data();
  } catch (e) {
    message = (e as Error).message;
  }
  if (!message.includes("broken-test-op")) {
    throw new Error(`expected the op name in the error, got: ${message || "no error"}`);
  }
  // errors are reported once; later work is fine
  const ok = await mg.ones([3]).add(1).data();
  if (ok[2] !== 2) throw new Error("runtime did not recover");
});

Deno.test("an operand over the per-binding limit that cannot be chunked is refused clearly", async () => {
  const info = await mg.init();
  const n = Math.floor(info.limits.maxStorageBufferBindingSize / 4) + 1024;
  const big = mg.zeros([2, n / 2]);
  assertThrowsWith(() => mg.matmul(big, mg.zeros([n / 2, 1])), "matmul", "per-binding limit");
  big.dispose();
});
