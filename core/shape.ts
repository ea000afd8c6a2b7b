/** Shape utilities shared by the shape rules of all primitives. */

export type Shape = readonly number[];

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major (C-contiguous) strides in elements. */
export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function shapesEqual(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function fmtShape(s: Shape): string {
  return `[${s.join(", ")}]`;
}

export function assertValidShape(shape: unknown, op: string): number[] {
  if (!Array.isArray(shape)) throw new TypeError(`${op}: shape must be an array of integers`);
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new RangeError(
        `${op}: invalid shape ${JSON.stringify(shape)}; dims must be integers ≥ 0`,
      );
    }
  }
  return [...shape];
}

/** NumPy broadcasting of any number of shapes; throws naming the op and all shapes. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const j = rank - s.length + i;
      const d = s[i];
      if (d === out[j] || d === 1) continue;
      if (out[j] === 1) out[j] = d;
      else {
        throw new RangeError(
          `${op}: shapes ${shapes.map(fmtShape).join(" and ")} cannot be broadcast together ` +
            `(axis ${j - rank} has sizes ${out[j]} and ${d}); reshape or expandDims so that each ` +
            `axis matches or is 1`,
        );
      }
    }
  }
  return out;
}

/**
 * Strides (in elements) that read a contiguous tensor of `shape` as if broadcast to `target`:
 * broadcast axes get stride 0.
 */
export function broadcastStrides(shape: Shape, target: Shape): number[] {
  const own = stridesOf(shape);
  const out = new Array<number>(target.length).fill(0);
  for (let i = 0; i < shape.length; i++) {
    const j = target.length - shape.length + i;
    out[j] = shape[i] === 1 ? 0 : own[i];
  }
  return out;
}

/** Normalise one possibly negative axis. */
export function normAxis(axis: number, rank: number, op: string): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= Math.max(rank, 1)) {
    throw new RangeError(`${op}: axis ${axis} is out of range for a tensor of rank ${rank}`);
  }
  return axis < 0 ? axis + rank : axis;
}

/** Normalise an axis list (undefined = all axes); sorted, deduplicated check. */
export function normAxes(
  axes: number | readonly number[] | undefined,
  rank: number,
  op: string,
): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === "number" ? [axes] : [...axes];
  const out = list.map((a) => {
    if (!Number.isInteger(a) || a < -rank || a >= rank) {
      throw new RangeError(`${op}: axis ${a} is out of range for a tensor of rank ${rank}`);
    }
    return a < 0 ? a + rank : a;
  });
  if (new Set(out).size !== out.length) {
    throw new RangeError(`${op}: repeated axis in ${JSON.stringify(list)}`);
  }
  return out.sort((a, b) => a - b);
}

/** A box of an index space: per axis, its first index and how many. */
export interface IndexBox {
  lo: number[];
  size: number[];
}

/**
 * Merge adjacent axes that every operand traverses contiguously, so kernels index in as few
 * dimensions as possible. `strides[k]` are operand k's strides over `shape`; `boxes[k]`, when
 * given, the box operand k is read in (axes it cuts stay apart, and their boxes come along).
 */
export function collapseDims(
  shape: Shape,
  strides: number[][],
  boxes: readonly (IndexBox | undefined)[] = [],
): { shape: number[]; strides: number[][]; bounds: (IndexBox | undefined)[] } {
  const cut = shape.map((d, i) => boxes.some((b) => b && (b.lo[i] !== 0 || b.size[i] !== d)));
  const dims: number[] = [];
  const from: number[] = []; // the axis each kept one starts from
  const st: number[][] = strides.map(() => []);
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1 && !cut[i]) continue;
    const last = dims.length - 1;
    if (
      last >= 0 && !cut[i] && !cut[from[last]] &&
      strides.every((s, k) => st[k][last] === s[i] * shape[i])
    ) {
      dims[last] *= shape[i];
      strides.forEach((s, k) => (st[k][last] = s[i]));
    } else {
      dims.push(shape[i]);
      from.push(i);
      strides.forEach((s, k) => st[k].push(s[i]));
    }
  }
  const bounds = strides.map((_, k) => {
    const b = boxes[k];
    if (!b) return undefined;
    return {
      lo: from.map((a) => (cut[a] ? b.lo[a] : 0)),
      size: from.map((a, j) => (cut[a] ? b.size[a] : dims[j])),
    };
  });
  return { shape: dims, strides: st, bounds };
}

/**
 * Where the elements of a value of `shape` lie in a flat buffer: element (i₀, i₁, …) at
 * `offset + Σ iₖ·strides[k]`. A slice, a transpose or a reshape that adds or drops axes of size
 * 1 changes only the layout (`Primitive.window`).
 */
export interface AffineLayout {
  /** Elements before the first one. */
  offset: number;
  /** Elements between neighbours along each axis (0: broadcast, negative: reversed). */
  strides: number[];
  /** The value's shape. */
  shape: readonly number[];
}

/** Whether two shapes are the same once their axes of size 1 are dropped. */
export function sameNonUnitDims(a: readonly number[], b: readonly number[]): boolean {
  const x = a.filter((d) => d !== 1), y = b.filter((d) => d !== 1);
  return x.length === y.length && x.every((d, i) => d === y[i]);
}

/**
 * `layout` seen through a reshape to `shape` that only adds or drops axes of size 1 (the
 * caller checks `sameNonUnitDims`): the same offset, the kept axes' strides, 0 for new ones.
 */
export function unitReshaped<L extends AffineLayout>(layout: L, shape: readonly number[]): L {
  const kept = layout.shape.flatMap((d, i) => d === 1 ? [] : [layout.strides[i]]);
  let next = 0;
  return { ...layout, strides: shape.map((d) => d === 1 ? 0 : kept[next++]), shape };
}
