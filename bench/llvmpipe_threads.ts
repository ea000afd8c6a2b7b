/**
 * llvmpipe's thread pool against its inline mode (`LP_NUM_THREADS=0`): each setting runs in a
 * child process (Mesa reads the variable when the adapter is created), alternating, and the
 * table shows the dispatch-bound and compute-bound figures side by side. Software adapters
 * only; on a GPU the variable does nothing.
 */
import { numberOption, parseCommandLine } from "../core/command_line.ts";
import * as mg from "../mod.ts";
import { benchMaml } from "./maml_step.ts";
import { elementwiseAddGBs, matmulGflops, tinyOpChain } from "./measure.ts";

type Figures = Record<string, string>;

/** µs per dispatch of 100 dependent one-workgroup adds in raw WebGPU (no metagrad). */
async function rawDispatchUs(): Promise<number> {
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new Error("llvmpipe_threads: no WebGPU adapter");
  const dev = await adapter.requestDevice();
  const code = `@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read_write> b: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  b[g.x] = a[g.x] + 1.0;
}`;
  const pipe = dev.createComputePipeline({
    layout: "auto",
    compute: { module: dev.createShaderModule({ code }), entryPoint: "main" },
  });
  const bufs = Array.from(
    { length: 101 },
    () => dev.createBuffer({ size: 256, usage: GPUBufferUsage.STORAGE }),
  );
  const groups = bufs.slice(1).map((out, i) =>
    dev.createBindGroup({
      layout: pipe.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: bufs[i] } }, {
        binding: 1,
        resource: { buffer: out },
      }],
    })
  );
  const rounds = 20;
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) {
    const enc = dev.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipe);
    for (const g of groups) {
      pass.setBindGroup(0, g);
      pass.dispatchWorkgroups(1);
    }
    pass.end();
    dev.queue.submit([enc.finish()]);
  }
  await dev.queue.onSubmittedWorkDone();
  const us = (performance.now() - t0) * 1000 / (rounds * groups.length);
  dev.destroy();
  return us;
}

async function child(): Promise<Figures> {
  await mg.init();
  const f: Figures = {};
  f["tiny op, eager chain of 100, unfused (µs/op)"] = (await tinyOpChain({ fused: false })).figure
    .value.toFixed(1);
  f["raw WebGPU, 100 dependent tiny dispatches (µs each)"] = (await rawDispatchUs()).toFixed(1);
  f["matmul 1024³ (GFLOP/s)"] = (await matmulGflops(1024)).figure.value.toFixed(2);
  f["elementwise add 16M (GB/s)"] = (await elementwiseAddGBs()).value.toFixed(2);
  for (const [inner, firstOrder] of [[1, false], [1, true], [5, false]] as const) {
    const m = await benchMaml("vmap+jit", { innerSteps: inner, firstOrder, steps: 20 });
    f[`MAML ${firstOrder ? "1st" : "2nd"} order, ${inner} inner, vmap+jit: reading / piped`] = `${
      m.stepsPerSecReading.toFixed(1)
    } / ${m.stepsPerSecPipelined.toFixed(1)}`;
  }
  return f;
}

if (import.meta.main) {
  const usage = `usage: deno run -A bench/llvmpipe_threads.ts [--rounds 2]

  --rounds  how many times each setting runs, alternating (--child is internal)`;
  const { values } = parseCommandLine(usage, {
    options: { child: { type: "boolean" }, rounds: { type: "string", default: "2" } },
  });
  const rounds = numberOption("--rounds", values.rounds, usage, { integer: true, min: 1 });
  if (values.child) {
    console.log(JSON.stringify(await child()));
    Deno.exit(0);
  }
  const info = await mg.init();
  if (!info.isFallbackAdapter) {
    console.log(`${info.description} is not a software adapter; LP_NUM_THREADS does nothing`);
    Deno.exit(0);
  }
  const settings: { name: string; threads: string | null }[] = [
    { name: "default threads", threads: null },
    { name: "LP_NUM_THREADS=0", threads: "0" },
  ];
  const results: Figures[][] = settings.map(() => []);
  for (let r = 0; r < rounds; r++) {
    for (const [i, s] of settings.entries()) {
      const env: Record<string, string> = Deno.env.toObject();
      if (s.threads === null) delete env.LP_NUM_THREADS;
      else env.LP_NUM_THREADS = s.threads;
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", import.meta.filename!, "--child"],
        env,
        clearEnv: true,
        stderr: "inherit",
      }).output();
      if (!out.success) throw new Error(`child run with ${s.name} failed`);
      const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
      results[i].push(JSON.parse(lines[lines.length - 1]));
      console.log(`round ${r + 1}, ${s.name}: ${lines[lines.length - 1]}`);
    }
  }
  console.log(`\nadapter: ${info.description}; each cell: one value per round\n`);
  console.log(`| figure | ${settings.map((s) => s.name).join(" | ")} |`);
  console.log(`|---|${settings.map(() => "---:").join("|")}|`);
  for (const key of Object.keys(results[0][0])) {
    console.log(
      `| ${key} | ${results.map((runs) => runs.map((f) => f[key]).join(", ")).join(" | ")} |`,
    );
  }
}
