/**
 * Trust-region policy optimisation (Schulman et al. 2015) as one pure, jittable update: roll
 * the environments forward, fit the linear feature baseline to the returns, compute GAE(λ)
 * advantages, then take the natural-gradient step — conjugate gradient on Fisher-vector
 * products (Hessian-vector products of the mean KL) — scaled to the KL bound and shrunk by a
 * backtracking line search until the KL bound holds and the surrogate improves
 * (`trustRegionStep`).
 */
import * as mg from "../../mod.ts";
import type { Tensor } from "../../mod.ts";
import { type Environment, requireEnvironment } from "../../envs/env.ts";
import { type EnvBatch, rolloutFrom } from "../../envs/rollout.ts";
import { startBatchRun } from "./batch_run.ts";
import { checkCount, checkNumber, checkOptions } from "../../core/validate.ts";
import { type ActorCritic, actorCritic, type ActorCriticParams } from "./actor_critic.ts";
import { type ActionDist, actionKl, actionLogProb } from "./distributions.ts";
import { trackEpisodeReturns } from "./returns.ts";
import { linearBaselineAdvantages } from "./linear_baseline.ts";
import { trustRegionStep } from "./trust_region.ts";
import { ravelTree } from "./ravel.ts";

/** Configuration of `trpo`. */
export interface TrpoConfig {
  /** The environment. */
  env: Environment<any, any>;
  /**
   * Fixed tasks (a task pytree with a leading axis that divides numEnvs), e.g. one goal;
   * default: one task drawn by `env.sampleTasks` from the init key.
   */
  tasks?: unknown;
  /** Parallel environments (default 20). */
  numEnvs?: number;
  /** Steps per environment per update (default: the environment's episode length). */
  numSteps?: number;
  /** Discount (default 0.99). */
  gamma?: number;
  /** GAE λ (default 0.97). */
  lambda?: number;
  /** The KL bound δ of a step (default 0.01). */
  maxKl?: number;
  /** Conjugate-gradient iterations (default 10). */
  cgIterations?: number;
  /** Damping added to the Fisher matrix (default 0.1). */
  damping?: number;
  /** Line-search halvings tried (default 10). */
  backtracks?: number;
  /** Hidden widths of the tanh policy (default [64, 64]). */
  hidden?: readonly number[];
  /** Initial log-std of a Gaussian policy (default: log of half the action range). */
  initLogStd?: number;
}

/** What a TRPO run carries between updates. */
export interface TrpoState {
  /** The policy's parameters. */
  params: ActorCriticParams;
  /** The environments between updates. */
  envs: EnvBatch<unknown>;
  /** The tasks the environments run. */
  tasks: unknown;
  /** The key the next update draws from. */
  key: Tensor;
  /** Steps since each environment's episode began [numEnvs] (the baseline's time feature). */
  steps: Tensor;
  /** Return of each environment's episode so far. */
  episodeReturn: Tensor;
  /** Return of each environment's last finished episode (0 before one finishes). */
  lastReturn: Tensor;
}

/** What one update reports (device scalars). */
export interface TrpoMetrics {
  /** Mean over environments of the last finished episode's return. */
  episodeReturn: Tensor;
  /** KL(old ‖ new) of the step taken (0 when the line search rejected every candidate). */
  kl: Tensor;
  /** The surrogate's improvement. */
  improvement: Tensor;
  /** The fraction of the full natural step taken (0: rejected). */
  stepFraction: Tensor;
}

/** A TRPO learner. */
export interface Trpo {
  /** The configuration, defaults filled in. */
  readonly config:
    & Readonly<Required<Omit<TrpoConfig, "env" | "tasks" | "initLogStd">>>
    & TrpoConfig;
  /** The policy network (`critic: false`). */
  readonly network: ActorCritic;
  /** A fresh run from a key (policy, environments, task). */
  init(key: Tensor): TrpoState;
  /** One update: rollout, baseline, GAE, the natural-gradient step. Pure; jit or vmap it. */
  update(state: TrpoState): [TrpoState, TrpoMetrics];
}

const TRPO_OPTIONS = [
  "env",
  "tasks",
  "numEnvs",
  "numSteps",
  "gamma",
  "lambda",
  "maxKl",
  "cgIterations",
  "damping",
  "backtracks",
  "hidden",
  "initLogStd",
];

/**
 * TRPO with a linear feature baseline and GAE.
 *
 * @example
 * ```ts
 * import { jit, random, tensor } from "@metagrad/metagrad";
 * import { trpo } from "@metagrad/metagrad/algorithms";
 * import { pointNavigation } from "@metagrad/metagrad/envs";
 * const learner = trpo({ env: pointNavigation(), tasks: { goal: tensor([[0.3, -0.2]]) } });
 * const update = jit(learner.update, { donateArgnums: [0] });
 * let state = learner.init(random.key(0));
 * [state] = update(state);
 * ```
 */
export function trpo(config: TrpoConfig): Trpo {
  const where = "trpo";
  checkOptions(config, where, TRPO_OPTIONS);
  requireEnvironment(config?.env, where);
  const env = config.env;
  const cfg = {
    ...config,
    numEnvs: checkCount(config.numEnvs, 20, "numEnvs", where),
    numSteps: checkCount(config.numSteps, env.maxSteps, "numSteps", where),
    gamma: checkNumber(config.gamma ?? 0.99, "gamma", where, { min: 0, max: 1 }),
    lambda: checkNumber(config.lambda ?? 0.97, "lambda", where, { min: 0, max: 1 }),
    maxKl: checkNumber(config.maxKl ?? 0.01, "maxKl", where, { min: 0, exclusiveMin: true }),
    cgIterations: checkCount(config.cgIterations, 10, "cgIterations", where),
    damping: checkNumber(config.damping ?? 0.1, "damping", where, { min: 0 }),
    backtracks: checkCount(config.backtracks, 10, "backtracks", where),
    hidden: config.hidden ?? [64, 64],
    initLogStd: config.initLogStd === undefined
      ? undefined
      : checkNumber(config.initLogStd, "initLogStd", where),
  };
  const net = actorCritic(env.observationShape, env.actionSpace, {
    hidden: cfg.hidden,
    initLogStd: cfg.initLogStd,
    critic: false,
  });
  const distOf = (p: ActorCriticParams, obs: Tensor): ActionDist => net.apply(p, obs).dist;

  const update = (s: TrpoState): [TrpoState, TrpoMetrics] => {
    const [key, kRoll] = mg.random.split(s.key);
    const [envs, tr] = rolloutFrom(env, net.policy, s.params, s.envs, s.tasks, kRoll, cfg.numSteps);
    // the baseline: refitted to this batch's returns, then its values for GAE
    const { advantages, nextSteps } = linearBaselineAdvantages(
      tr,
      envs.obs,
      s.steps,
      cfg.gamma,
      cfg.lambda,
    );
    const n = cfg.numEnvs * cfg.numSteps;
    const flat = (t: Tensor) => mg.reshape(t, [n, ...t.shape.slice(2)]);
    const obs = flat(tr.obs), action = flat(tr.action), oldLogProb = flat(tr.logProb!);
    const adv0 = flat(advantages);
    const adv = mg.div(mg.sub(adv0, mg.mean(adv0)), mg.add(mg.std(adv0), 1e-8));

    // the policy's parameters as one vector (the critic's absent: policy only)
    const [theta, unravel] = ravelTree(s.params);
    const oldDist = distOf(s.params, obs);
    const surrogate = (v: Tensor) =>
      mg.mean(
        mg.mul(mg.exp(mg.sub(actionLogProb(distOf(unravel(v), obs), action), oldLogProb)), adv),
      );
    const meanKl = (v: Tensor) => mg.mean(actionKl(oldDist, distOf(unravel(v), obs)));
    const step = trustRegionStep(theta, surrogate, meanKl, cfg);
    const params = unravel(step.theta);
    const episodes = trackEpisodeReturns(tr.reward, tr.done, {
      running: s.episodeReturn,
      last: s.lastReturn,
    });
    const next: TrpoState = {
      params,
      envs,
      tasks: s.tasks,
      key,
      steps: nextSteps,
      episodeReturn: episodes.running,
      lastReturn: episodes.last,
    };
    return [next, {
      episodeReturn: mg.mean(episodes.last),
      kl: step.kl,
      improvement: step.improvement,
      stepFraction: step.fraction,
    }];
  };

  return {
    config: cfg,
    network: net,
    init(key) {
      const { netKey, ...start } = startBatchRun(env, cfg.tasks, cfg.numEnvs, key, where);
      return { params: net.init(netKey), ...start };
    },
    update,
  };
}
