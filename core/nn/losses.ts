/** Losses and distributions, numerically stable, differentiable to any order. */
import type { Tensor } from "../tensor.ts";
import { abs, add, cast, equal, exp, log1p, mul, neg, relu, square, sub } from "../ops/math.ts";
import { argmax, logSoftmax, mean, softmax, sum } from "../ops/reduce.ts";
import { pickAlongAxis } from "../ops/indexing.ts";

/**
 * Mean squared error. @example
 * ```ts
 * import { nn, tensor } from "@metagrad/metagrad";
 * nn.mse(tensor([1, 2]), tensor([1, 4])); // 2
 * ```
 */
export function mse(pred: Tensor, target: Tensor): Tensor {
  return mean(square(sub(pred, target)));
}

/**
 * Mean cross-entropy of logits [..., C] against integer labels [...] (i32) or one-hot /
 * probability targets [..., C], through log-softmax (stable for large logits).
 *
 * @example
 * ```ts
 * import { nn, tensor } from "@metagrad/metagrad";
 * nn.softmaxCrossEntropy(tensor([[2, 0, 0]]), tensor([0], { dtype: "i32" }));
 * ```
 */
export function softmaxCrossEntropy(logits: Tensor, labels: Tensor): Tensor {
  const logp = logSoftmax(logits, -1);
  if (labels.dtype === "f32") return mean(neg(sum(mul(labels, logp), -1)));
  return mean(neg(pickAlongAxis(logp, cast(labels, "i32"), -1)));
}

/**
 * Fraction of rows whose argmax matches the integer label.
 *
 * @example
 * ```ts
 * import { nn, tensor } from "@metagrad/metagrad";
 * nn.accuracy(tensor([[2, 0], [0, 3]]), tensor([0, 0], { dtype: "i32" })); // 0.5
 * ```
 */
export function accuracy(logits: Tensor, labels: Tensor): Tensor {
  return mean(cast(equal(argmax(logits, -1), cast(labels, "i32")), "f32"));
}

/**
 * Binary cross-entropy from logits: max(x, 0) − x·y + log(1 + e^−|x|).
 *
 * @example
 * ```ts
 * import { nn, tensor } from "@metagrad/metagrad";
 * nn.binaryCrossEntropyWithLogits(tensor([3, -3]), tensor([1, 0]));
 * ```
 */
export function binaryCrossEntropyWithLogits(logits: Tensor, targets: Tensor): Tensor {
  return mean(add(sub(relu(logits), mul(logits, targets)), log1p(exp(neg(abs(logits))))));
}

/**
 * log N(x; mean, exp(logStd)²) of a diagonal Gaussian, summed over the last axis.
 *
 * @example
 * ```ts
 * import { nn, tensor } from "@metagrad/metagrad";
 * nn.gaussianLogProb(tensor([0.5]), tensor([0]), tensor([0]));
 * ```
 */
export function gaussianLogProb(x: Tensor, mu: Tensor, logStd: Tensor): Tensor {
  const z = mul(sub(x, mu), exp(neg(logStd)));
  return sum(sub(neg(add(mul(square(z), 0.5), logStd)), 0.5 * Math.log(2 * Math.PI)), -1);
}

/**
 * Entropy of a diagonal Gaussian, summed over the last axis.
 *
 * @example
 * ```ts
 * import { nn, tensor } from "@metagrad/metagrad";
 * nn.gaussianEntropy(tensor([0, 0]));
 * ```
 */
export function gaussianEntropy(logStd: Tensor): Tensor {
  return sum(add(logStd, 0.5 * (1 + Math.log(2 * Math.PI))), -1);
}

/**
 * KL(p ‖ q) between diagonal Gaussians, summed over the last axis.
 *
 * @example
 * ```ts
 * import { nn, tensor } from "@metagrad/metagrad";
 * nn.gaussianKl(tensor([0]), tensor([0]), tensor([1]), tensor([0]));
 * ```
 */
export function gaussianKl(muP: Tensor, logStdP: Tensor, muQ: Tensor, logStdQ: Tensor): Tensor {
  const varRatio = exp(mul(sub(logStdP, logStdQ), 2));
  const meanTerm = mul(square(sub(muP, muQ)), exp(mul(logStdQ, -2)));
  return sum(mul(sub(add(add(varRatio, meanTerm), mul(sub(logStdQ, logStdP), 2)), 1), 0.5), -1);
}

/**
 * log p(action) under categorical logits [..., C] for integer actions [...].
 *
 * @example
 * ```ts
 * import { nn, tensor } from "@metagrad/metagrad";
 * nn.categoricalLogProb(tensor([[0, 0]]), tensor([1], { dtype: "i32" })); // log 0.5
 * ```
 */
export function categoricalLogProb(logits: Tensor, actions: Tensor): Tensor {
  return pickAlongAxis(logSoftmax(logits, -1), cast(actions, "i32"), -1);
}

/**
 * Entropy of categorical logits [..., C].
 *
 * @example
 * ```ts
 * import { nn, tensor } from "@metagrad/metagrad";
 * nn.categoricalEntropy(tensor([[0, 0]])); // log 2
 * ```
 */
export function categoricalEntropy(logits: Tensor): Tensor {
  return neg(sum(mul(softmax(logits, -1), logSoftmax(logits, -1)), -1));
}

/**
 * KL(p ‖ q) between categorical logits [..., C].
 *
 * @example
 * ```ts
 * import { nn, tensor } from "@metagrad/metagrad";
 * nn.categoricalKl(tensor([[0, 1]]), tensor([[0, 0]]));
 * ```
 */
export function categoricalKl(logitsP: Tensor, logitsQ: Tensor): Tensor {
  const lp = logSoftmax(logitsP, -1);
  return sum(mul(exp(lp), sub(lp, logSoftmax(logitsQ, -1))), -1);
}
