/**
 * Rollouts on the device: a batch of environments (tasks × environments per task) reset with
 * `vmap`, stepped with `scan` under a policy that acts on the whole batch, continuing through
 * episode ends (auto-reset). Wrapped in `jit`, a rollout of any length is one program and one
 * submission; nothing is read back until the caller reads the trajectory.
 */
import type { Tensor } from "../core/tensor.ts";
import * as random from "../core/random.ts";
import { vmap } from "../core/vmap/vmap.ts";
import { scan } from "../core/control/scan.ts";
import { repeat, reshape } from "../core/ops/shape.ts";
import { where } from "../core/ops/math.ts";
import { flatten, map as mapTree } from "../core/tree.ts";
import { fmtShape } from "../core/shape.ts";
import { checkNumber, checkOptions } from "../core/validate.ts";
import { type ActionSpace, autoReset, type Environment } from "./env.ts";

/** What a policy returns for a batch of observations. */
export interface PolicyOutput {
  /** Actions [B] (i32, discrete) or [B, ...shape] (f32, box). */
  action: Tensor;
  /** Log-probabilities of the actions [B], when the policy is stochastic. */
  logProb?: Tensor;
  /** Value estimates [B], for actor-critic learners. */
  value?: Tensor;
}

/** A policy over a batch: parameters, observations [B, ...obs] and a key → actions. */
export type Policy<P> = (params: P, obs: Tensor, key: Tensor) => PolicyOutput;

/** The environments of a rollout between calls: their states and current observations. */
export interface EnvBatch<S> {
  /** Each environment's state, leaves [B, ...]. */
  state: S;
  /** Current observations [B, ...obs]. */
  obs: Tensor;
}

/** A rollout's record, every leaf [T, B, ...]. */
export interface Trajectory {
  /** Observations the actions were chosen from. */
  obs: Tensor;
  /** Actions taken. */
  action: Tensor;
  /** Rewards received [T, B]. */
  reward: Tensor;
  /** Whether each step ended its episode [T, B] (the next observation is then a new episode's). */
  done: Tensor;
  /** Whether it ended by termination rather than the time limit [T, B] (see `StepResult`). */
  terminated: Tensor;
  /** The policy's log-probabilities of its actions [T, B], when it gives them. */
  logProb?: Tensor;
  /** The policy's value estimates [T, B], when it gives them. */
  value?: Tensor;
}

/** Each task's leaves repeated `perTask` times along the leading axis: one row per environment. */
export function tasksPerEnv<T>(tasks: T, perTask: number): T {
  return mapTree((leaf: Tensor) => repeat(leaf, perTask, 0), tasks) as T;
}

/** The number of tasks in a task pytree (its leaves' leading size), or null for `{}`. */
function taskCount(tasks: unknown, where: string): number | null {
  const [leaves] = flatten<Tensor>(tasks);
  if (leaves.length === 0) return null;
  const n = leaves[0].shape[0];
  for (const l of leaves) {
    if (l.ndim === 0 || l.shape[0] !== n) {
      throw new RangeError(
        `${where}: task leaves must share a leading task axis, got ${
          leaves.map((t) => fmtShape(t.shape)).join(", ")
        }`,
      );
    }
  }
  return n;
}

/**
 * Reset `envsPerTask` environments of each task (`envsPerTask` × tasks in all; with a task pytree
 * of `{}`, `envsPerTask` environments of the one task).
 *
 * @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * import { cartPole, resetEnvs } from "@metagrad/metagrad/envs";
 * const env = cartPole();
 * const batch = resetEnvs(env, env.sampleTasks(random.key(0), 1), random.key(1), 16);
 * batch.obs.shape; // [16, 4]
 * ```
 */
export function resetEnvs<S, T>(
  env: Environment<S, T>,
  tasks: T,
  key: Tensor,
  envsPerTask = 1,
): EnvBatch<S> {
  checkNumber(envsPerTask, "envsPerTask", `${env.name} resetEnvs`, { min: 1, integer: true });
  const n = taskCount(tasks, `${env.name} resetEnvs`) ?? 1;
  const perEnv = tasksPerEnv(tasks, envsPerTask);
  const keys = random.splitStacked(key, n * envsPerTask);
  const { obs, state } = vmap((k: Tensor, t: T) => env.reset(k, t))(keys, perEnv) as {
    obs: Tensor;
    state: S;
  };
  return { state, obs };
}

/**
 * Step a batch of environments `steps` times under `policy`, continuing through episode ends
 * (a finished environment restarts, as `autoReset` does); returns the environments after the
 * last step and the trajectory [steps, B, ...]. Tasks are given per task (leading axis n) and
 * repeated for the B / n environments of each. Pure: wrap it in `jit` to run it as one program.
 *
 * @example
 * ```ts
 * import { jit, random, type Tensor } from "@metagrad/metagrad";
 * import { cartPole, randomPolicy, resetEnvs, rolloutFrom } from "@metagrad/metagrad/envs";
 * const env = cartPole();
 * const tasks = env.sampleTasks(random.key(0), 1);
 * const run = jit((key: Tensor) =>
 *   rolloutFrom(env, randomPolicy(env.actionSpace), null, resetEnvs(env, tasks, key, 64), tasks, key, 200)
 * );
 * const [, trajectory] = run(random.key(1)); // trajectory.reward: [200, 64]
 * ```
 */
export function rolloutFrom<S, T, P>(
  env: Environment<S, T>,
  policy: Policy<P>,
  params: P,
  envs: EnvBatch<S>,
  tasks: T,
  key: Tensor,
  steps: number,
): [EnvBatch<S>, Trajectory] {
  // a recurrent rollout whose hidden state is nothing
  const [last, , recorded] = recurrentRolloutFrom(
    env,
    (p: P, obs: Tensor, _h: null, k: Tensor) => ({ ...policy(p, obs, k), hidden: null }),
    params,
    envs,
    null,
    tasks,
    key,
    steps,
  );
  const { hidden: _, ...trajectory } = recorded;
  return [last, trajectory];
}

/** Throws a clear error unless the policy's outputs fit the environment and the batch. */
function checkPolicyOutput(env: Environment<any, any>, out: PolicyOutput, b: number): void {
  const space = env.actionSpace;
  const want = space.kind === "discrete" ? [b] : [b, ...space.shape];
  const dtype = space.kind === "discrete" ? ["i32", "u32"] : ["f32"];
  const a = out?.action;
  if (!a || a.shape.join() !== want.join() || !dtype.includes(a.dtype)) {
    throw new TypeError(
      `${env.name} rollout: the policy must return actions ${dtype[0]}${fmtShape(want)} for ` +
        `${b} environments, got ${a ? `${a.dtype}${fmtShape(a.shape)}` : String(a)}`,
    );
  }
  for (const k of ["logProb", "value"] as const) {
    const t = out[k];
    if (t && t.shape.join() !== String(b)) {
      throw new TypeError(
        `${env.name} rollout: the policy's ${k} must be [${b}], got ${fmtShape(t.shape)}`,
      );
    }
  }
}

/** What a recurrent policy returns: `PolicyOutput` and its next hidden state. */
export interface RecurrentPolicyOutput<H> extends PolicyOutput {
  /** The hidden state after this step (leaves [B, ...]). */
  hidden: H;
}

/** A policy with memory: parameters, observations [B, ...], hidden state, key → actions. */
export type RecurrentPolicy<P, H> = (
  params: P,
  obs: Tensor,
  hidden: H,
  key: Tensor,
) => RecurrentPolicyOutput<H>;

/** Options of `recurrentRolloutFrom`. */
export interface RecurrentRolloutOptions<H> {
  /**
   * The hidden state a finished episode's environment starts its next one with (leaves
   * [B, ...], e.g. zeros). Omitted, the hidden state carries on across episodes — what RL²
   * does within a trial, where it must remember the task.
   */
  resetTo?: H;
}

/**
 * `rolloutFrom` for a policy with memory: the hidden state is carried through the steps (and
 * recorded at the start of each, [T, B, ...], for learners that replay the sequence), reset
 * where an episode ended when `resetTo` is given. Returns the environments, the final hidden
 * state and the trajectory.
 *
 * @example
 * ```ts
 * import { jit, random, zeros, type Tensor } from "@metagrad/metagrad";
 * import { recurrentActorCritic } from "@metagrad/metagrad/algorithms";
 * import { cartPole, recurrentRolloutFrom, resetEnvs } from "@metagrad/metagrad/envs";
 * const env = cartPole();
 * const ac = recurrentActorCritic(env.observationShape, env.actionSpace, { hidden: 16 });
 * const params = ac.init(random.key(0));
 * const run = jit((key: Tensor) =>
 *   recurrentRolloutFrom(env, ac.policy, params, resetEnvs(env, {}, key, 8), zeros([8, 16]), {}, key, 50, {
 *     resetTo: zeros([8, 16]),
 *   })
 * );
 * const [, hidden, trajectory] = run(random.key(1)); // hidden [8, 16], trajectory.hidden [50, 8, 16]
 * ```
 */
export function recurrentRolloutFrom<S, T, P, H>(
  env: Environment<S, T>,
  policy: RecurrentPolicy<P, H>,
  params: P,
  envs: EnvBatch<S>,
  hidden: H,
  tasks: T,
  key: Tensor,
  steps: number,
  opts: RecurrentRolloutOptions<H> = {},
): [EnvBatch<S>, H, Trajectory & { hidden: H }] {
  checkNumber(steps, "steps", `${env.name} rollout`, { min: 1, integer: true });
  const b = envs.obs.shape[0];
  const n = taskCount(tasks, `${env.name} rollout`) ?? 1;
  if (b % n !== 0) {
    throw new RangeError(`${env.name} rollout: ${b} environments for ${n} tasks (not a multiple)`);
  }
  const perEnv = tasksPerEnv(tasks, b / n);
  const continuing = autoReset(env);
  const stepAll = vmap((k: Tensor, s: S, a: Tensor, t: T) => continuing.step(k, s, a, t));
  const resetTo = opts.resetTo;
  type Carry = { state: S; obs: Tensor; hidden: H; key: Tensor };
  const [last, trajectory] = scan(
    (c: Carry) => {
      const [next, kPolicy, kEnv] = random.split(c.key, 3);
      const out = policy(params, c.obs, c.hidden, kPolicy);
      checkPolicyOutput(env, out, b);
      const r = stepAll(random.splitStacked(kEnv, b), c.state, out.action, perEnv) as {
        obs: Tensor;
        state: S;
        reward: Tensor;
        done: Tensor;
        terminated: Tensor;
      };
      const hiddenNext = resetTo === undefined ? out.hidden : mapTree(
        (fresh: Tensor, h: Tensor) =>
          where(reshape(r.done, [b, ...h.shape.slice(1).map(() => 1)]), fresh, h),
        resetTo,
        out.hidden,
      ) as H;
      const record: Trajectory & { hidden: H } = {
        obs: c.obs,
        action: out.action,
        reward: r.reward,
        done: r.done,
        terminated: r.terminated,
        hidden: c.hidden,
      };
      if (out.logProb) record.logProb = out.logProb;
      if (out.value) record.value = out.value;
      return [{ state: r.state, obs: r.obs, hidden: hiddenNext, key: next }, record];
    },
    { state: envs.state, obs: envs.obs, hidden, key },
    null,
    { length: steps },
  );
  return [{ state: last.state, obs: last.obs }, last.hidden, trajectory];
}

/** Options of `rollout`. */
export interface RolloutOptions {
  /** Steps to take. */
  steps: number;
  /** Environments per task (default 1). */
  envsPerTask?: number;
}

/**
 * Reset `envsPerTask` environments per task and roll them out for `steps` steps
 * (`resetEnvs` then `rolloutFrom`); returns the trajectory [steps, B, ...].
 *
 * @example
 * ```ts
 * import { jit, random, type Tensor } from "@metagrad/metagrad";
 * import { bernoulliBandit, randomPolicy, rollout } from "@metagrad/metagrad/envs";
 * const env = bernoulliBandit({ arms: 5, horizon: 10 });
 * const run = jit((tasks: { p: Tensor }, key: Tensor) =>
 *   rollout(env, randomPolicy(env.actionSpace), null, tasks, key, { steps: 10, envsPerTask: 4 })
 * );
 * const trajectory = run(env.sampleTasks(random.key(0), 100), random.key(1)); // reward [10, 400]
 * ```
 */
export function rollout<S, T, P>(
  env: Environment<S, T>,
  policy: Policy<P>,
  params: P,
  tasks: T,
  key: Tensor,
  opts: RolloutOptions,
): Trajectory {
  checkOptions(opts, `${env.name} rollout`, ["steps", "envsPerTask"]);
  const [kReset, kRun] = random.split(key);
  const envs = resetEnvs(env, tasks, kReset, opts.envsPerTask ?? 1);
  return rolloutFrom(env, policy, params, envs, tasks, kRun, opts.steps)[1];
}

/**
 * A policy that ignores its parameters and observations: uniform actions over the space.
 *
 * @example
 * ```ts
 * import { random, zeros } from "@metagrad/metagrad";
 * import { randomPolicy } from "@metagrad/metagrad/envs";
 * const act = randomPolicy({ kind: "discrete", n: 2 });
 * act(null, zeros([8, 4]), random.key(0)).action; // i32 [8]
 * ```
 */
export function randomPolicy(space: ActionSpace): Policy<unknown> {
  return (_params, obs, key) => {
    const b = obs.shape[0];
    if (space.kind === "discrete") return { action: random.randint(key, [b], 0, space.n) };
    return {
      action: random.uniform(key, [b, ...space.shape], { minval: space.low, maxval: space.high }),
    };
  };
}
