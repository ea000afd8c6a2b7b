/**
 * Mistakes a new user makes, each a clear error (or, where NumPy/JAX accept the spelling, the
 * right result) instead of a silent wrong answer or a stack trace from deep inside: shapes
 * passed where options go, unknown names, integers that do not fit, NaN hyper-parameters,
 * missing options, donated tensors, out-of-range vmap axes, cached batches in metaTrain.
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import {
  anil,
  maml,
  matchingNet,
  metaSgd,
  metaTrain,
  protoNet,
  reptile,
} from "../algorithms/mod.ts";
import { sampleSinusoid } from "../envs/mod.ts";
import { assertAllClose, assertThrowsWith } from "./helpers.ts";

const model = () => mg.nn.mlp([1, 8, 1], { activation: mg.tanh });

for (const backend of ["webgpu", "reference"] as const) {
  Deno.test(`creation functions take a shape where NumPy puts it, and refuse what they cannot read (${backend})`, () => {
    const t = mg.tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    if (t.shape.join() !== "2,3") throw new Error(`shape [${t.shape}]`);
    const on = mg.tensor([1, 2, 3, 4], { shape: [2, 2], backend });
    if (on.shape.join() !== "2,2" || on.backend !== backend) throw new Error("options lost");
    const z = mg.zeros([2], "int32"); // a dtype string, as jnp.zeros(shape, dtype)
    if (z.dtype !== "i32") throw new Error(`zeros dtype ${z.dtype}`);
    assertThrowsWith(
      () => mg.tensor([1, 2], { dtyp: "i32" } as never),
      "tensor",
      '"dtyp"',
      "dtype",
    );
    assertThrowsWith(() => mg.zeros([2, 3], [4] as never), "full", "options must be an object");
    assertThrowsWith(() => mg.ones([2], { backend: "cuda" } as never), "unknown backend", "cuda");
    assertThrowsWith(() => mg.full([2], "7" as never), "full", "value must be a number");
    assertThrowsWith(() => mg.arange(NaN), "arange", "finite");
    assertThrowsWith(() => mg.eye(2.5), "eye", "integer");
  });

  Deno.test(`dtype names: NumPy/JAX aliases accepted, unknown names listed (${backend})`, async () => {
    mg.setBackend(backend);
    try {
      const x = mg.tensor([1.7, -1.7]);
      for (
        const [alias, canonical] of [["int32", "i32"], ["float32", "f32"], ["uint32", "u32"], [
          "bool",
          "bool",
        ]] as const
      ) {
        const c = mg.cast(mg.abs(x), alias);
        if (c.dtype !== canonical) throw new Error(`cast to ${alias} gave ${c.dtype}`);
      }
      assertAllClose(await mg.cast(x, "int32").toFloat64(), [1, -1], { rtol: 0, atol: 0 });
      assertThrowsWith(
        () => mg.cast(x, "int64" as never),
        "cast",
        '"int64"',
        "f32, i32, u32, bool",
      );
      assertThrowsWith(() => mg.ones([2], { dtype: "float" as never }), '"float"', "float32");
      assertThrowsWith(
        () => mg.oneHot(mg.tensor([0], { dtype: "i32" }), 2, { dtype: "half" as never }),
        '"half"',
      );
    } finally {
      mg.setBackend("webgpu");
    }
  });

  Deno.test(`integers that do not fit their dtype are RangeErrors, not wrapped values (${backend})`, async () => {
    mg.setBackend(backend);
    try {
      assertThrowsWith(() => mg.tensor([2 ** 31], { dtype: "i32" }), "2147483648", "i32");
      assertThrowsWith(() => mg.tensor([-1], { dtype: "u32" }), "-1", "u32");
      assertThrowsWith(() => mg.tensor([NaN], { dtype: "i32" }), "NaN", "i32");
      assertThrowsWith(() => mg.full([2], Infinity, { dtype: "u32" }), "Infinity", "u32");
      assertThrowsWith(() => mg.add(mg.tensor([1], { dtype: "i32" }), 2 ** 31), "add", "i32");
      assertThrowsWith(() => mg.arange(0, 2 ** 32, 2 ** 31, { dtype: "i32" }), "arange", "i32");
      // the edges still fit exactly
      const edges = mg.tensor([2 ** 31 - 1, -(2 ** 31)], { dtype: "i32" });
      assertAllClose(await edges.toFloat64(), [2 ** 31 - 1, -(2 ** 31)], { rtol: 0, atol: 0 });
      const top = mg.tensor([2 ** 32 - 1], { dtype: "u32" });
      assertAllClose(await top.toFloat64(), [2 ** 32 - 1], { rtol: 0, atol: 0 });
    } finally {
      mg.setBackend("webgpu");
    }
  });
}

Deno.test("reshape takes numbers as NumPy does, and says what it takes otherwise", () => {
  const x = mg.arange(6);
  if (x.reshape(6).shape.join() !== "6") throw new Error("reshape(6)");
  if (x.reshape(2, 3).shape.join() !== "2,3") throw new Error("reshape(2, 3)");
  if (mg.reshape(x, 6).shape.join() !== "6") throw new Error("mg.reshape(x, 6)");
  assertThrowsWith(() => mg.reshape(x, "6" as never), "reshape", "a number or an array");
});

Deno.test("optimizers and schedules refuse NaN, infinite and negative hyper-parameters", () => {
  const bad: [string, () => unknown, string][] = [
    ["adam NaN", () => mg.optim.adam(NaN), "learning rate"],
    ["sgd -0.1", () => mg.optim.sgd(-0.1), "learning rate"],
    ["sgd Infinity", () => mg.optim.sgd(Infinity), "learning rate"],
    ["sgd string", () => mg.optim.sgd("0.1" as never), "learning rate"],
    ["sgd momentum 1", () => mg.optim.sgd(0.1, { momentum: 1 }), "momentum"],
    ["sgd momentum positional", () => mg.optim.sgd(0.1, 0.9 as never), "options must be an object"],
    ["adam b1 NaN", () => mg.optim.adam(1e-3, { b1: NaN }), "b1"],
    ["adam eps -1", () => mg.optim.adam(1e-3, { eps: -1 }), "eps"],
    ["adamw weightDecay", () => mg.optim.adamw(1e-3, { weightDecay: -1 }), "weightDecay"],
    ["rmsprop decay", () => mg.optim.rmsprop(1e-3, { decay: 2 }), "decay"],
    ["clip 0", () => mg.optim.clipByGlobalNorm(0), "maxNorm"],
    ["chain", () => mg.optim.chain(mg.optim.sgd(1), 3 as never), "optim.chain"],
    ["cosineDecay steps", () => mg.optim.schedules.cosineDecay(1e-3, 0), "steps"],
    ["linearDecay NaN", () => mg.optim.schedules.linearDecay(NaN, 10), "value"],
    ["warmup steps", () => mg.optim.schedules.linearWarmup(1e-3, 1.5), "steps"],
  ];
  for (const [what, call, fragment] of bad) {
    try {
      call();
    } catch (e) {
      if (!(e as Error).message.includes(fragment)) {
        throw new Error(`${what}: message lacks "${fragment}": ${(e as Error).message}`);
      }
      continue;
    }
    throw new Error(`${what}: accepted`);
  }
  mg.optim.sgd(0); // a zero rate is legal (a frozen run)
});

Deno.test("learner constructors name a missing or unknown option, an unknown loss, a bad rate", () => {
  assertThrowsWith(() => maml({ loss: "mse" } as never), "maml", "model", "required");
  assertThrowsWith(() => maml({ model: model(), loss: "MSE" as never }), "maml", "loss", '"mse"');
  assertThrowsWith(() => maml({ model: model() } as never), "maml", "loss is required");
  assertThrowsWith(() => reptile({ model: model() } as never), "reptile", "loss is required");
  assertThrowsWith(
    () => reptile({ model: model(), loss: "l2" as never }),
    "reptile",
    '"crossEntropy"',
  );
  assertThrowsWith(() => maml({ model: model(), loss: "mse", innerLr: NaN }), "innerLr", "NaN");
  assertThrowsWith(() => maml({ model: model(), loss: "mse", innerLr: -1 }), "innerLr", "≥ 0");
  assertThrowsWith(() => maml({ model: model(), loss: "mse", innerSteps: 1.5 }), "innerSteps");
  assertThrowsWith(() => maml({ model: model(), loss: "mse", innerLR: 0.1 } as never), '"innerLR"');
  assertThrowsWith(
    () => maml({ model: model(), loss: "mse", learnedLr: "perlayer" as never }),
    "learnedLr",
    '"perLayer"',
  );
  assertThrowsWith(() => metaSgd({ model: model(), loss: "mse", innerLr: Infinity }), "metaSgd");
  assertThrowsWith(() => anil({ model: {} as never, loss: "mse" }), "anil", "init and apply");
  assertThrowsWith(
    () => maml({ model: model(), loss: "mse", metaOptimizer: 0.001 as never }),
    "metaOptimizer",
    "optim.adam",
  );
  assertThrowsWith(
    () => reptile({ model: model(), loss: "mse", metaLr: NaN }),
    "reptile",
    "metaLr",
  );
  assertThrowsWith(() => protoNet({ ways: 5 } as never), "protoNet", "embedding", "required");
  assertThrowsWith(() => protoNet({ embedding: model() } as never), "protoNet", "ways");
  assertThrowsWith(() => matchingNet({ embedding: model(), ways: 1 }), "matchingNet", "ways");
  assertThrowsWith(
    () => matchingNet({ embedding: model(), ways: 5, fce: { features: 0 } }),
    "fce.features",
  );
});

Deno.test("a tensor used after it was donated names the function it was donated to", async () => {
  const learner = maml({ model: model(), loss: "mse" });
  const state = learner.init(mg.random.key(0));
  const batch = sampleSinusoid(mg.random.key(1), { tasks: 2, shots: 3 });
  const [next] = learner.metaStep(state, batch);
  const w = mg.tree.leaves<Tensor>(state.params)[0];
  assertThrowsWith(() => mg.add(w, 1), "donated to maml.metaStep", "new state", "donateArgnums");
  await mg.tree.leaves<Tensor>(next.params)[0].data(); // the new state is fine
});

Deno.test("vmap reports an out-of-range outAxes as its own error", () => {
  assertThrowsWith(
    () => mg.vmap((x: Tensor) => mg.mul(x, 2), { outAxes: 3 })(mg.ones([4, 2])),
    "vmap: outAxes 3",
    "rank 1",
  );
});

Deno.test("metaTrain frees the batches its sampler makes, and leaves a cached batch alone", async () => {
  const learner = maml({ model: model(), loss: "mse", innerLr: 0.01 });
  const cached = sampleSinusoid(mg.random.key(2), { tasks: 2, shots: 3 });
  const state = await metaTrain(learner.metaStep, learner.init(mg.random.key(0)), () => cached, {
    steps: 3,
    key: mg.random.key(1),
    every: 1,
  });
  for (const t of Object.values(cached)) if (t.isDisposed) throw new Error("cached batch freed");
  // a cache made lazily, on the sampler's first call, is kept with keep()
  let lazy: ReturnType<typeof sampleSinusoid> | null = null;
  const lazySampler = () =>
    lazy ??= mg.tree.map(
      (t: Tensor) => mg.keep(t),
      sampleSinusoid(mg.random.key(5), { tasks: 2, shots: 3 }),
    );
  const s2 = await metaTrain(learner.metaStep, learner.init(mg.random.key(6)), lazySampler, {
    steps: 3,
    key: mg.random.key(7),
    every: 3,
  });
  if (Object.values(lazy!).some((t) => t.isDisposed)) throw new Error("kept lazy cache freed");
  for (const t of mg.tree.leaves<Tensor>(s2)) t.dispose();
  await cached.xs.data();
  // fresh batches are the loop's: each is freed after its step
  const made: Tensor[] = [];
  const s = await metaTrain(learner.metaStep, state, (k) => {
    const b = sampleSinusoid(k, { tasks: 2, shots: 3 });
    made.push(...Object.values(b));
    return b;
  }, { steps: 3, key: mg.random.key(4), every: 3 });
  if (made.length !== 12 || made.some((t) => !t.isDisposed)) {
    throw new Error(`${made.filter((t) => !t.isDisposed).length} of ${made.length} kept`);
  }
  for (const t of mg.tree.leaves<Tensor>(s)) t.dispose();
});

Deno.test("error messages quote at most a couple hundred characters of a value", () => {
  const long = Array.from({ length: 5000 }, (_, i) => i + 0.5);
  let message = "";
  try {
    mg.split(mg.arange(6), long);
  } catch (e) {
    message = (e as Error).message;
  }
  if (!message.includes("more characters") || message.length > 600) {
    throw new Error(`an uncapped message of ${message.length} characters`);
  }
  const keys = mg.random.split(mg.random.key(0), 1000);
  assertThrowsWith(() => mg.random.normal(keys as never, [2]), "an array of 1000", "splitStacked");
});
