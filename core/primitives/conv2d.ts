/**
 * conv2d(x, w, params): NCHW input, OIHW weights (I = C / groups), with stride, explicit
 * padding, kernel dilation, input (lhs) dilation and feature groups. Input dilation makes the
 * input-gradient of a strided convolution another conv2d, so the rule stays closed.
 */
import { fmtShape, sizeOf } from "../shape.ts";
import { checkLoopBudget, runSimple } from "../backend/webgpu/kernels/simple.ts";
import { param } from "../backend/webgpu/wgsl.ts";
import type { Aval, GpuOperand, Primitive } from "../primitive.ts";
import { GpuStorage, runtime } from "../backend/webgpu/runtime.ts";
import { runMatmul } from "../backend/webgpu/kernels/matmul.ts";
import type { Tensor } from "../tensor.ts";
import { bind } from "../primitive.ts";
import { flip, reshape, slice, transpose } from "../ops/shape.ts";
import { materialize } from "./batching.ts";
import { stridedReadGpu } from "./strided.ts";

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

/** sh, sw, pt, pl, dh, dw, lh, lw: the window as the kernels read it, in this order. */
function windowParams(p: Conv2dParams): number[] {
  return [
    p.stride[0],
    p.stride[1],
    p.padding[0],
    p.padding[2],
    p.dilation[0],
    p.dilation[1],
    p.lhsDilation[0],
    p.lhsDilation[1],
  ];
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
  batch([x, w], [bx, bw], p, size) {
    if (!bw) {
      // fold the vmap axis into the image batch
      const [B, N, ...rest] = x.shape;
      const y = bind(conv2d, [reshape(x, [B * N, ...rest]), w], p);
      return reshape(y, [B, N, ...y.shape.slice(1)]);
    }
    // per-example weights: fold the vmap axis into the channels and use feature groups
    const xb = materialize(x, bx, size); // [B, N, C, H, W]
    const [, N, C, H, W] = xb.shape;
    const [, O, I, KH, KW] = w.shape;
    const xg = reshape(transpose(xb, [1, 0, 2, 3, 4]), [N, size * C, H, W]);
    const wg = reshape(w, [size * O, I, KH, KW]);
    const y = bind(conv2d, [xg, wg], { ...p, groups: p.groups * size }); // [N, B·O, OH, OW]
    return transpose(reshape(y, [N, size, O, ...y.shape.slice(2)]), [1, 0, 2, 3, 4]);
  },
  vjp(g, [x, w], _out, p) {
    return [inputGrad(g, x, w, p), weightGrad(g, x, w, p)];
  },
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
    if (kernelAsPatches(x, w, p, out, g) || im2colConv(x, w, p, out, g)) return;
    checkLoopBudget("conv2d", sizeOf(out.shape), g.I * g.KH * g.KW);
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
        acc = fma(in0(u32(((n * C + c0 + ci) * H + ih) * W + iw)), in1(u32(((o * I + ci) * KH + kh) * KW + kw)), acc);
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
        ...windowParams(p),
        g.O / p.groups,
      ],
      [{ storage: x.storage, dtype: "f32" }, { storage: w.storage, dtype: "f32" }],
      { storage: out.storage, dtype: "f32" },
    );
  },
};

/**
 * ∂/∂x: a convolution of g (input-dilated by the forward stride) with the flipped kernel,
 * in- and out-channels swapped per group; then cropped and sampled every lhsDilation.
 */
function inputGrad(g: Tensor, x: Tensor, w: Tensor, p: Conv2dParams): Tensor {
  const [, C, H, W] = x.shape;
  const [O, I, KH, KW] = w.shape;
  const G = p.groups, Og = O / G;
  const [OH, OW] = g.shape.slice(2);
  const wt = reshape(transpose(reshape(flip(w, [2, 3]), [G, Og, I, KH, KW]), [0, 2, 1, 3, 4]), [
    C,
    Og,
    KH,
    KW,
  ]);
  const axis = (
    k: number,
    dil: number,
    stride: number,
    padLo: number,
    inSize: number,
    outSize: number,
    lhs: number,
  ) => {
    const kEff = (k - 1) * dil + 1;
    const lo = kEff - 1 - padLo;
    const crop = Math.max(0, -lo);
    const dilated = (inSize - 1) * lhs + 1;
    const produced = (outSize - 1) * stride + 1 + Math.max(0, lo) - kEff + 1;
    return { lo: Math.max(0, lo), hi: Math.max(0, crop + dilated - produced), crop, dilated };
  };
  const ah = axis(KH, p.dilation[0], p.stride[0], p.padding[0], H, OH, p.lhsDilation[0]);
  const aw = axis(KW, p.dilation[1], p.stride[1], p.padding[2], W, OW, p.lhsDilation[1]);
  const full = bind(conv2d, [g, wt], {
    stride: [1, 1],
    padding: [ah.lo, ah.hi, aw.lo, aw.hi],
    dilation: p.dilation,
    lhsDilation: p.stride,
    groups: G,
  });
  return slice(full, [null, null, [ah.crop, ah.crop + ah.dilated, p.lhsDilation[0]], [
    aw.crop,
    aw.crop + aw.dilated,
    p.lhsDilation[1],
  ]]);
}

/**
 * ∂/∂w: correlate x (batch and channels swapped) with g as the kernel, dilated by the forward
 * stride; with feature groups this is itself a grouped convolution (the work of one group
 * per group, not a full cross-group product).
 */
function weightGrad(g: Tensor, x: Tensor, w: Tensor, p: Conv2dParams): Tensor {
  const [, I, KH, KW] = w.shape;
  const [N, , H, W] = x.shape;
  const G = p.groups;
  // images: the input channels of a group, [I, G·N, H, W]; kernels: the gradient, [O, N, OH, OW];
  // feature groups pair group j's images with group j's output channels only
  const xt = reshape(transpose(reshape(x, [N, G, I, H, W]), [2, 1, 0, 3, 4]), [I, G * N, H, W]);
  const gt = transpose(g, [1, 0, 2, 3]);
  const full = bind(conv2d, [xt, gt], {
    stride: p.dilation,
    padding: p.padding,
    dilation: p.stride,
    lhsDilation: p.lhsDilation,
    groups: G,
  }); // [I, O, ≥KH, ≥KW]
  return transpose(slice(full, [null, null, [0, KH], [0, KW]]), [1, 0, 2, 3]);
}

let passBytesOverride: number | null = null;

/** A GPU convolution strategy: runs it and returns true, or returns false when it does not apply. */
type ConvStrategy = (
  x: GpuOperand,
  w: GpuOperand,
  p: Conv2dParams,
  out: Aval & { storage: GpuStorage },
  g: ReturnType<typeof geometry>,
) => boolean;

/** Cost of writing one patch-matrix element, in multiply-adds of the matmul that reads it. */
const PATCH_COST = 16;

const patchBytesLimit = () => passBytesOverride ?? runtime.info!.limits.maxStorageBufferBindingSize;

/** Cap the patch matrix of one im2col pass (tests force several passes); null: the binding limit. */
export function setIm2colPassBytes(bytes: number | null): void {
  passBytesOverride = bytes;
}

/**
 * Convolutions without input dilation run as im2col + the register-tiled matmul (batched
 * over feature groups — vmap over per-task weights makes one group per task),
 * an order of magnitude faster on llvmpipe than one thread per output looping over taps.
 * The patch matrix holds every image side by side, [C·KH·KW, N·OH·OW], so one matmul
 * W [O, C·KH·KW] · cols gives [O, N·OH·OW]: its large dimension gets the big register tiles
 * (per-image products [O, OH·OW] are too small for them), and the same layout serves the
 * weight gradient, whose "images" are channels and whose taps are the whole batch. Returns
 * false (use the direct kernel) when that layout does not apply or would not fit one binding.
 */
const im2colConv: ConvStrategy = (x, w, p, out, g) => {
  if (p.lhsDilation[0] !== 1 || p.lhsDilation[1] !== 1) return false;
  const K = g.C * g.KH * g.KW, S = g.OH * g.OW;
  const limit = patchBytesLimit();
  // images per pass, so that each pass's patch matrix fits one binding
  const perPass = Math.min(g.N, Math.floor(limit / (K * S * 4)));
  if (perPass < 1) return false;
  for (let n0 = 0; n0 < g.N; n0 += perPass) {
    im2colPass(x, w, p, out, g, n0, Math.min(perPass, g.N - n0));
  }
  return true;
};

/**
 * A convolution whose input is smaller than its kernel spends most of im2col's taps on padding.
 * Second-order gradients make such convolutions: the gradient of a weight gradient correlates a
 * 3×3 cotangent, padded by 12, with a 14×14 activation map as the kernel. Swapping the roles
 * gives the same sum over H·W taps per output instead of KH·KW: with ih·lh = i·sh + kh·dh − pt,
 *   out[n, o, i, j] = Σ_{c, ih, iw} x[n, c, ih, iw] · w[o, c, kh, kw],
 * so the patch matrix holds the kernel's taps, [C·H·W, O·OH·OW] per group, and x [N, C·H·W] times
 * it is [N, O·OH·OW]: the output layout itself when there is one group. Any stride, dilation and
 * input dilation. Returns false when the input is not the smaller operand or the patches would
 * not fit one binding.
 */
const kernelAsPatches: ConvStrategy = (x, w, p, out, g) => {
  if (g.H * g.W >= g.KH * g.KW) return false;
  const dilated = p.lhsDilation[0] !== 1 || p.lhsDilation[1] !== 1;
  // Fewer taps, but the patch matrix grows with O instead of N: against im2col (no input
  // dilation; otherwise the direct kernel, slower than either), weigh patch elements at about
  // PATCH_COST multiply-adds, llvmpipe's ratio.
  const viaKernel = g.H * g.W * g.O * (PATCH_COST + g.N);
  const viaInput = g.KH * g.KW * g.N * (PATCH_COST + g.O);
  if (!dilated && viaKernel >= viaInput) return false;
  const G = p.groups, Og = g.O / G, K = g.I * g.H * g.W, S = Og * g.OH * g.OW;
  if (G * K * S * 4 > patchBytesLimit()) return false;
  const cols = new GpuStorage(G * K * S * 4);
  const P = (i: number) => `i32(${param(i)})`;
  // params: 0 count, 1 O/G, 2 OH, 3 OW, 4 I, 5 H, 6 W, 7 KH, 8 KW, 9 sh, 10 sw, 11 pt, 12 pl,
  // 13 dh, 14 dw, 15 lh, 16 lw
  const body = `
  let OHW = ${param(2)} * ${param(3)};
  let S = ${param(1)} * OHW;
  let HW = ${param(5)} * ${param(6)};
  let K = ${param(4)} * HW;
  let s = t % S;
  let k = (t / S) % K;
  let grp = t / (S * K);
  let o = s / OHW;
  let i = i32((s / ${param(3)}) % ${param(2)}); let j = i32(s % ${param(3)});
  let c = k / HW;
  let ih = i32((k / ${param(6)}) % ${param(5)}); let iw = i32(k % ${param(6)});
  let rh = ih * ${P(15)} + ${P(11)} - i * ${P(9)};
  let rw = iw * ${P(16)} + ${P(12)} - j * ${P(10)};
  let kh = rh / ${P(13)}; let kw = rw / ${P(14)};
  let inside = rh >= 0 && rw >= 0 && rh % ${P(13)} == 0 && rw % ${P(14)} == 0 &&
    kh < ${P(7)} && kw < ${P(8)};
  let at = select(0, i32(((grp * ${param(1)} + o) * ${param(4)} + c) * ${param(7)} * ${
    param(8)
  }) + kh * ${P(8)} + kw, inside);
  out[t] = select(0.0, in0(u32(at)), inside);`;
  runSimple(
    "conv2d kernel patches",
    body,
    [
      G * K * S,
      Og,
      g.OH,
      g.OW,
      g.I,
      g.H,
      g.W,
      g.KH,
      g.KW,
      ...windowParams(p),
    ],
    [{ storage: w.storage, dtype: "f32" }],
    { storage: cols, dtype: "f32" },
  );
  // group j multiplies its own channels of x, [N, G, K] → [G, N, K], and writes its own outputs
  const a = G === 1 ? x.storage : swapLeadingAxes(x.storage, g.N, G, K);
  const product = G === 1 ? out.storage : new GpuStorage(G * g.N * S * 4);
  runMatmul({
    a,
    b: cols,
    out: product,
    batch: G,
    m: g.N,
    n: S,
    k: K,
    transA: false,
    transB: false,
    aBatchStride: g.N * K,
    bBatchStride: K * S,
  });
  cols.release();
  if (G === 1) return true;
  a.release();
  swapLeadingAxes(product, G, g.N, S, out.storage);
  product.release();
  return true;
};

/** [A, B, C] → [B, A, C], into `into` or a new buffer: a strided read, as transpose does. */
function swapLeadingAxes(
  src: GpuStorage,
  A: number,
  B: number,
  C: number,
  into = new GpuStorage(A * B * C * 4),
): GpuStorage {
  stridedReadGpu("conv2d regroup", src, "f32", [B, A, C], [C, B * C, 1], 0, into);
  return into;
}

/** Images [n0, n0 + count) of an im2col convolution. */
function im2colPass(
  x: GpuOperand,
  w: GpuOperand,
  p: Conv2dParams,
  out: Aval & { storage: GpuStorage },
  g: ReturnType<typeof geometry>,
  n0: number,
  count: number,
): void {
  const K = g.C * g.KH * g.KW, S = g.OH * g.OW, NS = count * S;
  const cols = new GpuStorage(K * NS * 4);
  // One thread per patch row (k, image, oh) writes its OW entries: the index divisions, which
  // llvmpipe pays per element, are paid once per row. params: 0 rows, 1 C, 2 H, 3 W, 4 KH, 5 KW,
  // 6 OH, 7 OW, 8–15 window (lh, lw unused: no input dilation here), 16 images in this pass,
  // 17 first image
  checkLoopBudget("conv2d im2col", K * count * g.OH, g.OW);
  const P = (i: number) => `i32(${param(i)})`;
  const body = `
  let OW = ${P(7)};
  let oh = i32(t % ${param(6)});
  let n = (t / ${param(6)}) % ${param(16)};
  let k = t / (${param(6)} * ${param(16)});
  let kw = i32(k % ${param(5)}); let kh = i32((k / ${param(5)}) % ${param(4)});
  let c = k / (${param(4)} * ${param(5)});
  let at = (k * ${param(16)} + n) * ${param(6)} * ${param(7)} + u32(oh * OW);
  let ih = oh * ${P(8)} + kh * ${P(12)} - ${P(10)};
  let W = ${P(3)};
  if (ih < 0 || ih >= ${P(2)}) {
    for (var ow = 0; ow < OW; ow = ow + 1) { out[at + u32(ow)] = 0.0; }
  } else {
    let row = i32(((n + ${param(17)}) * ${param(1)} + c) * ${param(2)}) + ih;
    var iw = kw * ${P(13)} - ${P(11)};
    for (var ow = 0; ow < OW; ow = ow + 1) {
      let inside = iw >= 0 && iw < W;
      out[at + u32(ow)] = select(0.0, in0(u32(select(0, row * W + iw, inside))), inside);
      iw = iw + ${P(9)};
    }
  }`;
  runSimple(
    "conv2d im2col",
    body,
    [
      K * count * g.OH,
      g.C,
      g.H,
      g.W,
      g.KH,
      g.KW,
      g.OH,
      g.OW,
      ...windowParams(p),
      count,
      n0,
    ],
    [{ storage: x.storage, dtype: "f32" }],
    { storage: cols, dtype: "f32" },
  );
  // with one image in all, [O, S] is already the output layout
  const direct = g.N === 1;
  const product = direct ? out.storage : new GpuStorage(g.O * NS * 4);
  // group j: W [O/G, K/G] (contiguous in w) times rows j·K/G… of cols — one batched matmul
  const G = p.groups, Og = g.O / G, Kg = K / G;
  runMatmul({
    a: w.storage,
    b: cols,
    out: product,
    batch: G,
    m: Og,
    n: NS,
    k: Kg,
    transA: false,
    transB: false,
    aBatchStride: Og * Kg,
    bBatchStride: Kg * NS,
  });
  cols.release();
  if (direct) return;
  // [O, count, S] → images n0… of [N, O, S]; params: 0 count, 1 O, 2 images, 3 S, 4 offset
  runSimple(
    "conv2d unfold",
    `
  let s = t % ${param(3)};
  let o = (t / ${param(3)}) % ${param(1)};
  let n = t / (${param(3)} * ${param(1)});
  out[${param(4)} + t] = in0((o * ${param(2)} + n) * ${param(3)} + s);`,
    [count * g.O * S, g.O, count, S, n0 * g.O * S],
    [{ storage: product, dtype: "f32" }],
    { storage: out.storage, dtype: "f32" },
  );
  product.release();
}
