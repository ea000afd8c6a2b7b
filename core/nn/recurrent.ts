/**
 * Recurrent layers: GRU and LSTM cells (one step), and their sequence versions, which run a
 * cell over the time axis with `scan` — traced once, a loop under jit, a reverse scan under
 * grad — so RNN policies and learned optimisers are written once for any sequence length.
 */
import type { Tensor } from "../tensor.ts";
import type { BackendName } from "../backend/storage.ts";
import * as random from "../random.ts";
import { full, zeros } from "../ops/creation.ts";
import { add, maximum, mul, relu, rsqrt, sigmoid, sub, tanh } from "../ops/math.ts";
import { mean, sum } from "../ops/reduce.ts";
import { customVjp } from "../autodiff/api.ts";
import { concat, moveAxis, reshape, slice } from "../ops/shape.ts";
import { matmul } from "../ops/linalg.ts";
import { fmtShape } from "../shape.ts";
import { scan } from "../control/scan.ts";
import { checkBoolean, checkNumber, checkOptions, oneOf } from "../validate.ts";
import { glorotUniform, zerosInit } from "./init.ts";
import type { Module } from "./layers.ts";

/** A recurrent cell: parameters, a state, and one step `apply(params, state, x) → state`. */
export interface RecurrentCell<P, S> {
  /** Fresh parameters from a key. */
  init(key: Tensor): P;
  /** The zero state for a batch of shape `batch` (e.g. [B], or [] for one sequence). */
  initialState(batch: readonly number[], backend?: BackendName): S;
  /** One step: the next state from the state and an input [...batch, inFeatures]. */
  apply(params: P, state: S, x: Tensor): S;
  /**
   * The part of a step that reads only the input (x·W + b → [...batch, gates]). With
   * `applyProjected`, a sequence projects every step's input in one product before its loop
   * and keeps only the recurrent product inside it (`runRecurrent` does when both are given).
   */
  project?(params: P, x: Tensor): Tensor;
  /** One step from a projected input: `apply(p, s, x)` is `applyProjected(p, s, project(p, x))`. */
  applyProjected?(params: P, state: S, projected: Tensor): S;
  /** What a step emits: the hidden vector [...batch, hidden]. */
  output(state: S): Tensor;
}

/** Parameters of a GRU cell (PyTorch's gate layout: reset, update, new). */
export interface GruParams {
  /** Input weights [inFeatures, 3·hidden]. */
  wi: Tensor;
  /** Recurrent weights [hidden, 3·hidden]. */
  wh: Tensor;
  /** Input bias [3·hidden] (with `layerNorm`: the shift after normalising). */
  bi: Tensor;
  /** Recurrent bias [3·hidden] (with `layerNorm`: the shift after normalising). */
  bh: Tensor;
  /** Scale of the normalised input pre-activations [3·hidden] (`layerNorm` only). */
  si?: Tensor;
  /** Scale of the normalised recurrent pre-activations [3·hidden] (`layerNorm` only). */
  sh?: Tensor;
}

/** Options of `gruCell` (the defaults are PyTorch's GRU). */
export interface GruCellOptions {
  /**
   * Normalise each gate's input and recurrent pre-activations over its `hidden` units before
   * the scale and shift (Ba et al. 2016's layer-normalised GRU; pytorch_rl2's RL² cell). Keeps
   * the gates in range however the inputs and the state grow; costs two row statistics per step.
   * Default false.
   */
  layerNorm?: boolean;
  /**
   * The candidate state's nonlinearity (default "tanh"). "relu" (pytorch_rl2's) lets the state
   * hold magnitudes such as counts without saturating; pair it with `layerNorm`.
   */
  candidate?: "tanh" | "relu";
  /**
   * Initial bias of the update gate z, in h' = (1 − z)·n + z·h (default 0: half the state
   * kept per step at init). 1 keeps 73% per step — pytorch_rl2's "forget bias" — so memories
   * outlast the first steps of training.
   */
  updateBias?: number;
}

/** Parameters of an LSTM cell (gates input, forget, cell, output). */
export interface LstmParams {
  /** Input weights [inFeatures, 4·hidden]. */
  wi: Tensor;
  /** Recurrent weights [hidden, 4·hidden]. */
  wh: Tensor;
  /** Bias [4·hidden] (the forget gate's starts at 1). */
  b: Tensor;
}

/** Columns [i·size, (i+1)·size) of the last axis. */
function part(t: Tensor, i: number, size: number): Tensor {
  return slice(t, [...t.shape.slice(0, -1).map(() => null), [i * size, (i + 1) * size]]);
}

/** What `normalizeBlocks`' backward reads: the input's blocks and their statistics. */
interface BlockStats {
  blocks: Tensor;
  mean: Tensor;
  rstd: Tensor;
  scale: Tensor;
}

/**
 * y = (g − μ)/√(σ² + ε)·scale + shift over each block of `size` columns of g's last axis (a
 * GRU's gates apart; any number of blocks, so two cells' projections side by side normalise as
 * two), returned in the block layout [..., blocks, size]: scale and shift apply there, so
 * that normalising, scaling and shifting are one kernel (a reshape of a computed value ends the
 * planner's elementwise fusion), and the caller views the result as it needs. μ and σ² come
 * from Σg and Σg² — one pass over g, no centred copy — which loses precision only where |μ|
 * dwarfs σ (by ~10³ in f32); σ² is clamped at 0.
 */
function normalizeBlocksForward(
  g: Tensor,
  scale: Tensor,
  shift: Tensor,
  size: number,
): [Tensor, BlockStats] {
  const blocks = reshape(g, [...g.shape.slice(0, -1), g.shape[g.ndim - 1] / size, size]);
  const mu = mean(blocks, -1, true);
  const meanSquare = mean(mul(blocks, blocks), -1, true);
  const rstd = rsqrt(add(maximum(sub(meanSquare, mul(mu, mu)), 0), 1e-5));
  const perBlock = (t: Tensor) => reshape(t, blocks.shape.slice(-2));
  const y = add(mul(mul(sub(blocks, mu), rstd), perBlock(scale)), perBlock(shift));
  return [y, { blocks, mean: mu, rstd, scale }];
}

/**
 * `normalizeBlocksForward`'s result with its gradient written out (x̂ = (g − μ)·rstd, d = dy·
 * scale: dg = rstd·(d − mean(d) − x̂·mean(d·x̂)), dscale = Σ dy·x̂, dshift = Σ dy over the
 * leading axes): two row sums and elementwise passes. The rule applies where the gradient is
 * taken directly — a sequence's input projection, outside its loop; inside a traced scan body
 * (the recurrent projection) `customVjp` keeps the ops and the body is differentiated through
 * them. Made of differentiable ops, so it differentiates again.
 */
const normalizeBlocks = customVjp(
  (g: Tensor, scale: Tensor, shift: Tensor, size: number) =>
    normalizeBlocksForward(g, scale, shift, size)[0],
  (g: Tensor, scale: Tensor, shift: Tensor, size: number) =>
    normalizeBlocksForward(g, scale, shift, size),
  (r: BlockStats, dy: Tensor) => {
    const lead = r.blocks.shape.slice(0, -2).map((_, i) => i);
    const xhat = mul(sub(r.blocks, r.mean), r.rstd);
    const d = mul(dy, reshape(r.scale, r.blocks.shape.slice(-2)));
    const dg = mul(
      sub(sub(d, mean(d, -1, true)), mul(xhat, mean(mul(d, xhat), -1, true))),
      r.rstd,
    );
    const perColumn = (t: Tensor) => reshape(t, [r.scale.shape[0]]);
    return [
      reshape(dg, [...r.blocks.shape.slice(0, -2), r.scale.shape[0]]),
      perColumn(sum(mul(dy, xhat), lead)),
      perColumn(sum(dy, lead)),
      null,
    ];
  },
);

/**
 * One GRU step: `apply(params, h, x)` → the next hidden state [..., hidden] (Cho et al.,
 * PyTorch's gate layout: reset, update, new; the reset gate applies after the recurrent
 * product). Options give pytorch_rl2's RL² cell: layer-normalised gates, a ReLU candidate and
 * an update-gate bias of 1.
 *
 * @example
 * ```ts
 * import { nn, random, zeros, ones } from "@metagrad/metagrad";
 * const cell = nn.gruCell(3, 8);
 * const p = cell.init(random.key(0));
 * const h1 = cell.apply(p, zeros([2, 8]), ones([2, 3]));
 * const rl2Cell = nn.gruCell(3, 8, { layerNorm: true, candidate: "relu", updateBias: 1 });
 * ```
 */
export function gruCell(
  inFeatures: number,
  hidden: number,
  opts: GruCellOptions = {},
): RecurrentCell<GruParams, Tensor> {
  const where = "gruCell";
  checkOptions(opts, where, ["layerNorm", "candidate", "updateBias"]);
  const normed = checkBoolean(opts.layerNorm ?? false, "layerNorm", where);
  const candidate = oneOf(opts.candidate ?? "tanh", ["tanh", "relu"], "candidate", where);
  const updateBias = checkNumber(opts.updateBias ?? 0, "updateBias", where);
  const act = candidate === "relu" ? relu : tanh;
  /** x·W + b, or with `layerNorm` each gate's block normalised, scaled and shifted. */
  const affine = (x: Tensor, w: Tensor, scale: Tensor | undefined, shift: Tensor) => {
    const g = matmul(x, w);
    if (!normed) return add(g, shift);
    if (!scale) {
      throw new TypeError(
        `${where}: layerNorm needs the scales si and sh in the parameters (from this cell's init)`,
      );
    }
    return reshape(normalizeBlocks(g, scale, shift, hidden), g.shape);
  };
  const project = (p: GruParams, x: Tensor) => affine(x, p.wi, p.si, p.bi);
  const applyProjected = (p: GruParams, h: Tensor, gi: Tensor) => {
    const gh = affine(h, p.wh, p.sh, p.bh);
    const r = sigmoid(add(part(gi, 0, hidden), part(gh, 0, hidden)));
    const z = sigmoid(add(part(gi, 1, hidden), part(gh, 1, hidden)));
    const n = act(add(part(gi, 2, hidden), mul(r, part(gh, 2, hidden))));
    return add(mul(sub(1, z), n), mul(z, h));
  };
  return {
    init(key) {
      const [k1, k2] = random.split(key);
      const ones = () => full([3 * hidden], 1, { backend: key.backend });
      const bh = updateBias === 0 ? zerosInit(key, [3 * hidden]) : concat([
        zerosInit(key, [hidden]),
        full([hidden], updateBias, { backend: key.backend }),
        zerosInit(key, [hidden]),
      ]);
      return {
        wi: glorotUniform(k1, [inFeatures, 3 * hidden]),
        wh: glorotUniform(k2, [hidden, 3 * hidden]),
        bi: zerosInit(key, [3 * hidden]),
        bh,
        ...(normed ? { si: ones(), sh: ones() } : {}),
      };
    },
    initialState: (batch, backend) => zeros([...batch, hidden], { backend }),
    apply: (p, h, x) => applyProjected(p, h, project(p, x)),
    project,
    applyProjected,
    output: (h) => h,
  };
}

/**
 * One LSTM step: `apply(params, [h, c], x)` → `[h', c']` (gates input, forget, cell, output;
 * forget bias initialised to 1).
 *
 * @example
 * ```ts
 * import { nn, random, zeros, ones } from "@metagrad/metagrad";
 * const cell = nn.lstmCell(3, 8);
 * const p = cell.init(random.key(0));
 * const [h, c] = cell.apply(p, [zeros([2, 8]), zeros([2, 8])], ones([2, 3]));
 * ```
 */
export function lstmCell(
  inFeatures: number,
  hidden: number,
): RecurrentCell<LstmParams, [Tensor, Tensor]> {
  const project = (p: LstmParams, x: Tensor) => add(matmul(x, p.wi), p.b);
  const applyProjected = (
    p: LstmParams,
    [h, c]: [Tensor, Tensor],
    projected: Tensor,
  ): [Tensor, Tensor] => {
    const gates = add(projected, matmul(h, p.wh));
    const i = sigmoid(part(gates, 0, hidden)), f = sigmoid(part(gates, 1, hidden));
    const g = tanh(part(gates, 2, hidden)), o = sigmoid(part(gates, 3, hidden));
    const c2 = add(mul(f, c), mul(i, g));
    return [mul(o, tanh(c2)), c2];
  };
  return {
    init(key) {
      const [k1, k2] = random.split(key);
      const b = concat([
        zerosInit(key, [hidden]),
        full([hidden], 1, { backend: key.backend }),
        zerosInit(key, [2 * hidden]),
      ]);
      return {
        wi: glorotUniform(k1, [inFeatures, 4 * hidden]),
        wh: glorotUniform(k2, [hidden, 4 * hidden]),
        b,
      };
    },
    initialState: (batch, backend) => [
      zeros([...batch, hidden], { backend }),
      zeros([...batch, hidden], { backend }),
    ],
    apply: (p, state, x) => applyProjected(p, state, project(p, x)),
    project,
    applyProjected,
    output: ([h]) => h,
  };
}

/** Options of `runRecurrent` and the sequence layers. */
export interface RecurrentOptions {
  /** Inputs are [T, ...batch, F] instead of [...batch, T, F] (outputs likewise). */
  timeMajor?: boolean;
  /** Process the sequence from its last step to its first (outputs keep their positions). */
  reverse?: boolean;
}

/**
 * Run a cell over a sequence with `scan`: xs is [...batch, T, F] (or [T, ...batch, F] with
 * `timeMajor`); returns the final state and the outputs [...batch, T, hidden].
 *
 * @example
 * ```ts
 * import { nn, random, ones } from "@metagrad/metagrad";
 * const cell = nn.gruCell(3, 8);
 * const p = cell.init(random.key(0));
 * const [hT, hs] = nn.runRecurrent(cell, p, cell.initialState([2]), ones([2, 10, 3]));
 * // hT: [2, 8], hs: [2, 10, 8]
 * ```
 */
export function runRecurrent<P, S>(
  cell: RecurrentCell<P, S>,
  params: P,
  state: S,
  xs: Tensor,
  opts: RecurrentOptions = {},
): [S, Tensor] {
  if (xs.ndim < 2) {
    throw new RangeError(
      `runRecurrent: inputs must be [...batch, T, features], got ${fmtShape(xs.shape)}`,
    );
  }
  const seq = opts.timeMajor ? xs : moveAxis(xs, -2, 0);
  // the input projection of every step in one product, outside the loop, when the cell splits
  const { project, applyProjected } = cell;
  const split = project && applyProjected;
  const [final, ys] = scan(
    (s: S, x: Tensor) => {
      const next = split ? applyProjected(params, s, x) : cell.apply(params, s, x);
      return [next, cell.output(next)];
    },
    state,
    split ? project(params, seq) : seq,
    { reverse: opts.reverse },
  );
  return [final, opts.timeMajor ? ys : moveAxis(ys, 0, -2)];
}

/** A sequence layer from a cell: zero initial state, outputs at every step. */
function sequenceLayer<P, S>(cell: RecurrentCell<P, S>, opts: RecurrentOptions): Module<P, null> {
  return {
    init: (key) => ({ params: cell.init(key), state: null }),
    apply(params, _state, xs) {
      const batch = opts.timeMajor ? xs.shape.slice(1, -1) : xs.shape.slice(0, -2);
      const [, ys] = runRecurrent(cell, params, cell.initialState(batch, xs.backend), xs, opts);
      return [ys, null];
    },
  };
}

/**
 * A GRU over sequences [...batch, T, inFeatures] → [...batch, T, hidden], run with `scan`.
 *
 * @example
 * ```ts
 * import { nn, random, ones } from "@metagrad/metagrad";
 * const layer = nn.gru(3, 16);
 * const { params, state } = layer.init(random.key(0));
 * const [hs] = layer.apply(params, state, ones([4, 20, 3])); // [4, 20, 16]
 * ```
 */
export function gru(
  inFeatures: number,
  hidden: number,
  opts: RecurrentOptions = {},
): Module<GruParams, null> {
  return sequenceLayer(gruCell(inFeatures, hidden), opts);
}

/**
 * An LSTM over sequences [...batch, T, inFeatures] → [...batch, T, hidden], run with `scan`.
 *
 * @example
 * ```ts
 * import { nn, random, ones } from "@metagrad/metagrad";
 * const layer = nn.lstm(3, 16);
 * const { params, state } = layer.init(random.key(0));
 * const [hs] = layer.apply(params, state, ones([4, 20, 3])); // [4, 20, 16]
 * ```
 */
export function lstm(
  inFeatures: number,
  hidden: number,
  opts: RecurrentOptions = {},
): Module<LstmParams, null> {
  return sequenceLayer(lstmCell(inFeatures, hidden), opts);
}
