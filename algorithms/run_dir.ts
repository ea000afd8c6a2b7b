/**
 * A training run's directory: `config.json` (what was asked for), `metrics.jsonl` (one JSON
 * object per logged step), `checkpoint.safetensors` (the state and the step it belongs to,
 * replaced atomically) and `summary.json` at the end. A run stopped at any point (Ctrl-C, a
 * crash) resumes from its checkpoint: the metrics logged after it are dropped, so the file
 * reads as if the run had never stopped.
 */
import { loadCheckpoint, saveCheckpoint, writeFileAtomic } from "../core/checkpoint.ts";

const CONFIG = "config.json";
const METRICS = "metrics.jsonl";
const CHECKPOINT = "checkpoint.safetensors";
const SUMMARY = "summary.json";

const encode = (text: string) => new TextEncoder().encode(text);

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Start a run in `dir` (created if needed) with `config`; refuses a directory that already
 * holds a run, so a new run never overwrites an old one's checkpoint.
 *
 * @example
 * ```ts
 * import { startRun } from "@metagrad/metagrad/algorithms";
 * await startRun("/tmp/run-a", { algorithm: "maml", steps: 100 });
 * ```
 */
export async function startRun(dir: string, config: Record<string, unknown>): Promise<void> {
  if (await exists(`${dir}/${CONFIG}`)) {
    throw new Error(
      `train: ${dir} already holds a run (${CONFIG}); resume it with --resume ${dir}, or pick ` +
        `another --out`,
    );
  }
  await Deno.mkdir(dir, { recursive: true });
  await writeFileAtomic(`${dir}/${CONFIG}`, encode(JSON.stringify(config, null, 2) + "\n"));
  await writeFileAtomic(`${dir}/${METRICS}`, new Uint8Array());
}

/** A run's config, its checkpointed state (as saved) and the step it belongs to. */
export interface ResumedRun {
  /** The run's `config.json`. */
  config: Record<string, unknown>;
  /** The saved state, or null when the run stopped before its first checkpoint. */
  state: unknown;
  /** The step the state belongs to (0 without a checkpoint). */
  step: number;
}

/**
 * The run in `dir`, to continue: its config and last checkpoint (checked against `like`, the
 * state's structure), with `metrics.jsonl` cut back to the checkpoint's step.
 *
 * @example
 * ```ts
 * import { resumeRun } from "@metagrad/metagrad/algorithms";
 * const run = await resumeRun("/tmp/run-a");
 * console.log(run.step);
 * ```
 */
export async function resumeRun(dir: string, like?: unknown): Promise<ResumedRun> {
  const run = await loadRun(dir, like);
  // rows logged after the checkpoint are redone by the resumed run
  const kept = (await readMetrics(dir)).filter((r) =>
    typeof r.step === "number" && r.step <= run.step
  );
  await writeFileAtomic(
    `${dir}/${METRICS}`,
    encode(kept.map((r) => JSON.stringify(r) + "\n").join("")),
  );
  return run;
}

/**
 * The run in `dir` as it is (its config and last checkpoint), changing nothing: for scoring or
 * plotting a run, finished or not.
 *
 * @example
 * ```ts
 * import { loadRun } from "@metagrad/metagrad/algorithms";
 * const { config, step } = await loadRun("/tmp/run-a");
 * ```
 */
export async function loadRun(dir: string, like?: unknown): Promise<ResumedRun> {
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(await Deno.readTextFile(`${dir}/${CONFIG}`));
  } catch (e) {
    throw new Error(
      `train: no run in ${dir}: no readable ${CONFIG} there (${(e as Error).message})`,
    );
  }
  let state: unknown = null, step = 0;
  if (await exists(`${dir}/${CHECKPOINT}`)) {
    const loaded = await loadCheckpoint(`${dir}/${CHECKPOINT}`, {
      like: like === undefined ? undefined : { state: like, step: 0 },
    });
    state = loaded.tree.state;
    step = loaded.tree.step;
  }
  return { config, state, step };
}

/**
 * Save `state` as the run's checkpoint at `step` (atomically replacing the previous one).
 *
 * @example
 * ```ts
 * import { tensor } from "@metagrad/metagrad";
 * import { saveRunCheckpoint } from "@metagrad/metagrad/algorithms";
 * await saveRunCheckpoint("/tmp/run-a", { w: tensor([1, 2]) }, 100);
 * ```
 */
export async function saveRunCheckpoint(dir: string, state: unknown, step: number): Promise<void> {
  await saveCheckpoint(`${dir}/${CHECKPOINT}`, { state, step });
}

/**
 * Append one row to the run's `metrics.jsonl`.
 *
 * @example
 * ```ts
 * import { logMetrics } from "@metagrad/metagrad/algorithms";
 * await logMetrics("/tmp/run-a", { step: 100, loss: 0.42 });
 * ```
 */
export async function logMetrics(dir: string, row: Record<string, unknown>): Promise<void> {
  await Deno.writeTextFile(`${dir}/${METRICS}`, JSON.stringify(row) + "\n", { append: true });
}

/**
 * The run's metrics rows; a partial last line (a crash while appending) is skipped.
 *
 * @example
 * ```ts
 * import { readMetrics } from "@metagrad/metagrad/algorithms";
 * const rows = await readMetrics("/tmp/run-a");
 * ```
 */
export async function readMetrics(dir: string): Promise<Record<string, unknown>[]> {
  let text = "";
  try {
    text = await Deno.readTextFile(`${dir}/${METRICS}`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return text.split("\n").flatMap((line) => {
    try {
      const row = JSON.parse(line);
      return typeof row === "object" && row !== null ? [row] : [];
    } catch {
      return [];
    }
  });
}

/**
 * Write the run's `summary.json` (atomically).
 *
 * @example
 * ```ts
 * import { writeSummary } from "@metagrad/metagrad/algorithms";
 * await writeSummary("/tmp/run-a", { steps: 100, wallSeconds: 12.5 });
 * ```
 */
export async function writeSummary(dir: string, summary: Record<string, unknown>): Promise<void> {
  await writeFileAtomic(`${dir}/${SUMMARY}`, encode(JSON.stringify(summary, null, 2) + "\n"));
}

/** One training step of `runSteps`: the next state, and a reader of the step's figures. */
export type RunStep<S> = (state: S, step: number) => [S, () => Promise<Record<string, number>>];

/** What `runSteps` does: steps `from + 1` … `to` of a run in `dir`. */
export interface RunSpec<S> {
  /** The run's directory (`startRun`). */
  dir: string;
  /** The state to continue from. */
  state: S;
  /** The step `state` belongs to (0 for a fresh run). */
  from: number;
  /** The last step to run. */
  to: number;
  /** One step. */
  step: RunStep<S>;
  /** Figures logged (and printed) every `logEvery` steps and at the last. */
  logEvery: number;
  /** The state is checkpointed every `checkpointEvery` steps, at the end and on Ctrl-C. */
  checkpointEvery: number;
  /** Held-out figures logged every `evalEvery` steps and at the last. */
  evalEvery?: number;
  /** The held-out figures of a state (logged as a row of their own). */
  evaluate?: (state: S, step: number) => Promise<Record<string, number>>;
}

/** How `runSteps` ended. */
export interface RunEnd<S> {
  /** The last state. */
  state: S;
  /** The step it belongs to. */
  step: number;
  /** Whether Ctrl-C stopped it (its checkpoint is saved). */
  interrupted: boolean;
  /** Seconds this call ran. */
  wallSeconds: number;
}

/**
 * Run steps `from + 1` … `to`, logging figures to `metrics.jsonl` (a progress line on a
 * terminal, plain lines otherwise), checkpointing every `checkpointEvery` steps, at the end,
 * and when Ctrl-C (SIGINT) stops it — then it returns with `interrupted` set.
 *
 * @example
 * ```ts
 * import { tensor, add } from "@metagrad/metagrad";
 * import { runSteps, startRun } from "@metagrad/metagrad/algorithms";
 * await startRun("/tmp/run-b", { what: "count" });
 * const end = await runSteps({
 *   dir: "/tmp/run-b", state: tensor(0), from: 0, to: 10, logEvery: 5, checkpointEvery: 5,
 *   step: (s) => { const n = add(s, 1); return [n, async () => ({ value: await n.item() })]; },
 * });
 * ```
 */
export async function runSteps<S>(spec: RunSpec<S>): Promise<RunEnd<S>> {
  const { dir, to, logEvery, checkpointEvery } = spec;
  // callers from JavaScript pass anything: a 0 or NaN here would silently never log or save
  const counts: [string, unknown][] = [
    ["logEvery", logEvery],
    ["checkpointEvery", checkpointEvery],
    ["evalEvery", spec.evalEvery ?? 1],
  ];
  for (const [name, v] of counts) {
    if (!Number.isInteger(v) || (v as number) < 1) {
      throw new RangeError(`runSteps: ${name} must be an integer ≥ 1, got ${v}`);
    }
  }
  if (!Number.isInteger(spec.from) || !Number.isInteger(to) || spec.from < 0 || to < spec.from) {
    throw new RangeError(
      `runSteps: from and to must be integers with 0 ≤ from ≤ to, got ${spec.from} and ${to}`,
    );
  }
  if (typeof spec.step !== "function") throw new TypeError("runSteps: step must be a function");
  let { state } = spec;
  let step = spec.from, interrupted = false;
  const onInterrupt = () => (interrupted = true);
  Deno.addSignalListener("SIGINT", onInterrupt);
  const tty = Deno.stdout.isTerminal();
  const t0 = performance.now();
  try {
    while (step < to && !interrupted) {
      step++;
      const [next, figures] = spec.step(state, step);
      state = next;
      if (step % logEvery === 0 || step === to) {
        const row = await figures();
        const bad = Object.entries(row).find(([, v]) => !Number.isFinite(v));
        if (bad) {
          throw new Error(
            `train: ${bad[0]} is ${bad[1]} at step ${step}: training diverged (lower the ` +
              `learning rates)`,
          );
        }
        const wall = (performance.now() - t0) / 1000;
        const rate = (step - spec.from) / wall;
        await logMetrics(dir, { step, ...row, stepsPerSecond: rate, wallSeconds: wall });
        const shown = Object.entries(row).map(([k, v]) => `${k} ${Number(v.toPrecision(5))}`);
        const line = `step ${step}/${to}  ${shown.join("  ")}  ${rate.toFixed(1)} steps/s  ETA ${
          ((to - step) / rate).toFixed(0)
        } s`;
        if (tty) Deno.stdout.writeSync(new TextEncoder().encode(`\r${line}   `));
        else console.log(line);
      }
      if (spec.evaluate && (step % (spec.evalEvery ?? to) === 0 || step === to)) {
        await logMetrics(dir, { step, ...await spec.evaluate(state, step) });
      }
      if (step % checkpointEvery === 0) await saveRunCheckpoint(dir, state, step);
      // let a Ctrl-C reach its listener (signals arrive between tasks, not microtasks)
      else if (step % 10 === 0) await new Promise((r) => setTimeout(r, 0));
    }
    await saveRunCheckpoint(dir, state, step);
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
  }
  if (tty) console.log();
  return { state, step, interrupted, wallSeconds: (performance.now() - t0) / 1000 };
}
