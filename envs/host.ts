/**
 * Environments that must live in JavaScript (a user's own simulator, a game, a physics engine
 * without a tensor version) stepped from the host. Every step reads the policy's actions back
 * from the device before the simulators can run — at least ~10 ms per step on Deno whatever the
 * GPU — so a host rollout runs at about 100 steps per second per batch (however many
 * environments it has) against millions for device environments (`rolloutFrom`). Use it when
 * the simulator cannot be written as tensor functions; batch many environments per step.
 */
import type { Tensor } from "../core/tensor.ts";
import * as random from "../core/random.ts";
import { tensor } from "../core/ops/creation.ts";
import { stack } from "../core/ops/shape.ts";
import { checkNumber } from "../core/validate.ts";
import type { ActionSpace } from "./env.ts";
import type { Policy, Trajectory } from "./rollout.ts";

/** One environment as a JS object with state inside: what a host simulator implements. */
export interface HostSimulator {
  /** Start an episode; returns the first observation (flat, `observationShape`'s size). */
  reset(): ArrayLike<number>;
  /** One step: an action index (discrete) or the action's values (box). */
  step(action: number | readonly number[]): HostStep;
}

/** What a host simulator's step returns. */
export interface HostStep {
  /** The observation after the step (flat). */
  obs: ArrayLike<number>;
  /** The step's reward (finite). */
  reward: number;
  /** The episode ended (terminated or time limit). */
  done: boolean;
  /** It ended by termination, not the time limit (default: false). */
  terminated?: boolean;
}

/** How to make a batch of host environments. */
export interface HostEnvSpec {
  /** Name for messages. */
  name: string;
  /** Shape of one observation. */
  observationShape: readonly number[];
  /** The action space the simulators take. */
  actionSpace: ActionSpace;
  /** A new simulator (called once per environment of the batch). */
  make: (index: number) => HostSimulator;
}

/**
 * A batch of host simulators stepped together: observations, rewards and dones go to the
 * device as tensors; actions come back from it (a read per step). Finished episodes restart
 * at once (as `autoReset` does on the device).
 *
 * @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * import { HostEnvBatch, hostRollout, randomPolicy } from "@metagrad/metagrad/envs";
 * // a random walk: each environment keeps its own position
 * const walk = () => {
 *   let x = 0;
 *   return {
 *     reset: () => [(x = 0)],
 *     step: (a: number | readonly number[]) => {
 *       x += a === 1 ? 1 : -1;
 *       return { obs: [x], reward: x, done: Math.abs(x) >= 3 };
 *     },
 *   };
 * };
 * const batch = new HostEnvBatch({
 *   name: "walk",
 *   observationShape: [1],
 *   actionSpace: { kind: "discrete", n: 2 },
 *   make: walk,
 * }, 4);
 * const trajectory = await hostRollout(batch, randomPolicy(batch.actionSpace), null, random.key(0), 10);
 * ```
 */
export class HostEnvBatch {
  /** Name for messages. */
  readonly name: string;
  /** Shape of one observation. */
  readonly observationShape: readonly number[];
  /** The action space. */
  readonly actionSpace: ActionSpace;
  /** Environments in the batch. */
  readonly size: number;
  #sims: HostSimulator[];
  #obs: number[][];

  /** Make `size` simulators with `spec.make` and reset each. */
  constructor(spec: HostEnvSpec, size: number) {
    checkNumber(size, "size", `${spec?.name ?? "HostEnvBatch"}`, { min: 1, integer: true });
    if (typeof spec?.make !== "function") {
      throw new TypeError("HostEnvBatch: spec.make must be a function returning a simulator");
    }
    this.name = spec.name;
    this.observationShape = spec.observationShape;
    this.actionSpace = spec.actionSpace;
    this.size = size;
    this.#sims = Array.from({ length: size }, (_, i) => spec.make(i));
    this.#obs = this.#sims.map((s) => this.#checkObs(s.reset(), "reset"));
  }

  /** The current observations [size, ...observationShape] (f32). */
  observations(): Tensor {
    return tensor(Float32Array.from(this.#obs.flat()), {
      shape: [this.size, ...this.observationShape],
    });
  }

  /**
   * Step every simulator with `actions` ([size] i32, or [size, ...shape] f32): reads them back
   * (the cost this class exists to state), runs the simulators, restarts finished episodes.
   */
  async step(
    actions: Tensor,
  ): Promise<{ obs: Tensor; reward: Tensor; done: Tensor; terminated: Tensor }> {
    const space = this.actionSpace;
    const per = space.kind === "discrete" ? 1 : space.shape.reduce((a, b) => a * b, 1);
    if (actions.shape[0] !== this.size || actions.size !== this.size * per) {
      throw new TypeError(
        `${this.name}: ${this.size} environments need actions [${this.size}${
          space.kind === "box" ? `, ${space.shape}` : ""
        }], got [${actions.shape}]`,
      );
    }
    const values = await actions.data();
    const reward = new Float32Array(this.size);
    const done: boolean[] = [], terminated: boolean[] = [];
    this.#sims.forEach((sim, i) => {
      const a = space.kind === "discrete" ? values[i] : [...values.slice(i * per, (i + 1) * per)];
      const r = sim.step(a);
      if (!Number.isFinite(r.reward)) {
        throw new RangeError(`${this.name}: environment ${i} returned reward ${r.reward}`);
      }
      reward[i] = r.reward;
      done.push(Boolean(r.done));
      terminated.push(Boolean(r.terminated));
      this.#obs[i] = this.#checkObs(r.done ? sim.reset() : r.obs, r.done ? "reset" : "step");
    });
    return {
      obs: this.observations(),
      reward: tensor(reward),
      done: tensor(done),
      terminated: tensor(terminated),
    };
  }

  #checkObs(obs: ArrayLike<number>, what: string): number[] {
    const n = this.observationShape.reduce((a, b) => a * b, 1);
    if (!obs || obs.length !== n) {
      throw new TypeError(
        `${this.name}: ${what} returned an observation of ${obs?.length} values; ` +
          `observationShape [${this.observationShape}] holds ${n}`,
      );
    }
    return Array.from(obs);
  }
}

/**
 * Roll a host batch forward `steps` steps under a device policy: each step runs the policy on
 * the device, reads its actions, steps the simulators. Returns the trajectory [steps, size, ...]
 * as `rolloutFrom` does.
 *
 * @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * import { HostEnvBatch, hostRollout, randomPolicy } from "@metagrad/metagrad/envs";
 * const coin = () => ({ reset: () => [0], step: () => ({ obs: [0], reward: Math.random(), done: false }) });
 * const batch = new HostEnvBatch(
 *   { name: "coin", observationShape: [1], actionSpace: { kind: "discrete", n: 2 }, make: coin },
 *   8,
 * );
 * const t = await hostRollout(batch, randomPolicy(batch.actionSpace), null, random.key(0), 5); // reward [5, 8]
 * ```
 */
export async function hostRollout<P>(
  batch: HostEnvBatch,
  policy: Policy<P>,
  params: P,
  key: Tensor,
  steps: number,
): Promise<Trajectory> {
  checkNumber(steps, "steps", `${batch.name} hostRollout`, { min: 1, integer: true });
  const records: { [K in keyof Trajectory]-?: Tensor[] } = {
    obs: [],
    action: [],
    reward: [],
    done: [],
    terminated: [],
    logProb: [],
    value: [],
  };
  let k = key;
  for (let t = 0; t < steps; t++) {
    const [next, kPolicy] = random.split(k);
    k = next;
    const obs = batch.observations();
    const out = policy(params, obs, kPolicy);
    const r = await batch.step(out.action);
    records.obs.push(obs);
    records.action.push(out.action);
    records.reward.push(r.reward);
    records.done.push(r.done);
    records.terminated.push(r.terminated);
    if (out.logProb) records.logProb.push(out.logProb);
    if (out.value) records.value.push(out.value);
  }
  const trajectory: Trajectory = {
    obs: stack(records.obs),
    action: stack(records.action),
    reward: stack(records.reward),
    done: stack(records.done),
    terminated: stack(records.terminated),
  };
  if (records.logProb.length === steps) trajectory.logProb = stack(records.logProb);
  if (records.value.length === steps) trajectory.value = stack(records.value);
  return trajectory;
}
