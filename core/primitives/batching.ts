/**
 * Helpers shared by the batching rules (vmap): batched operands carry the batch axis first.
 */
import type { Tensor } from "../tensor.ts";
import { broadcastTo, expandDims, reshape } from "../ops/shape.ts";

/** An unbatched operand repeated along a new leading batch axis of `size`. */
export function materialize(x: Tensor, batched: boolean, size: number): Tensor {
  return batched ? x : broadcastTo(expandDims(x, 0), [size, ...x.shape]);
}

/** Insert size-1 axes after the batch axis so the element part has `rank` axes. */
export function alignRank(x: Tensor, rank: number): Tensor {
  const elem = x.shape.slice(1);
  if (elem.length >= rank) return x;
  return reshape(x, [x.shape[0], ...new Array(rank - elem.length).fill(1), ...elem]);
}

/** The rank of an operand's element part (without its batch axis). */
export function elemRank(x: Tensor, batched: boolean): number {
  return batched ? x.ndim - 1 : x.ndim;
}
