/**
 * Kernel source helpers (pruning functions a kernel never reaches) and spec conformance of the
 * generated WGSL: no constant expression evaluates to NaN or ±∞, and the non-finite constants
 * a program holds stay apart under jit.
 */
import assert from "node:assert/strict";
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { runtime } from "../core/backend/webgpu/runtime.ts";
import { pruneFunctions, WGSL_HELPERS } from "../core/backend/webgpu/wgsl.ts";

Deno.test("pruneFunctions keeps what the entry point reaches, directly or through helpers", () => {
  const code = `struct Params { d: array<vec4<u32>, 1> };
@group(0) @binding(0) var<uniform> u: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${WGSL_HELPERS}
fn unused(x: f32) -> f32 {
  // a comment with a brace {
  if (x > 0.0) { return x; }
  return -x;
}
fn clean(x: f32) -> f32 {
  // a comment with a brace }
  if (is_nan(x)) { return 0.0; }
  return x;
}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  out[gid.x] = clean(out[gid.x]) + f32(div_index(gid.x, u.d[0].x));
}`;
  const pruned = pruneFunctions(code);
  const fns = [...pruned.matchAll(/^fn (\w+)/gm)].map((m) => m[1]).sort();
  assert.deepEqual(fns, ["clean", "div_index", "is_nan", "main"]);
  for (const kept of ["struct Params", "var<uniform> u", "var<storage, read_write> out"]) {
    assert.ok(pruned.includes(kept), kept);
  }
  assert.ok(
    pruned.includes("@compute @workgroup_size(64)\nfn main"),
    "the entry point's attributes",
  );
  // text it cannot take apart is left whole
  assert.equal(pruneFunctions("fn main() {"), "fn main() {");
});

Deno.test("non-finite constants: jit keeps NaN and ±∞ apart, and no kernel folds them into a constant expression", async () => {
  await mg.init();
  const x = mg.tensor([1, -2, 3]);
  const f = (x: Tensor) => [
    mg.where(mg.greater(x, 0), x, Infinity),
    mg.where(mg.greater(x, 0), NaN, x),
    mg.maximum(x, -Infinity),
    mg.pow(x, 0.5), // NaN for the negative element
    mg.exp(mg.full([3], -Infinity)),
  ];
  const eager = await Promise.all(f(x).map((t) => t.toFloat64()));
  const jitted = await Promise.all(mg.jit(f)(x).map((t: Tensor) => t.toFloat64()));
  const same = (a: number, b: number) => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));
  eager.forEach((e, i) => {
    e.forEach((v, j) => {
      if (!same(v, jitted[i][j])) {
        throw new Error(`output ${i}[${j}]: eager ${v}, jit ${jitted[i][j]}`);
      }
    });
  });
  // (the sign of a zero is not kept: WGSL lets implementations ignore it, and LLVM folds x·0 to 0)
  if (!Number.isNaN(jitted[1][0]) || jitted[2][1] !== -2 || !Number.isNaN(jitted[3][1])) {
    throw new Error(`wrong values: ${JSON.stringify(jitted.map((a) => [...a].map(String)))}`);
  }
  // static arguments NaN and Infinity are different programs
  const g = mg.jit((x: Tensor, c: number) => mg.add(x, c), { staticArgnums: [1] });
  const [a, b] = [await g(x, NaN).toFloat64(), await g(x, Infinity).toFloat64()];
  if (!Number.isNaN(a[0]) || b[0] !== Infinity) {
    throw new Error(`static NaN/∞ shared a program: ${a}, ${b}`);
  }
  // WGSL: a constant expression that evaluates to NaN or ±∞ is a shader-creation error (Tint)
  for (const code of runtime.kernelSources()) {
    for (const m of code.matchAll(/bitcast<f32>\(\s*(0x[0-9a-fA-F]+|\d+)u\s*\)/g)) {
      const bits = Number(m[1]);
      if ((bits & 0x7f800000) === 0x7f800000) {
        throw new Error(`a kernel folds a non-finite constant: ${m[0]}\n${code.slice(0, 400)}`);
      }
    }
  }
});
