/**
 * The sinusoid test sets `sinusoid_report.ts` and `sinusoid_float64.ts` both score on, so their
 * figures compare directly.
 *
 * A set's mean squared amplitude scales every MSE on it, and 100 independent tasks put it
 * anywhere in about 8.5 ± 1.5: the earlier sessions' 100 tasks (key 12345, independent) sit at
 * 10.6, 24% harder than the distribution. Stratifying amplitude and phase removes that drift but
 * not the points' draw, so the expectation is taken on 4,096 stratified tasks.
 */
import type { SinusoidOptions } from "../envs/mod.ts";

/** Support (and query) points per test task. */
export const TEST_SHOTS = 10;

/** A named test set: its key and `sampleSinusoid` options. */
export interface TestSet {
  name: string;
  key: number;
  opts: SinusoidOptions;
}

/** The 100 tasks (stratified), the same key drawn independently, and the expectation. */
export const TEST_SETS: { test: TestSet; iidTest: TestSet; wideTest: TestSet } = {
  test: {
    name: "the issue's 100 tasks (stratified)",
    key: 12345,
    opts: { tasks: 100, shots: TEST_SHOTS, stratified: true },
  },
  iidTest: {
    name: "the same 100, drawn independently",
    key: 12345,
    opts: { tasks: 100, shots: TEST_SHOTS },
  },
  wideTest: {
    name: "4,096 stratified tasks",
    key: 54321,
    opts: { tasks: 4096, shots: TEST_SHOTS, stratified: true },
  },
};
