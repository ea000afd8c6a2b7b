/**
 * SAC on Pendulum-v1 (issue #21's acceptance): per seed, `--explore` uniformly random steps,
 * then policy steps with one gradient step each up to `--steps` environment steps, trained in
 * jitted chunks; then the mean return of 10 evaluation episodes with the mean action. Prints
 * the curve, a table per seed and the wall time. Run by hand (`--help`).
 */
import { numberOption, parseCommandLine } from "../core/command_line.ts";
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { sac, type SacState } from "../algorithms/mod.ts";
import { pendulum, rollout } from "../envs/mod.ts";

const USAGE = `usage: deno run -A bench/sac_pendulum.ts [--steps 20000] [--seeds 0,1,2]
    [--explore 1000] [--chunk 500] [--hidden 64,64] [--batch 128]

  --steps    environment steps per seed (one gradient step per policy step)
  --explore  uniformly random steps before learning
  --chunk    environment steps per jitted call
  --hidden   hidden widths of the actor and critics
  --batch    transitions per gradient step`;

const { values } = parseCommandLine(USAGE, {
  options: {
    steps: { type: "string", default: "20000" },
    seeds: { type: "string", default: "0,1,2" },
    explore: { type: "string", default: "1000" },
    chunk: { type: "string", default: "500" },
    hidden: { type: "string", default: "64,64" },
    batch: { type: "string", default: "128" },
  },
});
const steps = numberOption("--steps", values.steps, USAGE, { min: 1, integer: true });
const explore = numberOption("--explore", values.explore, USAGE, { min: 1, integer: true });
const chunk = numberOption("--chunk", values.chunk, USAGE, { min: 1, integer: true });
const batchSize = numberOption("--batch", values.batch, USAGE, { min: 1, integer: true });
const seeds = values.seeds.split(",").map((s) =>
  numberOption("--seeds", s, USAGE, { min: 0, integer: true })
);
const hidden = values.hidden.split(",").map((h) =>
  numberOption("--hidden", h, USAGE, { min: 1, integer: true })
);

const info = await mg.init();
const env = pendulum();
console.log(
  `SAC, Pendulum-v1 on ${info.description}${info.backendHint ? ` (${info.backendHint})` : ""}: ` +
    `${steps} steps per seed (${explore} random), hidden ${hidden}, batch ${batchSize}`,
);
const rows: string[] = [];
for (const seed of seeds) {
  const learner = sac({ env, hidden, batchSize, bufferSize: Math.max(steps, 1000) });
  const exploreFn = mg.jit(learner.explore, { staticArgnums: [1], donateArgnums: [0] });
  const trainFn = mg.jit(learner.train, { staticArgnums: [1], donateArgnums: [0] });
  const tasks = env.sampleTasks(mg.random.key(0), 1);
  const evaluate = mg.jit((params: unknown, key: Tensor) =>
    mg.mean(mg.sum(
      rollout(
        env,
        (p, obs) => ({ action: learner.act(p as never, obs) }),
        params,
        tasks,
        key,
        { steps: env.maxSteps, envsPerTask: 10 },
      ).reward,
      0,
    ))
  );
  const t0 = performance.now();
  let state = exploreFn(learner.init(mg.random.key(seed)), explore) as SacState;
  let done = explore;
  while (done < steps) {
    const n = Math.min(chunk, steps - done);
    const [next, m] = trainFn(state, n) as [SacState, { episodeReturn: Tensor }];
    state = next;
    done += n;
    if (done % (chunk * 4) === 0 || done === steps) {
      console.log(
        `seed ${seed}, ${done} steps: training return ${
          (await m.episodeReturn.item()).toFixed(1)
        } (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
      );
    }
  }
  const score = await evaluate(state.params, mg.random.key(500 + seed)).item();
  const wall = (performance.now() - t0) / 1000;
  console.log(`seed ${seed}: evaluation return over 10 episodes ${score.toFixed(1)}`);
  rows.push(
    `| ${seed} | ${steps} | ${score.toFixed(1)} | ${score >= -250 ? "yes" : "no"} | ${
      wall.toFixed(0)
    } s |`,
  );
}
console.log("\n| seed | env steps | mean return, 10 evaluation episodes | ≥ −250 | wall |");
console.log("| --- | --- | --- | --- | --- |");
for (const r of rows) console.log(r);
