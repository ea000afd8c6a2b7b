/**
 * File formats behind the data loaders: PNG decoding (every colour type and bit depth, all
 * scanline filters), zip reading (stored and deflated entries, checksums) and area resizing,
 * against fixtures encoded by the test itself and hand-computed values.
 */
import assert from "node:assert/strict";
import { decodePng } from "../envs/formats/png.ts";
import { zipEntries, zipRead } from "../envs/formats/zip.ts";
import { resizeArea } from "../envs/formats/resize.ts";
import { encodePng, makeZip, type PngSpec } from "./image_fixtures.ts";
import { assertAllClose, assertRejectsWith, assertThrowsWith, rng } from "./helpers.ts";

const LUMA = [0.299, 0.587, 0.114];

/** Expected gray values of a spec, computed straight from its samples. */
function expectedGray(spec: PngSpec): number[] {
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[spec.color];
  const max = 2 ** spec.depth - 1;
  const out: number[] = [];
  for (let p = 0; p < spec.width * spec.height; p++) {
    const s = spec.samples.slice(p * channels, (p + 1) * channels);
    if (spec.color === 0 || spec.color === 4) out.push(s[0] / max);
    else if (spec.color === 3) {
      const rgb = spec.palette!.slice(3 * s[0], 3 * s[0] + 3);
      out.push((LUMA[0] * rgb[0] + LUMA[1] * rgb[1] + LUMA[2] * rgb[2]) / 255);
    } else out.push((LUMA[0] * s[0] + LUMA[1] * s[1] + LUMA[2] * s[2]) / max);
  }
  return out;
}

const COMBOS: Array<[PngSpec["color"], PngSpec["depth"]]> = [
  [0, 1],
  [0, 2],
  [0, 4],
  [0, 8],
  [0, 16],
  [2, 8],
  [2, 16],
  [3, 1],
  [3, 2],
  [3, 4],
  [3, 8],
  [4, 8],
  [4, 16],
  [6, 8],
  [6, 16],
];

Deno.test("decodePng: every colour type and bit depth, all five filters, odd sizes", async () => {
  const r = rng(3);
  for (const [color, depth] of COMBOS) {
    for (const [width, height] of [[1, 1], [13, 7], [5, 11]]) {
      const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[color];
      const levels = color === 3 ? Math.min(2 ** depth, 7) : 2 ** depth;
      const samples = Array.from(
        { length: width * height * channels },
        () => Math.floor(r() * levels),
      );
      const palette = color === 3
        ? Array.from({ length: 3 * levels }, () => Math.floor(r() * 256))
        : undefined;
      const spec: PngSpec = { width, height, color, depth, samples, palette };
      const img = await decodePng(await encodePng(spec), "fixture.png");
      assert.equal(img.width, width);
      assert.equal(img.height, height);
      assertAllClose(
        img.pixels,
        expectedGray(spec),
        { rtol: 1e-6, atol: 1e-6 },
        `${color}/${depth}`,
      );
    }
  }
});

Deno.test("decodePng: clear errors for bad files", async () => {
  const spec: PngSpec = { width: 4, height: 4, color: 0, depth: 8, samples: Array(16).fill(7) };
  const good = await encodePng(spec);
  await assertRejectsWith(decodePng(new Uint8Array([1, 2, 3]), "x.png"), "x.png", "not a PNG");
  const flipped = good.slice();
  flipped[20] ^= 0xff; // inside IHDR
  await assertRejectsWith(decodePng(flipped, "x.png"), "x.png", "checksum");
  await assertRejectsWith(decodePng(good.subarray(0, 40), "x.png"), "truncated");
  await assertRejectsWith(
    decodePng(await encodePng({ ...spec, interlaced: true }), "x.png"),
    "interlaced",
  );
  await assertRejectsWith(
    decodePng(await encodePng({ ...spec, filters: [9] }), "x.png"),
    "unknown filter 9",
  );
});

Deno.test("zip: stored and deflated entries round-trip; damage is reported", async () => {
  const a = new TextEncoder().encode("hello, omniglot ".repeat(40));
  const b = new Uint8Array(300).map((_, i) => (i * 7) & 0xff);
  const zip = await makeZip([
    { name: "dir/", data: new Uint8Array(0), store: true },
    { name: "dir/a.txt", data: a },
    { name: "dir/b.bin", data: b, store: true },
  ]);
  const entries = zipEntries(zip, "t.zip");
  assert.deepEqual(entries.map((e) => [e.name, e.method]), [
    ["dir/", 0],
    ["dir/a.txt", 8],
    ["dir/b.bin", 0],
  ]);
  assert.ok(entries[1].compressedSize < a.length);
  assert.deepEqual(await zipRead(zip, entries[1], "t.zip"), a);
  assert.deepEqual(await zipRead(zip, entries[2], "t.zip"), b);

  const damaged = zip.slice();
  damaged[entries[2].localHeaderOffset + 30 + "dir/b.bin".length + 5] ^= 1;
  await assertRejectsWith(zipRead(damaged, entries[2], "t.zip"), "t.zip: dir/b.bin", "checksum");
  assertThrowsWith(() => zipEntries(new Uint8Array(100), "n.zip"), "n.zip", "not a zip");
});

Deno.test("resizeArea: block means, fractional footprints, constant and mean preserved", () => {
  // 4×4 → 2×2: means of 2×2 blocks
  const x = Float32Array.from({ length: 16 }, (_, i) => i);
  assertAllClose(resizeArea(x, 4, 4, 2, 2), [2.5, 4.5, 10.5, 12.5]);
  // 1×3 → 1×2: out0 = (a + b/2) / 1.5, out1 = (b/2 + c) / 1.5
  assertAllClose(resizeArea(Float32Array.of(3, 6, 9), 1, 3, 1, 2), [4, 8]);
  // upsampling 1×2 → 1×4 repeats
  assertAllClose(resizeArea(Float32Array.of(1, 5), 1, 2, 1, 4), [1, 1, 5, 5]);
  const r = rng(1);
  const big = Float32Array.from({ length: 105 * 105 }, () => (r() < 0.1 ? 0 : 1));
  const small = resizeArea(big, 105, 105, 28, 28);
  const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
  assertAllClose([mean(small)], [mean(big)], { rtol: 1e-6 });
  assertAllClose(
    resizeArea(new Float32Array(105 * 90).fill(0.25), 105, 90, 28, 28),
    Array(784).fill(0.25),
  );
});
