/**
 * PEARL (Rakelly et al. 2019): off-policy meta-RL by probabilistic task inference. An encoder
 * maps each transition of a task's context to a Gaussian factor over a latent task variable z;
 * their product is the posterior q(z | context), kept near a unit Gaussian prior by a KL term.
 * A soft actor-critic acts on [observation, z] and its critics, trained on [observation, action,
 * z], teach the encoder (through the critic loss) what about a task matters for acting.
 * Transitions live in per-task replay buffers on the device (a leading task axis); collection
 * steps every training task's environment at once and a gradient step samples a meta-batch of
 * tasks, all under `vmap`. At meta-test the agent collects context with z drawn from the prior,
 * infers the posterior and acts on a draw from it (posterior sampling).
 */
import * as mg from "../../mod.ts";
import type { Tensor } from "../../mod.ts";
import {
  autoReset,
  type Environment,
  requireBoxActions,
  requireEnvironment,
} from "../../envs/env.ts";
import { resetEnvs } from "../../envs/rollout.ts";
import { checkBoolean, checkCount, checkNumber, checkOptions, oneOf } from "../../core/validate.ts";
import type { GradientTransformation } from "../../core/optim/optim.ts";
import { denseNetwork } from "./actor_critic.ts";
import {
  addTransitions,
  type ReplayBuffer,
  replayBuffer,
  sampleTransitions,
} from "./replay_buffer.ts";
import { squashedGaussianMean, squashedGaussianSample } from "./squashed_gaussian.ts";
import type { Transition as SacTransition } from "./sac.ts";

/** A transition PEARL stores: SAC's, and the environment's training reward where it uses one. */
export interface PearlTransition extends SacTransition {
  /** `StepResult.trainingReward`, with `useTrainingReward` (what the critics learn from). */
  trainingReward?: Tensor;
}
import {
  entropyTarget,
  polyakAverage,
  softActorObjective,
  softActorStep,
  softBellmanTarget,
} from "./soft_updates.ts";

/**
 * The product of Gaussian factors N(μᵢ, σᵢ²) over axis −2 ([..., N, d] → [..., d]), normalised:
 * σ² = 1 / Σ 1/σᵢ², μ = σ² Σ μᵢ/σᵢ² (variances floored at 1e-7).
 *
 * @example
 * ```ts
 * import { tensor } from "@metagrad/metagrad";
 * import { productOfGaussians } from "@metagrad/metagrad/algorithms";
 * const { mean, variance } = productOfGaussians(tensor([[0], [2]]), tensor([[1], [1]])); // 1, 0.5
 * ```
 */
export function productOfGaussians(
  means: Tensor,
  variances: Tensor,
): { mean: Tensor; variance: Tensor } {
  if (means.ndim < 2 || means.shape.join() !== variances.shape.join()) {
    throw new RangeError(
      `productOfGaussians: means and variances must share a shape [..., N, d], got ` +
        `[${means.shape}] and [${variances.shape}]`,
    );
  }
  const precision = mg.reciprocal(mg.maximum(variances, 1e-7));
  const variance = mg.reciprocal(mg.sum(precision, -2));
  return { mean: mg.mul(mg.sum(mg.mul(means, precision), -2), variance), variance };
}

/**
 * KL(N(μ, diag σ²) ‖ N(0, I)) summed over the last axis: ½ Σ (σ² + μ² − 1 − log σ²).
 *
 * @example
 * ```ts
 * import { tensor } from "@metagrad/metagrad";
 * import { klToStandardNormal } from "@metagrad/metagrad/algorithms";
 * klToStandardNormal(tensor([0, 0]), tensor([1, 1])); // 0
 * ```
 */
export function klToStandardNormal(mean: Tensor, variance: Tensor): Tensor {
  return mg.mul(
    mg.sum(mg.sub(mg.add(variance, mg.square(mean)), mg.add(mg.log(variance), 1)), -1),
    0.5,
  );
}

/** Configuration of `pearl` (defaults: Rakelly et al.'s, networks narrower for CPUs). */
export interface PearlConfig {
  /** The environment (box actions) whose tasks are learned. */
  env: Environment<any, any>;
  /** Training tasks, drawn once from the init key (default 40). */
  trainTasks?: number;
  /** Dimension of the latent task variable z (default 5). */
  latentDim?: number;
  /** Hidden widths of the ReLU actor and critics (default [256, 256]). */
  hidden?: readonly number[];
  /** Hidden widths of the ReLU context encoder (default [128, 128]). */
  encoderHidden?: readonly number[];
  /** Replay capacity per task, in transitions (default 10,000). */
  bufferSize?: number;
  /** Tasks per gradient step (default 16). */
  metaBatch?: number;
  /** RL transitions per task and gradient step (default 256). */
  batchSize?: number;
  /** Context transitions per task and gradient step (default 100). */
  contextSize?: number;
  /**
   * Weight of KL(q(z | c) ‖ N(0, I)), summed over the meta-batch's tasks as Rakelly et al.'s
   * code does (default 0.1).
   */
  klWeight?: number;
  /**
   * Factor on rewards in the critics' targets (default 5, Rakelly et al.'s; their point robot
   * uses 100). With a learned temperature the policy is unchanged by it, but the encoder's
   * objective is not: it weighs the critics' squared errors, which grow as its square, against
   * the KL term (with rewards of a few units per step and factor 1, the KL term dominates and
   * the posterior carries little about the task).
   */
  rewardScale?: number;
  /**
   * Train the critics on the environment's `trainingReward` (a denser reward than the task's;
   * default false). Rakelly et al.'s sparse point robot: the critics learn from −distance, the
   * encoder's contexts and the score keep the sparse reward.
   */
  useTrainingReward?: boolean;
  /** Adam learning rate of every network and the temperature (default 3e-4). */
  lr?: number;
  /** Discount (default 0.99). */
  gamma?: number;
  /** Polyak rate of the target critics (default 0.005). */
  tau?: number;
  /**
   * Entropy target in the box's units (default −1 per action dimension of the box rescaled to
   * [−1, 1]: `entropyTarget`).
   */
  targetEntropy?: number;
}

/** PEARL's networks. */
export interface PearlNetworks {
  /** The context encoder: a transition → a Gaussian factor's mean and (softplus) variance. */
  encoder: unknown;
  /** The squashed-Gaussian policy on [observation, z]. */
  actor: unknown;
  /** The first critic on [observation, action, z]. */
  q1: unknown;
  /** The second critic. */
  q2: unknown;
}

/** Everything a PEARL run carries (all tensors). */
export interface PearlState {
  /** The networks. */
  params: PearlNetworks;
  /** Target critics. */
  target: { q1: unknown; q2: unknown };
  /** log α of the entropy temperature. */
  logAlpha: Tensor;
  /** Optimizer states: actor, critics with the encoder, temperature. */
  opt: { actor: unknown; critic: unknown; alpha: unknown };
  /** One replay buffer per training task (leaves with a leading task axis). */
  buffers: ReplayBuffer<PearlTransition>;
  /**
   * One buffer per training task of the transitions the encoder's contexts are drawn from
   * (Rakelly et al.'s encoder buffer): what `collect` was told to keep for context — in their
   * setting, only the latest data collected with z from the prior.
   */
  contexts: ReplayBuffer<PearlTransition>;
  /** The training tasks (leading axis: trainTasks). */
  tasks: unknown;
  /** One environment per training task. */
  envs: { state: unknown; obs: Tensor };
  /** The key the next call draws from. */
  key: Tensor;
}

/** What a training chunk reports (device scalars, from its last gradient step). */
export interface PearlMetrics {
  /** The twin critics' squared TD error. */
  criticLoss: Tensor;
  /** The actor's loss. */
  actorLoss: Tensor;
  /** Mean KL of the task posteriors to the prior. */
  kl: Tensor;
  /** The temperature α. */
  alpha: Tensor;
}

/** A PEARL learner. */
export interface Pearl {
  /** The configuration, defaults filled in. */
  readonly config: Readonly<Required<Omit<PearlConfig, "env">>> & { env: Environment<any, any> };
  /** A fresh run: networks, optimizers, training tasks, their environments and buffers. */
  init(key: Tensor): PearlState;
  /**
   * `steps` environment steps on every training task at once, stored in its replay buffer. z is
   * drawn once per call per task: from the prior, or from the posterior of a context sampled
   * from the task's context buffer; actions are sampled from the policy, or uniform with
   * `mode: "random"`. `context` says what becomes of the task's context buffer: the new
   * transitions are added to it ("add", the default), replace it ("replace") or stay out of it
   * ("none": data for the actor and critics only).
   */
  collect(
    state: PearlState,
    steps: number,
    mode: "prior" | "posterior" | "random",
    context?: "add" | "replace" | "none",
  ): PearlState;
  /** `steps` gradient steps (a `scan`), each on a meta-batch of training tasks. */
  train(state: PearlState, steps: number): [PearlState, PearlMetrics];
  /**
   * Meta-test on tasks (leading axis n): `episodes` episodes each, the first with z drawn from
   * the prior, every later one with z drawn from the posterior of all transitions seen so far
   * on that task; actions are the policy's means. Returns each episode's return, [episodes, n].
   */
  adaptationReturns(params: PearlNetworks, tasks: unknown, key: Tensor, episodes: number): Tensor;
}

const PEARL_OPTIONS = [
  "env",
  "trainTasks",
  "latentDim",
  "hidden",
  "encoderHidden",
  "bufferSize",
  "metaBatch",
  "batchSize",
  "contextSize",
  "klWeight",
  "rewardScale",
  "useTrainingReward",
  "lr",
  "gamma",
  "tau",
  "targetEntropy",
];

/**
 * PEARL with SAC (learned temperature, twin critics, Polyak targets) for box-action tasks.
 *
 * @example
 * ```ts
 * import { jit, random } from "@metagrad/metagrad";
 * import { pearl } from "@metagrad/metagrad/algorithms";
 * import { pointNavigation } from "@metagrad/metagrad/envs";
 * const learner = pearl({ env: pointNavigation({ goals: "semicircle" }), trainTasks: 4, hidden: [32], encoderHidden: [32], bufferSize: 200, metaBatch: 2, batchSize: 16, contextSize: 8 });
 * let state = learner.init(random.key(0));
 * state = jit(learner.collect, { staticArgnums: [1, 2] })(state, 20, "prior");
 * const [next] = jit(learner.train, { staticArgnums: [1] })(state, 5);
 * ```
 */
export function pearl(config: PearlConfig): Pearl {
  const where = "pearl";
  checkOptions(config, where, PEARL_OPTIONS);
  requireEnvironment(config?.env, where);
  const env = config.env;
  const { space, actDim, obsDim } = requireBoxActions(env, where);
  const widths = (list: readonly number[], name: string) => {
    if (!Array.isArray(list)) throw new TypeError(`${where}: ${name} must be an array of widths`);
    list.forEach((w, i) => checkNumber(w, `${name}[${i}]`, where, { min: 1, integer: true }));
    return list;
  };
  const cfg = {
    env,
    trainTasks: checkCount(config.trainTasks, 40, "trainTasks", where),
    latentDim: checkCount(config.latentDim, 5, "latentDim", where),
    hidden: widths(config.hidden ?? [256, 256], "hidden"),
    encoderHidden: widths(config.encoderHidden ?? [128, 128], "encoderHidden"),
    bufferSize: checkCount(config.bufferSize, 10_000, "bufferSize", where),
    metaBatch: checkCount(config.metaBatch, 16, "metaBatch", where),
    batchSize: checkCount(config.batchSize, 256, "batchSize", where),
    contextSize: checkCount(config.contextSize, 100, "contextSize", where),
    klWeight: checkNumber(config.klWeight ?? 0.1, "klWeight", where, { min: 0 }),
    rewardScale: checkNumber(config.rewardScale ?? 5, "rewardScale", where, {
      min: 0,
      exclusiveMin: true,
    }),
    useTrainingReward: checkBoolean(config.useTrainingReward ?? false, "useTrainingReward", where),
    lr: checkNumber(config.lr ?? 3e-4, "lr", where, { min: 0 }),
    gamma: checkNumber(config.gamma ?? 0.99, "gamma", where, { min: 0, max: 1 }),
    tau: checkNumber(config.tau ?? 0.005, "tau", where, { min: 0, max: 1 }),
    targetEntropy: entropyTarget(space, actDim, config.targetEntropy, where),
  };
  const d = cfg.latentDim;
  const encoder = denseNetwork([obsDim + actDim + 1, ...cfg.encoderHidden, 2 * d], mg.relu, 1);
  const actor = denseNetwork([obsDim + d, ...cfg.hidden, 2 * actDim], mg.relu, 1);
  const critic = denseNetwork([obsDim + actDim + d, ...cfg.hidden, 1], mg.relu, 1);
  const adam = (): GradientTransformation<any> => mg.optim.adam(cfg.lr);
  const [actorOpt, criticOpt, alphaOpt] = [adam(), adam(), adam()];
  const continuing = autoReset(env);
  const stepOne = (k: Tensor, s: unknown, a: Tensor, t: unknown) => continuing.step(k, s, a, t);

  const flat = (x: Tensor, width: number) => mg.reshape(x, [x.shape[0], width]);
  /** q(z | context) of transitions [C, ...] → mean and variance [d]. */
  const posterior = (p: unknown, c: PearlTransition) => {
    const input = mg.concat([flat(c.obs, obsDim), flat(c.action, actDim), flat(c.reward, 1)], -1);
    const [out] = encoder.module.apply(p, encoder.state, input);
    const means = mg.slice(out, [null, [0, d]]);
    const variances = mg.softplus(mg.slice(out, [null, [d, 2 * d]]));
    return productOfGaussians(means, variances);
  };
  const drawZ = (q: { mean: Tensor; variance: Tensor }, key: Tensor) =>
    mg.add(q.mean, mg.mul(mg.sqrt(q.variance), mg.random.normal(key, q.mean.shape)));
  const withZ = (obs: Tensor, z: Tensor) =>
    mg.concat([flat(obs, obsDim), mg.broadcastTo(z, [obs.shape[0], d])], -1);
  const policyOut = (p: unknown, obs: Tensor, z: Tensor) =>
    actor.module.apply(p, actor.state, withZ(obs, z))[0];
  const q = (p: unknown, obs: Tensor, action: Tensor, z: Tensor) =>
    mg.reshape(
      critic.module.apply(p, critic.state, mg.concat([withZ(obs, z), flat(action, actDim)], -1))[0],
      [obs.shape[0]],
    );

  /** One environment, `steps` steps under a fixed z (or random actions), as transitions [steps]. */
  const runTask = (
    p: PearlNetworks,
    task: unknown,
    start: { state: unknown; obs: Tensor },
    z: Tensor,
    key: Tensor,
    steps: number,
    act: "sample" | "mean" | "random",
  ) => {
    type C = { state: unknown; obs: Tensor; key: Tensor };
    const [end, transitions] = mg.scan(
      (c: C) => {
        const [next, kAct, kEnv] = mg.random.split(c.key, 3);
        const obs = mg.reshape(c.obs, [1, obsDim]);
        const action = act === "random"
          ? mg.random.uniform(kAct, [1, actDim], { minval: space.low, maxval: space.high })
          : act === "mean"
          ? squashedGaussianMean(policyOut(p.actor, obs, z), space)
          : squashedGaussianSample(policyOut(p.actor, obs, z), space, kAct).action;
        const a = mg.reshape(action, [...space.shape]);
        const r = stepOne(kEnv, c.state, a, task);
        const t: PearlTransition = {
          obs: mg.reshape(c.obs, [obsDim]),
          action: a,
          reward: r.reward,
          nextObs: mg.reshape(r.finalObs!, [obsDim]),
          terminal: mg.cast(r.terminated, "f32"),
        };
        if (cfg.useTrainingReward) {
          if (!r.trainingReward) {
            throw new TypeError(
              `${where}: useTrainingReward, but ${env.name} gives no trainingReward (only ` +
                `environments that document one do, such as the sparse point robot)`,
            );
          }
          t.trainingReward = r.trainingReward;
        }
        return [{ state: r.state, obs: r.obs, key: next }, t] as [C, PearlTransition];
      },
      { ...start, key },
      null,
      { length: steps },
    );
    return { end: { state: end.state, obs: end.obs }, transitions };
  };

  const collect = (
    s: PearlState,
    steps: number,
    mode: "prior" | "posterior" | "random",
    context: "add" | "replace" | "none" = "add",
  ) => {
    checkNumber(steps, "steps", `${where}.collect`, { min: 1, integer: true });
    oneOf(mode, ["prior", "posterior", "random"] as const, "mode", `${where}.collect`);
    oneOf(context, ["add", "replace", "none"] as const, "context", `${where}.collect`);
    const [key, kZ, kContext, kRun] = mg.random.split(s.key, 4);
    const n = cfg.trainTasks;
    const z = mode === "posterior"
      ? mg.vmap((b: ReplayBuffer<PearlTransition>, kc: Tensor, kz: Tensor) =>
        drawZ(posterior(s.params.encoder, sampleTransitions(b, kc, cfg.contextSize)), kz)
      )(s.contexts, mg.random.splitStacked(kContext, n), mg.random.splitStacked(kZ, n))
      : mg.random.normal(kZ, [n, d]);
    const runs = mg.vmap(
      (task: unknown, state: unknown, obs: Tensor, zz: Tensor, k: Tensor) =>
        runTask(
          s.params,
          task,
          { state, obs },
          zz,
          k,
          steps,
          mode === "random" ? "random" : "sample",
        ),
    )(s.tasks, s.envs.state, s.envs.obs, z, mg.random.splitStacked(kRun, n)) as {
      end: { state: unknown; obs: Tensor };
      transitions: PearlTransition;
    };
    const add = mg.vmap((b: ReplayBuffer<PearlTransition>, t: PearlTransition) =>
      addTransitions(b, t)
    );
    const buffers = add(s.buffers, runs.transitions) as ReplayBuffer<PearlTransition>;
    const emptied = (b: ReplayBuffer<PearlTransition>) => ({
      ...b,
      position: mg.zerosLike(b.position),
      size: mg.zerosLike(b.size),
    });
    const contexts = context === "none" ? s.contexts : add(
      context === "replace" ? emptied(s.contexts) : s.contexts,
      runs.transitions,
    ) as ReplayBuffer<PearlTransition>;
    return { ...s, buffers, contexts, envs: runs.end, key };
  };

  const gradientStep = (s: PearlState, key: Tensor): [PearlState, PearlMetrics] => {
    const [kTasks, kContext, kBatch, kZ, kNext, kNow] = mg.random.split(key, 6);
    const m = cfg.metaBatch, b = cfg.batchSize;
    const picked = mg.random.randint(kTasks, [m], 0, cfg.trainTasks);
    const sample = (from: ReplayBuffer<PearlTransition>, k: Tensor, count: number) =>
      mg.vmap((buf: ReplayBuffer<PearlTransition>, kk: Tensor) =>
        sampleTransitions(buf, kk, count)
      )(
        mg.tree.map((t: Tensor) => mg.take(t, picked, 0), from),
        mg.random.splitStacked(k, m),
      ) as PearlTransition;
    const context = sample(s.contexts, kContext, cfg.contextSize); // leaves [m, C, ...]
    const batch = sample(s.buffers, kBatch, b); // leaves [m, B, ...]
    const rows = (t: Tensor) => mg.reshape(t, [m * b, ...t.shape.slice(2)]);
    const data = mg.tree.map(rows, batch) as PearlTransition;
    const perRow = (z: Tensor) =>
      mg.reshape(mg.broadcastTo(mg.expandDims(z, 1), [m, b, d]), [m * b, d]);
    const alpha = mg.exp(s.logAlpha);
    const zKey = mg.random.splitStacked(kZ, m);

    // critics and encoder: TD error with z from the posterior (gradients reach the encoder), + KL
    const criticLoss = (c: { q1: unknown; q2: unknown; encoder: unknown }) => {
      const post = mg.vmap((ctx: PearlTransition) => posterior(c.encoder, ctx))(context) as {
        mean: Tensor;
        variance: Tensor;
      };
      const z = mg.vmap((mean: Tensor, variance: Tensor, k: Tensor) =>
        drawZ({ mean, variance }, k)
      )(
        post.mean,
        post.variance,
        zKey,
      );
      const zRows = perRow(z), zFixed = mg.stopGradient(zRows);
      const next = squashedGaussianSample(
        policyOut(s.params.actor, data.nextObs, zFixed),
        space,
        kNext,
      );
      const y = softBellmanTarget(
        mg.mul(data.trainingReward ?? data.reward, cfg.rewardScale),
        data.terminal,
        q(s.target.q1, data.nextObs, next.action, zFixed),
        q(s.target.q2, data.nextObs, next.action, zFixed),
        next.logProb,
        alpha,
        cfg.gamma,
      );
      const td = mg.add(
        mg.mean(mg.square(mg.sub(q(c.q1, data.obs, data.action, zRows), y))),
        mg.mean(mg.square(mg.sub(q(c.q2, data.obs, data.action, zRows), y))),
      );
      // the KL summed over the meta-batch's tasks, as Rakelly et al.'s code weighs it
      const kls = klToStandardNormal(post.mean, post.variance);
      const kl = mg.mean(kls);
      return [mg.add(td, mg.mul(mg.sum(kls), cfg.klWeight)), { td, kl, z: zFixed }] as [
        Tensor,
        { td: Tensor; kl: Tensor; z: Tensor },
      ];
    };
    const critics = { q1: s.params.q1, q2: s.params.q2, encoder: s.params.encoder };
    const [[, aux], cGrads] = mg.valueAndGrad(criticLoss, { hasAux: true })(critics);
    const [cUpdates, cOpt] = criticOpt.update(cGrads, s.opt.critic, critics);
    const newCritics = mg.optim.applyUpdates(critics, cUpdates);
    // actor on the updated critics, z held fixed
    const actorLoss = (pa: unknown) => {
      const now = squashedGaussianSample(policyOut(pa, data.obs, aux.z), space, kNow);
      const q1 = q(newCritics.q1, data.obs, now.action, aux.z);
      const q2 = q(newCritics.q2, data.obs, now.action, aux.z);
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
        params: {
          encoder: newCritics.encoder,
          actor: a.actor,
          q1: newCritics.q1,
          q2: newCritics.q2,
        },
        target: polyakAverage(s.target, { q1: newCritics.q1, q2: newCritics.q2 }, cfg.tau),
        logAlpha: a.logAlpha,
        opt: { actor: a.actorOpt, critic: cOpt, alpha: a.alphaOpt },
      },
      { criticLoss: aux.td, actorLoss: a.loss, kl: aux.kl, alpha: mg.exp(a.logAlpha) },
    ];
  };

  return {
    config: cfg,
    init(key) {
      const [ke, ka, k1, k2, kTasks, kEnv, kRun] = mg.random.split(key, 7);
      const backend = key.backend;
      const params: PearlNetworks = {
        encoder: encoder.module.init(ke).params,
        actor: actor.module.init(ka).params,
        q1: critic.module.init(k1).params,
        q2: critic.module.init(k2).params,
      };
      const tasks = env.sampleTasks(kTasks, cfg.trainTasks);
      const envs = resetEnvs(env, tasks, kEnv, 1);
      const example: PearlTransition = {
        obs: mg.zeros([obsDim], { backend }),
        action: mg.zeros([...space.shape], { backend }),
        reward: mg.zeros([], { backend }),
        nextObs: mg.zeros([obsDim], { backend }),
        terminal: mg.zeros([], { backend }),
        ...(cfg.useTrainingReward ? { trainingReward: mg.zeros([], { backend }) } : {}),
      };
      // one empty buffer per task: every leaf repeated along a leading task axis
      const perTask = () =>
        mg.tree.map(
          (t: Tensor) => mg.repeat(mg.expandDims(t, 0), cfg.trainTasks, 0),
          replayBuffer(example, cfg.bufferSize),
        ) as ReplayBuffer<PearlTransition>;
      const logAlpha = mg.zeros([], { backend });
      const copy = (t: unknown) => mg.tree.map((x: Tensor) => mg.add(x, 0), t);
      return {
        params,
        target: { q1: copy(params.q1), q2: copy(params.q2) },
        logAlpha,
        opt: {
          actor: actorOpt.init(params.actor),
          critic: criticOpt.init({ q1: params.q1, q2: params.q2, encoder: params.encoder }),
          alpha: alphaOpt.init(logAlpha),
        },
        buffers: perTask(),
        contexts: perTask(),
        tasks,
        envs: { state: envs.state, obs: envs.obs },
        key: kRun,
      };
    },
    collect,
    train(state, steps) {
      checkNumber(steps, "steps", `${where}.train`, { min: 1, integer: true });
      const [last, metrics] = mg.scan(
        (s: PearlState) => {
          const [key, kStep] = mg.random.split(s.key);
          const [next, m] = gradientStep(s, kStep);
          return [{ ...next, key }, m] as [PearlState, PearlMetrics];
        },
        state,
        null,
        { length: steps },
      );
      return [last, mg.tree.map((t: Tensor) => mg.slice(t, [-1]), metrics) as PearlMetrics];
    },
    adaptationReturns(params, tasks, key, episodes) {
      checkNumber(episodes, "episodes", `${where}.adaptationReturns`, { min: 1, integer: true });
      const n = mg.tree.leaves<Tensor>(tasks)[0]?.shape[0] ?? 1;
      const T = env.maxSteps;
      const one = (task: unknown, k: Tensor) => {
        const keys = mg.random.split(k, 2 * episodes + 1);
        const task1 = mg.tree.map((t: Tensor) => mg.expandDims(t, 0), task);
        const first = resetEnvs(env, task1, keys[0], 1);
        let start = {
          state: mg.tree.map((t: Tensor) => mg.slice(t, [0]), first.state),
          obs: first.obs,
        };
        const seen: PearlTransition[] = [];
        const returns: Tensor[] = [];
        for (let e = 0; e < episodes; e++) {
          const z = e === 0 ? mg.random.normal(keys[1 + 2 * e], [d]) : drawZ(
            posterior(
              params.encoder,
              mg.tree.map(
                (...xs: Tensor[]) => mg.concat(xs, 0),
                seen[0],
                ...seen.slice(1),
              ) as PearlTransition,
            ),
            keys[1 + 2 * e],
          );
          const run = runTask(
            params,
            task,
            { ...start, obs: mg.reshape(start.obs, [obsDim]) },
            z,
            keys[2 + 2 * e],
            T,
            "mean",
          );
          seen.push(run.transitions);
          returns.push(mg.sum(run.transitions.reward));
          start = run.end;
        }
        return mg.stack(returns);
      };
      return mg.moveAxis(mg.vmap(one)(tasks, mg.random.splitStacked(key, n)), 0, 1);
    },
  };
}
