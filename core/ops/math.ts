/** Elementwise math with NumPy broadcasting and JAX-style weak typing of JS numbers. */
import {
  assertDType,
  checkFits,
  type DTypeLike,
  isFloat,
  promoteTypes,
  weakNumberDType,
  weakTensorDType,
} from "../dtype.ts";
import { bind } from "../primitive.ts";
import { cast as castPrim, elementwise as E } from "../primitives/elementwise.ts";
import { Tensor, type TensorLike } from "../tensor.ts";
import { scalar } from "./creation.ts";
import { disposeOnThrow } from "../memory.ts";

function checkTensor(x: unknown, op: string): Tensor {
  if (x instanceof Tensor) return x;
  throw new TypeError(`${op}: expected a Tensor, got ${x === null ? "null" : typeof x}`);
}

/**
 * Convert `x` to dtype (no-op when it already has it).
 *
 * @example
 * ```ts
 * import { cast, tensor } from "@metagrad/metagrad";
 * const i = cast(tensor([1.7, -1.7]), "i32"); // [1, -1]
 * ```
 */
export function cast(x: Tensor, dtype: DTypeLike): Tensor {
  checkTensor(x, "cast");
  const d = assertDType(dtype, "cast");
  return x.dtype === d ? x : bind(castPrim, [x], { dtype: d });
}

/** Operands as tensors of one dtype: numbers adopt the tensor's dtype when they fit. */
function operands(op: string, xs: TensorLike[], floatOnly = false): Tensor[] {
  const tensors = xs.filter((x): x is Tensor => x instanceof Tensor);
  if (tensors.length === 0) throw new TypeError(`${op}: needs at least one Tensor operand`);
  // weak scalars (JS numbers jit traced) adopt the others' dtype, as numbers do
  const strong = tensors.filter((t) => !t.weak);
  let dtype = (strong[0] ?? tensors[0]).dtype;
  for (const t of strong.slice(1)) dtype = promoteTypes(dtype, t.dtype, op);
  for (const x of xs) {
    if (x instanceof Tensor && x.weak) {
      dtype = promoteTypes(dtype, weakTensorDType(x.dtype, dtype), op);
    }
    if (typeof x === "number") dtype = promoteTypes(dtype, weakNumberDType(x, dtype), op);
    else if (typeof x === "boolean") dtype = promoteTypes(dtype, "bool", op);
    else if (!(x instanceof Tensor)) {
      throw new TypeError(
        `${op}: operand is ${x === null ? "null" : typeof x}, expected a Tensor or number`,
      );
    }
  }
  if (floatOnly && !isFloat(dtype)) dtype = "f32";
  const backend = tensors[0].backend;
  return xs.map((x) => {
    if (x instanceof Tensor) return cast(x, dtype);
    checkFits(Number(x), dtype, op); // 2 ** 31 with an i32 tensor is refused, as JAX does
    return scalar(x, dtype, backend);
  });
}

/** Arithmetic on bools counts them as i32 (true + true = 2), as NumPy does. */
function numeric(op: string, xs: TensorLike[]): Tensor[] {
  const ts = operands(op, xs);
  return ts[0].dtype === "bool" ? ts.map((t) => cast(t, "i32")) : ts;
}

// disposeOnThrow: the scalars and casts made for operands go if the op refuses them
const bin = (name: string) => (a: TensorLike, b: TensorLike): Tensor =>
  disposeOnThrow(() => bind(E[name], numeric(name, [a, b]), {}));
const cmp = (name: string) => (a: TensorLike, b: TensorLike): Tensor =>
  disposeOnThrow(() => bind(E[name], operands(name, [a, b]), {}));
const floatUnary = (name: string) => (x: Tensor): Tensor =>
  bind(E[name], [cast(checkTensor(x, name), "f32")], {});

/**
 * a + b with broadcasting. @example
 * ```ts
 * import { add, tensor } from "@metagrad/metagrad";
 * add(tensor([1, 2]), 10); // [11, 12]
 * ```
 */
export const add: (a: TensorLike, b: TensorLike) => Tensor = bin("add");
/**
 * a − b. @example
 * ```ts
 * import { sub, tensor } from "@metagrad/metagrad";
 * sub(tensor([3, 4]), tensor([1, 1]));
 * ```
 */
export const sub: (a: TensorLike, b: TensorLike) => Tensor = bin("sub");
/**
 * a · b (elementwise). @example
 * ```ts
 * import { mul, tensor } from "@metagrad/metagrad";
 * mul(tensor([[1], [2]]), tensor([1, 10])); // [[1, 10], [2, 20]]
 * ```
 */
export const mul: (a: TensorLike, b: TensorLike) => Tensor = bin("mul");
/**
 * a / b: true division for f32, floor division for integers. @example
 * ```ts
 * import { div, tensor } from "@metagrad/metagrad";
 * div(tensor([1, 2]), 4); // [0.25, 0.5]
 * ```
 */
export const div: (a: TensorLike, b: TensorLike) => Tensor = bin("div");
/**
 * Floor modulo (result has the divisor's sign, as in NumPy). @example
 * ```ts
 * import { mod, tensor } from "@metagrad/metagrad";
 * mod(tensor([-3, 3], { dtype: "i32" }), 2); // [1, 1]
 * ```
 */
export const mod: (a: TensorLike, b: TensorLike) => Tensor = bin("mod");
/**
 * Elementwise maximum (NaN propagates). @example
 * ```ts
 * import { maximum, tensor } from "@metagrad/metagrad";
 * maximum(tensor([1, 5]), 3); // [3, 5]
 * ```
 */
export const maximum: (a: TensorLike, b: TensorLike) => Tensor = bin("maximum");
/**
 * Elementwise minimum (NaN propagates). @example
 * ```ts
 * import { minimum, tensor } from "@metagrad/metagrad";
 * minimum(tensor([1, 5]), 3); // [1, 3]
 * ```
 */
export const minimum: (a: TensorLike, b: TensorLike) => Tensor = bin("minimum");

/**
 * a ** b in f32 (integers are promoted). Negative bases need integer exponents.
 *
 * @example
 * ```ts
 * import { pow, tensor } from "@metagrad/metagrad";
 * pow(tensor([2, -2]), 3); // [8, -8]
 * ```
 */
export function pow(a: TensorLike, b: TensorLike): Tensor {
  return disposeOnThrow(() => bind(E.pow, operands("pow", [a, b], true), {}));
}

/**
 * a == b → bool. @example
 * ```ts
 * import { equal, tensor } from "@metagrad/metagrad";
 * equal(tensor([1, 2]), 2); // [false, true]
 * ```
 */
export const equal: (a: TensorLike, b: TensorLike) => Tensor = cmp("eq");
/**
 * a != b → bool (true for NaN). @example
 * ```ts
 * import { notEqual, tensor } from "@metagrad/metagrad";
 * notEqual(tensor([1, 2]), 2);
 * ```
 */
export const notEqual: (a: TensorLike, b: TensorLike) => Tensor = cmp("ne");
/**
 * a < b → bool. @example
 * ```ts
 * import { less, tensor } from "@metagrad/metagrad";
 * less(tensor([1, 2]), 2);
 * ```
 */
export const less: (a: TensorLike, b: TensorLike) => Tensor = cmp("lt");
/**
 * a ≤ b → bool. @example
 * ```ts
 * import { lessEqual, tensor } from "@metagrad/metagrad";
 * lessEqual(tensor([1, 2]), 2);
 * ```
 */
export const lessEqual: (a: TensorLike, b: TensorLike) => Tensor = cmp("le");
/**
 * a > b → bool. @example
 * ```ts
 * import { greater, tensor } from "@metagrad/metagrad";
 * greater(tensor([1, 2]), 1);
 * ```
 */
export const greater: (a: TensorLike, b: TensorLike) => Tensor = cmp("gt");
/**
 * a ≥ b → bool. @example
 * ```ts
 * import { greaterEqual, tensor } from "@metagrad/metagrad";
 * greaterEqual(tensor([1, 2]), 2);
 * ```
 */
export const greaterEqual: (a: TensorLike, b: TensorLike) => Tensor = cmp("ge");

function logical(name: string) {
  return (a: TensorLike, b: TensorLike): Tensor =>
    disposeOnThrow(() => bind(E[name], operands(name, [a, b]).map((t) => cast(t, "bool")), {}));
}
/**
 * Logical and (operands converted to bool). @example
 * ```ts
 * import { logicalAnd, tensor } from "@metagrad/metagrad";
 * logicalAnd(tensor([true, true]), tensor([true, false]));
 * ```
 */
export const logicalAnd: (a: TensorLike, b: TensorLike) => Tensor = logical("and");
/**
 * Logical or. @example
 * ```ts
 * import { logicalOr, tensor } from "@metagrad/metagrad";
 * logicalOr(tensor([false, true]), false);
 * ```
 */
export const logicalOr: (a: TensorLike, b: TensorLike) => Tensor = logical("or");
/**
 * Logical xor. @example
 * ```ts
 * import { logicalXor, tensor } from "@metagrad/metagrad";
 * logicalXor(tensor([false, true]), true);
 * ```
 */
export const logicalXor: (a: TensorLike, b: TensorLike) => Tensor = logical("xor");

/**
 * Logical not (x converted to bool). @example
 * ```ts
 * import { logicalNot, tensor } from "@metagrad/metagrad";
 * logicalNot(tensor([true, false]));
 * ```
 */
export function logicalNot(x: Tensor): Tensor {
  return bind(E.not, [cast(checkTensor(x, "logicalNot"), "bool")], {});
}

function bitwise(name: string) {
  return (a: TensorLike, b: TensorLike): Tensor =>
    disposeOnThrow(() => {
      const ts = operands(name, [a, b]);
      if (ts[0].dtype === "f32") {
        throw new TypeError(`${name}: needs integer or bool operands, got f32`);
      }
      return bind(E[name], ts, {});
    });
}
/**
 * Bitwise and of integers. @example
 * ```ts
 * import { bitwiseAnd, tensor } from "@metagrad/metagrad";
 * bitwiseAnd(tensor([6], { dtype: "u32" }), 3); // [2]
 * ```
 */
export const bitwiseAnd: (a: TensorLike, b: TensorLike) => Tensor = bitwise("and");
/**
 * Bitwise or of integers. @example
 * ```ts
 * import { bitwiseOr, tensor } from "@metagrad/metagrad";
 * bitwiseOr(tensor([4], { dtype: "u32" }), 1); // [5]
 * ```
 */
export const bitwiseOr: (a: TensorLike, b: TensorLike) => Tensor = bitwise("or");
/**
 * Bitwise xor of integers. @example
 * ```ts
 * import { bitwiseXor, tensor } from "@metagrad/metagrad";
 * bitwiseXor(tensor([6], { dtype: "u32" }), 3); // [5]
 * ```
 */
export const bitwiseXor: (a: TensorLike, b: TensorLike) => Tensor = bitwise("xor");
/**
 * a << b (shift amounts taken mod 32). @example
 * ```ts
 * import { shiftLeft, tensor } from "@metagrad/metagrad";
 * shiftLeft(tensor([1], { dtype: "u32" }), 4); // [16]
 * ```
 */
export const shiftLeft: (a: TensorLike, b: TensorLike) => Tensor = bitwise("shiftLeft");
/**
 * a >> b: logical for u32, arithmetic for i32. @example
 * ```ts
 * import { shiftRight, tensor } from "@metagrad/metagrad";
 * shiftRight(tensor([256], { dtype: "u32" }), 4); // [16]
 * ```
 */
export const shiftRight: (a: TensorLike, b: TensorLike) => Tensor = bitwise("shiftRight");

/**
 * cond ? a : b elementwise, with broadcasting.
 *
 * @example
 * ```ts
 * import { where, tensor } from "@metagrad/metagrad";
 * const x = tensor([-1, 2]);
 * where(x.gt(0), x, 0); // [0, 2]
 * ```
 */
export function where(cond: TensorLike, a: TensorLike, b: TensorLike): Tensor {
  return disposeOnThrow(() => whereOf(cond, a, b));
}

function whereOf(cond: TensorLike, a: TensorLike, b: TensorLike): Tensor {
  const anchor = [cond, a, b].find((x): x is Tensor => x instanceof Tensor);
  if (!anchor) throw new TypeError("where: needs at least one Tensor operand");
  const c = cond instanceof Tensor
    ? cast(cond, "bool")
    : scalar(Boolean(cond), "bool", anchor.backend);
  const branches = [a, b].map((v) => (typeof v === "boolean" ? Number(v) : v));
  // Two JS numbers: f32, as tensor() would make them.
  const [x, y] = branches.some((v) => v instanceof Tensor)
    ? operands("where", branches)
    : branches.map((v) => scalar(v as number, "f32", anchor.backend));
  return bind(E.where, [c, x, y], {});
}

/**
 * −x. @example
 * ```ts
 * import { neg, tensor } from "@metagrad/metagrad";
 * neg(tensor([1, -2]));
 * ```
 */
export function neg(x: Tensor): Tensor {
  return bind(E.neg, numeric("neg", [checkTensor(x, "neg")]), {});
}
/**
 * |x|. @example
 * ```ts
 * import { abs, tensor } from "@metagrad/metagrad";
 * abs(tensor([-1, 2]));
 * ```
 */
export function abs(x: Tensor): Tensor {
  return bind(E.abs, numeric("abs", [checkTensor(x, "abs")]), {});
}
/**
 * −1, 0 or 1 by the sign of x (NaN stays NaN). @example
 * ```ts
 * import { sign, tensor } from "@metagrad/metagrad";
 * sign(tensor([-3, 0, 2]));
 * ```
 */
export function sign(x: Tensor): Tensor {
  return bind(E.sign, numeric("sign", [checkTensor(x, "sign")]), {});
}

/**
 * eˣ. @example
 * ```ts
 * import { exp, tensor } from "@metagrad/metagrad";
 * exp(tensor([0, 1]));
 * ```
 */
export const exp: (x: Tensor) => Tensor = floatUnary("exp");
/**
 * Natural log. @example
 * ```ts
 * import { log, tensor } from "@metagrad/metagrad";
 * log(tensor([1, Math.E]));
 * ```
 */
export const log: (x: Tensor) => Tensor = floatUnary("log");
/**
 * log(1 + x), accurate near 0. @example
 * ```ts
 * import { log1p, tensor } from "@metagrad/metagrad";
 * log1p(tensor([1e-7]));
 * ```
 */
export const log1p: (x: Tensor) => Tensor = floatUnary("log1p");
/**
 * eˣ − 1, accurate near 0. @example
 * ```ts
 * import { expm1, tensor } from "@metagrad/metagrad";
 * expm1(tensor([1e-7]));
 * ```
 */
export const expm1: (x: Tensor) => Tensor = floatUnary("expm1");
/**
 * sin x. @example
 * ```ts
 * import { sin, tensor } from "@metagrad/metagrad";
 * sin(tensor([0, Math.PI / 2]));
 * ```
 */
export const sin: (x: Tensor) => Tensor = floatUnary("sin");
/**
 * cos x. @example
 * ```ts
 * import { cos, tensor } from "@metagrad/metagrad";
 * cos(tensor([0]));
 * ```
 */
export const cos: (x: Tensor) => Tensor = floatUnary("cos");
/**
 * tanh x. @example
 * ```ts
 * import { tanh, tensor } from "@metagrad/metagrad";
 * tanh(tensor([0, 100]));
 * ```
 */
export const tanh: (x: Tensor) => Tensor = floatUnary("tanh");
/**
 * √x. @example
 * ```ts
 * import { sqrt, tensor } from "@metagrad/metagrad";
 * sqrt(tensor([4, 9]));
 * ```
 */
export const sqrt: (x: Tensor) => Tensor = floatUnary("sqrt");
/**
 * 1/√x. @example
 * ```ts
 * import { rsqrt, tensor } from "@metagrad/metagrad";
 * rsqrt(tensor([4]));
 * ```
 */
export const rsqrt: (x: Tensor) => Tensor = floatUnary("rsqrt");
/**
 * 1/x. @example
 * ```ts
 * import { reciprocal, tensor } from "@metagrad/metagrad";
 * reciprocal(tensor([4]));
 * ```
 */
export const reciprocal: (x: Tensor) => Tensor = floatUnary("reciprocal");
/**
 * Logistic function, stable for large |x|. @example
 * ```ts
 * import { sigmoid, tensor } from "@metagrad/metagrad";
 * sigmoid(tensor([0, -100]));
 * ```
 */
export const sigmoid: (x: Tensor) => Tensor = floatUnary("sigmoid");
/**
 * Error function (|error| < 2e-7 in f32). @example
 * ```ts
 * import { erf, tensor } from "@metagrad/metagrad";
 * erf(tensor([0.5]));
 * ```
 */
export const erf: (x: Tensor) => Tensor = floatUnary("erf");

function integerIdentity(name: string) {
  const f = floatUnary(name);
  return (x: Tensor): Tensor => (checkTensor(x, name).dtype === "f32" ? f(x) : x);
}
/**
 * Round down (integers unchanged). @example
 * ```ts
 * import { floor, tensor } from "@metagrad/metagrad";
 * floor(tensor([1.5, -1.5]));
 * ```
 */
export const floor: (x: Tensor) => Tensor = integerIdentity("floor");
/**
 * Round up (integers unchanged). @example
 * ```ts
 * import { ceil, tensor } from "@metagrad/metagrad";
 * ceil(tensor([1.5, -1.5]));
 * ```
 */
export const ceil: (x: Tensor) => Tensor = integerIdentity("ceil");
/**
 * Round half to even (integers unchanged). @example
 * ```ts
 * import { round, tensor } from "@metagrad/metagrad";
 * round(tensor([0.5, 1.5, 2.5])); // [0, 2, 2]
 * ```
 */
export const round: (x: Tensor) => Tensor = integerIdentity("round");

/**
 * x². @example
 * ```ts
 * import { square, tensor } from "@metagrad/metagrad";
 * square(tensor([3]));
 * ```
 */
export function square(x: Tensor): Tensor {
  return mul(x, x);
}

/**
 * max(x, 0). @example
 * ```ts
 * import { relu, tensor } from "@metagrad/metagrad";
 * relu(tensor([-1, 2]));
 * ```
 */
export function relu(x: Tensor): Tensor {
  return where(greater(x, 0), x, 0);
}

/**
 * x for x > 0, slope·x otherwise. @example
 * ```ts
 * import { leakyRelu, tensor } from "@metagrad/metagrad";
 * leakyRelu(tensor([-1, 2]), 0.1);
 * ```
 */
export function leakyRelu(x: Tensor, slope = 0.01): Tensor {
  return where(greater(x, 0), x, mul(x, slope));
}

/**
 * x for x > 0, eˣ − 1 otherwise. @example
 * ```ts
 * import { elu, tensor } from "@metagrad/metagrad";
 * elu(tensor([-1, 2]));
 * ```
 */
export function elu(x: Tensor): Tensor {
  return where(greater(x, 0), x, expm1(minimum(x, 0)));
}

/**
 * log(1 + eˣ), stable. @example
 * ```ts
 * import { softplus, tensor } from "@metagrad/metagrad";
 * softplus(tensor([0, 100]));
 * ```
 */
export function softplus(x: Tensor): Tensor {
  return add(relu(x), log1p(exp(neg(abs(x)))));
}

/**
 * x·Φ(x), the exact GELU. @example
 * ```ts
 * import { gelu, tensor } from "@metagrad/metagrad";
 * gelu(tensor([1]));
 * ```
 */
export function gelu(x: Tensor): Tensor {
  return mul(mul(x, 0.5), add(erf(mul(x, Math.SQRT1_2)), 1));
}

/**
 * Clamp to [lo, hi] (NaN stays NaN). @example
 * ```ts
 * import { clip, tensor } from "@metagrad/metagrad";
 * clip(tensor([-2, 0.5, 3]), 0, 1);
 * ```
 */
export function clip(x: Tensor, lo: TensorLike, hi: TensorLike): Tensor {
  return minimum(maximum(x, lo), hi);
}

/**
 * True where x is NaN. @example
 * ```ts
 * import { isNaN, tensor } from "@metagrad/metagrad";
 * isNaN(tensor([NaN, 1]));
 * ```
 */
export function isNaN(x: Tensor): Tensor {
  return notEqual(x, x);
}
