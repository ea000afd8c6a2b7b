/**
 * The action distributions policies output, with what learners need of them: sampling,
 * log-probabilities, entropy and KL divergence in closed form. Categorical over logits for
 * discrete actions; diagonal Gaussian for box actions (state-independent log-std, as in PPO
 * and TRPO).
 */
import * as mg from "../../mod.ts";
import type { Tensor } from "../../mod.ts";

/** Logits [B, n] over n actions. */
export interface CategoricalDist {
  /** Which distribution this is. */
  kind: "categorical";
  /** Unnormalised log-probabilities [B, n]. */
  logits: Tensor;
}

/** A diagonal Gaussian: means [B, d] and log standard deviations broadcastable to them. */
export interface GaussianDist {
  /** Which distribution this is. */
  kind: "gaussian";
  /** Means [B, d]. */
  mean: Tensor;
  /** Log standard deviations, broadcastable to the means ([d] for a state-independent std). */
  logStd: Tensor;
}

/** A batch of action distributions. */
export type ActionDist = CategoricalDist | GaussianDist;

/**
 * Actions drawn from each distribution of the batch: i32 [B], or f32 [B, d].
 *
 * @example
 * ```ts
 * import { random, tensor } from "@metagrad/metagrad";
 * import { sampleAction } from "@metagrad/metagrad/algorithms";
 * sampleAction({ kind: "categorical", logits: tensor([[0, 0], [5, 0]]) }, random.key(0)); // i32 [2]
 * ```
 */
export function sampleAction(dist: ActionDist, key: Tensor): Tensor {
  if (dist.kind === "categorical") return mg.random.categorical(key, dist.logits);
  const noise = mg.random.normal(key, dist.mean.shape);
  return mg.add(dist.mean, mg.mul(mg.exp(dist.logStd), noise));
}

/**
 * log π(action) for each distribution of the batch, [B].
 *
 * @example
 * ```ts
 * import { tensor } from "@metagrad/metagrad";
 * import { actionLogProb } from "@metagrad/metagrad/algorithms";
 * actionLogProb({ kind: "categorical", logits: tensor([[0, 0]]) }, tensor([1], { dtype: "i32" })); // [log ½]
 * ```
 */
export function actionLogProb(dist: ActionDist, action: Tensor): Tensor {
  if (dist.kind === "categorical") return mg.nn.categoricalLogProb(dist.logits, action);
  return mg.nn.gaussianLogProb(action, dist.mean, mg.broadcastTo(dist.logStd, dist.mean.shape));
}

/**
 * Entropy of each distribution of the batch, [B].
 *
 * @example
 * ```ts
 * import { tensor } from "@metagrad/metagrad";
 * import { actionEntropy } from "@metagrad/metagrad/algorithms";
 * actionEntropy({ kind: "categorical", logits: tensor([[0, 0]]) }); // [log 2]
 * ```
 */
export function actionEntropy(dist: ActionDist): Tensor {
  if (dist.kind === "categorical") return mg.nn.categoricalEntropy(dist.logits);
  return mg.nn.gaussianEntropy(mg.broadcastTo(dist.logStd, dist.mean.shape));
}

/**
 * KL(p ‖ q) per pair of distributions of the batch, [B] (same kind and shapes).
 *
 * @example
 * ```ts
 * import { tensor } from "@metagrad/metagrad";
 * import { actionKl } from "@metagrad/metagrad/algorithms";
 * actionKl({ kind: "categorical", logits: tensor([[0, 1]]) }, { kind: "categorical", logits: tensor([[0, 0]]) });
 * ```
 */
export function actionKl(p: ActionDist, q: ActionDist): Tensor {
  if (p.kind === "categorical" && q.kind === "categorical") {
    return mg.nn.categoricalKl(p.logits, q.logits);
  }
  if (p.kind === "gaussian" && q.kind === "gaussian") {
    const s = p.mean.shape;
    return mg.nn.gaussianKl(
      p.mean,
      mg.broadcastTo(p.logStd, s),
      q.mean,
      mg.broadcastTo(q.logStd, s),
    );
  }
  throw new TypeError(`actionKl: distributions of different kinds (${p.kind} and ${q.kind})`);
}
