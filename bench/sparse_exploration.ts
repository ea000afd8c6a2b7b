/**
 * How well can any agent that explores like PEARL do on the sparse point robot? PEARL explores
 * by posterior sampling: draw a task hypothesis, act as if it were true for a whole trajectory,
 * update the posterior. This script plays that scheme idealised, in float64 on the host — the
 * exact posterior over the goal (a 1,800-point grid on the semicircle, misses rule out every
 * goal within the sparse radius of each visited position), a perfect goal-reaching policy, and,
 * beyond what PEARL's fixed-z trajectories can do, a switch to the goal the moment its reward is
 * seen — and beside it a scripted sweep along the arc (what a learned explorer such as RL²'s could
 * do). Each trajectory is scored as `bench/pearl_point_robot.ts` scores PEARL's: (R − R_random) /
 * (R_optimal − R_random) per goal, mean over goals with a 95% CI. Run: `deno run -A
 * bench/sparse_exploration.ts [--goals 2000] [--episodes 6]`.
 */
import { numberOption, parseCommandLine } from "../core/command_line.ts";
import { hostRng } from "../core/autodiff/check_grads.ts";
import { summarize } from "../algorithms/mod.ts";
import { stepToward } from "./point_robot_anchors.ts";

const USAGE = `usage: deno run -A bench/sparse_exploration.ts [options]

  --goals      goals on the semicircle (default 2000)
  --episodes   trajectories per goal (default 6)
  --seed       seed of the goals and the random anchor (default 0)`;

const { values } = parseCommandLine(USAGE, {
  options: {
    goals: { type: "string", default: "2000" },
    episodes: { type: "string", default: "6" },
    seed: { type: "string", default: "0" },
  },
});
const goals = numberOption("--goals", values.goals, USAGE, { min: 1, integer: true });
const episodes = numberOption("--episodes", values.episodes, USAGE, { min: 1, integer: true });
const seed = numberOption("--seed", values.seed, USAGE, { min: 0, integer: true });

// the environment of `pointNavigation({ goals: "semicircle", reward: "sparse" })`
const T = 20, RADIUS = 0.2, MAX_ACTION = 0.1, GRID = 1800;
const sparseReward = (d: number) => (d <= RADIUS ? 2 - d : 0);
const gridAngle = (i: number) => ((i + 0.5) * Math.PI) / GRID;

/** What an agent knows about one goal across trajectories: found, or the goals not ruled out. */
interface Belief {
  found: boolean;
  alive: Uint8Array;
}

/** The exploration schemes: where a trajectory heads while the goal is not yet found. */
type Scheme = (belief: Belief, rand: () => number) => [number, number][];

/** Posterior sampling: one goal drawn from the goals not ruled out; go there and stay. */
const posteriorSampling: Scheme = (belief, rand) => {
  const alive = [];
  for (let i = 0; i < GRID; i++) if (belief.alive[i]) alive.push(i);
  const a = gridAngle(alive[Math.floor(rand() * alive.length)]);
  return [[Math.cos(a), Math.sin(a)]];
};

/**
 * The sweep: head for the arc just past the lowest goal not ruled out, then follow the arc
 * upward, 0.1 rad per waypoint (one step each).
 */
const sweep: Scheme = (belief) => {
  let lowest = 0;
  while (lowest < GRID - 1 && !belief.alive[lowest]) lowest++;
  const path: [number, number][] = [];
  for (let a = gridAngle(lowest) + 0.18; a <= Math.PI + 0.1; a += 0.1) {
    path.push([Math.cos(a), Math.sin(a)]);
  }
  return path;
};

/** One trajectory toward `goal` under `scheme`: its return; the belief is updated in place. */
function trajectory(
  goal: [number, number],
  belief: Belief,
  scheme: Scheme,
  rand: () => number,
): number {
  let x = 0, y = 0, total = 0, w = 0;
  let path = belief.found ? [goal] : scheme(belief, rand);
  for (let t = 0; t < T; t++) {
    const [tx, ty] = path[Math.min(w, path.length - 1)];
    [x, y] = stepToward(x, y, tx, ty, MAX_ACTION);
    if (Math.hypot(tx - x, ty - y) < 1e-9) w++;
    const d = Math.hypot(goal[0] - x, goal[1] - y);
    total += sparseReward(d);
    if (d <= RADIUS) {
      belief.found = true;
      path = [goal];
      w = 0;
      continue;
    }
    for (let i = 0; i < GRID; i++) {
      const a = gridAngle(i);
      if (belief.alive[i] && Math.hypot(Math.cos(a) - x, Math.sin(a) - y) <= RADIUS) {
        belief.alive[i] = 0;
      }
    }
  }
  return total;
}

/** The two anchors of a goal: straight there at full speed, and uniform random actions. */
function anchors(goal: [number, number], rand: () => number): [number, number] {
  let x = 0, y = 0, optimal = 0;
  for (let t = 0; t < T; t++) {
    [x, y] = stepToward(x, y, goal[0], goal[1], MAX_ACTION);
    optimal += sparseReward(Math.hypot(goal[0] - x, goal[1] - y));
  }
  let random = 0;
  const runs = 64;
  for (let r = 0; r < runs; r++) {
    x = 0, y = 0;
    for (let t = 0; t < T; t++) {
      x += (rand() * 2 - 1) * MAX_ACTION;
      y += (rand() * 2 - 1) * MAX_ACTION;
      random += sparseReward(Math.hypot(goal[0] - x, goal[1] - y)) / runs;
    }
  }
  return [optimal, random];
}

const rand = hostRng(seed);
const goalList = Array.from({ length: goals }, () => {
  const a = rand() * Math.PI;
  return [Math.cos(a), Math.sin(a)] as [number, number];
});
const anchorList = goalList.map((g) => anchors(g, rand));
const schemes: [string, Scheme][] = [
  ["posterior sampling, idealised (PEARL's exploration)", posteriorSampling],
  ["sweep along the arc (a scripted explorer)", sweep],
];
console.log(
  `Sparse point robot (radius ${RADIUS}, ${T} steps, goals on the unit semicircle), ${goals} goals: ` +
    "normalised return of trajectory k (k − 1 trajectories of context before it), and the share " +
    "of goals found by the end of it.\n",
);
const header = Array.from({ length: episodes }, (_, e) => `trajectory ${e + 1}`);
console.log(`| scheme | ${header.join(" | ")} |`);
console.log(`| --- | ${header.map(() => "---").join(" | ")} |`);
for (const [name, scheme] of schemes) {
  const scores = Array.from({ length: episodes }, () => new Float64Array(goals));
  const found = new Float64Array(episodes);
  goalList.forEach((goal, g) => {
    const belief: Belief = { found: false, alive: new Uint8Array(GRID).fill(1) };
    const [optimal, random] = anchorList[g];
    for (let e = 0; e < episodes; e++) {
      const r = trajectory(goal, belief, scheme, rand);
      scores[e][g] = (r - random) / (optimal - random);
      if (belief.found) found[e] += 1 / goals;
    }
  });
  const cells = scores.map((s, e) => {
    const { mean, ci95 } = summarize(s);
    return `${mean.toFixed(3)} ± ${ci95.toFixed(3)} (found ${(100 * found[e]).toFixed(0)}%)`;
  });
  console.log(`| ${name} | ${cells.join(" | ")} |`);
}
