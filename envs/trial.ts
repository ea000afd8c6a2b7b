/**
 * RL²'s trials (Duan et al. 2016): `episodes` consecutive episodes of one task form a trial,
 * and the policy sees, beside each observation, the action it took last, the reward it got and
 * whether the last step ended an episode — what a recurrent policy needs to learn the task
 * within the trial. The trial is itself an environment, so rollouts, auto-reset and learners
 * run it unchanged.
 */
import type { Tensor } from "../core/tensor.ts";
import * as random from "../core/random.ts";
import { full, zeros } from "../core/ops/creation.ts";
import { add, cast, greaterEqual, logicalAnd, where } from "../core/ops/math.ts";
import { oneHot } from "../core/ops/indexing.ts";
import { concat, reshape } from "../core/ops/shape.ts";
import { map as mapTree } from "../core/tree.ts";
import { checkNumber, checkOptions } from "../core/validate.ts";
import { type Environment, requireEnvironment } from "./env.ts";

/** A trial's state: the inner environment's, and how many of its episodes have ended (i32). */
export interface TrialState<S> {
  /** The inner environment's state. */
  inner: S;
  /** Episodes of the trial that have ended (i32). */
  episode: Tensor;
}

/** Options of `trialEnvironment`. */
export interface TrialOptions {
  /** Episodes per trial (RL²'s n; default 1 — a bandit's trial is one episode of n pulls). */
  episodes?: number;
}

/**
 * `env` as RL²'s trial environment: an episode of it is `episodes` episodes of the inner env on
 * one task (the inner env restarts with the same task in between), and its observation is
 * [inner observation (flattened), the previous action (one-hot over discrete actions, the
 * values for box actions), the previous reward, 1 if the previous step ended an inner episode]
 * — zeros for the action, reward and flag at the trial's start. `done` is true only when the
 * trial ends; `terminated` too (nothing follows a trial). maxSteps = episodes × env.maxSteps.
 *
 * @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * import { tabularMdp, trialEnvironment } from "@metagrad/metagrad/envs";
 * const trial = trialEnvironment(tabularMdp(), { episodes: 10 });
 * trial.observationShape; // [10 + 5 + 2]
 * trial.maxSteps; // 100
 * ```
 */
export function trialEnvironment<S, T>(
  env: Environment<S, T>,
  opts: TrialOptions = {},
): Environment<TrialState<S>, T> {
  const where_ = "trialEnvironment";
  requireEnvironment(env, where_);
  checkOptions(opts, where_, ["episodes"]);
  const episodes = checkNumber(opts.episodes ?? 1, "episodes", where_, { min: 1, integer: true });
  const space = env.actionSpace;
  const obsSize = env.observationShape.reduce((a, b) => a * b, 1);
  const actionSize = space.kind === "discrete" ? space.n : space.shape.reduce((a, b) => a * b, 1);
  const encodeAction = (a: Tensor) =>
    space.kind === "discrete" ? oneHot(a, space.n) : reshape(a, [actionSize]);
  const observe = (obs: Tensor, action: Tensor, reward: Tensor, ended: Tensor) =>
    concat([
      reshape(obs, [obsSize]),
      action,
      reshape(reward, [1]),
      reshape(cast(ended, "f32"), [1]),
    ]);
  return {
    name: `${env.name}-trial${episodes}`,
    observationShape: [obsSize + actionSize + 2],
    actionSpace: space,
    maxSteps: episodes * env.maxSteps,
    sampleTasks: (key, n) => env.sampleTasks(key, n),
    reset(key, task) {
      const first = env.reset(key, task);
      const backend = key.backend;
      return {
        obs: observe(
          first.obs,
          zeros([actionSize], { backend }),
          zeros([], { backend }),
          full([], false, { backend }),
        ),
        state: { inner: first.state, episode: full([], 0, { dtype: "i32", backend }) },
      };
    },
    step(key, state, action, task) {
      const [kStep, kReset] = random.split(key);
      const next = env.step(kStep, state.inner, action, task);
      const fresh = env.reset(kReset, task);
      const ended = next.done;
      const episode = add(state.episode, cast(ended, "i32"));
      const trialDone = logicalAnd(ended, greaterEqual(episode, episodes));
      const pick = (a: Tensor, b: Tensor) => where(ended, a, b);
      return {
        obs: observe(pick(fresh.obs, next.obs), encodeAction(action), next.reward, ended),
        state: { inner: mapTree(pick, fresh.state, next.state) as S, episode },
        reward: next.reward,
        done: trialDone,
        terminated: trialDone,
      };
    },
  };
}
