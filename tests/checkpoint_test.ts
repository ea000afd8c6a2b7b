/** Checkpoints: bit-exact round trips, foreign safetensors files, corruption, atomic writes. */
import * as mg from "../mod.ts";
import type { Tensor } from "../mod.ts";
import { assertRejectsWith } from "./helpers.ts";

const dir = await Deno.makeTempDir({ prefix: "metagrad-ckpt-" });

async function bits(t: Tensor): Promise<number[]> {
  const d = await t.data();
  return d instanceof Float32Array
    ? [...new Uint32Array(d.buffer, d.byteOffset, d.length)]
    : [...d];
}

Deno.test("a checkpoint round-trips bit-exactly, structure, scalars and metadata included", async () => {
  const state = {
    params: {
      w: mg.tensor([[1.5, -0, Infinity], [-Infinity, NaN, 1e-40]]),
      layers: [{ b: mg.tensor([0.1, 0.2]) }],
    },
    opt: { step: mg.tensor([3], { dtype: "i32" }), mask: mg.tensor([true, false, true]) },
    key: mg.random.key(42),
    step: 17,
    name: "maml",
  };
  const path = `${dir}/a.safetensors`;
  await mg.saveCheckpoint(path, state, { metadata: { note: "test" } });
  const { tree, metadata } = await mg.loadCheckpoint(path);
  if (metadata.note !== "test") throw new Error("metadata lost");
  if (tree.step !== 17 || tree.name !== "maml") throw new Error("scalar leaves lost");
  const [a] = mg.tree.flatten<Tensor>(state), [b] = mg.tree.flatten<Tensor>(tree);
  for (let i = 0; i < a.length; i++) {
    if (!(a[i] instanceof mg.Tensor)) continue;
    if (a[i].dtype !== b[i].dtype || a[i].shape.join() !== b[i].shape.join()) {
      throw new Error(`leaf ${i}: ${b[i]}`);
    }
    if (JSON.stringify(await bits(a[i])) !== JSON.stringify(await bits(b[i]))) {
      throw new Error(`leaf ${i} bits differ`);
    }
  }
  // with an expected tree
  const again = await mg.loadCheckpoint(path, { like: state });
  if (
    JSON.stringify(await bits(again.tree.params.w)) !== JSON.stringify(await bits(state.params.w))
  ) throw new Error("like-load differs");
});

/** A safetensors file laid out by hand from the format's specification (another tool's). */
function foreignFile(): Uint8Array {
  const header = JSON.stringify({
    "__metadata__": { "format": "pt" },
    "embed.weight": { dtype: "F32", shape: [2, 2], data_offsets: [0, 16] },
    "steps": { dtype: "I32", shape: [1], data_offsets: [16, 20] },
  });
  const h = new TextEncoder().encode(header + " ".repeat((8 - (header.length % 8)) % 8));
  const data = new Uint8Array(20);
  new Float32Array(data.buffer, 0, 4).set([1, 2, 3, 4]);
  new Int32Array(data.buffer, 16, 1).set([-7]);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

Deno.test("a safetensors file written by another tool loads as tensors by name", async () => {
  const path = `${dir}/foreign.safetensors`;
  await Deno.writeFile(path, foreignFile());
  const { tree, metadata } = await mg.loadCheckpoint(path);
  if (metadata.format !== "pt") throw new Error("metadata");
  const w = await (tree["embed.weight"] as Tensor).toFloat64();
  if (w.join() !== "1,2,3,4" || (tree["embed.weight"] as Tensor).shape.join() !== "2,2") {
    throw new Error(`weight ${w}`);
  }
  if ((await (tree.steps as Tensor).data())[0] !== -7) throw new Error("steps");
});

Deno.test("corrupt, truncated or mismatched files are refused with the entry named", async () => {
  const good = foreignFile();
  const write = async (name: string, bytes: Uint8Array) => {
    const p = `${dir}/${name}`;
    await Deno.writeFile(p, bytes);
    return p;
  };
  await assertRejectsWith(mg.loadCheckpoint(await write("t1", good.subarray(0, 5))), "truncated");
  await assertRejectsWith(
    mg.loadCheckpoint(await write("t2", good.subarray(0, good.length - 3))),
    "steps",
    "truncated",
  );
  const badJson = good.slice();
  badJson[8] = 0x78; // the header's opening brace becomes 'x'
  await assertRejectsWith(mg.loadCheckpoint(await write("t3", badJson)), "not valid JSON");
  await assertRejectsWith(mg.loadCheckpoint(`${dir}/missing.safetensors`), "cannot read");
  const path = `${dir}/b.safetensors`;
  await mg.saveCheckpoint(path, { w: mg.tensor([1, 2, 3]), b: mg.tensor([1]) });
  await assertRejectsWith(
    mg.loadCheckpoint(path, { like: { w: mg.zeros([4]), b: mg.zeros([1]) } }),
    '"w"',
    "[3]",
    "[4]",
  );
  await assertRejectsWith(
    mg.loadCheckpoint(path, { like: { w: mg.zeros([3], { dtype: "i32" }), b: mg.zeros([1]) } }),
    '"w"',
    "i32",
  );
  await assertRejectsWith(
    mg.loadCheckpoint(path, { like: { w: mg.zeros([3]), extra: mg.zeros([1]) } }),
    '"extra"',
    "missing",
  );
});

Deno.test("a process killed while saving leaves the previous checkpoint intact", async () => {
  const path = `${dir}/atomic.safetensors`;
  const previous = { w: mg.tensor([1, 2, 3]) };
  await mg.saveCheckpoint(path, previous);
  const mod = new URL("../mod.ts", import.meta.url).href;
  const script = `${dir}/saver.ts`;
  await Deno.writeTextFile(
    script,
    `import * as mg from "${mod}";
mg.setBackend("reference");
const big = { w: mg.zeros([16 * 1024 * 1024]) };
console.log("ready");
for (;;) await mg.saveCheckpoint(${JSON.stringify(path)}, big);`,
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  await reader.read(); // "ready": it is about to write
  // kill only while a save is under way: once its temporary file exists and holds bytes
  const partial = async () => {
    for await (const e of Deno.readDir(dir)) {
      if (!e.name.startsWith("atomic.safetensors.tmp-")) continue;
      const size = await Deno.stat(`${dir}/${e.name}`).then((s) => s.size, () => 0);
      if (size > 0) return e.name;
    }
    return null;
  };
  const deadline = Date.now() + 20_000;
  while (!(await partial())) {
    if (Date.now() > deadline) throw new Error("the saver never started writing");
    await new Promise((r) => setTimeout(r, 2));
  }
  child.kill("SIGKILL");
  await child.status;
  reader.releaseLock();
  await child.stdout.cancel().catch(() => {});
  // the killed writer left its temporary file: the kill landed mid-save
  const leftovers: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.name.startsWith("atomic.safetensors.tmp-")) leftovers.push(e.name);
  }
  if (leftovers.length === 0) throw new Error("no temporary file left: the kill missed the save");
  // whichever save last completed, the file is whole: either the previous tree or the big one
  const { tree } = await mg.loadCheckpoint(path);
  const w = tree.w as Tensor;
  if (w.size !== 3 && w.size !== 16 * 1024 * 1024) throw new Error(`unexpected size ${w.size}`);
  if (w.size === 3 && (await w.toFloat64()).join() !== "1,2,3") {
    throw new Error("previous checkpoint damaged");
  }
  for (const name of leftovers) await Deno.remove(`${dir}/${name}`);
});

Deno.test("non-tensor leaves come back as saved, with or without like; a type that differs is named", async () => {
  const path = `${dir}/scalars.safetensors`;
  const saved = {
    params: { w: mg.tensor([1, 2]) },
    step: 100,
    best: NaN,
    lo: -Infinity,
    hi: Infinity,
    zero: -0,
    name: "run",
    done: true,
    note: null,
  };
  await mg.saveCheckpoint(path, saved);
  const like = {
    params: { w: mg.zeros([2]) },
    step: 0,
    best: 0,
    lo: 0,
    hi: 0,
    zero: 0,
    name: "",
    done: false,
    note: null,
  };
  for (const opts of [{}, { like }]) {
    const { tree } = await mg.loadCheckpoint(path, opts);
    const what = JSON.stringify(Object.keys(opts));
    if (tree.step !== 100 || tree.name !== "run" || tree.done !== true || tree.note !== null) {
      throw new Error(`${what}: ${tree.step} ${tree.name} ${tree.done} ${tree.note}`);
    }
    if (!Number.isNaN(tree.best) || tree.lo !== -Infinity || tree.hi !== Infinity) {
      throw new Error(`${what}: ${tree.best} ${tree.lo} ${tree.hi}`);
    }
    if (!Object.is(tree.zero, -0)) throw new Error(`${what}: -0 came back as ${tree.zero}`);
    const w = await tree.params.w.data();
    if (w[0] !== 1 || w[1] !== 2) throw new Error(`${what}: tensor ${w}`);
  }
  await assertRejectsWith(
    mg.loadCheckpoint(path, { like: { ...like, step: "0" } }),
    '"step"',
    "saved as a number",
    "a string",
  );
  await assertRejectsWith(
    mg.loadCheckpoint(path, { like: { ...like, note: 0 } }),
    '"note"',
    "saved as null",
    "a number",
  );
  await assertRejectsWith(
    mg.loadCheckpoint(path, { like: { ...like, step: mg.zeros([1]) } }),
    '"step"',
    "saved as a number",
    "a tensor",
  );
  await assertRejectsWith(
    mg.loadCheckpoint(path, { like: { ...like, extra: 3 } }),
    '"extra"',
    "is not in the checkpoint",
  );
});
