/**
 * A replay buffer on the device: a ring of transitions held as tensors with a leading
 * capacity axis, written and sampled by pure functions (jit them with the buffer donated, so
 * each write reuses the buffer's memory). Nothing is read back to add or sample.
 */
import * as mg from "../../mod.ts";
import type { Tensor } from "../../mod.ts";
import { checkNumber } from "../../core/validate.ts";

/** The ring: `data`'s leaves are [capacity, ...]; where the next write goes; rows filled. */
export interface ReplayBuffer<T> {
  /** The stored transitions, leaves [capacity, ...]. */
  data: T;
  /** Index of the next row written (i32 scalar). */
  position: Tensor;
  /** Rows holding transitions (i32 scalar, at most the capacity). */
  size: Tensor;
}

/**
 * An empty buffer of `capacity` rows shaped like `example` (one transition: leaves without the
 * capacity axis).
 *
 * @example
 * ```ts
 * import { zeros } from "@metagrad/metagrad";
 * import { replayBuffer } from "@metagrad/metagrad/algorithms";
 * const buf = replayBuffer({ obs: zeros([3]), reward: zeros([]) }, 10_000); // obs [10000, 3]
 * ```
 */
export function replayBuffer<T>(example: T, capacity: number): ReplayBuffer<T> {
  checkNumber(capacity, "capacity", "replayBuffer", { min: 1, integer: true });
  const leaves = mg.tree.leaves<Tensor>(example);
  if (leaves.length === 0) {
    throw new TypeError("replayBuffer: the example transition has no tensors");
  }
  const backend = leaves[0].backend;
  return {
    data: mg.tree.map(
      (l: Tensor) => mg.zeros([capacity, ...l.shape], { dtype: l.dtype, backend }),
      example,
    ) as T,
    position: mg.zeros([], { dtype: "i32", backend }),
    size: mg.zeros([], { dtype: "i32", backend }),
  };
}

/**
 * The buffer with a batch of B transitions (leaves [B, ...]) written at the ring's position,
 * overwriting the oldest rows once full. B must not exceed the capacity.
 *
 * @example
 * ```ts
 * import { ones, zeros } from "@metagrad/metagrad";
 * import { addTransitions, replayBuffer } from "@metagrad/metagrad/algorithms";
 * let buf = replayBuffer({ x: zeros([2]) }, 4);
 * buf = addTransitions(buf, { x: ones([3, 2]) }); // size 3, position 3
 * ```
 */
export function addTransitions<T>(buffer: ReplayBuffer<T>, batch: T): ReplayBuffer<T> {
  const [rows, def] = mg.tree.flatten<Tensor>(buffer.data);
  const [news, newDef] = mg.tree.flatten<Tensor>(batch);
  if (JSON.stringify(def) !== JSON.stringify(newDef) || rows.length !== news.length) {
    throw new TypeError("addTransitions: the batch's structure differs from the buffer's");
  }
  const capacity = rows[0].shape[0], b = news[0].shape[0];
  if (b > capacity) {
    throw new RangeError(`addTransitions: ${b} transitions for a buffer of ${capacity}`);
  }
  rows.forEach((r, i) => {
    const n = news[i];
    if (
      n.shape[0] !== b || n.shape.slice(1).join() !== r.shape.slice(1).join() || n.dtype !== r.dtype
    ) {
      throw new TypeError(
        `addTransitions: leaf ${i} is ${n.dtype}[${n.shape}], the buffer holds ${r.dtype}[B, ${
          r.shape.slice(1)
        }]`,
      );
    }
  });
  // row i receives batch row (i − position) mod capacity when that is < B
  const offset = mg.mod(
    mg.sub(mg.arange(capacity, undefined, 1, { backend: rows[0].backend }), buffer.position),
    capacity,
  );
  const hit = mg.less(offset, b);
  const from = mg.minimum(offset, b - 1);
  const data = rows.map((r, i) => {
    const picked = mg.take(news[i], from, 0);
    const mask = mg.reshape(hit, [capacity, ...r.shape.slice(1).map(() => 1)]);
    return mg.where(mask, picked, r);
  });
  return {
    data: mg.tree.unflatten(def, data),
    position: mg.mod(mg.add(buffer.position, b), capacity),
    size: mg.minimum(mg.add(buffer.size, b), capacity),
  };
}

/**
 * `n` transitions drawn uniformly (with replacement) from the filled rows.
 *
 * @example
 * ```ts
 * import { ones, random, zeros } from "@metagrad/metagrad";
 * import { addTransitions, replayBuffer, sampleTransitions } from "@metagrad/metagrad/algorithms";
 * const buf = addTransitions(replayBuffer({ x: zeros([2]) }, 8), { x: ones([5, 2]) });
 * sampleTransitions(buf, random.key(0), 4).x.shape; // [4, 2]
 * ```
 */
export function sampleTransitions<T>(buffer: ReplayBuffer<T>, key: Tensor, n: number): T {
  checkNumber(n, "n", "sampleTransitions", { min: 1, integer: true });
  // uniform in [0, size): floor(u · size) with u ∈ [0, 1)
  const u = mg.random.uniform(key, [n]);
  const idx = mg.minimum(
    mg.cast(mg.floor(mg.mul(u, mg.cast(mg.maximum(buffer.size, 1), "f32"))), "i32"),
    mg.sub(mg.maximum(buffer.size, 1), 1),
  );
  return mg.tree.map((r: Tensor) => mg.take(r, idx, 0), buffer.data) as T;
}
