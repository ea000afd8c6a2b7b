/**
 * A pytree of f32 tensors as one flat vector and back (JAX's ravel_pytree): what second-order
 * updates such as TRPO's work on — a conjugate-gradient solve and a line search over all
 * parameters at once.
 */
import * as mg from "../../mod.ts";
import type { Tensor } from "../../mod.ts";

/**
 * The tree's tensor leaves concatenated into a vector [n], and the function that rebuilds a
 * tree of the same structure and shapes from such a vector (differentiably).
 *
 * @example
 * ```ts
 * import { tensor, zeros } from "@metagrad/metagrad";
 * import { ravelTree } from "@metagrad/metagrad/algorithms";
 * const [flat, unravel] = ravelTree({ w: zeros([2, 3]), b: tensor([1, 2]) });
 * flat.shape; // [8]
 * unravel(flat).w.shape; // [2, 3]
 * ```
 */
export function ravelTree<T>(tree: T): [Tensor, (flat: Tensor) => T] {
  const [leaves, def] = mg.tree.flatten(tree);
  const tensors = leaves.filter((l): l is Tensor => l instanceof mg.Tensor);
  if (tensors.length === 0) throw new TypeError("ravelTree: the tree has no tensors");
  const sizes = tensors.map((t) => t.size);
  const flat = mg.concat(tensors.map((t) => mg.reshape(t, [t.size])), 0);
  const unravel = (v: Tensor): T => {
    if (v.shape.join() !== String(flat.size)) {
      throw new RangeError(`ravelTree: a vector of ${flat.size} values, got [${v.shape}]`);
    }
    let at = 0, k = 0;
    const parts = leaves.map((l) => {
      if (!(l instanceof mg.Tensor)) return l;
      const n = sizes[k++];
      const part = mg.reshape(mg.slice(v, [[at, at + n]]), l.shape);
      at += n;
      return part;
    });
    return mg.tree.unflatten(def, parts);
  };
  return [flat, unravel];
}
