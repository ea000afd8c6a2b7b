/** Every op, for Tensor's methods and mod.ts. */
export * from "./creation.ts";
export * from "./math.ts";
export * from "./reduce.ts";
export * from "./shape.ts";
export * from "./linalg.ts";
export * from "./indexing.ts";
export * from "./conv.ts";

import { registerTensorOps } from "../tensor.ts";
import * as self from "./all.ts";
registerTensorOps(self);
