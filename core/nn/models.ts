/** Named model builders used across the meta-learning literature. */
import { relu } from "../ops/math.ts";
import {
  batchNorm,
  type BatchNormMode,
  conv2d,
  dense,
  flatten,
  fn,
  maxPool,
  type Module,
  sequential,
} from "./layers.ts";

/**
 * The standard few-shot CNN ("Conv-4", Vinyals et al. / Finn et al.): 4 × [3×3 conv with
 * `hidden` channels, batch norm, ReLU, 2×2 max-pool], then a linear classifier over `ways`.
 *
 * @example
 * ```ts
 * import { nn } from "@metagrad/metagrad";
 * const net = nn.conv4({ inChannels: 1, imageSize: 28, ways: 5 });
 * ```
 */
export function conv4(
  opts: {
    inChannels: number;
    imageSize: number;
    ways: number;
    hidden?: number;
    batchNormMode?: BatchNormMode;
  },
): Module {
  const hidden = opts.hidden ?? 64;
  const blocks: Module[] = [];
  let size = opts.imageSize;
  for (let i = 0; i < 4; i++) {
    blocks.push(
      conv2d(i === 0 ? opts.inChannels : hidden, hidden, 3, { padding: 1 }),
      batchNorm(hidden, { mode: opts.batchNormMode ?? "transductive" }),
      fn(relu),
      maxPool(2),
    );
    size = Math.floor(size / 2);
  }
  if (size < 1) {
    throw new RangeError(`conv4: images of ${opts.imageSize} pixels vanish after four 2×2 pools`);
  }
  return sequential(...blocks, flatten(), dense(hidden * size * size, opts.ways));
}

/**
 * The sinusoid-regression MLP of MAML: 1 → hidden… → 1 with ReLU.
 *
 * @example
 * ```ts
 * import { nn } from "@metagrad/metagrad";
 * const net = nn.sinusoidMlp(); // 1-40-40-1
 * ```
 */
export function sinusoidMlp(hidden: readonly number[] = [40, 40]): Module {
  const layers: Module[] = [];
  let width = 1;
  for (const h of hidden) {
    layers.push(dense(width, h), fn(relu));
    width = h;
  }
  layers.push(dense(width, 1));
  return sequential(...layers);
}
