/**
 * A PNG decoder to grayscale intensities in [0, 1], built on `DecompressionStream("deflate")`:
 * every colour type (gray, RGB, palette, with or without alpha) at every legal bit depth,
 * all five scanline filters. RGB and palette colours become luma (ITU-R 601 weights, as
 * PIL's "L" mode); alpha is dropped. Interlaced (Adam7) images are reported as unsupported.
 */
import { crc32 } from "./crc32.ts";
import { inflate } from "./inflate.ts";

/** A decoded grayscale image, row-major. */
export interface GrayImage {
  width: number;
  height: number;
  /** Intensities in [0, 1] (0 = black), length width·height. */
  pixels: Float32Array;
}

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const DEPTHS: Record<number, number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};
const LUMA = [0.299, 0.587, 0.114];

/** Decode the PNG file `bytes` (`where` names it in errors). */
export async function decodePng(bytes: Uint8Array, where: string): Promise<GrayImage> {
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) {
    throw new Error(`${where}: not a PNG file`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const idat: Uint8Array[] = [];
  let header: { width: number; height: number; depth: number; color: number } | null = null;
  let palette: Uint8Array | null = null;
  let at = 8;
  for (;;) {
    if (at + 12 > bytes.length) throw new Error(`${where}: truncated PNG (no IEND chunk)`);
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    const end = at + 12 + length;
    if (end > bytes.length) throw new Error(`${where}: truncated PNG (${type} chunk)`);
    const data = bytes.subarray(at + 8, at + 8 + length);
    if (crc32(bytes.subarray(at + 4, at + 8 + length)) !== view.getUint32(at + 8 + length)) {
      throw new Error(`${where}: corrupt PNG (${type} chunk checksum mismatch)`);
    }
    if (type === "IHDR") {
      const d = new DataView(data.buffer, data.byteOffset, data.byteLength);
      header = { width: d.getUint32(0), height: d.getUint32(4), depth: data[8], color: data[9] };
      if (!DEPTHS[header.color]?.includes(header.depth)) {
        throw new Error(
          `${where}: invalid PNG colour type ${header.color} with bit depth ${header.depth}`,
        );
      }
      if (data[12] !== 0) {
        throw new Error(`${where}: interlaced PNGs are not supported; re-save it non-interlaced`);
      }
    } else if (type === "PLTE") palette = data;
    else if (type === "IDAT") idat.push(data);
    else if (type === "IEND") break;
    at = end;
  }
  if (!header) throw new Error(`${where}: PNG has no IHDR chunk`);
  if (header.color === 3 && !palette) throw new Error(`${where}: palette PNG has no PLTE chunk`);
  const compressed = new Uint8Array(idat.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of idat) {
    compressed.set(chunk, offset);
    offset += chunk.length;
  }
  const raw = await inflate(compressed, "deflate", `${where} (image data)`);
  const { width, height, depth, color } = header;
  const bitsPerPixel = CHANNELS[color] * depth;
  const stride = Math.ceil((width * bitsPerPixel) / 8);
  if (raw.length < height * (stride + 1)) {
    throw new Error(`${where}: truncated PNG image data`);
  }
  const rows = unfilter(raw, height, stride, Math.max(1, bitsPerPixel >> 3), where);
  return {
    width,
    height,
    pixels: toGray(rows, width, height, stride, depth, color, palette, where),
  };
}

/** Undo the per-scanline filters in place; returns the rows without their filter bytes. */
function unfilter(
  raw: Uint8Array,
  height: number,
  stride: number,
  bpp: number,
  where: string,
): Uint8Array {
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = out.subarray(y * stride, (y + 1) * stride);
    const up = y > 0 ? out.subarray((y - 1) * stride, y * stride) : null;
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? row[i - bpp] : 0;
      const b = up ? up[i] : 0;
      const c = up && i >= bpp ? up[i - bpp] : 0;
      let predicted: number;
      switch (filter) {
        case 0:
          predicted = 0;
          break;
        case 1:
          predicted = a;
          break;
        case 2:
          predicted = b;
          break;
        case 3:
          predicted = (a + b) >> 1;
          break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
          predicted = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default:
          throw new Error(`${where}: corrupt PNG (unknown filter ${filter} on row ${y})`);
      }
      row[i] = (src[i] + predicted) & 0xff;
    }
  }
  return out;
}

function toGray(
  rows: Uint8Array,
  width: number,
  height: number,
  stride: number,
  depth: number,
  color: number,
  palette: Uint8Array | null,
  where: string,
): Float32Array {
  const channels = CHANNELS[color];
  const max = (1 << depth) - 1;
  // sample s (channel index within the row) of row y, as an integer
  const sample = (y: number, s: number): number => {
    const row = y * stride;
    if (depth === 8) return rows[row + s];
    if (depth === 16) return (rows[row + 2 * s] << 8) | rows[row + 2 * s + 1];
    const bit = s * depth;
    return (rows[row + (bit >> 3)] >> (8 - depth - (bit & 7))) & max;
  };
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const s = x * channels;
      let v: number;
      if (color === 0 || color === 4) v = sample(y, s) / max;
      else if (color === 3) {
        const i = sample(y, s);
        if (3 * i + 2 >= palette!.length) {
          throw new Error(`${where}: corrupt PNG (palette index ${i} beyond the palette)`);
        }
        v = (LUMA[0] * palette![3 * i] + LUMA[1] * palette![3 * i + 1] +
          LUMA[2] * palette![3 * i + 2]) / 255;
      } else {
        v = (LUMA[0] * sample(y, s) + LUMA[1] * sample(y, s + 1) + LUMA[2] * sample(y, s + 2)) /
          max;
      }
      out[y * width + x] = v;
    }
  }
  return out;
}
