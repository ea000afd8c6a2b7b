/**
 * Checkpoints: pytrees (parameters, optimizer state, keys, step counters) saved in the
 * safetensors format — readable by other tools; tensor names are pytree paths like
 * `params.layers.0.w`. Writes are atomic (a temporary file renamed over the target, after
 * fsync), so a crash mid-save leaves the previous checkpoint intact. Loads are validated
 * before any tensor is made: a truncated or corrupt file, or a mismatch with the expected
 * tree, is an error naming the entry — never a partly loaded model.
 */
import type { DType } from "./dtype.ts";
import { Tensor } from "./tensor.ts";
import { tensor } from "./ops/creation.ts";
import { flatten, leafPaths, type TreeDef, unflatten } from "./tree.ts";
import { fmtShape, sizeOf } from "./shape.ts";

const TO_ST: Record<DType, string> = { f32: "F32", i32: "I32", u32: "U32", bool: "BOOL" };
const FROM_ST: Record<string, { dtype: DType; bytes: number }> = {
  F32: { dtype: "f32", bytes: 4 },
  I32: { dtype: "i32", bytes: 4 },
  U32: { dtype: "u32", bytes: 4 },
  BOOL: { dtype: "bool", bytes: 1 },
};
const TREE_KEY = "metagrad.tree";

/** Options of `saveCheckpoint`. */
export interface SaveOptions {
  /** Extra string metadata stored in the header (`__metadata__`). */
  metadata?: Record<string, string>;
}

/**
 * Save a pytree to `path` (safetensors). Non-tensor leaves (numbers, strings, booleans) are
 * kept in the metadata so the exact tree comes back.
 *
 * @example
 * ```ts
 * import { saveCheckpoint, tensor } from "@metagrad/metagrad";
 * await saveCheckpoint("/tmp/ckpt.safetensors", { params: { w: tensor([1, 2]) }, step: 10 });
 * ```
 */
export async function saveCheckpoint(
  path: string,
  tree: unknown,
  opts: SaveOptions = {},
): Promise<void> {
  const [leaves, def] = flatten(tree);
  const names = leafPaths(def);
  const header: Record<string, unknown> = {};
  const chunks: Uint8Array[] = [];
  const scalars: Record<string, unknown> = {};
  let offset = 0;
  for (let i = 0; i < leaves.length; i++) {
    const leaf = leaves[i];
    if (!(leaf instanceof Tensor)) {
      if (
        leaf !== undefined && typeof leaf !== "number" && typeof leaf !== "string" &&
        typeof leaf !== "boolean"
      ) {
        throw new TypeError(
          `saveCheckpoint: leaf ${
            names[i]
          } is a ${typeof leaf}; only tensors, numbers, strings and booleans can be saved`,
        );
      }
      scalars[names[i]] = encodeScalar(leaf);
      continue;
    }
    const data = await leaf.data();
    const bytes = leaf.dtype === "bool"
      ? Uint8Array.from(data as Uint8Array)
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    header[names[i]] = {
      dtype: TO_ST[leaf.dtype],
      shape: [...leaf.shape],
      data_offsets: [offset, offset + bytes.byteLength],
    };
    chunks.push(bytes);
    offset += bytes.byteLength;
  }
  header.__metadata__ = { ...opts.metadata, [TREE_KEY]: JSON.stringify({ def, scalars }) };
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8; // the format pads the header with spaces
  if (padded !== json.byteLength) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const file = new Uint8Array(8 + json.byteLength + offset);
  new DataView(file.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  file.set(json, 8);
  let at = 8 + json.byteLength;
  for (const c of chunks) {
    file.set(c, at);
    at += c.byteLength;
  }
  await writeFileAtomic(path, file);
}

/**
 * Write `data` to `path` so that readers (and a crash) see the old file or the new one, never
 * a part: a temporary file beside it, synced, then renamed over it.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "@metagrad/metagrad";
 * await writeFileAtomic("summary.json", new TextEncoder().encode("{}"));
 * ```
 */
export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID()}`;
  try {
    const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
    try {
      let written = 0;
      while (written < data.byteLength) written += await f.write(data.subarray(written));
      await f.syncData();
    } finally {
      f.close();
    }
    await Deno.rename(tmp, path); // atomic on POSIX: readers see the old or the new file
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

interface Entry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

function corrupt(path: string, what: string): Error {
  return new Error(
    `loadCheckpoint(${path}): ${what}; the file is corrupt or not a safetensors checkpoint — nothing was loaded`,
  );
}

function parse(
  path: string,
  bytes: Uint8Array,
): { entries: Entry[]; metadata: Record<string, string>; dataStart: number } {
  if (bytes.byteLength < 8) {
    throw corrupt(path, `only ${bytes.byteLength} bytes (truncated before the header length)`);
  }
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  if (n > bytes.byteLength - 8) {
    throw corrupt(
      path,
      `header of ${n} bytes but the file has ${bytes.byteLength - 8} after the length (truncated)`,
    );
  }
  let header: Record<string, any>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw corrupt(path, `header is not valid JSON (${(e as Error).message})`);
  }
  if (!header || typeof header !== "object" || Array.isArray(header)) {
    throw corrupt(path, "header is not a JSON object");
  }
  const dataStart = 8 + n;
  const dataBytes = bytes.byteLength - dataStart;
  const entries: Entry[] = [];
  for (const [name, v] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const info = FROM_ST[v?.dtype];
    if (!info) {
      throw corrupt(
        path,
        `entry ${JSON.stringify(name)} has unsupported dtype ${
          JSON.stringify(v?.dtype)
        } (metagrad reads F32, I32, U32, BOOL)`,
      );
    }
    const shape = v.shape;
    if (
      !Array.isArray(shape) || shape.some((d: unknown) => !Number.isInteger(d) || (d as number) < 0)
    ) {
      throw corrupt(
        path,
        `entry ${JSON.stringify(name)} has an invalid shape ${JSON.stringify(shape)}`,
      );
    }
    const [begin, end] = v.data_offsets ?? [];
    if (!Number.isInteger(begin) || !Number.isInteger(end) || begin < 0 || end < begin) {
      throw corrupt(
        path,
        `entry ${JSON.stringify(name)} has invalid data_offsets ${JSON.stringify(v.data_offsets)}`,
      );
    }
    if (end - begin !== sizeOf(shape) * info.bytes) {
      throw corrupt(
        path,
        `entry ${JSON.stringify(name)}: ${end - begin} bytes for ${v.dtype}${
          fmtShape(shape)
        } (expected ${sizeOf(shape) * info.bytes})`,
      );
    }
    if (end > dataBytes) {
      throw corrupt(
        path,
        `entry ${
          JSON.stringify(name)
        } ends at byte ${end} of a ${dataBytes}-byte data section (truncated)`,
      );
    }
    entries.push({ name, dtype: info.dtype, shape, begin, end });
  }
  const metadata = header.__metadata__ ?? {};
  return { entries, metadata, dataStart };
}

/** Options of `loadCheckpoint`. */
export interface LoadOptions {
  /** The tree the checkpoint must match (names, shapes, dtypes); its structure is used. */
  like?: unknown;
}

/** What `loadCheckpoint` returns. */
export interface Loaded {
  /** The saved tree (or, for a file from another tool, an object of tensors by name). */
  tree: any;
  /** The header's string metadata. */
  metadata: Record<string, string>;
}

/**
 * Load a safetensors checkpoint. With `like`, every tensor of that tree must be present with
 * the same shape and dtype. Everything is checked before any tensor is created.
 *
 * @example
 * ```ts
 * import { loadCheckpoint } from "@metagrad/metagrad";
 * const { tree } = await loadCheckpoint("/tmp/ckpt.safetensors");
 * ```
 */
export async function loadCheckpoint(path: string, opts: LoadOptions = {}): Promise<Loaded> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(`loadCheckpoint(${path}): cannot read the file (${(e as Error).message})`);
  }
  const { entries, metadata, dataStart } = parse(path, bytes);
  const byName = new Map(entries.map((e) => [e.name, e]));
  let savedDef: TreeDef | null = null;
  let scalars: Record<string, unknown> = {};
  if (metadata[TREE_KEY]) {
    try {
      ({ def: savedDef, scalars } = JSON.parse(metadata[TREE_KEY]));
    } catch {
      throw corrupt(path, `the ${TREE_KEY} metadata is not valid JSON`);
    }
  }
  const def = opts.like !== undefined ? flatten(opts.like)[1] : savedDef;
  if (!def) {
    // a file from another tool: an object of tensors by name
    const tree: Record<string, Tensor> = {};
    for (const e of entries) tree[e.name] = materialise(bytes, dataStart, e);
    return { tree, metadata };
  }
  const names = leafPaths(def);
  const likeLeaves = opts.like !== undefined ? flatten(opts.like)[0] : null;
  const saved = savedDef ? nodesByPath(savedDef) : null;
  // validate everything first
  if (likeLeaves) checkScalarsAgainstLike(path, def, likeLeaves, saved, scalars);
  names.forEach((name, i) => {
    const expected = likeLeaves?.[i];
    const e = byName.get(name);
    if (likeLeaves && !(expected instanceof Tensor)) return;
    if (!likeLeaves && name in scalars) return;
    if (name in scalars) {
      throw new Error(
        `loadCheckpoint(${path}): ${JSON.stringify(name)} was saved as ${
          kindOf(saved?.get(name), name, scalars)
        } but the expected tree has a tensor there — nothing was loaded`,
      );
    }
    if (!e) {
      throw new Error(
        `loadCheckpoint(${path}): entry ${JSON.stringify(name)} is missing — nothing was loaded`,
      );
    }
    if (
      expected instanceof Tensor &&
      (expected.dtype !== e.dtype || expected.shape.join() !== e.shape.join())
    ) {
      throw new Error(
        `loadCheckpoint(${path}): entry ${JSON.stringify(name)} is ${e.dtype}${
          fmtShape(e.shape)
        } but the expected tree has ` +
          `${expected.dtype}${fmtShape(expected.shape)} — nothing was loaded`,
      );
    }
  });
  const leaves = names.map((name, i) => {
    // a file from another tool saved no scalars: those of `like` stand
    if (likeLeaves && !(likeLeaves[i] instanceof Tensor) && !saved) return likeLeaves[i];
    if (name in scalars) return decodeScalar(scalars[name]);
    return materialise(bytes, dataStart, byName.get(name)!);
  });
  return { tree: unflatten(def, leaves), metadata };
}

/**
 * Numbers JSON cannot hold (NaN, ±Infinity, −0) are saved as `{ "number": "NaN" }` and so
 * on; strings and booleans as themselves.
 */
function encodeScalar(v: number | string | boolean | undefined): unknown {
  if (typeof v === "number" && (!Number.isFinite(v) || Object.is(v, -0))) {
    return { number: Object.is(v, -0) ? "-0" : String(v) };
  }
  return v;
}

function decodeScalar(v: unknown): unknown {
  if (v && typeof v === "object" && typeof (v as { number?: unknown }).number === "string") {
    return Number((v as { number: string }).number);
  }
  return v;
}

/** The kind of value at each leaf and empty (null/undefined) node of a tree, by path. */
function nodesByPath(def: TreeDef, prefix = "", out = new Map<string, TreeDef>()) {
  if (def.kind === "leaf" || def.kind === "none") out.set(prefix || "value", def);
  else if (def.kind === "array") {
    def.children.forEach((c, i) => nodesByPath(c, prefix ? `${prefix}.${i}` : `${i}`, out));
  } else {
    def.children.forEach((c, i) =>
      nodesByPath(c, prefix ? `${prefix}.${def.keys[i]}` : def.keys[i], out)
    );
  }
  return out;
}

/** What a saved value is, for messages: a tensor, null, or its JS type. */
function kindOf(def: TreeDef | undefined, name: string, scalars: Record<string, unknown>): string {
  if (!def) return "absent";
  if (def.kind === "none") return def.value === null ? "null" : "undefined";
  if (!(name in scalars)) return "a tensor";
  return `a ${typeof decodeScalar(scalars[name])}`;
}

/**
 * With `like`, every non-tensor leaf and empty node of `like` must have been saved with the
 * same type (numbers, strings, booleans, null); the saved value is what comes back.
 */
function checkScalarsAgainstLike(
  path: string,
  likeDef: TreeDef,
  likeLeaves: readonly unknown[],
  saved: Map<string, TreeDef> | null,
  scalars: Record<string, unknown>,
): void {
  if (!saved) return; // another tool's file: only its tensors are checked
  const want = new Map<string, string>();
  leafPaths(likeDef).forEach((name, i) => {
    const v = likeLeaves[i];
    if (!(v instanceof Tensor)) want.set(name, `a ${typeof v}`);
  });
  for (const [name, node] of nodesByPath(likeDef)) {
    if (node.kind === "none") want.set(name, node.value === null ? "null" : "undefined");
  }
  // null and undefined both say "nothing here"
  const nothing = (k: string) => k === "null" || k === "undefined";
  for (const [name, w] of want) {
    const got = kindOf(saved.get(name), name, scalars);
    if (got === w || (nothing(got) && nothing(w))) continue;
    const was = got === "absent" ? "is not in the checkpoint" : `was saved as ${got}`;
    throw new Error(
      `loadCheckpoint(${path}): ${JSON.stringify(name)} ${was} but the expected tree has ${w} ` +
        `there — nothing was loaded`,
    );
  }
}

function materialise(bytes: Uint8Array, dataStart: number, e: Entry): Tensor {
  const raw = bytes.slice(dataStart + e.begin, dataStart + e.end); // copy: aligned and owned
  const data = e.dtype === "f32"
    ? new Float32Array(raw.buffer)
    : e.dtype === "i32"
    ? new Int32Array(raw.buffer)
    : e.dtype === "u32"
    ? new Uint32Array(raw.buffer)
    : Uint32Array.from(raw, (b) => (b ? 1 : 0));
  return tensor(data, { shape: e.shape, dtype: e.dtype });
}
