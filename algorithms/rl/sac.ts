/**
 * Soft actor-critic (Haarnoja et al. 2018, with learned temperature) for box actions: a
 * tanh-squashed Gaussian policy, twin Q networks with Polyak-averaged targets, and a replay
 * buffer on the device. One `train` call runs `steps` environment steps, each followed by one
 * gradient step, as a `scan` — so a chunk of training is one program and one submission.
 * Time limits are not terminations: targets bootstrap through them (`StepResult.terminated`).
 */
import * as mg from "../../mod.ts";
import type { Tensor } from "../../mod.ts";
import {
  autoReset,
  type Environment,
  requireBoxActions,
  requireEnvironment,
} from "../../envs/env.ts";
import { type EnvBatch, resetEnvs, tasksPerEnv } from "../../envs/rollout.ts";
import { checkCount, checkNumber, checkOptions } from "../../core/validate.ts";
import type { GradientTransformation } from "../../core/optim/optim.ts";
import { denseNetwork } from "./actor_critic.ts";
import {
  addTransitions,
  type ReplayBuffer,
  replayBuffer,
  sampleTransitions,
} from "./replay_buffer.ts";
import { trackEpisodeReturns } from "./returns.ts";
import { squashedGaussianMean, squashedGaussianSample } from "./squashed_gaussian.ts";
import {
  entropyTarget,
  polyakAverage,
  softActorObjective,
  softActorStep,
  softBellmanTarget,
} from "./soft_updates.ts";

/** Configuration of `sac`. */
export interface SacConfig {
  /** The environment (box actions). */
  env: Environment<any, any>;
  /** Parallel environments (default 1). */
  numEnvs?: number;
  /** Replay capacity in transitions (default 100,000). */
  bufferSize?: number;
  /** Transitions per gradient step (default 256). */
  batchSize?: number;
  /** Adam learning rate of the actor, the critics and the temperature (default 3e-4). */
  lr?: number;
  /** Discount (default 0.99). */
  gamma?: number;
  /** Polyak rate of the target critics (default 0.005). */
  tau?: number;
  /** Hidden widths of the ReLU actor and critics (default [256, 256]). */
  hidden?: readonly number[];
  /**
   * Entropy target in the box's units (default −1 per action dimension of the box rescaled to
   * [−1, 1]: `entropyTarget`).
   */
  targetEntropy?: number;
  /** Initial temperature α (default 1). */
  initAlpha?: number;
}

/** SAC's networks' parameters. */
export interface SacNetworks {
  /** The squashed-Gaussian policy. */
  actor: unknown;
  /** The first critic. */
  q1: unknown;
  /** The second critic. */
  q2: unknown;
}

/** Everything a SAC run carries (all tensors). */
export interface SacState {
  /** The actor's and the two critics' parameters. */
  params: SacNetworks;
  /** Target critics. */
  target: { q1: unknown; q2: unknown };
  /** log α, the entropy temperature's logarithm. */
  logAlpha: Tensor;
  /** The three optimizers' states. */
  opt: { actor: unknown; critic: unknown; alpha: unknown };
  /** The replay buffer. */
  buffer: ReplayBuffer<Transition>;
  /** The environments between calls. */
  envs: EnvBatch<unknown>;
  /** The task the environments run, one row per environment. */
  tasks: unknown;
  /** The key the next step draws from. */
  key: Tensor;
  /** Return of each environment's episode so far. */
  episodeReturn: Tensor;
  /** Return of each environment's last finished episode. */
  lastReturn: Tensor;
}

/** One stored transition (leaves per environment). */
export interface Transition {
  /** Observation the action was taken from (flattened). */
  obs: Tensor;
  /** The action taken. */
  action: Tensor;
  /** The reward received. */
  reward: Tensor;
  /** The observation the step reached (before any reset: `StepResult.finalObs`). */
  nextObs: Tensor;
  /** 1 where the episode terminated (no bootstrap), else 0. */
  terminal: Tensor;
}

/** What a training chunk reports (device scalars, from its last step). */
export interface SacMetrics {
  /** Mean over environments of the last finished episode's return. */
  episodeReturn: Tensor;
  /** The twin critics' squared TD error. */
  criticLoss: Tensor;
  /** The actor's loss E[α log π − min Q]. */
  actorLoss: Tensor;
  /** The temperature α. */
  alpha: Tensor;
}

/** A SAC learner. */
export interface Sac {
  /** The configuration, defaults filled in. */
  readonly config: Readonly<Required<Omit<SacConfig, "env">>> & { env: Environment<any, any> };
  /** A fresh run from a key (networks, targets, optimizers, buffer, environments). */
  init(key: Tensor): SacState;
  /**
   * `steps` environment steps with actions drawn uniformly (before learning starts), stored in
   * the buffer; no gradient steps.
   */
  explore(state: SacState, steps: number): SacState;
  /** `steps` environment steps from the policy, each followed by one gradient step. */
  train(state: SacState, steps: number): [SacState, SacMetrics];
  /** Mean action (tanh of the mean, scaled) for observations [B, ...obs]: for evaluation. */
  act(params: SacNetworks, obs: Tensor): Tensor;
}

const SAC_OPTIONS = [
  "env",
  "numEnvs",
  "bufferSize",
  "batchSize",
  "lr",
  "gamma",
  "tau",
  "hidden",
  "targetEntropy",
  "initAlpha",
];

/**
 * SAC for an environment with a box action space.
 *
 * @example
 * ```ts
 * import { jit, random } from "@metagrad/metagrad";
 * import { sac } from "@metagrad/metagrad/algorithms";
 * import { pendulum } from "@metagrad/metagrad/envs";
 * const learner = sac({ env: pendulum(), hidden: [64, 64], batchSize: 64 });
 * let state = learner.init(random.key(0));
 * state = jit(learner.explore, { staticArgnums: [1] })(state, 200);
 * const [next, metrics] = jit(learner.train, { staticArgnums: [1] })(state, 100);
 * ```
 */
export function sac(config: SacConfig): Sac {
  const where = "sac";
  checkOptions(config, where, SAC_OPTIONS);
  requireEnvironment(config?.env, where);
  const env = config.env;
  const { space, actDim, obsDim } = requireBoxActions(env, where);
  const cfg = {
    env,
    numEnvs: checkCount(config.numEnvs, 1, "numEnvs", where),
    bufferSize: checkCount(config.bufferSize, 100_000, "bufferSize", where),
    batchSize: checkCount(config.batchSize, 256, "batchSize", where),
    lr: checkNumber(config.lr ?? 3e-4, "lr", where, { min: 0 }),
    gamma: checkNumber(config.gamma ?? 0.99, "gamma", where, { min: 0, max: 1 }),
    tau: checkNumber(config.tau ?? 0.005, "tau", where, { min: 0, max: 1 }),
    hidden: config.hidden ?? [256, 256],
    targetEntropy: entropyTarget(space, actDim, config.targetEntropy, where),
    initAlpha: checkNumber(config.initAlpha ?? 1, "initAlpha", where, {
      min: 0,
      exclusiveMin: true,
    }),
  };
  const actor = denseNetwork([obsDim, ...cfg.hidden, 2 * actDim], mg.relu, 1);
  const critic = denseNetwork([obsDim + actDim, ...cfg.hidden, 1], mg.relu, 1);
  const adam = (): GradientTransformation<any> => mg.optim.adam(cfg.lr);
  const [actorOpt, criticOpt, alphaOpt] = [adam(), adam(), adam()];
  const continuing = autoReset(env);
  const stepAll = mg.vmap((k: Tensor, s: unknown, a: Tensor, t: unknown) =>
    continuing.step(k, s, a, t)
  );

  const flatObs = (o: Tensor) => mg.reshape(o, [o.shape[0], obsDim]);
  /** The squashed Gaussian: actions in the box and their log-probabilities [B]. */
  const policy = (p: unknown, obs: Tensor, key: Tensor) =>
    squashedGaussianSample(actor.module.apply(p, actor.state, flatObs(obs))[0], space, key);
  const q = (p: unknown, obs: Tensor, action: Tensor) =>
    mg.reshape(
      critic.module.apply(
        p,
        critic.state,
        mg.concat([flatObs(obs), mg.reshape(action, [action.shape[0], actDim])], -1),
      )[0],
      [obs.shape[0]],
    );

  /** One environment step of every environment with `actions`, its transitions stored. */
  const envStep = (s: SacState, actions: Tensor, key: Tensor): SacState => {
    const r = stepAll(mg.random.splitStacked(key, cfg.numEnvs), s.envs.state, actions, s.tasks) as {
      obs: Tensor;
      state: unknown;
      reward: Tensor;
      done: Tensor;
      terminated: Tensor;
      finalObs: Tensor;
    };
    // the stored next observation is the one the step reached (`finalObs`), not the next
    // episode's first: a target at a time limit bootstraps from where the episode was cut
    const buffer = addTransitions(s.buffer, {
      obs: s.envs.obs,
      action: actions,
      reward: r.reward,
      nextObs: r.finalObs,
      terminal: mg.cast(r.terminated, "f32"),
    });
    const ep = trackEpisodeReturns(mg.expandDims(r.reward, 0), mg.expandDims(r.done, 0), {
      running: s.episodeReturn,
      last: s.lastReturn,
    });
    return {
      ...s,
      buffer,
      envs: { state: r.state, obs: r.obs },
      episodeReturn: ep.running,
      lastReturn: ep.last,
    };
  };

  const gradientStep = (
    s: SacState,
    key: Tensor,
  ): [SacState, Omit<SacMetrics, "episodeReturn">] => {
    const [kSample, kNext, kNow] = mg.random.split(key, 3);
    const b = sampleTransitions(s.buffer, kSample, cfg.batchSize);
    const alpha = mg.exp(s.logAlpha);
    // critic targets: r + γ(1 − terminal)(min target Q(s', a') − α log π(a'|s')), a' ~ π(s')
    const next = policy(s.params.actor, b.nextObs, kNext);
    const y = softBellmanTarget(
      b.reward,
      b.terminal,
      q(s.target.q1, b.nextObs, next.action),
      q(s.target.q2, b.nextObs, next.action),
      next.logProb,
      alpha,
      cfg.gamma,
    );
    const criticLoss = (c: { q1: unknown; q2: unknown }) =>
      mg.add(
        mg.mean(mg.square(mg.sub(q(c.q1, b.obs, b.action), y))),
        mg.mean(mg.square(mg.sub(q(c.q2, b.obs, b.action), y))),
      );
    const critics = { q1: s.params.q1, q2: s.params.q2 };
    const [cLoss, cGrads] = mg.valueAndGrad(criticLoss)(critics);
    const [cUpdates, cOpt] = criticOpt.update(cGrads, s.opt.critic, critics);
    const newCritics = mg.optim.applyUpdates(critics, cUpdates);
    // actor: E[α log π(a|s) − min Q(s, a)] with a reparameterised, against the updated critics
    const actorLoss = (pa: unknown) => {
      const now = policy(pa, b.obs, kNow);
      const q1 = q(newCritics.q1, b.obs, now.action), q2 = q(newCritics.q2, b.obs, now.action);
      return [softActorObjective(now.logProb, q1, q2, alpha), now.logProb] as [Tensor, Tensor];
    };
    const a = softActorStep(
      actorLoss,
      s.params.actor,
      actorOpt,
      s.opt.actor,
      s.logAlpha,
      alphaOpt,
      s.opt.alpha,
      cfg.targetEntropy,
    );
    return [
      {
        ...s,
        params: { actor: a.actor, q1: newCritics.q1, q2: newCritics.q2 },
        target: polyakAverage(s.target, newCritics, cfg.tau),
        logAlpha: a.logAlpha,
        opt: { actor: a.actorOpt, critic: cOpt, alpha: a.alphaOpt },
      },
      { criticLoss: cLoss, actorLoss: a.loss, alpha: mg.exp(a.logAlpha) },
    ];
  };

  const checkSteps = (steps: number, what: string) =>
    checkNumber(steps, "steps", `${where}.${what}`, { min: 1, integer: true });

  return {
    config: cfg,
    init(key) {
      const [ka, k1, k2, kTask, kEnv, kRun] = mg.random.split(key, 6);
      const params: SacNetworks = {
        actor: actor.module.init(ka).params,
        q1: critic.module.init(k1).params,
        q2: critic.module.init(k2).params,
      };
      const tasks = env.sampleTasks(kTask, 1);
      const envs = resetEnvs(env, tasks, kEnv, cfg.numEnvs);
      const backend = key.backend;
      const example: Transition = {
        obs: mg.zeros([obsDim], { backend }),
        action: mg.zeros([...space.shape], { backend }),
        reward: mg.zeros([], { backend }),
        nextObs: mg.zeros([obsDim], { backend }),
        terminal: mg.zeros([], { backend }),
      };
      const logAlpha = mg.full([], Math.log(cfg.initAlpha), { backend });
      return {
        params,
        target: {
          q1: mg.tree.map((t: Tensor) => mg.add(t, 0), params.q1),
          q2: mg.tree.map((t: Tensor) => mg.add(t, 0), params.q2),
        },
        logAlpha,
        opt: {
          actor: actorOpt.init(params.actor),
          critic: criticOpt.init({ q1: params.q1, q2: params.q2 }),
          alpha: alphaOpt.init(logAlpha),
        },
        buffer: replayBuffer(example, cfg.bufferSize),
        envs: { state: envs.state, obs: mg.reshape(envs.obs, [cfg.numEnvs, obsDim]) },
        tasks: tasksPerEnv(tasks, cfg.numEnvs),
        key: kRun,
        episodeReturn: mg.zeros([cfg.numEnvs], { backend }),
        lastReturn: mg.zeros([cfg.numEnvs], { backend }),
      };
    },
    explore(state, steps) {
      checkSteps(steps, "explore");
      return mg.scan(
        (s: SacState) => {
          const [key, kAct, kEnv] = mg.random.split(s.key, 3);
          const actions = mg.random.uniform(kAct, [cfg.numEnvs, ...space.shape], {
            minval: space.low,
            maxval: space.high,
          });
          return [{ ...envStep(s, actions, kEnv), key }, null] as [SacState, null];
        },
        state,
        null,
        { length: steps },
      )[0];
    },
    train(state, steps) {
      checkSteps(steps, "train");
      const [last, metrics] = mg.scan(
        (s: SacState) => {
          const [key, kAct, kEnv, kGrad] = mg.random.split(s.key, 4);
          const { action } = policy(s.params.actor, s.envs.obs, kAct);
          const stepped = envStep(s, mg.reshape(action, [cfg.numEnvs, ...space.shape]), kEnv);
          const [trained, m] = gradientStep(stepped, kGrad);
          return [{ ...trained, key }, m] as [SacState, Omit<SacMetrics, "episodeReturn">];
        },
        state,
        null,
        { length: steps },
      );
      return [last, {
        episodeReturn: mg.mean(last.lastReturn),
        criticLoss: mg.slice(metrics.criticLoss, [-1]),
        actorLoss: mg.slice(metrics.actorLoss, [-1]),
        alpha: mg.slice(metrics.alpha, [-1]),
      }];
    },
    act(params, obs) {
      const out = actor.module.apply(params.actor, actor.state, flatObs(obs))[0];
      return mg.reshape(squashedGaussianMean(out, space), [obs.shape[0], ...space.shape]);
    },
  };
}
