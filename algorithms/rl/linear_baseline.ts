/**
 * The linear feature baseline of Duan et al. (2016), used by MAML-RL: a value estimate linear
 * in features [obs, obs², t, t², t³, 1] (t = step in the episode / 100), fitted by ridge
 * regression to the returns of a batch of trajectories — refitted per batch, no gradient steps.
 * The normal equations are solved by conjugate gradient (exact for this small system).
 */
import * as mg from "../../mod.ts";
import type { Tensor } from "../../mod.ts";
import { checkNumber } from "../../core/validate.ts";
import { conjugateGradient } from "./conjugate_gradient.ts";
import { discountedReturns, gae } from "./returns.ts";

/**
 * Features of observations [T, B, d] at steps `t` [T, B] (episode-relative step counts):
 * [obs, obs², t/100, (t/100)², (t/100)³, 1], shape [T, B, 2d + 4].
 *
 * @example
 * ```ts
 * import { zeros } from "@metagrad/metagrad";
 * import { baselineFeatures } from "@metagrad/metagrad/algorithms";
 * baselineFeatures(zeros([5, 3, 2]), zeros([5, 3])).shape; // [5, 3, 8]
 * ```
 */
export function baselineFeatures(obs: Tensor, t: Tensor): Tensor {
  if (obs.ndim !== 3 || t.shape.join() !== obs.shape.slice(0, 2).join()) {
    throw new RangeError(
      `baselineFeatures: observations [T, B, d] and steps [T, B], got [${obs.shape}] and [${t.shape}]`,
    );
  }
  const o = mg.clip(obs, -10, 10); // as rllab: features of runaway observations stay bounded
  const s = mg.expandDims(mg.div(mg.cast(t, "f32"), 100), -1);
  return mg.concat([o, mg.square(o), s, mg.square(s), mg.pow(s, 3), mg.onesLike(s)], -1);
}

/**
 * Steps since the start of each episode, [T, B], from a trajectory's `done` flags (an episode
 * starts at step 0 and after every done) and the count the batch began with (`start`, [B]).
 *
 * @example
 * ```ts
 * import { tensor, zeros } from "@metagrad/metagrad";
 * import { episodeSteps } from "@metagrad/metagrad/algorithms";
 * episodeSteps(tensor([[false], [true], [false]]), zeros([1], { dtype: "i32" })); // [[0], [1], [0]]
 * ```
 */
export function episodeSteps(done: Tensor, start: Tensor): Tensor {
  const [, steps] = mg.scan(
    (t: Tensor, d: Tensor) => [mg.where(d, 0, mg.add(t, 1)), t] as [Tensor, Tensor],
    mg.cast(start, "i32"),
    done,
  );
  return steps;
}

/**
 * Fit the baseline to returns [T, B] of observations [T, B, d] at steps [T, B]: the ridge
 * regression weights [2d + 4] minimising ‖Φw − G‖² + reg·‖w‖².
 *
 * @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * import { fitLinearBaseline, linearBaselineValues } from "@metagrad/metagrad/algorithms";
 * const obs = random.normal(random.key(0), [10, 4, 2]);
 * const steps = random.randint(random.key(1), [10, 4], 0, 100);
 * const returns = random.normal(random.key(2), [10, 4]);
 * const w = fitLinearBaseline(obs, steps, returns);
 * const v = linearBaselineValues(w, obs, steps); // [10, 4]
 * ```
 */
export function fitLinearBaseline(obs: Tensor, steps: Tensor, returns: Tensor, reg = 1e-5): Tensor {
  checkNumber(reg, "reg", "fitLinearBaseline", { min: 0 });
  const phi = baselineFeatures(obs, steps);
  const k = phi.shape[2];
  const x = mg.reshape(phi, [-1, k]);
  const y = mg.reshape(returns, [-1]);
  const gram = mg.add(mg.matmul(x, x, { transposeA: true }), mg.mul(mg.eye(k), reg));
  const rhs = mg.reshape(mg.matmul(x, mg.reshape(y, [-1, 1]), { transposeA: true }), [k]);
  // CG in exact arithmetic needs k steps; a few more absorb f32 rounding
  return conjugateGradient(
    (v) => mg.reshape(mg.matmul(gram, mg.reshape(v, [k, 1])), [k]),
    rhs,
    { iterations: 2 * k },
  );
}

/**
 * The baseline's values Φ·w [T, B] with weights from `fitLinearBaseline`.
 *
 * @example
 * ```ts
 * import { zeros } from "@metagrad/metagrad";
 * import { linearBaselineValues } from "@metagrad/metagrad/algorithms";
 * linearBaselineValues(zeros([8]), zeros([5, 3, 2]), zeros([5, 3])).shape; // [5, 3]
 * ```
 */
export function linearBaselineValues(weights: Tensor, obs: Tensor, steps: Tensor): Tensor {
  const phi = baselineFeatures(obs, steps);
  if (weights.shape.join() !== String(phi.shape[2])) {
    throw new RangeError(
      `linearBaselineValues: weights [${weights.shape}] for ${phi.shape[2]} features`,
    );
  }
  return mg.reshape(mg.matmul(phi, mg.reshape(weights, [-1, 1])), phi.shape.slice(0, 2));
}

/** What `linearBaselineAdvantages` returns. */
export interface BaselineAdvantages {
  /** GAE(λ) advantages against the fitted baseline [T, B]. */
  advantages: Tensor;
  /** Each environment's step count after the batch [B] (the next batch's start). */
  nextSteps: Tensor;
}

/**
 * Advantages the way MAML-RL computes them: fit the linear feature baseline to this batch's
 * discounted returns (episodes cut at the batch's end count what they got), then GAE(γ, λ)
 * against its values, bootstrapped from its value of the observation after the batch.
 * `startSteps` [B] are the environments' step counts when the batch began.
 *
 * @example
 * ```ts
 * import { random, zeros } from "@metagrad/metagrad";
 * import { linearBaselineAdvantages } from "@metagrad/metagrad/algorithms";
 * const T = 10, B = 4;
 * const { advantages } = linearBaselineAdvantages(
 *   { obs: random.normal(random.key(0), [T, B, 2]), reward: random.normal(random.key(1), [T, B]),
 *     done: zeros([T, B], { dtype: "bool" }) },
 *   random.normal(random.key(2), [B, 2]), zeros([B], { dtype: "i32" }), 0.99, 1,
 * ); // [10, 4]
 * ```
 */
export function linearBaselineAdvantages(
  trajectory: { obs: Tensor; reward: Tensor; done: Tensor },
  lastObs: Tensor,
  startSteps: Tensor,
  gamma: number,
  lambda: number,
): BaselineAdvantages {
  const { obs, reward, done } = trajectory;
  const b = reward.shape[1];
  const steps = episodeSteps(done, startSteps);
  const nextSteps = mg.slice(mg.where(done, 0, mg.add(steps, 1)), [-1]);
  const returns = discountedReturns(
    reward,
    done,
    mg.zeros([b], { backend: reward.backend }),
    gamma,
  );
  const w = fitLinearBaseline(obs, steps, returns);
  const values = linearBaselineValues(w, obs, steps);
  const lastValue = mg.reshape(
    linearBaselineValues(w, mg.expandDims(lastObs, 0), mg.expandDims(nextSteps, 0)),
    [b],
  );
  return { advantages: gae(reward, values, done, lastValue, gamma, lambda).advantages, nextSteps };
}
