/**
 * Elementwise primitives: one table row per op holds its dtype rule, its float64 reference
 * and its WGSL expression. All share the fused elementwise kernel family and NumPy
 * broadcasting (done in the kernel through stride-0 reads, never materialised).
 */
import type { DType } from "../dtype.ts";
import { broadcastShapes, broadcastStrides, sizeOf, stridesOf } from "../shape.ts";
import { runElementwise } from "../backend/webgpu/kernels/elementwise.ts";
import type { Aval, GpuOperand, Primitive } from "../primitive.ts";
import { roundToDType } from "../dtype.ts";
import type { Tensor } from "../tensor.ts";
import * as op from "../ops/math.ts";
import { sumToShape } from "../ops/reduce.ts";
import { bind } from "../primitive.ts";
import { alignRank, elemRank } from "./batching.ts";

/** The dtypes an elementwise rule accepts. */
export type Kinds = "float" | "numeric" | "int" | "bool" | "intOrBool" | "any";

/**
 * An elementwise primitive's rules, all of them (`elementwisePrimitive` makes the primitive):
 * its reference in float64, its WGSL expression (which jit and eager fusion fuse, and the
 * elementwise kernel family runs), and its vjp. Broadcasting, batching and the dtype checks
 * follow.
 */
export interface ElementwiseRule {
  /** The primitive's name. */
  name: string;
  /** Operands (1 to 3). */
  arity: 1 | 2 | 3;
  /** Accepted input dtype(s) (for `where`, the dtype of operands 2 and 3). */
  accepts: Kinds;
  /** Output dtype given the (common) input dtype. */
  out: (d: DType) => DType;
  /** Float64 reference of one element, given the input dtype. */
  ref: (d: DType) => (a: number, b: number, c: number) => number;
  /** WGSL expression of one element from the operands' expressions `v`. */
  wgsl: (v: string[], d: DType) => string;
  /**
   * Cotangents of the inputs given the output's cotangent `g`, at the broadcast shape
   * (summed back to each input's shape). Omitted: not differentiable.
   */
  vjp?: (g: Tensor, x: readonly Tensor[], out: Tensor) => (Tensor | null)[];
}

const same = (d: DType) => d;
const toBool = (_d: DType): DType => "bool";
const B = (x: boolean) => (x ? 1 : 0);

function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** erf to ~1e-14: Taylor series near 0, Lentz-free backward continued fraction for erfc. */
export function erf64(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let term = x, sum = x;
    for (let n = 1; n < 100; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  if (ax > 6) return Math.sign(x);
  let f = ax;
  for (let n = 80; n >= 1; n--) f = ax + n / 2 / f;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

function intDiv(a: number, b: number, d: DType): number {
  if (b === 0) return a; // WGSL: integer division by zero yields the dividend
  if (d === "u32") return Math.floor(a / b);
  const q = Math.trunc(a / b), r = a - q * b;
  return r !== 0 && (r < 0) !== (b < 0) ? q - 1 : q;
}

function intMod(a: number, b: number, d: DType): number {
  if (b === 0) return 0;
  const r = a % b;
  if (d === "u32") return r;
  return r !== 0 && (r < 0) !== (b < 0) ? r + b : r;
}

function powRef(x: number, y: number): number {
  if (y === 0) return 1;
  return Math.pow(x, y);
}

const imul = (d: DType) => (a: number, b: number) =>
  d === "f32" ? a * b : d === "u32" ? Math.imul(a, b) >>> 0 : Math.imul(a, b);

const WGSL_FUNCS = `
fn pow_f(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (is_nan(x) || is_nan(y)) { return nan_f32(); }
  if (x < 0.0) {
    if (floor(y) != y) { return nan_f32(); }
    let m = pow(-x, y);
    if (abs(y) < 16777216.0 && (i32(abs(y)) & 1) == 1) { return -m; }
    return m;
  }
  if (x == 0.0) { return select(0.0, inf_f32(), y < 0.0); }
  return pow(x, y);
}
// sin(x + quarter·π/2) with Cephes' reduction (π/4 in three parts, exact products below 8192)
// and its minimax polynomials: ~1 ulp. The spec asks only 2⁻¹¹ absolute of the builtins
// (SwiftShader, Chrome's software adapter, is that far off); beyond 8192, and for NaN and ∞,
// the builtin.
fn sin_quarter(x: f32, quarter: u32) -> f32 {
  let ax = abs(x);
  if (!(ax < 8192.0)) { return select(sin(x), cos(x), quarter == 1u); }
  var j = u32(ax * 1.2732395447351628);
  j = j + (j & 1u);
  let y = f32(j);
  let r = ((ax - y * 0.78515625) - y * 2.4187564849853515625e-4) - y * 3.77489497744594108e-8;
  let z = r * r;
  let s = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * r + r;
  let c = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z - 0.5 * z + 1.0;
  let k = ((j >> 1u) + quarter) & 3u;
  var v = select(s, c, (k & 1u) == 1u);
  v = select(v, -v, k >= 2u);
  return select(v, -v, quarter == 0u && x < 0.0);
}
fn sin_f(x: f32) -> f32 { return sin_quarter(x, 0u); }
fn cos_f(x: f32) -> f32 { return sin_quarter(x, 1u); }
fn erf_f(x: f32) -> f32 {
  let ax = abs(x);
  if (ax < 0.5) {
    let z = x * x;
    return 1.1283791670955126 * x * (1.0 + z * (-0.3333333333333333 + z * (0.1 + z * (-0.023809523809523808 + z * (0.004629629629629629 - z * 0.0007575757575757576)))));
  }
  let t = 1.0 / (1.0 + 0.3275911 * ax);
  let y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-ax * ax);
  return select(y, -y, x < 0.0);
}
// Near 0, series: llvmpipe's log/exp are accurate only to ~6e-8 absolute around 1, which
// would leave log1p/expm1 with large relative errors for small x.
fn log1p_f(x: f32) -> f32 {
  if (abs(x) < 0.01) { return x * (1.0 - x * (0.5 - x * (0.3333333333 - x * (0.25 - x * 0.2)))); }
  return log(1.0 + x);
}
fn expm1_f(x: f32) -> f32 {
  if (abs(x) < 0.01) { return x * (1.0 + x * (0.5 + x * (0.1666666667 + x * (0.0416666667 + x * 0.0083333333)))); }
  return exp(x) - 1.0;
}
fn sign_f(x: f32) -> f32 { return select(select(select(0.0, -1.0, x < 0.0), 1.0, x > 0.0), x, is_nan(x)); }
fn sigmoid_f(x: f32) -> f32 {
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}
// NaN explicitly: Mesa's GL path returns -1 for tanh(NaN)
fn tanh_f(x: f32) -> f32 { return select(select(tanh(x), sign(x), abs(x) > 10.0), x, is_nan(x)); }
// Floor division on magnitudes in u32: GLSL leaves / and % of negative integers undefined
// (Mesa's GL path floors some of them), and u32 also holds |−2³¹|. Wraps as two's complement.
fn div_i(a: i32, b: i32) -> i32 {
  if (b == 0) { return a; }
  let ua = select(bitcast<u32>(a), 0u - bitcast<u32>(a), a < 0);
  let ub = select(bitcast<u32>(b), 0u - bitcast<u32>(b), b < 0);
  let q = ua / ub;
  let neg = (a < 0) != (b < 0);
  // a negative quotient with a remainder rounds down: its magnitude grows by one
  let m = select(q, q + select(0u, 1u, ua - q * ub != 0u), neg);
  return select(bitcast<i32>(m), bitcast<i32>(0u - m), neg);
}
fn mod_i(a: i32, b: i32) -> i32 {
  if (b == 0) { return 0; }
  return bitcast<i32>(bitcast<u32>(a) - bitcast<u32>(div_i(a, b)) * bitcast<u32>(b));
}
fn div_u(a: u32, b: u32) -> u32 { return select(a / b, a, b == 0u); }
fn mod_u(a: u32, b: u32) -> u32 { return select(a % b, 0u, b == 0u); }
fn mod_f(a: f32, b: f32) -> f32 {
  let r = a - floor(a / b) * b;
  return r;
}
fn max_f(a: f32, b: f32) -> f32 { return select(max(a, b), nan_f32(), is_nan(a) || is_nan(b)); }
fn min_f(a: f32, b: f32) -> f32 { return select(min(a, b), nan_f32(), is_nan(a) || is_nan(b)); }
`;

function floatOnly(
  name: string,
  ref: (x: number) => number,
  wgsl: (v: string) => string,
  vjp?: (g: Tensor, x: Tensor, out: Tensor) => Tensor | null,
): ElementwiseRule {
  return {
    name,
    arity: 1,
    accepts: "float",
    out: same,
    ref: () => ref,
    wgsl: (v) => wgsl(v[0]),
    vjp: vjp ? (g, [x], out) => [vjp(g, x, out)] : undefined,
  };
}

/** Gradient of maximum/minimum: to the winner, split evenly on ties (as JAX does). */
function minmaxVjp(
  g: Tensor,
  a: Tensor,
  b: Tensor,
  wins: (x: Tensor, y: Tensor) => Tensor,
): Tensor[] {
  const half = op.mul(g, 0.5);
  const tie = op.equal(a, b);
  return [
    op.where(wins(a, b), g, op.where(tie, half, 0)),
    op.where(wins(b, a), g, op.where(tie, half, 0)),
  ];
}

const zeroOf = (d: DType) => (d === "f32" ? "0.0" : d === "i32" ? "0" : "0u");

const ROWS: ElementwiseRule[] = [
  // ---- unary
  {
    name: "neg",
    arity: 1,
    accepts: "numeric",
    out: same,
    ref: () => (a) => -a,
    wgsl: (v, d) => d === "f32" ? `-${v[0]}` : `${zeroOf(d)} - ${v[0]}`,
    vjp: (g) => [op.neg(g)],
  },
  {
    name: "abs",
    arity: 1,
    accepts: "numeric",
    out: same,
    ref: () => Math.abs,
    wgsl: (v) => `abs(${v[0]})`,
    vjp: (g, [x]) => [op.mul(g, op.sign(x))],
  },
  {
    name: "sign",
    arity: 1,
    accepts: "numeric",
    out: same,
    ref: () => (a) => (Number.isNaN(a) ? NaN : a > 0 ? 1 : a < 0 ? -1 : 0),
    wgsl: (v, d) =>
      d === "f32"
        ? `sign_f(${v[0]})`
        : d === "i32"
        ? `select(select(0, -1, ${v[0]} < 0), 1, ${v[0]} > 0)`
        : `select(0u, 1u, ${v[0]} > 0u)`,
  },
  floatOnly("exp", Math.exp, (v) => `exp(${v})`, (g, _x, out) => op.mul(g, out)),
  floatOnly("log", Math.log, (v) => `log(${v})`, (g, x) => op.div(g, x)),
  floatOnly("log1p", Math.log1p, (v) => `log1p_f(${v})`, (g, x) => op.div(g, op.add(x, 1))),
  floatOnly("expm1", Math.expm1, (v) => `expm1_f(${v})`, (g, _x, out) => op.mul(g, op.add(out, 1))),
  floatOnly("sin", Math.sin, (v) => `sin_f(${v})`, (g, x) => op.mul(g, op.cos(x))),
  floatOnly("cos", Math.cos, (v) => `cos_f(${v})`, (g, x) => op.neg(op.mul(g, op.sin(x)))),
  floatOnly(
    "tanh",
    Math.tanh,
    (v) => `tanh_f(${v})`,
    (g, _x, out) => op.mul(g, op.sub(1, op.mul(out, out))),
  ),
  floatOnly("sqrt", Math.sqrt, (v) => `sqrt(${v})`, (g, _x, out) => op.div(g, op.mul(out, 2))),
  floatOnly(
    "rsqrt",
    (x) => 1 / Math.sqrt(x),
    (v) => `inverseSqrt(${v})`,
    (g, x, out) => op.mul(g, op.div(op.mul(out, -0.5), x)),
  ),
  floatOnly(
    "reciprocal",
    (x) => 1 / x,
    (v) => `1.0 / ${v}`,
    (g, _x, out) => op.neg(op.mul(g, op.mul(out, out))),
  ),
  floatOnly("floor", Math.floor, (v) => `floor(${v})`),
  floatOnly("ceil", Math.ceil, (v) => `ceil(${v})`),
  floatOnly("round", roundHalfEven, (v) => `round(${v})`),
  floatOnly(
    "sigmoid",
    (x) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x))),
    (v) => `sigmoid_f(${v})`,
    (g, _x, out) => op.mul(g, op.mul(out, op.sub(1, out))),
  ),
  floatOnly(
    "erf",
    erf64,
    (v) => `erf_f(${v})`,
    (g, x) => op.mul(g, op.mul(op.exp(op.neg(op.mul(x, x))), 2 / Math.sqrt(Math.PI))),
  ),
  {
    name: "not",
    arity: 1,
    accepts: "intOrBool",
    out: same,
    ref: (d) => d === "bool" ? (a) => B(!a) : (a) => ~a,
    wgsl: (v, d) => (d === "bool" ? `!${v[0]}` : `~${v[0]}`),
  },
  // ---- binary
  {
    name: "add",
    arity: 2,
    accepts: "numeric",
    out: same,
    ref: () => (a, b) => a + b,
    wgsl: (v) => `${v[0]} + ${v[1]}`,
    vjp: (g) => [g, g],
  },
  {
    name: "sub",
    arity: 2,
    accepts: "numeric",
    out: same,
    ref: () => (a, b) => a - b,
    wgsl: (v) => `${v[0]} - ${v[1]}`,
    vjp: (g) => [g, op.neg(g)],
  },
  {
    name: "mul",
    arity: 2,
    accepts: "numeric",
    out: same,
    ref: imul,
    wgsl: (v) => `${v[0]} * ${v[1]}`,
    vjp: (g, [a, b]) => [op.mul(g, b), op.mul(g, a)],
  },
  {
    name: "div",
    arity: 2,
    accepts: "numeric",
    out: same,
    ref: (d) => d === "f32" ? (a, b) => a / b : (a, b) => intDiv(a, b, d),
    wgsl: (v, d) => d === "f32" ? `${v[0]} / ${v[1]}` : `div_${d[0]}(${v[0]}, ${v[1]})`,
    vjp: (g, [, b], out) => [op.div(g, b), op.neg(op.div(op.mul(g, out), b))],
  },
  {
    name: "mod",
    arity: 2,
    accepts: "numeric",
    out: same,
    ref: (d) => d === "f32" ? (a, b) => a - Math.floor(a / b) * b : (a, b) => intMod(a, b, d),
    wgsl: (v, d) => `mod_${d[0]}(${v[0]}, ${v[1]})`,
    vjp: (g, [a, b]) => [g, op.neg(op.mul(g, op.floor(op.div(a, b))))],
  },
  {
    name: "pow",
    arity: 2,
    accepts: "float",
    out: same,
    ref: () => powRef,
    wgsl: (v) => `pow_f(${v[0]}, ${v[1]})`,
    vjp: (g, [a, b], out) => {
      const zero = op.equal(a, 0);
      const positive = op.greater(a, 0);
      return [
        // d/da a^b = b·a^(b−1): as b·out/a away from 0 (cheap), directly at a = 0
        op.mul(
          g,
          op.where(
            zero,
            op.mul(b, op.pow(a, op.sub(b, 1))),
            op.div(op.mul(b, out), op.where(zero, 1, a)),
          ),
        ),
        // d/db a^b = out·log a, taken as 0 where a ≤ 0 (as JAX does)
        op.mul(g, op.where(positive, op.mul(out, op.log(op.where(positive, a, 1))), 0)),
      ];
    },
  },
  {
    name: "maximum",
    arity: 2,
    accepts: "numeric",
    out: same,
    ref: () => (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)),
    wgsl: (v, d) => d === "f32" ? `max_f(${v[0]}, ${v[1]})` : `max(${v[0]}, ${v[1]})`,
    vjp: (g, [a, b]) => minmaxVjp(g, a, b, op.greater),
  },
  {
    name: "minimum",
    arity: 2,
    accepts: "numeric",
    out: same,
    ref: () => (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b)),
    wgsl: (v, d) => d === "f32" ? `min_f(${v[0]}, ${v[1]})` : `min(${v[0]}, ${v[1]})`,
    vjp: (g, [a, b]) => minmaxVjp(g, a, b, op.less),
  },
  {
    name: "eq",
    arity: 2,
    accepts: "any",
    out: toBool,
    ref: () => (a, b) => B(a === b),
    wgsl: (v) => `${v[0]} == ${v[1]}`,
  },
  // `!(a == b)`: Vulkan lowers `!=` to an ordered compare, false for NaN.
  {
    name: "ne",
    arity: 2,
    accepts: "any",
    out: toBool,
    ref: () => (a, b) => B(a !== b),
    wgsl: (v) => `!(${v[0]} == ${v[1]})`,
  },
  {
    name: "lt",
    arity: 2,
    accepts: "any",
    out: toBool,
    ref: () => (a, b) => B(a < b),
    wgsl: (v) => `${v[0]} < ${v[1]}`,
  },
  {
    name: "le",
    arity: 2,
    accepts: "any",
    out: toBool,
    ref: () => (a, b) => B(a <= b),
    wgsl: (v) => `${v[0]} <= ${v[1]}`,
  },
  {
    name: "gt",
    arity: 2,
    accepts: "any",
    out: toBool,
    ref: () => (a, b) => B(a > b),
    wgsl: (v) => `${v[0]} > ${v[1]}`,
  },
  {
    name: "ge",
    arity: 2,
    accepts: "any",
    out: toBool,
    ref: () => (a, b) => B(a >= b),
    wgsl: (v) => `${v[0]} >= ${v[1]}`,
  },
  {
    name: "and",
    arity: 2,
    accepts: "intOrBool",
    out: same,
    ref: (d) => d === "bool" ? (a, b) => B(Boolean(a && b)) : (a, b) => a & b,
    wgsl: (v) => `${v[0]} & ${v[1]}`,
  },
  {
    name: "or",
    arity: 2,
    accepts: "intOrBool",
    out: same,
    ref: (d) => d === "bool" ? (a, b) => B(Boolean(a || b)) : (a, b) => a | b,
    wgsl: (v) => `${v[0]} | ${v[1]}`,
  },
  {
    name: "xor",
    arity: 2,
    accepts: "intOrBool",
    out: same,
    ref: (d) => d === "bool" ? (a, b) => B(Boolean(a) !== Boolean(b)) : (a, b) => a ^ b,
    wgsl: (v, d) => (d === "bool" ? `${v[0]} != ${v[1]}` : `${v[0]} ^ ${v[1]}`),
  },
  {
    name: "shiftLeft",
    arity: 2,
    accepts: "int",
    out: same,
    ref: () => (a, b) => a << b,
    wgsl: (v) => `${v[0]} << (u32(${v[1]}) & 31u)`,
  },
  {
    name: "shiftRight",
    arity: 2,
    accepts: "int",
    out: same,
    ref: (d) => d === "u32" ? (a, b) => a >>> b : (a, b) => a >> b,
    wgsl: (v) => `${v[0]} >> (u32(${v[1]}) & 31u)`,
  },
  // ---- ternary: where(cond: bool, a, b)
  {
    name: "where",
    arity: 3,
    accepts: "any",
    out: same,
    ref: () => (c, a, b) => (c ? a : b),
    wgsl: (v) => `select(${v[2]}, ${v[1]}, ${v[0]})`,
    vjp: (g, [c]) => [null, op.where(c, g, 0), op.where(c, 0, g)],
  },
];

function accepts(kind: Kinds, d: DType): boolean {
  switch (kind) {
    case "float":
      return d === "f32";
    case "numeric":
      return d !== "bool";
    case "int":
      return d === "i32" || d === "u32";
    case "bool":
      return d === "bool";
    case "intOrBool":
      return d !== "f32";
    case "any":
      return true;
  }
}

const KIND_TEXT: Record<Kinds, string> = {
  float: "f32",
  numeric: "f32, i32 or u32",
  int: "i32 or u32",
  bool: "bool",
  intOrBool: "bool, i32 or u32",
  any: "any dtype",
};

/**
 * The primitive of an elementwise rule: a new elementwise op is one rule and this call — grad,
 * vmap, jit, eager fusion and both backends follow from it.
 *
 * @example
 * ```ts
 * import { elementwisePrimitive } from "./elementwise.ts";
 * const cube = elementwisePrimitive({
 *   name: "cube", arity: 1, accepts: "float", out: (d) => d,
 *   ref: () => (x) => x * x * x, wgsl: ([x]) => `(${x} * ${x} * ${x})`,
 * });
 * ```
 */
export function elementwisePrimitive(row: ElementwiseRule): Primitive {
  // deno-lint-ignore prefer-const
  let prim: Primitive;
  const valueInputs = (avals: readonly Aval[]) => (row.name === "where" ? avals.slice(1) : avals);
  prim = {
    name: row.name,
    abstractEval(inputs) {
      if (inputs.length !== row.arity) {
        throw new TypeError(`${row.name}: expects ${row.arity} inputs, got ${inputs.length}`);
      }
      if (row.name === "where" && inputs[0].dtype !== "bool") {
        throw new TypeError(`where: condition must be bool, got ${inputs[0].dtype}`);
      }
      const vals = valueInputs(inputs);
      const d = vals[0].dtype;
      for (const a of vals) {
        if (a.dtype !== d) {
          throw new TypeError(
            `${row.name}: operands have dtypes ${
              vals.map((x) => x.dtype).join(" and ")
            }; cast to one dtype first`,
          );
        }
      }
      if (!accepts(row.accepts, d)) {
        throw new TypeError(`${row.name}: expects ${KIND_TEXT[row.accepts]} operands, got ${d}`);
      }
      const shape = broadcastShapes(row.name, ...inputs.map((a) => a.shape));
      return { shape, dtype: row.out(d) };
    },
    reference(inputs, avals, _params, out) {
      const n = sizeOf(out.shape);
      const f = row.ref(valueInputs(avals)[0].dtype);
      const res = new Float64Array(n);
      const rank = out.shape.length;
      const strides = avals.map((a) => broadcastStrides(a.shape, out.shape));
      const idx = new Array<number>(rank).fill(0);
      const off = new Array<number>(inputs.length).fill(0);
      const [x0, x1, x2] = inputs;
      for (let i = 0; i < n; i++) {
        res[i] = roundToDType(f(x0[off[0]], x1 ? x1[off[1]] : 0, x2 ? x2[off[2]] : 0), out.dtype);
        // advance the multi-index, carrying into outer axes
        for (let d = rank - 1; d >= 0; d--) {
          idx[d]++;
          for (let k = 0; k < off.length; k++) off[k] += strides[k][d];
          if (idx[d] < out.shape[d]) break;
          for (let k = 0; k < off.length; k++) off[k] -= strides[k][d] * idx[d];
          idx[d] = 0;
        }
      }
      return res;
    },
    fusion: (inputs, _p, args) => row.wgsl([...args], valueInputs(inputs)[0].dtype),
    fusionHelpers: WGSL_FUNCS,
    batch(inputs, batched) {
      // Broadcasting aligns from the right: give batched operands the full element rank so
      // their batch axis lines up in front.
      const rank = Math.max(...inputs.map((x, i) => elemRank(x, batched[i])));
      return bind(prim, inputs.map((x, i) => (batched[i] ? alignRank(x, rank) : x)), {});
    },
    vjp: row.vjp
      ? (g, inputs, out) => {
        const rule = row.vjp!;
        // Only float inputs have gradients; each goes back to its own (pre-broadcast) shape.
        return rule(g, inputs, out).map((
          c,
          i,
        ) => (c && inputs[i].dtype === "f32" ? sumToShape(c, inputs[i].shape) : null));
      }
      : undefined,
    webgpu(inputs: readonly GpuOperand[], _params, out, memo) {
      const d = valueInputs(inputs)[0].dtype;
      runElementwise(
        { label: row.name, expr: row.wgsl(inputs.map((_, k) => `v${k}`), d), helpers: WGSL_FUNCS },
        inputs.map((o) => ({
          storage: o.storage,
          dtype: o.dtype,
          strides: broadcastStrides(o.shape, out.shape),
          offset: 0,
        })),
        out.shape,
        out.dtype,
        out.storage,
        memo,
      );
    },
  };
  return prim;
}

/** Every elementwise primitive by name. */
export const elementwise: Record<string, Primitive> = Object.fromEntries(
  ROWS.map((r) => [r.name, elementwisePrimitive(r)]),
);

/** Names of the elementwise primitives (for tests that sweep all of them). */
export const ELEMENTWISE_NAMES: readonly string[] = ROWS.map((r) => r.name);

const CAST_HELPERS = `
fn clamp_cast_i32(x: f32) -> f32 { if (is_nan(x)) { return 0.0; } return clamp(x, -2147483648.0, 2147483520.0); }
fn clamp_cast_u32(x: f32) -> f32 { if (is_nan(x)) { return 0.0; } return clamp(x, 0.0, 4294967040.0); }`;

/** cast(x, dtype): value conversion (f32→int truncates toward zero; anything→bool is x != 0). */
export const cast: Primitive<{ dtype: DType }> = {
  name: "cast",
  batch: ([x], _b, p) => bind(cast, [x], p),
  // Only f32 → f32 carries a gradient; conversions to or from integers are not differentiable.
  vjp: (g, [x], _out, { dtype }) => [x.dtype === "f32" && dtype === "f32" ? g : null],
  abstractEval([x], { dtype }) {
    return { shape: x.shape, dtype };
  },
  reference([x], [a], { dtype }) {
    return x.map((v) =>
      dtype === "bool"
        ? B(v !== 0 && !Number.isNaN(v))
        : roundToDType(a.dtype === "f32" ? saturate(v, dtype) : v, dtype)
    );
  },
  fusion: ([x], { dtype }, [v]) => castExpr(x.dtype, dtype, v),
  fusionHelpers: CAST_HELPERS,
  webgpu([x], { dtype }, out) {
    runElementwise(
      {
        label: `cast ${x.dtype}→${dtype}`,
        expr: castExpr(x.dtype, dtype, "v0"),
        helpers: CAST_HELPERS,
      },
      [{ storage: x.storage, dtype: x.dtype, strides: stridesOf(x.shape), offset: 0 }],
      out.shape,
      dtype,
      out.storage,
    );
  },
};

/**
 * Float→int conversion truncates and saturates at the largest f32 below the limit (WGSL's
 * rule), NaN becomes 0; int↔int casts reinterpret the 32 bits (i32 -1 ↔ u32 4294967295).
 */
function saturate(v: number, dtype: DType): number {
  if (dtype === "f32") return v;
  if (Number.isNaN(v)) return 0;
  const t = Math.trunc(v);
  return dtype === "i32"
    ? Math.min(Math.max(t, -2147483648), 2147483520)
    : Math.min(Math.max(t, 0), 4294967040);
}

/** WGSL converting value `v` of dtype `from` to dtype `to`. */
function castExpr(from: DType, to: DType, v: string): string {
  if (to === "bool") {
    return from === "bool"
      ? v
      : from === "f32"
      ? `(${v} != 0.0 && !is_nan(${v}))`
      : `(${v} != ${zeroOf(from)})`;
  }
  if (from === "bool") {
    return `select(${zeroOf(to)}, ${to === "f32" ? "1.0" : to === "i32" ? "1" : "1u"}, ${v})`;
  }
  if (from === to) return v;
  if (from === "f32") return `${to}(clamp_cast_${to}(${v}))`;
  return `${to}(${v})`;
}

/** Every WGSL function the elementwise expressions (and casts) may call, for fused kernels. */
export const ELEMENTWISE_HELPERS: string = WGSL_FUNCS + CAST_HELPERS;
