/**
 * N-way K-shot episodes over a class-indexed image set, sampled on the device from a key:
 * each episode draws `ways` distinct classes (optionally rotated by multiples of 90°, each
 * rotation counting as a class of its own), `shots` support and `queries` query images per
 * class without replacement, and labels the classes 0 … ways − 1 in a random order. Support
 * and query sets are shuffled, so no learner can read labels off positions.
 */
import type { Tensor } from "../core/tensor.ts";
import * as random from "../core/random.ts";
import { arange, tensor } from "../core/ops/creation.ts";
import { add, div, mod, mul } from "../core/ops/math.ts";
import { broadcastTo, reshape, slice } from "../core/ops/shape.ts";
import { take } from "../core/ops/indexing.ts";
import { vmap } from "../core/vmap/vmap.ts";
import { fmtShape } from "../core/shape.ts";

/** Options of `sampleEpisodes`. */
export interface EpisodeOptions {
  /** Episodes in the batch. */
  tasks: number;
  /** Classes per episode (N). */
  ways: number;
  /** Support images per class (K). */
  shots: number;
  /** Query images per class (default: shots). */
  queries?: number;
  /** Count each 90° rotation of a class as a new class (×4 classes; square images only). */
  rotations?: boolean;
}

/** A batch of classification episodes (the algorithms' `TaskBatch`). */
export interface EpisodeBatch {
  /** Support images [tasks, ways·shots, channels, H, W]. */
  xs: Tensor;
  /** Support labels [tasks, ways·shots], i32 in [0, ways). */
  ys: Tensor;
  /** Query images [tasks, ways·queries, channels, H, W]. */
  xq: Tensor;
  /** Query labels [tasks, ways·queries]. */
  yq: Tensor;
}

/** Pixel index maps [4, H·W] for rotations by 0°, 90°, 180° and 270° (counter-clockwise). */
function rotationMaps(size: number, backend: Tensor["backend"]): Tensor {
  const maps: number[] = [];
  for (let k = 0; k < 4; k++) {
    for (let i = 0; i < size; i++) {
      for (let j = 0; j < size; j++) {
        // output (i, j) reads input (si, sj)
        const [si, sj] = k === 0
          ? [i, j]
          : k === 1
          ? [j, size - 1 - i]
          : k === 2
          ? [size - 1 - i, size - 1 - j]
          : [size - 1 - j, i];
        maps.push(si * size + sj);
      }
    }
  }
  return tensor(maps, { dtype: "i32", shape: [4, size * size], backend });
}

/**
 * Sample a batch of N-way K-shot episodes from `images` [classes, examples, channels, H, W].
 *
 * @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * import { sampleEpisodes } from "@metagrad/metagrad/envs";
 * const images = random.uniform(random.key(0), [30, 20, 1, 28, 28]);
 * const batch = sampleEpisodes(random.key(1), images, { tasks: 4, ways: 5, shots: 1, queries: 15 });
 * // batch.xs: [4, 5, 1, 28, 28]; batch.yq: [4, 75]
 * ```
 */
export function sampleEpisodes(key: Tensor, images: Tensor, opts: EpisodeOptions): EpisodeBatch {
  const { tasks, ways, shots } = opts;
  const queries = opts.queries ?? shots;
  for (const [name, v] of [["tasks", tasks], ["ways", ways], ["shots", shots]] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`sampleEpisodes: ${name} must be a positive integer, got ${v}`);
    }
  }
  if (!Number.isInteger(queries) || queries < 0) {
    throw new RangeError(`sampleEpisodes: queries must be a non-negative integer, got ${queries}`);
  }
  if (images.ndim !== 5) {
    throw new RangeError(
      `sampleEpisodes: images must be [classes, examples, channels, height, width], got ${
        fmtShape(images.shape)
      }`,
    );
  }
  const [classes, examples, channels, h, w] = images.shape;
  if (opts.rotations && h !== w) {
    throw new RangeError(`sampleEpisodes: rotations need square images, got ${h}×${w}`);
  }
  const classCount = opts.rotations ? 4 * classes : classes;
  if (ways > classCount) {
    throw new RangeError(
      `sampleEpisodes: ${ways}-way episodes need ${ways} classes but the set has ${classCount}` +
        (opts.rotations ? ` (${classes} × 4 rotations)` : ""),
    );
  }
  if (shots + queries > examples) {
    throw new RangeError(
      `sampleEpisodes: ${shots} shots + ${queries} queries per class exceed the ${examples} ` +
        `examples each class has`,
    );
  }
  const per = shots + queries;
  const pixels = h * w;
  const flat = reshape(images, [classes * examples, channels, pixels]);
  const maps = opts.rotations ? rotationMaps(h, images.backend) : null;

  const episode = (k: Tensor): Tensor[] => {
    const [kc, ke, ks, kq] = random.split(k, 4);
    // `ways` distinct classes in random order (the first `ways` of a random permutation, found
    // without ranking all of them): class j of the episode gets label j
    const chosen = random.choice(kc, classCount, ways, { replace: false }); // [ways]
    const base = opts.rotations ? mod(chosen, classes) : chosen;
    const picks = vmap((kk: Tensor) => random.choice(kk, examples, per, { replace: false }))(
      random.splitStacked(ke, ways),
    ) as Tensor; // [ways, per]
    const rows = add(mul(reshape(base, [ways, 1]), examples), picks); // [ways, per]
    let x = take(flat, reshape(rows, [ways * per]), 0); // [ways·per, channels, pixels]
    if (maps) {
      const rot = div(chosen, classes); // [ways]: quarter turns
      const perImage = reshape(broadcastTo(reshape(rot, [ways, 1]), [ways, per]), [ways * per]);
      // flat index of output pixel p of plane (n, c): (n·channels + c)·pixels + map[rot_n][p]
      const src = reshape(take(maps, perImage, 0), [ways * per, 1, pixels]);
      const plane = reshape(
        arange(ways * per * channels, undefined, 1, {
          dtype: "i32",
          backend: images.backend,
        }),
        [ways * per, channels, 1],
      );
      const idx = add(mul(plane, pixels), src); // [ways·per, channels, pixels]
      x = reshape(take(reshape(x, [ways * per * channels * pixels]), reshape(idx, [-1]), 0), [
        ways * per,
        channels,
        pixels,
      ]);
    }
    x = reshape(x, [ways, per, channels, h, w]);
    const labels = broadcastTo(
      reshape(
        arange(ways, undefined, 1, {
          dtype: "i32",
          backend: images.backend,
        }),
        [ways, 1],
      ),
      [ways, per],
    );
    const part = (from: number, to: number, kShuffle: Tensor) => {
      const n = ways * (to - from);
      const order = random.permutation(kShuffle, n);
      const xs = take(reshape(slice(x, [null, [from, to]]), [n, channels, h, w]), order, 0);
      const ys = take(reshape(slice(labels, [null, [from, to]]), [n]), order, 0);
      return [xs, ys];
    };
    const [xs, ys] = part(0, shots, ks);
    const [xq, yq] = queries > 0 ? part(shots, per, kq) : [
      reshape(slice(x, [null, [0, 0]]), [0, channels, h, w]),
      reshape(slice(labels, [null, [0, 0]]), [0]),
    ];
    return [xs, ys, xq, yq];
  };
  const [xs, ys, xq, yq] = vmap(episode)(random.splitStacked(key, tasks)) as Tensor[];
  return { xs, ys, xq, yq };
}

/** The two halves of a class split (see `splitClasses`). */
export interface ClassSplit {
  /** Images of the training classes [trainClasses, examples, ...]. */
  train: Tensor;
  /** Images of the held-out classes [testClasses, examples, ...]. */
  test: Tensor;
  /** Which classes of the input went to `train` (i32, in the order of `train`). */
  trainClasses: Tensor;
  /** Which classes went to `test`. */
  testClasses: Tensor;
}

/**
 * Split a class-indexed set [classes, examples, ...] into disjoint training and held-out
 * classes, at random from `key` (few-shot evaluation tests on classes never seen in training).
 *
 * @example
 * ```ts
 * import { random } from "@metagrad/metagrad";
 * import { splitClasses } from "@metagrad/metagrad/envs";
 * const images = random.uniform(random.key(0), [10, 20, 1, 28, 28]);
 * const { train, test } = splitClasses(random.key(1), images, 0.8); // 8 and 2 classes
 * ```
 */
export function splitClasses(key: Tensor, images: Tensor, trainFraction = 0.8): ClassSplit {
  const classes = images.shape[0];
  const nTrain = Math.round(classes * trainFraction);
  if (
    images.ndim < 2 || !(trainFraction > 0 && trainFraction < 1) || nTrain < 1 || nTrain >= classes
  ) {
    throw new RangeError(
      `splitClasses: cannot split ${fmtShape(images.shape)} (classes first) at fraction ` +
        `${trainFraction}: both parts need at least one class`,
    );
  }
  const order = random.permutation(key, classes);
  const trainClasses = slice(order, [[0, nTrain]]);
  const testClasses = slice(order, [[nTrain, classes]]);
  return {
    train: take(images, trainClasses, 0),
    test: take(images, testClasses, 0),
    trainClasses,
    testClasses,
  };
}
