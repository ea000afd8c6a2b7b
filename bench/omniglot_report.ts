/**
 * Omniglot acceptance report (issue #6): the characters are split 80/20 into training and
 * held-out classes (seeded), a learner is meta-trained on episodes of the training classes
 * with 90° rotations as extra classes, and scored by 5-way 1-shot accuracy on episodes of the
 * held-out characters, mean ± 95% CI. Progress is checkpointed atomically every `--every`
 * episodes; rerunning the same command resumes from the checkpoint. Run by hand (`--help` for
 * the options); results go to README and bench/RESULTS.md.
 */
import {
  choiceOption,
  exitWithUsage,
  numberOption,
  parseCommandLine,
} from "../core/command_line.ts";
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import {
  LEARNED_LRS,
  maml,
  mergeSummaries,
  type MetaMetrics,
  protoNet,
  type Summary,
  type TaskBatch,
} from "../algorithms/mod.ts";
import { loadOmniglot, sampleEpisodes, splitClasses } from "../envs/mod.ts";

const USAGE = `usage:
  deno run -A bench/omniglot_report.ts --algo protonet [--episodes 600] [--train-ways 20]
    [--train-queries 3] [--test-tasks 400] [--data $OMNIGLOT_DIR] [--checkpoint f] [--out f]
  deno run -A bench/omniglot_report.ts --algo maml [--episodes 2000] [--meta-batch 8]
    [--inner-steps 1] [--inner-lr 0.4] [--first-order] [--test-steps 10] [--meta-lr 1e-3]
    [--meta-lr-drops 2000:1e-3,4000:3e-4] [--learned-lr ${LEARNED_LRS.join("|")}]
    [--init-params run.safetensors]

  --meta-lr-drops  meta-step:rate pairs; the rate holds from that meta-step on
  --init-params    start from another run's meta-learned θ and batch-norm state (rates and
                   optimiser start fresh)
  --every          episodes between atomic checkpoints (default 50); rerun to resume`;

const { values } = parseCommandLine(USAGE, {
  options: {
    algo: { type: "string", default: "protonet" },
    data: { type: "string" },
    episodes: { type: "string" },
    "train-ways": { type: "string" },
    "train-queries": { type: "string" },
    "meta-batch": { type: "string", default: "8" },
    "inner-steps": { type: "string", default: "1" },
    "inner-lr": { type: "string", default: "0.4" },
    "first-order": { type: "boolean", default: false },
    "test-steps": { type: "string" },
    "meta-lr": { type: "string", default: "1e-3" },
    "meta-lr-drops": { type: "string" },
    "learned-lr": { type: "string", default: "none" },
    "init-params": { type: "string" },
    "test-tasks": { type: "string", default: "400" },
    "test-queries": { type: "string", default: "5" },
    every: { type: "string", default: "50" },
    checkpoint: { type: "string" },
    out: { type: "string" },
  },
});
const algo = choiceOption("--algo", values.algo, ["protonet", "maml"], USAGE);
const dataDir = values.data ?? Deno.env.get("OMNIGLOT_DIR");
if (!dataDir) {
  exitWithUsage("pass --data <folder with the Omniglot zips> or set OMNIGLOT_DIR", USAGE);
}
const isProto = algo === "protonet";
/** A positive integer option, with the algorithm's default when the option is absent. */
const count = (name: keyof typeof values, fallback: number) => {
  const text = values[name];
  return numberOption(`--${name}`, typeof text === "string" ? text : String(fallback), USAGE, {
    integer: true,
    min: 1,
  });
};
const episodes = count("episodes", isProto ? 600 : 2000);
const trainWays = count("train-ways", isProto ? 20 : 5);
const trainQueries = count("train-queries", isProto ? 3 : 5);
const metaBatch = isProto ? 1 : count("meta-batch", 8);
const testTasks = count("test-tasks", 400);
const testQueries = count("test-queries", 5);
const every = count("every", 50);
const innerSteps = count("inner-steps", 1);
const testSteps = count("test-steps", 10);
const innerLr = numberOption("--inner-lr", values["inner-lr"], USAGE, { min: 0 });
const metaLr = numberOption("--meta-lr", values["meta-lr"], USAGE, { min: 0 });
const learnedLr = choiceOption("--learned-lr", values["learned-lr"], LEARNED_LRS, USAGE);
const checkpointPath = values.checkpoint ?? `omniglot_${algo}.safetensors`;

const info = await mg.init();
const t0 = performance.now();
const data = await loadOmniglot(dataDir);
const { train, test } = splitClasses(mg.random.key(2024), data.images, 0.8);
console.log(
  `${data.classes.length} characters (${data.cached ? "cached" : "decoded"} in ${
    ((performance.now() - t0) / 1000).toFixed(1)
  } s): ${train.shape[0]} training, ${test.shape[0]} held out; adapter ${info.description}`,
);

const embedding = mg.nn.conv4({ inChannels: 1, imageSize: 28 });
type State = { params: unknown };
let learner: {
  init: (k: Tensor) => State;
  metaStep: (s: State, b: TaskBatch) => [State, MetaMetrics];
};
let evaluate: (s: State, b: TaskBatch) => Promise<{ accuracy?: Summary }>;
let config: Record<string, unknown>;
if (isProto) {
  const trainer = protoNet({ embedding, ways: trainWays });
  const tester = protoNet({ embedding, ways: 5 });
  learner = trainer as unknown as typeof learner;
  evaluate = (s, b) => tester.evaluate(s as any, b);
  config = { trainWays, shots: 1, trainQueries, optimizer: "Adam 1e-3" };
} else {
  const model = mg.nn.conv4({ inChannels: 1, imageSize: 28, ways: 5 });
  const drops = (values["meta-lr-drops"] ?? "").split(",").filter((d) => d).map((d) => {
    const [at, rate] = d.split(":").map(Number);
    if (!Number.isInteger(at) || !(rate > 0)) {
      exitWithUsage(
        `--meta-lr-drops takes meta-step:rate pairs such as 2000:1e-3, got ${d}`,
        USAGE,
      );
    }
    return { at, rate };
  });
  const m = maml({
    model,
    loss: "crossEntropy",
    innerSteps,
    innerLr,
    firstOrder: values["first-order"],
    learnedLr,
    // the schedule reads Adam's step count, which the checkpoint keeps across resumes
    metaOptimizer: mg.optim.adam(
      drops.length === 0 ? metaLr : mg.optim.schedules.piecewiseConstant(
        [metaLr, ...drops.map((d) => d.rate)],
        drops.map((d) => d.at),
      ),
    ),
  });
  learner = m as unknown as typeof learner;
  // Finn et al. meta-train Omniglot with 1 inner step and test with 10 (cbfinn/maml main.py)
  evaluate = (s, b) => m.evaluate(s as any, b, testSteps);
  config = {
    ways: 5,
    shots: 1,
    trainQueries,
    metaBatch,
    innerSteps,
    innerLr,
    testSteps,
    firstOrder: values["first-order"],
    learnedLr: values["learned-lr"],
    initParams: values["init-params"],
    metaOptimizer: `Adam ${values["meta-lr"]}${
      drops.map((d) => `, ${d.rate} from meta-step ${d.at}`).join("")
    }`,
  };
}

// resume from the checkpoint when one exists (written atomically, so never half a file)
let state = learner.init(mg.random.key(0));
let done = 0;
let trainSeconds = 0;
// a warm start's source run: its meta-steps and training time, kept for the report
let prior = { episodes: 0, seconds: 0 };
try {
  const { tree } = await mg.loadCheckpoint(checkpointPath);
  state = tree.state;
  done = tree.episode;
  trainSeconds = tree.seconds;
  prior = tree.prior ?? prior;
  console.log(`resuming from ${checkpointPath} at episode ${done}`);
} catch (e) {
  if (!(e as Error).message.includes("cannot read")) throw e;
  if (values["init-params"]) {
    // a warm start: θ and batch-norm state from another run; the rates and the optimiser (whose
    // zero moments fit θ's shapes, and whose step count the schedule reads) start fresh
    const { tree } = await mg.loadCheckpoint(values["init-params"]);
    const from = tree.state as { params: unknown; modelState: unknown };
    const fresh = state as { params: unknown; modelState: unknown };
    mg.tree.map((t: Tensor) => t.dispose(), [fresh.params, fresh.modelState]);
    state = { ...fresh, params: from.params, modelState: from.modelState } as State;
    prior = { episodes: tree.episode, seconds: tree.seconds };
    console.log(`starting from θ of ${values["init-params"]} (episode ${tree.episode})`);
  }
}

// a warm start draws other episodes than the run it starts from
const trainKey = values["init-params"] ? mg.random.foldIn(mg.random.key(7), 1) : mg.random.key(7);
let window: Tensor[] = [];
let windowStart = performance.now();
while (done < episodes) {
  const batch = mg.tidy(() =>
    sampleEpisodes(mg.random.foldIn(trainKey, done), train, {
      tasks: metaBatch,
      ways: trainWays,
      shots: 1,
      queries: trainQueries,
      rotations: true,
    })
  );
  const [next, metrics] = learner.metaStep(state, batch as unknown as TaskBatch);
  mg.tree.map((t: Tensor) => t.dispose(), batch);
  state = next;
  if (metrics.accuracy) metrics.loss.dispose();
  window.push(metrics.accuracy ?? metrics.loss);
  done++;
  if (done % every === 0 || done === episodes) {
    const accs = await Promise.all(window.map((t) => t.item()));
    window.forEach((t) => t.dispose());
    window = [];
    const seconds = (performance.now() - windowStart) / 1000;
    const perEpisode = seconds / accs.length;
    trainSeconds += seconds;
    console.log(
      `episode ${done}/${episodes}: training accuracy ${
        (100 * accs.reduce((a, b) => a + b, 0) / accs.length).toFixed(1)
      }% ${perEpisode.toFixed(2)} s/episode, ETA ${
        ((episodes - done) * perEpisode / 60).toFixed(0)
      } min`,
    );
    await mg.saveCheckpoint(checkpointPath, { state, episode: done, seconds: trainSeconds, prior });
    windowStart = performance.now();
  }
}

// 5-way 1-shot on the held-out characters, in chunks so activations stay small
const evalStart = performance.now();
const CHUNK = 20;
const parts: Summary[] = [];
for (let start = 0; start < testTasks; start += CHUNK) {
  const tasks = Math.min(CHUNK, testTasks - start);
  const batch = sampleEpisodes(mg.random.foldIn(mg.random.key(99), start), test, {
    tasks,
    ways: 5,
    shots: 1,
    queries: testQueries,
  });
  parts.push((await evaluate(state, batch as unknown as TaskBatch)).accuracy!);
  mg.tree.map((t: Tensor) => t.dispose(), batch);
}
const accuracy = mergeSummaries(parts);
const evalSeconds = (performance.now() - evalStart) / 1000;
const line =
  `${algo}: 5-way 1-shot accuracy on ${test.shape[0]} held-out characters: ${
    (100 * accuracy.mean).toFixed(2)
  } ± ${(100 * accuracy.ci95).toFixed(2)}% over ${accuracy.n} episodes (${testQueries} queries ` +
  `per class); ${episodes} training episodes in ${(trainSeconds / 60).toFixed(1)} min${
    prior.episodes
      ? ` (after ${prior.episodes} in ${(prior.seconds / 60).toFixed(1)} min in its θ's run)`
      : ""
  }, ` +
  `evaluation ${evalSeconds.toFixed(0)} s, adapter ${info.description}`;
console.log(line);
if (values.out) {
  await Deno.writeTextFile(
    values.out,
    JSON.stringify(
      {
        algo,
        adapter: info.description,
        config,
        episodes,
        trainSeconds,
        prior,
        evalSeconds,
        accuracy,
      },
      null,
      2,
    ),
  );
}
