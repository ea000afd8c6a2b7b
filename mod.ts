/**
 * metagrad: a functional autodiff framework for Deno whose tensors run as WGSL compute
 * shaders on WebGPU, with a float64 reference backend as the oracle.
 *
 * @example
 * ```ts
 * import { init, tensor, matmul } from "@metagrad/metagrad";
 * await init();
 * const a = tensor([[1, 2], [3, 4]]);
 * console.log(await matmul(a, a).array()); // [[7, 10], [15, 22]]
 * ```
 *
 * @module
 */
export { Tensor } from "./core/tensor.ts";
export type { NestedArray, TensorLike } from "./core/tensor.ts";
export type { DType, DTypeLike, TensorData, TypedArrayFor } from "./core/dtype.ts";
export type { Tree, TreeDef } from "./core/tree.ts";
export { keep, memory, resetPeakMemory, tidy } from "./core/memory.ts";
export type { Disposable, MemoryInfo } from "./core/memory.ts";
export {
  adapterInfo,
  getBackend,
  init,
  profile,
  runtimeStats,
  setBackend,
  sync,
  trimPool,
} from "./core/backend/api.ts";
export { eagerFusion, setEagerFusion } from "./core/fusion/eager.ts";
export type {
  AdapterInfo,
  BackendName,
  KernelTiming,
  Profile,
  RuntimeStats,
} from "./core/backend/api.ts";
export * from "./core/ops/all.ts";
export {
  checkpoint,
  customVjp,
  grad,
  hessian,
  hvp,
  isTracer,
  jacfwd,
  jacrev,
  jvp,
  linearize,
  stopGradient,
  valueAndGrad,
  vjp,
} from "./core/autodiff/api.ts";
export type { Argnums, Fn, GradOptions, GradsOf } from "./core/autodiff/api.ts";
export { checkGrads } from "./core/autodiff/check_grads.ts";
export { vmap } from "./core/vmap/vmap.ts";
export { jit, makeJaxpr } from "./core/jit/jit.ts";
export { fori, scan } from "./core/control/scan.ts";
/**
 * Optimizers as pure gradient transformations: `optim.sgd`, `optim.adam`, `optim.adamw`,
 * `optim.rmsprop`, `optim.clipByGlobalNorm`, `optim.chain`, `optim.schedules`, `optim.applyUpdates`.
 */
export * as optim from "./core/optim/optim.ts";
export { loadCheckpoint, saveCheckpoint, writeFileAtomic } from "./core/checkpoint.ts";
export { lineChartSvg, niceTicks, plotArea } from "./core/plot.ts";
export type { ChartOptions, PlotArea, Series } from "./core/plot.ts";
/**
 * Layers as pure modules (`nn.dense`, `nn.conv2d`, `nn.batchNorm`, `nn.layerNorm`, `nn.dropout`,
 * `nn.embedding`, `nn.sequential`), initialisers, losses and distributions, and model builders
 * (`nn.conv4`, `nn.sinusoidMlp`).
 */
export * as nn from "./core/nn/mod.ts";
export type { Loaded, LoadOptions, SaveOptions } from "./core/checkpoint.ts";
export type { JitOptions, Jitted, Lowered, LoweredEquation } from "./core/jit/jit.ts";
export type { InAxes, VmapOptions } from "./core/vmap/vmap.ts";
export type { ScanOptions } from "./core/control/scan.ts";
export type { CheckGradsOptions } from "./core/autodiff/check_grads.ts";
/**
 * Counter-based randomness with explicit keys: `random.key`, `random.split`, `random.uniform`,
 * `random.normal`, ... (bit-identical on both backends).
 */
export * as random from "./core/random.ts";
/** Pytree utilities: `tree.map`, `tree.leaves`, `tree.flatten`, `tree.unflatten`, `tree.structure`. */
export * as tree from "./core/tree.ts";
