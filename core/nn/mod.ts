/** core/nn: layers, initialisers, losses and model builders. */
export * from "./init.ts";
export * from "./layers.ts";
export * from "./losses.ts";
export * from "./models.ts";
export * from "./recurrent.ts";
