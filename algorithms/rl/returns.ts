/**
 * Returns and advantages over trajectories [T, B] (time first, as `rolloutFrom` records them):
 * discounted returns and generalised advantage estimation, each a reverse `scan` — one loop in
 * a compiled program, however long the trajectory. A step with `done` ends its episode: nothing
 * after it is added back (the next observation is a new episode's).
 */
import * as mg from "../../mod.ts";
import type { Tensor } from "../../mod.ts";
import { checkNumber } from "../../core/validate.ts";

function checkTrajectory(where: string, rewards: Tensor, dones: Tensor, last: Tensor): void {
  if (rewards.ndim !== 2 || dones.shape.join() !== rewards.shape.join()) {
    throw new RangeError(
      `${where}: rewards and dones must both be [T, B], got [${rewards.shape}] and [${dones.shape}]`,
    );
  }
  if (last.shape.join() !== String(rewards.shape[1])) {
    throw new RangeError(
      `${where}: the bootstrap value must be [B] = [${rewards.shape[1]}], got [${last.shape}]`,
    );
  }
}

/**
 * Discounted returns G_t = r_t + γ·(1 − done_t)·G_{t+1}, bootstrapped from `lastValue` after
 * the final step (zeros for complete episodes).
 *
 * @example
 * ```ts
 * import { tensor, zeros } from "@metagrad/metagrad";
 * import { discountedReturns } from "@metagrad/metagrad/algorithms";
 * const g = discountedReturns(tensor([[1], [1], [1]]), tensor([[false], [false], [true]]), zeros([1]), 0.9);
 * // [[2.71], [1.9], [1]]
 * ```
 */
export function discountedReturns(
  rewards: Tensor,
  dones: Tensor,
  lastValue: Tensor,
  gamma: number,
): Tensor {
  checkNumber(gamma, "gamma", "discountedReturns", { min: 0, max: 1 });
  checkTrajectory("discountedReturns", rewards, dones, lastValue);
  const keep = mg.sub(1, mg.cast(dones, "f32"));
  const [, returns] = mg.scan(
    (next: Tensor, x: { r: Tensor; k: Tensor }) => {
      const g = mg.add(x.r, mg.mul(mg.mul(next, x.k), gamma));
      return [g, g];
    },
    lastValue,
    { r: rewards, k: keep },
    { reverse: true },
  );
  return returns;
}

/** Advantages and the value targets (advantages + values) of `gae`. */
export interface Advantages {
  /** Â_t [T, B]. */
  advantages: Tensor;
  /** Â_t + V(s_t) [T, B]: the critic's regression targets. */
  targets: Tensor;
}

/**
 * Generalised advantage estimation (Schulman et al. 2016):
 * δ_t = r_t + γ(1 − done_t)V_{t+1} − V_t and Â_t = δ_t + γλ(1 − done_t)Â_{t+1}, with V_T =
 * `lastValue` (the value of the observation after the final step).
 *
 * @example
 * ```ts
 * import { tensor, zeros } from "@metagrad/metagrad";
 * import { gae } from "@metagrad/metagrad/algorithms";
 * const { advantages } = gae(
 *   tensor([[1], [1]]), tensor([[0.5], [0.5]]), tensor([[false], [false]]), zeros([1]), 0.99, 0.95,
 * );
 * ```
 */
export function gae(
  rewards: Tensor,
  values: Tensor,
  dones: Tensor,
  lastValue: Tensor,
  gamma: number,
  lambda: number,
): Advantages {
  checkNumber(gamma, "gamma", "gae", { min: 0, max: 1 });
  checkNumber(lambda, "lambda", "gae", { min: 0, max: 1 });
  checkTrajectory("gae", rewards, dones, lastValue);
  if (values.shape.join() !== rewards.shape.join()) {
    throw new RangeError(`gae: values must be [T, B] like rewards, got [${values.shape}]`);
  }
  const keep = mg.sub(1, mg.cast(dones, "f32"));
  const [, advantages] = mg.scan(
    (c: { adv: Tensor; value: Tensor }, x: { r: Tensor; v: Tensor; k: Tensor }) => {
      const delta = mg.sub(mg.add(x.r, mg.mul(mg.mul(c.value, x.k), gamma)), x.v);
      const adv = mg.add(delta, mg.mul(mg.mul(c.adv, x.k), gamma * lambda));
      return [{ adv, value: x.v }, adv];
    },
    { adv: mg.zerosLike(lastValue), value: lastValue },
    { r: rewards, v: values, k: keep },
    { reverse: true },
  );
  return { advantages, targets: mg.add(advantages, values) };
}

/** Running and last finished episode returns per environment, [B] each. */
export interface EpisodeReturns {
  /** Return of each environment's episode so far. */
  running: Tensor;
  /** Return of each environment's last finished episode (0 before one finishes). */
  last: Tensor;
}

/**
 * Carry episode returns through a trajectory's rewards and dones [T, B]: what learners report
 * as the mean episodic return without reading anything back mid-training.
 *
 * @example
 * ```ts
 * import { tensor, zeros } from "@metagrad/metagrad";
 * import { trackEpisodeReturns } from "@metagrad/metagrad/algorithms";
 * const r = trackEpisodeReturns(tensor([[1], [2], [3]]), tensor([[false], [true], [false]]), {
 *   running: zeros([1]), last: zeros([1]),
 * }); // running [3], last [3]
 * ```
 */
export function trackEpisodeReturns(
  rewards: Tensor,
  dones: Tensor,
  start: EpisodeReturns,
): EpisodeReturns {
  const [end] = mg.scan(
    (c: EpisodeReturns, x: { r: Tensor; d: Tensor }) => {
      const ret = mg.add(c.running, x.r);
      return [{ running: mg.where(x.d, 0, ret), last: mg.where(x.d, ret, c.last) }, null] as [
        EpisodeReturns,
        null,
      ];
    },
    start,
    { r: rewards, d: dones },
  );
  return end;
}
