import { smoke } from "./smoke.ts";

Deno.test("smoke: matmul, broadcasting, reduction and PRNG on the default adapter", async () => {
  console.log(`adapter: ${await smoke()}`);
});
