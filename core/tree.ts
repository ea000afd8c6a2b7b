/**
 * Pytrees: nested plain objects and arrays whose leaves are tensors (or other values).
 * Parameters, optimizer states and batches are pytrees; transformations flatten them to
 * leaves, work on the leaves, and rebuild the same structure.
 */

/** A nested structure of plain objects/arrays with leaves of type L. */
export type Tree<L> = L | readonly Tree<L>[] | { readonly [k: string]: Tree<L> };

/** Describes a pytree's shape without its leaves; compare with `structureEquals`. */
export type TreeDef =
  | { kind: "leaf" }
  | { kind: "none"; value: null | undefined }
  | { kind: "array"; children: TreeDef[] }
  | { kind: "object"; keys: string[]; children: TreeDef[] };

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (x === null || typeof x !== "object") return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/** Leaves in a deterministic order (object keys sorted) and the structure to rebuild them. */
export function flatten<L = unknown>(tree: unknown): [L[], TreeDef] {
  const leaves: L[] = [];
  const walk = (x: unknown): TreeDef => {
    if (x === null || x === undefined) return { kind: "none", value: x };
    if (Array.isArray(x)) return { kind: "array", children: x.map(walk) };
    if (isPlainObject(x)) {
      const keys = Object.keys(x).sort();
      return { kind: "object", keys, children: keys.map((k) => walk(x[k])) };
    }
    leaves.push(x as L);
    return { kind: "leaf" };
  };
  const def = walk(tree);
  return [leaves, def];
}

/** Rebuild a tree of `def`'s structure from leaves (in `flatten` order). */
export function unflatten<T = unknown>(def: TreeDef, leaves: readonly unknown[]): T {
  let i = 0;
  const build = (d: TreeDef): unknown => {
    switch (d.kind) {
      case "leaf":
        if (i >= leaves.length) throw new RangeError("unflatten: too few leaves for the structure");
        return leaves[i++];
      case "none":
        return d.value;
      case "array":
        return d.children.map(build);
      case "object": {
        const o: Record<string, unknown> = {};
        d.keys.forEach((k, j) => (o[k] = build(d.children[j])));
        return o;
      }
    }
  };
  const out = build(def);
  if (i !== leaves.length) {
    throw new RangeError(`unflatten: ${leaves.length} leaves for a structure of ${i}`);
  }
  return out as T;
}

/** Leaves of a tree. */
export function leaves<L = unknown>(tree: unknown): L[] {
  return flatten<L>(tree)[0];
}

/** The structure of a tree. */
export function structure(tree: unknown): TreeDef {
  return flatten(tree)[1];
}

/** True when two tree structures are the same. */
export function structureEquals(a: TreeDef, b: TreeDef): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Apply `fn` to corresponding leaves of one or more trees of the same structure. */
export function map<R>(fn: (...xs: any[]) => R, tree: unknown, ...rest: unknown[]): any {
  const [ls, def] = flatten(tree);
  const others = rest.map((r, k) => {
    const [l, d] = flatten(r);
    if (!structureEquals(def, d)) {
      throw new TypeError(`tree.map: tree ${k + 2} has a different structure from the first`);
    }
    return l;
  });
  return unflatten(def, ls.map((x, i) => fn(x, ...others.map((o) => o[i]))));
}

/**
 * Names of a tree's leaves (in `flatten` order): object keys and array indices joined by
 * dots, e.g. "layers.0.w"; a bare leaf is "value".
 */
export function leafPaths(def: TreeDef, prefix = ""): string[] {
  switch (def.kind) {
    case "leaf":
      return [prefix || "value"];
    case "none":
      return [];
    case "array":
      return def.children.flatMap((c, i) => leafPaths(c, prefix ? `${prefix}.${i}` : `${i}`));
    case "object":
      return def.children.flatMap((c, i) =>
        leafPaths(c, prefix ? `${prefix}.${def.keys[i]}` : def.keys[i])
      );
  }
}
