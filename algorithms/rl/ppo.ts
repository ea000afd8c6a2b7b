/**
 * Proximal policy optimisation (Schulman et al. 2017) as one pure, jittable update: roll the
 * environments forward `numSteps` under the current policy (a `scan`), compute GAE(λ)
 * advantages (a reverse `scan`), then `epochs` passes of `minibatches` clipped-surrogate
 * gradient steps over the shuffled batch (a `scan` too) — so an update is one program and one
 * submission, and several seeds train at once under `vmap`. Defaults are purejaxrl's CartPole
 * settings.
 */
import * as mg from "../../mod.ts";
import type { Tensor } from "../../mod.ts";
import { type Environment, requireEnvironment } from "../../envs/env.ts";
import { type EnvBatch, resetEnvs, rolloutFrom } from "../../envs/rollout.ts";
import { checkBoolean, checkCount, checkNumber, checkOptions, oneOf } from "../../core/validate.ts";
import type { GradientTransformation } from "../../core/optim/optim.ts";
import { type ActorCritic, actorCritic, type ActorCriticParams } from "./actor_critic.ts";
import { type ActionDist, actionEntropy, actionLogProb } from "./distributions.ts";
import { gae, trackEpisodeReturns } from "./returns.ts";

/** Configuration of `ppo` (defaults: purejaxrl's CartPole-v1 settings). */
export interface PpoConfig {
  /** The environment (its task is drawn once per seed from the init key). */
  env: Environment<any, any>;
  /** Parallel environments (default 4). */
  numEnvs?: number;
  /** Steps per environment per update (default 128). */
  numSteps?: number;
  /** Environment steps in all, for the learning-rate annealing (default 500,000). */
  totalSteps?: number;
  /** Passes over each batch (default 4). */
  epochs?: number;
  /** Minibatches per pass (default 4; must divide numEnvs × numSteps). */
  minibatches?: number;
  /** Adam learning rate (default 2.5e-4). */
  lr?: number;
  /** Anneal the learning rate linearly to 0 over the updates (default true). */
  anneal?: boolean;
  /** Discount (default 0.99). */
  gamma?: number;
  /** GAE λ (default 0.95). */
  lambda?: number;
  /** Surrogate and value clip ε (default 0.2). */
  clip?: number;
  /** Entropy bonus coefficient (default 0.01). */
  entCoef?: number;
  /** Value loss coefficient (default 0.5). */
  vfCoef?: number;
  /** Global gradient-norm clip (default 0.5). */
  maxGradNorm?: number;
  /** Hidden widths of the tanh actor and critic (default [64, 64]). */
  hidden?: readonly number[];
}

/** A batch of PPO's training data: the rollout's observations, actions and their statistics. */
export interface PpoBatch {
  /** Observations [N, ...obs]. */
  obs: Tensor;
  /** Actions taken [N] or [N, ...action]. */
  action: Tensor;
  /** Their log-probabilities under the rollout policy [N]. */
  logProb: Tensor;
  /** The rollout critic's values [N]. */
  value: Tensor;
  /** GAE advantages [N]. */
  advantage: Tensor;
  /** Value targets (advantage + value) [N]. */
  target: Tensor;
}

/**
 * PPO's loss on a batch: −E[min(r·Â, clip(r, 1 ± ε)·Â)] with the advantages normalised over the
 * batch, + vfCoef · ½E[max((V − R)², (V_clip − R)²)] with V_clip = V_old + clip(V − V_old, ±ε)
 * (or the value loss `cfg.valueLoss` names), − entCoef · E[entropy]; with the approximate KL (E[(r − 1) − log r]) and the mean entropy
 * beside it.
 *
 * @example
 * ```ts
 * import { random, zeros, ones } from "@metagrad/metagrad";
 * import { actorCritic, ppoLoss } from "@metagrad/metagrad/algorithms";
 * const net = actorCritic([4], { kind: "discrete", n: 2 });
 * const batch = { obs: zeros([8, 4]), action: zeros([8], { dtype: "i32" }), logProb: zeros([8]),
 *   value: zeros([8]), advantage: random.normal(random.key(1), [8]), target: ones([8]) };
 * const [loss, approxKl] = ppoLoss(net, net.init(random.key(0)), batch,
 *   { clip: 0.2, vfCoef: 0.5, entCoef: 0.01 });
 * ```
 */
export function ppoLoss(
  net: ActorCritic,
  params: ActorCriticParams,
  b: PpoBatch,
  cfg: PpoObjectiveConfig,
): [Tensor, Tensor, Tensor] {
  const { dist, value } = net.apply(params, b.obs);
  return ppoObjective(dist, value, b, cfg);
}

/** The coefficients of `ppoObjective`. */
export interface PpoObjectiveConfig {
  /** Surrogate and value clip ε. */
  clip: number;
  /** Value loss coefficient. */
  vfCoef: number;
  /** Entropy bonus coefficient. */
  entCoef: number;
  /** Normalise the advantages over the batch (default true). */
  normalizeAdvantages?: boolean;
  /**
   * The value's regression (default "clipped"): "clipped" is PPO's ½·max((V − R)², (V_clip − R)²);
   * "squared" ½(V − R)²; "huber" ½(V − R)² within 1 of the target, |V − R| − ½ beyond
   * (pytorch_rl2's). The clip lets each update move a value by at most ε, which stalls a value
   * whose targets are tens — a return summed over a 100-step trial.
   */
  valueLoss?: ValueLoss;
}

/** How `ppoObjective` regresses the value on its targets. */
export type ValueLoss = "clipped" | "squared" | "huber";

/** The value losses `ppoObjective` knows. */
export const VALUE_LOSSES: readonly ValueLoss[] = ["clipped", "squared", "huber"];

/** The mean value loss over the batch (see `PpoObjectiveConfig.valueLoss`). */
function valueRegression(value: Tensor, b: PpoBatch, kind: ValueLoss, clip: number): Tensor {
  const error = mg.sub(value, b.target);
  if (kind === "huber") {
    const size = mg.abs(error);
    return mg.mean(mg.where(mg.less(size, 1), mg.mul(mg.square(error), 0.5), mg.sub(size, 0.5)));
  }
  if (kind === "squared") return mg.mul(mg.mean(mg.square(error)), 0.5);
  const clippedValue = mg.add(b.value, mg.clip(mg.sub(value, b.value), -clip, clip));
  return mg.mul(
    mg.mean(mg.maximum(mg.square(error), mg.square(mg.sub(clippedValue, b.target)))),
    0.5,
  );
}

/**
 * `ppoLoss` given the current policy's action distributions and values [N] on the batch, for
 * networks that compute them another way (a recurrent policy replaying whole sequences).
 *
 * @example
 * ```ts
 * import { random, zeros, ones } from "@metagrad/metagrad";
 * import { ppoObjective } from "@metagrad/metagrad/algorithms";
 * const batch = { obs: zeros([8, 1]), action: zeros([8], { dtype: "i32" }), logProb: zeros([8]),
 *   value: zeros([8]), advantage: random.normal(random.key(1), [8]), target: ones([8]) };
 * const dist = { kind: "categorical" as const, logits: zeros([8, 3]) };
 * const [loss] = ppoObjective(dist, zeros([8]), batch, { clip: 0.2, vfCoef: 0.5, entCoef: 0.01 });
 * ```
 */
export function ppoObjective(
  dist: ActionDist,
  value: Tensor,
  b: PpoBatch,
  cfg: PpoObjectiveConfig,
): [Tensor, Tensor, Tensor] {
  const logProb = actionLogProb(dist, b.action);
  const logRatio = mg.sub(logProb, b.logProb);
  const ratio = mg.exp(logRatio);
  const adv = cfg.normalizeAdvantages === false
    ? b.advantage
    : mg.div(mg.sub(b.advantage, mg.mean(b.advantage)), mg.add(mg.std(b.advantage), 1e-8));
  const surrogate = mg.minimum(
    mg.mul(ratio, adv),
    mg.mul(mg.clip(ratio, 1 - cfg.clip, 1 + cfg.clip), adv),
  );
  const kind = oneOf(cfg.valueLoss ?? "clipped", VALUE_LOSSES, "valueLoss", "ppoObjective");
  const valueLoss = valueRegression(value, b, kind, cfg.clip);
  const entropy = mg.mean(actionEntropy(dist));
  const total = mg.add(
    mg.sub(mg.neg(mg.mean(surrogate)), mg.mul(entropy, cfg.entCoef)),
    mg.mul(valueLoss, cfg.vfCoef),
  );
  const approxKl = mg.mean(mg.sub(mg.sub(ratio, 1), logRatio));
  return [total, approxKl, entropy];
}

/** What `minibatchSteps` leaves: the parameters, the optimizer state, the last step's figures. */
export interface MinibatchStepsResult<P> {
  /** The parameters after every step. */
  params: P;
  /** The optimizer's state after them. */
  opt: unknown;
  /** The last step's loss. */
  loss: Tensor;
  /** Its approximate KL (the first aux value). */
  kl: Tensor;
  /** Its policy entropy (the second aux value). */
  entropy: Tensor;
}

/**
 * PPO's epochs of minibatch steps as one scan (PPO's and RL²'s): step i takes the rows
 * `order[i]` of every leaf of `data` along `axis` (transitions, or whole trials), and steps the
 * optimizer on the loss's gradient; `lossAndGrad` gives the loss with the KL and entropy as aux.
 *
 * @example
 * ```ts
 * import { mean, mul, optim, random, reshape, square, sub, valueAndGrad, zeros } from "@metagrad/metagrad";
 * import type { Tensor } from "@metagrad/metagrad";
 * import { minibatchSteps } from "@metagrad/metagrad/algorithms";
 * const data = { x: random.normal(random.key(0), [8]), y: random.normal(random.key(1), [8]) };
 * const loss = (w: Tensor, mb: typeof data): [Tensor, [Tensor, Tensor]] =>
 *   [mean(square(sub(mul(mb.x, w), mb.y))), [zeros([]), zeros([])]];
 * const adam = optim.adam(0.01);
 * const order = reshape(random.permutation(random.key(2), 8), [2, 4]); // 2 minibatches of 4
 * const out = minibatchSteps(valueAndGrad(loss, { hasAux: true }), adam, zeros([]), adam.init(zeros([])), data, order, 0);
 * ```
 */
export function minibatchSteps<P, D>(
  lossAndGrad: (params: P, mb: D) => [[Tensor, [Tensor, Tensor]], P],
  optimizer: GradientTransformation<any>,
  params: P,
  opt: unknown,
  data: D,
  order: Tensor,
  axis: number,
): MinibatchStepsResult<P> {
  const zero = () => mg.zeros([], { backend: order.backend });
  const [trained] = mg.scan(
    (c: MinibatchStepsResult<P>, idx: Tensor) => {
      const mb = mg.tree.map((t: Tensor) => mg.take(t, idx, axis), data) as D;
      const [[loss, [kl, entropy]], grads] = lossAndGrad(c.params, mb);
      const [updates, opt] = optimizer.update(grads, c.opt, c.params);
      const params = mg.optim.applyUpdates(c.params, updates) as P;
      return [{ params, opt, loss, kl, entropy }, null];
    },
    { params, opt, loss: zero(), kl: zero(), entropy: zero() },
    order,
  );
  return trained;
}

/** Everything a PPO run carries between updates (all tensors: it vmaps over seeds). */
export interface PpoState {
  /** The actor-critic's parameters. */
  params: ActorCriticParams;
  /** The optimizer's state. */
  opt: unknown;
  /** The environments between updates. */
  envs: EnvBatch<unknown>;
  /** The task the environments run (a task pytree). */
  tasks: unknown;
  /** The key the next update draws from. */
  key: Tensor;
  /** Return of each environment's episode so far [numEnvs]. */
  episodeReturn: Tensor;
  /** Return of each environment's last finished episode [numEnvs] (0 before one finishes). */
  lastReturn: Tensor;
}

/** What one update reports (device scalars: read them when needed). */
export interface PpoMetrics {
  /** Mean over environments of the last finished episode's return. */
  episodeReturn: Tensor;
  /** Episodes that finished during this update's rollout. */
  episodes: Tensor;
  /** The last minibatch's total loss. */
  loss: Tensor;
  /** Its mean approximate KL between the rollout policy and the updated one. */
  approxKl: Tensor;
  /** Its policy's mean entropy (a collapse to a deterministic policy shows here first). */
  entropy: Tensor;
}

/** A PPO learner. */
export interface Ppo {
  /** The configuration, defaults filled in. */
  readonly config: Readonly<Required<Omit<PpoConfig, "env">>> & { env: Environment<any, any> };
  /** Updates in `totalSteps` environment steps. */
  readonly updates: number;
  /** The networks. */
  readonly network: ActorCritic;
  /** A fresh run from a key (networks, optimizer, environments, task). */
  init(key: Tensor): PpoState;
  /** One update: rollout, advantages, epochs of minibatch steps. Pure; jit or vmap it. */
  update(state: PpoState): [PpoState, PpoMetrics];
}

const PPO_OPTIONS = [
  "env",
  "numEnvs",
  "numSteps",
  "totalSteps",
  "epochs",
  "minibatches",
  "lr",
  "anneal",
  "gamma",
  "lambda",
  "clip",
  "entCoef",
  "vfCoef",
  "maxGradNorm",
  "hidden",
];

/**
 * PPO with a clipped surrogate, clipped value loss, entropy bonus, per-minibatch advantage
 * normalisation, global-norm gradient clipping and a linearly annealed Adam learning rate.
 *
 * @example
 * ```ts
 * import { jit, random } from "@metagrad/metagrad";
 * import { ppo } from "@metagrad/metagrad/algorithms";
 * import { cartPole } from "@metagrad/metagrad/envs";
 * const learner = ppo({ env: cartPole(), totalSteps: 5_120 });
 * const update = jit(learner.update, { donateArgnums: [0] });
 * let state = learner.init(random.key(0));
 * for (let i = 0; i < learner.updates; i++) [state] = update(state);
 * ```
 */
export function ppo(config: PpoConfig): Ppo {
  return onPolicy(config, "ppo", PPO_DEFAULTS);
}

/** An on-policy learner's defaults (PPO's are purejaxrl's; A2C's Stable-Baselines3's). */
interface OnPolicyDefaults {
  numEnvs: number;
  numSteps: number;
  epochs: number;
  minibatches: number;
  lr: number;
  anneal: boolean;
  lambda: number;
  entCoef: number;
}

const PPO_DEFAULTS: OnPolicyDefaults = {
  numEnvs: 4,
  numSteps: 128,
  epochs: 4,
  minibatches: 4,
  lr: 2.5e-4,
  anneal: true,
  lambda: 0.95,
  entCoef: 0.01,
};

const A2C_DEFAULTS: OnPolicyDefaults = {
  numEnvs: 16,
  numSteps: 5,
  epochs: 1,
  minibatches: 1,
  lr: 7e-4,
  anneal: false,
  lambda: 1,
  entCoef: 0,
};

/**
 * A2C (Mnih et al. 2016, synchronous): the same rollout, GAE and bookkeeping as `ppo`, but one
 * gradient step per rollout on the vanilla policy gradient −E[log π(a|s)·Â] + vfCoef·E[(V − R)²]
 * − entCoef·E[entropy], with RMSProp (decay 0.99, ε 1e-5). Defaults are Stable-Baselines3's
 * (16 × 5 steps, lr 7e-4, λ = 1); `epochs`, `minibatches` and `clip` have no effect.
 *
 * @example
 * ```ts
 * import { jit, random } from "@metagrad/metagrad";
 * import { a2c } from "@metagrad/metagrad/algorithms";
 * import { cartPole } from "@metagrad/metagrad/envs";
 * const learner = a2c({ env: cartPole(), totalSteps: 8_000 });
 * const update = jit(learner.update, { donateArgnums: [0] });
 * let state = learner.init(random.key(0));
 * [state] = update(state);
 * ```
 */
export function a2c(config: PpoConfig): Ppo {
  return onPolicy({ ...config, epochs: 1, minibatches: 1 }, "a2c", A2C_DEFAULTS);
}

/**
 * A2C's loss on a batch: −E[log π(a|s)·Â] + vfCoef·E[(V − R)²] − entCoef·E[entropy] (advantages
 * not normalised), with 0 beside it where PPO reports its approximate KL.
 *
 * @example
 * ```ts
 * import { random, zeros, ones } from "@metagrad/metagrad";
 * import { a2cLoss, actorCritic } from "@metagrad/metagrad/algorithms";
 * const net = actorCritic([4], { kind: "discrete", n: 2 });
 * const batch = { obs: zeros([8, 4]), action: zeros([8], { dtype: "i32" }), logProb: zeros([8]),
 *   value: zeros([8]), advantage: random.normal(random.key(1), [8]), target: ones([8]) };
 * const [loss] = a2cLoss(net, net.init(random.key(0)), batch, { vfCoef: 0.5, entCoef: 0 });
 * ```
 */
export function a2cLoss(
  net: ActorCritic,
  params: ActorCriticParams,
  b: PpoBatch,
  cfg: { vfCoef: number; entCoef: number },
): [Tensor, Tensor, Tensor] {
  const { dist, value } = net.apply(params, b.obs);
  const pg = mg.neg(mg.mean(mg.mul(actionLogProb(dist, b.action), b.advantage)));
  const valueLoss = mg.mean(mg.square(mg.sub(value, b.target)));
  const entropy = mg.mean(actionEntropy(dist));
  const total = mg.add(mg.sub(pg, mg.mul(entropy, cfg.entCoef)), mg.mul(valueLoss, cfg.vfCoef));
  return [total, mg.zeros([], { backend: total.backend }), entropy];
}

function onPolicy(config: PpoConfig, where: "ppo" | "a2c", d: OnPolicyDefaults): Ppo {
  checkOptions(config, where, PPO_OPTIONS);
  requireEnvironment(config?.env, where);
  const unit = (v: unknown, name: string, dflt: number) =>
    checkNumber(v ?? dflt, name, where, { min: 0, max: 1 });
  const cfg = {
    env: config.env,
    numEnvs: checkCount(config.numEnvs, d.numEnvs, "numEnvs", where),
    numSteps: checkCount(config.numSteps, d.numSteps, "numSteps", where),
    totalSteps: checkCount(config.totalSteps, 500_000, "totalSteps", where),
    epochs: checkCount(config.epochs, d.epochs, "epochs", where),
    minibatches: checkCount(config.minibatches, d.minibatches, "minibatches", where),
    lr: checkNumber(config.lr ?? d.lr, "lr", where, { min: 0 }),
    anneal: checkBoolean(config.anneal ?? d.anneal, "anneal", where),
    gamma: unit(config.gamma, "gamma", 0.99),
    lambda: unit(config.lambda, "lambda", d.lambda),
    clip: checkNumber(config.clip ?? 0.2, "clip", where, { min: 0 }),
    entCoef: checkNumber(config.entCoef ?? d.entCoef, "entCoef", where, { min: 0 }),
    vfCoef: checkNumber(config.vfCoef ?? 0.5, "vfCoef", where, { min: 0 }),
    maxGradNorm: checkNumber(config.maxGradNorm ?? 0.5, "maxGradNorm", where, {
      min: 0,
      exclusiveMin: true,
    }),
    hidden: config.hidden ?? [64, 64],
  };
  const env = cfg.env;
  const batch = cfg.numEnvs * cfg.numSteps;
  if (batch % cfg.minibatches !== 0) {
    throw new RangeError(
      `${where}: minibatches (${cfg.minibatches}) must divide numEnvs × numSteps (${batch})`,
    );
  }
  const updates = Math.max(1, Math.floor(cfg.totalSteps / batch));
  const stepsPerUpdate = cfg.epochs * cfg.minibatches;
  const net = actorCritic(env.observationShape, env.actionSpace, { hidden: cfg.hidden });
  // purejaxrl: lr · (1 − ⌊count / (epochs · minibatches)⌋ / updates), count = optimizer steps
  const rate = cfg.anneal
    ? (step: Tensor) =>
      mg.mul(mg.sub(1, mg.div(mg.floor(mg.div(step, stepsPerUpdate)), updates)), cfg.lr)
    : cfg.lr;
  const optimizer: GradientTransformation<any> = mg.optim.chain(
    mg.optim.clipByGlobalNorm(cfg.maxGradNorm),
    where === "ppo"
      ? mg.optim.adam(rate, { eps: 1e-5 })
      : mg.optim.rmsprop(rate, { decay: 0.99, eps: 1e-5 }),
  );

  // (the loss, and beside it the approximate KL and the entropy as valueAndGrad's aux)
  const loss = (params: ActorCriticParams, b: PpoBatch): [Tensor, [Tensor, Tensor]] => {
    const [total, kl, entropy] = where === "ppo"
      ? ppoLoss(net, params, b, cfg)
      : a2cLoss(net, params, b, cfg);
    return [total, [kl, entropy]];
  };
  const lossAndGrad = mg.valueAndGrad(loss, { hasAux: true });

  const update = (s: PpoState): [PpoState, PpoMetrics] => {
    const [key, kRoll, kShuffle] = mg.random.split(s.key, 3);
    const [envs, tr] = rolloutFrom(env, net.policy, s.params, s.envs, s.tasks, kRoll, cfg.numSteps);
    const lastValue = net.apply(s.params, envs.obs).value;
    const { advantages, targets } = gae(
      tr.reward,
      tr.value!,
      tr.done,
      lastValue,
      cfg.gamma,
      cfg.lambda,
    );
    // episode bookkeeping: returns of the episodes that finished in this rollout
    const episodes = trackEpisodeReturns(tr.reward, tr.done, {
      running: s.episodeReturn,
      last: s.lastReturn,
    });
    // the batch, flattened over time and environments, shuffled once per epoch
    const flat = (t: Tensor) => mg.reshape(t, [batch, ...t.shape.slice(2)]);
    const data: PpoBatch = {
      obs: flat(tr.obs),
      action: flat(tr.action),
      logProb: flat(tr.logProb!),
      value: flat(tr.value!),
      advantage: flat(advantages),
      target: flat(targets),
    };
    const order = mg.reshape(
      mg.vmap((k: Tensor) => mg.random.permutation(k, batch))(
        mg.random.splitStacked(kShuffle, cfg.epochs),
      ),
      [stepsPerUpdate, batch / cfg.minibatches],
    );
    const trained = minibatchSteps(lossAndGrad, optimizer, s.params, s.opt, data, order, 0);
    const next: PpoState = {
      params: trained.params,
      opt: trained.opt,
      envs,
      tasks: s.tasks,
      key,
      episodeReturn: episodes.running,
      lastReturn: episodes.last,
    };
    return [next, {
      episodeReturn: mg.mean(episodes.last),
      episodes: mg.sum(mg.cast(tr.done, "f32")),
      loss: trained.loss,
      approxKl: trained.kl,
      entropy: trained.entropy,
    }];
  };

  return {
    config: cfg,
    updates,
    network: net,
    init(key) {
      const [kNet, kTask, kEnv, kRun] = mg.random.split(key, 4);
      const params = net.init(kNet);
      const tasks = env.sampleTasks(kTask, 1);
      return {
        params,
        opt: optimizer.init(params),
        envs: resetEnvs(env, tasks, kEnv, cfg.numEnvs),
        tasks,
        key: kRun,
        episodeReturn: mg.zeros([cfg.numEnvs], { backend: key.backend }),
        lastReturn: mg.zeros([cfg.numEnvs], { backend: key.backend }),
      };
    },
    update,
  };
}
