/**
 * Every environment against an independent float64 implementation of its equations, written
 * here in plain TypeScript: 1,000 steps (8 environments × 125 steps under random actions, with
 * episodes restarting), on WebGPU and on the reference backend, from the same keys. Each step is
 * checked from the state the environment was in (so f32 rounding cannot compound): the next
 * state, observation, reward and done. Random draws (a bandit's payout, a transition) come from
 * the step's key — the same bits on every backend — and the oracle reads them and applies its
 * own equations.
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import {
  autoReset,
  bernoulliBandit,
  cartPole,
  type Environment,
  gaussianBandit,
  HostEnvBatch,
  hostRollout,
  type HostSimulator,
  pendulum,
  pointNavigation,
  type Policy,
  randomPolicy,
  resetEnvs,
  rollout,
  rolloutFrom,
  tabularMdp,
} from "../envs/mod.ts";
import { assertAllClose, assertRejectsWith, assertThrowsWith } from "./helpers.ts";

const B = 8, T = 125;

/** Host values of one environment's step: what the oracle gets and what it is checked against. */
interface Transition {
  state: Record<string, number[]>;
  action: number[];
  task: Record<string, number[]>;
  /** The step's key, for the draws the oracle reads. */
  key: [number, number];
  next: Record<string, number[]>;
  obs: number[];
  reward: number;
  done: boolean;
  terminated: boolean;
}

/** What the oracle computes; `skipDone` when a threshold is within rounding of the state. */
interface Expected {
  next: Record<string, number[]>;
  obs: number[];
  reward: number;
  done: boolean;
  /** Ended by the task rather than the time limit (default false). */
  terminated?: boolean;
  skipDone?: boolean;
}

/** The draws of a step key, as the environments take them (reference backend: same bits). */
async function draws(key: [number, number]) {
  const k = mg.tensor(new Uint32Array(key), { dtype: "u32", backend: "reference" });
  const [k1, k2] = mg.random.split(k);
  return {
    u: (await mg.random.uniform(k, []).toFloat64())[0],
    z: (await mg.random.normal(k, []).toFloat64())[0],
    u1: (await mg.random.uniform(k1, []).toFloat64())[0],
    z2: (await mg.random.normal(k2, []).toFloat64())[0],
  };
}

// ---------------------------------------------------------------- the oracles

function cartPoleOracle(s: Record<string, number[]>, a: number[]): Expected {
  const [g, mc, mp, l, f, tau] = [9.8, 1.0, 0.1, 0.5, 10.0, 0.02];
  const [x, xd, th, thd] = [s.x[0], s.xDot[0], s.theta[0], s.thetaDot[0]];
  const force = a[0] > 0 ? f : -f;
  const total = mc + mp, pml = mp * l;
  const temp = (force + pml * thd * thd * Math.sin(th)) / total;
  const thAcc = (g * Math.sin(th) - Math.cos(th) * temp) /
    (l * (4 / 3 - (mp * Math.cos(th) ** 2) / total));
  const xAcc = temp - (pml * thAcc * Math.cos(th)) / total;
  const n = [x + tau * xd, xd + tau * xAcc, th + tau * thd, thd + tau * thAcc];
  const thr = (12 * 2 * Math.PI) / 360;
  const t = s.t[0] + 1;
  return {
    next: { x: [n[0]], xDot: [n[1]], theta: [n[2]], thetaDot: [n[3]], t: [t] },
    obs: n,
    reward: 1,
    done: Math.abs(n[0]) > 2.4 || Math.abs(n[2]) > thr || t >= 500,
    terminated: Math.abs(n[0]) > 2.4 || Math.abs(n[2]) > thr,
    skipDone: Math.abs(Math.abs(n[0]) - 2.4) < 1e-5 || Math.abs(Math.abs(n[2]) - thr) < 1e-6,
  };
}

function pendulumOracle(s: Record<string, number[]>, a: number[]): Expected {
  const u = Math.min(Math.max(a[0], -2), 2);
  const th = s.theta[0], thd = s.thetaDot[0];
  const norm = ((((th + Math.PI) % (2 * Math.PI)) + 2 * Math.PI) % (2 * Math.PI)) - Math.PI;
  const cost = norm ** 2 + 0.1 * thd ** 2 + 0.001 * u ** 2;
  const newThd = Math.min(Math.max(thd + (1.5 * 10 * Math.sin(th) + 3 * u) * 0.05, -8), 8);
  const newTh = th + newThd * 0.05;
  const t = s.t[0] + 1;
  return {
    next: { theta: [newTh], thetaDot: [newThd], t: [t] },
    obs: [Math.cos(newTh), Math.sin(newTh), newThd],
    reward: -cost,
    done: t >= 200,
  };
}

type Oracle = (
  s: Record<string, number[]>,
  a: number[],
  task: Record<string, number[]>,
  d: Awaited<ReturnType<typeof draws>>,
) => Expected;

const clampArm = (a: number, k: number) => Math.min(Math.max(a, 0), k - 1);

function bernoulliOracle(horizon: number): Oracle {
  return (s, a, task, d) => {
    const p = task.p[clampArm(a[0], task.p.length)];
    const t = s.t[0] + 1;
    return {
      next: { t: [t] },
      obs: [0],
      reward: d.u < p ? 1 : 0,
      done: t >= horizon,
      skipDone: false,
    };
  };
}

function gaussianOracle(horizon: number): Oracle {
  return (s, a, task, d) => {
    const t = s.t[0] + 1;
    return {
      next: { t: [t] },
      obs: [0],
      reward: task.means[clampArm(a[0], task.means.length)] + d.z,
      done: t >= horizon,
    };
  };
}

function mdpOracle(S: number, A: number, horizon: number): Oracle {
  return (s, a, task, d) => {
    const st = s.s[0], act = clampArm(a[0], A);
    let cum = 0, next = 0, nearEdge = false;
    for (let j = 0; j < S; j++) {
      cum += task.transitions[(st * A + act) * S + j];
      if (Math.abs(cum - d.u1) < 1e-5) nearEdge = true;
      if (cum < d.u1) next++;
    }
    next = Math.min(next, S - 1);
    const t = s.t[0] + 1;
    const obs = Array.from({ length: S }, (_, j) => (j === next ? 1 : 0));
    return {
      next: { s: [next], t: [t] },
      obs,
      reward: task.rewards[st * A + act] + d.z2,
      done: t >= horizon,
      skipDone: nearEdge, // (the state too: see the caller)
    };
  };
}

function navigationOracle(horizon: number, sparse: boolean, radius = 0.2): Oracle {
  return (s, a, task) => {
    const pos = s.pos.map((p, i) => p + Math.min(Math.max(a[i], -0.1), 0.1));
    const dist = Math.hypot(pos[0] - task.goal[0], pos[1] - task.goal[1]);
    const t = s.t[0] + 1;
    return {
      next: { pos, t: [t] },
      obs: pos,
      reward: sparse ? (dist <= radius ? 2 - dist : 0) : -dist,
      done: t >= horizon,
    };
  };
}

// ---------------------------------------------------------------- the harness

/** Values of a tensor tree's leaves by key, per environment: leaf [B, ...] → B arrays. */
async function perEnv(
  tree: Record<string, Tensor>,
  b: number,
): Promise<Record<string, number[]>[]> {
  const out: Record<string, number[]>[] = Array.from({ length: b }, () => ({}));
  for (const [k, t] of Object.entries(tree)) {
    const v = [...await t.toFloat64()];
    const size = v.length / b;
    for (let i = 0; i < b; i++) out[i][k] = v.slice(i * size, (i + 1) * size);
  }
  return out;
}

/** 8 environments × 125 random steps, one program; every transition's values on the host. */
async function transitions(
  env: Environment<any, any>,
  backend: mg.BackendName,
): Promise<Transition[]> {
  mg.setBackend(backend);
  try {
    const tasks = env.sampleTasks(mg.random.key(10), B);
    const one = Object.keys(tasks).length === 0; // a single-task environment
    const act = randomPolicy(env.actionSpace);
    const step = mg.vmap((k: Tensor, s: unknown, a: Tensor, t: unknown) => env.step(k, s, a, t), {
      inAxes: [0, 0, 0, one ? null : 0],
    });
    const reset = mg.vmap((k: Tensor, t: unknown) => env.reset(k, t), {
      inAxes: [0, one ? null : 0],
    });
    const run = mg.jit((key: Tensor) => {
      const start = reset(mg.random.splitStacked(key, B), tasks) as { state: unknown };
      return mg.scan(
        (c: { state: unknown; key: Tensor }) => {
          const [next, kA, kS, kR] = mg.random.split(c.key, 4);
          const action = act(null, mg.zeros([B, 1]), kA).action;
          const keys = mg.random.splitStacked(kS, B);
          const out = step(keys, c.state, action, tasks) as {
            state: unknown;
            obs: Tensor;
            reward: Tensor;
            done: Tensor;
            terminated: Tensor;
          };
          const fresh = reset(mg.random.splitStacked(kR, B), tasks) as { state: unknown };
          const restarted = mg.tree.map(
            (f: Tensor, s: Tensor) =>
              mg.where(mg.reshape(out.done, [B, ...f.shape.slice(1).map(() => 1)]), f, s),
            fresh.state,
            out.state,
          );
          const record = {
            state: c.state,
            action,
            keys,
            next: out.state,
            obs: out.obs,
            reward: out.reward,
            done: out.done,
            terminated: out.terminated,
          };
          return [{ state: restarted, key: next }, record];
        },
        { state: start.state, key: mg.random.key(11) },
        null,
        { length: T },
      )[1];
    });
    const r = run(mg.random.key(12)) as Record<string, any>;
    const flat = (x: Tensor) => mg.reshape(x, [T * B, ...x.shape.slice(2)]);
    const [states, nexts] = await Promise.all([
      perEnv(mg.tree.map(flat, r.state), T * B),
      perEnv(mg.tree.map(flat, r.next), T * B),
    ]);
    const [actions, keys, obs] = await Promise.all(
      [r.action, r.keys, r.obs].map(async (x: Tensor) => [...await flat(x).toFloat64()]),
    );
    const rewards = [...await r.reward.toFloat64()], dones = [...await r.done.toFloat64()];
    const terminals = [...await r.terminated.toFloat64()];
    const taskRows = one ? [] : await perEnv(tasks, B);
    const aSize = actions.length / (T * B), oSize = obs.length / (T * B);
    return Array.from({ length: T * B }, (_, i) => ({
      state: states[i],
      action: actions.slice(i * aSize, (i + 1) * aSize),
      task: one ? {} : taskRows[i % B],
      key: [keys[2 * i], keys[2 * i + 1]] as [number, number],
      next: nexts[i],
      obs: obs.slice(i * oSize, (i + 1) * oSize),
      reward: rewards[i],
      done: dones[i] !== 0,
      terminated: terminals[i] !== 0,
    }));
  } finally {
    mg.setBackend("webgpu");
  }
}

const CASES: [string, () => Environment<any, any>, Oracle, boolean][] = [
  ["CartPole-v1", cartPole, (s, a) => cartPoleOracle(s, a), false],
  ["Pendulum-v1", pendulum, (s, a) => pendulumOracle(s, a), false],
  ["Bernoulli bandit", () => bernoulliBandit({ arms: 5, horizon: 10 }), bernoulliOracle(10), true],
  ["Gaussian bandit", () => gaussianBandit({ arms: 4, horizon: 7 }), gaussianOracle(7), true],
  ["tabular MDP", () => tabularMdp(), mdpOracle(10, 5, 10), true],
  ["2D navigation", () => pointNavigation(), navigationOracle(100, false), false],
  [
    "semicircle goals, sparse",
    () => pointNavigation({ goals: "semicircle", reward: "sparse" }),
    navigationOracle(20, true),
    false,
  ],
];

for (const [name, make, oracle, usesDraws] of CASES) {
  for (const backend of ["webgpu", "reference"] as const) {
    Deno.test(`${name} (${backend}): 1,000 steps equal an independent float64 implementation`, async () => {
      const env = make();
      const steps = await transitions(env, backend);
      let doneChecked = 0, ended = 0;
      for (let i = 0; i < steps.length; i++) {
        const tr = steps[i];
        const d = usesDraws ? await draws(tr.key) : { u: 0, z: 0, u1: 0, z2: 0 };
        const e = oracle(tr.state, tr.action, tr.task, d);
        const what = `${name} (${backend}) step ${i}`;
        if (e.skipDone) continue; // a threshold within f32 rounding of the state
        for (const [k, v] of Object.entries(e.next)) {
          assertAllClose(tr.next[k], v, { rtol: 1e-5, atol: 1e-5 }, `${what}: state.${k}`);
        }
        assertAllClose(tr.obs, e.obs, { rtol: 1e-5, atol: 1e-5 }, `${what}: obs`);
        assertAllClose([tr.reward], [e.reward], { rtol: 1e-5, atol: 1e-5 }, `${what}: reward`);
        if (tr.done !== e.done) throw new Error(`${what}: done ${tr.done}, expected ${e.done}`);
        if (tr.terminated !== (e.terminated ?? false)) {
          throw new Error(
            `${what}: terminated ${tr.terminated}, expected ${e.terminated ?? false}`,
          );
        }
        doneChecked++;
        if (e.done) ended++;
      }
      if (doneChecked < 950) throw new Error(`${name}: only ${doneChecked} steps checked`);
      // the episodes did end and restart along the way (time limits or failures)
      if (env.maxSteps <= T && ended === 0) throw new Error(`${name}: no episode ended`);
    });
  }
}

Deno.test("resets: documented start states; tasks: documented distributions", async () => {
  mg.setBackend("reference");
  try {
    const keys = mg.random.splitStacked(mg.random.key(3), 2000);
    const cp = cartPole();
    const cs = mg.vmap((k: Tensor) => cp.reset(k, {}).obs)(keys);
    const v = await cs.toFloat64();
    if (v.some((x) => Math.abs(x) >= 0.05)) throw new Error("CartPole reset outside ±0.05");
    const pd = pendulum();
    const ps = mg.vmap((k: Tensor) => pd.reset(k, {}).state.theta)(keys);
    const th = await ps.toFloat64();
    if (th.some((x) => Math.abs(x) > Math.PI) || Math.max(...th) < 3) {
      throw new Error("Pendulum's θ not spread over (−π, π)");
    }
    // tabular MDP: rows are distributions; Dirichlet(1) has mean 1/S per entry; reward means ~N(1, 1)
    const mdp = tabularMdp();
    const t = mdp.sampleTasks(mg.random.key(4), 200);
    const rows = await mg.sum(t.transitions, -1).toFloat64();
    assertAllClose(rows, new Array(rows.length).fill(1), { rtol: 1e-5 }, "rows sum to 1");
    const meanP = await mg.mean(t.transitions).item();
    assertAllClose([meanP], [0.1], { atol: 1e-3 }, "transition probabilities average 1/S");
    const r = await t.rewards.toFloat64();
    const rMean = r.reduce((a, b) => a + b) / r.length;
    const rVar = r.reduce((a, b) => a + (b - rMean) ** 2, 0) / r.length;
    assertAllClose([rMean, rVar], [1, 1], { atol: 0.05 }, "reward means ~ N(1, 1)");
    // semicircle goals on the unit upper half circle; square goals in [−0.5, 0.5]²
    const g = await pointNavigation({ goals: "semicircle" }).sampleTasks(mg.random.key(5), 500).goal
      .toFloat64();
    for (let i = 0; i < 500; i++) {
      if (Math.abs(Math.hypot(g[2 * i], g[2 * i + 1]) - 1) > 1e-5 || g[2 * i + 1] < 0) {
        throw new Error(`goal ${g[2 * i]}, ${g[2 * i + 1]} not on the upper unit semicircle`);
      }
    }
    const sq = await pointNavigation().sampleTasks(mg.random.key(6), 500).goal.toFloat64();
    if (sq.some((x) => Math.abs(x) > 0.5)) throw new Error("square goal outside [−0.5, 0.5]²");
  } finally {
    mg.setBackend("webgpu");
  }
});

Deno.test("rollouts: one program, episodes continue through resets, trajectories [T, B]", async () => {
  await mg.init();
  const env = cartPole();
  const tasks = env.sampleTasks(mg.random.key(0), 1);
  const run = mg.jit((key: Tensor) =>
    rolloutFrom(
      env,
      randomPolicy(env.actionSpace),
      null,
      resetEnvs(env, tasks, key, 16),
      tasks,
      key,
      60,
    )
  );
  const before = mg.runtimeStats().submits;
  const [envs, trajectory] = run(mg.random.key(1));
  if (trajectory.reward.shape.join() !== "60,16" || envs.obs.shape.join() !== "16,4") {
    throw new Error(`shapes ${trajectory.reward.shape} ${envs.obs.shape}`);
  }
  const dones = await trajectory.done.toFloat64();
  if (mg.runtimeStats().submits - before > 2) throw new Error("more than one submission");
  const ended = dones.reduce((a, b) => a + b);
  if (ended < 10) throw new Error(`only ${ended} episodes ended in 960 random CartPole steps`);
  // after a done, the next observation is a fresh episode's (all within the reset range)
  const obs = await trajectory.obs.toFloat64();
  for (let t = 0; t + 1 < 60; t++) {
    for (let b = 0; b < 16; b++) {
      if (!dones[t * 16 + b]) continue;
      const next = obs.slice(((t + 1) * 16 + b) * 4, ((t + 1) * 16 + b + 1) * 4);
      if (next.some((x) => Math.abs(x) >= 0.05)) throw new Error(`step ${t}: no reset (${next})`);
    }
  }
  // per-task environments: 3 bandit tasks × 4 environments, every reward 0 or 1
  const bandit = bernoulliBandit({ arms: 3, horizon: 5 });
  const bt = bandit.sampleTasks(mg.random.key(2), 3);
  const tr = rollout(bandit, randomPolicy(bandit.actionSpace), null, bt, mg.random.key(3), {
    steps: 10,
    envsPerTask: 4,
  });
  if (tr.reward.shape.join() !== "10,12") throw new Error(`bandit rewards ${tr.reward.shape}`);
  const d = await tr.done.toFloat64();
  for (let t = 0; t < 10; t++) {
    if ((d[t * 12] === 1) !== ((t + 1) % 5 === 0)) throw new Error(`bandit done at ${t}`);
  }
});

Deno.test("environments and rollouts refuse wrong actions and policies clearly", () => {
  const env = cartPole();
  const { state } = env.reset(mg.random.key(0), {});
  assertThrowsWith(
    () => env.step(mg.random.key(1), state, mg.tensor(1), {}),
    "CartPole-v1",
    "i32 scalar",
  );
  const pd = pendulum();
  const ps = pd.reset(mg.random.key(0), {}).state;
  assertThrowsWith(
    () => pd.step(mg.random.key(1), ps, mg.tensor([1, 2]), {}),
    "Pendulum-v1",
    "f32[1]",
  );
  const tasks = env.sampleTasks(mg.random.key(0), 1);
  assertThrowsWith(
    () =>
      rollout(env, () => ({ action: mg.zeros([4]) }), null, tasks, mg.random.key(1), {
        steps: 2,
        envsPerTask: 4,
      }),
    "CartPole-v1 rollout",
    "i32[4]",
  );
  assertThrowsWith(() => env.sampleTasks(mg.random.key(0), 0), "sampleTasks", "positive integer");
  assertThrowsWith(() => pointNavigation({ goals: "circle" as never }), "pointNavigation", "goals");
  assertThrowsWith(() => bernoulliBandit({ arms: 0 }), "bernoulliBandit", "arms");
  // autoReset keeps the interface
  if (autoReset(env).name !== "CartPole-v1") throw new Error("autoReset renamed the env");
});

Deno.test("host environments: a JS CartPole stepped from the host matches the device CartPole", async () => {
  await mg.init();
  const B = 4, steps = 12;
  const env = cartPole();
  const tasks = env.sampleTasks(mg.random.key(0), 1);
  const start = resetEnvs(env, tasks, mg.random.key(1), B);
  const s0 = await start.obs.toFloat64();
  // a balancing policy as ops, the same function on both paths: push toward the pole's lean
  const lean: Policy<null> = (_p, obs) => ({
    action: mg.cast(
      mg.greater(mg.add(mg.slice(obs, [null, 2]), mg.mul(mg.slice(obs, [null, 3]), 0.5)), 0),
      "i32",
    ),
  });
  // the host simulators: the float64 oracle's equations, starting from the device's reset states
  const hostCartPole = (i: number): HostSimulator => {
    let s = {
      x: [s0[4 * i]],
      xDot: [s0[4 * i + 1]],
      theta: [s0[4 * i + 2]],
      thetaDot: [s0[4 * i + 3]],
      t: [0],
    };
    return {
      reset: () => [s.x[0], s.xDot[0], s.theta[0], s.thetaDot[0]],
      step(a) {
        const e = cartPoleOracle(s, [a as number]);
        s = e.next as typeof s;
        return { obs: e.obs, reward: e.reward, done: e.done, terminated: e.terminated };
      },
    };
  };
  const batch = new HostEnvBatch(
    {
      name: "host CartPole",
      observationShape: [4],
      actionSpace: env.actionSpace,
      make: hostCartPole,
    },
    B,
  );
  const host = await hostRollout(batch, lean, null, mg.random.key(2), steps);
  const [, device] = rolloutFrom(env, lean, null, start, tasks, mg.random.key(2), steps);
  const [hd, dd] = [await host.done.toFloat64(), await device.done.toFloat64()];
  if (hd.some((d) => d) || dd.some((d) => d)) {
    throw new Error("the balancing policy let a pole fall");
  }
  assertAllClose(await host.obs.toFloat64(), await device.obs.toFloat64(), {
    rtol: 1e-4,
    atol: 1e-5,
  }, "observations");
  assertAllClose(await host.action.toFloat64(), await device.action.toFloat64(), {
    rtol: 0,
    atol: 0,
  }, "actions");
  // clear errors for a simulator that returns the wrong observation size or a NaN reward
  const broken = new HostEnvBatch({
    name: "broken",
    observationShape: [2],
    actionSpace: { kind: "discrete", n: 2 },
    make: () => ({ reset: () => [0, 0], step: () => ({ obs: [0], reward: NaN, done: false }) }),
  }, 2);
  await assertRejectsWith(broken.step(mg.zeros([2], { dtype: "i32" })), "broken", "reward NaN");
  await assertRejectsWith(broken.step(mg.zeros([3], { dtype: "i32" })), "broken", "actions [2]");
});
