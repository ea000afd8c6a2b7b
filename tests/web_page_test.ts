/**
 * The web page in a real browser: bundles examples/web (and the kernel checks), serves them on
 * 127.0.0.1 and drives headless Chromium over the DevTools protocol (WebGPU on SwiftShader
 * where there is no GPU). Without Chromium the tests are reported as ignored, never as passed;
 * `.ci/run` installs it. The page's screenshot goes to test-output/web-page.png.
 */
import assert from "node:assert/strict";
import { ChromiumPage, findChromium } from "./chromium.ts";
import {
  buildWebPage,
  bundleForBrowser,
  serveDirectory,
  WEB_BUNDLE_BUDGET_BYTES,
} from "../examples/web/serve.ts";
import type { CheckResult } from "./browser_checks.ts";

const chromium = await findChromium();
const ignore = chromium === null;
if (ignore) console.warn("web page tests ignored: no Chromium (set CHROMIUM or install chromium)");

/** The page and the check page bundled into a temporary directory and served. */
async function servePages(): Promise<{ url: string; close: () => Promise<void>; bytes: number }> {
  const dir = await Deno.makeTempDir({ prefix: "metagrad-web-test-" });
  const bytes = await buildWebPage(dir);
  await bundleForBrowser(new URL("browser_checks.ts", import.meta.url), `${dir}/checks.js`);
  await Deno.writeTextFile(
    `${dir}/checks.html`,
    `<!doctype html><meta charset="utf-8"><script type="module" src="checks.js"></script>`,
  );
  const server = serveDirectory(dir, { port: 0, quiet: true });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    bytes,
    close: async () => {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test({
  name: "in headless Chromium: every kernel family, gradient and HVP matches float64",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    const site = await servePages();
    const page = await ChromiumPage.open(chromium!, `${site.url}/checks.html`);
    try {
      await page.waitFor("typeof runBrowserChecks === 'function'", 30_000);
      const adapter = await page.evaluate<string>(
        "navigator.gpu.requestAdapter().then((a) => a ? a.info.vendor + ' ' + a.info.architecture : 'none')",
      );
      assert.notEqual(adapter, "none", "Chromium found no WebGPU adapter");
      const results = await page.evaluate<CheckResult[]>("runBrowserChecks()");
      const failed = results.filter((r) => !r.ok);
      assert.ok(results.length >= 27, `only ${results.length} checks ran`);
      assert.deepEqual(
        failed.map((r) => `${r.name}: ${r.error}`),
        [],
        `on ${adapter}: ${failed.length} of ${results.length} checks failed`,
      );
    } finally {
      await page.close();
      await site.close();
    }
  },
});

Deno.test({
  name:
    "in headless Chromium: the page meta-trains MAML, then adapts to clicked points better than from scratch",
  ignore,
  sanitizeResources: false,
  fn: async () => {
    const site = await servePages();
    assert.ok(
      site.bytes <= WEB_BUNDLE_BUDGET_BYTES,
      `app.js is ${site.bytes} bytes, over its budget of ${WEB_BUNDLE_BUDGET_BYTES}`,
    );
    const page = await ChromiumPage.open(chromium!, `${site.url}/?steps=400&seed=0`, {
      width: 1200,
      height: 900,
    });
    try {
      const phase = await page.waitFor<string>(
        "['ready', 'error'].includes(globalThis.metagradDemo?.phase) && metagradDemo.phase",
        240_000,
      );
      assert.equal(phase, "ready", await page.evaluate("metagradDemo.error"));
      const curve = await page.evaluate<{ step: number[]; loss: number[] }>("metagradDemo.curve");
      assert.equal(curve.step.at(-1), 400, "the progress reached the last step");
      assert.ok(
        curve.loss.every(Number.isFinite) && (await page.evaluate<string>(
              "document.querySelector('#curve svg polyline') ? 'drawn' : ''",
            )) === "drawn",
        "the learning curve is drawn",
      );
      // a visitor asks for new sines (the button) until one with some amplitude comes up
      for (let tries = 0; tries < 10; tries++) {
        const amplitude = await page.evaluate<number>("metagradDemo.target.amplitude");
        if (amplitude >= 2) break;
        const b = await page.evaluate<{ x: number; y: number }>(
          "(() => { const r = document.getElementById('new-sine').getBoundingClientRect();" +
            " return { x: r.left + r.width / 2, y: r.top + r.height / 2 }; })()",
        );
        await page.click(b.x, b.y);
        await page.waitFor(`metagradDemo.target.amplitude !== ${amplitude}`, 10_000);
      }
      const target = await page.evaluate<{ amplitude: number }>("metagradDemo.target");
      assert.ok(target.amplitude >= 2, `no sine with amplitude ≥ 2 in 10 draws`);
      const xs = [-4, -2.2, -0.5, 1.3, 3.6];
      for (const x of xs) {
        const p = await page.evaluate<{ x: number; y: number }>(`metagradDemo.pagePoint(${x})`);
        await page.click(p.x, p.y);
      }
      await page.waitFor(
        `metagradDemo.phase === 'adapted' && metagradDemo.adaptedPoints === ${xs.length}`,
        120_000,
      );
      const points = await page.evaluate<[number, number][]>("metagradDemo.points");
      points.forEach(([x], i) =>
        assert.ok(Math.abs(x - xs[i]) < 0.05, `click ${i} landed at x=${x}`)
      );
      const mse = await page.evaluate<{ metaLearned: number[]; scratch: number[] }>(
        "metagradDemo.mse",
      );
      assert.equal(mse.metaLearned.length, 11);
      assert.ok(
        mse.metaLearned[10] < mse.scratch[10] && mse.metaLearned[1] < mse.scratch[1],
        `after 1 and 10 steps the MAML init should fit better: ${JSON.stringify(mse)}`,
      );
      assert.ok(mse.metaLearned[10] < mse.metaLearned[0], "adaptation lowers the MSE");
      // the numbers the page shows are those numbers
      const shown = await page.evaluate<string[][]>(
        "[...document.querySelectorAll('#mse tr')].slice(1).map((r) => [...r.cells].map((c) => c.textContent))",
      );
      assert.deepEqual(shown[10], [
        "10",
        mse.metaLearned[10].toFixed(3),
        mse.scratch[10].toFixed(3),
      ]);
      const lines = await page.evaluate<number>(
        "document.querySelectorAll('#plot svg polyline').length",
      );
      assert.ok(
        lines >= 3,
        `the adaptation chart draws the target and both models (${lines} lines)`,
      );
      await Deno.mkdir("test-output", { recursive: true });
      await Deno.writeFile("test-output/web-page.png", await page.screenshot());
      console.log(
        `MSE after 10 steps on ${xs.length} points: MAML init ${mse.metaLearned[10].toFixed(3)}, ` +
          `random init ${mse.scratch[10].toFixed(3)}; screenshot test-output/web-page.png`,
      );
    } finally {
      await page.close();
      await site.close();
    }
  },
});
