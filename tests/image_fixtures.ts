/**
 * Test fixtures made on the fly: a PNG encoder (any colour type and bit depth, chosen
 * scanline filters) and a zip writer (stored or deflated entries), both over the platform's
 * `CompressionStream`, so the loaders are exercised without shipping binary files.
 */
import { crc32 } from "../envs/formats/crc32.ts";

async function compress(data: Uint8Array, format: "deflate" | "deflate-raw"): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream(format));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/** What to encode: `samples` holds width·height·channels integers in [0, 2^depth). */
export interface PngSpec {
  width: number;
  height: number;
  color: 0 | 2 | 3 | 4 | 6;
  depth: 1 | 2 | 4 | 8 | 16;
  samples: number[];
  /** RGB triplets for colour type 3. */
  palette?: number[];
  /** Filter type of row y is filters[y % filters.length] (default all five in turn). */
  filters?: number[];
  interlaced?: boolean;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Encode a PNG file. */
export async function encodePng(spec: PngSpec): Promise<Uint8Array> {
  const { width, height, color, depth, samples } = spec;
  const channels = CHANNELS[color];
  const bitsPerPixel = channels * depth;
  const stride = Math.ceil((width * bitsPerPixel) / 8);
  const bpp = Math.max(1, bitsPerPixel >> 3);
  const rows: Uint8Array[] = [];
  for (let y = 0; y < height; y++) {
    const row = new Uint8Array(stride);
    for (let s = 0; s < width * channels; s++) {
      const v = samples[y * width * channels + s];
      if (depth === 16) {
        row[2 * s] = v >> 8;
        row[2 * s + 1] = v & 0xff;
      } else if (depth === 8) row[s] = v;
      else {
        const bit = s * depth;
        row[bit >> 3] |= v << (8 - depth - (bit & 7));
      }
    }
    rows.push(row);
  }
  const filters = spec.filters ?? [0, 1, 2, 3, 4];
  const raw = new Uint8Array(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    const f = filters[y % filters.length];
    raw[y * (stride + 1)] = f;
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? rows[y][i - bpp] : 0;
      const b = y > 0 ? rows[y - 1][i] : 0;
      const c = y > 0 && i >= bpp ? rows[y - 1][i - bpp] : 0;
      const predicted = [0, a, b, (a + b) >> 1, paeth(a, b, c)][f];
      raw[y * (stride + 1) + 1 + i] = (rows[y][i] - predicted) & 0xff;
    }
  }
  const ihdr = new Uint8Array(13);
  const hv = new DataView(ihdr.buffer);
  hv.setUint32(0, width);
  hv.setUint32(4, height);
  ihdr.set([depth, color, 0, 0, spec.interlaced ? 1 : 0], 8);
  const parts = [new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", ihdr)];
  if (spec.palette) parts.push(chunk("PLTE", new Uint8Array(spec.palette)));
  // split the image data over two IDAT chunks, as encoders may
  const z = await compress(raw, "deflate");
  const half = z.length >> 1;
  parts.push(chunk("IDAT", z.subarray(0, half)), chunk("IDAT", z.subarray(half)));
  parts.push(chunk("IEND", new Uint8Array(0)));
  return concat(parts);
}

/** A 1-bit grayscale PNG (as Omniglot's): `ink(x, y)` true draws a black pixel. */
export function inkPng(
  width: number,
  height: number,
  ink: (x: number, y: number) => boolean,
): Promise<Uint8Array> {
  const samples: number[] = [];
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) samples.push(ink(x, y) ? 0 : 1);
  return encodePng({ width, height, color: 0, depth: 1, samples });
}

/** Write a zip archive; entries whose `store` is true are not compressed. */
export async function makeZip(
  entries: Array<{ name: string; data: Uint8Array; store?: boolean }>,
): Promise<Uint8Array> {
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  const enc = new TextEncoder();
  for (const e of entries) {
    const name = enc.encode(e.name);
    const body = e.store ? e.data : await compress(e.data, "deflate-raw");
    const method = e.store ? 0 : 8;
    const crc = crc32(e.data);
    const local = new Uint8Array(30 + name.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(8, method, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, body.length, true);
    lv.setUint32(22, e.data.length, true);
    lv.setUint16(26, name.length, true);
    local.set(name, 30);
    const central = new Uint8Array(46 + name.length);
    const cv = new DataView(central.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint16(10, method, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, body.length, true);
    cv.setUint32(24, e.data.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint32(42, offset, true);
    central.set(name, 46);
    locals.push(local, body);
    centrals.push(central);
    offset += local.length + body.length;
  }
  const directory = concat(centrals);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, entries.length, true);
  ev.setUint16(10, entries.length, true);
  ev.setUint32(12, directory.length, true);
  ev.setUint32(16, offset, true);
  return concat([...locals, directory, end]);
}
