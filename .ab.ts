import { benchMaml } from "./bench/maml_step.ts";
const opts = JSON.parse(Deno.args[0] || '{"innerSteps":1,"firstOrder":false}');
let r = 0, p = 0;
for (let i = 0; i < 3; i++) {
  const x = await benchMaml("vmap+jit", { ...opts, steps: 60 });
  r = Math.max(r, x.stepsPerSecReading);
  p = Math.max(p, x.stepsPerSecPipelined);
}
console.log(r.toFixed(1), p.toFixed(1));
