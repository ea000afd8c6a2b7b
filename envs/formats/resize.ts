/**
 * Area-average resizing of a grayscale image: each output pixel is the mean of the input
 * over its footprint, with partially covered input pixels weighted by their overlap (what
 * OpenCV calls INTER_AREA). It is exact for any ratio and never aliases when shrinking.
 */

/** Per output index along one axis: the input indices it covers and their weights (sum 1). */
function footprints(inSize: number, outSize: number): Array<Array<[number, number]>> {
  const scale = inSize / outSize;
  return Array.from({ length: outSize }, (_, o) => {
    const lo = o * scale, hi = (o + 1) * scale;
    const taps: Array<[number, number]> = [];
    for (let i = Math.floor(lo); i < Math.min(inSize, Math.ceil(hi)); i++) {
      const overlap = Math.min(hi, i + 1) - Math.max(lo, i);
      if (overlap > 1e-9) taps.push([i, overlap / scale]);
    }
    return taps;
  });
}

/** Resize `pixels` [height, width] (row-major) to [outHeight, outWidth]. */
export function resizeArea(
  pixels: Float32Array,
  height: number,
  width: number,
  outHeight: number,
  outWidth: number,
): Float32Array {
  const rows = footprints(height, outHeight), cols = footprints(width, outWidth);
  // columns first: [height, outWidth], then rows
  const partial = new Float64Array(height * outWidth);
  for (let y = 0; y < height; y++) {
    for (let ox = 0; ox < outWidth; ox++) {
      let acc = 0;
      for (const [x, w] of cols[ox]) acc += w * pixels[y * width + x];
      partial[y * outWidth + ox] = acc;
    }
  }
  const out = new Float32Array(outHeight * outWidth);
  for (let oy = 0; oy < outHeight; oy++) {
    for (let ox = 0; ox < outWidth; ox++) {
      let acc = 0;
      for (const [y, w] of rows[oy]) acc += w * partial[y * outWidth + ox];
      out[oy * outWidth + ox] = acc;
    }
  }
  return out;
}
