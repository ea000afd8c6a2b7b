/**
 * Line charts as standalone SVG text (no dependency, no DOM): learning curves of several runs
 * on one chart, adaptation curves (loss against inner steps), with axes, ticks at round values,
 * an optional log scale, a legend, and shaded bands for confidence intervals. Points that are
 * not finite (a NaN loss, an infinite return) break a line instead of bending the axes.
 */

/** One line of a chart. */
export interface Series {
  /** Legend text. */
  name: string;
  /** x values, increasing or not (drawn in the given order). */
  x: readonly number[];
  /** y values, one per x. */
  y: readonly number[];
  /** Optional half-widths of a band around y (95% CIs), one per x. */
  band?: readonly number[];
}

/** Options of `lineChartSvg`. */
export interface ChartOptions {
  /** Text above the chart. */
  title?: string;
  /** Label of the x axis. */
  xLabel?: string;
  /** Label of the y axis. */
  yLabel?: string;
  /** Plot y on a log₁₀ scale (non-positive values are then skipped). Default false. */
  logY?: boolean;
  /** Image width in pixels (default 720). */
  width?: number;
  /** Image height in pixels (default 420). */
  height?: number;
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"];
const MARGIN = { left: 72, right: 24, top: 40, bottom: 56 };

/** Text safe inside SVG elements and attributes. */
function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}

/** Round tick positions (steps of 1, 2 or 5 × 10^k) covering [lo, hi], about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 6): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    throw new RangeError(`niceTicks: bounds must be finite, got ${lo} and ${hi}`);
  }
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    [lo, hi] = [lo - pad, hi + pad];
  }
  const raw = (hi - lo) / Math.max(1, count - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const first = Math.floor(lo / step) * step, last = Math.ceil(hi / step) * step;
  const ticks: number[] = [];
  for (let i = 0; first + i * step <= last + step * 1e-9; i++) {
    ticks.push(Number((first + i * step).toPrecision(12)));
  }
  return ticks;
}

/** A tick label: short, without float noise. */
function label(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1).replace("e+", "e");
  return String(Number(v.toPrecision(4)));
}

function checkSeries(series: readonly Series[]): void {
  if (!Array.isArray(series) || series.length === 0) {
    throw new TypeError("lineChartSvg: needs a non-empty array of series ({ name, x, y })");
  }
  series.forEach((s, i) => {
    if (typeof s?.name !== "string") {
      throw new TypeError(`lineChartSvg: series ${i} needs a name (a string)`);
    }
    if (!s.x || !s.y || s.x.length !== s.y.length) {
      throw new RangeError(
        `lineChartSvg: series "${s.name}" needs x and y of one length, got ${s.x?.length} and ${s.y?.length}`,
      );
    }
    if (s.band && s.band.length !== s.y.length) {
      throw new RangeError(
        `lineChartSvg: series "${s.name}" has ${s.band.length} band widths for ${s.y.length} points`,
      );
    }
  });
}

/**
 * An SVG line chart of `series`. Each series is a polyline in its own colour with an optional
 * band (y ± band); points whose x or y is not finite (or y ≤ 0 on a log scale) break the line.
 *
 * @example
 * ```ts
 * import { lineChartSvg } from "@metagrad/metagrad";
 * const svg = lineChartSvg(
 *   [{ name: "MAML", x: [0, 1, 10], y: [2.9, 0.6, 0.3] }],
 *   { title: "adaptation", xLabel: "inner steps", yLabel: "query MSE" },
 * );
 * await Deno.writeTextFile("curve.svg", svg);
 * ```
 */
export function lineChartSvg(series: readonly Series[], opts: ChartOptions = {}): string {
  checkSeries(series);
  const width = opts.width ?? 720, height = opts.height ?? 420;
  if (!(width >= 200 && height >= 150)) {
    throw new RangeError(`lineChartSvg: width ≥ 200 and height ≥ 150, got ${width}×${height}`);
  }
  const logY = opts.logY ?? false;
  const fy = (v: number) => (logY ? Math.log10(v) : v);
  const usable = (x: number, y: number) =>
    Number.isFinite(x) && Number.isFinite(y) && (!logY || y > 0);
  // data bounds over every drawable point (bands included)
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const s of series) {
    s.x.forEach((x, i) => {
      const y = s.y[i], b = s.band?.[i] ?? 0;
      if (!usable(x, y)) return;
      x0 = Math.min(x0, x), x1 = Math.max(x1, x);
      for (const v of [y - (Number.isFinite(b) ? b : 0), y + (Number.isFinite(b) ? b : 0)]) {
        if (!logY || v > 0) y0 = Math.min(y0, fy(v)), y1 = Math.max(y1, fy(v));
      }
    });
  }
  if (!Number.isFinite(x0)) {
    throw new RangeError("lineChartSvg: no finite points to draw (every x or y is NaN or ±∞)");
  }
  // a log scale's ticks are powers of ten
  const decades = (lo: number, hi: number) => {
    const [a, b] = [Math.floor(lo), Math.max(Math.ceil(hi), Math.floor(lo) + 1)];
    return Array.from({ length: b - a + 1 }, (_, i) => a + i);
  };
  const xt = niceTicks(x0, x1), yt = logY ? decades(y0, y1) : niceTicks(y0, y1);
  const [xa, xb] = [xt[0], xt.at(-1)!], [ya, yb] = [yt[0], yt.at(-1)!];
  const pw = width - MARGIN.left - MARGIN.right, ph = height - MARGIN.top - MARGIN.bottom;
  const px = (x: number) => MARGIN.left + ((x - xa) / (xb - xa)) * pw;
  const py = (y: number) => MARGIN.top + (1 - (fy(y) - ya) / (yb - ya)) * ph;
  const r = (v: number) => v.toFixed(1);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
    `viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
  ];
  if (opts.title) {
    out.push(
      `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15">${
        escapeXml(opts.title)
      }</text>`,
    );
  }
  // grid, ticks and their labels
  for (const t of xt) {
    out.push(
      `<line x1="${r(px(t))}" y1="${MARGIN.top}" x2="${r(px(t))}" y2="${
        MARGIN.top + ph
      }" stroke="#e5e5e5"/>`,
      `<text x="${r(px(t))}" y="${MARGIN.top + ph + 18}" text-anchor="middle">${label(t)}</text>`,
    );
  }
  for (const t of yt) {
    const y = MARGIN.top + (1 - (t - ya) / (yb - ya)) * ph;
    out.push(
      `<line x1="${MARGIN.left}" y1="${r(y)}" x2="${MARGIN.left + pw}" y2="${
        r(y)
      }" stroke="#e5e5e5"/>`,
      `<text x="${MARGIN.left - 8}" y="${r(y + 4)}" text-anchor="end">${
        label(logY ? 10 ** t : t)
      }</text>`,
    );
  }
  out.push(
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`,
  );
  if (opts.xLabel) {
    out.push(
      `<text x="${MARGIN.left + pw / 2}" y="${height - 14}" text-anchor="middle">${
        escapeXml(opts.xLabel)
      }</text>`,
    );
  }
  if (opts.yLabel) {
    const cy = MARGIN.top + ph / 2;
    out.push(
      `<text x="16" y="${cy}" text-anchor="middle" transform="rotate(-90 16 ${cy})">${
        escapeXml(opts.yLabel + (logY ? " (log scale)" : ""))
      }</text>`,
    );
  }
  series.forEach((s, k) => {
    const color = COLORS[k % COLORS.length];
    // runs of consecutive drawable points: a non-finite point breaks the line
    const runs: number[][] = [[]];
    s.x.forEach((x, i) => {
      if (usable(x, s.y[i])) runs.at(-1)!.push(i);
      else if (runs.at(-1)!.length > 0) runs.push([]);
    });
    for (const run of runs.filter((run) => run.length > 0)) {
      if (s.band) {
        const top = run.map((i) => `${r(px(s.x[i]))},${r(py(bandEdge(s, i, 1, logY)))}`);
        const bottom = run.map((i) => `${r(px(s.x[i]))},${r(py(bandEdge(s, i, -1, logY)))}`);
        out.push(
          `<polygon points="${[...top, ...bottom.reverse()].join(" ")}" fill="${color}" ` +
            `fill-opacity="0.15" stroke="none"/>`,
        );
      }
      const pts = run.map((i) => `${r(px(s.x[i]))},${r(py(s.y[i]))}`).join(" ");
      out.push(
        run.length === 1
          ? `<circle cx="${pts.split(",")[0]}" cy="${pts.split(",")[1]}" r="3" fill="${color}"/>`
          : `<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="2"/>`,
      );
    }
  });
  // legend, top right inside the plot
  const lx = MARGIN.left + pw - 12;
  series.forEach((s, k) => {
    const y = MARGIN.top + 16 + k * 18;
    const color = COLORS[k % COLORS.length];
    out.push(
      `<line x1="${lx - 24}" y1="${y - 4}" x2="${lx}" y2="${
        y - 4
      }" stroke="${color}" stroke-width="2"/>`,
      `<text x="${lx - 30}" y="${y}" text-anchor="end">${escapeXml(s.name)}</text>`,
    );
  });
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}

/** y ± band at point i, kept positive on a log scale. */
function bandEdge(s: Series, i: number, sign: 1 | -1, logY: boolean): number {
  const b = s.band![i];
  const v = s.y[i] + sign * (Number.isFinite(b) ? b : 0);
  return logY && v <= 0 ? s.y[i] : v;
}
