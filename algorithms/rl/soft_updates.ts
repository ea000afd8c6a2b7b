/**
 * The pieces of a soft actor-critic update that SAC and PEARL share: the soft Bellman target of
 * twin critics, the actor's objective against them, the temperature's step toward its entropy
 * target, and Polyak averaging of target networks.
 */
import * as mg from "../../mod.ts";
import type { Tensor } from "../../mod.ts";
import type { GradientTransformation } from "../../core/optim/optim.ts";
import type { BoxSpace } from "../../envs/env.ts";
import { checkNumber } from "../../core/validate.ts";

/**
 * The entropy target of a tanh-squashed policy on `space` (`actDim` elements): `given`, checked,
 * or by default −1 per action dimension of the box rescaled to [−1, 1] (rlkit's and Stable
 * Baselines' convention), i.e. −actDim + actDim · log((high − low) / 2) in the box's own units —
 * the units of the policy's log-probabilities. A target at or above the box's largest entropy,
 * actDim · log(high − low) (uniform actions), can never be met: the temperature would grow without
 * bound and the policy turn uniformly random, so it is an error.
 *
 * @example
 * ```ts
 * import { entropyTarget } from "@metagrad/metagrad/algorithms";
 * entropyTarget({ kind: "box", shape: [2], low: -0.1, high: 0.1 }, 2, undefined, "sac"); // −2 + 2 log 0.1 ≈ −6.61
 * ```
 */
export function entropyTarget(
  space: BoxSpace,
  actDim: number,
  given: number | undefined,
  where: string,
): number {
  const width = space.high - space.low;
  const target = checkNumber(given ?? actDim * (Math.log(width / 2) - 1), "targetEntropy", where);
  const largest = actDim * Math.log(width);
  if (target >= largest) {
    throw new RangeError(
      `${where}: targetEntropy ${target} is at or above the largest entropy of the action box ` +
        `[${space.low}, ${space.high}]^${actDim}, ${largest.toFixed(3)} (uniform actions); the ` +
        `temperature would grow without bound. Give a smaller target (the default, ` +
        `${(actDim * (Math.log(width / 2) - 1)).toFixed(3)}, is −1 per dimension of the box ` +
        `rescaled to [−1, 1]).`,
    );
  }
  return target;
}

/**
 * r + γ(1 − terminal)(min(Q₁', Q₂') − α log π(a'|s')), as a constant (no gradient flows into it).
 *
 * @example
 * ```ts
 * import { tensor } from "@metagrad/metagrad";
 * import { softBellmanTarget } from "@metagrad/metagrad/algorithms";
 * softBellmanTarget(tensor([1]), tensor([0]), tensor([2]), tensor([3]), tensor([-1]), tensor(0.5), 0.9); // [3.25]
 * ```
 */
export function softBellmanTarget(
  reward: Tensor,
  terminal: Tensor,
  q1Next: Tensor,
  q2Next: Tensor,
  logProbNext: Tensor,
  alpha: Tensor,
  gamma: number,
): Tensor {
  const soft = mg.sub(mg.minimum(q1Next, q2Next), mg.mul(logProbNext, alpha));
  return mg.stopGradient(mg.add(reward, mg.mul(mg.mul(mg.sub(1, terminal), gamma), soft)));
}

/**
 * The actor's loss E[α log π(a|s) − min(Q₁, Q₂)(s, a)] for reparameterised actions a (α held
 * constant: the temperature has its own step).
 *
 * @example
 * ```ts
 * import { tensor } from "@metagrad/metagrad";
 * import { softActorObjective } from "@metagrad/metagrad/algorithms";
 * softActorObjective(tensor([-1, -2]), tensor([3, 1]), tensor([2, 4]), tensor(0.5)); // -2.25
 * ```
 */
export function softActorObjective(
  logProb: Tensor,
  q1: Tensor,
  q2: Tensor,
  alpha: Tensor,
): Tensor {
  return mg.mean(mg.sub(mg.mul(logProb, mg.stopGradient(alpha)), mg.minimum(q1, q2)));
}

/**
 * One optimizer step of log α on −log α · E[log π + target entropy] (its gradient is minus the
 * mean gap): α grows while the policy's entropy is below the target.
 *
 * @example
 * ```ts
 * import { optim, tensor, zeros } from "@metagrad/metagrad";
 * import { temperatureStep } from "@metagrad/metagrad/algorithms";
 * const opt = optim.adam(3e-4);
 * const logAlpha = zeros([]);
 * const [next] = temperatureStep(opt, opt.init(logAlpha), logAlpha, tensor([-3, -2]), -1);
 * ```
 */
export function temperatureStep(
  optimizer: GradientTransformation<any>,
  optState: unknown,
  logAlpha: Tensor,
  logProb: Tensor,
  targetEntropy: number,
): [Tensor, unknown] {
  const gap = mg.stopGradient(mg.mean(mg.add(logProb, targetEntropy)));
  const [updates, next] = optimizer.update(mg.neg(gap), optState, logAlpha);
  return [mg.optim.applyUpdates(logAlpha, updates) as Tensor, next];
}

/** What `softActorStep` returns: the new actor, temperature and their optimizer states. */
export interface SoftActorStep {
  /** The actor's new parameters. */
  actor: unknown;
  /** Its optimizer's new state. */
  actorOpt: unknown;
  /** The new log-temperature. */
  logAlpha: Tensor;
  /** The temperature optimizer's new state. */
  alphaOpt: unknown;
  /** The actor's loss before the step. */
  loss: Tensor;
}

/**
 * One step of the actor on `loss` (the actor's parameters → [loss, log π of its actions], as
 * `softActorObjective` gives it) and of the temperature toward `targetEntropy` on those log π.
 *
 * @example
 * ```ts
 * import { mean, mul, optim, tensor, zeros } from "@metagrad/metagrad";
 * import { softActorStep } from "@metagrad/metagrad/algorithms";
 * const opt = optim.adam(3e-4);
 * const actor = tensor([0.5]), logAlpha = zeros([]);
 * const loss = (w: any) => [mean(mul(w, 2)), tensor([-1, -2])] as [any, any];
 * softActorStep(loss, actor, opt, opt.init(actor), logAlpha, opt, opt.init(logAlpha), -1);
 * ```
 */
export function softActorStep(
  loss: (actor: unknown) => [Tensor, Tensor],
  actor: unknown,
  actorOptimizer: GradientTransformation<any>,
  actorOptState: unknown,
  logAlpha: Tensor,
  alphaOptimizer: GradientTransformation<any>,
  alphaOptState: unknown,
  targetEntropy: number,
): SoftActorStep {
  const [[value, logProb], grads] = mg.valueAndGrad(loss, { hasAux: true })(actor);
  const [updates, actorOpt] = actorOptimizer.update(grads, actorOptState, actor);
  const [nextLogAlpha, alphaOpt] = temperatureStep(
    alphaOptimizer,
    alphaOptState,
    logAlpha,
    logProb,
    targetEntropy,
  );
  return {
    actor: mg.optim.applyUpdates(actor, updates),
    actorOpt,
    logAlpha: nextLogAlpha,
    alphaOpt,
    loss: value,
  };
}

/**
 * Target networks moved a fraction τ toward the current ones: (1 − τ)·target + τ·current.
 *
 * @example
 * ```ts
 * import { tensor } from "@metagrad/metagrad";
 * import { polyakAverage } from "@metagrad/metagrad/algorithms";
 * polyakAverage({ w: tensor([0]) }, { w: tensor([1]) }, 0.1); // { w: [0.1] }
 * ```
 */
export function polyakAverage<T>(target: T, current: T, tau: number): T {
  return mg.tree.map(
    (t: Tensor, c: Tensor) => mg.add(mg.mul(t, 1 - tau), mg.mul(c, tau)),
    target,
    current,
  ) as T;
}
