/**
 * jit's kernel planning beyond elementwise chains: kernels of one shape merged into one that
 * stores several values, slices read as windows, stacks and random draws computed inside the
 * kernels reading them, scan moving its per-step values by copy commands. Every case checks
 * the kernel count the plan promises and the values against eager execution.
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import * as assert from "node:assert/strict";
import { runtime } from "../core/backend/webgpu/runtime.ts";
import { padThroughReshape } from "../core/jit/simplify.ts";
import { assertAllClose, assertTreesClose } from "./helpers.ts";

/** jit(f) on `args`: its kernel count must be `kernels` and its results f's. */
async function expectKernels(
  name: string,
  f: (...xs: Tensor[]) => Tensor | Tensor[],
  args: Tensor[],
  kernels: number,
  exact = false,
) {
  const jitted = mg.jit(f);
  const lowered = jitted.lower(...args);
  if (lowered.kernels !== kernels) {
    throw new Error(`${name}: ${lowered.kernels} kernels, expected ${kernels}\n${lowered.plan}`);
  }
  const tol = exact ? { rtol: 0, atol: 0 } : { rtol: 1e-6, atol: 1e-6 };
  await assertTreesClose(jitted(...args), f(...args), name, tol);
}

Deno.test("kernels of one shape merge into one kernel storing every value read elsewhere", async () => {
  await mg.init();
  const keys = mg.random.split(mg.random.key(11), 5);
  const [x, v, th, w] = keys.slice(0, 4).map((k) => mg.random.normal(k, [37]));
  const a = mg.random.uniform(keys[4], [37]);
  // a CartPole-like step: the four state components and the termination flag come from the
  // same intermediates (cos θ, sin θ, the acceleration), each read by several results
  const step = (x: Tensor, v: Tensor, th: Tensor, w: Tensor, a: Tensor) => {
    const force = mg.where(mg.greater(a, 0.5), 10, -10);
    const c = mg.cos(th), s = mg.sin(th);
    const t = mg.div(mg.add(force, mg.mul(mg.mul(mg.square(w), s), 0.05)), 1.1);
    const alpha = mg.sub(mg.mul(s, 9.8), mg.mul(c, t));
    const acc = mg.sub(t, mg.mul(mg.mul(alpha, c), 0.05));
    const x2 = mg.add(x, mg.mul(v, 0.02)), th2 = mg.add(th, mg.mul(w, 0.02));
    const done = mg.logicalOr(mg.greater(mg.abs(x2), 2.4), mg.greater(mg.abs(th2), 0.2));
    return [x2, mg.add(v, mg.mul(acc, 0.02)), th2, mg.add(w, mg.mul(alpha, 0.02)), done];
  };
  await expectKernels("state step", step, [x, v, th, w, a], 1);
  // a sum between two groups reads the first one's value: the second joins the first kernel
  // (which runs before the sum), so the program is that kernel and the sum's
  const around = (x: Tensor, v: Tensor) => {
    const y = mg.exp(mg.mul(x, 0.5));
    const total = mg.sum(y);
    return [total, mg.mul(mg.add(y, v), 3), mg.sub(v, x)];
  };
  await expectKernels("around a sum", around, [x, v], 2);
});

Deno.test("a kernel whose shape broadcasts into another's merges into it and stores its values once", async () => {
  await mg.init();
  const x = mg.random.normal(mg.random.key(18), [37]);
  const y = mg.random.normal(mg.random.key(19), [5, 37]);
  const z = mg.random.normal(mg.random.key(20), [5, 1]);
  // [37] and [5, 1] values, each read by the caller and by a [5, 37] group
  const f = (x: Tensor, y: Tensor, z: Tensor) => {
    const ex = mg.mul(mg.exp(x), 2), sz = mg.sin(z);
    return [ex, mg.add(mg.mul(y, ex), sz), sz, mg.greater(ex, 1)];
  };
  await expectKernels("broadcast into [5, 37]", f, [x, y, z], 1);
  // a window of a kernel's value that the caller reads is stored by that kernel too
  const windows = (y: Tensor) => {
    const e = mg.exp(y);
    return [e, mg.slice(e, [[1, 5, 2], [3, 37, 3]]), mg.slice(e, [4])];
  };
  await expectKernels("windows of a kernel's value", windows, [y], 1);
});

Deno.test("slices are read as windows by the fused kernels reading them, and stacks are picked by coordinate", async () => {
  await mg.init();
  const s = mg.random.normal(mg.random.key(12), [29, 4]);
  const b = mg.random.normal(mg.random.key(13), [29]);
  // columns (one reversed, one strided) read where they lie: no slice kernel
  const columns = (s: Tensor, b: Tensor) => {
    const c0 = mg.slice(s, [null, 0]), c3 = mg.slice(s, [[null, null, -1], 3]);
    const even = mg.slice(s, [[0, 29, 2], 1]);
    return [mg.add(mg.mul(c0, c3), b), mg.mul(even, 2)];
  };
  await expectKernels("columns", columns, [s, b], 2);
  // the columns stacked back are the state itself; a where choosing between it and a stack
  // of new values is one kernel
  const restack = (s: Tensor, b: Tensor) => {
    const parts = [0, 1, 2, 3].map((j) => mg.slice(s, [null, [j, j + 1]]));
    const same = mg.concat(parts, 1);
    const fresh = mg.stack([mg.add(b, 1), mg.mul(b, b), mg.neg(b), mg.exp(b)], 1);
    return mg.where(mg.reshape(mg.greater(b, 0), [29, 1]), same, fresh);
  };
  await expectKernels("restack", restack, [s, b], 1);
  // stacks of flags and of integers along the first and a middle axis
  const flags = (b: Tensor) => [
    mg.stack([mg.greater(b, 0), mg.less(b, -0.5), mg.isNaN(b)]),
    mg.stack([mg.cast(mg.floor(mg.mul(b, 3)), "i32"), mg.cast(mg.sign(b), "i32")], 1),
  ];
  await expectKernels("flags", flags, [b], 2, true);
  // slices of constants are constants computed where they are read: an iota's columns (a
  // one-hot against two actions, unrolled), a reversed iota, a strided window of a full, rows
  // of a reshaped iota (that kernel reads nothing)
  const constants = (b: Tensor) => {
    const ids = mg.reshape(mg.arange(0, 6, 1, "i32"), [2, 3]);
    const picked = mg.cast(mg.floor(mg.mul(mg.abs(b), 2)), "i32");
    const col = (j: number) => mg.reshape(mg.slice(ids, [[1, 2], j]), []);
    const rows = mg.slice(mg.reshape(mg.arange(3, 23, 2), [5, 2]), [[1, 4]]);
    const reversed = mg.slice(mg.arange(29), [[null, null, -1]]);
    const fives = mg.slice(mg.full([60, 3], 5), [[0, 60, 2], 1]);
    return [
      mg.add(mg.cast(mg.equal(picked, col(0)), "f32"), mg.cast(mg.equal(picked, col(2)), "f32")),
      mg.add(b, mg.add(reversed, mg.slice(fives, [[0, 29]]))),
      mg.mul(rows, 3),
    ];
  };
  await expectKernels("slices of constants", constants, [b], 2);
});

Deno.test("zero pads are read in place by the fused kernels over their shape: 0 outside the box", async () => {
  await mg.init();
  const keys = mg.random.split(mg.random.key(21), 6);
  const [a, b, c] = keys.slice(0, 3).map((k) => mg.random.normal(k, [7, 10]));
  // a GRU's backward step: three gates' gradients padded into place and summed, twice
  const gates = (a: Tensor, b: Tensor, c: Tensor) => {
    const at = (x: Tensor, j: number) => mg.pad(x, [[0, 0], [10 * j, 20 - 10 * j]]);
    const shared = mg.add(at(a, 0), at(b, 1));
    return [mg.add(shared, at(c, 2)), mg.add(shared, at(mg.mul(c, 3), 2))];
  };
  await expectKernels("gates", gates, [a, b, c], 2, true);
  // a box inside a 3D value on the first and middle axes, read by exp (1 outside the box), and
  // a box far from the start of a long axis
  const x = mg.random.normal(keys[3], [3, 5, 4]), y = mg.random.normal(keys[4], [5]);
  const boxes = (x: Tensor, y: Tensor) => [
    mg.exp(mg.pad(x, [[1, 0], [2, 2], [0, 0]])),
    mg.mul(mg.pad(y, [[123, 7]]), 2),
  ];
  await expectKernels("boxes", boxes, [x, y], 2);
  const jitted = mg.jit(boxes);
  if (jitted.lower(x, y).plan.includes("pad")) {
    throw new Error(`a pad was left as its own kernel:\n${jitted.lower(x, y).plan}`);
  }
  // the gradient of slices (the pads autodiff makes), against the eager gradient
  const w = mg.random.normal(keys[5], [6, 9]);
  const sliced = (w: Tensor) =>
    mg.sum(mg.mul(mg.sin(mg.slice(w, [[1, 4], [2, 9]])), mg.exp(mg.slice(w, [[0, 3], [0, 7]]))));
  await assertTreesClose(mg.jit(mg.grad(sliced))(w), mg.grad(sliced)(w), "grad of slices", {
    rtol: 1e-6,
    atol: 1e-6,
  });
  // left as kernels: a pad read by a kernel of another shape, and a pad with another value
  const kept = (y: Tensor, x: Tensor) => [
    mg.add(mg.reshape(mg.pad(y, [[1, 2]]), [1, 8]), mg.slice(x, [0, null, [0, 1]])),
    mg.mul(mg.pad(y, [[2, 0]], 1.5), 2),
  ];
  await assertTreesClose(mg.jit(kept)(y, x), kept(y, x), "kept pads", { rtol: 0, atol: 0 });
});

Deno.test("a reshape of a zero pad is a pad of the reshaped input where the box stays a box", async () => {
  const pad = (lo: number[], hi: number[]) => ({ lo, hi, interior: lo.map(() => 0), value: 0 });
  // a gate's block of [B, 3H] read as [B, 3, H]; through a merge; unit axes added and dropped
  assert.deepEqual(padThroughReshape([4, 5], pad([0, 5], [0, 5]), [4, 3, 5]), {
    inputShape: [4, 1, 5],
    params: pad([0, 1, 0], [0, 1, 0]),
  });
  assert.deepEqual(padThroughReshape([2, 3, 4], pad([1, 0, 0], [2, 0, 0]), [10, 1, 6]), {
    inputShape: [4, 1, 6],
    params: pad([2, 0, 0], [4, 0, 0]),
  });
  assert.deepEqual(padThroughReshape([1, 6], pad([0, 2], [0, 4]), [12]), {
    inputShape: [6],
    params: pad([2], [4]),
  });
  // no box: a block cut across (lo 3 of rows of 5), a padded inner axis merged, interior gaps,
  // an empty input, two padded axes in one group
  assert.equal(padThroughReshape([4, 5], pad([0, 3], [0, 7]), [4, 3, 5]), null);
  assert.equal(padThroughReshape([2, 3], pad([0, 1], [0, 0]), [8]), null);
  assert.equal(padThroughReshape([2], { ...pad([1], [1]), interior: [1] }, [5]), null);
  assert.equal(padThroughReshape([0, 5], pad([1, 0], [0, 0]), [5]), null);
  assert.equal(padThroughReshape([2, 2], pad([1, 1], [1, 1]), [16]), null);

  // random pads and reshapes (axes split and merged, unit axes): wherever a rewrite is offered,
  // it gives the same values as the pad then the reshape (float64 reference)
  let offered = 0;
  for (let trial = 0; trial < 300; trial++) {
    const r = (n: number) => Math.floor(((trial * 7919 + n * 104729) % 1009) / 1009 * 4);
    const xShape = [1 + r(1), 1 + r(2), 1 + r(3)];
    const padded = pad([r(4) % 3, r(5) % 2, r(6) % 3], [r(7) % 2, r(8) % 3, r(9) % 2]);
    const outShape = xShape.map((d, i) => padded.lo[i] + d + padded.hi[i]);
    // a target: the row-major dims refactored — each axis kept, split into (k, d/k) or merged
    const target: number[] = [];
    outShape.forEach((d, i) => {
      const k = [2, 3].find((f) => d % f === 0 && d > f && r(10 + i) % 2 === 0);
      if (k) target.push(k, d / k);
      else if (r(20 + i) >= 2 && target.length > 0) target.push(target.pop()! * d);
      else target.push(d);
      if (r(30 + i) === 0) target.push(1);
    });
    const through = padThroughReshape(xShape, padded, target);
    if (!through) continue;
    offered++;
    const x = mg.tensor(
      Array.from({ length: xShape.reduce((a, b) => a * b, 1) }, (_, i) => i + 1),
      { shape: xShape, backend: "reference" },
    );
    const widths = (p: { lo: readonly number[]; hi: readonly number[] }) =>
      p.lo.map((l, i) => [l, p.hi[i]] as [number, number]);
    const want = mg.reshape(mg.pad(x, widths(padded)), target);
    const got = mg.pad(mg.reshape(x, through.inputShape), widths(through.params));
    assert.deepEqual(got.shape, want.shape);
    assert.deepEqual(
      await got.data(),
      await want.data(),
      `${xShape} ${JSON.stringify(padded)} → ${target}`,
    );
  }
  assert.ok(offered > 30, `only ${offered} random cases were rewritten`);

  await mg.init();
  const keys = mg.random.split(mg.random.key(23), 3);
  const [a, b, c] = keys.map((k) => mg.random.normal(k, [6, 8]));
  // three gates' gradients padded into [6, 24], summed, read again as [6, 3, 8] blocks and as
  // [6, 24] (the pads are read twice), and one misaligned block that must stay right
  const blocks = (a: Tensor, b: Tensor, c: Tensor) => {
    const at = (x: Tensor, j: number) => mg.pad(x, [[0, 0], [8 * j, 16 - 8 * j]]);
    const g = mg.add(mg.add(at(a, 0), at(b, 1)), at(mg.exp(c), 2));
    const perBlock = mg.mul(mg.reshape(g, [6, 3, 8]), mg.sum(mg.reshape(g, [6, 3, 8]), -1, true));
    const cut = mg.reshape(mg.pad(a, [[0, 0], [3, 1]]), [6, 3, 4]);
    return [perBlock, mg.tanh(g), mg.exp(cut)];
  };
  const lowered = mg.jit(blocks).lower(a, b, c);
  const pads = lowered.plan.split("\n").filter((l) => l.startsWith("pad")).length;
  if (pads > 1) {
    throw new Error(`${pads} pads left as kernels (the misaligned one may stay):\n${lowered.plan}`);
  }
  await assertTreesClose(mg.jit(blocks)(a, b, c), blocks(a, b, c), "reshaped pads", {
    rtol: 1e-6,
    atol: 1e-6,
  });
});

Deno.test("a concatenation of values one kernel computes is stored by that kernel into its boxes", async () => {
  await mg.init();
  const keys = mg.random.split(mg.random.key(31), 4);
  const [a, b, c] = keys.slice(0, 3).map((k) => mg.random.normal(k, [7, 10]));
  const at = (x: Tensor, j: number) => mg.pad(x, [[0, 0], [10 * j, 20 - 10 * j]]);
  // two concatenations sharing pieces, all computed by one kernel over [7, 10] (a GRU's
  // backward step: the gates' gradients into the two pre-activations' cotangents)
  const pieces = (a: Tensor, b: Tensor, c: Tensor) => {
    const ta = mg.tanh(a), sb = mg.sigmoid(b), ac = mg.mul(a, c);
    return [
      mg.add(mg.add(at(ta, 0), at(sb, 1)), at(ac, 2)),
      mg.add(at(mg.neg(ac), 2), mg.add(at(ta, 1), at(sb, 0))),
    ];
  };
  await expectKernels("pieces", pieces, [a, b, c], 1, true);
  // a piece read elsewhere too is still stored; a box tiling on two axes
  const alsoRead = (a: Tensor, b: Tensor) => {
    const ta = mg.tanh(a);
    const quarter = (x: Tensor, i: number, j: number) =>
      mg.pad(x, [[7 * i, 7 - 7 * i], [10 * j, 10 - 10 * j]]);
    const tiles = [quarter(ta, 0, 0), quarter(mg.exp(a), 0, 1), quarter(b, 1, 0)];
    const joined = mg.add(mg.add(tiles[0], tiles[1]), mg.add(tiles[2], quarter(mg.sin(b), 1, 1)));
    return [joined, mg.mul(ta, 2)];
  };
  await expectKernels("also read", alsoRead, [a, b], 2, true);
  // not concatenations, left as sums of padded reads (and still right): overlapping boxes,
  // boxes leaving a gap, a piece added twice, pieces from two kernels of other shapes
  const overlap = (a: Tensor, b: Tensor) =>
    mg.add(mg.pad(mg.tanh(a), [[0, 0], [0, 4]]), mg.pad(mg.exp(b), [[0, 0], [4, 0]]));
  await expectKernels("overlap", overlap, [a, b], 2);
  const gap = (a: Tensor, b: Tensor) =>
    mg.add(mg.pad(mg.tanh(a), [[0, 0], [0, 11]]), mg.pad(mg.exp(b), [[0, 0], [11, 0]]));
  await expectKernels("gap", gap, [a, b], 2);
  const twice = (a: Tensor) => {
    const ta = mg.tanh(a);
    return mg.add(mg.add(at(ta, 0), at(ta, 0)), mg.add(at(ta, 1), at(ta, 2)));
  };
  await expectKernels("twice", twice, [a], 2);
  const w = mg.random.normal(keys[3], [10, 10]);
  const products = (a: Tensor, w: Tensor) =>
    mg.add(at(mg.matmul(a, w), 0), mg.add(at(mg.tanh(a), 1), at(mg.matmul(mg.exp(a), w), 2)));
  await assertTreesClose(mg.jit(products)(a, w), products(a, w), "products", {
    rtol: 1e-5,
    atol: 1e-5,
  });
});

/**
 * A GRU cell run over 9 steps of a batch under jit(grad): the kernels of its forward and its
 * backward step (the two scans' bodies), and the jitted gradient checked against the eager one.
 */
async function gruStepKernels(
  name: string,
  cell: ReturnType<typeof mg.nn.gruCell>,
  batch: number,
): Promise<[string[], string[]]> {
  const p = cell.init(mg.random.key(5));
  const xs = mg.random.normal(mg.random.key(6), [batch, 9, 3]); // [batch, T, features]
  const loss = (p: unknown) => {
    const [, hs] = mg.nn.runRecurrent(cell, p as never, cell.initialState([batch]), xs);
    return mg.sum(mg.square(hs));
  };
  const g = mg.jit(mg.grad(loss));
  const lines = g.lower(p).plan.split("\n");
  const [forward, backward] = lines.flatMap((l, i) => (l.startsWith("scan →") ? [i] : [])).map(
    (at) => {
      const body: string[] = [];
      for (let i = at + 2; i < lines.length && lines[i].startsWith("  "); i++) body.push(lines[i]);
      return body;
    },
  );
  await assertTreesClose(g(p), mg.grad(loss)(p), name, { rtol: 1e-4, atol: 1e-5 });
  return [forward, backward];
}

Deno.test("a GRU's backward step is two kernels: the gates' and the product into the hidden state", async () => {
  await mg.init();
  const [, backward] = await gruStepKernels("GRU gradients", mg.nn.gruCell(3, 16), 4);
  if (backward.length !== 2) {
    throw new Error(`backward step of ${backward.length} kernels:\n${backward.join("\n")}`);
  }
});

Deno.test("the layer-normalised GRU's steps: forward 5 kernels, backward 11, the gates' pads read in place", async () => {
  await mg.init();
  // (gates of 48 columns: shorter row sums are computed inside their readers, fewer kernels)
  const cell = mg.nn.gruCell(3, 48, { layerNorm: true, candidate: "relu", updateBias: 1 });
  const [forward, backward] = await gruStepKernels("normalised GRU gradients", cell, 16);
  // matmul, the block statistics (Σg, Σg²), normalise-scale-shift, the gates
  if (forward.length !== 5) throw new Error(`forward step:\n${forward.join("\n")}`);
  if (backward.length !== 11 || backward.some((l) => l.trim().startsWith("pad"))) {
    throw new Error(`backward step:\n${backward.join("\n")}`);
  }
});

Deno.test("random draws under jit are the eager bits, drawn inside the kernels that read them", async () => {
  await mg.init();
  const k = mg.random.key(14);
  const draws = (k: Tensor) => [
    mg.random.uniform(k, [37, 3], { minval: -2, maxval: 5 }),
    mg.random.randomBits(mg.random.foldIn(k, 7), [5]),
  ];
  // the uniform draw and its scaling are one kernel; foldIn's key and the bits under it one more
  await expectKernels("uniform and bits", draws, [k], 2, true);
  // a stack of keys draws a block per key; split keys feed further draws
  const perKey = (k: Tensor) => {
    const keys = mg.random.splitStacked(k, 6);
    const bits = mg.vmap((kk: Tensor) => mg.random.randomBits(kk, [3, 2]))(keys) as Tensor;
    const again = mg.vmap((kk: Tensor) => mg.random.normal(mg.random.split(kk)[1], [4]))(keys);
    return [bits, again as Tensor];
  };
  const jitted = mg.jit(perKey);
  await assertTreesClose(jitted(k), perKey(k), "per-key draws", { rtol: 0, atol: 0 });
  const plan = jitted.lower(k).plan;
  if (plan.includes("randomBits")) throw new Error(`a draw was left as its own kernel:\n${plan}`);
  // the six keys' words are computed in the kernel splitting them (not stored as keys first);
  // then the bits [6, 3, 2] under them, the normal's own split, and the normal draws [6, 4]
  await expectKernels("per-key draws", perKey, [k], 4, true);
  // windows of bits are bits of their own where their elements are evenly spaced (rows; one
  // column: one word of each pair; one element; every other row's column), slices otherwise
  const windows = (k: Tensor) => {
    const b = mg.random.randomBits(k, [6, 4]);
    const col = mg.reshape(mg.slice(b, [null, [1, 2]]), [6]);
    return [
      mg.add(mg.slice(b, [[2, 5]]), 1),
      mg.add(col, 1),
      mg.add(mg.slice(col, [[1, 6, 2]]), 2), // (a window of a one-word window)
      mg.add(mg.slice(b, [[1, 2], [3, 4]]), 1),
      mg.add(mg.slice(b, [[0, 6, 2], [0, 1]]), 1),
      mg.add(mg.slice(b, [null, [1, 3]]), 1), // (two of four columns: stays a slice)
      mg.add(mg.slice(b, [null, [0, 4, 3]]), 1), // (columns 0 and 3: stays a slice)
    ];
  };
  // one kernel reads the stored bits [6, 4]: the one of the two slices left slices
  const plan2 = mg.jit(windows).lower(k).plan;
  const readers = plan2.split("\n").filter((l) => (l.split("←")[1] ?? "").includes("u32[6,4]"));
  if (readers.length !== 1) throw new Error(`bits read in place by more kernels:\n${plan2}`);
  await assertTreesClose(mg.jit(windows)(k), windows(k), "windows of bits", { rtol: 0, atol: 0 });
});

Deno.test("scan moves each step's xs and ys by copy commands, not kernels", async () => {
  await mg.init();
  const xs = mg.random.normal(mg.random.key(15), [9, 5]);
  const init = mg.zeros([5]);
  const run = mg.jit((c0: Tensor, xs: Tensor) =>
    mg.scan(
      (c: Tensor, x: Tensor) => {
        const c2 = mg.add(mg.mul(c, 0.5), x);
        return [c2, [mg.mul(c2, 2), mg.greater(x, 0)]];
      },
      c0,
      xs,
      { reverse: true },
    )
  );
  const eager = (c0: Tensor, xs: Tensor) => {
    let c = c0;
    const ys: Tensor[] = [], flags: Tensor[] = [];
    for (let t = 8; t >= 0; t--) {
      c = mg.add(mg.mul(c, 0.5), mg.slice(xs, [t]));
      ys.unshift(mg.mul(c, 2));
      flags.unshift(mg.greater(mg.slice(xs, [t]), 0));
    }
    return [c, [mg.stack(ys), mg.stack(flags)]];
  };
  run(init, xs); // compiled
  await mg.sync();
  const copies = runtime.stats.copies, dispatches = runtime.stats.dispatches;
  const out = run(init, xs);
  await mg.sync();
  // one x in and two ys out per step; the body is one kernel per step
  if (runtime.stats.copies - copies !== 27 || runtime.stats.dispatches - dispatches !== 9) {
    throw new Error(
      `expected 27 copies and 9 dispatches, got ${runtime.stats.copies - copies} and ${
        runtime.stats.dispatches - dispatches
      }`,
    );
  }
  await assertTreesClose(out, eager(init, xs), "scan", { rtol: 1e-6, atol: 1e-6 });
  const [last] = out as [Tensor, Tensor[]];
  assertAllClose(await last.toFloat64(), await (eager(init, xs)[0] as Tensor).toFloat64());
});

Deno.test("reductions over at most four elements are elementwise in the kernels around them, NaN and ties kept", async () => {
  await mg.init();
  // ties, NaN first and later, ±∞ and −0 along the reduced axis of length 2, 3 and 4
  const rows = [
    [1, 1, 0, -1],
    [NaN, 2, 3, NaN],
    [2, NaN, 5, 1],
    [-Infinity, -0, 0, Infinity],
    [-3, -3, -7, -3],
  ];
  for (const n of [2, 3, 4]) {
    const x = mg.tensor(rows.map((r) => r.slice(0, n)));
    const reductions = (x: Tensor) => [
      mg.argmax(x, 1),
      mg.argmin(x, 1),
      mg.max(x, 1),
      mg.min(x, 1),
      mg.argmax(mg.transpose(x), 0),
    ];
    // one kernel where the adapter binds enough inputs (each window is a binding; GL has few)
    const bindings = (await mg.init()).limits.maxStorageBuffersPerShaderStage;
    const kernels = bindings >= 32 ? 1 : mg.jit(reductions).lower(x).kernels;
    await expectKernels(`arg/max/min over ${n}`, reductions, [x], kernels, true);
    const plan = mg.jit(reductions).lower(x).plan;
    if (/^(reduce|argmax|argmin|max|min)\b/m.test(plan)) {
      throw new Error(`a reduction over ${n} is still a kernel:\n${plan}`);
    }
  }
  // a log-softmax over two actions summed: no reduction kernels — the [33] values, the
  // keepdims [33, 1] ones between them, and the [33] sum (three elementwise kernels)
  const logits = mg.random.normal(mg.random.key(16), [33, 2]);
  const logProb = (z: Tensor) => {
    const m = mg.max(z, 1, true);
    const lse = mg.add(mg.log(mg.sum(mg.exp(mg.sub(z, m)), 1, true)), m);
    return mg.sum(mg.sub(z, lse), 1);
  };
  await expectKernels("log-softmax over 2", logProb, [logits], 3);
  // a sum over two axes of 2 × 2 terms, integers, and a product
  const cube = mg.random.normal(mg.random.key(17), [7, 2, 2]);
  const ints = mg.cast(mg.floor(mg.mul(cube, 5)), "i32");
  await expectKernels("Σ over 2×2", (c: Tensor) => mg.sum(c, [1, 2]), [cube], 1);
  await expectKernels(
    "integer Σ and Π",
    (k: Tensor) => [mg.sum(k, 2), mg.prod(k, 1)],
    [ints],
    1,
    true,
  );
});
