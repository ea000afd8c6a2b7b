/**
 * The environment interface every RL environment implements: pure functions of explicit keys,
 * states and tasks, one environment per call, batched with `vmap`, stepped with `scan`,
 * compiled with `jit` — so a batch of whole rollouts is one submission and nothing is read
 * back until a learner wants a number (the gymnax design). Written for meta-learning: the task
 * (a bandit's arm probabilities, a goal) is an explicit argument, drawn by `sampleTasks`.
 */
import type { Tensor } from "../core/tensor.ts";
import * as random from "../core/random.ts";
import { where } from "../core/ops/math.ts";
import { map as mapTree } from "../core/tree.ts";
import { fmtShape } from "../core/shape.ts";

/** Discrete actions 0 … n − 1 (an i32 scalar per environment). */
export interface DiscreteSpace {
  /** Discrete actions. */
  kind: "discrete";
  /** Number of actions. */
  n: number;
}

/** Continuous actions: an f32 tensor of `shape` within [low, high] elementwise. */
export interface BoxSpace {
  /** Continuous actions. */
  kind: "box";
  /** Shape of one action. */
  shape: readonly number[];
  /** Lower bound of every element. */
  low: number;
  /** Upper bound of every element. */
  high: number;
}

/** What an environment's actions are. */
export type ActionSpace = DiscreteSpace | BoxSpace;

/** What `reset` returns: the first observation and the state to step from. */
export interface ResetResult<S> {
  /** Observation, `observationShape`, f32. */
  obs: Tensor;
  /** The environment's state (a pytree of tensors). */
  state: S;
}

/** What `step` returns. */
export interface StepResult<S> {
  /** Observation after the step, f32 of `observationShape`. */
  obs: Tensor;
  /** The next state. */
  state: S;
  /** Reward of the step, an f32 scalar. */
  reward: Tensor;
  /** Whether the episode ended at this step (terminated or cut at the time limit), bool scalar. */
  done: Tensor;
  /**
   * Whether it ended because the task did (a fallen pole), not the time limit: value targets
   * bootstrap through a time limit but not through a termination. Bool scalar.
   */
  terminated: Tensor;
  /**
   * Set by `autoReset` only: the observation the step reached, before any reset (equal to `obs`
   * unless the episode ended) — what a value target at a time limit bootstraps from.
   */
  finalObs?: Tensor;
  /**
   * A denser reward than `reward` that a learner may train on where the task's reward (what is
   * scored) is sparse — PEARL's sparse point robot gives −distance here, as Rakelly et al.
   * meta-train the critics on it while the encoder and the score see the sparse reward. Only
   * environments that document it give one. f32 scalar.
   */
  trainingReward?: Tensor;
}

/**
 * A reinforcement-learning environment as pure single-environment functions. S is the state
 * pytree, T the task pytree. Batch with `vmap` (over keys, states, actions and tasks); no
 * function reads values back.
 */
export interface Environment<S = unknown, T = unknown> {
  /** Name for messages, e.g. "CartPole-v1". */
  readonly name: string;
  /** Shape of one observation (f32). */
  readonly observationShape: readonly number[];
  /** The action space. */
  readonly actionSpace: ActionSpace;
  /** Steps after which an episode ends (time limit). */
  readonly maxSteps: number;
  /** `n` tasks, a pytree whose leaves have a leading axis n (an empty object for one task). */
  sampleTasks(key: Tensor, n: number): T;
  /** A fresh episode of `task`. */
  reset(key: Tensor, task: T): ResetResult<S>;
  /** One step from `state` with `action` (i32 scalar, or f32 of the box's shape). */
  step(key: Tensor, state: S, action: Tensor, task: T): StepResult<S>;
}

/**
 * Continuing rollouts: when a step ends its episode, the returned state and observation are a
 * fresh episode's (reset with a key derived from the step's), while reward and done are the
 * finished step's — as gymnax's auto-reset does — and `finalObs` is the observation the finished
 * step reached (off-policy learners store it as the transition's next observation, so a target
 * at a time limit bootstraps from where the episode was cut, not from a fresh start). Pure and
 * batchable like the environment.
 *
 * @example
 * ```ts
 * import { random, tensor } from "@metagrad/metagrad";
 * import { autoReset, cartPole } from "@metagrad/metagrad/envs";
 * const env = autoReset(cartPole());
 * const task = env.sampleTasks(random.key(0), 1);
 * const { state } = env.reset(random.key(1), task);
 * const next = env.step(random.key(2), state, tensor(1, { dtype: "i32" }), task);
 * ```
 */
export function autoReset<S, T>(env: Environment<S, T>): Environment<S, T> {
  return {
    ...env,
    name: env.name,
    step(key, state, action, task) {
      const [kStep, kReset] = random.split(key);
      const next = env.step(kStep, state, action, task);
      const fresh = env.reset(kReset, task);
      const pick = (a: Tensor, b: Tensor) => where(next.done, a, b);
      return {
        obs: pick(fresh.obs, next.obs),
        state: mapTree(pick, fresh.state, next.state) as S,
        reward: next.reward,
        done: next.done,
        terminated: next.terminated,
        finalObs: next.obs,
        ...(next.trainingReward ? { trainingReward: next.trainingReward } : {}),
      };
    },
  };
}

/**
 * Throws a clear error unless `action` fits `env`'s action space for one environment: an i32
 * scalar for a discrete space, an f32 tensor of the box's shape otherwise. Values are not read
 * (that would stall the device): discrete actions outside 0 … n − 1 are clamped, box actions
 * clipped, as each environment's docs say.
 */
export function checkAction(env: { name: string; actionSpace: ActionSpace }, action: Tensor): void {
  const space = env.actionSpace;
  if (space.kind === "discrete") {
    if (action.ndim !== 0 || (action.dtype !== "i32" && action.dtype !== "u32")) {
      throw new TypeError(
        `${env.name}.step: a discrete action is an i32 scalar per environment, got ` +
          `${action.dtype}${fmtShape(action.shape)} (vmap the step over environments; cast ` +
          `sampled actions with cast(a, "i32"))`,
      );
    }
    return;
  }
  if (action.dtype !== "f32" || action.shape.join() !== space.shape.join()) {
    throw new TypeError(
      `${env.name}.step: an action is f32${fmtShape(space.shape)} per environment, got ` +
        `${action.dtype}${fmtShape(action.shape)}`,
    );
  }
}

/** Throws unless `n` is a positive integer count of tasks. */
export function checkTaskCount(n: number, where: string): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`${where}.sampleTasks: n must be a positive integer, got ${n}`);
  }
}

/**
 * The `env` option of a learner, checked: present and shaped like an `Environment`.
 *
 * @example
 * ```ts
 * import { cartPole, requireEnvironment } from "@metagrad/metagrad/envs";
 * const env = requireEnvironment(cartPole(), "myLearner");
 * ```
 */
export function requireEnvironment(env: unknown, where: string): Environment<any, any> {
  const e = env as Partial<Environment> | undefined;
  if (!e || typeof e.step !== "function" || typeof e.reset !== "function") {
    throw new TypeError(
      `${where}: the option env is required (an environment such as cartPole()), got ${
        e === undefined ? "nothing" : typeof e
      }`,
    );
  }
  return env as Environment<any, any>;
}

/** What `requireBoxActions` returns: the box and the flat sizes of an action and an observation. */
export interface BoxActions {
  /** The action space. */
  space: BoxSpace;
  /** Elements of one action. */
  actDim: number;
  /** Elements of one observation. */
  obsDim: number;
}

/**
 * Throws a clear error unless `env` has a box action space (continuous-control learners: SAC,
 * PEARL); returns the box and the flat action and observation sizes.
 *
 * @example
 * ```ts
 * import { pendulum, requireBoxActions } from "@metagrad/metagrad/envs";
 * const { actDim, obsDim } = requireBoxActions(pendulum(), "myLearner"); // 1, 3
 * ```
 */
export function requireBoxActions(env: Environment<any, any>, where: string): BoxActions {
  if (env.actionSpace.kind !== "box") {
    throw new TypeError(
      `${where}: ${env.name} has discrete actions; ${where} needs a box action space`,
    );
  }
  const space = env.actionSpace;
  return {
    space,
    actDim: space.shape.reduce((a, b) => a * b, 1),
    obsDim: env.observationShape.reduce((a, b) => a * b, 1),
  };
}
