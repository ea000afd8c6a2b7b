/**
 * A zip archive reader: the central directory is parsed once, entries are inflated on demand
 * with `DecompressionStream("deflate-raw")` and checked against their CRC-32. Handles the
 * stored and deflated methods of ordinary archives (such as the Omniglot release); zip64,
 * multi-disk and encrypted archives are reported as unsupported.
 */
import { crc32 } from "./crc32.ts";
import { inflate } from "./inflate.ts";

/** One file of an archive. */
export interface ZipEntry {
  /** Path inside the archive ("/"-separated; folders end with "/"). */
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  crc: number;
  localHeaderOffset: number;
}

const EOCD = 0x06054b50, CENTRAL = 0x02014b50, LOCAL = 0x04034b50;

/** List the entries of the archive `bytes` (`where` names it in errors). */
export function zipEntries(bytes: Uint8Array, where: string): ZipEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
    if (view.getUint32(i, true) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${where}: not a zip archive (no end-of-central-directory record)`);
  const count = view.getUint16(eocd + 10, true);
  const dirOffset = view.getUint32(eocd + 16, true);
  if (view.getUint16(eocd + 4, true) !== 0 || view.getUint16(eocd + 6, true) !== 0) {
    throw new Error(`${where}: multi-disk zip archives are not supported`);
  }
  if (count === 0xffff || dirOffset === 0xffffffff) {
    throw new Error(`${where}: zip64 archives are not supported; unzip it and pass the folder`);
  }
  const entries: ZipEntry[] = [];
  const names = new TextDecoder();
  let at = dirOffset;
  for (let e = 0; e < count; e++) {
    if (at + 46 > bytes.length || view.getUint32(at, true) !== CENTRAL) {
      throw new Error(`${where}: truncated or corrupt zip central directory (entry ${e})`);
    }
    const flags = view.getUint16(at + 8, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    const entry: ZipEntry = {
      name: names.decode(bytes.subarray(at + 46, at + 46 + nameLength)),
      method: view.getUint16(at + 10, true),
      crc: view.getUint32(at + 16, true),
      compressedSize: view.getUint32(at + 20, true),
      size: view.getUint32(at + 24, true),
      localHeaderOffset: view.getUint32(at + 42, true),
    };
    if (flags & 1) throw new Error(`${where}: ${entry.name} is encrypted`);
    entries.push(entry);
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** The uncompressed contents of `entry`. */
export async function zipRead(
  bytes: Uint8Array,
  entry: ZipEntry,
  where: string,
): Promise<Uint8Array> {
  const what = `${where}: ${entry.name}`;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = entry.localHeaderOffset;
  if (at + 30 > bytes.length || view.getUint32(at, true) !== LOCAL) {
    throw new Error(`${what}: corrupt zip (bad local header)`);
  }
  const start = at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
  const end = start + entry.compressedSize;
  if (end > bytes.length) throw new Error(`${what}: truncated zip entry`);
  const raw = bytes.subarray(start, end);
  let data: Uint8Array;
  if (entry.method === 0) data = raw;
  else if (entry.method === 8) data = await inflate(raw, "deflate-raw", what);
  else throw new Error(`${what}: unsupported zip compression method ${entry.method}`);
  if (data.length !== entry.size || crc32(data) !== entry.crc) {
    throw new Error(`${what}: checksum mismatch (the archive is damaged; download it again)`);
  }
  return data;
}
