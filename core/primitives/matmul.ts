/**
 * matmul(a, b, {transposeA, transposeB}): [..., m, k] @ [..., k, n] with NumPy broadcasting of
 * the batch axes; the transposes are folded into the kernel's indexing (no copies).
 */
import { broadcastShapes, broadcastStrides, fmtShape, sizeOf } from "../shape.ts";
import { type MatmulEpilogue, runMatmul } from "../backend/webgpu/kernels/matmul.ts";
import { runElementwise } from "../backend/webgpu/kernels/elementwise.ts";
import { GpuStorage } from "../backend/webgpu/runtime.ts";
import type { Aval, GpuOperand, KernelMemo, Primitive } from "../primitive.ts";
import { matmul as mm } from "../ops/linalg.ts";
import { sumToShape } from "../ops/reduce.ts";
import type { Tensor } from "../tensor.ts";
import { bind } from "../primitive.ts";
import { reshape } from "../ops/shape.ts";
import { alignRank, elemRank } from "./batching.ts";

export interface MatmulParams {
  transposeA: boolean;
  transposeB: boolean;
}

function dims(a: Aval, b: Aval, p: MatmulParams) {
  const ra = a.shape.length, rb = b.shape.length;
  const [am, ak] = p.transposeA
    ? [a.shape[ra - 1], a.shape[ra - 2]]
    : [a.shape[ra - 2], a.shape[ra - 1]];
  const [bk, bn] = p.transposeB
    ? [b.shape[rb - 1], b.shape[rb - 2]]
    : [b.shape[rb - 2], b.shape[rb - 1]];
  return { m: am, k: ak, bk, n: bn, batchA: a.shape.slice(0, -2), batchB: b.shape.slice(0, -2) };
}

export const matmul: Primitive<MatmulParams> = {
  name: "matmul",
  kind: "matmul",
  batch([a, b], [ba, bb], p) {
    // Give both operands the same number of batch axes after the vmap axis, so NumPy
    // broadcasting of matmul's batch axes lines the vmap axis up in front.
    const batchRank = Math.max(elemRank(a, ba), elemRank(b, bb)) - 2;
    const lift = (x: Tensor, batched: boolean) => {
      const r = elemRank(x, batched);
      if (!batched) return reshape(x, [1, ...new Array(batchRank - (r - 2)).fill(1), ...x.shape]);
      return alignRank(x, batchRank + 2);
    };
    return bind(matmul, [lift(a, ba), lift(b, bb)], p);
  },
  vjp(g, [a, b], _out, { transposeA: tA, transposeB: tB }) {
    // With A' = op(A), B' = op(B): dA' = g·B'ᵀ, dB' = A'ᵀ·g; transposes stay folded in.
    const da = tA ? mm(b, g, { transposeA: tB, transposeB: true }) : mm(g, b, { transposeB: !tB });
    // A single B shared by a batch of A's (a dense layer under vmap): the batch sum of
    // A_iᵀ·g_i is one matmul over the stacked rows, with no [batch, k, n] intermediate.
    const batchOf = (x: Tensor) => sizeOf(x.shape.slice(0, -2));
    if (!tA && batchOf(b) === 1 && batchOf(a) > 1 && batchOf(a) === batchOf(g)) {
      const k = a.shape.at(-1)!, n = g.shape.at(-1)!;
      const rows = reshape(a, [-1, k]), grows = reshape(g, [-1, n]);
      const db = tB ? mm(grows, rows, { transposeA: true }) : mm(rows, grows, { transposeA: true });
      return [sumToShape(da, a.shape), reshape(db, b.shape)];
    }
    const db = tB ? mm(g, a, { transposeA: true, transposeB: tA }) : mm(a, g, { transposeA: !tA });
    return [sumToShape(da, a.shape), sumToShape(db, b.shape)];
  },
  abstractEval([a, b], p) {
    if (a.shape.length < 2 || b.shape.length < 2) {
      throw new RangeError(
        `matmul: needs rank ≥ 2 operands, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`,
      );
    }
    if (a.dtype !== "f32" || b.dtype !== "f32") {
      throw new TypeError(`matmul: needs f32 operands, got ${a.dtype} and ${b.dtype}`);
    }
    const d = dims(a, b, p);
    if (d.k !== d.bk) {
      throw new RangeError(
        `matmul: contraction sizes differ: ${fmtShape(a.shape)}${p.transposeA ? "ᵀ" : ""} @ ` +
          `${fmtShape(b.shape)}${p.transposeB ? "ᵀ" : ""} (k = ${d.k} vs ${d.bk})`,
      );
    }
    const batch = broadcastShapes("matmul (batch axes)", d.batchA, d.batchB);
    return { shape: [...batch, d.m, d.n], dtype: "f32" };
  },
  reference([x, y], [a, b], p, out) {
    const d = dims(a, b, p);
    const batch = out.shape.slice(0, -2);
    const nb = sizeOf(batch);
    const sa = broadcastStrides(d.batchA, batch), sb = broadcastStrides(d.batchB, batch);
    const res = new Float64Array(sizeOf(out.shape));
    const mk = d.m * d.k, kn = d.k * d.n;
    for (let bi = 0; bi < nb; bi++) {
      let oa = 0, ob = 0, rem = bi;
      for (let ax = batch.length - 1; ax >= 0; ax--) {
        const c = rem % batch[ax];
        rem = Math.floor(rem / batch[ax]);
        oa += c * sa[ax];
        ob += c * sb[ax];
      }
      oa *= mk;
      ob *= kn;
      for (let i = 0; i < d.m; i++) {
        for (let j = 0; j < d.n; j++) {
          let acc = 0;
          for (let kk = 0; kk < d.k; kk++) {
            const av = x[oa + (p.transposeA ? kk * d.m + i : i * d.k + kk)];
            const bv = y[ob + (p.transposeB ? j * d.k + kk : kk * d.n + j)];
            acc += av * bv;
          }
          res[bi * d.m * d.n + i * d.n + j] = acc;
        }
      }
    }
    return res;
  },
  webgpu([a, b], p, out, memo) {
    encodeMatmul(a, b, p, out, undefined, undefined, memo);
  },
};

/**
 * Encode a matmul of device operands into `out`, optionally with an elementwise epilogue
 * applied before each store, which may also read a second product of the same shape as
 * `acc2` (used by jit's fusion).
 */
export function encodeMatmul(
  a: GpuOperand,
  b: GpuOperand,
  p: MatmulParams,
  out: Aval & { storage: GpuStorage },
  epilogue?: MatmulEpilogue,
  second?: { a: GpuOperand; b: GpuOperand; p: MatmulParams },
  memo?: KernelMemo,
): void {
  const d = dims(a, b, p);
  const batch = out.shape.slice(0, -2);
  const nb = sizeOf(batch);
  // Batch strides: equal batch shapes or a single matrix broadcast need no copy; other
  // broadcasts materialise the operand at the full batch shape first.
  const prepare = (op: GpuOperand, own: readonly number[], matSize: number) => {
    if (sizeOf(own) === nb && own.length === batch.length) {
      return { storage: op.storage, stride: matSize, temp: false };
    }
    if (sizeOf(own) === 1) return { storage: op.storage, stride: 0, temp: false };
    const full = [...batch, ...op.shape.slice(-2)];
    const st = new GpuStorage(sizeOf(full) * 4);
    runElementwise(
      { label: "matmul (broadcast batch)", expr: "v0" },
      [{ storage: op.storage, dtype: "f32", strides: broadcastStrides(op.shape, full), offset: 0 }],
      full,
      "f32",
      st,
    );
    return { storage: st, stride: matSize, temp: true };
  };
  const temps: GpuStorage[] = [];
  const prepareTemp = (op: GpuOperand, own: readonly number[], matSize: number) => {
    const prepared = prepare(op, own, matSize);
    if (prepared.temp) temps.push(prepared.storage);
    return prepared;
  };
  // the broadcast copies go whether the product is encoded or refused
  try {
    encodePrepared(a, b, p, out, d, nb, prepareTemp, epilogue, second, memo);
  } finally {
    for (const t of temps) t.release();
  }
}

function encodePrepared(
  a: GpuOperand,
  b: GpuOperand,
  p: MatmulParams,
  out: Aval & { storage: GpuStorage },
  d: ReturnType<typeof dims>,
  nb: number,
  prepare: (
    op: GpuOperand,
    own: readonly number[],
    matSize: number,
  ) => { storage: GpuStorage; stride: number },
  epilogue?: MatmulEpilogue,
  second?: { a: GpuOperand; b: GpuOperand; p: MatmulParams },
  memo?: KernelMemo,
): void {
  const pa = prepare(a, d.batchA, d.m * d.k);
  const pb = prepare(b, d.batchB, d.k * d.n);
  const d2 = second && dims(second.a, second.b, second.p);
  if (d2 && (d2.m !== d.m || d2.n !== d.n)) {
    throw new Error(`internal: second product ${d2.m}×${d2.n} in a ${d.m}×${d.n} matmul`);
  }
  const pa2 = second && prepare(second.a, d2!.batchA, d2!.m * d2!.k);
  const pb2 = second && prepare(second.b, d2!.batchB, d2!.k * d2!.n);
  // A batch of A's against one shared B (vmap over examples with shared weights) is one
  // taller matmul: [B·m, k] @ [k, n] — fewer, fuller workgroups. Both products or neither.
  const foldable = (sa: number, sb: number, k: number, transA: boolean) =>
    sb === 0 && sa === d.m * k && !transA && nb > 1;
  const fold = foldable(pa.stride, pb.stride, d.k, p.transposeA) &&
    (!second || foldable(pa2!.stride, pb2!.stride, d2!.k, second.p.transposeA));
  runMatmul(
    {
      a: pa.storage,
      b: pb.storage,
      out: out.storage,
      batch: fold ? 1 : nb,
      m: fold ? nb * d.m : d.m,
      n: d.n,
      k: d.k,
      transA: p.transposeA,
      transB: p.transposeB,
      aBatchStride: fold ? 0 : pa.stride,
      bBatchStride: fold ? 0 : pb.stride,
      second: second && {
        a: pa2!.storage,
        b: pb2!.storage,
        k: d2!.k,
        transA: second.p.transposeA,
        transB: second.p.transposeB,
        aBatchStride: fold ? 0 : pa2!.stride,
        bBatchStride: fold ? 0 : pb2!.stride,
      },
    },
    epilogue,
    memo,
  );
}
