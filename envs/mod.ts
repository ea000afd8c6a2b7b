/**
 * Tasks and environments as pure batched functions that stay on the device.
 *
 * @module
 */
export * from "./sinusoid.ts";
export * from "./fewshot.ts";
export * from "./omniglot.ts";
