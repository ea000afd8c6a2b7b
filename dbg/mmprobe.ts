import * as mg from "../mod.ts";
await mg.init();
const probe = async (m: number, k: number, n: number) => {
  const x = mg.random.uniform(mg.random.key(1), [m, k], { minval: -1, maxval: 1 }),
    y = mg.random.uniform(mg.random.key(2), [k, n], { minval: -1, maxval: 1 });
  const got = await mg.matmul(x, y).toFloat64();
  const xr = await x.toFloat64(), yr = await y.toFloat64();
  let w = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let q = 0; q < k; q++) s += xr[i * k + q] * yr[q * n + j];
      w = Math.max(w, Math.abs(s - got[i * n + j]));
    }
  }
  console.log(`${m}x${k}x${n}`, w.toExponential(2));
};
for (const [m, k, n] of JSON.parse(Deno.args[0])) await probe(m, k, n);
