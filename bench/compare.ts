/**
 * `deno task bench:compare`: compare a bench record (the newest in bench/results/ by default)
 * with the committed baseline. Figures are compared as ratios to the calibration workload timed in the same
 * run, so a busier or slower machine does not read as a regression. Exits 1 when any figure
 * is worse than the baseline by more than the tolerance.
 */
import { exitWithUsage, numberOption, parseCommandLine } from "../core/command_line.ts";
import type { BenchRecord } from "./run.ts";

const USAGE =
  `usage: deno task bench:compare [record.json] [--baseline bench/baseline.json] [--tolerance 0.35]

  record.json  the record to check (default: the newest in bench/results/)
  --tolerance  the fraction a calibrated figure may be worse than the baseline by`;

const { values, positionals } = parseCommandLine(USAGE, {
  options: {
    baseline: { type: "string", default: "bench/baseline.json" },
    tolerance: { type: "string", default: "0.35" },
  },
  allowPositionals: true,
});

// options first: a mistyped tolerance is reported before any file is read
const tol = numberOption("--tolerance", values.tolerance, USAGE, { min: 0 });

async function newestRecord(): Promise<string> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir("bench/results")) {
      if (e.name.endsWith(".json")) names.push(e.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  if (!names.length) {
    exitWithUsage("no records in bench/results/: run `deno task bench` first", USAGE);
  }
  return `bench/results/${names.sort().at(-1)}`;
}

async function readRecord(path: string): Promise<BenchRecord> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    exitWithUsage(`cannot read the record ${path}: ${e instanceof Error ? e.message : e}`, USAGE);
  }
}

const current = await readRecord(positionals[0] ?? await newestRecord());
const baseline = await readRecord(values.baseline);
if (current.adapter !== baseline.adapter) {
  console.log(
    `note: adapters differ (baseline "${baseline.adapter}", now "${current.adapter}"); ratios still compare, loosely`,
  );
}
let regressions = 0;
console.log(`| benchmark | baseline | now | change (calibrated) |\n|---|---:|---:|---:|`);
for (const f of current.figures) {
  const b = baseline.figures.find((x) => x.name === f.name);
  if (!b) {
    console.log(`| ${f.name} | — | ${f.value.toPrecision(4)} ${f.unit} | new |`);
    continue;
  }
  // > 1 means better than baseline
  const better = f.higherIsBetter
    ? f.perCalibration / b.perCalibration
    : b.perCalibration / f.perCalibration;
  const bad = better < 1 - tol;
  if (bad) regressions++;
  console.log(
    `| ${f.name} | ${b.value.toPrecision(4)} ${b.unit} | ${f.value.toPrecision(4)} ${f.unit} | ` +
      `${((better - 1) * 100).toFixed(0)}%${bad ? " REGRESSION" : ""} |`,
  );
}
console.log(
  regressions
    ? `${regressions} regression(s) beyond ${tol * 100}%`
    : `no regression beyond ${tol * 100}%`,
);
Deno.exit(regressions ? 1 : 0);
