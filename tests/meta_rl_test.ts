/**
 * Meta-RL's parts: RL²'s trial environment (observation layout, episodes within a trial, the
 * task kept) against the inner environment stepped by hand; the hidden state carried within a
 * trial and reset between trials; the recurrent replay equal to the rollout it replays and its
 * gradient equal to finite differences in float64; the jitted RL² update on WebGPU equal to the
 * plain float64 one; the bandit baselines and PSRL by hand; MAML-RL's meta-gradient against
 * finite differences, its estimators and first-order variant against their definitions, its
 * jitted meta-step against float64; PEARL's product of Gaussians and KL against closed forms and
 * its jitted collection and training against float64; clear errors for bad configurations.
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import {
  actionLogProb,
  banditBaselineReturns,
  type BanditChooser,
  type BanditRule,
  banditRule,
  klToStandardNormal,
  type MamlRl,
  mamlRl,
  type MamlRlConfig,
  type Pearl,
  pearl,
  type PearlState,
  productOfGaussians,
  psrlReturns,
  ravelTree,
  recurrentActorCritic,
  type Rl2,
  rl2,
  RL2_CELL,
} from "../algorithms/mod.ts";
import {
  bernoulliBandit,
  cartPole,
  pointNavigation,
  randomPolicy,
  recurrentRolloutFrom,
  resetEnvs,
  rollout,
  tabularMdp,
  trialEnvironment,
} from "../envs/mod.ts";
import {
  assertAllClose,
  assertJittedUpdatesMatchFloat64,
  assertThrowsWith,
  assertTreesClose,
  onBackend,
  randomValues,
} from "./helpers.ts";

Deno.test("trialEnvironment: episodes of one task, the previous action, reward and episode end observed", async () => {
  for (const backend of ["webgpu", "reference"] as const) {
    if (backend === "webgpu") await mg.init();
    mg.setBackend(backend);
    const inner = tabularMdp({ states: 4, actions: 3, horizon: 2 });
    const trial = trialEnvironment(inner, { episodes: 3 });
    if (trial.observationShape[0] !== 4 + 3 + 2 || trial.maxSteps !== 6) {
      throw new Error(`shape ${trial.observationShape}, maxSteps ${trial.maxSteps}`);
    }
    const task = mg.tree.map(
      (t: Tensor) => mg.slice(t, [0]),
      inner.sampleTasks(mg.random.key(0), 1),
    );
    let { obs, state } = trial.reset(mg.random.key(1), task);
    let innerState = inner.reset(mg.random.key(1), task).state;
    assertAllClose(await obs.toFloat64(), [1, 0, 0, 0, 0, 0, 0, 0, 0], {}, `${backend}: first obs`);
    const actions = [2, 0, 1, 1, 0, 2];
    for (let t = 0; t < 6; t++) {
      const key = mg.random.key(10 + t);
      const a = mg.tensor(actions[t], { dtype: "i32" });
      const r = trial.step(key, state, a, task);
      // by hand: the inner step with the first half of the key, a fresh episode every 2 steps
      const [kStep] = mg.random.split(key);
      const s = inner.step(kStep, innerState, a, task);
      const ended = (t + 1) % 2 === 0;
      const innerObs = ended ? [1, 0, 0, 0] : Array.from(await s.obs.toFloat64());
      const reward = await s.reward.item();
      const expected = [
        ...innerObs,
        ...[0, 1, 2].map((i) => (i === actions[t] ? 1 : 0)),
        reward,
        ended ? 1 : 0,
      ];
      assertAllClose(
        await r.obs.toFloat64(),
        expected,
        { rtol: 1e-6 },
        `${backend}: obs after step ${t}`,
      );
      if (
        Boolean(await r.done.item()) !== (t === 5) ||
        Boolean(await r.terminated.item()) !== (t === 5)
      ) {
        throw new Error(`${backend}: done at step ${t} should be ${t === 5}`);
      }
      if ((await r.state.episode.item()) !== Math.floor((t + 1) / 2)) {
        throw new Error(`${backend}: episode count after step ${t}`);
      }
      innerState = ended ? inner.reset(mg.random.key(0), task).state : s.state;
      obs = r.obs;
      state = r.state;
    }
  }
  mg.setBackend("webgpu");
});

for (
  const [separateCritic, cell] of [[false, {}], [true, {}], [true, RL2_CELL]] as const
) {
  const critic = (separateCritic ? "a separate critic" : "a shared GRU") +
    (cell === RL2_CELL ? ", pytorch_rl2's cell" : "");
  Deno.test(`RL² (${critic}): the hidden state is carried within a trial and reset between trials; the replay equals the rollout`, async () => {
    await mg.init();
    const trial = trialEnvironment(tabularMdp({ states: 3, actions: 3, horizon: 2 }), {
      episodes: 2,
    });
    const ac = recurrentActorCritic(trial.observationShape, trial.actionSpace, {
      hidden: 5,
      separateCritic,
      cell,
    });
    const params = ac.init(mg.random.key(0));
    const B = 3, T = 3 * trial.maxSteps; // three trials in a row per environment
    const tasks = trial.sampleTasks(mg.random.key(1), B);
    const zero = ac.initialHidden(B);
    const [, , tr] = mg.jit((key: Tensor) =>
      recurrentRolloutFrom(
        trial,
        ac.policy,
        params,
        resetEnvs(trial, tasks, key),
        zero,
        tasks,
        key,
        T,
        {
          resetTo: zero,
        },
      )
    )(mg.random.key(2));
    const done = await tr.done.toFloat64();
    const hidden = await tr.hidden.toFloat64();
    const H = separateCritic ? 10 : 5;
    if (ac.hidden !== H) throw new Error(`hidden state width ${ac.hidden}, expected ${H}`);
    for (let t = 0; t < T; t++) {
      const startOfTrial = t % trial.maxSteps === 0;
      for (let b = 0; b < B; b++) {
        if ((done[t * B + b] === 1) !== ((t + 1) % trial.maxSteps === 0)) {
          throw new Error(`trial end at step ${t}, env ${b}: done ${done[t * B + b]}`);
        }
        const h = hidden.slice((t * B + b) * H, (t * B + b + 1) * H);
        const zeroState = h.every((v) => v === 0);
        // zero exactly at each trial's start (also mid-rollout), never within a trial
        if (zeroState !== startOfTrial) {
          throw new Error(`hidden state at step ${t}, env ${b} is ${zeroState ? "" : "not "}zero`);
        }
      }
    }
    // replaying the sequence from its start reproduces the rollout's log-probabilities and values
    const starts = mg.concat([
      mg.zeros([1, B], { dtype: "bool" }),
      mg.slice(tr.done, [[0, T - 1]]),
    ]);
    const { dist, value } = ac.applySequence(params, tr.obs, starts, zero);
    const logits = await mg.reshape((dist as { logits: Tensor }).logits, [T, B, 3]).toFloat64();
    const logProb = await tr.logProb!.toFloat64();
    const action = await tr.action.toFloat64();
    for (let i = 0; i < T * B; i++) {
      const l = logits.slice(i * 3, i * 3 + 3);
      const m = Math.max(...l);
      const lse = m + Math.log(l.reduce((s, v) => s + Math.exp(v - m), 0));
      assertAllClose(
        [l[action[i]] - lse],
        [logProb[i]],
        { rtol: 1e-5, atol: 1e-6 },
        `log-prob ${i}`,
      );
    }
    assertAllClose(
      await value.toFloat64(),
      await tr.value!.toFloat64(),
      { rtol: 1e-5, atol: 1e-6 },
      "values",
    );
  });
}

Deno.test("recurrent replay: gradients through the whole sequence equal central differences (float64)", async () => {
  mg.setBackend("reference");
  try {
    const ac = recurrentActorCritic([3], { kind: "discrete", n: 2 }, { hidden: 4 });
    const params = ac.init(mg.random.key(0));
    const T = 6, B = 2;
    const obs = mg.tensor(randomValues([T, B, 3], "f32", 5), [T, B, 3]);
    const starts = mg.tensor([0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0].map(Boolean), [T, B]);
    const weights = mg.tensor(randomValues([T * B], "f32", 6), [T * B]);
    // a scalar of everything the replay returns: values and logits, weighted
    const f = (w: Tensor) => {
      const p = { ...params, gru: { ...params.gru, wh: w } };
      const { dist, value } = ac.applySequence(p, obs, starts, ac.initialHidden(B));
      const logits = (dist as { logits: Tensor }).logits;
      return mg.add(mg.sum(mg.mul(value, weights)), mg.sum(mg.square(logits)));
    };
    await mg.checkGrads(f, [params.gru.wh], { order: 1 });
  } finally {
    mg.setBackend("webgpu");
  }
});

Deno.test("recurrent replay with a separate critic: the value reads only the critic's GRU, the policy only its own (float64)", async () => {
  mg.setBackend("reference");
  try {
    const ac = recurrentActorCritic([3], { kind: "discrete", n: 2 }, {
      hidden: 4,
      separateCritic: true,
    });
    const params = ac.init(mg.random.key(0));
    const T = 5, B = 2;
    const obs = mg.tensor(randomValues([T, B, 3], "f32", 5), [T, B, 3]);
    const starts = mg.tensor([0, 0, 0, 1, 0, 0, 0, 0, 1, 0].map(Boolean), [T, B]);
    const hidden = mg.tensor(randomValues([B, 8], "f32", 7), [B, 8]);
    const outputs = (gru: unknown, criticGru: unknown) => {
      const p = { ...params, gru, criticGru } as typeof params;
      const { dist, value } = ac.applySequence(p, obs, starts, hidden);
      return {
        value: mg.sum(mg.square(value)),
        logits: mg.sum(mg.square((dist as { logits: Tensor }).logits)),
      };
    };
    const norm = async (tree: unknown) => {
      const [leaves] = mg.tree.flatten<Tensor>(tree);
      let total = 0;
      for (const l of leaves) total += (await l.toFloat64()).reduce((s, x) => s + x * x, 0);
      return Math.sqrt(total);
    };
    const byValue = mg.grad((g: unknown, c: unknown) => outputs(g, c).value, { argnums: [0, 1] })(
      params.gru,
      params.criticGru,
    ) as unknown[];
    const byPolicy = mg.grad((g: unknown, c: unknown) => outputs(g, c).logits, {
      argnums: [0, 1],
    })(params.gru, params.criticGru) as unknown[];
    const [vOwn, vOther, pOwn, pOther] = await Promise.all(
      [byValue[1], byValue[0], byPolicy[0], byPolicy[1]].map(norm),
    );
    if (vOther !== 0 || pOther !== 0 || !(vOwn > 1e-6) || !(pOwn > 1e-6)) {
      throw new Error(
        `value → policy GRU ${vOther}, policy → critic GRU ${pOther} (both must be 0); ` +
          `own gradients ${vOwn}, ${pOwn}`,
      );
    }
    // and the critic's recurrent weights get the gradient central differences give
    const f = (w: Tensor) => outputs(params.gru, { ...params.criticGru!, wh: w }).value;
    await mg.checkGrads(f, [params.criticGru!.wh], { order: 1 });
    // a start at step 0 discards the given state: environment 0 restarts there, 1 does not
    const restarted = mg.tensor([1, 0, 0, 1, 0, 0, 0, 0, 1, 0].map(Boolean), [T, B]);
    const byHidden = await mg.grad((h: Tensor) => {
      const { dist, value } = ac.applySequence(params, obs, restarted, h);
      return mg.add(
        mg.sum(mg.square(value)),
        mg.sum(mg.square((dist as { logits: Tensor }).logits)),
      );
    })(hidden).toFloat64();
    const env0 = byHidden.slice(0, 8), env1 = byHidden.slice(8);
    if (env0.some((g) => g !== 0) || env1.every((g) => g === 0)) {
      throw new Error(`gradients to the initial state: restarted ${env0}, carried ${env1}`);
    }
  } finally {
    mg.setBackend("webgpu");
  }
});

Deno.test("RL²: the jitted, donating update on WebGPU equals the plain float64 one (bandit, MDP; both cells)", async () => {
  await mg.init();
  const mdp = tabularMdp({ states: 3, actions: 2, horizon: 3 });
  for (
    const [env, episodes, cell] of [
      [bernoulliBandit({ arms: 3, horizon: 5 }), 1, {}],
      [mdp, 2, {}],
      [mdp, 2, RL2_CELL],
    ] as const
  ) {
    const config = {
      env,
      episodes,
      numTrials: 4,
      hidden: 6,
      epochs: 2,
      minibatches: 2,
      lr: 1e-2,
      cell,
    };
    const name = `${env.name}${cell === RL2_CELL ? ", pytorch_rl2's cell" : ""}`;
    const [learner, gpuState] = await assertJittedUpdatesMatchFloat64(() => rl2(config), name);
    const compiled = learner as Rl2;
    // the meta-test score: one trial per task, sampled and greedy
    for (const greedy of [false, true]) {
      const tasks = env.sampleTasks(mg.random.key(4), 6);
      const totals = mg.jit((p: unknown, k: Tensor) =>
        compiled.trialReturns(p as never, tasks, k, { greedy })
      )(
        gpuState.params,
        mg.random.key(5),
      );
      if (totals.shape.join() !== "6") throw new Error(`trialReturns shape ${totals.shape}`);
      // per episode: [episodes, 6], summing to the trial's total (same key, same rollout)
      const each = mg.jit((p: unknown, k: Tensor) =>
        compiled.episodeReturns(p as never, tasks, k, { greedy })
      )(gpuState.params, mg.random.key(5));
      if (each.shape.join() !== `${episodes},6`) throw new Error(`episodeReturns ${each.shape}`);
      assertAllClose(
        await mg.sum(each, 0).toFloat64(),
        await totals.toFloat64(),
        { rtol: 1e-5, atol: 1e-5 },
        `${name}: episodes sum to the trial`,
      );
    }
  }
  // box actions (the point robot): each of three 4-step episodes gets its own steps' rewards,
  // every one negative (−distance), none summed into another
  const robot = pointNavigation({ goals: "semicircle", horizon: 4 });
  const r = rl2({ env: robot, episodes: 3, numTrials: 2, hidden: 4, minibatches: 1 });
  const tasks = robot.sampleTasks(mg.random.key(6), 5);
  const each = await r.episodeReturns(r.init(mg.random.key(7)).params, tasks, mg.random.key(8))
    .toFloat64();
  if (!Array.from(each).every((v) => v < 0 && v > -4 * 3)) {
    throw new Error(`point-robot episode returns ${each}`);
  }
});

Deno.test("RL²'s annealed learning rate: Adam's first step moves each weight by the rate; 0 after the annealing; the entropy reported", async () => {
  // Adam's first step (and any step whose gradient keeps its sign) moves a weight by ≈ the rate
  const env = bernoulliBandit({ arms: 2, horizon: 3 });
  const r = rl2({
    env,
    numTrials: 4,
    hidden: 3,
    epochs: 1,
    minibatches: 1,
    lr: 0.01,
    annealUpdates: 2,
    finalLr: 0,
    maxGradNorm: 1e9,
  });
  let state = r.init(mg.random.key(3));
  const moves: number[] = [];
  for (let u = 0; u < 3; u++) {
    const before = await state.params.valueHead.b.item();
    let metrics;
    [state, metrics] = r.update(state);
    moves.push(Math.abs((await state.params.valueHead.b.item()) - before));
    // the policy head starts at 0.01 scale: two arms about equally likely, entropy ≈ log 2
    if (u === 0) assertAllClose([await metrics.entropy.item()], [Math.log(2)], { rtol: 1e-3 });
  }
  // update 0 at 0.01 (Adam's first step: exactly the rate); update 1 at 0.005 (Adam's second
  // step moves at most 1.0015× the rate, whatever the two gradients: Cauchy–Schwarz on its
  // bias-corrected moments); update 2 at 0
  assertAllClose([moves[0]], [0.01], { rtol: 1e-4 });
  if (!(moves[1] > 0 && moves[1] <= 0.005 * 1.0016)) throw new Error(`second move ${moves[1]}`);
  if (moves[2] !== 0) throw new Error(`the rate after the annealing moved a weight by ${moves[2]}`);
});

Deno.test("RL² and the trial environment refuse bad configurations clearly", () => {
  const env = bernoulliBandit();
  assertThrowsWith(() => rl2({} as never), "rl2", "env", "required");
  assertThrowsWith(() => rl2({ env, numTrials: 6, minibatches: 4 }), "rl2", "divide");
  assertThrowsWith(() => rl2({ env, episodes: 0 }), "rl2", "episodes");
  assertThrowsWith(() => rl2({ env, lambda: 2 }), "rl2", "lambda");
  assertThrowsWith(() => rl2({ env, trials: 4 } as never), "rl2", '"trials"');
  assertThrowsWith(() => rl2({ env, annealUpdates: 1.5 }), "rl2", "annealUpdates");
  assertThrowsWith(() => rl2({ env, finalLr: -1 }), "rl2", "finalLr");
  assertThrowsWith(() => rl2({ env, valueLoss: "mse" } as never), "rl2", "valueLoss", "huber");
  assertThrowsWith(() => rl2({ env, separateCritic: 1 } as never), "rl2", "separateCritic");
  assertThrowsWith(() => rl2({ env, cell: 1 } as never), "rl2: cell", "options must be an object");
  assertThrowsWith(() => rl2({ env, cell: { layerNorm: "yes" } } as never), "gruCell", "layerNorm");
  assertThrowsWith(
    () => recurrentActorCritic([3], { kind: "discrete", n: 2 }, { width: 4 } as never),
    "recurrentActorCritic",
    '"width"',
  );
  assertThrowsWith(
    () => trialEnvironment(cartPole(), { episodes: 1.5 }),
    "trialEnvironment",
    "episodes",
  );
  assertThrowsWith(() => trialEnvironment(undefined as never), "trialEnvironment", "env");
  const ac = recurrentActorCritic([3], { kind: "discrete", n: 2 }, { hidden: 4 });
  assertThrowsWith(
    () =>
      ac.applySequence(
        ac.init(mg.random.key(0)),
        mg.zeros([5, 2, 3]),
        mg.zeros([5, 3]),
        ac.initialHidden(2),
      ),
    "applySequence",
    "starts",
  );
});

Deno.test("bandit baselines choose as their formulas say, and score deterministic bandits exactly", async () => {
  await mg.init();
  const s = mg.tensor([1, 0, 3]), n = mg.tensor([2, 1, 4]), t = mg.tensor(7, { dtype: "i32" });
  const argmax = (v: number[]) => v.indexOf(Math.max(...v));
  const sv = [1, 0, 3], nv = [2, 1, 4];
  const expected: Record<string, number> = {
    greedy: argmax(sv.map((x, i) => (x + 1) / (nv[i] + 2))),
    ucb1: argmax(sv.map((x, i) => x / nv[i] + Math.sqrt(2 * Math.log(7) / nv[i]))),
    bayesUcb: argmax(
      sv.map((x, i) => (x + 1) / (nv[i] + 2) + 0.2 * Math.sqrt(2 * Math.log(8) / (nv[i] + 1))),
    ),
  };
  if (expected.ucb1 === expected.greedy) throw new Error("the case should tell UCB1 from greedy");
  for (const [rule, arm] of Object.entries(expected)) {
    const got = await banditRule(rule as BanditRule, 3)(mg.random.key(0), s, n, t).item();
    if (got !== arm) throw new Error(`${rule} chose arm ${got}, expected ${arm}`);
  }
  // UCB1 tries an untried arm first
  const untried = await banditRule("ucb1", 3)(
    mg.random.key(0),
    mg.tensor([5, 0, 0]),
    mg.tensor([5, 1, 0]),
    t,
  ).item();
  if (untried !== 2) throw new Error(`ucb1 chose ${untried} before trying arm 2`);
  // frequencies over 4,000 keys: Thompson's P(Beta(2, 1) > Beta(1, 2)) = 5/6; ε-greedy (ε = 0.5,
  // greedy arm 2 of 3) picks arm 2 with probability 0.5 + 0.5/3; random picks each arm 1/3
  const N = 4000;
  const keys = mg.random.splitStacked(mg.random.key(1), N);
  const frequency = async (choose: BanditChooser, sx: Tensor, nx: Tensor, arm: number) => {
    const arms = await mg.jit((k: Tensor) => mg.vmap((kk: Tensor) => choose(kk, sx, nx, t))(k))(
      keys,
    ).toFloat64();
    return arms.filter((a) => a === arm).length / N;
  };
  const cases: [string, number, number][] = [
    [
      "thompson",
      await frequency(banditRule("thompson", 2), mg.tensor([1, 0]), mg.tensor([1, 1]), 0),
      5 / 6,
    ],
    [
      "epsilonGreedy",
      await frequency(banditRule("epsilonGreedy", 3, { epsilon: 0.5 }), s, n, 2),
      2 / 3,
    ],
    ["random", await frequency(banditRule("random", 3), s, n, 1), 1 / 3],
  ];
  for (const [rule, f, p] of cases) {
    const sd = Math.sqrt(p * (1 - p) / N);
    if (Math.abs(f - p) > 4 * sd) {
      throw new Error(`${rule}: frequency ${f}, expected ${p} ± ${4 * sd}`);
    }
  }
  // arm 0 always pays, the others never: greedy pulls it every time (4), UCB1 tries all three first (2)
  const env = bernoulliBandit({ arms: 3, horizon: 4 });
  const tasks = { p: mg.tensor([[1, 0, 0]]) };
  for (const [rule, total] of [["greedy", 4], ["ucb1", 2]] as const) {
    const got = await banditBaselineReturns(env, banditRule(rule, 3), tasks, mg.random.key(2))
      .toFloat64();
    if (got[0] !== total) throw new Error(`${rule} scored ${got[0]}, expected ${total}`);
  }
});

/** Optimal expected total of a finite-horizon tabular MDP from state 0 (float64 value iteration). */
function optimalValue(P: Float64Array, R: Float64Array, S: number, A: number, H: number): number {
  let v = new Array(S).fill(0);
  for (let h = 0; h < H; h++) {
    v = Array.from({ length: S }, (_, s) =>
      Math.max(...Array.from({ length: A }, (_, a) => {
        let q = R[s * A + a];
        for (let s2 = 0; s2 < S; s2++) q += P[(s * A + a) * S + s2] * v[s2];
        return q;
      })));
  }
  return v[0];
}

Deno.test("PSRL: on small MDPs its later episodes approach the optimal value, far above random", async () => {
  await mg.init();
  const S = 3, A = 3, H = 3, n = 200, episodes = 160;
  const env = tabularMdp({ states: S, actions: A, horizon: H });
  const tasks = env.sampleTasks(mg.random.key(0), n);
  const P = await tasks.transitions.toFloat64(), R = await tasks.rewards.toFloat64();
  let optimal = 0;
  for (let i = 0; i < n; i++) {
    optimal += optimalValue(P.subarray(i * S * A * S), R.subarray(i * S * A), S, A, H) / n;
  }
  const mean = async (t: Tensor) => (await t.toFloat64()).reduce((a, b) => a + b, 0) / n;
  const run = (e: number) =>
    mg.jit((k: Tensor) => psrlReturns(env, tasks, k, { episodes: e }))(mg.random.key(1));
  // the last 80 episodes' mean return: total of 160 minus total of the first 80 (same keys)
  const late = (await mean(run(episodes)) - await mean(run(episodes / 2))) / (episodes / 2);
  const random = await mean(
    rollout(env, randomPolicy(env.actionSpace), null, tasks, mg.random.key(2), { steps: H })
      .reward.sum(0),
  );
  if (!(late > 0.95 * optimal && late > random + 0.5 * (optimal - random))) {
    throw new Error(`PSRL's late episodes return ${late}; optimal ${optimal}, random ${random}`);
  }
  assertThrowsWith(
    () =>
      psrlReturns(bernoulliBandit() as never, { p: mg.zeros([1, 5]) } as never, mg.random.key(0), {
        episodes: 1,
      }),
    "psrlReturns",
    "tabular MDP",
  );
  assertThrowsWith(() => banditRule("ucb2" as never, 3), "banditRule", "rule", "ucb1");
});

/** Two small fixed batches of one task (obs [N, 2], box actions), drawn once. */
function fixedBatch(seed: number, n: number) {
  const k = (i: number) => mg.random.key(seed * 10 + i);
  return {
    obs: mg.random.normal(k(0), [n, 2]),
    action: mg.mul(mg.random.normal(k(1), [n, 2]), 0.1),
    logProb: mg.random.normal(k(2), [n]),
    advantage: mg.random.normal(k(3), [n]),
    episodeReturn: mg.zeros([]),
  };
}

Deno.test("MAML-RL: the meta-gradient through one and two inner steps equals central differences (float64)", async () => {
  mg.setBackend("reference");
  try {
    const env = pointNavigation({ horizon: 4 });
    // (LVC's is not the fixed-sample objective's derivative by design: checked by its formula below)
    for (const innerObjective of ["reinforce"] as const) {
      for (const innerSteps of [1, 2]) {
        const learner = mamlRl({ env, hidden: [3], innerSteps, innerObjective, innerLr: 0.5 });
        const params = learner.init(mg.random.key(1)).params;
        const inner = Array.from({ length: innerSteps }, (_, i) => fixedBatch(i + 1, 6));
        const outer = fixedBatch(9, 6);
        try {
          await mg.checkGrads((p: unknown) => learner.metaObjective(p as never, inner, outer), [
            params,
          ]);
        } catch (e) {
          throw new Error(`${innerObjective}, ${innerSteps} inner steps: ${(e as Error).message}`);
        }
      }
    }
  } finally {
    mg.setBackend("webgpu");
  }
});

Deno.test("MAML-RL: LVC and REINFORCE adapt alike but differ in curvature; first order drops it", async () => {
  mg.setBackend("reference");
  try {
    const env = pointNavigation({ horizon: 4 });
    const make = (o: Partial<MamlRlConfig>) => mamlRl({ env, hidden: [3], innerLr: 0.5, ...o });
    const reinforce = make({}),
      lvc = make({ innerObjective: "lvc" }),
      first = make({ firstOrder: true });
    const params = reinforce.init(mg.random.key(1)).params;
    const inner = [fixedBatch(1, 6)], outer = fixedBatch(9, 6);
    const value = (l: MamlRl) => l.metaObjective(params, inner, outer).item();
    const grad = (l: MamlRl) =>
      mg.grad((p: unknown) => l.metaObjective(p as never, inner, outer))(params);
    // the same adapted policy (the two inner losses have the same gradient at θ)
    assertAllClose([await value(lvc)], [await value(reinforce)], { rtol: 1e-12 }, "objective");
    const [gr] = mg.tree.flatten<Tensor>(grad(reinforce));
    const [gl] = mg.tree.flatten<Tensor>(grad(lvc));
    const [gf] = mg.tree.flatten<Tensor>(grad(first));
    const flat = async (ts: Tensor[]) =>
      (await Promise.all(ts.map((t) => t.toFloat64()))).flatMap((a) => [...a]);
    const [r, l, f] = [await flat(gr), await flat(gl), await flat(gf)];
    const gap = (a: number[], b: number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i])));
    // first order: the outer objective's gradient at the adapted parameters
    const adapted = mg.tree.map(
      (w: Tensor, g: Tensor) => mg.sub(w, mg.mul(g, 0.5)),
      params,
      mg.grad((p: unknown) => {
        const d = reinforce.network.apply(p as never, inner[0].obs).dist;
        return mg.neg(mg.mean(mg.mul(actionLogProb(d, inner[0].action), inner[0].advantage)));
      })(params),
    );
    const atAdapted = mg.grad((p: unknown) => {
      const d = reinforce.network.apply(p as never, outer.obs).dist;
      const ratio = mg.exp(mg.sub(actionLogProb(d, outer.action), outer.logProb));
      return mg.mean(mg.mul(ratio, outer.advantage));
    })(adapted);
    assertAllClose(f, await flat(mg.tree.flatten<Tensor>(atAdapted)[0]), {
      rtol: 1e-9,
      atol: 1e-12,
    }, "first order");
    if (!(gap(r, f) > 1e-6)) throw new Error("the second-order terms should change the gradient");
    // LVC adds the score-function curvature: g_LVC − g_REINFORCE = α/N Σ Aᵢ ∇log πᵢ (∇log πᵢ · ∇J(θ'))
    const logProbOf = (p: unknown, obs: Tensor, action: Tensor) =>
      actionLogProb(
        reinforce.network.apply(p as never, mg.expandDims(obs, 0)).dist,
        mg.expandDims(action, 0),
      );
    const scores = mg.vmap(
      (o: Tensor, a: Tensor) =>
        ravelTree(mg.grad((p: unknown) => mg.sum(logProbOf(p, o, a)))(params))[0],
    )(inner[0].obs, inner[0].action); // [N, P]
    const gFirst = ravelTree(atAdapted)[0];
    const weights = mg.mul(
      mg.matmul(scores, mg.reshape(gFirst, [-1, 1])),
      mg.reshape(inner[0].advantage, [-1, 1]),
    );
    const extra = mg.mul(mg.sum(mg.mul(scores, weights), 0), 0.5 / 6);
    const diff = mg.sub(ravelTree(grad(lvc))[0], ravelTree(grad(reinforce))[0]);
    assertAllClose(
      await diff.toFloat64(),
      await extra.toFloat64(),
      { rtol: 1e-8, atol: 1e-12 },
      "LVC's extra curvature",
    );
    if (!(gap(r, l) > 1e-6)) throw new Error("LVC's meta-gradient should differ from REINFORCE's");
  } finally {
    mg.setBackend("webgpu");
  }
});

Deno.test("MAML-RL: the jitted meta-step equals the eager one; rollouts match float64; the KL bound holds", async () => {
  await mg.init();
  const config = {
    env: pointNavigation({ horizon: 10 }),
    metaBatch: 2,
    trajectories: 4,
    hidden: [6],
    damping: 0.1,
  };
  mg.setBackend("reference");
  const plain = mamlRl(config);
  const start = plain.init(mg.random.key(3));
  const [, rm] = plain.update(start);
  mg.setBackend("webgpu");
  const compiled = mamlRl(config);
  const onGpu = await onBackend(start, "webgpu");
  const [e, em] = compiled.update(onGpu);
  const [g, gm] = mg.jit(compiled.update)(onGpu);
  // the same f32 program, eager and compiled (the jit path found the loop-cap bug)
  await assertTreesClose(g, e, "state after a meta-step (jit vs eager)", {
    rtol: 2e-3,
    atol: 2e-5,
  });
  await assertTreesClose(gm, em, "metrics (jit vs eager)", { rtol: 2e-3, atol: 2e-5 });
  // the pre-adaptation rollouts draw the same actions as float64; later values pass through a
  // ridge fit and conjugate gradient that f32 rounding moves by a few percent
  assertAllClose(
    [await gm.preReturn.item()],
    [await rm.preReturn.item()],
    { rtol: 1e-5 },
    "pre-adaptation return",
  );
  for (const [m, where] of [[rm, "float64"], [gm, "webgpu"]] as const) {
    if (!((await m.stepFraction.item()) > 0)) {
      throw new Error(`${where}: the line search rejected every step`);
    }
    if (!((await m.kl.item()) <= 0.01 * 1.0001)) {
      throw new Error(`${where}: KL ${await m.kl.item()} over the bound`);
    }
  }
  // a fresh initialisation's adaptation curve: [steps + 1, tasks]
  const tasks = config.env.sampleTasks(mg.random.key(4), 4);
  const curve = mg.jit((p: unknown, k: Tensor) =>
    compiled.adaptationReturns(p as never, tasks, k, 2)
  )(
    compiled.init(mg.random.key(5)).params,
    mg.random.key(6),
  );
  if (curve.shape.join() !== "3,4") throw new Error(`adaptation curve shape ${curve.shape}`);
  if ((await curve.toFloat64()).some((v) => !Number.isFinite(v))) {
    throw new Error("non-finite returns");
  }
  assertThrowsWith(
    () => mamlRl({ env: config.env, innerObjective: "dice" as never }),
    "mamlRl",
    "innerObjective",
  );
  assertThrowsWith(() => mamlRl({ env: config.env, innerLr: -1 }), "mamlRl", "innerLr");
  assertThrowsWith(() => mamlRl({} as never), "mamlRl", "env");
});

Deno.test("PEARL: the product of Gaussian factors and its KL to the prior equal their closed forms", async () => {
  for (const backend of ["webgpu", "reference"] as const) {
    if (backend === "webgpu") await mg.init();
    mg.setBackend(backend);
    const [B, N, D] = [3, 4, 2];
    const mu = randomValues([B, N, D], "f32", 11, -2, 2),
      v = randomValues([B, N, D], "f32", 12, 0.1, 3);
    const { mean, variance } = productOfGaussians(
      mg.tensor(mu, [B, N, D]),
      mg.tensor(v, [B, N, D]),
    );
    // by hand: multiply the densities one factor at a time (the conjugate update of a Gaussian)
    const wantMean: number[] = [], wantVar: number[] = [], wantKl: number[] = [];
    for (let b = 0; b < B; b++) {
      let kl = 0;
      for (let j = 0; j < D; j++) {
        let m = mu[(b * N) * D + j], s2 = v[(b * N) * D + j];
        for (let i = 1; i < N; i++) {
          const m2 = mu[(b * N + i) * D + j], t2 = v[(b * N + i) * D + j];
          [m, s2] = [(m * t2 + m2 * s2) / (s2 + t2), (s2 * t2) / (s2 + t2)];
        }
        wantMean.push(m);
        wantVar.push(s2);
        kl += 0.5 * (s2 + m * m - 1 - Math.log(s2));
      }
      wantKl.push(kl);
    }
    const tol = { rtol: 1e-5, atol: 1e-6 };
    assertAllClose(await mean.toFloat64(), wantMean, tol, `${backend}: posterior mean`);
    assertAllClose(await variance.toFloat64(), wantVar, tol, `${backend}: posterior variance`);
    assertAllClose(
      await klToStandardNormal(mean, variance).toFloat64(),
      wantKl,
      tol,
      `${backend}: KL`,
    );
  }
  mg.setBackend("webgpu");
  assertThrowsWith(
    () => productOfGaussians(mg.zeros([3, 2]), mg.zeros([3, 3])),
    "productOfGaussians",
    "shape",
  );
});

Deno.test("PEARL: collecting and training, jitted on WebGPU, equal the plain float64 run; meta-test from the prior", async () => {
  await mg.init();
  const config = {
    env: pointNavigation({ goals: "semicircle", horizon: 5 }),
    trainTasks: 3,
    hidden: [8],
    encoderHidden: [6],
    bufferSize: 40,
    metaBatch: 2,
    batchSize: 6,
    contextSize: 4,
    latentDim: 2,
  };
  const [learner, state] = await assertJittedUpdatesMatchFloat64(() => {
    const l = pearl(config);
    return {
      init: l.init,
      update: (s: PearlState): [PearlState, unknown] =>
        l.train(l.collect(l.collect(s, 5, "prior"), 5, "posterior"), 3),
      pearl: l,
    };
  }, "PEARL");
  const p = (learner as unknown as { pearl: Pearl }).pearl;
  const tasks = config.env.sampleTasks(mg.random.key(8), 4);
  const returns = mg.jit((params: unknown, k: Tensor) =>
    p.adaptationReturns(params as never, tasks, k, 2)
  )(
    state.params,
    mg.random.key(9),
  );
  if (returns.shape.join() !== "2,4") throw new Error(`adaptation returns shape ${returns.shape}`);
  // every stored next observation is where the step went, x + clip(a, ±0.1), also at the
  // 5-step time limits where the environment restarted
  const filled = (await state.buffers.size.toFloat64())[0];
  if (filled < 10) throw new Error(`PEARL buffers hold ${filled} transitions`);
  const rows = state.buffers.data;
  const [obs, next, act] = await Promise.all(
    [rows.obs, rows.nextObs, rows.action].map((t) => mg.slice(t, [null, [0, filled]]).toFloat64()),
  );
  assertAllClose(
    Array.from(next),
    Array.from(obs, (x, i) => x + Math.min(0.1, Math.max(-0.1, act[i]))),
    { rtol: 1e-5, atol: 1e-6 },
    "PEARL next observations across time limits",
  );
  // context buffers: "replace" keeps only the new transitions, "none" leaves them out
  const before = (await state.buffers.size.toFloat64())[0];
  const replaced = p.collect(state, 4, "prior", "replace");
  const kept = p.collect(replaced, 3, "posterior", "none");
  const sizes = await Promise.all(
    [replaced.contexts.size, kept.contexts.size, kept.buffers.size].map((t) => t.toFloat64()),
  );
  if (![...sizes[0], ...sizes[1]].every((n) => n === 4)) {
    throw new Error(`context buffers hold ${sizes[0]} then ${sizes[1]} transitions, not 4`);
  }
  if (!sizes[2].every((n) => n === before + 7)) throw new Error(`replay sizes ${sizes[2]}`);
  assertAllClose(
    await mg.slice(kept.contexts.data.obs, [null, [0, 4]]).toFloat64(),
    await mg.slice(kept.buffers.data.obs, [null, [before, before + 4]]).toFloat64(),
    { rtol: 0, atol: 0 },
    "the context buffer holds the prior episode's transitions",
  );
  assertThrowsWith(() => p.collect(state, 5, "prior", "keep" as never), "collect", "context");
  // sparse goals: the critics' stored reward is the dense −distance, the context's the sparse one
  const sparse = pearl({
    ...config,
    env: pointNavigation({ goals: "semicircle", reward: "sparse", horizon: 5 }),
    useTrainingReward: true,
  });
  const s1 = sparse.collect(sparse.init(mg.random.key(10)), 5, "random");
  const goal = await mg.repeat(mg.expandDims((s1.tasks as { goal: Tensor }).goal, 1), 5, 1)
    .toFloat64();
  const [nextObs, dense, sparseR] = await Promise.all(
    [s1.buffers.data.nextObs, s1.buffers.data.trainingReward!, s1.buffers.data.reward].map((t) =>
      mg.slice(t, [null, [0, 5]]).toFloat64()
    ),
  );
  const distance = Array.from(
    dense,
    (_, i) => Math.hypot(nextObs[2 * i] - goal[2 * i], nextObs[2 * i + 1] - goal[2 * i + 1]),
  );
  assertAllClose(Array.from(dense), distance.map((d) => -d), {}, "dense training reward");
  assertAllClose(Array.from(sparseR), distance.map((d) => (d <= 0.2 ? 2 - d : 0)), {}, "sparse");
  assertThrowsWith(
    () => pearl({ ...config, useTrainingReward: true }).collect(state, 5, "prior"),
    "useTrainingReward",
    "gives no trainingReward",
  );
  assertThrowsWith(() => pearl({ env: cartPole() }), "pearl", "box");
  assertThrowsWith(() => pearl({ ...config, encoderHidden: [0] }), "pearl", "encoderHidden[0]");
  assertThrowsWith(() => p.collect(state, 5, "greedy" as never), "collect", "mode");
});
