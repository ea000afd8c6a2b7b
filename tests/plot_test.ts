/** SVG line charts: round ticks, lines broken at non-finite points, escaped text, clear errors. */
import assert from "node:assert/strict";
import { lineChartSvg, niceTicks, plotArea } from "../mod.ts";
import { assertAllClose, assertThrowsWith } from "./helpers.ts";

/** Every element opened is closed, in order (the subset of XML the charts use). */
function assertWellFormed(svg: string): void {
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-z]+)([^>]*?)(\/?)>/g)) {
    const [, closing, tag, , selfClosing] = m;
    if (selfClosing) continue;
    if (closing) assert.equal(stack.pop(), tag, `</${tag}> closes nothing open`);
    else stack.push(tag);
  }
  assert.deepEqual(stack, [], "elements left open");
  assert.ok(!/[<>&](?![a-z/]|amp;|lt;|gt;|quot;)/.test(svg.replace(/<[^>]*>/g, "")), "raw markup");
}

/** The points of each polyline, as [x, y] pairs. */
function polylines(svg: string): number[][][] {
  return [...svg.matchAll(/<polyline points="([^"]*)"/g)].map((m) =>
    m[1].split(" ").map((p) => p.split(",").map(Number))
  );
}

Deno.test("niceTicks: steps of 1, 2 or 5 × 10^k covering the range", () => {
  assertAllClose(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1], { rtol: 0, atol: 1e-12 });
  assertAllClose(niceTicks(0.013, 0.97, 6), [0, 0.2, 0.4, 0.6, 0.8, 1], { rtol: 0, atol: 1e-12 });
  assertAllClose(niceTicks(-38, -16), [-40, -35, -30, -25, -20, -15], { rtol: 0, atol: 0 });
  assertAllClose(niceTicks(0, 2000), [0, 500, 1000, 1500, 2000], { rtol: 0, atol: 0 });
  const flat = niceTicks(3, 3);
  assert.ok(flat[0] <= 3 && flat.at(-1)! >= 3 && flat.length >= 2, `flat range: ${flat}`);
  assertAllClose(niceTicks(1, 0), niceTicks(0, 1), { rtol: 0, atol: 0 });
  assertThrowsWith(() => niceTicks(0, Infinity), "niceTicks", "finite");
});

Deno.test("lineChartSvg: one polyline per series inside the plot, a legend, escaped names", () => {
  const svg = lineChartSvg(
    [
      { name: "MAML <meta> & co", x: [0, 1, 2, 5, 10], y: [2.9, 0.61, 0.45, 0.33, 0.3] },
      { name: 'scratch "init"', x: [0, 1, 2, 5, 10], y: [3.1, 2.8, 2.6, 2.2, 1.9] },
    ],
    { title: "sinusoid adaptation", xLabel: "inner steps", yLabel: "query MSE" },
  );
  assert.ok(svg.startsWith("<svg") && svg.endsWith("</svg>\n"));
  assertWellFormed(svg);
  assert.ok(svg.includes("MAML &lt;meta&gt; &amp; co") && svg.includes("scratch &quot;init&quot;"));
  assert.ok(svg.includes(">sinusoid adaptation<") && svg.includes(">inner steps<"));
  const lines = polylines(svg);
  assert.equal(lines.length, 2);
  for (const line of lines) {
    assert.equal(line.length, 5);
    for (const [x, y] of line) assert.ok(x >= 72 && x <= 696 && y >= 40 && y <= 364, `${x},${y}`);
  }
  // a lower loss is drawn lower (SVG's y grows downwards); x increases to the right
  assert.ok(lines[0][1][1] > lines[1][1][1] && lines[0][4][0] > lines[0][0][0]);
  // ticks at round values label both axes
  assert.ok(svg.includes(">10<") && svg.includes(">0<") && svg.includes(">3<"));
});

Deno.test("lineChartSvg: NaN breaks a line, bands are shaded, log scales tick at powers of ten", () => {
  const svg = lineChartSvg(
    [{ name: "loss", x: [1, 2, 3, 4, 5, 6], y: [1, 0.5, NaN, 0.05, 0.02, 0.01] }],
    { logY: true },
  );
  assertWellFormed(svg);
  assert.deepEqual(polylines(svg).map((l) => l.length), [2, 3]);
  for (const t of [">0.01<", ">0.1<", ">1<"]) assert.ok(svg.includes(t), `tick ${t}`);
  assert.ok(svg.includes("(log scale)") === false, "no y label given, none drawn");
  const banded = lineChartSvg([{
    name: "return",
    x: [0, 1, 2],
    y: [-40, -25, -20],
    band: [3, 2, 2],
  }]);
  assert.equal((banded.match(/<polygon /g) ?? []).length, 1);
  const single = lineChartSvg([{ name: "one point", x: [3], y: [7] }]);
  assert.equal((single.match(/<circle /g) ?? []).length, 1);
});

Deno.test("lineChartSvg: clear errors for what it cannot draw", () => {
  assertThrowsWith(() => lineChartSvg([]), "lineChartSvg", "non-empty");
  assertThrowsWith(
    () => lineChartSvg([{ name: "a", x: [1, 2], y: [1] }]),
    "lineChartSvg",
    '"a"',
    "one length",
  );
  assertThrowsWith(
    () => lineChartSvg([{ name: "a", x: [1, 2], y: [NaN, Infinity] }]),
    "no finite points",
  );
  assertThrowsWith(
    () => lineChartSvg([{ name: "a", x: [1], y: [1], band: [1, 2] }]),
    "band widths",
  );
  assertThrowsWith(
    () => lineChartSvg([{ name: "a", x: [1], y: [1] }], { width: 10 }),
    "width ≥ 200",
  );
  assertThrowsWith(() => lineChartSvg([{ x: [1], y: [1] } as never]), "series 0 needs a name");
});

Deno.test("cli.ts plot: runs' metrics.jsonl on one chart, clear errors for missing runs and fields", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const [run, rate] of [["fast", 300], ["slow", 900]] as const) {
      await Deno.mkdir(`${dir}/${run}`);
      const rows = Array.from(
        { length: 21 },
        (_, i) => JSON.stringify({ step: i * 100, loss: 3 * Math.exp((-i * 100) / rate) + 0.3 }),
      );
      await Deno.writeTextFile(`${dir}/${run}/metrics.jsonl`, rows.join("\n") + "\n");
    }
    const cli = (...args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL("../cli.ts", import.meta.url).pathname, "plot", ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
    const ok = await cli(`${dir}/fast`, `${dir}/slow/metrics.jsonl`, "--out", `${dir}/c.svg`);
    assert.equal(ok.code, 0, new TextDecoder().decode(ok.stderr));
    const svg = await Deno.readTextFile(`${dir}/c.svg`);
    assertWellFormed(svg);
    assert.deepEqual(polylines(svg).map((l) => l.length), [21, 21]);
    assert.ok(svg.includes(">fast<") && svg.includes(">slow<") && svg.includes(">step<"));
    const noField = await cli(`${dir}/fast`, "--y", "accuracy", "--out", `${dir}/d.svg`);
    assert.equal(noField.code, 2);
    assert.match(
      new TextDecoder().decode(noField.stderr),
      /no rows with both "step" and "accuracy".*loss/,
    );
    await Deno.writeTextFile(`${dir}/bad.jsonl`, '{"step": 1, "loss": 2}\nnot json\n');
    const bad = await cli(`${dir}/bad.jsonl`);
    assert.equal(bad.code, 2);
    assert.match(new TextDecoder().decode(bad.stderr), /bad\.jsonl line 2 is not a JSON object/);
    const missing = await cli(`${dir}/nowhere`);
    assert.match(new TextDecoder().decode(missing.stderr), /no file or directory/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lineChartSvg: fixed domains place points where plotArea says, clip, draw points and dashes", () => {
  const opts = { width: 480, height: 320, xDomain: [-5, 5], yDomain: [-6, 6] } as const;
  const svg = lineChartSvg(
    [
      { name: "target", x: [-5, 0, 5], y: [0, 3, 9], style: "dashed", color: "#888" },
      { name: "support", x: [-2.5, 2.5], y: [-3, 1.5], style: "points" },
      { name: "model", x: [-5, 5], y: [-6, 6] },
    ],
    opts,
  );
  assertWellFormed(svg);
  const area = plotArea(opts);
  assert.deepEqual(area, { left: 72, top: 40, width: 384, height: 224 });
  const at = (x: number, y: number) => [
    Number((area.left + (x + 5) / 10 * area.width).toFixed(1)),
    Number((area.top + (1 - (y + 6) / 12) * area.height).toFixed(1)),
  ];
  // markers exactly at the mapped data points (the legend's marker comes after them)
  const circles = [...svg.matchAll(/<circle cx="([^"]*)" cy="([^"]*)" r="5"/g)]
    .map((m) => [Number(m[1]), Number(m[2])]);
  assert.deepEqual(circles.slice(0, 2), [at(-2.5, -3), at(2.5, 1.5)]);
  assert.deepEqual(polylines(svg)[1], [at(-5, -6), at(5, 6)]);
  assert.ok(/stroke="#888" stroke-width="2" stroke-dasharray/.test(svg), "dashed target");
  assert.ok(svg.includes('clip-path="url(#mg-plot-480x320)"'), "clipped to the plot");
  // ticks stay inside the fixed range
  assert.ok(svg.includes(">-5<") && svg.includes(">5<") && !svg.includes(">-10<"));
  assertThrowsWith(
    () => lineChartSvg([{ name: "a", x: [1], y: [1] }], { xDomain: [1, 1] }),
    "xDomain",
    "lo < hi",
  );
  assertThrowsWith(
    () => lineChartSvg([{ name: "a", x: [1], y: [1], style: "bars" as never }]),
    '"bars"',
    '"points"',
  );
});

Deno.test("lineChartSvg: legend false leaves the legend out", () => {
  const series = [{ name: "only line", x: [0, 1], y: [0, 1] }];
  assert.ok(lineChartSvg(series).includes(">only line<"));
  const bare = lineChartSvg(series, { legend: false });
  assertWellFormed(bare);
  assert.ok(!bare.includes(">only line<") && bare.includes("<polyline "));
});
