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
