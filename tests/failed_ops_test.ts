/**
 * The rule for every op that throws: its inputs and the runtime are left exactly as before.
 * The inputs read back unchanged and compute correctly afterwards (against the reference
 * backend), and no device memory is gained or lost — for binding-limit refusals of every
 * family that cannot be chunked, shape and dtype errors, disposed inputs, and errors raised
 * inside jit tracing, vmap and grad; with eager fusion on and off.
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { assertAllClose, host, type HostTensor, on } from "./helpers.ts";

/** Throws unless `fn` throws. */
function expectThrow(what: string, fn: () => unknown): void {
  let threw = false;
  try {
    const r = fn();
    if (r instanceof mg.Tensor) r.dispose();
  } catch {
    threw = true;
  }
  if (!threw) throw new Error(`${what}: expected an error, nothing was thrown`);
}

/** A case: host inputs and a call on them that must throw. */
interface FailingCall {
  what: string;
  inputs: HostTensor[];
  call: (...xs: Tensor[]) => unknown;
}

const a = host([3, 4], "f32", 1);
const b = host([5], "f32", 2);
const i = host([4], "i32", 3, 0, 3);

const CALLS: FailingCall[] = [
  { what: "add with shapes that do not broadcast", inputs: [a, b], call: (x, y) => mg.add(x, y) },
  { what: "matmul with mismatched inner sizes", inputs: [a, b], call: (x, y) => mg.matmul(x, y) },
  { what: "bitwiseAnd of f32", inputs: [a, i], call: (x) => mg.bitwiseAnd(x, 1) },
  { what: "add of f32 and i32 tensors", inputs: [b, i], call: (x, y) => mg.add(x, y.reshape([4])) },
  { what: "take with f32 indices", inputs: [a, b], call: (x, y) => mg.take(x, y) },
  { what: "sum over axis 5", inputs: [a], call: (x) => mg.sum(x, 5) },
  { what: "reshape to a size that differs", inputs: [a], call: (x) => x.reshape([5, 3]) },
  {
    what: "conv2d with mismatched channels",
    inputs: [host([1, 2, 5, 5], "f32", 4), host([3, 3, 3, 3], "f32", 5)],
    call: (x, w) => mg.conv2d(x, w),
  },
  {
    what: "an op inside jit tracing",
    inputs: [a, b],
    call: (x, y) => mg.jit((p: Tensor, q: Tensor) => mg.add(mg.exp(p), q))(x, y),
  },
  {
    what: "an op inside vmap",
    inputs: [a, b],
    call: (x, y) => mg.vmap((p: Tensor) => mg.matmul(mg.tanh(p), y))(x),
  },
  {
    what: "vmap over inconsistent batch sizes",
    inputs: [a, b],
    call: (x, y) => mg.vmap((p: Tensor, q: Tensor) => mg.add(p, q))(x, y),
  },
  {
    what: "an op inside grad",
    inputs: [a, b],
    call: (x, y) => mg.grad((p: Tensor) => mg.sum(mg.mul(mg.sin(p), y)))(x),
  },
  {
    what: "grad of a non-scalar function",
    inputs: [a],
    call: (x) => mg.grad((p: Tensor) => mg.mul(p, 2))(x),
  },
  {
    what: "grad of grad with a failing inner op",
    inputs: [a, b],
    call: (x, y) =>
      mg.grad((p: Tensor) => mg.sum(mg.grad((q: Tensor) => mg.sum(mg.add(q, y)))(p)))(x),
  },
];

/** Run `c` on `backend`, then check the inputs and the live bytes against before the call. */
async function checkUntouched(c: FailingCall, backend: mg.BackendName): Promise<void> {
  const xs = c.inputs.map((h) => on(h, backend));
  await mg.sync();
  // measured around the synchronous call alone: the finalizers that free dropped tensors run
  // between tasks, never inside it
  const live = mg.memory().liveBytes;
  expectThrow(c.what, () => c.call(...xs));
  const leaked = mg.memory().liveBytes - live;
  if (leaked !== 0) throw new Error(`${c.what} (${backend}): ${leaked} bytes gained or lost`);
  for (let k = 0; k < xs.length; k++) {
    const h = c.inputs[k];
    const what = `${c.what} (${backend}), input ${k}`;
    assertAllClose(await xs[k].toFloat64(), h.values, { rtol: 0, atol: 0 }, `${what} read back`);
    // and it still computes: against the same op on the reference backend
    const ref = on(h, "reference");
    const expected = await mg.sum(mg.mul(ref, 3), undefined).toFloat64();
    assertAllClose(await mg.sum(mg.mul(xs[k], 3)).toFloat64(), expected, { rtol: 1e-5 }, what);
    ref.dispose();
  }
  for (const x of xs) x.dispose();
}

for (const fusion of [true, false]) {
  Deno.test(
    `a call that throws leaves its inputs and device memory as they were (WebGPU, eager fusion ${
      fusion ? "on" : "off"
    })`,
    async () => {
      mg.setEagerFusion(fusion);
      try {
        for (const c of CALLS) await checkUntouched(c, "webgpu");
      } finally {
        mg.setEagerFusion(true);
      }
    },
  );
}

Deno.test("a call that throws leaves its inputs as they were (reference backend)", async () => {
  for (const c of CALLS) await checkUntouched(c, "reference");
});

Deno.test("a disposed input is refused and the other inputs are left as they were", async () => {
  for (const fusion of [true, false]) {
    mg.setEagerFusion(fusion);
    try {
      const x = on(a, "webgpu"), gone = on(a, "webgpu");
      gone.dispose();
      await mg.sync();
      const live = mg.memory().liveBytes;
      expectThrow("add of a disposed tensor", () => mg.add(x, gone));
      expectThrow("matmul of a disposed tensor", () => mg.matmul(x, gone.reshape([4, 3])));
      if (mg.memory().liveBytes !== live) throw new Error("bytes gained or lost");
      assertAllClose(await mg.mul(x, 3).toFloat64(), a.values.map((v) => 3 * v), {}, "x");
      x.dispose();
    } finally {
      mg.setEagerFusion(true);
    }
  }
});

/**
 * The families that cannot split an operand over the per-binding limit refuse it; the refused
 * operand (a 144 MB tensor) must read back and compute exactly as before. Without the fix a
 * failed matmul released the operand's buffer a second time and the pool handed it out again.
 */
Deno.test("binding-limit refusals of every unchunked family leave the operand intact", async () => {
  const info = await mg.init();
  const side = 6000;
  if (side * side * 4 <= info.limits.maxStorageBufferBindingSize) {
    throw new Error(
      `binding limit ${info.limits.maxStorageBufferBindingSize}: the test needs it lower`,
    );
  }
  for (const fusion of [true, false]) {
    mg.setEagerFusion(fusion);
    try {
      const big = mg.full([side, side], 2);
      const big4 = big.reshape([1, 1, side, side]);
      const big3 = big.reshape([2, side / 2, side]);
      const small = mg.ones([side, 2]);
      const idx = mg.tensor([0, 5], { dtype: "i32" });
      const row = mg.ones([1, side]);
      const w = mg.ones([1, 1, 3, 3]);
      await mg.sync();
      const refusals: [string, () => unknown][] = [
        ["matmul", () => mg.matmul(big, small)],
        ["matmul (batched)", () => mg.matmul(big3, small)],
        ["transpose", () => mg.transpose(big)],
        ["flip", () => mg.flip(big, 0)],
        ["take", () => mg.take(big, idx, 1)],
        ["conv2d", () => mg.conv2d(big4, w)],
        ["maxPool2d", () => mg.maxPool2d(big4, 2)],
        ["cumsum", () => mg.cumsum(big, 0)],
        ["concat", () => mg.concat([big, row], 0)],
        ["pad", () => mg.pad(big, [[1, 1], [0, 0]])],
        ["jit(matmul)", () => mg.jit((p: Tensor) => mg.matmul(p, small))(big)],
      ];
      for (const [what, call] of refusals) {
        const live = mg.memory().liveBytes; // around the synchronous call (see checkUntouched)
        expectThrow(what, call);
        const lost = mg.memory().liveBytes - live;
        await mg.sync();
        if (lost !== 0) throw new Error(`${what}: ${lost} bytes gained or lost`);
        const probes = mg.tidy(() => {
          const tripled = mg.mul(big, 3);
          return [mg.sum(big), mg.max(tripled), mg.min(tripled), mg.sum(small)];
        });
        const probe = await Promise.all(probes.map((p) => p.item()));
        for (const p of probes) p.dispose();
        assertAllClose(probe, [2 * side * side, 6, 6, 2 * side], { rtol: 0, atol: 0 }, what);
      }
      for (const t of [big, small, idx, row, w]) t.dispose();
    } finally {
      mg.setEagerFusion(true);
    }
  }
  mg.trimPool();
});
