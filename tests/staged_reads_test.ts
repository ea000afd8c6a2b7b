/**
 * Staged reads: a jitted function's small output that the caller is predicted to read (from
 * the spacing of its last two reads) is copied for the host as soon as its kernel has run,
 * and the rest of the program is submitted after it, so reading it does not wait for the
 * rest. Values are the same bits either way; a staged output freed unread leaves no WebGPU
 * error behind.
 */
import assert from "node:assert/strict";
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { runtime } from "../core/backend/webgpu/runtime.ts";

await mg.init();

type Params = { w1: Tensor; w2: Tensor };

/** A small MLP's loss and gradient: the loss is made before the backward pass. */
const lossAndGrad = mg.jit(mg.valueAndGrad((p: Params, x: Tensor, y: Tensor) => {
  const h = mg.tanh(mg.matmul(x, p.w1));
  return mg.mean(mg.square(mg.sub(mg.matmul(h, p.w2), y)));
})) as unknown as (p: Params, x: Tensor, y: Tensor) => [Tensor, Params];

const key = mg.random.split(mg.random.key(7), 4);
const params: Params = {
  w1: mg.random.normal(key[0], [13, 37]),
  w2: mg.random.normal(key[1], [37, 9]), // its gradient, 1,332 bytes, is too big to stage
};
const x = mg.random.normal(key[2], [29, 13]);
const y = mg.random.normal(key[3], [29, 9]);

const dispose = (t: unknown) => mg.tree.map((v: Tensor) => v.dispose(), t);

async function values(out: [Tensor, Params]): Promise<number[][]> {
  return [
    Array.from(await out[0].data()),
    Array.from(await out[1].w1.data()),
    Array.from(await out[1].w2.data()),
  ];
}

/** Call once and report how the call submitted its work (counters around the call only). */
function call(): { out: [Tensor, Params]; submits: number; staged: number } {
  const s0 = mg.runtimeStats();
  const out = lossAndGrad(params, x, y);
  const s1 = mg.runtimeStats();
  return { out, submits: s1.submits - s0.submits, staged: s1.stagedReads - s0.stagedReads };
}

Deno.test("a loss read every call is staged as soon as it is made; values are unchanged", async () => {
  runtime.stagedReads = false;
  const reference = await values(lossAndGrad(params, x, y));
  runtime.stagedReads = true;
  // one read says nothing about the next: not staged; two reads a call apart predict a third
  const second = call();
  assert.equal(second.staged, 0);
  assert.deepEqual(await values(second.out), reference);
  dispose(second.out);
  for (let i = 0; i < 3; i++) {
    const c = call();
    assert.equal(c.staged, 1, "the loss is staged");
    assert.equal(c.submits, 2, "the work up to the loss, then the rest");
    // reading the loss needs no further submission; the gradient is read the usual way
    const before = mg.runtimeStats().submits;
    const loss = await c.out[0].data();
    assert.equal(mg.runtimeStats().submits, before, "the staged loss is read without a submit");
    assert.deepEqual(Array.from(loss), reference[0]);
    assert.deepEqual(await values(c.out), reference, "same bits as without staging");
    dispose(c.out);
  }
});

Deno.test("reads every other call are predicted; a staged loss freed unread leaves no error", async () => {
  // the last test read every call: this call is predicted to be read, and is not
  const unread = call();
  assert.equal(unread.staged, 1);
  dispose(unread.out); // freed while its map may still be pending
  await mg.sync(); // surfaces any WebGPU error of the aborted map

  const next = call();
  assert.equal(next.staged, 0, "two calls after the last read: not predicted");
  assert.ok(next.submits <= 1, `one submission, got ${next.submits}`);
  const expect = await values(next.out); // read two calls after the previous read
  dispose(next.out);

  const skipped = call();
  assert.equal(skipped.staged, 0, "one call after a read, when reads come every other call");
  dispose(skipped.out);
  const predicted = call();
  assert.equal(predicted.staged, 1, "two calls after a read");
  // read twice: the second read copies again and gets the same value
  assert.deepEqual(Array.from(await predicted.out[0].data()), expect[0]);
  assert.deepEqual(Array.from(await predicted.out[0].data()), expect[0]);
  dispose(predicted.out);
});

Deno.test("only small outputs made before the program's last kernel are staged", async () => {
  // the loss is the last kernel of a forward-only program: nothing would overlap its read
  const forward = mg.jit((p: Params) => mg.sum(mg.tanh(mg.matmul(x, p.w1))));
  for (let i = 0; i < 3; i++) {
    const s0 = mg.runtimeStats();
    const loss = forward(params);
    assert.equal(mg.runtimeStats().stagedReads - s0.stagedReads, 0);
    await loss.item();
    loss.dispose();
  }

  // of two outputs read every call, the small one is staged, the big one is not
  const two = mg.jit((p: Params) => [mg.sum(p.w2), mg.tanh(mg.matmul(x, p.w1))]);
  for (const expected of [0, 0, 1, 1]) {
    const s1 = mg.runtimeStats();
    const out = two(params) as Tensor[];
    assert.equal(mg.runtimeStats().stagedReads - s1.stagedReads, expected);
    await out[0].data();
    await out[1].data();
    dispose(out);
  }
});
