import * as mg from "../mod.ts";
import { mamlRl } from "../algorithms/mod.ts";
import { pointNavigation } from "../envs/mod.ts";
import { JitTrace } from "../core/jit/jit_trace.ts";
import { Compiled, eliminateCommonSubexpressions, eliminateDeadCode } from "../core/jit/compile.ts";
import { eqnOutputs, evalProgram, type Program, programText } from "../core/jit/ir.ts";
await mg.init();
const M = 1, N = Number(Deno.args[0] ?? 34000), H = 16;
const learner = mamlRl({
  env: pointNavigation({ horizon: 100 }),
  metaBatch: 2,
  trajectories: 2,
  hidden: [H],
});
const params = learner.init(mg.random.key(0)).params;
const k = (i: number) => mg.random.key(i);
const batch = (s: number) => ({
  obs: mg.random.normal(k(s), [N, 2]),
  action: mg.random.normal(k(s + 1), [N, 2]),
  logProb: mg.random.normal(k(s + 2), [N]),
  advantage: mg.random.normal(k(s + 3), [N]),
  episodeReturn: mg.zeros([]),
});
const data = { inner: [batch(10)], outer: batch(20) };
const f = (p: any) => mg.grad((q: any) => learner.metaObjective(q, data.inner, data.outer))(p);
const [leaves, def] = mg.tree.flatten<mg.Tensor>(params);
const trace = new JitTrace("webgpu");
const ins = leaves.map((l) => trace.input(l.shape, l.dtype));
const out = trace.run(() => f(mg.tree.unflatten(def, ins)));
const outs = mg.tree.flatten<mg.Tensor>(out)[0].map((t) => trace.varOf(t));
const full: Program = eliminateDeadCode(
  eliminateCommonSubexpressions({ inputs: trace.inputs, eqns: trace.eqns, outputs: outs }),
);
console.log("eqns", full.eqns.length);
const eager = evalProgram(full, leaves);
const diffAt = async (upto: number) => {
  const e = full.eqns[upto];
  const prog: Program = {
    inputs: full.inputs,
    eqns: full.eqns.slice(0, upto + 1),
    outputs: [...eqnOutputs(e)],
  };
  const c = new Compiled(prog, "webgpu");
  const got = c.run(leaves);
  const want = evalProgram(prog, leaves);
  let worst = 0;
  for (let i = 0; i < got.length; i++) {
    if (got[i].dtype !== "f32") continue;
    const a = await want[i].toFloat64(), b = await got[i].toFloat64();
    let scale = 1e-6;
    for (const v of a) scale = Math.max(scale, Math.abs(v));
    for (let j = 0; j < a.length; j++) worst = Math.max(worst, Math.abs(a[j] - b[j]) / scale);
  }
  return worst;
};
const n = full.eqns.length;
if (Deno.env.get("RANGE")) {
  const [a, b] = Deno.env.get("RANGE")!.split("-").map(Number);
  for (let i = a; i <= b; i++) {
    console.log(i, full.eqns[i].prim.name, (await diffAt(i)).toExponential(2));
  }
  Deno.exit(0);
}
const step = Math.max(1, Math.floor(n / 25));
if (Deno.env.get("SCAN")) {
  for (let i = 0; i < n; i += step) {
    console.log(i, full.eqns[i].prim.name, (await diffAt(i)).toExponential(2));
  }
}
console.log(n - 1, (await diffAt(n - 1)).toExponential(2));
if (Deno.args[1]) {
  const [a, b] = Deno.args[1].split("-").map(Number);
  for (let i = a; i <= b; i++) {
    console.log(i, full.eqns[i].prim.name, (await diffAt(i)).toExponential(2));
  }
  console.log(programText({ inputs: full.inputs, eqns: full.eqns.slice(a, b + 1), outputs: [] }));
}
{
  const c = new Compiled(full, "webgpu");
  const got = c.run(leaves);
  for (let i = 0; i < got.length; i++) {
    const a = await eager[i].toFloat64(), b = await got[i].toFloat64();
    let worst = 0, scale = 1e-6;
    for (const v of a) scale = Math.max(scale, Math.abs(v));
    for (let j = 0; j < a.length; j++) worst = Math.max(worst, Math.abs(a[j] - b[j]) / scale);
    console.log("full output", i, got[i].shape, worst.toExponential(2));
  }
  const jitted = mg.tree.flatten<mg.Tensor>(mg.jit(f)(params))[0];
  for (let i = 0; i < jitted.length; i++) {
    const a = await eager[i].toFloat64(), b = await jitted[i].toFloat64();
    let worst = 0, scale = 1e-6;
    for (const v of a) scale = Math.max(scale, Math.abs(v));
    for (let j = 0; j < a.length; j++) worst = Math.max(worst, Math.abs(a[j] - b[j]) / scale);
    console.log("jit output", i, jitted[i].shape, worst.toExponential(2));
  }
}
{
  const target = full.outputs[3];
  const idx = full.eqns.findIndex((e) => eqnOutputs(e).some((v) => v.id === target.id));
  console.log(
    "output 3 from eqn",
    idx,
    full.eqns[idx].prim.name,
    (await diffAt(idx)).toExponential(2),
  );
  // programs with output 3 plus all the rest as outputs
  for (const extra of [0, 1, 2, 4]) {
    const prog: Program = {
      inputs: full.inputs,
      eqns: full.eqns,
      outputs: [full.outputs[3], full.outputs[extra]],
    };
    const got = new Compiled(prog, "webgpu").run(leaves);
    const a = await eager[3].toFloat64(), b = await got[0].toFloat64();
    let worst = 0, scale = 1e-6;
    for (const v of a) scale = Math.max(scale, Math.abs(v));
    for (let j = 0; j < a.length; j++) worst = Math.max(worst, Math.abs(a[j] - b[j]) / scale);
    console.log("with output", extra, worst.toExponential(2));
  }
  console.log(programText(full).split("\n").filter((l) => true).slice(0, 400).join("\n"));
}
