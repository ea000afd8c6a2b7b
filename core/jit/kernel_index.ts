/**
 * Index arithmetic of the plain fused kernels jit plans (WGSL over the kernel's linear index
 * `gi`): where a view lies in a stored value, which element of a smaller (broadcast) value a
 * kernel computes, and where a kernel stores a value of another shape than its own — broadcast
 * (stored once) or a window of its result.
 */
import { type AffineLayout, sizeOf, stridesOf } from "../shape.ts";
import type { Var } from "./ir.ts";

/** Where a view's elements lie in the stored value `input`. */
export interface Window extends AffineLayout {
  input: Var;
}

/**
 * Where a kernel over `shape` stores a value of shape `own` that broadcasts into it: at the
 * elements whose coordinates along the broadcast axes are 0, at `own`'s linear index.
 */
export function broadcastStore(own: readonly number[], shape: readonly number[]) {
  const lead = shape.length - own.length;
  const strides = stridesOf(shape);
  const repeated = shape.flatMap((d, i) =>
    d > 1 && (i < lead || own[i - lead] === 1) ? [`((gi / ${strides[i]}u) % ${d}u) == 0u`] : []
  );
  return {
    guard: repeated.length === 0 ? "true" : repeated.join(" && "),
    index: indexIn(own, shape),
  };
}

/**
 * Where a kernel over `shape` stores the window `start` + `step`·i (steps positive) of its
 * value, a result of shape `own`: at the elements inside the window, at the window's index.
 */
export function windowStore(
  shape: readonly number[],
  start: readonly number[],
  step: readonly number[],
  own: readonly number[],
) {
  const strides = stridesOf(shape), ownStrides = stridesOf(own);
  const conds: string[] = [], terms: string[] = [];
  shape.forEach((d, a) => {
    if (own[a] === d && start[a] === 0 && step[a] === 1) {
      if (d > 1) terms.push(`((gi / ${strides[a]}u) % ${d}u) * ${ownStrides[a]}u`);
      return;
    }
    const c = `(i32((gi / ${strides[a]}u) % ${d}u) - ${start[a]})`;
    conds.push(`${c} >= 0`, `${c} < ${own[a] * step[a]}`);
    if (step[a] > 1) conds.push(`${c} % ${step[a]} == 0`);
    if (own[a] > 1) terms.push(`u32(${c} / ${step[a]}) * ${ownStrides[a]}u`);
  });
  return {
    guard: conds.length === 0 ? "true" : conds.join(" && "),
    index: terms.length === 0 ? "0u" : terms.join(" + "),
  };
}

/**
 * Where a kernel over `shape` stores its value into the box of a result of shape `own` that
 * starts at `lo` (the box has the kernel's shape): every element, at its place in the box.
 */
export function boxStore(shape: readonly number[], lo: readonly number[], own: readonly number[]) {
  const strides = stridesOf(shape), ownStrides = stridesOf(own);
  const terms = shape.flatMap((d, a) => {
    const c = d > 1 ? `((gi / ${strides[a]}u) % ${d}u)` : "0u";
    return d > 1 || lo[a] > 0 ? [`(${c} + ${lo[a]}u) * ${ownStrides[a]}u`] : [];
  });
  return { guard: "true", index: terms.length === 0 ? "0u" : terms.join(" + ") };
}

/**
 * The linear index into a value of shape `own` (which broadcasts into `shape`) of the element a
 * plain fused kernel over `shape` computes at its index `gi`.
 */
export function indexIn(own: readonly number[], shape: readonly number[]): string {
  if (sizeOf(own) === sizeOf(shape)) return "gi";
  const lead = shape.length - own.length;
  const strides = stridesOf(shape), ownStrides = stridesOf(own);
  const terms = own.flatMap((d, a) =>
    d === 1 ? [] : [`((gi / ${strides[lead + a]}u) % ${d}u) * ${ownStrides[a]}u`]
  );
  return terms.length === 0 ? "0u" : `(${terms.join(" + ")})`;
}
