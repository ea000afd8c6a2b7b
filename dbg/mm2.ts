import * as mg from "../mod.ts";
await mg.init();
const [m, k, n] = JSON.parse(Deno.args[0]);
const x = mg.random.uniform(mg.random.key(1), [m, k], { minval: -1, maxval: 1 }),
  y = mg.random.uniform(mg.random.key(2), [k, n], { minval: -1, maxval: 1 });
const mm = await mg.matmul(x, y).toFloat64();
const viaSum = await mg.sum(mg.mul(mg.reshape(x, [m, k, 1]), mg.reshape(y, [1, k, n])), 1)
  .toFloat64();
const xr = await x.toFloat64();
const rowSumDevice = await mg.sum(x, 1).toFloat64();
const rowSumHost = Array.from(
  { length: m },
  (_, i) => xr.slice(i * k, (i + 1) * k).reduce((a, b) => a + b, 0),
);
console.log("matmul", Array.from(mm).slice(0, 4), "\nviaSum", Array.from(viaSum).slice(0, 4));
console.log("rowsum device", Array.from(rowSumDevice).slice(0, 2), "host", rowSumHost.slice(0, 2));
const ref = mg.setBackend("reference");
