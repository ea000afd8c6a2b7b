/**
 * MAML meta-step on the sinusoid model, three ways: an eager per-task loop, vmap over tasks,
 * and vmap + jit. For each: meta-steps/s reading the loss every step and pipelined (one
 * read per 10 steps), first-call time (tracing + compilation), dispatches per step and peak
 * live bytes; second- and first-order; 1 and 5 inner steps; and a wide variant.
 * `--help` lists the options (`--quick`, `--cold`, `--profile`).
 *
 * First calls use Mesa's on-disk shader cache as left by earlier runs; `--cold` turns it off
 * for this process, so they include compiling every kernel that an earlier row of the same run
 * has not made (a fresh process running only the jitted step compiles all of its kernels).
 */
import { parseCommandLine } from "../core/command_line.ts";
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { type RegressionBatch, sampleSinusoid } from "../envs/sinusoid.ts";
import {
  initMlp,
  type MamlConfig,
  metaLossLoop,
  metaLossVmap,
  type Params,
} from "./maml_common.ts";

export type Mode = "eager loop" | "vmap" | "vmap+jit";

export interface MamlRow {
  mode: Mode;
  order: "second" | "first";
  innerSteps: number;
  hidden: number;
  tasks: number;
  firstCallMs: number;
  stepsPerSecReading: number;
  stepsPerSecPipelined: number;
  dispatchesPerStep: number;
  peakBytes: number;
}

type Step = (p: Params, b: RegressionBatch) => [Tensor, Params];

function makeStep(mode: Mode, c: MamlConfig): Step {
  const loss = mode === "eager loop" ? metaLossLoop : metaLossVmap;
  const vg = mg.valueAndGrad((p: Params, b: RegressionBatch) => loss(p, b, c)) as Step;
  return mode === "vmap+jit" ? (mg.jit(vg) as unknown as Step) : vg;
}

const dispose = (x: unknown) => mg.tree.map((t: Tensor) => t.dispose(), x);

export async function benchMaml(
  mode: Mode,
  opts: {
    innerSteps: number;
    firstOrder: boolean;
    hidden?: number;
    tasks?: number;
    steps?: number;
  },
): Promise<MamlRow> {
  const hidden = opts.hidden ?? 40, tasks = opts.tasks ?? 25, steps = opts.steps ?? 10;
  const c: MamlConfig = { innerSteps: opts.innerSteps, alpha: 0.01, firstOrder: opts.firstOrder };
  const params = mg.tidy(() => initMlp(mg.random.key(0), hidden));
  const batches = mg.tidy(() =>
    Array.from({ length: 2 }, (_, i) => sampleSinusoid(mg.random.key(10 + i), { tasks, shots: 10 }))
  );
  const step = makeStep(mode, c);
  await mg.sync();
  let t0 = performance.now();
  const first = step(params, batches[0]);
  await first[0].item();
  const firstCallMs = performance.now() - t0;
  dispose(first);
  // Steady state, as a long training run sees it: V8 optimises the replay code and jit learns
  // that the loss is read (measured: a jitted step's first ~30 calls run 20–40% slower).
  t0 = performance.now();
  for (let i = 0; i < steps && performance.now() - t0 < 1000; i++) {
    const out = step(params, batches[i % 2]);
    await out[0].item();
    dispose(out);
  }

  mg.resetPeakMemory();
  const base = mg.memory().liveBytes;
  const d0 = mg.runtimeStats().dispatches;
  t0 = performance.now();
  for (let i = 0; i < steps; i++) {
    const out = step(params, batches[i % 2]);
    await out[0].item();
    dispose(out);
  }
  const readingMs = (performance.now() - t0) / steps;
  const dispatchesPerStep = (mg.runtimeStats().dispatches - d0) / steps;
  const peakBytes = mg.memory().peakBytes - base;

  t0 = performance.now();
  for (let i = 0; i < steps; i++) {
    const out = step(params, batches[i % 2]);
    if (i % 10 === 9 || i === steps - 1) await out[0].item();
    dispose(out);
  }
  await mg.sync();
  const pipelinedMs = (performance.now() - t0) / steps;
  dispose([params, batches]);
  return {
    mode,
    order: opts.firstOrder ? "first" : "second",
    innerSteps: opts.innerSteps,
    hidden,
    tasks,
    firstCallMs,
    stepsPerSecReading: 1000 / readingMs,
    stepsPerSecPipelined: 1000 / pipelinedMs,
    dispatchesPerStep,
    peakBytes,
  };
}

export function formatRows(rows: MamlRow[]): string {
  const lines = [
    "| variant | mode | meta-steps/s (read every step) | meta-steps/s (pipelined) | first call | dispatches/step | peak live bytes |",
    "|---|---|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.order}-order, ${r.innerSteps} inner, ${r.hidden}-${r.hidden} hidden, ${r.tasks} tasks | ${r.mode} | ` +
        `${r.stepsPerSecReading.toFixed(2)} | ${r.stepsPerSecPipelined.toFixed(2)} | ${
          (r.firstCallMs / 1000).toFixed(2)
        } s | ` +
        `${Math.round(r.dispatchesPerStep)} | ${r.peakBytes} |`,
    );
  }
  return lines.join("\n");
}

/** GPU time per kernel of `steps` vmap+jit meta-steps (second order, 1 inner step). */
export async function profileMaml(steps = 10): Promise<string> {
  const c: MamlConfig = { innerSteps: 1, alpha: 0.01, firstOrder: false };
  const params = mg.tidy(() => initMlp(mg.random.key(0)));
  const batch = sampleSinusoid(mg.random.key(10), { tasks: 25, shots: 10 });
  const step = makeStep("vmap+jit", c);
  for (let i = 0; i < 3; i++) dispose(await settled(step(params, batch)));
  const p = await mg.profile(async () => {
    for (let i = 0; i < steps; i++) dispose(await settled(step(params, batch)));
  });
  dispose([params, batch]);
  return `${steps} meta-steps (2nd order, 1 inner step, 25 tasks, vmap+jit): ` + p.table(30);
}

async function settled<T extends [Tensor, unknown]>(out: T): Promise<T> {
  await out[0].item();
  return out;
}

if (import.meta.main) {
  const usage = `usage: deno run -A bench/maml_step.ts [--quick] [--cold] [--profile]

  --quick    second order with 1 inner step only
  --cold     turn Mesa's shader cache off, so first calls compile every kernel
  --profile  per-kernel GPU time of the second-order vmap+jit step instead`;
  const { values } = parseCommandLine(usage, {
    options: {
      quick: { type: "boolean" },
      profile: { type: "boolean" },
      cold: { type: "boolean" },
    },
  });
  // read by Mesa when the device is created, so it must be set before init()
  if (values.cold) Deno.env.set("MESA_SHADER_CACHE_DISABLE", "true");
  const info = await mg.init();
  console.log(
    `adapter: ${info.description}, deno ${Deno.version.deno}${
      values.cold ? ", shader cache off (first calls compile every kernel)" : ""
    }`,
  );
  if (values.profile) {
    console.log(await profileMaml());
    Deno.exit(0);
  }
  const rows: MamlRow[] = [];
  const modes: Mode[] = ["eager loop", "vmap", "vmap+jit"];
  const variants = values.quick ? [{ innerSteps: 1, firstOrder: false }] : [
    { innerSteps: 1, firstOrder: false },
    { innerSteps: 1, firstOrder: true },
    { innerSteps: 5, firstOrder: false },
  ];
  for (const v of variants) {
    for (const mode of modes) {
      // more steps where they are cheap: the box is shared and 10 steps swing by 20%
      const steps = mode === "eager loop" ? 3 : mode === "vmap" ? 10 : 60;
      rows.push(await benchMaml(mode, { ...v, steps }));
      console.log(formatRows(rows.slice(-1)).split("\n")[2]);
    }
  }
  if (!values.quick) {
    for (const mode of ["vmap", "vmap+jit"] as const) {
      rows.push(
        await benchMaml(mode, {
          innerSteps: 1,
          firstOrder: false,
          hidden: 256,
          tasks: 100,
          steps: 5,
        }),
      );
      console.log(formatRows(rows.slice(-1)).split("\n")[2]);
    }
  }
  console.log("\n" + formatRows(rows));
}
