/**
 * Random programs (and their gradients) through jit's planner: chains of elementwise ops over
 * values of a few shapes joined by slices, transposes, stacks, concatenations, small and large
 * reductions, random draws and reshapes — the patterns the planner merges, windows and unrolls
 * — each compared with eager execution on WebGPU and with the float64 reference. Seeded: the
 * same programs on every run.
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { assertTreesClose } from "./helpers.ts";
import { hostRng as rng } from "../core/autodiff/check_grads.ts";

type Op = (vals: Tensor[], pick: () => number) => Tensor | null;

/** Values of shape [R, C] (R, C fixed per program) or [R] are combined; null skips an op. */
function ops(R: number, C: number): Op[] {
  const any = (vals: Tensor[], pick: () => number) => vals[Math.floor(pick() * vals.length)];
  const matrix = (vals: Tensor[], pick: () => number) => {
    const ms = vals.filter((v) => v.ndim === 2);
    return ms.length ? ms[Math.floor(pick() * ms.length)] : null;
  };
  const vector = (vals: Tensor[], pick: () => number) => {
    const vs = vals.filter((v) => v.ndim === 1);
    return vs.length ? vs[Math.floor(pick() * vs.length)] : null;
  };
  return [
    (v, p) => {
      const a = any(v, p), b = any(v, p);
      return a.ndim === b.ndim ? mg.add(a, b) : mg.add(a, 0.5);
    },
    (v, p) => mg.mul(any(v, p), 1.5),
    (v, p) => mg.tanh(any(v, p)),
    (v, p) => mg.exp(mg.mul(any(v, p), 0.3)),
    (v, p) => {
      const a = any(v, p);
      return mg.where(mg.greater(a, 0), a, mg.mul(a, -2));
    },
    (v, p) => { // a column, maybe reversed or strided: a window
      const m = matrix(v, p);
      if (!m) return null;
      const j = Math.floor(p() * C);
      return p() < 0.5 ? mg.slice(m, [null, j]) : mg.slice(m, [[null, null, -1], j]);
    },
    (v, p) => { // a stack of vectors along a new last axis of C (or the first)
      const vs = v.filter((t) => t.ndim === 1);
      if (vs.length === 0) return null;
      const parts = Array.from({ length: C }, () => vs[Math.floor(p() * vs.length)]);
      return p() < 0.5 ? mg.stack(parts, 1) : mg.transpose(mg.stack(parts, 0));
    },
    (v, p) => { // consecutive column slices joined back
      const m = matrix(v, p);
      if (!m || C < 2) return null;
      const cut = 1 + Math.floor(p() * (C - 1));
      return mg.concat([mg.slice(m, [null, [0, cut]]), mg.slice(m, [null, [cut, C]])], 1);
    },
    (v, p) => { // a reduction over the C ≤ 4 columns: unrolled
      const m = matrix(v, p);
      if (!m) return null;
      const which = Math.floor(p() * 4);
      if (which === 0) return mg.sum(m, 1);
      if (which === 1) return mg.max(m, 1);
      if (which === 2) return mg.cast(mg.argmax(m, 1), "f32");
      return mg.min(m, 1);
    },
    (v, p) => { // a reduction over the R rows (not unrolled), broadcast back
      const m = matrix(v, p);
      return m ? mg.add(m, mg.mean(m, 0, true)) : null;
    },
    (v, p) => { // a vector broadcast against a matrix
      const a = vector(v, p), m = matrix(v, p);
      return a && m ? mg.mul(m, mg.reshape(a, [R, 1])) : null;
    },
    (v, p) => { // a transposed matrix, used transposed back
      const m = matrix(v, p);
      return m ? mg.transpose(mg.exp(mg.mul(mg.transpose(m), 0.1))) : null;
    },
  ];
}

/** Program `seed` with its shapes and inputs. */
function instance(seed: number) {
  const R = [1, 3, 7, 33][seed % 4], C = [1, 2, 3, 4][(seed >> 2) % 4];
  return {
    R,
    C,
    f: program(seed, R, C),
    x: mg.random.normal(mg.random.key(seed), [R, C]),
    y: mg.random.normal(mg.random.key(1000 + seed), [R]),
    k: mg.random.key(2000 + seed),
  };
}

/** A random program over inputs x [R, C] and y [R] returning a few of its values. */
function program(seed: number, R: number, C: number) {
  const pick = rng(seed);
  const table = ops(R, C);
  const length = 6 + Math.floor(pick() * 10);
  const choices = Array.from({ length }, () => Math.floor(pick() * table.length));
  const picks = Array.from({ length: 64 * length }, () => pick());
  return (x: Tensor, y: Tensor, k: Tensor) => {
    let i = 0;
    const p = () => picks[i++ % picks.length];
    const vals: Tensor[] = [x, y, mg.random.uniform(k, [R, C], { minval: -1, maxval: 1 })];
    for (const c of choices) {
      const v = table[c](vals, p);
      if (v) vals.push(v);
    }
    // the last values and one from the middle: several outputs, some read by later ones
    return [...vals.slice(-3), vals[Math.floor(vals.length / 2)]];
  };
}

Deno.test("jit: 60 random programs of windows, stacks, small reductions and draws match eager and float64", async () => {
  await mg.init();
  for (let seed = 1; seed <= 60; seed++) {
    const { R, C, f, x, y, k } = instance(seed);
    const what = `program ${seed} (R ${R}, C ${C})`;
    const eager = f(x, y, k);
    await assertTreesClose(mg.jit(f)(x, y, k), eager, `${what}: jit`, { rtol: 1e-5, atol: 1e-5 });
    mg.setBackend("reference");
    try {
      const ref = f(
        mg.tensor(await x.toFloat64(), { shape: [R, C] }),
        mg.tensor(await y.toFloat64(), { shape: [R] }),
        mg.tensor(await k.toFloat64(), { shape: [2], dtype: "u32" }),
      );
      await assertTreesClose(eager, ref, `${what}: webgpu vs float64`, { rtol: 1e-4, atol: 1e-4 });
    } finally {
      mg.setBackend("webgpu");
    }
  }
});

Deno.test("jit(grad): 31 random programs' gradients match eager grad", async () => {
  await mg.init();
  // 343: a max's gradient compared a value recomputed by windows with the value stored whole
  for (const seed of [...Array.from({ length: 30 }, (_, i) => 101 + i), 343]) {
    const { f, x, y, k } = instance(seed);
    // every output weighted differently, through a tanh (so no gradient is a constant)
    const loss = (x: Tensor, y: Tensor) =>
      (f(x, y, k) as Tensor[]).reduce(
        (s, o, i) => mg.add(s, mg.mul(mg.sum(mg.tanh(o)), i + 1)),
        mg.tensor(0),
      );
    const g = mg.grad(loss, { argnums: [0, 1] });
    await assertTreesClose(mg.jit(g)(x, y), g(x, y), `grad of program ${seed}`, {
      rtol: 1e-4,
      atol: 1e-4,
    });
  }
});
