/**
 * `cli.ts train` for every learner it offers beyond the ones `train_cli_test.ts` covers in
 * depth: each runs on its tasks and writes a finite summary; SAC (whose first step explores and
 * whose buffer is part of its state) resumes bit for bit when a run is extended. A file of its
 * own so the suite runs it beside the others (the runs compile ~2 minutes of kernels).
 */
import assert from "node:assert/strict";
import { readMetrics } from "../algorithms/mod.ts";
import { assertSameBits, checkpointBits, run } from "./cli_helpers.ts";

Deno.test("train: every learner runs on its tasks, writes a finite summary, and SAC resumes bit for bit", async () => {
  const dir = await Deno.makeTempDir();
  const quiet = ["--log-every", "1", "--checkpoint-every", "1", "--eval-every", "100"];
  try {
    const runs: Array<[string, string[], string]> = [
      ["reptile", ["--task", "sinusoid", "--steps", "3", "--meta-batch", "3"], "evalLoss"],
      ["a2c", ["--task", "cartpole", "--steps", "160"], "lastEpisodeReturn"],
      ["trpo", ["--task", "navigation", "--steps", "2"], "evalReturn"],
      ["mamlrl", ["--steps", "1", "--meta-batch", "2", "--shots", "2"], "returnAfter"],
      [
        "pearl",
        ["--task", "point-robot-sparse", "--steps", "1", "--meta-batch", "2"],
        "returnPosterior",
      ],
    ];
    // three independent lanes at once: the runs mostly compile kernels, on one core each
    const others = async () => {
      for (const [algorithm, args, field] of runs) {
        const out = `${dir}/${algorithm}-${args[1]}`;
        const r = await run([algorithm, ...args, ...quiet, "--eval-tasks", "4", "--out", out]);
        assert.equal(r.code, 0, `${algorithm} ${args.join(" ")}: ${r.stderr}`);
        const summary = JSON.parse(await Deno.readTextFile(`${out}/summary.json`));
        assert.ok(Number.isFinite(summary[field]), `${algorithm}: ${JSON.stringify(summary)}`);
      }
    };
    // SAC: step 1 explores 1,000 steps, later steps train 500 each; 1,600 = explore + 500 + 100
    const sacArgs = ["sac", "--task", "pendulum", ...quiet, "--eval-tasks", "4"];
    const sacWhole = async () => {
      const whole = await run([...sacArgs, "--steps", "1600", "--out", `${dir}/sac`]);
      assert.equal(whole.code, 0, whole.stderr);
      const rows = await readMetrics(`${dir}/sac`);
      assert.deepEqual(rows.filter((r) => "envSteps" in r).map((r) => r.envSteps), [
        1000,
        1500,
        1600,
      ]);
    };
    const sacExtended = async () => {
      const part = await run([...sacArgs, "--steps", "1500", "--out", `${dir}/sac2`]);
      assert.equal(part.code, 0, part.stderr);
      const rest = await run(["--resume", `${dir}/sac2`, "--steps", "1600"]);
      assert.equal(rest.code, 0, rest.stderr);
    };
    await Promise.all([others(), sacWhole(), sacExtended()]);
    assertSameBits(
      (await checkpointBits(`${dir}/sac2`)).bits,
      (await checkpointBits(`${dir}/sac`)).bits,
      "SAC extended from 1,500 to 1,600 steps",
    );
    const short = await run([...sacArgs, "--steps", "900", "--out", `${dir}/sac3`]);
    assert.equal(short.code, 2);
    assert.match(short.stderr, /sac explores 1000 steps before it learns/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
