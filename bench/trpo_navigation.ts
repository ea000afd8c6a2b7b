/**
 * TRPO on 2D point navigation with one fixed goal (issue #21's acceptance): the normalised
 * return (R − R_still) / (R_opt − R_still), where R_still is standing still for the episode and
 * R_opt the analytic optimum (each axis moved toward the goal at full speed, 0.1 per step).
 * Reports the training episodes' return (the stochastic policy) and a deterministic evaluation
 * of the mean action, per seed, and the wall time. Run by hand (`--help`).
 */
import { numberOption, parseCommandLine } from "../core/command_line.ts";
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { trpo, type TrpoState } from "../algorithms/mod.ts";
import { pointNavigation, rollout } from "../envs/mod.ts";

const USAGE =
  `usage: deno run -A bench/trpo_navigation.ts [--updates 100] [--seeds 0,1,2] [--goal 0.3,-0.4]

  --updates  TRPO updates (20 environments × one 100-step episode each)
  --seeds    one run per seed
  --goal     the fixed goal`;

const { values } = parseCommandLine(USAGE, {
  options: {
    updates: { type: "string", default: "100" },
    seeds: { type: "string", default: "0,1,2" },
    goal: { type: "string", default: "0.3,-0.4" },
  },
});
const updates = numberOption("--updates", values.updates, USAGE, { min: 1, integer: true });
const seeds = values.seeds.split(",").map((s) =>
  numberOption("--seeds", s, USAGE, { min: 0, integer: true })
);
const goal = values.goal.split(",").map((g) => numberOption("--goal", g, USAGE));

const info = await mg.init();
const env = pointNavigation();
const horizon = env.maxSteps;
const rStill = -horizon * Math.hypot(goal[0], goal[1]);
let pos = [0, 0], rOpt = 0;
for (let t = 0; t < horizon; t++) {
  pos = pos.map((x, i) => x + Math.max(-0.1, Math.min(0.1, goal[i] - x)));
  rOpt -= Math.hypot(pos[0] - goal[0], pos[1] - goal[1]);
}
const normalised = (r: number) => (r - rStill) / (rOpt - rStill);
console.log(
  `TRPO, 2D navigation to (${goal}) on ${info.description}${
    info.backendHint ? ` (${info.backendHint})` : ""
  }: R_still ${rStill.toFixed(2)}, R_opt ${rOpt.toFixed(2)}`,
);
const rows: string[] = [];
for (const seed of seeds) {
  const tasks = { goal: mg.tensor([goal]) };
  const learner = trpo({ env, tasks });
  const update = mg.jit(learner.update, { donateArgnums: [0] });
  const evaluate = mg.jit((p: unknown, key: Tensor) =>
    mg.mean(mg.sum(
      rollout(env, learner.network.greedyPolicy, p as never, tasks, key, {
        steps: horizon,
        envsPerTask: 4,
      }).reward,
      0,
    ))
  );
  const t0 = performance.now();
  let state = learner.init(mg.random.key(seed)) as TrpoState;
  let trained = 0;
  for (let i = 1; i <= updates; i++) {
    const [s, m] = update(state);
    state = s;
    if (i % 20 === 0 || i === updates) {
      trained = await m.episodeReturn.item();
      console.log(
        `seed ${seed} update ${i}: normalised return ${normalised(trained).toFixed(3)} (${
          ((performance.now() - t0) / 1000).toFixed(0)
        } s)`,
      );
    }
  }
  const greedy = await evaluate(state.params, mg.random.key(1000 + seed)).item();
  const wall = (performance.now() - t0) / 1000;
  rows.push(
    `| ${seed} | ${updates} | ${normalised(trained).toFixed(3)} | ${
      normalised(greedy).toFixed(3)
    } | ${wall.toFixed(0)} s |`,
  );
}
console.log(
  "\n| seed | updates | normalised return, training episodes | deterministic (mean action) | wall |",
);
console.log("| --- | --- | --- | --- | --- |");
for (const r of rows) console.log(r);
