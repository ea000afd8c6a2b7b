/**
 * Decompression through the platform's `DecompressionStream` (no third-party inflater):
 * "deflate" is zlib-wrapped (PNG image data), "deflate-raw" is bare DEFLATE (zip entries).
 */
export async function inflate(
  data: Uint8Array,
  format: "deflate" | "deflate-raw",
  what: string,
): Promise<Uint8Array> {
  try {
    const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream()
      .pipeThrough(new DecompressionStream(format));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (e) {
    throw new Error(`${what}: corrupt compressed data (${(e as Error).message})`);
  }
}
