/**
 * Tasks and environments as pure batched functions that stay on the device.
 *
 * @module
 */
export * from "./sinusoid.ts";
export * from "./fewshot.ts";
export * from "./omniglot.ts";
export * from "./env.ts";
export * from "./cartpole.ts";
export * from "./pendulum.ts";
export * from "./bandits.ts";
export * from "./tabular_mdp.ts";
export * from "./point_navigation.ts";
export * from "./rollout.ts";
export * from "./trial.ts";
export * from "./host.ts";
