/**
 * The benchmark workloads, shared by `deno task bench` (bench/run.ts) and `deno bench`
 * (bench/ops_bench.ts). Every figure is measured on the adapter in use, and a calibration
 * workload (a fixed float64 loop on the CPU) is timed in the same run so that records taken
 * on shared, noisy machines compare as ratios.
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";

export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** true when larger is better (throughputs), false for latencies. */
  higherIsBetter: boolean;
}

/** Median of `reps` timings of `fn` (ms). */
async function timeMs(fn: () => Promise<void> | void, reps: number): Promise<number> {
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  return ts[Math.floor(ts.length / 2)];
}

/** A fixed CPU workload (ms): the yardstick for this machine's speed right now. */
export async function calibrationMs(): Promise<number> {
  const a = new Float64Array(1 << 16).map((_, i) => i * 1e-5);
  return await timeMs(() => {
    let s = 0;
    for (let r = 0; r < 200; r++) {
      for (let i = 0; i < a.length; i++) s += a[i] * a[(i * 7) & 0xffff];
    }
    if (s === 42) console.log(s); // keep the loop alive
  }, 7);
}

/**
 * Run `make` and wait for its results to be computed, then free them. Results are kept until
 * the wait because eager elementwise ops are deferred: one disposed unread is never computed.
 */
async function computeAndFree(make: () => Tensor | Tensor[]): Promise<void> {
  const out = make();
  await mg.sync();
  for (const t of [out].flat()) t.dispose();
}

export async function elementwiseAddGBs(n = 16 * 1024 * 1024): Promise<Figure> {
  const a = mg.ones([n]), b = mg.ones([n]);
  await mg.sync(); // stored, so the adds below load them
  await computeAndFree(() => mg.add(a, b));
  const reps = 5;
  const ms = await timeMs(
    () => computeAndFree(() => Array.from({ length: reps }, () => mg.add(a, b))),
    3,
  ) / reps;
  a.dispose(), b.dispose();
  return {
    name: `add ${n / (1 << 20)}M f32`,
    value: (3 * 4 * n) / (ms * 1e6),
    unit: "GB/s",
    higherIsBetter: true,
  };
}

export async function matmulGflops(n: number): Promise<{ figure: Figure; firstCallMs: number }> {
  const a = mg.random.normal(mg.random.key(1), [n, n]),
    b = mg.random.normal(mg.random.key(2), [n, n]);
  await mg.sync();
  const t0 = performance.now();
  mg.matmul(a, b).dispose();
  await mg.sync();
  const firstCallMs = performance.now() - t0;
  const reps = n >= 1024 ? 1 : n >= 512 ? 3 : 10;
  const ms = await timeMs(async () => {
    for (let i = 0; i < reps; i++) mg.matmul(a, b).dispose();
    await mg.sync();
  }, 3) / reps;
  a.dispose(), b.dispose();
  return {
    figure: {
      name: `matmul ${n}³`,
      value: (2 * n ** 3) / (ms * 1e6),
      unit: "GFLOP/s",
      higherIsBetter: true,
    },
    firstCallMs,
  };
}

/**
 * Amortised cost of one tiny op inside a batch: a chain of 100 dependent eager adds on 64
 * floats, 20 chains per submission, every result computed. `fused: false` turns eager fusion
 * off, so that each op dispatches its own kernel.
 */
export async function tinyOpChain(
  { fused = true } = {},
): Promise<{ figure: Figure; dispatches: number }> {
  const wasFused = mg.eagerFusion();
  mg.setEagerFusion(fused);
  try {
    const x = mg.random.normal(mg.random.key(3), [64]);
    const chain = () =>
      mg.tidy(() => {
        let y = x;
        for (let i = 0; i < 100; i++) y = mg.add(y, x);
        return y;
      });
    const rounds = 20;
    // steady state: a group is compiled fused once it has recurred enough (core/fusion/eager.ts)
    for (let i = 0; i < 8; i++) await computeAndFree(() => Array.from({ length: rounds }, chain));
    const d0 = mg.runtimeStats().dispatches;
    await computeAndFree(chain);
    const dispatches = mg.runtimeStats().dispatches - d0;
    const ms = await timeMs(
      () => computeAndFree(() => Array.from({ length: rounds }, chain)),
      5,
    );
    x.dispose();
    return {
      figure: {
        name: fused ? "tiny op (chain of 100)" : "tiny op (chain of 100, unfused)",
        value: (ms * 1000) / (rounds * 100),
        unit: "µs/op",
        higherIsBetter: false,
      },
      dispatches,
    };
  } finally {
    mg.setEagerFusion(wasFused);
  }
}

/** The same chain of 100 adds under jit: fused into one kernel. */
export async function tinyOpChainJit(): Promise<Figure> {
  const x = mg.ones([64]);
  const chain = mg.jit((x: Tensor) => {
    let y = x;
    for (let i = 0; i < 100; i++) y = mg.add(y, x);
    return y;
  });
  chain(x).dispose();
  await mg.sync();
  const rounds = 20;
  const ms = await timeMs(async () => {
    for (let r = 0; r < rounds; r++) chain(x).dispose();
    await mg.sync();
  }, 5);
  x.dispose();
  return {
    name: "tiny op (chain of 100, jit)",
    value: (ms * 1000) / (rounds * 100),
    unit: "µs/op",
    higherIsBetter: false,
  };
}

/** One submit-and-wait round trip with a trivial op (the readback floor). */
export async function readbackMs(): Promise<Figure> {
  const x = mg.ones([1]);
  await x.add(1).data();
  const ms = await timeMs(async () => {
    await x.add(1).data();
  }, 10);
  x.dispose();
  return { name: "op + readback", value: ms, unit: "ms", higherIsBetter: false };
}

/** Conv-4 (64 channels) forward + backward on 25 × 5 images of 28×28, eager (ms per step). */
export async function conv4Step(): Promise<{ figure: Figure; firstCallMs: number }> {
  const net = mg.nn.conv4({ inChannels: 1, imageSize: 28, ways: 5 });
  const { params, state } = mg.tidy(() => net.init(mg.random.key(0)));
  const images = mg.random.normal(mg.random.key(1), [125, 1, 28, 28]);
  const labels = mg.tidy(() => mg.cast(mg.mod(mg.arange(125), 5), "i32"));
  const step = () =>
    mg.tidy(() => {
      const loss = (p: unknown) =>
        mg.nn.softmaxCrossEntropy(net.apply(p as unknown[], state, images)[0], labels);
      return mg.valueAndGrad(loss)(params);
    });
  const t0 = performance.now();
  let out = step();
  await (out[0] as Tensor).item();
  const firstCallMs = performance.now() - t0;
  mg.tree.map((t: Tensor) => t.dispose(), out);
  const ms = await timeMs(async () => {
    out = step();
    await (out[0] as Tensor).item();
    mg.tree.map((t: Tensor) => t.dispose(), out);
  }, 2);

  return {
    figure: {
      name: "Conv-4 fwd+bwd, 125×1×28×28",
      value: ms,
      unit: "ms/step",
      higherIsBetter: false,
    },
    firstCallMs,
  };
}
