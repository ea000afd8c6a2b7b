/** Convolution and pooling over NCHW tensors. */
import { bind } from "../primitive.ts";
import { conv2d as convPrim } from "../primitives/conv2d.ts";
import { reduceWindow2d } from "../primitives/reduce_window.ts";
import type { Tensor } from "../tensor.ts";
import { div } from "./math.ts";

/** One number for both spatial axes, or [height, width]. */
export type Pair = number | readonly [number, number];

/** Padding: a number for all sides, [h, w], [top, bottom, left, right], or "same"/"valid". */
export type Padding2d =
  | number
  | readonly [number, number]
  | readonly [number, number, number, number]
  | "same"
  | "valid";

/** Options of `conv2d`. */
export interface Conv2dOptions {
  /** Step between windows (default 1). */
  stride?: Pair;
  /** Zero padding (default "valid", i.e. none). */
  padding?: Padding2d;
  /** Spacing between kernel taps (default 1). */
  dilation?: Pair;
  /** Feature groups: input and output channels split into this many independent convolutions. */
  groups?: number;
}

function pair(v: Pair | undefined, dflt: number): [number, number] {
  if (v === undefined) return [dflt, dflt];
  return typeof v === "number" ? [v, v] : [v[0], v[1]];
}

function resolvePadding(
  p: Padding2d | undefined,
  kernel: [number, number],
  dilation: [number, number],
  stride: [number, number],
  input: [number, number],
): [number, number, number, number] {
  if (p === undefined || p === "valid") return [0, 0, 0, 0];
  if (p === "same") {
    const total = [0, 1].map((i) => {
      const out = Math.ceil(input[i] / stride[i]);
      return Math.max(0, (out - 1) * stride[i] + (kernel[i] - 1) * dilation[i] + 1 - input[i]);
    });
    return [
      Math.floor(total[0] / 2),
      total[0] - Math.floor(total[0] / 2),
      Math.floor(total[1] / 2),
      total[1] - Math.floor(total[1] / 2),
    ];
  }
  if (typeof p === "number") return [p, p, p, p];
  if (p.length === 2) return [p[0], p[0], p[1], p[1]];
  return [p[0], p[1], p[2], p[3]];
}

/**
 * 2-D convolution (cross-correlation, as in PyTorch) of x [N, C, H, W] with weights
 * w [O, C/groups, KH, KW].
 *
 * @example
 * ```ts
 * import { conv2d, ones } from "@metagrad/metagrad";
 * conv2d(ones([1, 3, 28, 28]), ones([64, 3, 3, 3]), { padding: 1 }).shape; // [1, 64, 28, 28]
 * ```
 */
export function conv2d(x: Tensor, w: Tensor, opts: Conv2dOptions = {}): Tensor {
  const stride = pair(opts.stride, 1);
  const dilation = pair(opts.dilation, 1);
  const hw: [number, number] = [x.shape[2] ?? 0, x.shape[3] ?? 0];
  const k: [number, number] = [w.shape[2] ?? 0, w.shape[3] ?? 0];
  return bind(convPrim, [x, w], {
    stride,
    dilation,
    padding: resolvePadding(opts.padding, k, dilation, stride, hw),
    lhsDilation: [1, 1],
    groups: opts.groups ?? 1,
  });
}

/** Options of the pooling functions (stride defaults to the window). */
export interface Pool2dOptions {
  /** Step between windows (default: the window size). */
  stride?: Pair;
  /** Padding (default "valid"); padded cells never win a max and count as 0 in an average. */
  padding?: Padding2d;
}

function poolParams(x: Tensor, window: Pair, opts: Pool2dOptions) {
  const win = pair(window, 1);
  const stride = pair(opts.stride ?? win, 1);
  const hw: [number, number] = [x.shape.at(-2) ?? 0, x.shape.at(-1) ?? 0];
  return { window: win, stride, padding: resolvePadding(opts.padding, win, [1, 1], stride, hw) };
}

/**
 * Max pooling over the last two axes. @example
 * ```ts
 * import { maxPool2d, ones } from "@metagrad/metagrad";
 * maxPool2d(ones([1, 64, 28, 28]), 2).shape; // [1, 64, 14, 14]
 * ```
 */
export function maxPool2d(x: Tensor, window: Pair, opts: Pool2dOptions = {}): Tensor {
  return bind(reduceWindow2d, [x], { op: "max", ...poolParams(x, window, opts) });
}

/**
 * Average pooling over the last two axes (padding counts as zeros in the average).
 *
 * @example
 * ```ts
 * import { avgPool2d, ones } from "@metagrad/metagrad";
 * avgPool2d(ones([1, 1, 4, 4]), 2).shape; // [1, 1, 2, 2]
 * ```
 */
export function avgPool2d(x: Tensor, window: Pair, opts: Pool2dOptions = {}): Tensor {
  const p = poolParams(x, window, opts);
  return div(bind(reduceWindow2d, [x], { op: "sum", ...p }), p.window[0] * p.window[1]);
}
