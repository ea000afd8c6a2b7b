/**
 * The tanh-squashed Gaussian policy head of SAC and PEARL: a network's output [B, 2·d] is a mean
 * and a log-std (clipped to [−5, 2]); an action is tanh(mean + std·ε) scaled into the box, and
 * its log-probability carries the change-of-variables correction of the squashing.
 */
import * as mg from "../../mod.ts";
import type { Tensor } from "../../mod.ts";
import type { BoxSpace } from "../../envs/env.ts";

/**
 * A sampled action [B, d] in `space` (flattened) and its log-probability [B] from the head's
 * output [B, 2·d].
 *
 * @example
 * ```ts
 * import { random, zeros } from "@metagrad/metagrad";
 * import { squashedGaussianSample } from "@metagrad/metagrad/algorithms";
 * const space = { kind: "box" as const, shape: [2], low: -1, high: 1 };
 * const { action, logProb } = squashedGaussianSample(zeros([8, 4]), space, random.key(0)); // [8, 2], [8]
 * ```
 */
export function squashedGaussianSample(
  out: Tensor,
  space: BoxSpace,
  key: Tensor,
): { action: Tensor; logProb: Tensor } {
  const d = out.shape[1] / 2;
  const scale = (space.high - space.low) / 2, center = (space.high + space.low) / 2;
  const mean = mg.slice(out, [null, [0, d]]);
  const logStd = mg.clip(mg.slice(out, [null, [d, 2 * d]]), -5, 2);
  const u = mg.add(mean, mg.mul(mg.exp(logStd), mg.random.normal(key, mean.shape)));
  const squashed = mg.tanh(u);
  const logProb = mg.sub(
    mg.nn.gaussianLogProb(u, mean, logStd),
    mg.sum(mg.log(mg.add(mg.mul(mg.sub(1, mg.square(squashed)), scale), 1e-6)), -1),
  );
  return { action: mg.add(mg.mul(squashed, scale), center), logProb };
}

/**
 * The deterministic action of the head's output [B, 2·d]: tanh of the mean, scaled into the box.
 *
 * @example
 * ```ts
 * import { zeros } from "@metagrad/metagrad";
 * import { squashedGaussianMean } from "@metagrad/metagrad/algorithms";
 * squashedGaussianMean(zeros([8, 4]), { kind: "box", shape: [2], low: -1, high: 1 }); // zeros [8, 2]
 * ```
 */
export function squashedGaussianMean(out: Tensor, space: BoxSpace): Tensor {
  const d = out.shape[1] / 2;
  const scale = (space.high - space.low) / 2, center = (space.high + space.low) / 2;
  return mg.add(mg.mul(mg.tanh(mg.slice(out, [null, [0, d]])), scale), center);
}
