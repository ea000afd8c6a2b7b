/**
 * Environment throughput on the device: CartPole-v1, 1,024 parallel environments stepped under
 * jit + scan (one program per call, nothing read back until the end), with a random policy and
 * with a 64×64 tanh MLP policy in the loop; beside it, the host loop that reads each action
 * back before stepping (what a JS simulator costs here). Prints seconds per 1M environment
 * steps, the first call's time, and the speed-up over the host loop. Run by hand (`--help`).
 */
import { numberOption, parseCommandLine } from "../core/command_line.ts";
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { actorCritic } from "../algorithms/mod.ts";
import { cartPole, type Policy, randomPolicy, resetEnvs, rolloutFrom } from "../envs/mod.ts";

const USAGE =
  `usage: deno run -A bench/rl_throughput.ts [--envs 1024] [--steps 1000] [--host-steps 200]

  --envs        parallel environments
  --steps       steps per environment per measured call (envs × steps per call)
  --host-steps  steps of the host loop (it reads every action: ~10 ms each)`;

const { values } = parseCommandLine(USAGE, {
  options: {
    envs: { type: "string", default: "1024" },
    steps: { type: "string", default: "1000" },
    "host-steps": { type: "string", default: "200" },
  },
});
const B = numberOption("--envs", values.envs, USAGE, { min: 1, integer: true });
const T = numberOption("--steps", values.steps, USAGE, { min: 1, integer: true });
const hostSteps = numberOption("--host-steps", values["host-steps"], USAGE, {
  min: 1,
  integer: true,
});

const info = await mg.init();
const env = cartPole();
const tasks = env.sampleTasks(mg.random.key(0), 1);
const net = actorCritic(env.observationShape, env.actionSpace, { critic: false });
const params = net.init(mg.random.key(1));

async function measure(name: string, policy: Policy<any>, p: unknown) {
  const run = mg.jit((key: Tensor, pp: unknown) =>
    rolloutFrom(env, policy, pp, resetEnvs(env, tasks, key, B), tasks, key, T)[1].reward
  );
  let t0 = performance.now();
  await mg.sum(run(mg.random.key(2), p)).item();
  const first = (performance.now() - t0) / 1000;
  t0 = performance.now();
  const calls = 3;
  let last: Tensor | null = null;
  for (let i = 0; i < calls; i++) last = run(mg.random.key(3 + i), p);
  await mg.sum(last!).item();
  const perMillion = ((performance.now() - t0) / 1000 / calls) / (B * T) * 1e6;
  return { name, first, perMillion };
}

/**
 * The host loop: `b` environments, each step's observations read back before the host picks
 * the next actions. With one environment this is a JS training loop around a device
 * environment; with many, the read is shared by the batch.
 */
async function hostLoop(b: number, steps: number) {
  const stepAll = mg.jit((k: Tensor, s: unknown, a: Tensor) =>
    mg.vmap((kk: Tensor, ss: unknown, aa: Tensor) => env.step(kk, ss as never, aa, {}))(
      mg.random.splitStacked(k, b),
      s,
      a,
    )
  );
  let { state } = resetEnvs(env, tasks, mg.random.key(9), b);
  await stepAll(mg.random.key(99), state, mg.zeros([b], { dtype: "i32" })).obs.data(); // compile
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) {
    // a host-side policy: read the observation... here, the actions it computes on the host
    const actions = new Int32Array(b).map(() => (Math.random() < 0.5 ? 0 : 1));
    const out = stepAll(mg.random.key(100 + i), state, mg.tensor(actions, { dtype: "i32" })) as {
      state: unknown;
      obs: Tensor;
    };
    await out.obs.data(); // the host must see the observation to choose the next action
    state = out.state as typeof state;
  }
  return ((performance.now() - t0) / 1000 / steps) / b * 1e6;
}

const random = await measure("random policy", randomPolicy(env.actionSpace), null);
const mlp = await measure("64×64 tanh MLP policy", net.policy, params);
const host = await hostLoop(B, hostSteps);
const single = await hostLoop(1, Math.min(hostSteps, 100));
console.log(
  `CartPole-v1, ${B} environments × ${T} steps per call, on ${info.description}${
    info.backendHint ? ` (${info.backendHint})` : ""
  }\n`,
);
console.log(
  "| loop | s per 1M env steps | first call (s) | × batched host loop | × one-env host loop |",
);
console.log("| --- | ---: | ---: | ---: | ---: |");
for (const r of [random, mlp]) {
  console.log(
    `| jit + scan, ${r.name} | ${r.perMillion.toFixed(2)} | ${r.first.toFixed(1)} | ${
      (host / r.perMillion).toFixed(1)
    } | ${(single / r.perMillion).toFixed(0)} |`,
  );
}
console.log(`| host loop, ${B} environments per read | ${host.toFixed(1)} | — | 1 | — |`);
console.log(`| host loop, one environment per read | ${single.toFixed(0)} | — | — | 1 |`);
