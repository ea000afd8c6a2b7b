/** Running `cli.ts train` as a subprocess, and comparing run checkpoints bit for bit. */
import assert from "node:assert/strict";
import { loadCheckpoint } from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { flatten } from "../core/tree.ts";

/** cli.ts's path. */
export const CLI = new URL("../cli.ts", import.meta.url).pathname;
/** `cli.ts train ARGS` as a child process with piped output (and `env` added). */
export function cli(args: string[], env: Record<string, string> = {}): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "train", ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** `cli.ts train ARGS` to its end: exit code and output. */
export async function run(args: string[], env: Record<string, string> = {}) {
  const out = await cli(args, env).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** The checkpoint's step and every tensor's bytes, in tree order. */
export async function checkpointBits(dir: string): Promise<{ step: number; bits: Uint32Array[] }> {
  const { tree } = await loadCheckpoint(`${dir}/checkpoint.safetensors`);
  const tensors = flatten(tree.state)[0].filter((t): t is Tensor => typeof t === "object");
  const bits = [];
  for (const t of tensors) bits.push(new Uint32Array((await t.data()).buffer));
  return { step: tree.step, bits };
}

/** Two checkpoints' tensors are the same bits. */
export function assertSameBits(a: Uint32Array[], b: Uint32Array[], what: string): void {
  assert.equal(a.length, b.length, `${what}: tensor count`);
  a.forEach((x, i) => assert.deepEqual(x, b[i], `${what}: tensor ${i} differs`));
}
