import * as mg from "../mod.ts";
await mg.init();
const K = Number(Deno.args[0]);
const x = mg.random.normal(mg.random.key(1), [16, K]),
  y = mg.random.normal(mg.random.key(2), [K, 2]),
  c = mg.random.normal(mg.random.key(3), [16, 2]);
const f = (x: mg.Tensor, y: mg.Tensor, c: mg.Tensor) => mg.add(mg.matmul(x, y), c);
const a = await f(x, y, c).toFloat64(), b = await mg.jit(f)(x, y, c).toFloat64();
let w = 0;
for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs(a[i] - b[i]));
console.log(K, "maxdiff", w.toExponential(2));
console.log(mg.jit(f).lower(x, y, c).plan);
const g = (x: mg.Tensor, y: mg.Tensor) => mg.matmul(x, y);
const a2 = await g(x, y).toFloat64(), b2 = await mg.jit(g)(x, y).toFloat64();
w = 0;
for (let i = 0; i < a2.length; i++) w = Math.max(w, Math.abs(a2[i] - b2[i]));
console.log(K, "plain matmul maxdiff", w.toExponential(2));
const xr = await x.toFloat64(), yr = await y.toFloat64();
const ref = new Float64Array(32);
for (let i = 0; i < 16; i++) {
  for (let j = 0; j < 2; j++) {
    let s = 0;
    for (let q = 0; q < K; q++) s += xr[i * K + q] * yr[q * 2 + j];
    ref[i * 2 + j] = s;
  }
}
let we = 0, wj = 0;
for (let i = 0; i < 32; i++) {
  we = Math.max(we, Math.abs(a2[i] - ref[i]));
  wj = Math.max(wj, Math.abs(b2[i] - ref[i]));
}
console.log("eager vs f64", we.toExponential(2), "jit vs f64", wj.toExponential(2));
