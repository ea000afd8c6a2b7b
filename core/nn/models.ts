/** Named model builders used across the meta-learning literature. */
import type { Tensor } from "../tensor.ts";
import { relu } from "../ops/math.ts";
import type { Initializer } from "./init.ts";
import {
  batchNorm,
  type BatchNormMode,
  conv2d,
  dense,
  flatten,
  fn,
  maxPool2d,
  type Module,
  sequential,
} from "./layers.ts";

/**
 * The standard few-shot CNN ("Conv-4", Vinyals et al. / Finn et al.): 4 × [3×3 conv with
 * `hidden` channels, batch norm, ReLU, 2×2 max-pool], then a linear classifier over `ways` —
 * or, without `ways`, the flattened features (the embedding of metric-based learners).
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
    ways?: number;
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
      maxPool2d(2),
    );
    size = Math.floor(size / 2);
  }
  if (size < 1) {
    throw new RangeError(`conv4: images of ${opts.imageSize} pixels vanish after four 2×2 pools`);
  }
  const head = opts.ways === undefined ? [] : [dense(hidden * size * size, opts.ways)];
  const net = sequential(...blocks, flatten(), ...head);
  const want = [opts.inChannels, opts.imageSize, opts.imageSize];
  return {
    init: net.init,
    apply(p, s, x, ctx) {
      if (x.ndim < 4 || x.shape.slice(-3).some((d, i) => d !== want[i])) {
        throw new RangeError(
          `conv4: built for images [N, ${want.join(", ")}] (inChannels, imageSize), got ` +
            `[${x.shape.join(", ")}]; resize the images (e.g. loadOmniglot's imageSize) or build ` +
            `conv4 for this size`,
        );
      }
      return net.apply(p, s, x, ctx);
    },
  };
}

/** Options of `mlp`. */
export interface MlpOptions {
  /** Activation between layers (default ReLU). */
  activation?: (x: Tensor) => Tensor;
  /** Activation after the last layer (default none). */
  finalActivation?: (x: Tensor) => Tensor;
  /** Weight initialiser of every layer (default Glorot uniform). */
  init?: Initializer;
  /** Bias initialiser of every layer, given the layer's fan-in (default zeros). */
  biasInit?: Initializer;
}

/**
 * A multi-layer perceptron through the given widths, e.g. `mlp([1, 40, 40, 1])`.
 *
 * @example
 * ```ts
 * import { nn, random, ones, tanh } from "@metagrad/metagrad";
 * const net = nn.mlp([4, 64, 64, 2], { activation: tanh });
 * const { params, state } = net.init(random.key(0));
 * const [y] = net.apply(params, state, ones([8, 4])); // [8, 2]
 * ```
 */
export function mlp(sizes: readonly number[], opts: MlpOptions = {}): Module {
  if (sizes.length < 2 || sizes.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new RangeError(
      `mlp: widths must be at least two positive integers (input and output), got [${sizes}]`,
    );
  }
  const layers: Module[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    layers.push(dense(sizes[i], sizes[i + 1], { init: opts.init, biasInit: opts.biasInit }));
    const act = i + 2 < sizes.length ? opts.activation ?? relu : opts.finalActivation;
    if (act) layers.push(fn(act));
  }
  return sequential(...layers);
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
  return mlp([1, ...hidden, 1]);
}
