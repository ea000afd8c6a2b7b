/**
 * RL² (Duan et al. 2016): a recurrent policy trained across trials — several episodes of one
 * task, its hidden state carried through them — learns a reinforcement-learning algorithm in
 * its weights: at meta-test time it explores a new task and exploits what it found, with no
 * gradient step. Here the trial is an environment (`trialEnvironment`), whole trials are rolled
 * out on the device under `scan`, and the policy is trained with PPO whose minibatches are sets
 * of trials replayed from their start (back-propagation through the whole trial). One update
 * is one pure function: jit it, vmap it over seeds.
 */
import * as mg from "../../mod.ts";
import type { Tensor } from "../../mod.ts";
import { type Environment, requireEnvironment } from "../../envs/env.ts";
import { recurrentRolloutFrom, resetEnvs, type Trajectory } from "../../envs/rollout.ts";
import { trialEnvironment, type TrialState } from "../../envs/trial.ts";
import { checkBoolean, checkCount, checkNumber, checkOptions, oneOf } from "../../core/validate.ts";
import type { GradientTransformation } from "../../core/optim/optim.ts";
import type { GruCellOptions } from "../../core/nn/recurrent.ts";
import {
  type RecurrentActorCritic,
  recurrentActorCritic,
  type RecurrentActorCriticParams,
} from "./actor_critic.ts";
import {
  minibatchSteps,
  type PpoBatch,
  ppoObjective,
  VALUE_LOSSES,
  type ValueLoss,
} from "./ppo.ts";
import { gae } from "./returns.ts";

/** Configuration of `rl2` (defaults: pytorch_rl2's, a PPO reproduction of the paper). */
export interface Rl2Config {
  /** The environment whose tasks are learned (a bandit, a tabular MDP, ...). */
  env: Environment<any, any>;
  /** Episodes of one task per trial (default 1: a bandit trial is one episode of n pulls). */
  episodes?: number;
  /** Trials rolled out per update, each on a new task (default 128). */
  numTrials?: number;
  /** Width of the GRU (default 256). */
  hidden?: number;
  /** PPO passes over each batch of trials (default 8). */
  epochs?: number;
  /** Minibatches of trials per pass (default 4; must divide numTrials). */
  minibatches?: number;
  /** Adam learning rate (default 2e-4). */
  lr?: number;
  /**
   * Updates over which the learning rate falls linearly from `lr` to `finalLr`, then stays there
   * (default 0: constant). Long runs at a rate that learns fast early drift later (a 100-pull
   * bandit run at 3e-3 fell from 64 to 50 between updates 375 and 450).
   */
  annealUpdates?: number;
  /** The learning rate at the end of the annealing (default 0). */
  finalLr?: number;
  /** Discount (default 0.99). */
  gamma?: number;
  /** GAE λ (default 0.3). */
  lambda?: number;
  /** Surrogate and value clip ε (default 0.1). */
  clip?: number;
  /** Entropy bonus coefficient (default 0.01). */
  entCoef?: number;
  /** Value loss coefficient (default 0.5). */
  vfCoef?: number;
  /** Global gradient-norm clip (default 1). */
  maxGradNorm?: number;
  /** Normalise advantages per minibatch (default false, as pytorch_rl2). */
  normalizeAdvantages?: boolean;
  /**
   * Give the value its own GRU (default true, as pytorch_rl2; see `RecurrentActorCriticOptions`):
   * through a shared one, the regression on returns of tens drowns the policy's gradient.
   */
  separateCritic?: boolean;
  /** The value's regression (default "huber", pytorch_rl2's; see `PpoObjectiveConfig.valueLoss`). */
  valueLoss?: ValueLoss;
  /**
   * The GRU cell's options (default `RL2_CELL`, pytorch_rl2's: layer-normalised gates, a ReLU
   * candidate, an update-gate bias of 1); `{}` is PyTorch's GRU, which learns 100-pull bandits
   * far more slowly at about half the cost per update.
   */
  cell?: GruCellOptions;
}

/** Everything an RL² run carries between updates (all tensors: it vmaps over seeds). */
export interface Rl2State {
  /** The recurrent actor-critic's parameters. */
  params: RecurrentActorCriticParams;
  /** The optimizer's state. */
  opt: unknown;
  /** The key the next update draws from. */
  key: Tensor;
}

/** What one update reports (device scalars). */
export interface Rl2Metrics {
  /** Mean total reward of the update's trials (first trial of each environment). */
  trialReturn: Tensor;
  /** The last minibatch's total loss. */
  loss: Tensor;
  /** Its approximate KL between the rollout policy and the updated one. */
  approxKl: Tensor;
  /** Its policy's mean entropy per step (a collapse to a deterministic policy shows here). */
  entropy: Tensor;
}

/** Options of `Rl2.trialReturns`. */
export interface Rl2EvalOptions {
  /** Act by the most likely action instead of sampling (default false: RL² samples). */
  greedy?: boolean;
}

/** An RL² learner. */
export interface Rl2 {
  /** The configuration, defaults filled in. */
  readonly config: Readonly<Required<Omit<Rl2Config, "env">>> & { env: Environment<any, any> };
  /** The trial environment the policy acts in. */
  readonly trial: Environment<TrialState<any>, any>;
  /** Steps per trial (episodes × the environment's maxSteps). */
  readonly trialSteps: number;
  /** The recurrent actor-critic. */
  readonly network: RecurrentActorCritic;
  /** A fresh run from a key (network, optimizer). */
  init(key: Tensor): Rl2State;
  /** One update: trials on new tasks, GAE, epochs of minibatch steps through whole trials. */
  update(state: Rl2State): [Rl2State, Rl2Metrics];
  /**
   * The total reward of one trial on each task of `tasks` (n tasks → [n]) from a fresh hidden
   * state — meta-test: the policy adapts within the trial, its weights fixed. Pure; jit it.
   */
  trialReturns(
    params: RecurrentActorCriticParams,
    tasks: unknown,
    key: Tensor,
    opts?: Rl2EvalOptions,
  ): Tensor;
  /**
   * As `trialReturns`, each inner episode's total reward apart: [episodes, n] — how much the
   * policy gains from the episodes before (PEARL's and MAML-RL's evaluations, per episode).
   */
  episodeReturns(
    params: RecurrentActorCriticParams,
    tasks: unknown,
    key: Tensor,
    opts?: Rl2EvalOptions,
  ): Tensor;
}

/**
 * pytorch_rl2's GRU cell, `rl2`'s default: layer-normalised gates, a ReLU candidate, an
 * update-gate bias of 1 (`nn.gruCell`'s options). `cell: {}` is PyTorch's GRU.
 *
 * @example
 * ```ts
 * import { rl2, RL2_CELL } from "@metagrad/metagrad/algorithms";
 * import { bernoulliBandit } from "@metagrad/metagrad/envs";
 * const learner = rl2({ env: bernoulliBandit({ arms: 5, horizon: 100 }), cell: RL2_CELL });
 * const plainGru = rl2({ env: bernoulliBandit({ arms: 5, horizon: 100 }), cell: {} });
 * ```
 */
export const RL2_CELL: Readonly<GruCellOptions> = Object.freeze({
  layerNorm: true,
  candidate: "relu",
  updateBias: 1,
});

/**
 * The cells by the names scripts take (`--cell rl2|torch`): pytorch_rl2's, and PyTorch's GRU.
 *
 * @example
 * ```ts
 * import { rl2, RL2_CELLS } from "@metagrad/metagrad/algorithms";
 * import { bernoulliBandit } from "@metagrad/metagrad/envs";
 * const learner = rl2({ env: bernoulliBandit({ arms: 5, horizon: 10 }), cell: RL2_CELLS.torch });
 * ```
 */
export const RL2_CELLS: Readonly<Record<"rl2" | "torch", Readonly<GruCellOptions>>> = Object
  .freeze({ rl2: RL2_CELL, torch: Object.freeze({}) });

const RL2_OPTIONS = [
  "env",
  "episodes",
  "numTrials",
  "hidden",
  "epochs",
  "minibatches",
  "lr",
  "annealUpdates",
  "finalLr",
  "gamma",
  "lambda",
  "clip",
  "entCoef",
  "vfCoef",
  "maxGradNorm",
  "normalizeAdvantages",
  "separateCritic",
  "valueLoss",
  "cell",
];

/** Each trial's total reward [B]: the rewards up to and including its first `done`. */
function firstTrialTotals(tr: Trajectory): Tensor {
  const done = mg.cast(tr.done, "f32");
  const endedBefore = mg.sub(mg.cumsum(done, 0), done); // trials finished before step t
  return mg.sum(mg.where(mg.greater(endedBefore, 0), 0, tr.reward), 0);
}

/**
 * Each inner episode's total reward within the first trial, [episodes, B]: step t belongs to
 * the episode whose index is the count of inner episode ends before it — the trial
 * observation's last feature at step t says whether step t − 1 ended one.
 */
function firstTrialEpisodeTotals(tr: Trajectory, episodes: number): Tensor {
  const done = mg.cast(tr.done, "f32");
  const inTrial = mg.equal(mg.sub(mg.cumsum(done, 0), done), 0);
  const ended = mg.squeeze(mg.slice(tr.obs, [null, null, [-1, null]]), [-1]);
  const episode = mg.cumsum(ended, 0); // [T, B]
  const reward = mg.where(inTrial, tr.reward, 0);
  return mg.stack(
    Array.from(
      { length: episodes },
      (_, e) => mg.sum(mg.where(mg.equal(episode, e), reward, 0), 0),
    ),
  );
}

/** starts[t] = done[t − 1] (false at t = 0): where a replayed hidden state restarts. */
function trialStarts(done: Tensor): Tensor {
  const [t, b] = done.shape;
  const first = mg.zeros([1, b], { dtype: "bool", backend: done.backend });
  return t === 1 ? first : mg.concat([first, mg.slice(done, [[0, t - 1]])], 0);
}

/**
 * RL² with a GRU actor-critic trained by PPO on whole trials.
 *
 * @example
 * ```ts
 * import { jit, random } from "@metagrad/metagrad";
 * import { rl2 } from "@metagrad/metagrad/algorithms";
 * import { bernoulliBandit } from "@metagrad/metagrad/envs";
 * const learner = rl2({ env: bernoulliBandit({ arms: 5, horizon: 10 }), numTrials: 16, hidden: 16 });
 * const update = jit(learner.update, { donateArgnums: [0] });
 * let state = learner.init(random.key(0));
 * [state] = update(state);
 * const env = learner.config.env;
 * const totals = jit(learner.trialReturns)(state.params, env.sampleTasks(random.key(1), 100), random.key(2));
 * ```
 */
export function rl2(config: Rl2Config): Rl2 {
  const where = "rl2";
  checkOptions(config, where, RL2_OPTIONS);
  requireEnvironment(config?.env, where);
  const unit = (v: unknown, name: string, dflt: number) =>
    checkNumber(v ?? dflt, name, where, { min: 0, max: 1 });
  const cfg = {
    env: config.env,
    episodes: checkCount(config.episodes, 1, "episodes", where),
    numTrials: checkCount(config.numTrials, 128, "numTrials", where),
    hidden: checkCount(config.hidden, 256, "hidden", where),
    epochs: checkCount(config.epochs, 8, "epochs", where),
    minibatches: checkCount(config.minibatches, 4, "minibatches", where),
    lr: checkNumber(config.lr ?? 2e-4, "lr", where, { min: 0 }),
    annealUpdates: checkNumber(config.annealUpdates ?? 0, "annealUpdates", where, {
      min: 0,
      integer: true,
    }),
    finalLr: checkNumber(config.finalLr ?? 0, "finalLr", where, { min: 0 }),
    gamma: unit(config.gamma, "gamma", 0.99),
    lambda: unit(config.lambda, "lambda", 0.3),
    clip: checkNumber(config.clip ?? 0.1, "clip", where, { min: 0 }),
    entCoef: checkNumber(config.entCoef ?? 0.01, "entCoef", where, { min: 0 }),
    vfCoef: checkNumber(config.vfCoef ?? 0.5, "vfCoef", where, { min: 0 }),
    maxGradNorm: checkNumber(config.maxGradNorm ?? 1, "maxGradNorm", where, {
      min: 0,
      exclusiveMin: true,
    }),
    normalizeAdvantages: checkBoolean(
      config.normalizeAdvantages ?? false,
      "normalizeAdvantages",
      where,
    ),
    separateCritic: checkBoolean(config.separateCritic ?? true, "separateCritic", where),
    valueLoss: oneOf(config.valueLoss ?? "huber", VALUE_LOSSES, "valueLoss", where),
    cell: {
      ...checkOptions(config.cell === undefined ? RL2_CELL : config.cell, `${where}: cell`),
    } as GruCellOptions,
  };
  if (cfg.numTrials % cfg.minibatches !== 0) {
    throw new RangeError(
      `${where}: minibatches (${cfg.minibatches}) must divide numTrials (${cfg.numTrials})`,
    );
  }
  const trial = trialEnvironment(cfg.env, { episodes: cfg.episodes });
  const T = trial.maxSteps;
  const net = recurrentActorCritic(trial.observationShape, trial.actionSpace, {
    hidden: cfg.hidden,
    separateCritic: cfg.separateCritic,
    cell: cfg.cell,
  });
  // the rate of update u = ⌊optimizer steps / (epochs · minibatches)⌋, as PPO's annealing
  const stepsPerUpdate = cfg.epochs * cfg.minibatches;
  const rate = cfg.annealUpdates > 0
    ? (step: Tensor) => {
      const done = mg.minimum(mg.div(mg.floor(mg.div(step, stepsPerUpdate)), cfg.annealUpdates), 1);
      return mg.add(mg.mul(done, cfg.finalLr - cfg.lr), cfg.lr);
    }
    : cfg.lr;
  const optimizer: GradientTransformation<any> = mg.optim.chain(
    mg.optim.clipByGlobalNorm(cfg.maxGradNorm),
    mg.optim.adam(rate, { eps: 1e-5 }),
  );
  const perMinibatch = cfg.numTrials / cfg.minibatches;

  /** n trials (one per task) from fresh environments and a zero hidden state. */
  const runTrials = (
    params: RecurrentActorCriticParams,
    tasks: unknown,
    key: Tensor,
    greedy: boolean,
  ) => {
    const [kReset, kRun] = mg.random.split(key);
    const envs = resetEnvs(trial, tasks, kReset, 1);
    const b = envs.obs.shape[0];
    const zero = net.initialHidden(b, key.backend);
    const policy = greedy
      ? (p: RecurrentActorCriticParams, obs: Tensor, h: Tensor) => {
        const out = net.apply(p, obs, h);
        const action = out.dist.kind === "categorical"
          ? mg.cast(mg.argmax(out.dist.logits, -1), "i32")
          : out.dist.mean;
        return { action, value: out.value, hidden: out.hidden };
      }
      : net.policy;
    return recurrentRolloutFrom(trial, policy, params, envs, zero, tasks, kRun, T, {
      resetTo: zero,
    });
  };

  const loss = (params: RecurrentActorCriticParams, mb: PpoBatch & { starts: Tensor }) => {
    const b = mb.obs.shape[1];
    const { dist, value } = net.applySequence(
      params,
      mb.obs,
      mb.starts,
      net.initialHidden(b, mb.obs.backend),
    );
    const flat = (t: Tensor) => mg.reshape(t, [t.shape[0] * b, ...t.shape.slice(2)]);
    const batch: PpoBatch = {
      obs: flat(mb.obs),
      action: flat(mb.action),
      logProb: flat(mb.logProb),
      value: flat(mb.value),
      advantage: flat(mb.advantage),
      target: flat(mb.target),
    };
    // (the loss, and beside it the approximate KL and the entropy as valueAndGrad's aux)
    const [total, kl, entropy] = ppoObjective(dist, value, batch, cfg);
    return [total, [kl, entropy]] as [Tensor, [Tensor, Tensor]];
  };
  const lossAndGrad = mg.valueAndGrad(loss, { hasAux: true });

  const update = (s: Rl2State): [Rl2State, Rl2Metrics] => {
    const [key, kTasks, kRoll, kShuffle] = mg.random.split(s.key, 4);
    const tasks = cfg.env.sampleTasks(kTasks, cfg.numTrials);
    const [envs, hidden, tr] = runTrials(s.params, tasks, kRoll, false);
    const lastValue = net.apply(s.params, envs.obs, hidden).value;
    const { advantages, targets } = gae(
      tr.reward,
      tr.value!,
      tr.done,
      lastValue,
      cfg.gamma,
      cfg.lambda,
    );
    // [T, B, ...] leaves; minibatches are sets of whole trials (the environment axis)
    const data = {
      obs: tr.obs,
      action: tr.action,
      logProb: tr.logProb!,
      value: tr.value!,
      advantage: advantages,
      target: targets,
      starts: trialStarts(tr.done),
    };
    const order = mg.reshape(
      mg.vmap((k: Tensor) => mg.random.permutation(k, cfg.numTrials))(
        mg.random.splitStacked(kShuffle, cfg.epochs),
      ),
      [cfg.epochs * cfg.minibatches, perMinibatch],
    );
    const trained = minibatchSteps(lossAndGrad, optimizer, s.params, s.opt, data, order, 1);
    return [
      { params: trained.params, opt: trained.opt, key },
      {
        trialReturn: mg.mean(firstTrialTotals(tr)),
        loss: trained.loss,
        approxKl: trained.kl,
        entropy: trained.entropy,
      },
    ];
  };

  return {
    config: cfg,
    trial,
    trialSteps: T,
    network: net,
    init(key) {
      const [kNet, kRun] = mg.random.split(key);
      const params = net.init(kNet);
      return { params, opt: optimizer.init(params), key: kRun };
    },
    update,
    trialReturns(params, tasks, key, opts = {}) {
      checkOptions(opts, "rl2.trialReturns", ["greedy"]);
      const greedy = checkBoolean(opts.greedy ?? false, "greedy", "rl2.trialReturns");
      return firstTrialTotals(runTrials(params, tasks, key, greedy)[2]);
    },
    episodeReturns(params, tasks, key, opts = {}) {
      checkOptions(opts, "rl2.episodeReturns", ["greedy"]);
      const greedy = checkBoolean(opts.greedy ?? false, "greedy", "rl2.episodeReturns");
      return firstTrialEpisodeTotals(runTrials(params, tasks, key, greedy)[2], cfg.episodes);
    },
  };
}
