/**
 * Vanilla policy gradient (REINFORCE with a baseline, Williams 1992): roll out, compute
 * advantages against the linear feature baseline (λ = 1: Monte Carlo returns minus the
 * baseline), and take one Adam step on −E[log π(a|s)·Â] — MAML-RL's inner-loop update, here
 * as a learner of its own. One pure update: jit or vmap it.
 */
import * as mg from "../../mod.ts";
import type { Tensor } from "../../mod.ts";
import { type Environment, requireEnvironment } from "../../envs/env.ts";
import { type EnvBatch, rolloutFrom } from "../../envs/rollout.ts";
import { startBatchRun } from "./batch_run.ts";
import { checkCount, checkNumber, checkOptions } from "../../core/validate.ts";
import type { GradientTransformation } from "../../core/optim/optim.ts";
import { type ActorCritic, actorCritic, type ActorCriticParams } from "./actor_critic.ts";
import { actionLogProb } from "./distributions.ts";
import { trackEpisodeReturns } from "./returns.ts";
import { linearBaselineAdvantages } from "./linear_baseline.ts";

/** Configuration of `vpg`. */
export interface VpgConfig {
  /** The environment. */
  env: Environment<any, any>;
  /** Fixed tasks (a task pytree whose leading axis divides numEnvs); default one drawn at init. */
  tasks?: unknown;
  /** Parallel environments (default 20). */
  numEnvs?: number;
  /** Steps per environment per update (default: the environment's episode length). */
  numSteps?: number;
  /** Discount (default 0.99). */
  gamma?: number;
  /** GAE λ against the baseline (default 1: Monte Carlo returns minus the baseline). */
  lambda?: number;
  /** Adam learning rate (default 0.01). */
  lr?: number;
  /** Hidden widths of the tanh policy (default [64, 64]). */
  hidden?: readonly number[];
  /** Initial log-std of a Gaussian policy (default: log of half the action range). */
  initLogStd?: number;
}

/** What a VPG run carries between updates. */
export interface VpgState {
  /** The policy's parameters. */
  params: ActorCriticParams;
  /** Adam's state. */
  opt: unknown;
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
export interface VpgMetrics {
  /** Mean over environments of the last finished episode's return. */
  episodeReturn: Tensor;
  /** The policy-gradient loss of the batch before the step. */
  loss: Tensor;
}

/** A VPG learner. */
export interface Vpg {
  /** The policy network (no critic: the baseline is fitted per batch). */
  readonly network: ActorCritic;
  /** A fresh run from a key. */
  init(key: Tensor): VpgState;
  /** One update: rollout, baseline, advantages, one Adam step. */
  update(state: VpgState): [VpgState, VpgMetrics];
}

const VPG_OPTIONS = [
  "env",
  "tasks",
  "numEnvs",
  "numSteps",
  "gamma",
  "lambda",
  "lr",
  "hidden",
  "initLogStd",
];

/**
 * REINFORCE with the linear feature baseline.
 *
 * @example
 * ```ts
 * import { jit, random, tensor } from "@metagrad/metagrad";
 * import { vpg } from "@metagrad/metagrad/algorithms";
 * import { pointNavigation } from "@metagrad/metagrad/envs";
 * const learner = vpg({ env: pointNavigation(), tasks: { goal: tensor([[0.3, -0.2]]) } });
 * const update = jit(learner.update, { donateArgnums: [0] });
 * let state = learner.init(random.key(0));
 * [state] = update(state);
 * ```
 */
export function vpg(config: VpgConfig): Vpg {
  const where = "vpg";
  checkOptions(config, where, VPG_OPTIONS);
  requireEnvironment(config?.env, where);
  const env = config.env;
  const numEnvs = checkCount(config.numEnvs, 20, "numEnvs", where);
  const numSteps = checkCount(config.numSteps, env.maxSteps, "numSteps", where);
  const gamma = checkNumber(config.gamma ?? 0.99, "gamma", where, { min: 0, max: 1 });
  const lambda = checkNumber(config.lambda ?? 1, "lambda", where, { min: 0, max: 1 });
  const lr = checkNumber(config.lr ?? 0.01, "lr", where, { min: 0 });
  const net = actorCritic(env.observationShape, env.actionSpace, {
    hidden: config.hidden ?? [64, 64],
    initLogStd: config.initLogStd,
    critic: false,
  });
  const optimizer: GradientTransformation<any> = mg.optim.adam(lr);

  const update = (s: VpgState): [VpgState, VpgMetrics] => {
    const [key, kRoll] = mg.random.split(s.key);
    const [envs, tr] = rolloutFrom(env, net.policy, s.params, s.envs, s.tasks, kRoll, numSteps);
    const { advantages, nextSteps } = linearBaselineAdvantages(
      tr,
      envs.obs,
      s.steps,
      gamma,
      lambda,
    );
    const n = numEnvs * numSteps;
    const flat = (t: Tensor) => mg.reshape(t, [n, ...t.shape.slice(2)]);
    const obs = flat(tr.obs), action = flat(tr.action), a0 = flat(advantages);
    const adv = mg.div(mg.sub(a0, mg.mean(a0)), mg.add(mg.std(a0), 1e-8));
    const loss = (p: ActorCriticParams) =>
      mg.neg(mg.mean(mg.mul(actionLogProb(net.apply(p, obs).dist, action), adv)));
    const [value, grads] = mg.valueAndGrad(loss)(s.params);
    const [updates, opt] = optimizer.update(grads, s.opt, s.params);
    const episodes = trackEpisodeReturns(tr.reward, tr.done, {
      running: s.episodeReturn,
      last: s.lastReturn,
    });
    return [{
      params: mg.optim.applyUpdates(s.params, updates),
      opt,
      envs,
      tasks: s.tasks,
      key,
      steps: nextSteps,
      episodeReturn: episodes.running,
      lastReturn: episodes.last,
    }, { episodeReturn: mg.mean(episodes.last), loss: value }];
  };

  return {
    network: net,
    init(key) {
      const { netKey, ...start } = startBatchRun(env, config.tasks, numEnvs, key, where);
      const params = net.init(netKey);
      return { params, opt: optimizer.init(params), ...start };
    },
    update,
  };
}
