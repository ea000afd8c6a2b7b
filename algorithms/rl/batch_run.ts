/**
 * How the batch policy-gradient learners (TRPO, VPG) start a run: networks from one key, the
 * tasks (fixed, or one drawn), the environments reset, and the per-environment counters their
 * updates carry (episode step counts for the baseline's time feature, episode returns).
 */
import * as mg from "../../mod.ts";
import type { Tensor } from "../../mod.ts";
import type { Environment } from "../../envs/env.ts";
import { type EnvBatch, resetEnvs } from "../../envs/rollout.ts";

/** The environment side of a fresh run. */
export interface BatchRunStart {
  /** The key left for the network's initialisation. */
  netKey: Tensor;
  /** The tasks (a task pytree with a leading axis that divides the environments). */
  tasks: unknown;
  /** The environments, reset. */
  envs: EnvBatch<unknown>;
  /** The key the first update draws from. */
  key: Tensor;
  /** Steps since each environment's episode began: zeros [numEnvs] (i32). */
  steps: Tensor;
  /** Return of each environment's episode so far: zeros [numEnvs]. */
  episodeReturn: Tensor;
  /** Return of each environment's last finished episode: zeros [numEnvs]. */
  lastReturn: Tensor;
}

/**
 * Start a run of `numEnvs` environments on `tasks` (or on one task drawn from the key), checking
 * that the tasks divide the environments.
 *
 * @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * import { startBatchRun } from "@metagrad/metagrad/algorithms";
 * import { pointNavigation } from "@metagrad/metagrad/envs";
 * const start = startBatchRun(pointNavigation(), undefined, 8, random.key(0), "myLearner");
 * start.envs.obs.shape; // [8, 2]
 * ```
 */
export function startBatchRun(
  env: Environment<any, any>,
  fixedTasks: unknown,
  numEnvs: number,
  key: Tensor,
  where: string,
): BatchRunStart {
  const [netKey, kTask, kEnv, kRun] = mg.random.split(key, 4);
  const tasks = fixedTasks ?? env.sampleTasks(kTask, 1);
  const rows = mg.tree.leaves<Tensor>(tasks)[0]?.shape[0] ?? 1;
  if (numEnvs % rows !== 0) {
    throw new RangeError(`${where}: ${rows} tasks do not divide numEnvs = ${numEnvs}`);
  }
  const backend = key.backend;
  return {
    netKey,
    tasks,
    envs: resetEnvs(env, tasks, kEnv, numEnvs / rows),
    key: kRun,
    steps: mg.zeros([numEnvs], { dtype: "i32", backend }),
    episodeReturn: mg.zeros([numEnvs], { backend }),
    lastReturn: mg.zeros([numEnvs], { backend }),
  };
}
