/**
 * Meta-learning algorithms, each a composition of grad, vmap and jit over batches of tasks.
 *
 * @module
 */
export * from "./common.ts";
export * from "./maml.ts";
export * from "./reptile.ts";
export * from "./run_dir.ts";
export * from "./train_jobs.ts";
export * from "./metric.ts";
export type { ApplyContext, Module } from "../core/nn/layers.ts";
export type { GradientTransformation } from "../core/optim/optim.ts";
export * from "./rl/returns.ts";
export * from "./rl/distributions.ts";
export * from "./rl/actor_critic.ts";
export * from "./rl/ppo.ts";
export * from "./rl/conjugate_gradient.ts";
export * from "./rl/linear_baseline.ts";
export * from "./rl/ravel.ts";
export * from "./rl/trust_region.ts";
export * from "./rl/trpo.ts";
export * from "./rl/maml_rl.ts";
export * from "./rl/replay_buffer.ts";
export * from "./rl/squashed_gaussian.ts";
export * from "./rl/soft_updates.ts";
export * from "./rl/sac.ts";
export * from "./rl/pearl.ts";
export type { GruCellOptions, GruParams } from "../core/nn/recurrent.ts";
export * from "./rl/vpg.ts";
export * from "./rl/batch_run.ts";
export * from "./rl/rl2.ts";
export * from "./rl/bandit_baselines.ts";
export * from "./rl/psrl.ts";
