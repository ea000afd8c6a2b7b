/**
 * metagrad's command line.
 *
 *   deno run -A cli.ts demo      show a real computation on the default adapter
 *   deno run -A cli.ts info      print the adapter and its limits
 */
import { parseArgs } from "node:util";
import * as mg from "./mod.ts";

async function demo(): Promise<void> {
  const info = await mg.init();
  console.log(`adapter: ${info.description}${info.isFallbackAdapter ? " (software)" : ""}`);
  const k = mg.random.key(0);
  const [ka, kb] = mg.random.split(k);
  for (const n of [128, 512]) {
    const a = mg.random.normal(ka, [n, n]), b = mg.random.normal(kb, [n, n]);
    await mg.sync();
    let t0 = performance.now();
    const c = mg.matmul(a, b);
    const checksum = await mg.sum(c).item();
    const first = performance.now() - t0;
    t0 = performance.now();
    mg.matmul(a, b).dispose();
    await mg.sync();
    const ms = performance.now() - t0;
    console.log(
      `matmul ${n}×${n}: first call ${first.toFixed(0)} ms (includes shader compile), then ${
        ms.toFixed(1)
      } ms ` +
        `= ${(2 * n ** 3 / ms / 1e6).toFixed(2)} GFLOP/s; Σ = ${checksum.toFixed(3)}`,
    );
    for (const t of [a, b, c]) t.dispose();
  }
  // the reference backend computes the same thing in float64
  const x = mg.tensor([[1, 2], [3, 4]]);
  const y = mg.softmax(mg.matmul(x, x), -1);
  const ref = mg.softmax(
    mg.matmul(
      mg.tensor([[1, 2], [3, 4]], { backend: "reference" }),
      mg.tensor([[1, 2], [3, 4]], { backend: "reference" }),
    ),
    -1,
  );
  console.log("softmax(x·x) on webgpu:   ", await y.array());
  console.log("softmax(x·x) on reference:", await ref.array());
  const s = mg.runtimeStats();
  console.log(
    `dispatches ${s.dispatches}, submits ${s.submits}, readbacks ${s.readbacks}, pipelines ${s.pipelinesCompiled}`,
  );
}

async function printInfo(): Promise<void> {
  const info = await mg.init();
  console.log(JSON.stringify(info, null, 2));
}

if (import.meta.main) {
  const { positionals } = parseArgs({ args: Deno.args, allowPositionals: true });
  const cmd = positionals[0] ?? "demo";
  if (cmd === "demo") await demo();
  else if (cmd === "info") await printInfo();
  else {
    console.error(`unknown command ${JSON.stringify(cmd)}; use "demo" or "info"`);
    Deno.exit(2);
  }
}
