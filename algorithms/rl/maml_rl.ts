/**
 * MAML for reinforcement learning (Finn et al. 2017): a policy initialisation that one or a few
 * policy-gradient steps adapt to a new task. Each meta-step samples tasks; per task (under
 * `vmap`) it rolls out the policy, takes `innerSteps` vanilla policy-gradient steps against the
 * linear feature baseline (each on fresh trajectories of the adapted policy), and rolls out the
 * adapted policy; the outer update is a TRPO step on the adapted policies' surrogate, whose
 * gradient and Fisher-vector products differentiate through the inner steps (second order; first
 * order as an option). The inner objective is REINFORCE's (MAML's) or ProMP's low-variance
 * curvature (LVC) surrogate (Rothfuss et al. 2019), whose Hessian also counts how the inner
 * step's sampling distribution depends on the parameters. The whole meta-step is one program.
 */
import * as mg from "../../mod.ts";
import type { Tensor } from "../../mod.ts";
import { type Environment, requireEnvironment } from "../../envs/env.ts";
import { resetEnvs, rolloutFrom } from "../../envs/rollout.ts";
import { checkBoolean, checkCount, checkNumber, checkOptions, oneOf } from "../../core/validate.ts";
import { type ActorCritic, actorCritic, type ActorCriticParams } from "./actor_critic.ts";
import { type ActionDist, actionKl, actionLogProb } from "./distributions.ts";
import { linearBaselineAdvantages } from "./linear_baseline.ts";
import { ravelTree } from "./ravel.ts";
import { trustRegionStep } from "./trust_region.ts";

/** Configuration of `mamlRl` (defaults: Finn et al.'s 2D-navigation settings). */
export interface MamlRlConfig {
  /** The environment whose tasks are meta-learned. */
  env: Environment<any, any>;
  /** Tasks per meta-step (default 20). */
  metaBatch?: number;
  /** Trajectories per task for each inner step and for the adapted policy (default 20). */
  trajectories?: number;
  /** Policy-gradient steps of adaptation (default 1). */
  innerSteps?: number;
  /** Their step size α (default 0.1). */
  innerLr?: number;
  /** Drop the second-order terms (the inner gradients are constants to the outer step). */
  firstOrder?: boolean;
  /** The inner objective: "reinforce" (MAML's, default) or "lvc" (ProMP's low-variance curvature). */
  innerObjective?: "reinforce" | "lvc";
  /** Discount (default 0.99). */
  gamma?: number;
  /** GAE λ against the baseline (default 1: Monte Carlo returns minus the baseline). */
  lambda?: number;
  /** The outer step's KL bound δ (default 0.01). */
  maxKl?: number;
  /** Conjugate-gradient iterations (default 10). */
  cgIterations?: number;
  /** Fisher damping (default 1e-5, as pytorch-maml-rl). */
  damping?: number;
  /** Line-search halvings (default 15). */
  backtracks?: number;
  /** Hidden widths of the tanh policy (default [100, 100], the paper's). */
  hidden?: readonly number[];
  /**
   * Initial log-std of a Gaussian policy (default 0: std 1, as rllab's policies in Finn et al.,
   * whose actions the environment clips; the inner step size 0.1 is tuned for that scale — with
   * a std of the actions' own size the mean's gradients are 1/std larger and one step saturates).
   */
  initLogStd?: number;
}

/** What a MAML-RL run carries (all tensors: it vmaps over seeds). */
export interface MamlRlState {
  /** The meta-learned initial policy parameters. */
  params: ActorCriticParams;
  /** The key the next meta-step draws from. */
  key: Tensor;
}

/** What one meta-step reports (device scalars). */
export interface MamlRlMetrics {
  /** Mean episode return of the initial policy on the meta-batch's tasks. */
  preReturn: Tensor;
  /** Mean episode return after the inner steps. */
  postReturn: Tensor;
  /** Mean KL of the outer step. */
  kl: Tensor;
  /** The fraction of the full natural step the line search took (0: rejected). */
  stepFraction: Tensor;
}

/** A batch of one task's trajectories, flattened over steps and trajectories. */
export interface PolicyGradientBatch {
  /** Observations [N, ...obs]. */
  obs: Tensor;
  /** Actions [N, ...]. */
  action: Tensor;
  /** Log-probabilities under the policy that sampled them [N]. */
  logProb: Tensor;
  /** Normalised advantages against the linear baseline [N]. */
  advantage: Tensor;
  /** Mean episode return of the batch (the trajectories fill whole episodes). */
  episodeReturn: Tensor;
}

/** A MAML-RL learner. */
export interface MamlRl {
  /** The configuration, defaults filled in. */
  readonly config:
    & Readonly<Required<Omit<MamlRlConfig, "env" | "initLogStd">>>
    & { env: Environment<any, any> };
  /** The policy network (no critic: the baseline is fitted per batch). */
  readonly network: ActorCritic;
  /** A fresh run from a key. */
  init(key: Tensor): MamlRlState;
  /** One meta-step: per-task adaptation, post-adaptation rollouts, the TRPO outer step. */
  update(state: MamlRlState): [MamlRlState, MamlRlMetrics];
  /**
   * Meta-test: each task's mean episode return before adaptation and after each of `steps`
   * inner steps (the same rule as training: fresh trajectories, one policy-gradient step on
   * them) — [steps + 1, n] for n tasks. Works for any initial parameters (a baseline's too).
   */
  adaptationReturns(params: ActorCriticParams, tasks: unknown, key: Tensor, steps: number): Tensor;
  /**
   * The outer surrogate objective of fixed batches as a function of the initial parameters
   * (what the outer step differentiates): inner batches [innerSteps] and the adapted policy's
   * batch, one task. For checking the meta-gradient against finite differences.
   */
  metaObjective(
    params: ActorCriticParams,
    inner: readonly PolicyGradientBatch[],
    outer: PolicyGradientBatch,
  ): Tensor;
}

const MAML_RL_OPTIONS = [
  "env",
  "metaBatch",
  "trajectories",
  "innerSteps",
  "innerLr",
  "firstOrder",
  "innerObjective",
  "gamma",
  "lambda",
  "maxKl",
  "cgIterations",
  "damping",
  "backtracks",
  "hidden",
  "initLogStd",
];

/** One task's leaves with a leading axis of 1 (what the rollout functions take). */
const oneTask = (task: unknown) => mg.tree.map((t: Tensor) => mg.expandDims(t, 0), task);

/**
 * MAML-RL with a VPG inner loop and a TRPO outer loop.
 *
 * @example
 * ```ts
 * import { jit, random } from "@metagrad/metagrad";
 * import { mamlRl } from "@metagrad/metagrad/algorithms";
 * import { pointNavigation } from "@metagrad/metagrad/envs";
 * const learner = mamlRl({ env: pointNavigation({ horizon: 10 }), metaBatch: 4, trajectories: 4, hidden: [16] });
 * const step = jit(learner.update, { donateArgnums: [0] });
 * let state = learner.init(random.key(0));
 * [state] = step(state);
 * ```
 */
export function mamlRl(config: MamlRlConfig): MamlRl {
  const where = "mamlRl";
  checkOptions(config, where, MAML_RL_OPTIONS);
  requireEnvironment(config?.env, where);
  const env = config.env;
  const cfg = {
    env,
    metaBatch: checkCount(config.metaBatch, 20, "metaBatch", where),
    trajectories: checkCount(config.trajectories, 20, "trajectories", where),
    innerSteps: checkCount(config.innerSteps, 1, "innerSteps", where),
    innerLr: checkNumber(config.innerLr ?? 0.1, "innerLr", where, { min: 0 }),
    firstOrder: checkBoolean(config.firstOrder ?? false, "firstOrder", where),
    innerObjective: oneOf(
      config.innerObjective ?? "reinforce",
      ["reinforce", "lvc"] as const,
      "innerObjective",
      where,
    ),
    gamma: checkNumber(config.gamma ?? 0.99, "gamma", where, { min: 0, max: 1 }),
    lambda: checkNumber(config.lambda ?? 1, "lambda", where, { min: 0, max: 1 }),
    maxKl: checkNumber(config.maxKl ?? 0.01, "maxKl", where, { min: 0, exclusiveMin: true }),
    cgIterations: checkCount(config.cgIterations, 10, "cgIterations", where),
    damping: checkNumber(config.damping ?? 1e-5, "damping", where, { min: 0 }),
    backtracks: checkCount(config.backtracks, 15, "backtracks", where),
    hidden: config.hidden ?? [100, 100],
  };
  const net = actorCritic(env.observationShape, env.actionSpace, {
    hidden: cfg.hidden,
    initLogStd: checkNumber(config.initLogStd ?? 0, "initLogStd", where),
    critic: false,
  });
  const T = env.maxSteps;
  const distOf = (p: ActorCriticParams, obs: Tensor): ActionDist => net.apply(p, obs).dist;

  /** `trajectories` whole episodes of one task (leading axis 1) under `params`, flattened. */
  const sample = (params: ActorCriticParams, task1: unknown, key: Tensor): PolicyGradientBatch => {
    const [kReset, kRun] = mg.random.split(key);
    const b = cfg.trajectories;
    const envs = resetEnvs(env, task1, kReset, b);
    const [last, tr] = rolloutFrom(env, net.policy, params, envs, task1, kRun, T);
    const start = mg.zeros([b], { dtype: "i32", backend: key.backend });
    const { advantages } = linearBaselineAdvantages(tr, last.obs, start, cfg.gamma, cfg.lambda);
    const flat = (t: Tensor) => mg.reshape(t, [T * b, ...t.shape.slice(2)]);
    const a = flat(advantages);
    return {
      obs: flat(tr.obs),
      action: flat(tr.action),
      logProb: flat(tr.logProb!),
      advantage: mg.div(mg.sub(a, mg.mean(a)), mg.add(mg.std(a), 1e-8)),
      episodeReturn: mg.div(mg.sum(tr.reward), b),
    };
  };

  /** The inner loss of a batch: −E[log π·Â] (REINFORCE) or −E[π/⊥π·Â] (LVC). */
  const innerLoss = (p: ActorCriticParams, d: PolicyGradientBatch) => {
    const logProb = actionLogProb(distOf(p, d.obs), d.action);
    const weight = cfg.innerObjective === "lvc"
      ? mg.exp(mg.sub(logProb, mg.stopGradient(logProb)))
      : logProb;
    return mg.neg(mg.mean(mg.mul(weight, d.advantage)));
  };
  const innerGrad = mg.grad(innerLoss);
  const innerStep = (p: ActorCriticParams, d: PolicyGradientBatch, firstOrder: boolean) => {
    const g = innerGrad(p, d);
    return mg.tree.map(
      (w: Tensor, gw: Tensor) =>
        mg.sub(w, mg.mul(firstOrder ? mg.stopGradient(gw) : gw, cfg.innerLr)),
      p,
      g,
    ) as ActorCriticParams;
  };
  const adapt = (p: ActorCriticParams, batches: readonly PolicyGradientBatch[]) =>
    batches.reduce((q, d) => innerStep(q, d, cfg.firstOrder), p);

  /** The adapted policy's importance-weighted advantage on its own batch. */
  const metaObjective = (
    p: ActorCriticParams,
    inner: readonly PolicyGradientBatch[],
    outer: PolicyGradientBatch,
  ) => {
    const logProb = actionLogProb(distOf(adapt(p, inner), outer.obs), outer.action);
    return mg.mean(mg.mul(mg.exp(mg.sub(logProb, outer.logProb)), outer.advantage));
  };

  const update = (s: MamlRlState): [MamlRlState, MamlRlMetrics] => {
    const [key, kTasks, kRun] = mg.random.split(s.key, 3);
    const tasks = env.sampleTasks(kTasks, cfg.metaBatch);
    // per task: the inner batches (each from the policy adapted so far) and the adapted batch
    const collect = (task: unknown, k: Tensor) => {
      const keys = mg.random.split(k, cfg.innerSteps + 1);
      const inner: PolicyGradientBatch[] = [];
      let p = s.params;
      for (let i = 0; i < cfg.innerSteps; i++) {
        inner.push(sample(p, oneTask(task), keys[i]));
        p = innerStep(p, inner[i], true);
      }
      return { inner, outer: sample(p, oneTask(task), keys[cfg.innerSteps]) };
    };
    const data = mg.vmap(collect)(tasks, mg.random.splitStacked(kRun, cfg.metaBatch)) as {
      inner: PolicyGradientBatch[];
      outer: PolicyGradientBatch;
    };
    const [theta, unravel] = ravelTree(s.params);
    const perTask = <R>(f: (p: ActorCriticParams, d: typeof data) => R) => (v: Tensor) =>
      mg.vmap((p: ActorCriticParams, d: typeof data) => f(p, d), { inAxes: [null, 0] })(
        unravel(v),
        data,
      ) as R;
    const surrogate = (v: Tensor) =>
      mg.mean(perTask((p, d) => metaObjective(p, d.inner, d.outer))(v));
    // the adapted policies before the step: constants to the step (computed outside it)
    const heads = (d: ActionDist) => d.kind === "categorical" ? [d.logits] : [d.mean, d.logStd];
    const fromHeads = (h: Tensor[]): ActionDist =>
      h.length === 1
        ? { kind: "categorical", logits: h[0] }
        : { kind: "gaussian", mean: h[0], logStd: h[1] };
    const oldHeads = perTask((p, d) => heads(distOf(adapt(p, d.inner), d.outer.obs)))(theta);
    const meanKl = (v: Tensor) =>
      mg.mean(
        mg.vmap(
          (p: ActorCriticParams, d: typeof data, old: Tensor[]) =>
            mg.mean(actionKl(fromHeads(old), distOf(adapt(p, d.inner), d.outer.obs))),
          { inAxes: [null, 0, 0] },
        )(unravel(v), data, oldHeads),
      );
    const step = trustRegionStep(theta, surrogate, meanKl, cfg);
    return [{ params: unravel(step.theta), key }, {
      preReturn: mg.mean(data.inner[0].episodeReturn),
      postReturn: mg.mean(data.outer.episodeReturn),
      kl: step.kl,
      stepFraction: step.fraction,
    }];
  };

  return {
    config: cfg,
    network: net,
    init(key) {
      const [kNet, kRun] = mg.random.split(key);
      return { params: net.init(kNet), key: kRun };
    },
    update,
    adaptationReturns(params, tasks, key, steps) {
      checkNumber(steps, "steps", "mamlRl.adaptationReturns", { min: 0, integer: true });
      const n = mg.tree.leaves<Tensor>(tasks)[0]?.shape[0] ?? 1;
      const one = (task: unknown, k: Tensor) => {
        const keys = mg.random.split(k, steps + 1);
        const returns: Tensor[] = [];
        let p = params;
        for (let i = 0; i <= steps; i++) {
          const d = sample(p, oneTask(task), keys[i]);
          returns.push(d.episodeReturn);
          if (i < steps) p = innerStep(p, d, true);
        }
        return mg.stack(returns);
      };
      return mg.moveAxis(mg.vmap(one)(tasks, mg.random.splitStacked(key, n)), 0, 1);
    },
    metaObjective,
  };
}
