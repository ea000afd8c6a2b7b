/**
 * The Omniglot loader on small archives and folders made by the test (same layout as the
 * release), the class split, and — when OMNIGLOT_DIR points at the real "small" background
 * splits — figures checked against an independent decoder.
 */
import assert from "node:assert/strict";
import * as mg from "../mod.ts";
import { loadOmniglot, splitClasses } from "../envs/mod.ts";
import { inkPng, makeZip } from "./image_fixtures.ts";
import { assertAllClose, assertRejectsWith, assertThrowsWith } from "./helpers.ts";

mg.setBackend("reference");

const SIDE = 12, SMALL = 4; // 12×12 fixtures shrink by exactly 3
const DRAWERS = 3;

/** Ink pattern of drawer d of class c: a different diagonal comb per image. */
const ink = (c: number, d: number) => (x: number, y: number) => (x + 2 * y + 3 * c + d) % 5 === 0;

/** Expected 4×4 image (strokes 1): the ink share of each 3×3 block. */
function expected(c: number, d: number): number[] {
  const out: number[] = [];
  for (let by = 0; by < SMALL; by++) {
    for (let bx = 0; bx < SMALL; bx++) {
      let n = 0;
      for (let y = 0; y < 3; y++) {
        for (let x = 0; x < 3; x++) n += +ink(c, d)(3 * bx + x, 3 * by + y);
      }
      out.push(n / 9);
    }
  }
  return out;
}

/** Classes of a split: [alphabet, character, pattern id]. */
type Spec = Array<[string, string, number]>;
const BACKGROUND: Spec = [["Alpha", "character01", 0], ["Alpha", "character02", 1], [
  "Beta",
  "character01",
  2,
]];
const EVALUATION: Spec = [["Gamma", "character01", 3]];

async function files(split: string, spec: Spec, drawers = DRAWERS, side = SIDE) {
  const out: Array<{ name: string; data: Uint8Array }> = [];
  for (const [alphabet, character, c] of spec) {
    for (let d = 0; d < drawers; d++) {
      out.push({
        name: `${split}/${alphabet}/${character}/${String(100 + c)}_0${d + 1}.png`,
        data: await inkPng(side, side, ink(c, d)),
      });
    }
  }
  return out;
}

async function writeFolder(root: string, entries: Array<{ name: string; data: Uint8Array }>) {
  for (const e of entries) {
    const path = `${root}/${e.name}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await Deno.writeFile(path, e.data);
  }
}

async function fixtureRoot(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "omniglot_test_" });
  const bg = await files("images_background", BACKGROUND);
  await writeFolder(`${root}/folder`, bg);
  await Deno.mkdir(`${root}/zips`);
  await Deno.writeFile(`${root}/zips/images_background.zip`, await makeZip(bg));
  const ev = (await files("images_evaluation", EVALUATION)).map((e) => ({ ...e, store: true }));
  await Deno.writeFile(`${root}/zips/images_evaluation.zip`, await makeZip(ev));
  return root;
}

const NO_CACHE = { imageSize: SMALL, cache: false } as const;

Deno.test("loadOmniglot: an archive and its unzipped folder give the same images", async () => {
  const root = await fixtureRoot();
  const fromZip = await loadOmniglot(`${root}/zips/images_background.zip`, NO_CACHE);
  const fromFolder = await loadOmniglot(`${root}/folder/images_background`, NO_CACHE);
  for (const d of [fromZip, fromFolder]) {
    assert.deepEqual(d.classes, ["Alpha/character01", "Alpha/character02", "Beta/character01"]);
    assert.deepEqual(d.images.shape, [3, DRAWERS, 1, SMALL, SMALL]);
    assert.equal(d.cached, false);
    const want = BACKGROUND.flatMap(([, , c]) =>
      Array.from({ length: DRAWERS }, (_, k) => expected(c, k)).flat()
    );
    assertAllClose(await d.images.toFloat64(), want, { rtol: 1e-6, atol: 1e-6 });
  }
  // strokes dark on request
  const dark = await loadOmniglot(`${root}/folder/images_background`, {
    ...NO_CACHE,
    invert: false,
  });
  assertAllClose(
    [...(await dark.images.toFloat64())].slice(0, 16),
    expected(0, 0).map((v) => 1 - v),
    { atol: 1e-6 },
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test("loadOmniglot: a folder of splits merges them; shared characters are kept once", async () => {
  const root = await fixtureRoot();
  const merged = await loadOmniglot(`${root}/zips`, NO_CACHE);
  assert.deepEqual(merged.classes, [
    "Alpha/character01",
    "Alpha/character02",
    "Beta/character01",
    "Gamma/character01",
  ]);
  assert.equal(merged.sources.length, 2);
  // a second archive repeating Alpha (as the two "small" splits share Greek and Latin)
  const extra = await files("images_background_small2", [["Alpha", "character01", 0], [
    "Delta",
    "character01",
    4,
  ]]);
  await Deno.writeFile(`${root}/zips/images_background_small2.zip`, await makeZip(extra));
  const deduped = await loadOmniglot(`${root}/zips`, NO_CACHE);
  assert.equal(deduped.classes.length, 5);
  assert.deepEqual(deduped.images.shape, [5, DRAWERS, 1, SMALL, SMALL]);
  // an archive beside its unzipped folder is read once, from the folder
  await Deno.copyFile(`${root}/zips/images_background.zip`, `${root}/folder/images_background.zip`);
  const both = await loadOmniglot(`${root}/folder`, NO_CACHE);
  assert.deepEqual(both.sources, [`${root}/folder/images_background`]);
  assert.equal(both.classes.length, 3);
  await Deno.remove(root, { recursive: true });
});

Deno.test("loadOmniglot: the decoded set is cached and rebuilt when a source changes", async () => {
  const root = await fixtureRoot();
  const opts = { imageSize: SMALL, cache: `${root}/cache` };
  const first = await loadOmniglot(`${root}/zips`, opts);
  const second = await loadOmniglot(`${root}/zips`, opts);
  assert.equal(first.cached, false);
  assert.equal(second.cached, true);
  assert.deepEqual(second.classes, first.classes);
  assertAllClose(await second.images.toFloat64(), await first.images.toFloat64(), {
    rtol: 0,
    atol: 0,
  });
  // another image size is another cache entry
  assert.equal((await loadOmniglot(`${root}/zips`, { ...opts, imageSize: 6 })).cached, false);
  // a changed archive is read again
  const ev = await files("images_evaluation", [...EVALUATION, ["Gamma", "character02", 5]]);
  await Deno.writeFile(`${root}/zips/images_evaluation.zip`, await makeZip(ev));
  const third = await loadOmniglot(`${root}/zips`, opts);
  assert.equal(third.cached, false);
  assert.equal(third.classes.length, 5);
  await Deno.remove(root, { recursive: true });
});

Deno.test("loadOmniglot: clear errors for missing, empty, ragged and mixed-size data", async () => {
  const root = await fixtureRoot();
  await assertRejectsWith(loadOmniglot(`${root}/nowhere`), `${root}/nowhere`, "does not exist");
  await Deno.mkdir(`${root}/empty`);
  await assertRejectsWith(loadOmniglot(`${root}/empty`), "no Omniglot data", "<Alphabet>");
  await Deno.writeTextFile(`${root}/notes.txt`, "hi");
  await assertRejectsWith(loadOmniglot(`${root}/notes.txt`), "not a .zip");
  await Deno.remove(`${root}/folder/images_background/Beta/character01/102_03.png`);
  await assertRejectsWith(
    loadOmniglot(`${root}/folder/images_background`, NO_CACHE),
    "Beta/character01 has 2 images",
    "has 3",
  );
  await writeFolder(
    `${root}/mixed`,
    [
      ...await files("s", [["A", "character01", 0]]),
      ...await files("s", [["A", "character02", 1]], DRAWERS, 10),
    ],
  );
  await assertRejectsWith(loadOmniglot(`${root}/mixed/s`, NO_CACHE), "is 10×10", "one size");
  const broken = await makeZip(await files("s", [["A", "character01", 0]]));
  broken[60] ^= 0xff; // inside the first entry's data
  await Deno.writeFile(`${root}/broken.zip`, broken);
  await assertRejectsWith(loadOmniglot(`${root}/broken.zip`, NO_CACHE), "broken.zip");
  await Deno.remove(root, { recursive: true });
});

Deno.test("splitClasses: disjoint classes covering the set, rows moved whole", async () => {
  const images = mg.reshape(mg.arange(10 * 2 * 3), [10, 2, 3]);
  const { train, test, trainClasses, testClasses } = splitClasses(mg.random.key(5), images, 0.7);
  assert.deepEqual(train.shape, [7, 2, 3]);
  assert.deepEqual(test.shape, [3, 2, 3]);
  const ids = [...await trainClasses.data(), ...await testClasses.data()];
  assert.deepEqual([...ids].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const rows = [...await train.data(), ...await test.data()];
  assert.deepEqual(rows, ids.flatMap((c) => Array.from({ length: 6 }, (_, i) => 6 * c + i)));
  assertThrowsWith(() => splitClasses(mg.random.key(5), images, 1), "splitClasses", "[10, 2, 3]");
  assertThrowsWith(() => splitClasses(mg.random.key(5), images, 0.01), "at least one class");
});

const OMNIGLOT_DIR = Deno.env.get("OMNIGLOT_DIR");
if (!OMNIGLOT_DIR) {
  console.log(
    "omniglot_test: OMNIGLOT_DIR is not set — skipping the real-data test (point it at a folder " +
      "holding images_background*.zip)",
  );
}

Deno.test({
  name: "loadOmniglot: real small background splits (242 characters) match an independent decoder",
  ignore: !OMNIGLOT_DIR,
  async fn() {
    const cache = await Deno.makeTempDir({ prefix: "omniglot_cache_" });
    const d = await loadOmniglot(OMNIGLOT_DIR!, { cache });
    assert.equal(d.classes.length, 242);
    assert.deepEqual(d.images.shape, [242, 20, 1, 28, 28]);
    assert.equal(d.classes[0], "Balinese/character01");
    assert.equal(new Set(d.classes.map((c) => c.split("/")[0])).size, 8);
    const all = Float64Array.from(await d.images.data());
    // Python (zlib + its own unfiltering): Balinese/character01/0108_01.png has 881 black
    // pixels of 105², so its area-resized inverted image sums to 881·28²/105²; the 4840
    // distinct images are 8.055178876% ink
    const first = all.subarray(0, 784).reduce((s, v) => s + v, 0);
    assertAllClose([first], [881 * 784 / 11025], { rtol: 1e-6 });
    assertAllClose([all.reduce((s, v) => s + v, 0) / all.length], [0.08055178876], { rtol: 1e-6 });
    assert.ok(all.every((v) => v >= 0 && v <= 1 + 1e-6));
    const again = await loadOmniglot(OMNIGLOT_DIR!, { cache });
    assert.equal(again.cached, true);
    await Deno.remove(cache, { recursive: true });
  },
});
