/**
 * conv2d(x, w, params): NCHW input, OIHW weights (I = C / groups), with stride, explicit
 * padding, kernel dilation, input (lhs) dilation and feature groups. Input dilation makes the
 * input-gradient of a strided convolution another conv2d, so the rule stays closed.
 */
import { fmtShape, sizeOf } from "../shape.ts";
import { runSimple } from "../backend/webgpu/kernels/simple.ts";
import { param } from "../backend/webgpu/wgsl.ts";
import type { Aval, Primitive } from "../primitive.ts";

export interface Conv2dParams {
  stride: readonly [number, number];
  /** [top, bottom, left, right] */
  padding: readonly [number, number, number, number];
  dilation: readonly [number, number];
  lhsDilation: readonly [number, number];
  groups: number;
}

export function convOutSize(
  inSize: number,
  k: number,
  stride: number,
  padLo: number,
  padHi: number,
  dil: number,
  lhsDil: number,
): number {
  const eff = (inSize - 1) * lhsDil + 1 + padLo + padHi;
  const keff = (k - 1) * dil + 1;
  return Math.floor((eff - keff) / stride) + 1;
}

function geometry(x: Aval, w: Aval, p: Conv2dParams) {
  const [N, C, H, W] = x.shape;
  const [O, I, KH, KW] = w.shape;
  const OH = convOutSize(
    H,
    KH,
    p.stride[0],
    p.padding[0],
    p.padding[1],
    p.dilation[0],
    p.lhsDilation[0],
  );
  const OW = convOutSize(
    W,
    KW,
    p.stride[1],
    p.padding[2],
    p.padding[3],
    p.dilation[1],
    p.lhsDilation[1],
  );
  return { N, C, H, W, O, I, KH, KW, OH, OW };
}

export const conv2d: Primitive<Conv2dParams> = {
  name: "conv2d",
  abstractEval([x, w], p) {
    if (x.shape.length !== 4 || w.shape.length !== 4) {
      throw new RangeError(
        `conv2d: needs x [N, C, H, W] and w [O, C/groups, KH, KW], got ${fmtShape(x.shape)} and ${
          fmtShape(w.shape)
        }`,
      );
    }
    if (x.dtype !== "f32" || w.dtype !== "f32") {
      throw new TypeError(`conv2d: needs f32 operands, got ${x.dtype} and ${w.dtype}`);
    }
    const g = geometry(x, w, p);
    if (
      !Number.isInteger(p.groups) || p.groups < 1 || g.C % p.groups !== 0 || g.O % p.groups !== 0
    ) {
      throw new RangeError(
        `conv2d: groups ${p.groups} must divide input channels ${g.C} and output channels ${g.O}`,
      );
    }
    if (g.I * p.groups !== g.C) {
      throw new RangeError(
        `conv2d: weights ${fmtShape(w.shape)} expect ${
          g.I * p.groups
        } input channels (I·groups) but x ${fmtShape(x.shape)} has ${g.C}`,
      );
    }
    for (const v of [...p.stride, ...p.dilation, ...p.lhsDilation]) {
      if (!Number.isInteger(v) || v < 1) {
        throw new RangeError(`conv2d: strides and dilations must be integers ≥ 1`);
      }
    }
    if (p.padding.some((v) => !Number.isInteger(v) || v < 0)) {
      throw new RangeError("conv2d: padding must be integers ≥ 0");
    }
    if (g.OH < 1 || g.OW < 1) {
      throw new RangeError(
        `conv2d: kernel ${g.KH}×${g.KW} (dilated) does not fit the padded ${g.H}×${g.W} input`,
      );
    }
    return { shape: [g.N, g.O, g.OH, g.OW], dtype: "f32" };
  },
  reference([x, w], [xa, wa], p, out) {
    const g = geometry(xa, wa, p);
    const res = new Float64Array(sizeOf(out.shape));
    const perGroup = g.O / p.groups;
    let t = 0;
    for (let n = 0; n < g.N; n++) {
      for (let o = 0; o < g.O; o++) {
        const c0 = Math.floor(o / perGroup) * g.I;
        for (let oh = 0; oh < g.OH; oh++) {
          for (let ow = 0; ow < g.OW; ow++) {
            let acc = 0;
            for (let ci = 0; ci < g.I; ci++) {
              for (let kh = 0; kh < g.KH; kh++) {
                const hd = oh * p.stride[0] + kh * p.dilation[0] - p.padding[0];
                if (hd < 0 || hd % p.lhsDilation[0] !== 0) continue;
                const ih = hd / p.lhsDilation[0];
                if (ih >= g.H) continue;
                for (let kw = 0; kw < g.KW; kw++) {
                  const wd = ow * p.stride[1] + kw * p.dilation[1] - p.padding[2];
                  if (wd < 0 || wd % p.lhsDilation[1] !== 0) continue;
                  const iw = wd / p.lhsDilation[1];
                  if (iw >= g.W) continue;
                  acc += x[((n * g.C + c0 + ci) * g.H + ih) * g.W + iw] *
                    w[((o * g.I + ci) * g.KH + kh) * g.KW + kw];
                }
              }
            }
            res[t++] = acc;
          }
        }
      }
    }
    return res;
  },
  webgpu([x, w], p, out) {
    const g = geometry(x, w, p);
    const P = (i: number) => `i32(${param(i)})`;
    // params: 0 count, 1 C, 2 H, 3 W, 4 O, 5 I, 6 KH, 7 KW, 8 OH, 9 OW, 10 sh, 11 sw, 12 pt,
    // 13 pl, 14 dh, 15 dw, 16 lh, 17 lw, 18 outPerGroup
    const body = `
  let ow = i32(t % ${param(9)});
  let oh = i32((t / ${param(9)}) % ${param(8)});
  let o = i32((t / (${param(9)} * ${param(8)})) % ${param(4)});
  let n = i32(t / (${param(9)} * ${param(8)} * ${param(4)}));
  let C = ${P(1)}; let H = ${P(2)}; let W = ${P(3)}; let I = ${P(5)}; let KH = ${P(6)}; let KW = ${
      P(7)
    };
  let lh = ${P(16)}; let lw = ${P(17)};
  let c0 = (o / ${P(18)}) * I;
  var acc = 0.0;
  for (var ci = 0; ci < I; ci = ci + 1) {
    for (var kh = 0; kh < KH; kh = kh + 1) {
      let hd = oh * ${P(10)} + kh * ${P(14)} - ${P(12)};
      if (hd < 0 || hd % lh != 0) { continue; }
      let ih = hd / lh;
      if (ih >= H) { continue; }
      for (var kw = 0; kw < KW; kw = kw + 1) {
        let wd = ow * ${P(11)} + kw * ${P(15)} - ${P(13)};
        if (wd < 0 || wd % lw != 0) { continue; }
        let iw = wd / lw;
        if (iw >= W) { continue; }
        acc = fma(in0[((n * C + c0 + ci) * H + ih) * W + iw], in1[((o * I + ci) * KH + kh) * KW + kw], acc);
      }
    }
  }
  out[t] = acc;`;
    runSimple(
      "conv2d",
      body,
      [
        sizeOf(out.shape),
        g.C,
        g.H,
        g.W,
        g.O,
        g.I,
        g.KH,
        g.KW,
        g.OH,
        g.OW,
        p.stride[0],
        p.stride[1],
        p.padding[0],
        p.padding[2],
        p.dilation[0],
        p.dilation[1],
        p.lhsDilation[0],
        p.lhsDilation[1],
        g.O / p.groups,
      ],
      [{ storage: x.storage, dtype: "f32" }, { storage: w.storage, dtype: "f32" }],
      { storage: out.storage, dtype: "f32" },
    );
  },
};
