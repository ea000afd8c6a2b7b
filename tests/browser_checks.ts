/**
 * Kernel-family and gradient checks that run in a browser (and in Deno): every case of
 * `grad_cases.ts` (value, gradient and Hessian-vector product of every differentiable
 * primitive) and the kernel families without gradients (sorts, arg-reductions, comparisons and
 * casts, the PRNG, reductions with ±∞ and NaN, odd-shaped matmuls, jit-fused and scanned
 * programs), each on WebGPU against the float64 reference backend.
 *
 * Chromium's and Safari's WGSL compilers follow the spec where Deno's naga is lenient (a
 * constant expression that evaluates to ∞ or NaN is an error there), so a kernel that passes
 * the suite can still fail to compile in a browser: `tests/web_page_test.ts` bundles this file
 * into a page and runs it in headless Chromium.
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { compareDerivatives, gradCases } from "./grad_cases.ts";
import { assertMatchesReference, host, type HostTensor } from "./helpers.ts";

/** The outcome of one check. */
export interface CheckResult {
  name: string;
  ok: boolean;
  error?: string;
}

type Forward = [string, HostTensor[], (...xs: Tensor[]) => Tensor];

function fixed(values: number[], shape: number[] = [values.length]): HostTensor {
  return { values, shape, dtype: "f32" };
}

/** Kernel families checked by value only (no gradient, or beyond what grad_cases covers). */
function forwardCases(): Forward[] {
  const special = fixed([1, -Infinity, 3, NaN, Infinity, -2, 0, -0]);
  return [
    [
      "matmul 67×129 · 129×33",
      [host([67, 129], "f32", 1), host([129, 33], "f32", 2)],
      (a, b) => mg.matmul(a, b),
    ],
    [
      "batched matmul bᵀ",
      [host([3, 5, 17], "f32", 3), host([3, 9, 17], "f32", 4)],
      (a, b) => mg.matmul(a, b, { transposeB: true }),
    ],
    ["sum of 100,003", [host([100_003], "f32", 5)], (x) => mg.sum(x)],
    [
      "max/min with ±∞",
      [fixed([1, -Infinity, 3, Infinity, -2])],
      (x) => mg.stack([mg.max(x), mg.min(x)]),
    ],
    ["max over rows with NaN", [special], (x) => mg.max(mg.reshape(x, [2, 4]), 1)],
    ["pow with special bases", [special], (x) => mg.pow(x, 2)],
    [
      "logsumexp of −∞ rows",
      [fixed([-Infinity, -Infinity, 0, 1], [2, 2])],
      (x) => mg.logsumexp(x, 1),
    ],
    [
      "argmax/argmin (ties, NaN)",
      [fixed([2, 5, 5, NaN, 1, 1, 0, 3], [2, 4])],
      (x) => mg.stack([mg.argmax(x, 1), mg.argmin(x, 1)]),
    ],
    [
      "comparisons and casts",
      [host([5, 7], "f32", 6), host([7], "f32", 7)],
      (a, b) =>
        mg.cast(
          mg.add(mg.cast(mg.greater(a, b), "i32"), mg.cast(mg.lessEqual(a, b), "i32")),
          "f32",
        ),
    ],
    [
      "integer arithmetic",
      [host([9], "i32", 8), host([9], "i32", 9, 1, 4)],
      (a, b) => mg.add(mg.mul(a, b), mg.mod(a, b)),
    ],
    ["sort 37", [host([37], "f32", 10)], (x) => mg.sort(x)],
    ["argsort 300 (merge path)", [host([300], "f32", 11)], (x) => mg.argsort(x)],
    ["cumsum 1,001", [host([1001], "f32", 12)], (x) => mg.cumsum(x, 0)],
    [
      "where over broadcast",
      [host([4, 1], "f32", 13), host([5], "f32", 14)],
      (a, b) => mg.where(mg.greater(a, b), a, b),
    ],
    [
      "jit-fused chain",
      [host([33, 17], "f32", 15), host([17], "f32", 16)],
      (x, b) =>
        mg.jit((x: Tensor, b: Tensor) => mg.softmax(mg.tanh(mg.add(mg.mul(x, 2), b)), 1))(x, b),
    ],
    [
      "vmap of matmul + max",
      [host([4, 6, 5], "f32", 17), host([4, 5, 3], "f32", 18)],
      (a, b) => mg.vmap((a: Tensor, b: Tensor) => mg.max(mg.matmul(a, b), 0))(a, b),
    ],
    [
      "scan (running product)",
      [host([12, 3], "f32", 19, 0.5, 1.5)],
      (xs) =>
        mg.scan(
          (c: Tensor, x: Tensor) => {
            const next = mg.mul(c, x);
            return [next, next];
          },
          mg.onesLike(mg.slice(xs, [0])),
          xs,
        )[1],
    ],
  ];
}

/** Draws that must give the same bits on WebGPU as on the reference backend. */
async function randomCases(): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  const draws: Array<[string, (k: Tensor) => Tensor]> = [
    ["random.uniform", (k) => mg.random.uniform(k, [1000])],
    ["random.normal", (k) => mg.random.normal(k, [257])],
    ["random.randint", (k) => mg.random.randint(k, [300], 0, 7)],
  ];
  for (const [name, draw] of draws) {
    try {
      const a = await draw(mg.random.key(3)).toFloat64();
      const b = await draw(mg.random.key(3, { backend: "reference" })).toFloat64();
      const far = a.findIndex((v, i) => Math.abs(v - b[i]) > 1e-6 * (1 + Math.abs(b[i])));
      if (far >= 0) throw new Error(`element ${far}: ${a[far]} vs reference ${b[far]}`);
      out.push({ name, ok: true });
    } catch (e) {
      out.push({ name, ok: false, error: (e as Error).message });
    }
  }
  return out;
}

/**
 * Runs every check on the current adapter; `progress` hears each result as it comes. Never
 * throws for a failing check: the result says what failed.
 */
export async function runBrowserChecks(
  progress: (r: CheckResult) => void = () => {},
): Promise<CheckResult[]> {
  await mg.init();
  const results: CheckResult[] = [];
  const report = (r: CheckResult) => {
    results.push(r);
    progress(r);
  };
  for (const [name, inputs, fn] of forwardCases()) {
    try {
      await assertMatchesReference(name, inputs, fn, { rtol: 1e-4, atol: 1e-4 });
      report({ name, ok: true });
    } catch (e) {
      report({ name, ok: false, error: (e as Error).message });
    }
  }
  for (const r of await randomCases()) report(r);
  for (const [group] of gradCases()) {
    const name = `value, gradient and HVP: ${group}`;
    const failures = await compareDerivatives(group);
    report(failures.length ? { name, ok: false, error: failures.join("\n") } : { name, ok: true });
  }
  return results;
}

// In a page (tests/web_page_test.ts bundles this file as one), the checks are called from outside.
if ("document" in globalThis) {
  (globalThis as Record<string, unknown>).runBrowserChecks = runBrowserChecks;
}
