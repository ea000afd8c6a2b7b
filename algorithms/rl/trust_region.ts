/**
 * The trust-region step of TRPO (Schulman et al. 2015), for any surrogate objective and mean KL
 * written as functions of a flat parameter vector: the natural gradient by conjugate gradient
 * on Fisher-vector products (Hessian-vector products of the mean KL, damped), scaled so the
 * quadratic KL model equals the bound, then a backtracking line search over fractions 1, ½, ¼, …
 * that takes the first candidate whose KL is within the bound and whose surrogate improves —
 * every candidate evaluated in the same program and selected without a read-back. TRPO and
 * MAML-RL's outer loop use it.
 */
import * as mg from "../../mod.ts";
import type { Tensor } from "../../mod.ts";
import { conjugateGradient } from "./conjugate_gradient.ts";

/** Settings of `trustRegionStep`. */
export interface TrustRegionOptions {
  /** The KL bound δ. */
  maxKl: number;
  /** Damping added to the Fisher matrix. */
  damping: number;
  /** Conjugate-gradient iterations. */
  cgIterations: number;
  /** Line-search halvings tried. */
  backtracks: number;
}

/** What `trustRegionStep` returns (device tensors). */
export interface TrustRegionResult {
  /** The parameters after the step (θ itself when every candidate was rejected). */
  theta: Tensor;
  /** The fraction of the full natural step taken (0: rejected). */
  fraction: Tensor;
  /** The mean KL of the step taken. */
  kl: Tensor;
  /** The surrogate's improvement. */
  improvement: Tensor;
}

/**
 * One trust-region step from `theta` maximising `surrogate` subject to `meanKl` ≤ δ.
 *
 * @example
 * ```ts
 * import { square, sub, sum, tensor, type Tensor } from "@metagrad/metagrad";
 * import { trustRegionStep } from "@metagrad/metagrad/algorithms";
 * const target = tensor([1, -1]);
 * const { theta } = trustRegionStep(
 *   tensor([0, 0]),
 *   (v: Tensor) => sum(v.mul(target)), // a linear surrogate
 *   (v: Tensor) => sum(square(sub(v, tensor([0, 0])))).mul(0.5), // a quadratic "KL"
 *   { maxKl: 0.01, damping: 0, cgIterations: 5, backtracks: 5 },
 * ); // a step of KL 0.01 along target
 * ```
 */
export function trustRegionStep(
  theta: Tensor,
  surrogate: (v: Tensor) => Tensor,
  meanKl: (v: Tensor) => Tensor,
  opts: TrustRegionOptions,
): TrustRegionResult {
  const g = mg.grad(surrogate)(theta);
  const fisher = (v: Tensor) => mg.add(mg.hvp(meanKl, theta, v), mg.mul(v, opts.damping));
  const direction = conjugateGradient(fisher, g, { iterations: opts.cgIterations });
  const shs = mg.sum(mg.mul(direction, fisher(direction)));
  const fullStep = mg.mul(direction, mg.sqrt(mg.div(2 * opts.maxKl, mg.maximum(shs, 1e-12))));
  const before = surrogate(theta);
  let fraction: Tensor = mg.zeros([], { backend: theta.backend });
  let found: Tensor = mg.zeros([], { dtype: "bool", backend: theta.backend });
  for (let k = 0; k < opts.backtracks; k++) {
    const f = 0.5 ** k;
    const candidate = mg.add(theta, mg.mul(fullStep, f));
    const ok = mg.logicalAnd(
      mg.lessEqual(meanKl(candidate), opts.maxKl),
      mg.greater(mg.sub(surrogate(candidate), before), 0),
    );
    fraction = mg.where(mg.logicalAnd(ok, mg.logicalNot(found)), f, fraction);
    found = mg.logicalOr(found, ok);
  }
  const next = mg.add(theta, mg.mul(fullStep, fraction));
  return {
    theta: next,
    fraction,
    kl: meanKl(next),
    improvement: mg.sub(surrogate(next), before),
  };
}
