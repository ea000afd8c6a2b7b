/**
 * The same gradient cases on WebGPU: against finite differences with f32 tolerances (a few
 * elements per tensor: every evaluation is a readback, ≥ 10 ms), and every element of every
 * gradient and Hessian-vector product against the float64 reference backend's.
 */
import * as mg from "../mod.ts";
import { compareDerivatives, gradCases } from "./grad_cases.ts";

for (const [group, cases] of gradCases()) {
  Deno.test(`gradients of ${group} match finite differences at order 1 and 2 (WebGPU, f32)`, async () => {
    for (const [name, f, args] of cases) {
      try {
        await mg.checkGrads(f, args, {
          order: 2,
          maxElements: 3,
          eps: 3e-3,
          rtol: 3e-2,
          atol: 3e-3,
        });
      } catch (e) {
        throw new Error(`${name}: ${(e as Error).message}`);
      }
    }
  });
}

for (const [group, _] of gradCases()) {
  Deno.test(`gradients and HVPs of ${group}: WebGPU equals the reference at every element`, async () => {
    const failures = await compareDerivatives(group);
    if (failures.length) throw new Error(failures.join("\n"));
  });
}
