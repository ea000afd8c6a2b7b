/**
 * metagrad's command line (`deno run -A cli.ts --help` prints the usage below).
 */
import { choiceOption, numberOption, parseCommandLine } from "./core/command_line.ts";
import * as mg from "./mod.ts";
import { maml, type MamlState, metaTrain } from "./algorithms/mod.ts";
import { sampleSinusoid } from "./envs/mod.ts";

const USAGE = `usage: deno run -A cli.ts [command] [--steps N]

  demo [--steps 2000]  meta-train MAML on sinusoid regression (the default command)
  kernels              matmul and softmax on the adapter against the reference backend
  info                 print the adapter and its limits`;

/**
 * MAML on sinusoid regression (Finn et al. 2017: 1-40-40-1 MLP, K = 10, α = 0.01, one inner
 * step, meta-batch 25, Adam 1e-3): a progress line while meta-training, then the query MSE
 * after 1 and 10 adaptation steps on 100 new tasks, from a random initialisation (training
 * from scratch) and from the meta-learned one.
 */
async function demo(steps: number): Promise<void> {
  const info = await mg.init();
  console.log(`adapter: ${info.description}${info.isFallbackAdapter ? " (software)" : ""}`);
  const learner = maml({ model: mg.nn.sinusoidMlp(), loss: "mse", innerLr: 0.01 });
  // stratified: 100 independent tasks' amplitudes would move every score by up to ±20%
  const test = sampleSinusoid(mg.random.key(2024), { tasks: 100, shots: 10, stratified: true });
  const score = async (s: MamlState) => {
    const [k1, k10] = [
      (await learner.evaluate(s, test, 1)).loss,
      (await learner.evaluate(s, test, 10)).loss,
    ];
    return `after 1 step ${k1.mean.toFixed(3)} ± ${k1.ci95.toFixed(3)}, after 10 steps ${
      k10.mean.toFixed(3)
    } ± ${k10.ci95.toFixed(3)}`;
  };
  let state = learner.init(mg.random.key(0));
  const scratch = await score(state);
  const tty = Deno.stdout.isTerminal();
  state = await metaTrain(
    learner.metaStep,
    state,
    (k) => sampleSinusoid(k, { tasks: 25, shots: 10 }),
    {
      steps,
      key: mg.random.key(1),
      onProgress(p) {
        const line = `step ${p.step}/${steps}  query loss ${p.loss.toFixed(3)}  ${
          p.stepsPerSecond.toFixed(1)
        } steps/s  ETA ${p.etaSeconds.toFixed(0)} s`;
        if (tty) Deno.stdout.writeSync(new TextEncoder().encode(`\r${line}   `));
        else if (p.step % 500 === 0 || p.step === steps) console.log(line);
      },
    },
  );
  if (tty) console.log();
  console.log(`query MSE on 100 new tasks (mean ± 95% CI):`);
  console.log(`  from scratch (random init): ${scratch}`);
  console.log(`  MAML init (${steps} steps):   ${await score(state)}`);
}

async function kernels(): Promise<void> {
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
  const { positionals, values } = parseCommandLine(USAGE, {
    allowPositionals: true,
    options: { steps: { type: "string", default: "2000" } },
  });
  const cmd = choiceOption(
    "the command",
    positionals[0] ?? "demo",
    ["demo", "kernels", "info"],
    USAGE,
  );
  const steps = numberOption("--steps", values.steps, USAGE, { integer: true, min: 1 });
  if (cmd === "demo") await demo(steps);
  else if (cmd === "kernels") await kernels();
  else await printInfo();
}
