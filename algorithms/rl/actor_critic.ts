/**
 * Actor-critic MLPs for an environment's spaces: a policy network (logits over discrete
 * actions, or Gaussian means with a learned state-independent log-std) and a separate value
 * network, both tanh MLPs with orthogonal initialisation — PPO's usual architecture (√2 gain
 * in hidden layers, 0.01 on the policy's output, 1 on the value's).
 */
import * as mg from "../../mod.ts";
import type { Tensor } from "../../mod.ts";
import type { Module } from "../../core/nn/layers.ts";
import type { ActionSpace } from "../../envs/env.ts";
import type { Policy, RecurrentPolicy } from "../../envs/rollout.ts";
import type { GruCellOptions, GruParams } from "../../core/nn/recurrent.ts";
import { checkBoolean, checkNumber, checkOptions } from "../../core/validate.ts";
import { fmtShape } from "../../core/shape.ts";
import { type ActionDist, actionLogProb, sampleAction } from "./distributions.ts";

/** Parameters of an actor-critic: the two networks and, for box actions, the log-std. */
export interface ActorCriticParams {
  /** The policy network's parameters. */
  actor: unknown;
  /** The value network's parameters (absent with `critic: false`). */
  critic?: unknown;
  /** Log standard deviation per action dimension (box actions only). */
  logStd?: Tensor;
}

/** Options of `actorCritic`. */
export interface ActorCriticOptions {
  /** Hidden widths of both networks (default [64, 64]). */
  hidden?: readonly number[];
  /** Hidden activation (default tanh). */
  activation?: (x: Tensor) => Tensor;
  /**
   * Initial log-std of a Gaussian policy (default: the log of half the action range, so that
   * exploration starts at the scale of the actions — a std of 1 on actions clipped to ±0.1
   * saturates them, and the policy then learns bang-bang control; 0 for unbounded ranges).
   */
  initLogStd?: number;
  /**
   * Whether to build the value network (default true); without it (TRPO with a fitted
   * baseline) `apply`'s values are zeros and the parameters have no `critic`.
   */
  critic?: boolean;
}

/** An actor-critic for one environment's spaces. */
export interface ActorCritic {
  /** Fresh parameters. */
  init(key: Tensor): ActorCriticParams;
  /** The action distributions and values [B] of observations [B, ...obs]. */
  apply(params: ActorCriticParams, obs: Tensor): { dist: ActionDist; value: Tensor };
  /** As a rollout policy: sampled actions with their log-probabilities and values. */
  policy: Policy<ActorCriticParams>;
  /** The deterministic policy for evaluation: the most likely action (argmax, or the mean). */
  greedyPolicy: Policy<ActorCriticParams>;
}

/** log(half the range) of a bounded box space; 0 otherwise (and for discrete spaces). */
function defaultLogStd(space: ActionSpace): number {
  if (space.kind !== "box") return 0;
  const half = (space.high - space.low) / 2;
  return Number.isFinite(half) && half > 0 ? Math.log(half) : 0;
}

/**
 * An MLP of dense layers with orthogonal initialisation (gain √2 inside, `outGain` on the last
 * layer) and `act` between them, with its state (one null per layer: nothing is stateful), so
 * callers can apply it without an init at hand.
 *
 * @example
 * ```ts
 * import { random, tanh, zeros } from "@metagrad/metagrad";
 * import { denseNetwork } from "@metagrad/metagrad/algorithms";
 * const q = denseNetwork([5, 64, 1], tanh, 1);
 * const [y] = q.module.apply(q.module.init(random.key(0)).params, q.state, zeros([8, 5])); // [8, 1]
 * ```
 */
export function denseNetwork(
  sizes: readonly number[],
  act: (x: Tensor) => Tensor,
  outGain: number,
): { module: Module; state: null[] } {
  const layers: Module[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    const last = i + 2 === sizes.length;
    layers.push(
      mg.nn.dense(sizes[i], sizes[i + 1], { init: mg.nn.orthogonal(last ? outGain : Math.SQRT2) }),
    );
    if (!last) layers.push(mg.nn.fn(act));
  }
  return { module: mg.nn.sequential(...layers), state: layers.map(() => null) };
}

/**
 * An actor-critic for observations of `observationShape` (flattened) and `actionSpace`.
 *
 * @example
 * ```ts
 * import { random, zeros } from "@metagrad/metagrad";
 * import { actorCritic } from "@metagrad/metagrad/algorithms";
 * const ac = actorCritic([4], { kind: "discrete", n: 2 });
 * const params = ac.init(random.key(0));
 * const { dist, value } = ac.apply(params, zeros([8, 4])); // logits [8, 2], value [8]
 * ```
 */
export function actorCritic(
  observationShape: readonly number[],
  actionSpace: ActionSpace,
  opts: ActorCriticOptions = {},
): ActorCritic {
  const hidden = opts.hidden ?? [64, 64];
  hidden.forEach((h, i) =>
    checkNumber(h, `hidden[${i}]`, "actorCritic", { min: 1, integer: true })
  );
  const act = opts.activation ?? mg.tanh;
  const inputs = observationShape.reduce((a, b) => a * b, 1);
  const outputs = actionSpace.kind === "discrete"
    ? actionSpace.n
    : actionSpace.shape.reduce((a, b) => a * b, 1);
  const actor = denseNetwork([inputs, ...hidden, outputs], act, 0.01);
  const critic = opts.critic === false ? null : denseNetwork([inputs, ...hidden, 1], act, 1);
  const initLogStd = checkNumber(
    opts.initLogStd ?? defaultLogStd(actionSpace),
    "initLogStd",
    "actorCritic",
  );
  const apply = (params: ActorCriticParams, obs: Tensor) => {
    const x = mg.reshape(obs, [obs.shape[0], inputs]);
    const [out] = actor.module.apply(params.actor, actor.state, x);
    const value = critic
      ? mg.reshape(critic.module.apply(params.critic, critic.state, x)[0], [obs.shape[0]])
      : mg.zeros([obs.shape[0]], { backend: obs.backend });
    const dist: ActionDist = actionSpace.kind === "discrete"
      ? { kind: "categorical", logits: out }
      : { kind: "gaussian", mean: out, logStd: params.logStd! };
    return { dist, value };
  };
  return {
    init(key) {
      const [ka, kc] = mg.random.split(key);
      const params: ActorCriticParams = { actor: actor.module.init(ka).params };
      if (critic) params.critic = critic.module.init(kc).params;
      if (actionSpace.kind === "box") {
        params.logStd = mg.full([outputs], initLogStd, { backend: key.backend });
      }
      return params;
    },
    apply,
    greedyPolicy(params, obs) {
      const { dist, value } = apply(params, obs);
      const action = dist.kind === "categorical" ? mg.argmax(dist.logits, -1) : dist.mean;
      return { action: dist.kind === "categorical" ? mg.cast(action, "i32") : action, value };
    },
    policy(params, obs, key) {
      const { dist, value } = apply(params, obs);
      const action = sampleAction(dist, key);
      return { action, logProb: actionLogProb(dist, action), value };
    },
  };
}

/**
 * Parameters of a recurrent actor-critic: the GRU (or the policy's and the critic's GRUs) and the
 * two heads on the hidden state.
 */
export interface RecurrentActorCriticParams {
  /** The GRU cell's weights (the policy's, when the critic has its own). */
  gru: GruParams;
  /** The critic's own GRU (`separateCritic` only). */
  criticGru?: GruParams;
  /** Linear policy head on the hidden state: logits or Gaussian means. */
  policyHead: { w: Tensor; b: Tensor };
  /** Linear value head on the hidden state. */
  valueHead: { w: Tensor; b: Tensor };
  /** Log-std per action dimension (box actions only). */
  logStd?: Tensor;
}

/** Options of `recurrentActorCritic`. */
export interface RecurrentActorCriticOptions {
  /** Width of the GRU's hidden state (default 64). */
  hidden?: number;
  /** Initial log-std of a Gaussian policy (default: as `actorCritic`'s). */
  initLogStd?: number;
  /**
   * Give the value its own GRU (default false: one GRU feeds both heads). With a shared GRU the
   * value's regression — targets of tens where rewards come every step — dominates the
   * gradient that shapes the policy's memory; pytorch_rl2 keeps the two networks apart.
   */
  separateCritic?: boolean;
  /**
   * The GRU cell's options (default: PyTorch's GRU); `{ layerNorm: true, candidate: "relu",
   * updateBias: 1 }` is pytorch_rl2's cell.
   */
  cell?: GruCellOptions;
}

/** A recurrent actor-critic: a GRU over observations with policy and value heads. */
export interface RecurrentActorCritic {
  /** Width of the hidden state: the GRU's, or twice it with a separate critic (policy, critic). */
  readonly hidden: number;
  /** Fresh parameters. */
  init(key: Tensor): RecurrentActorCriticParams;
  /** The zero hidden state for B environments, [B, hidden]. */
  initialHidden(b: number, backend?: "webgpu" | "reference"): Tensor;
  /** One step: distributions, values [B] and the next hidden state from observations [B, ...]. */
  apply(
    params: RecurrentActorCriticParams,
    obs: Tensor,
    hidden: Tensor,
  ): { dist: ActionDist; value: Tensor; hidden: Tensor };
  /**
   * Replay whole sequences (what recurrent learners differentiate through): observations
   * [T, B, ...] from hidden state `hidden` [B, hidden], the state restarting from zeros at the
   * steps where `starts` [T, B] (bool) is true — a new trial. Returns the distributions over
   * the T·B steps flattened time-major, their values [T·B] and the final hidden state.
   */
  applySequence(
    params: RecurrentActorCriticParams,
    obs: Tensor,
    starts: Tensor,
    hidden: Tensor,
  ): { dist: ActionDist; value: Tensor; hidden: Tensor };
  /** As a rollout policy (`recurrentRolloutFrom`): sampled actions, log-probs, values. */
  policy: RecurrentPolicy<RecurrentActorCriticParams, Tensor>;
}

/**
 * A GRU actor-critic for recurrent policies (RL²'s): h' = GRU(h, obs), logits or Gaussian means
 * and a value from h' through linear heads (orthogonal init: 0.01 for the policy, 1 for the value).
 *
 * @example
 * ```ts
 * import { random, zeros } from "@metagrad/metagrad";
 * import { recurrentActorCritic } from "@metagrad/metagrad/algorithms";
 * const ac = recurrentActorCritic([4], { kind: "discrete", n: 2 }, { hidden: 16 });
 * const params = ac.init(random.key(0));
 * const { dist, value, hidden } = ac.apply(params, zeros([8, 4]), ac.initialHidden(8));
 * ```
 */
export function recurrentActorCritic(
  observationShape: readonly number[],
  actionSpace: ActionSpace,
  opts: RecurrentActorCriticOptions = {},
): RecurrentActorCritic {
  const where = "recurrentActorCritic";
  checkOptions(opts, where, ["hidden", "initLogStd", "separateCritic", "cell"]);
  const width = checkNumber(opts.hidden ?? 64, "hidden", where, { min: 1, integer: true });
  const separate = checkBoolean(opts.separateCritic ?? false, "separateCritic", where);
  const stateWidth = separate ? 2 * width : width;
  const inputs = observationShape.reduce((a, b) => a * b, 1);
  const outputs = actionSpace.kind === "discrete"
    ? actionSpace.n
    : actionSpace.shape.reduce((a, b) => a * b, 1);
  const cell = mg.nn.gruCell(inputs, width, opts.cell);
  const initLogStd = checkNumber(
    opts.initLogStd ?? defaultLogStd(actionSpace),
    "initLogStd",
    "recurrentActorCritic",
  );
  /**
   * The heads on the policy's and the critic's hidden states [N, width] (the same tensor when
   * they share the GRU): the action distribution and values [N].
   */
  const heads = (p: RecurrentActorCriticParams, hPolicy: Tensor, hValue: Tensor) => {
    const out = mg.add(mg.matmul(hPolicy, p.policyHead.w), p.policyHead.b);
    const value = mg.reshape(
      mg.add(mg.matmul(hValue, p.valueHead.w), p.valueHead.b),
      [hValue.shape[0]],
    );
    const dist: ActionDist = actionSpace.kind === "discrete"
      ? { kind: "categorical", logits: out }
      : { kind: "gaussian", mean: out, logStd: p.logStd! };
    return { dist, value };
  };
  // The policy's and the critic's GRUs run as one batched program (vmap over a leading axis
  // of 2 on their weights and states): one recurrent product per step, not two. Both input
  // projections are one product x·[Wp | Wc] + [bp | bc] (a cell's projection acts on each
  // gate's columns apart, layer norm included), laid out [..., 2, gates].
  const bothProjected = (p: RecurrentActorCriticParams, x: Tensor) => {
    const critic = p.criticGru!;
    const both = {
      ...p.gru,
      wi: mg.concat([p.gru.wi, critic.wi], 1),
      bi: mg.concat([p.gru.bi, critic.bi], 0),
      ...(p.gru.si && critic.si ? { si: mg.concat([p.gru.si, critic.si], 0) } : {}),
    };
    return mg.reshape(cell.project!(both, x), [...x.shape.slice(0, -1), 2, 3 * width]);
  };
  const towers = (p: RecurrentActorCriticParams) =>
    mg.tree.map((a: Tensor, c: Tensor) => mg.stack([a, c]), p.gru, p.criticGru!) as GruParams;
  /** One step of both towers: states [2, B, width], projections [B, 2, gates]. */
  const stepTowers = mg.vmap(cell.applyProjected!, { inAxes: [0, 0, 1] });
  const apply = (p: RecurrentActorCriticParams, obs: Tensor, hidden: Tensor) => {
    const b = obs.shape[0];
    const x = mg.reshape(obs, [b, inputs]);
    if (!separate) {
      const h = cell.apply(p.gru, hidden, x);
      return { ...heads(p, h, h), hidden: h };
    }
    const states = mg.moveAxis(mg.reshape(hidden, [b, 2, width]), 1, 0);
    const next = stepTowers(towers(p), states, bothProjected(p, x)); // [2, B, width]
    const tower = (i: number) => mg.reshape(mg.slice(next, [[i, i + 1]]), [b, width]);
    return {
      ...heads(p, tower(0), tower(1)),
      hidden: mg.reshape(mg.moveAxis(next, 0, 1), [b, 2 * width]),
    };
  };
  return {
    hidden: stateWidth,
    init(key) {
      const [kg, kp, kv, kc] = mg.random.split(key, 4);
      const params: RecurrentActorCriticParams = {
        gru: cell.init(kg),
        ...(separate ? { criticGru: cell.init(kc) } : {}),
        policyHead: {
          w: mg.nn.orthogonal(0.01)(kp, [width, outputs]),
          b: mg.zeros([outputs], { backend: key.backend }),
        },
        valueHead: {
          w: mg.nn.orthogonal(1)(kv, [width, 1]),
          b: mg.zeros([1], { backend: key.backend }),
        },
      };
      if (actionSpace.kind === "box") {
        params.logStd = mg.full([outputs], initLogStd, { backend: key.backend });
      }
      return params;
    },
    initialHidden: (b, backend) => mg.zeros([b, stateWidth], { backend }),
    apply,
    applySequence(params, obs, starts, hidden) {
      const [t, b] = obs.shape;
      if (
        starts.shape.join() !== [t, b].join() || hidden.shape.join() !== [b, stateWidth].join()
      ) {
        throw new RangeError(
          `recurrentActorCritic.applySequence: observations [T, B, ...] ${fmtShape(obs.shape)} ` +
            `need starts [T, B] and hidden [B, ${stateWidth}], got ${fmtShape(starts.shape)} ` +
            `and ${fmtShape(hidden.shape)}`,
        );
      }
      // only the recurrent products stay in the loop: the input projection of every step and
      // the heads on every hidden state are one product each, before and after it
      const x = mg.reshape(obs, [t, b, inputs]);
      // a restart at step t + 1 zeroes the state step t leaves (the first step's is applied
      // before the loop), so the where joins the step's gate kernel instead of standing alone
      // before the recurrent product
      const never = mg.zeros([1, b], { dtype: "bool", backend: obs.backend });
      const restartAfter = t === 1 ? never : mg.concat([mg.slice(starts, [[1, t]]), never], 0);
      const first = mg.reshape(mg.slice(starts, [[0, 1]]), [b, 1]);
      const start = mg.where(first, 0, hidden);
      if (!separate) {
        const [last, hs] = mg.scan(
          (h: Tensor, step: { projected: Tensor; restart: Tensor }) => {
            const next = cell.applyProjected!(params.gru, h, step.projected);
            return [mg.where(mg.reshape(step.restart, [b, 1]), 0, next), next];
          },
          start,
          { projected: cell.project!(params.gru, x), restart: restartAfter },
        );
        const flat = mg.reshape(hs, [t * b, width]);
        return { ...heads(params, flat, flat), hidden: last };
      }
      const stacked = towers(params);
      const [last, hs] = mg.scan(
        (h: Tensor, step: { projected: Tensor; restart: Tensor }) => {
          const next = stepTowers(stacked, h, step.projected);
          return [mg.where(mg.reshape(step.restart, [1, b, 1]), 0, next), next];
        },
        mg.moveAxis(mg.reshape(start, [b, 2, width]), 1, 0),
        { projected: bothProjected(params, x), restart: restartAfter },
      ); // hs [T, 2, B, w]
      const tower = (i: number) => mg.reshape(mg.slice(hs, [null, [i, i + 1]]), [t * b, width]);
      return {
        ...heads(params, tower(0), tower(1)),
        hidden: mg.reshape(mg.moveAxis(last, 0, 1), [b, 2 * width]),
      };
    },
    policy(params, obs, hidden, key) {
      const out = apply(params, obs, hidden);
      const action = sampleAction(out.dist, key);
      return {
        action,
        logProb: actionLogProb(out.dist, action),
        value: out.value,
        hidden: out.hidden,
      };
    },
  };
}
