/**
 * PPO on CartPole-v1 with purejaxrl's settings (4 environments × 128 steps per update, 500k
 * steps, 4 epochs × 4 minibatches, Adam 2.5e-4 annealed, γ 0.99, λ 0.95, clip 0.2, entropy 0.01,
 * value 0.5, gradient norm 0.5, 64×64 tanh), several seeds trained at once as one vmapped
 * program: one jitted call per update for all seeds. Prints the mean episodic return of each
 * seed as training goes and at the end, and the wall time. Run by hand (`--help`).
 */
import { numberOption, parseCommandLine } from "../core/command_line.ts";
import * as mg from "../mod.ts";
import { ppo, type PpoState } from "../algorithms/mod.ts";
import { cartPole } from "../envs/mod.ts";

const USAGE = `usage: deno run -A bench/ppo_cartpole.ts [--seeds 4] [--steps 500000] [--every 50]

  --seeds  seeds trained together (vmapped), keys 0 … seeds − 1
  --steps  environment steps per seed
  --every  report every this many updates`;

const { values } = parseCommandLine(USAGE, {
  options: {
    seeds: { type: "string", default: "4" },
    steps: { type: "string", default: "500000" },
    every: { type: "string", default: "50" },
  },
});
const seeds = numberOption("--seeds", values.seeds, USAGE, { min: 1, integer: true });
const steps = numberOption("--steps", values.steps, USAGE, { min: 512, integer: true });
const every = numberOption("--every", values.every, USAGE, { min: 1, integer: true });

const info = await mg.init();
const learner = ppo({ env: cartPole(), totalSteps: steps });
const init = mg.jit((keys: mg.Tensor) => mg.vmap((k: mg.Tensor) => learner.init(k))(keys));
const update = mg.jit(mg.vmap(learner.update), { donateArgnums: [0], name: "ppo update" });
console.log(
  `PPO CartPole-v1 on ${info.description}${info.backendHint ? ` (${info.backendHint})` : ""}: ` +
    `${seeds} seeds × ${learner.updates} updates of ${learner.config.numEnvs} × ` +
    `${learner.config.numSteps} steps`,
);
const t0 = performance.now();
let state = init(mg.random.splitStacked(mg.random.key(0), seeds)) as PpoState;
let returns: number[] = [];
for (let i = 1; i <= learner.updates; i++) {
  const [next, metrics] = update(state) as [PpoState, { episodeReturn: mg.Tensor }];
  state = next;
  if (i === 1) {
    await metrics.episodeReturn.data();
    console.log(
      `first update (tracing and compiling): ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
  }
  if (i % every === 0 || i === learner.updates) {
    returns = [...await metrics.episodeReturn.toFloat64()];
    const s = ((performance.now() - t0) / 1000).toFixed(0);
    console.log(`update ${i}: returns ${returns.map((r) => r.toFixed(1)).join(" / ")} (${s} s)`);
  }
}
const wall = (performance.now() - t0) / 1000;
const solved = returns.filter((r) => r >= 475).length;
console.log(
  `\n| seeds | steps per seed | final mean episodic return per seed | ≥ 475 | wall time |\n` +
    `| --- | --- | --- | --- | --- |\n| ${seeds} | ${steps} | ${
      returns.map((r) => r.toFixed(1)).join(" / ")
    } | ${solved} of ${seeds} | ${wall.toFixed(0)} s |`,
);
