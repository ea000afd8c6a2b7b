/**
 * reduceWindow2d(x, {op, window, stride, padding}): max or sum over 2-D windows of the last
 * two axes (any leading axes are batch). Padding contributes the op's identity (−∞ or 0).
 * Max/avg pooling are built on it.
 */
import { fmtShape, sizeOf } from "../shape.ts";
import { checkLoopBudget, runSimple } from "../backend/webgpu/kernels/simple.ts";
import { param } from "../backend/webgpu/wgsl.ts";
import type { Primitive } from "../primitive.ts";
import { convOutSize } from "./conv2d.ts";
import type { Tensor } from "../tensor.ts";
import { bind } from "../primitive.ts";
import { add, equal, logicalAnd, logicalNot, logicalOr, where } from "../ops/math.ts";
import { fullLike, tensor } from "../ops/creation.ts";
import { reshape } from "../ops/shape.ts";
import { pad } from "./pad.ts";
import { slice } from "./slice.ts";

export interface ReduceWindowParams {
  op: "max" | "sum";
  window: readonly [number, number];
  stride: readonly [number, number];
  /** [top, bottom, left, right] */
  padding: readonly [number, number, number, number];
}

export const reduceWindow2d: Primitive<ReduceWindowParams> = {
  name: "reduceWindow2d",
  // leading axes are already batch axes
  batch: ([x], _b, p) => bind(reduceWindow2d, [x], p),
  vjp(g, [x], out, p) {
    return [windowGrad(g, x, out, p)];
  },
  abstractEval([x], p) {
    if (x.shape.length < 2) {
      throw new RangeError(`reduceWindow2d: needs rank ≥ 2, got ${fmtShape(x.shape)}`);
    }
    if (x.dtype !== "f32") throw new TypeError(`reduceWindow2d: needs f32, got ${x.dtype}`);
    const [H, W] = x.shape.slice(-2);
    const OH = convOutSize(H, p.window[0], p.stride[0], p.padding[0], p.padding[1], 1, 1);
    const OW = convOutSize(W, p.window[1], p.stride[1], p.padding[2], p.padding[3], 1, 1);
    if ([...p.window, ...p.stride].some((v) => !Number.isInteger(v) || v < 1)) {
      throw new RangeError("reduceWindow2d: window and stride must be integers ≥ 1");
    }
    if (OH < 1 || OW < 1) {
      throw new RangeError(
        `reduceWindow2d: window ${p.window.join("×")} larger than padded input ${H}×${W}`,
      );
    }
    return { shape: [...x.shape.slice(0, -2), OH, OW], dtype: "f32" };
  },
  reference([x], [a], p, out) {
    const [H, W] = a.shape.slice(-2);
    const [OH, OW] = out.shape.slice(-2);
    const B = sizeOf(a.shape.slice(0, -2));
    const res = new Float64Array(sizeOf(out.shape));
    let t = 0;
    for (let b = 0; b < B; b++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          let acc = p.op === "max" ? -Infinity : 0;
          for (let kh = 0; kh < p.window[0]; kh++) {
            const ih = oh * p.stride[0] + kh - p.padding[0];
            if (ih < 0 || ih >= H) continue;
            for (let kw = 0; kw < p.window[1]; kw++) {
              const iw = ow * p.stride[1] + kw - p.padding[2];
              if (iw < 0 || iw >= W) continue;
              const v = x[(b * H + ih) * W + iw];
              if (p.op === "sum") acc += v;
              else if (!Number.isNaN(acc) && (Number.isNaN(v) || v > acc)) acc = v;
            }
          }
          res[t++] = acc;
        }
      }
    }
    return res;
  },
  webgpu([x], p, out) {
    const [H, W] = x.shape.slice(-2);
    const [OH, OW] = out.shape.slice(-2);
    const P = (i: number) => `i32(${param(i)})`;
    const combine = p.op === "max"
      ? "if (!is_nan(acc) && (is_nan(v) || v > acc)) { acc = v; }"
      : "acc = acc + v;";
    // params: 0 count, 1 H, 2 W, 3 OH, 4 OW, 5 kh, 6 kw, 7 sh, 8 sw, 9 pt, 10 pl
    const body = `
  let ow = i32(t % ${param(4)});
  let oh = i32((t / ${param(4)}) % ${param(3)});
  let b = i32(t / (${param(4)} * ${param(3)}));
  let H = ${P(1)}; let W = ${P(2)};
  var acc: f32 = ${p.op === "max" ? "-inf_f32()" : "0.0"};
  for (var kh = 0; kh < ${P(5)}; kh = kh + 1) {
    let ih = oh * ${P(7)} + kh - ${P(9)};
    if (ih < 0 || ih >= H) { continue; }
    for (var kw = 0; kw < ${P(6)}; kw = kw + 1) {
      let iw = ow * ${P(8)} + kw - ${P(10)};
      if (iw < 0 || iw >= W) { continue; }
      let v = in0(u32((b * H + ih) * W + iw));
      ${combine}
    }
  }
  out[t] = acc;`;
    checkLoopBudget(`reduceWindow2d ${p.op}`, sizeOf(out.shape), p.window[0] * p.window[1]);
    runSimple(
      `reduceWindow2d ${p.op}`,
      body,
      [
        sizeOf(out.shape),
        H,
        W,
        OH,
        OW,
        p.window[0],
        p.window[1],
        p.stride[0],
        p.stride[1],
        p.padding[0],
        p.padding[2],
      ],
      [{ storage: x.storage, dtype: "f32" }],
      { storage: out.storage, dtype: "f32" },
    );
  },
};

/**
 * For each window offset (kh, kw), the strided slice of the padded input lines up with the
 * output; its cotangent share (all of g for sum; g at the first maximum for max) is scattered
 * back by the adjoint of that slice — a pad with interior zeros.
 */
function windowGrad(g: Tensor, x: Tensor, out: Tensor, p: ReduceWindowParams): Tensor {
  const tiled = p.op === "max" && p.window[0] === p.stride[0] && p.window[1] === p.stride[1] &&
    p.padding.every((v) => v === 0);
  if (tiled) return tiledMaxGrad(g, x, out, p.window);
  const lead = x.shape.slice(0, -2).map(() => 0);
  const [H, W] = x.shape.slice(-2);
  const [OH, OW] = out.shape.slice(-2);
  const [pt, pb, pl, pr] = p.padding;
  const Hp = H + pt + pb, Wp = W + pl + pr;
  const rank = x.shape.length;
  const xp = p.op === "max"
    ? bind(pad, [x], {
      lo: [...lead, pt, pl],
      hi: [...lead, pb, pr],
      interior: [...lead, 0, 0],
      value: -Infinity,
    })
    : x;
  let assigned: Tensor | null = null;
  let total: Tensor | null = null;
  for (let kh = 0; kh < p.window[0]; kh++) {
    for (let kw = 0; kw < p.window[1]; kw++) {
      let share = g;
      if (p.op === "max") {
        const view = bind(slice, [xp], {
          start: [...lead, kh, kw],
          stop: [
            ...x.shape.slice(0, -2),
            kh + (OH - 1) * p.stride[0] + 1,
            kw + (OW - 1) * p.stride[1] + 1,
          ],
          step: [...lead.map(() => 1), p.stride[0], p.stride[1]],
        });
        const isMax = equal(view, out);
        const first: Tensor = assigned ? logicalAnd(isMax, logicalNot(assigned)) : isMax;
        assigned = assigned ? logicalOr(assigned, first) : first;
        share = where(first, g, 0);
      }
      const placed = bind(pad, [share], {
        lo: [...lead, kh, kw],
        hi: [
          ...lead,
          Hp - kh - ((OH - 1) * p.stride[0] + 1),
          Wp - kw - ((OW - 1) * p.stride[1] + 1),
        ],
        interior: [...lead, p.stride[0] - 1, p.stride[1] - 1],
        value: 0,
      });
      total = total ? add(total, placed) : placed;
    }
  }
  return bind(slice, [total!], {
    start: [...lead, pt, pl],
    stop: [...x.shape.slice(0, -2), pt + H, pl + W],
    step: Array.from({ length: rank }, () => 1),
  });
}

/**
 * Max pooling with non-overlapping windows (stride = window, no padding: every CNN's 2×2
 * pool): pick each window's first maximum as an index at output size (one cheap pass per
 * window position), then write the whole gradient in one fused full-size pass —
 * dx[.., i·kh + a, j·kw + b] = g[.., i, j] where (a, b) is the pick, else 0. Rows and columns
 * past the last whole window get zeros.
 */
function tiledMaxGrad(
  g: Tensor,
  x: Tensor,
  out: Tensor,
  [kh, kw]: readonly [number, number],
): Tensor {
  const lead = x.shape.slice(0, -2);
  const zeros = lead.map(() => 0);
  const ones = lead.map(() => 1);
  const [H, W] = x.shape.slice(-2);
  const [OH, OW] = out.shape.slice(-2);
  // the pick: the smallest window position a·kw + b holding the maximum (kh·kw if none: NaN)
  let pick: Tensor = fullLike(out, kh * kw);
  for (let a = kh - 1; a >= 0; a--) {
    for (let b = kw - 1; b >= 0; b--) {
      const view = bind(slice, [x], {
        start: [...zeros, a, b],
        stop: [...lead, a + (OH - 1) * kh + 1, b + (OW - 1) * kw + 1],
        step: [...ones, kh, kw],
      });
      pick = where(equal(view, out), a * kw + b, pick);
    }
  }
  const positions = tensor(Array.from({ length: kh * kw }, (_, i) => i), {
    shape: [...ones, 1, kh, 1, kw],
    backend: x.backend,
  });
  const spread = (t: Tensor) => reshape(t, [...lead, OH, 1, OW, 1]);
  const blocks = where(equal(positions, spread(pick)), spread(g), 0); // [.., OH, kh, OW, kw]
  const dx = reshape(blocks, [...lead, OH * kh, OW * kw]);
  if (OH * kh === H && OW * kw === W) return dx;
  return bind(pad, [dx], {
    lo: [...zeros, 0, 0],
    hi: [...zeros, H - OH * kh, W - OW * kw],
    interior: [...zeros, 0, 0],
    value: 0,
  });
}
