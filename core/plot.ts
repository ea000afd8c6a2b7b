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
  /** "line" (default), "dashed" (a reference curve) or "points" (markers, no line). */
  style?: "line" | "dashed" | "points";
  /** A CSS colour; default the next of the palette. */
  color?: string;
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
  /** Fixed x range [lo, hi] (default: the data's, widened to round ticks); drawing is clipped to it. */
  xDomain?: readonly [number, number];
  /** Fixed y range [lo, hi] (not with logY); drawing is clipped to it. */
  yDomain?: readonly [number, number];
  /** Draw the legend (default true), top right inside the plot, on a translucent card. */
  legend?: boolean;
}

/** The plot area of a chart inside its image, in pixels (where clicks map to data). */
export interface PlotArea {
  /** Left edge. */
  left: number;
  /** Top edge. */
  top: number;
  /** Width. */
  width: number;
  /** Height. */
  height: number;
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"];
const MARGIN = { left: 72, right: 24, top: 40, bottom: 56 };

/**
 * Where `lineChartSvg` draws the data for these options: with `xDomain`/`yDomain` set, a point
 * (x, y) lies at left + (x − lo)/(hi − lo)·width, top + (1 − (y − lo)/(hi − lo))·height.
 *
 * @example
 * ```ts
 * import { plotArea } from "@metagrad/metagrad";
 * const { left, width } = plotArea({ width: 480, height: 320 }); // 72, 384
 * ```
 */
export function plotArea(opts: Pick<ChartOptions, "width" | "height"> = {}): PlotArea {
  const width = opts.width ?? 720, height = opts.height ?? 420;
  return {
    left: MARGIN.left,
    top: MARGIN.top,
    width: width - MARGIN.left - MARGIN.right,
    height: height - MARGIN.top - MARGIN.bottom,
  };
}

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
    if (s.style !== undefined && !["line", "dashed", "points"].includes(s.style)) {
      throw new RangeError(
        `lineChartSvg: series "${s.name}" has style ${
          JSON.stringify(s.style)
        }; use "line", "dashed" or "points"`,
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
  const domain = (d: unknown, name: string) => {
    if (d === undefined) return undefined;
    if (!Array.isArray(d) || d.length !== 2 || !(d[0] < d[1]) || !d.every(Number.isFinite)) {
      throw new RangeError(`lineChartSvg: ${name} must be [lo, hi] with finite lo < hi, got ${d}`);
    }
    return d as [number, number];
  };
  const xDomain = domain(opts.xDomain, "xDomain"), yDomain = domain(opts.yDomain, "yDomain");
  if (yDomain && logY) throw new RangeError("lineChartSvg: yDomain is not supported with logY");
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
  if (!Number.isFinite(x0) && !(xDomain && yDomain)) {
    throw new RangeError("lineChartSvg: no finite points to draw (every x or y is NaN or ±∞)");
  }
  // a log scale's ticks are powers of ten
  const decades = (lo: number, hi: number) => {
    const [a, b] = [Math.floor(lo), Math.max(Math.ceil(hi), Math.floor(lo) + 1)];
    return Array.from({ length: b - a + 1 }, (_, i) => a + i);
  };
  // fixed domains keep their bounds and the round ticks inside them
  const within = (d: [number, number]) =>
    niceTicks(d[0], d[1]).filter((t) => t >= d[0] && t <= d[1]);
  const xt = xDomain ? within(xDomain) : niceTicks(x0, x1);
  const yt = yDomain ? within(yDomain) : logY ? decades(y0, y1) : niceTicks(y0, y1);
  const [xa, xb] = xDomain ?? [xt[0], xt.at(-1)!], [ya, yb] = yDomain ?? [yt[0], yt.at(-1)!];
  const { width: pw, height: ph } = plotArea(opts);
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
  // with fixed domains, what falls outside is clipped (one id per size: same geometry)
  const clipped = xDomain || yDomain;
  const clipId = `mg-plot-${width}x${height}`;
  if (clipped) {
    out.push(
      `<clipPath id="${clipId}"><rect x="${MARGIN.left}" y="${MARGIN.top}" width="${pw}" height="${ph}"/></clipPath>`,
      `<g clip-path="url(#${clipId})">`,
    );
  }
  series.forEach((s, k) => {
    const color = colorOf(s, k);
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
      if (s.style === "points" || run.length === 1) {
        const radius = s.style === "points" ? 5 : 3;
        for (const i of run) {
          out.push(
            `<circle cx="${r(px(s.x[i]))}" cy="${r(py(s.y[i]))}" r="${radius}" fill="${color}"/>`,
          );
        }
        continue;
      }
      const pts = run.map((i) => `${r(px(s.x[i]))},${r(py(s.y[i]))}`).join(" ");
      const dash = s.style === "dashed" ? ` stroke-dasharray="6 4"` : "";
      out.push(
        `<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`,
      );
    }
  });
  if (clipped) out.push(`</g>`);
  if (opts.legend === false) {
    out.push(`</svg>`);
    return out.join("\n") + "\n";
  }
  // legend, top right inside the plot, on a translucent card so lines under it stay visible
  const lx = MARGIN.left + pw - 12;
  const longest = Math.max(...series.map((s) => s.name.length));
  const cardWidth = 40 + longest * 6.5;
  out.push(
    `<rect x="${r(lx - cardWidth)}" y="${MARGIN.top + 4}" width="${r(cardWidth + 8)}" ` +
      `height="${series.length * 18 + 6}" fill="white" fill-opacity="0.8"/>`,
  );
  series.forEach((s, k) => {
    const y = MARGIN.top + 16 + k * 18;
    const color = colorOf(s, k);
    out.push(
      s.style === "points"
        ? `<circle cx="${lx - 12}" cy="${y - 4}" r="5" fill="${color}"/>`
        : `<line x1="${lx - 24}" y1="${y - 4}" x2="${lx}" y2="${y - 4}" stroke="${color}" ` +
          `stroke-width="2"${s.style === "dashed" ? ` stroke-dasharray="6 4"` : ""}/>`,
      `<text x="${lx - 30}" y="${y}" text-anchor="end">${escapeXml(s.name)}</text>`,
    );
  });
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}

/** A series' colour: its own, else the palette's k-th. */
function colorOf(s: Series, k: number): string {
  return typeof s.color === "string" ? escapeXml(s.color) : COLORS[k % COLORS.length];
}

/** y ± band at point i, kept positive on a log scale. */
function bandEdge(s: Series, i: number, sign: 1 | -1, logY: boolean): number {
  const b = s.band![i];
  const v = s.y[i] + sign * (Number.isFinite(b) ? b : 0);
  return logY && v <= 0 ? s.y[i] : v;
}
