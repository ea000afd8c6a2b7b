/** Kernel source helpers: pruning functions a kernel never reaches. */
import assert from "node:assert/strict";
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
