/**
 * `deno bench -A bench/`: op latencies through Deno's own bench runner (each iteration
 * includes the submit-and-wait, so these are end-to-end latencies; bench/run.ts measures
 * throughput with many ops per submission).
 */
import * as mg from "../mod.ts";

await mg.init();
const x1m = mg.ones([1 << 20]);
const m256a = mg.random.normal(mg.random.key(1), [256, 256]);
const m256b = mg.random.normal(mg.random.key(2), [256, 256]);
const small = mg.ones([64]);
await mg.sync(); // stored, so the ops below load them

// Results are kept until the sync: an eager elementwise op disposed unread is never computed.
Deno.bench("add 1M f32 + sync", { group: "elementwise" }, async () => {
  const y = mg.add(x1m, x1m);
  await mg.sync();
  y.dispose();
});

Deno.bench("sum 1M f32 + sync", { group: "reduce" }, async () => {
  mg.sum(x1m).dispose();
  await mg.sync();
});

Deno.bench("matmul 256³ + sync", { group: "matmul" }, async () => {
  mg.matmul(m256a, m256b).dispose();
  await mg.sync();
});

Deno.bench("100 tiny adds + sync", { group: "dispatch" }, async () => {
  const y = mg.tidy(() => {
    let y = small;
    for (let i = 0; i < 100; i++) y = mg.add(y, small);
    return y;
  });
  await mg.sync();
  y.dispose();
});
