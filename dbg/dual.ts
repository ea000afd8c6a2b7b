import * as mg from "../mod.ts";
await mg.init();
for (const K of [1000, 70000]) {
  const u = (s: number, sh: number[]) =>
    mg.random.uniform(mg.random.key(s), sh, { minval: -1, maxval: 1 });
  const a = u(1, [8, K]),
    b = u(2, [K, 4]),
    c = u(3, [8, 300]),
    d = u(4, [300, 4]),
    e = u(5, [8, 4]);
  const f = (a: mg.Tensor, b: mg.Tensor, c: mg.Tensor, d: mg.Tensor, e: mg.Tensor) =>
    mg.tanh(mg.add(mg.add(mg.matmul(a, b), mg.matmul(c, d)), e));
  const g = (a: mg.Tensor, b: mg.Tensor, c: mg.Tensor, d: mg.Tensor, e: mg.Tensor) =>
    mg.mul(mg.add(mg.matmul(c, d), mg.matmul(a, b)), e);
  for (const h of [f, g]) {
    const x = await h(a, b, c, d, e).toFloat64(), y = await mg.jit(h)(a, b, c, d, e).toFloat64();
    const ar = await a.toFloat64(),
      br = await b.toFloat64(),
      cr = await c.toFloat64(),
      dr = await d.toFloat64(),
      er = await e.toFloat64();
    let w = 0, wj = 0;
    for (let i = 0; i < 8; i++) {
      for (let j = 0; j < 4; j++) {
        let s1 = 0, s2 = 0;
        for (let q = 0; q < K; q++) s1 += ar[i * K + q] * br[q * 4 + j];
        for (let q = 0; q < 300; q++) s2 += cr[i * 300 + q] * dr[q * 4 + j];
        const r = h === f ? Math.tanh(s1 + s2 + er[i * 4 + j]) : (s1 + s2) * er[i * 4 + j];
        w = Math.max(w, Math.abs(r - x[i * 4 + j]));
        wj = Math.max(wj, Math.abs(r - y[i * 4 + j]));
      }
    }
    console.log(
      K,
      h === f ? "tanh(AB+CD+e)" : "(CD+AB)*e",
      "eager",
      w.toExponential(2),
      "jit",
      wj.toExponential(2),
      mg.jit(h).lower(a, b, c, d, e).plan.split("\n").length,
      "kernels",
    );
  }
}
