/**
 * Every differentiable primitive against central finite differences on the float64 reference
 * backend, at order 1 and 2 (Hessian-vector products through the vjp rules).
 */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { gradCases } from "./grad_cases.ts";
import { randomValues } from "./helpers.ts";

mg.setBackend("reference");

for (const [group, cases] of gradCases()) {
  Deno.test(`gradients of ${group} match finite differences at order 1 and 2 (reference backend)`, async () => {
    for (const [name, f, args] of cases) {
      try {
        await mg.checkGrads(f, args, { order: 2, maxElements: 12 });
      } catch (e) {
        throw new Error(`${name}: ${(e as Error).message}`);
      }
    }
  });
}

const t = (shape: number[], seed: number) => mg.tensor(randomValues(shape, "f32", seed), { shape });

Deno.test("non-differentiable primitives give zero gradients", async () => {
  const x = t([5], 130);
  const g: Tensor = mg.grad((x: Tensor) =>
    mg.sum(mg.mul(mg.cast(mg.argmax(x), "f32"), mg.floor(x).add(mg.sign(x)).add(mg.round(x))))
  )(x);
  const v = await g.toFloat64();
  if (v.some((e) => e !== 0)) throw new Error(`expected zeros, got ${v}`);
  const h: Tensor = mg.grad((x: Tensor) => mg.sum(mg.where(mg.greater(x, 0), 1, 0)))(x);
  if ((await h.toFloat64()).some((e) => e !== 0)) {
    throw new Error("comparison gradient should be zero");
  }
});
