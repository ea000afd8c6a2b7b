/**
 * Omniglot (Lake et al. 2015) read straight from the official release: the
 * `images_background.zip` / `images_evaluation.zip` archives (or the "small" splits), or
 * their unzipped folders, laid out `<split>/<Alphabet>/<characterNN>/<id>_<drawer>.png`.
 * PNGs are decoded and area-resized on the CPU once; the result is cached to disk as a
 * safetensors file keyed by the sources' sizes and modification times, so later loads take
 * one file read.
 */
import type { Tensor } from "../core/tensor.ts";
import { tensor } from "../core/ops/creation.ts";
import { loadCheckpoint, saveCheckpoint } from "../core/checkpoint.ts";
import { decodePng } from "./formats/png.ts";
import { resizeArea } from "./formats/resize.ts";
import { zipEntries, zipRead } from "./formats/zip.ts";

/** Options of `loadOmniglot`. */
export interface OmniglotOptions {
  /** Side of the square images after resizing (default 28). */
  imageSize?: number;
  /** Strokes 1 and background 0 (default true), as most few-shot code feeds Omniglot. */
  invert?: boolean;
  /**
   * Folder for the decoded cache, or false for none (default: `$METAGRAD_CACHE`, else
   * `$XDG_CACHE_HOME/metagrad`, else `~/.cache/metagrad`).
   */
  cache?: string | false;
}

/** A loaded class-indexed image set. */
export interface OmniglotData {
  /** Images [classes, drawers, 1, imageSize, imageSize], f32 in [0, 1]. */
  images: Tensor;
  /** Class names "Alphabet/characterNN", in the order of `images`' first axis (sorted). */
  classes: string[];
  /** The archives and folders that were read (or fingerprinted, when cached). */
  sources: string[];
  /** Whether the images came from the disk cache. */
  cached: boolean;
}

interface ImageFile {
  /** "Alphabet/characterNN" */
  cls: string;
  name: string;
  where: string;
  read: () => Promise<Uint8Array>;
}

interface Source {
  path: string;
  kind: "zip" | "folder";
}

const CACHE_VERSION = 1;

const HOW_TO_GET = "download images_background.zip and images_evaluation.zip from " +
  "https://github.com/brendenlake/omniglot (python/) and pass their folder";

async function stat(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new Error(`loadOmniglot: cannot read ${path} (${(e as Error).message})`);
  }
}

async function listDir(path: string): Promise<Deno.DirEntry[]> {
  const entries: Deno.DirEntry[] = [];
  for await (const e of Deno.readDir(path)) entries.push(e);
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

const isPng = (name: string) => name.toLowerCase().endsWith(".png");

/** A split folder holds <Alphabet>/<character>/*.png. */
async function isSplitFolder(path: string): Promise<boolean> {
  for (const alphabet of await listDir(path)) {
    if (!alphabet.isDirectory) continue;
    for (const character of await listDir(`${path}/${alphabet.name}`)) {
      if (!character.isDirectory) continue;
      const files = await listDir(`${path}/${alphabet.name}/${character.name}`);
      if (files.some((f) => f.isFile && isPng(f.name))) return true;
    }
  }
  return false;
}

/** The archives and split folders a user-given path stands for. */
async function resolveSources(path: string): Promise<Source[]> {
  const info = await stat(path);
  if (!info) throw new Error(`loadOmniglot: ${path} does not exist — ${HOW_TO_GET}`);
  if (info.isFile) {
    if (!path.toLowerCase().endsWith(".zip")) {
      throw new Error(`loadOmniglot: ${path} is a file but not a .zip archive`);
    }
    return [{ path, kind: "zip" }];
  }
  if (await isSplitFolder(path)) return [{ path, kind: "folder" }];
  const children = await listDir(path);
  const folders: Source[] = [];
  for (const c of children) {
    if (c.isDirectory && await isSplitFolder(`${path}/${c.name}`)) {
      folders.push({ path: `${path}/${c.name}`, kind: "folder" });
    }
  }
  // an archive whose unzipped folder sits beside it is read once, from the folder
  const unzipped = new Set(folders.map((f) => f.path.slice(path.length + 1)));
  const zips = children
    .filter((c) => c.isFile && c.name.toLowerCase().endsWith(".zip"))
    .filter((c) => !unzipped.has(c.name.slice(0, -4)))
    .map((c): Source => ({ path: `${path}/${c.name}`, kind: "zip" }));
  const sources = [...zips, ...folders];
  if (sources.length === 0) {
    throw new Error(
      `loadOmniglot: no Omniglot data in ${path}: expected .zip archives or folders laid out ` +
        `<split>/<Alphabet>/<characterNN>/*.png — ${HOW_TO_GET}`,
    );
  }
  return sources;
}

async function folderFiles(source: Source): Promise<ImageFile[]> {
  const files: ImageFile[] = [];
  for (const alphabet of await listDir(source.path)) {
    if (!alphabet.isDirectory) continue;
    for (const character of await listDir(`${source.path}/${alphabet.name}`)) {
      if (!character.isDirectory) continue;
      const dir = `${source.path}/${alphabet.name}/${character.name}`;
      for (const f of await listDir(dir)) {
        if (!f.isFile || !isPng(f.name)) continue;
        const where = `${dir}/${f.name}`;
        files.push({
          cls: `${alphabet.name}/${character.name}`,
          name: f.name,
          where,
          read: () => Deno.readFile(where),
        });
      }
    }
  }
  return files;
}

async function zipFiles(source: Source): Promise<ImageFile[]> {
  const bytes = await Deno.readFile(source.path);
  const files: ImageFile[] = [];
  for (const entry of zipEntries(bytes, source.path)) {
    const parts = entry.name.split("/").filter((p) => p.length > 0);
    if (entry.name.endsWith("/") || parts.length < 3 || !isPng(parts[parts.length - 1])) continue;
    const [alphabet, character, name] = parts.slice(-3);
    files.push({
      cls: `${alphabet}/${character}`,
      name,
      where: `${source.path}:${entry.name}`,
      read: () => zipRead(bytes, entry, source.path),
    });
  }
  return files;
}

/** Sizes and modification times of everything read: the cache key. */
async function fingerprint(sources: Source[], opts: Required<OmniglotOptions>): Promise<string> {
  const parts: unknown[] = [CACHE_VERSION, opts.imageSize, opts.invert];
  for (const s of sources) {
    if (s.kind === "zip") {
      const info = (await stat(s.path))!;
      parts.push([s.path, info.size, info.mtime?.getTime() ?? 0]);
    } else {
      for (const f of await folderFiles(s)) {
        const info = (await stat(f.where))!;
        parts.push([f.where, info.size, info.mtime?.getTime() ?? 0]);
      }
    }
  }
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(JSON.stringify(parts)),
  );
  return [...new Uint8Array(digest).slice(0, 10)].map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

function defaultCacheDir(): string | null {
  try {
    const explicit = Deno.env.get("METAGRAD_CACHE");
    if (explicit) return explicit;
    const xdg = Deno.env.get("XDG_CACHE_HOME");
    if (xdg) return `${xdg}/metagrad`;
    const home = Deno.env.get("HOME");
    return home ? `${home}/.cache/metagrad` : null;
  } catch {
    return null; // no env permission: no cache
  }
}

/** Decode, invert and resize every image, class by class; classes must be equally sized. */
async function decodeAll(
  byClass: Map<string, ImageFile[]>,
  opts: Required<OmniglotOptions>,
): Promise<{ data: Float32Array; classes: string[]; perClass: number }> {
  const classes = [...byClass.keys()].sort();
  const counts = classes.map((c) => byClass.get(c)!.length);
  const perClass = counts[0];
  const odd = classes.findIndex((_, i) => counts[i] !== perClass);
  if (odd >= 0) {
    throw new Error(
      `loadOmniglot: class ${classes[odd]} has ${counts[odd]} images but ${classes[0]} has ` +
        `${perClass}; every class needs the same number (is an archive incomplete?)`,
    );
  }
  const files = classes.flatMap((c) => byClass.get(c)!.sort((a, b) => (a.name < b.name ? -1 : 1)));
  const side = opts.imageSize, pixels = side * side;
  const data = new Float32Array(files.length * pixels);
  let first: { where: string; width: number; height: number } | null = null;
  const BATCH = 64; // decodes in flight: overlaps the stream work without holding everything
  for (let start = 0; start < files.length; start += BATCH) {
    const batch = files.slice(start, start + BATCH);
    const decoded = await Promise.all(batch.map(async (f) => decodePng(await f.read(), f.where)));
    decoded.forEach((img, i) => {
      first ??= { where: batch[i].where, width: img.width, height: img.height };
      if (img.width !== first.width || img.height !== first.height) {
        throw new Error(
          `loadOmniglot: ${batch[i].where} is ${img.width}×${img.height} but ${first.where} is ` +
            `${first.width}×${first.height}; all images of a set must have one size`,
        );
      }
      const small = resizeArea(img.pixels, img.height, img.width, side, side);
      if (opts.invert) { for (let p = 0; p < pixels; p++) small[p] = 1 - small[p]; }
      data.set(small, (start + i) * pixels);
    });
  }
  return { data, classes, perClass };
}

/**
 * Load Omniglot from `path`: a release archive, an unzipped split folder, or a folder holding
 * several of them (all are merged; a character present in two sources, as Greek and Latin
 * are in both "small" background splits, is kept once).
 *
 * @example
 * ```ts
 * import { loadOmniglot, sampleEpisodes } from "@metagrad/metagrad/envs";
 * import { random } from "@metagrad/metagrad";
 * const { images, classes } = await loadOmniglot("data/omniglot");
 * // images: [classes.length, 20, 1, 28, 28]
 * const episodes = sampleEpisodes(random.key(0), images, { tasks: 8, ways: 5, shots: 1 });
 * ```
 */
export async function loadOmniglot(
  path: string | string[],
  options: OmniglotOptions = {},
): Promise<OmniglotData> {
  const opts: Required<OmniglotOptions> = {
    imageSize: options.imageSize ?? 28,
    invert: options.invert ?? true,
    cache: options.cache ?? defaultCacheDir() ?? false,
  };
  if (!Number.isInteger(opts.imageSize) || opts.imageSize < 1) {
    throw new RangeError(
      `loadOmniglot: imageSize must be a positive integer, got ${opts.imageSize}`,
    );
  }
  const sources: Source[] = [];
  for (const p of typeof path === "string" ? [path] : path) {
    sources.push(...await resolveSources(p));
  }
  const sourcePaths = sources.map((s) => s.path);

  const cacheFile = opts.cache
    ? `${opts.cache}/omniglot-${await fingerprint(sources, opts)}.safetensors`
    : null;
  if (cacheFile && await stat(cacheFile)) {
    try {
      const { tree, metadata } = await loadCheckpoint(cacheFile);
      return {
        images: tree.images,
        classes: JSON.parse(metadata.classes),
        sources: sourcePaths,
        cached: true,
      };
    } catch (e) {
      console.warn(
        `loadOmniglot: ignoring unreadable cache ${cacheFile} (${(e as Error).message})`,
      );
    }
  }

  const byClass = new Map<string, ImageFile[]>();
  for (const s of sources) {
    const fromThis = new Map<string, ImageFile[]>();
    for (const f of s.kind === "zip" ? await zipFiles(s) : await folderFiles(s)) {
      if (byClass.has(f.cls)) continue; // an earlier source already has this character
      if (!fromThis.has(f.cls)) fromThis.set(f.cls, []);
      fromThis.get(f.cls)!.push(f);
    }
    for (const [cls, files] of fromThis) byClass.set(cls, files);
  }
  if (byClass.size === 0) {
    throw new Error(
      `loadOmniglot: no PNG images found in ${sourcePaths.join(", ")} (expected ` +
        `<Alphabet>/<characterNN>/*.png inside) — ${HOW_TO_GET}`,
    );
  }
  const { data, classes, perClass } = await decodeAll(byClass, opts);
  const images = tensor(data, {
    shape: [classes.length, perClass, 1, opts.imageSize, opts.imageSize],
  });
  if (cacheFile) {
    try {
      await Deno.mkdir(opts.cache as string, { recursive: true });
      await saveCheckpoint(cacheFile, { images }, {
        metadata: { classes: JSON.stringify(classes) },
      });
    } catch (e) {
      console.warn(
        `loadOmniglot: could not write the cache ${cacheFile} (${(e as Error).message})`,
      );
    }
  }
  return { images, classes, sources: sourcePaths, cached: false };
}
