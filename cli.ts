/**
 * metagrad's command line (`deno run -A cli.ts --help` prints the usage below).
 */
import { choiceOption, numberOption, parseCommandLine } from "./core/command_line.ts";
import * as mg from "./mod.ts";
import {
  LEARNED_LRS,
  loadRun,
  maml,
  type MamlState,
  metaTrain,
  resumeRun,
  runSteps,
  startRun,
  type Summary,
  TRAIN_OPTIMIZERS,
  TRAIN_SCHEDULES,
  TRAIN_TASKS,
  type TrainConfig,
  trainDefaults,
  trainJob,
  writeSummary,
} from "./algorithms/mod.ts";
import { sampleSinusoid } from "./envs/mod.ts";

const USAGE = `usage: deno run -A cli.ts [command] [options]

  demo [--steps 2000] [--svg demo-adaptation.svg]
                       meta-train MAML on sinusoid regression (the default command); writes
                       its adaptation curves (query MSE against inner steps) as an SVG
  train ALGORITHM --task TASK --out DIR [options]
                       a run of one learner on one task, into DIR (config.json,
                       metrics.jsonl, checkpoint.safetensors — atomic, every
                       --checkpoint-every steps and on Ctrl-C — and summary.json):
        maml | metasgd | anil   sinusoid, omniglot      --steps meta-steps
        reptile                 sinusoid                --steps meta-steps
        protonet | matching     omniglot                --steps episodes
        ppo | a2c               cartpole                --steps environment steps
        trpo                    navigation, cartpole    --steps updates
        sac                     pendulum                --steps environment steps
        rl2                     bandit (k = 5, n = 10)  --steps updates
        mamlrl                  navigation, point-robot --steps meta-steps
        pearl                   point-robot(-sparse)    --steps iterations
      --steps 2000 --seed 0 --log-every 100 --checkpoint-every 500 --eval-every 500
      --lr (Adam's for meta-learners, 1e-3; Reptile's ε, 0.1; the RL learners' own)
      meta-learners: --meta-batch --shots --queries --inner-steps --inner-lr
      --test-steps --first-order --eval-tasks 100 --learned-lr none|perStep|perLayer|
      perStepPerLayer|perParameter (maml, anil) --optimizer adam|sgd --schedule
      constant|linear|cosine (meta- and metric learners; Reptile: sgd, linear)
        sinusoid: --meta-batch 25 --shots 10 --queries 10 --inner-steps 1 (Reptile 5)
          --inner-lr 0.01 (Reptile 0.02), test steps = inner steps
        omniglot: --data DIR (the Omniglot zips or folders; default $OMNIGLOT_DIR)
          --ways 5 --shots 1 --queries 5 --meta-batch 8 --inner-lr 0.4
          --test-steps 10; protonet and matching: --meta-batch 1 --train-ways 20
        mamlrl: --meta-batch 20 tasks × --shots 20 trajectories, --inner-lr 0.1
  train --resume DIR [--steps N]
                       continue DIR's run from its checkpoint (to N steps in all); the
                       result is bit-identical to an uninterrupted run of that length
                       (for PPO, A2C and Reptile, whose rates anneal over the run's
                       length, only when N is the length the run began with)
  eval DIR [--tasks 100] [--inner 0,1,2,5,10] [--svg FILE]
                       score DIR's checkpoint on held-out tasks after each number of inner
                       steps, beside a random initialisation; --svg draws the curves
  plot RUN... [--out curves.svg] [--x step] [--y loss] [--log-y] [--title T]
                       learning curves of runs on one SVG chart; a RUN is a metrics.jsonl file
                       (one JSON object per line) or a directory holding one
  kernels              matmul and softmax on the adapter against the reference backend
  info                 print the adapter and its limits`;

/**
 * MAML on sinusoid regression (Finn et al. 2017: 1-40-40-1 MLP, K = 10, α = 0.01, one inner
 * step, meta-batch 25, Adam 1e-3): a progress line while meta-training, then the query MSE
 * after 1 and 10 adaptation steps on 100 new tasks, from a random initialisation (training
 * from scratch) and from the meta-learned one.
 */
async function demo(steps: number, svgPath: string): Promise<void> {
  const info = await mg.init();
  console.log(`adapter: ${info.description}${info.isFallbackAdapter ? " (software)" : ""}`);
  const learner = maml({ model: mg.nn.sinusoidMlp(), loss: "mse", innerLr: 0.01 });
  // stratified: 100 independent tasks' amplitudes would move every score by up to ±20%
  const test = sampleSinusoid(mg.random.key(2024), { tasks: 100, shots: 10, stratified: true });
  // the query MSE after each of these many inner steps: the adaptation curve
  const stepsShown = [0, 1, 2, 3, 5, 10];
  const curve = async (s: MamlState) => {
    const losses = [];
    for (const k of stepsShown) losses.push((await learner.evaluate(s, test, k)).loss);
    return losses;
  };
  const text = (c: Awaited<ReturnType<typeof curve>>) => {
    const [k1, k10] = [c[stepsShown.indexOf(1)], c[stepsShown.indexOf(10)]];
    return `after 1 step ${k1.mean.toFixed(3)} ± ${k1.ci95.toFixed(3)}, after 10 steps ${
      k10.mean.toFixed(3)
    } ± ${k10.ci95.toFixed(3)}`;
  };
  let state = learner.init(mg.random.key(0));
  const scratch = await curve(state);
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
  const meta = await curve(state);
  console.log(`query MSE on 100 new tasks (mean ± 95% CI):`);
  console.log(`  from scratch (random init): ${text(scratch)}`);
  console.log(`  MAML init (${steps} steps):   ${text(meta)}`);
  const series = (name: string, c: typeof meta) => ({
    name,
    x: stepsShown,
    y: c.map((l) => l.mean),
    band: c.map((l) => l.ci95),
  });
  const svg = mg.lineChartSvg(
    [series(`MAML init (${steps} meta-steps)`, meta), series("random init", scratch)],
    {
      title: "Sinusoid regression: adaptation to 100 new tasks (10 shots)",
      xLabel: "inner gradient steps (α = 0.01)",
      yLabel: "query MSE (mean ± 95% CI)",
    },
  );
  await mg.writeFileAtomic(svgPath, new TextEncoder().encode(svg));
  console.log(`adaptation curves: ${svgPath}`);
}

/**
 * `eval`: the run's checkpoint scored on `tasks` held-out tasks (the same ones for every run:
 * fixed keys) after each number of inner steps in `inner`, beside a random initialisation
 * (training from scratch); the adaptation curves go to `svg` when given. RL runs print their
 * held-out score.
 */
async function evaluateRun(dir: string, tasks: number, inner: number[], svg?: string) {
  await mg.init();
  const cfg = (await loadRun(dir)).config as unknown as TrainConfig;
  const job = await trainJob(cfg);
  const { state, step } = await loadRun(dir, job.init);
  if (!state) throw new Error(`train: ${dir} has no checkpoint yet`);
  const name = `${cfg.algorithm} (${dir.split("/").filter(Boolean).at(-1)}, step ${step})`;
  if (!job.curves) {
    console.log(`${name} on ${cfg.task}: ${JSON.stringify(await job.evaluate(state, step))}`);
    return;
  }
  const fresh = await trainJob({ ...cfg, seed: cfg.seed + 1000 });
  const { metric, inner: xs, rows } = await job.curves(
    [{ name, state }, { name: "random init", state: fresh.init }],
    tasks,
    inner,
  );
  const percent = metric.includes("accuracy");
  const show = (s: Summary) =>
    percent
      ? `${(100 * s.mean).toFixed(2)} ± ${(100 * s.ci95).toFixed(2)}%`
      : `${s.mean.toFixed(4)} ± ${s.ci95.toFixed(4)}`;
  console.log(`${metric} on ${tasks} held-out tasks (mean ± 95% CI), by inner steps:`);
  console.log(`| initialisation | ${xs.join(" | ")} |\n| --- |${xs.map(() => " ---: |").join("")}`);
  for (const r of rows) console.log(`| ${r.name} | ${r.values.map(show).join(" | ")} |`);
  if (svg) {
    const chart = mg.lineChartSvg(
      rows.map((r) => ({
        name: r.name,
        x: xs,
        y: r.values.map((l) => l.mean),
        band: r.values.map((l) => l.ci95),
      })),
      {
        title: `Adaptation on ${tasks} held-out ${cfg.task} tasks`,
        xLabel: "inner steps",
        yLabel: `${metric} (mean ± 95% CI)`,
      },
    );
    await mg.writeFileAtomic(svg, new TextEncoder().encode(chart));
    console.log(`adaptation curves: ${svg}`);
  }
}

/**
 * `train`: a run in `dir` (`algorithms/run_dir.ts`), fresh or resumed from its checkpoint.
 * Meta-learners draw step i's tasks from `foldIn(key(seed + 1), i)` and PPO keeps its key in
 * its state, so a resumed run computes what an uninterrupted one would.
 */
async function train(dir: string, fresh: TrainConfig | null, stepsOverride?: number) {
  const info = await mg.init();
  const cfg = { ...(fresh ?? (await loadRun(dir)).config as unknown as TrainConfig) };
  if (stepsOverride !== undefined) cfg.steps = stepsOverride;
  const job = await trainJob(cfg);
  let state = job.init, from = 0;
  if (fresh) await startRun(dir, { ...cfg });
  else {
    const back = await resumeRun(dir, job.init);
    if (back.state) [state, from] = [back.state, back.step];
    if (from >= job.steps) {
      throw new Error(
        `train: ${dir} is at step ${from} of ${job.steps} already; pass a larger --steps`,
      );
    }
  }
  console.log(
    `train ${cfg.algorithm} on ${cfg.task}, ${info.description}: steps ${from + 1}…${job.steps}` +
      ` → ${dir}`,
  );
  const end = await runSteps({
    dir,
    state,
    from,
    to: job.steps,
    step: job.step,
    logEvery: cfg.logEvery,
    checkpointEvery: cfg.checkpointEvery,
    evalEvery: cfg.evalEvery,
    evaluate: job.evaluate,
  });
  if (end.interrupted) {
    console.log(
      `interrupted at step ${end.step}; checkpoint saved. Continue with: train --resume ${dir}`,
    );
    Deno.exit(130);
  }
  const final = await job.evaluate(end.state, end.step);
  await writeSummary(dir, {
    steps: end.step,
    wallSeconds: end.wallSeconds,
    ...final,
    adapter: info.description,
  });
  console.log(`done: ${JSON.stringify(final)}`);
}

/** One run's metrics: the JSON objects of a metrics.jsonl file, in order. */
async function readMetrics(
  run: string,
): Promise<{ name: string; rows: Record<string, unknown>[] }> {
  let path = run;
  try {
    if ((await Deno.stat(run)).isDirectory) path = `${run.replace(/\/+$/, "")}/metrics.jsonl`;
  } catch {
    throw new Error(`plot: no file or directory ${run}`);
  }
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch {
    throw new Error(`plot: cannot read ${path} (a run directory holds metrics.jsonl)`);
  }
  const rows = text.split("\n").flatMap((line, i) => {
    if (line.trim() === "") return [];
    try {
      const row = JSON.parse(line);
      if (typeof row !== "object" || row === null || Array.isArray(row)) throw new Error();
      return [row as Record<string, unknown>];
    } catch {
      throw new Error(`plot: ${path} line ${i + 1} is not a JSON object: ${line.slice(0, 80)}`);
    }
  });
  // a run's name: its directory's (for …/run/metrics.jsonl too), else the file's
  const parts = path.split("/").filter((p) => p !== "");
  const name = parts.at(-1) === "metrics.jsonl" && parts.length > 1
    ? parts.at(-2)!
    : parts.at(-1)!.replace(/\.jsonl$/, "");
  return { name, rows };
}

/** `plot`: the runs' `y` against `x` on one chart, written to `out`. */
async function plot(
  runs: string[],
  opts: { out: string; x: string; y: string; logY: boolean; title?: string },
): Promise<void> {
  if (runs.length === 0) throw new Error(`plot: name at least one run\n${USAGE}`);
  const series = [];
  for (const run of runs) {
    const { name, rows } = await readMetrics(run);
    const points = rows.filter((r) => opts.y in r && opts.x in r);
    if (points.length === 0) {
      const fields = [...new Set(rows.flatMap((r) => Object.keys(r)))].join(", ");
      throw new Error(
        `plot: ${run} has no rows with both "${opts.x}" and "${opts.y}" (its fields: ${fields})`,
      );
    }
    series.push({
      name,
      x: points.map((r) => Number(r[opts.x])),
      y: points.map((r) => Number(r[opts.y])),
    });
  }
  const svg = mg.lineChartSvg(series, {
    title: opts.title,
    xLabel: opts.x,
    yLabel: opts.y,
    logY: opts.logY,
  });
  await mg.writeFileAtomic(opts.out, new TextEncoder().encode(svg));
  console.log(`${series.length} run(s) plotted: ${opts.out}`);
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
    options: {
      steps: { type: "string", default: "2000" },
      svg: { type: "string", default: "demo-adaptation.svg" },
      out: { type: "string", default: "curves.svg" },
      x: { type: "string", default: "step" },
      y: { type: "string", default: "loss" },
      "log-y": { type: "boolean", default: false },
      title: { type: "string" },
      task: { type: "string", default: "sinusoid" },
      resume: { type: "string" },
      // per-task defaults (TASK_DEFAULTS) apply where these are not given
      "meta-batch": { type: "string" },
      shots: { type: "string" },
      queries: { type: "string" },
      ways: { type: "string", default: "5" },
      "train-ways": { type: "string", default: "20" },
      "inner-steps": { type: "string" },
      "test-steps": { type: "string" },
      "inner-lr": { type: "string" },
      data: { type: "string" },
      "learned-lr": { type: "string" },
      optimizer: { type: "string" },
      schedule: { type: "string" },
      "first-order": { type: "boolean", default: false },
      lr: { type: "string" },
      seed: { type: "string", default: "0" },
      "log-every": { type: "string", default: "100" },
      "checkpoint-every": { type: "string", default: "500" },
      "eval-every": { type: "string", default: "500" },
      "eval-tasks": { type: "string", default: "100" },
      tasks: { type: "string", default: "100" },
      inner: { type: "string", default: "0,1,2,5,10" },
    },
  });
  const cmd = choiceOption(
    "the command",
    positionals[0] ?? "demo",
    ["demo", "train", "eval", "plot", "kernels", "info"],
    USAGE,
  );
  const steps = numberOption("--steps", values.steps, USAGE, { integer: true, min: 1 });
  const count = (name: string, v: string) =>
    numberOption(name, v, USAGE, { integer: true, min: 1 });
  const rate = (name: string, v: string) => numberOption(name, v, USAGE, { min: 0 });
  try {
    if (cmd === "demo") await demo(steps, values.svg!);
    else if (cmd === "train" && values.resume !== undefined) {
      const given = Deno.args.some((a) => a === "--steps" || a.startsWith("--steps="));
      await train(values.resume, null, given ? steps : undefined);
    } else if (cmd === "eval") {
      if (!positionals[1]) throw new Error(`train: name the run to score: eval DIR\n${USAGE}`);
      const inner = values.inner!.split(",").map((v) =>
        numberOption("--inner", v.trim(), USAGE, { integer: true, min: 0 })
      );
      const svg = Deno.args.some((a) => a.startsWith("--svg")) ? values.svg : undefined;
      await evaluateRun(positionals[1], count("--tasks", values.tasks!), inner, svg);
    } else if (cmd === "train") {
      const algorithm = choiceOption(
        "the algorithm",
        positionals[1],
        Object.keys(TRAIN_TASKS),
        USAGE,
      );
      const given = Deno.args.some((a) => a.startsWith("--task"));
      const task = choiceOption(
        "--task",
        given ? values.task : TRAIN_TASKS[algorithm][0],
        TRAIN_TASKS[algorithm],
        USAGE,
      );
      if (values.out === undefined || !Deno.args.some((a) => a.startsWith("--out"))) {
        throw new Error(`train: name the run's directory with --out DIR\n${USAGE}`);
      }
      const d = trainDefaults(algorithm, task);
      const or = (v: string | undefined, fallback: number) => v ?? String(fallback);
      const innerSteps = count("--inner-steps", or(values["inner-steps"], d.innerSteps));
      const cfg: TrainConfig = {
        algorithm,
        task,
        steps,
        metaBatch: count("--meta-batch", or(values["meta-batch"], d.metaBatch)),
        shots: count("--shots", or(values.shots, d.shots)),
        queries: count("--queries", or(values.queries, d.queries)),
        ways: count("--ways", values.ways!),
        trainWays: count("--train-ways", values["train-ways"]!),
        innerSteps,
        testSteps: numberOption(
          "--test-steps",
          or(values["test-steps"], task === "sinusoid" ? innerSteps : d.testSteps),
          USAGE,
          { integer: true, min: 0 },
        ),
        innerLr: rate("--inner-lr", or(values["inner-lr"], d.innerLr)),
        firstOrder: values["first-order"]!,
        lr: rate("--lr", or(values.lr, d.lr)),
        seed: numberOption("--seed", values.seed, USAGE, { integer: true, min: 0 }),
        logEvery: count("--log-every", values["log-every"]),
        checkpointEvery: count("--checkpoint-every", values["checkpoint-every"]),
        evalEvery: count("--eval-every", values["eval-every"]),
        evalTasks: count("--eval-tasks", values["eval-tasks"]),
      };
      if (values.data !== undefined) cfg.data = values.data;
      if (values["learned-lr"] !== undefined) {
        if (algorithm !== "maml" && algorithm !== "anil") {
          throw new Error(`train: --learned-lr is for maml and anil (metasgd learns every rate)`);
        }
        cfg.learnedLr = choiceOption("--learned-lr", values["learned-lr"], LEARNED_LRS, USAGE);
      }
      const outer = ["maml", "metasgd", "anil", "reptile", "protonet", "matching"];
      for (
        const [flag, value, choices] of [
          ["--optimizer", values.optimizer, TRAIN_OPTIMIZERS],
          ["--schedule", values.schedule, TRAIN_SCHEDULES],
        ] as const
      ) {
        if (value === undefined) continue;
        if (!outer.includes(algorithm)) {
          throw new Error(
            `train: ${flag} is for the meta- and metric learners (${outer.join(", ")})`,
          );
        }
        const picked = choiceOption(flag, value, choices, USAGE);
        if (flag === "--optimizer") cfg.optimizer = picked as TrainConfig["optimizer"];
        else cfg.schedule = picked as TrainConfig["schedule"];
      }
      await train(values.out, cfg);
    } else if (cmd === "plot") {
      await plot(positionals.slice(1), {
        out: values.out!,
        x: values.x!,
        y: values.y!,
        logY: values["log-y"]!,
        title: values.title,
      });
    } else if (cmd === "kernels") await kernels();
    else await printInfo();
  } catch (e) {
    if (!(e instanceof Error)) throw e;
    // a usage mistake: exit 2; a run or data set that cannot be read: its message, exit 1
    if (/^(plot|train):/.test(e.message)) {
      console.error(e.message);
      Deno.exit(2);
    }
    if (/^(loadCheckpoint|loadRun|resumeRun|startRun|loadOmniglot)\b/.test(e.message)) {
      console.error(`error: ${e.message}`);
      Deno.exit(1);
    }
    throw e;
  }
}
