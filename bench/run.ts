/**
 * `deno task bench`: run the core benchmarks on the default adapter, print a table and write
 * a JSON record to bench/results/<date>.json (or the path given with --out).
 */
import { parseCommandLine } from "../core/command_line.ts";
import * as mg from "../mod.ts";
import { benchMaml } from "./maml_step.ts";
import {
  calibrationMs,
  conv4Step,
  elementwiseAddGBs,
  type Figure,
  matmulGflops,
  readbackMs,
  tinyOpChain,
  tinyOpChainJit,
} from "./measure.ts";

export interface BenchRecord {
  date: string;
  adapter: string;
  backendHint: string;
  deno: string;
  calibrationMs: number;
  figures: Array<Figure & { perCalibration: number }>;
  notes: Record<string, number>;
}

const USAGE = `usage: deno task bench [--out file.json] [--quick] [--conv4]

  --out    where to write the JSON record (default bench/results/<date>.json)
  --quick  fewer sizes and steps
  --conv4  add the Conv-4 few-shot training step`;

const { values } = parseCommandLine(USAGE, {
  options: { out: { type: "string" }, quick: { type: "boolean" }, conv4: { type: "boolean" } },
});
const info = await mg.init();
console.log(
  `adapter: ${info.description} (${
    info.backendHint || "default backend"
  }), deno ${Deno.version.deno}`,
);

const calibration = await calibrationMs();
const figures: Figure[] = [];
const notes: Record<string, number> = {};
figures.push(await elementwiseAddGBs());
for (const n of values.quick ? [256] : [256, 512, 1024]) {
  const { figure, firstCallMs } = await matmulGflops(n);
  figures.push(figure);
  notes[`matmul ${n} first call ms`] = Math.round(firstCallMs);
}
const chain = await tinyOpChain();
figures.push(chain.figure);
const unfused = await tinyOpChain({ fused: false });
figures.push(unfused.figure);
figures.push(await tinyOpChainJit());
notes["dispatches per chain of 100 adds"] = chain.dispatches;
notes["dispatches per chain of 100 adds, unfused"] = unfused.dispatches;
figures.push(await readbackMs());
if (values.conv4) {
  // ~7 GFLOP per step through direct convolution kernels: tens of seconds on llvmpipe
  const conv = await conv4Step();
  figures.push(conv.figure);
  notes["Conv-4 first call ms"] = Math.round(conv.firstCallMs);
}
for (const inner of values.quick ? [1] : [1, 5]) {
  for (const mode of ["eager loop", "vmap+jit"] as const) {
    const m = await benchMaml(mode, {
      innerSteps: inner,
      firstOrder: false,
      steps: mode === "eager loop" ? 3 : 60, // as in maml_step.ts
    });
    figures.push({
      name: `MAML2 sinusoid ${mode}, ${inner} inner step(s)`,
      value: m.stepsPerSecReading,
      unit: "meta-steps/s",
      higherIsBetter: true,
    });
    notes[`MAML2 ${mode} ${inner} inner: peak live bytes`] = m.peakBytes;
    notes[`MAML2 ${mode} ${inner} inner: dispatches per meta-step`] = Math.round(
      m.dispatchesPerStep,
    );
    notes[`MAML2 ${mode} ${inner} inner: first call ms`] = Math.round(m.firstCallMs);
  }
}
await mg.sync();
const stats = mg.runtimeStats();
notes["dispatches issued (whole run)"] = stats.dispatches;
notes["pipelines compiled"] = stats.pipelinesCompiled;

// Normalise: throughput × calibration time, or latency ÷ calibration time — both are then
// in "per unit of this machine's current CPU speed", comparable across noisy runs.
const record: BenchRecord = {
  date: new Date().toISOString(),
  adapter: info.description,
  backendHint: info.backendHint,
  deno: Deno.version.deno,
  calibrationMs: calibration,
  figures: figures.map((f) => ({
    ...f,
    perCalibration: f.higherIsBetter ? f.value * calibration : f.value / calibration,
  })),
  notes,
};

console.log(`calibration: ${calibration.toFixed(1)} ms`);
console.log("| benchmark | value | unit |\n|---|---:|---|");
for (const f of figures) console.log(`| ${f.name} | ${f.value.toPrecision(4)} | ${f.unit} |`);
for (const [k, v] of Object.entries(notes)) console.log(`| ${k} | ${v} | |`);

const out = values.out ?? `bench/results/${record.date.slice(0, 19).replaceAll(":", "-")}.json`;
await Deno.mkdir(out.split("/").slice(0, -1).join("/") || ".", { recursive: true });
await Deno.writeTextFile(out, JSON.stringify(record, null, 2) + "\n");
console.log(`record written to ${out}`);
