/**
 * `cli.ts train`: a run directory with its config, metrics, checkpoint and summary; a run
 * resumed from its checkpoint — after stopping at a step count or after Ctrl-C — ends with
 * parameters bit-identical to a run that never stopped; clear errors for misuse.
 */
import assert from "node:assert/strict";
import { readMetrics, runSteps, startRun } from "../algorithms/mod.ts";
import { inkPng } from "./image_fixtures.ts";
import { assertSameBits, checkpointBits, CLI, cli, run } from "./cli_helpers.ts";

const SMALL = ["--log-every", "5", "--checkpoint-every", "10", "--eval-every", "20"];
const EVAL = ["--eval-tasks", "10", "--meta-batch", "5"];

Deno.test("train: resumed runs (after a step count, after Ctrl-C) equal an uninterrupted run bit for bit", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const whole = await run(["maml", "--out", `${dir}/whole`, "--steps", "40", ...SMALL, ...EVAL]);
    assert.equal(whole.code, 0, whole.stderr);
    const files = [...Deno.readDirSync(`${dir}/whole`)].map((e) => e.name).sort();
    assert.deepEqual(files, [
      "checkpoint.safetensors",
      "config.json",
      "metrics.jsonl",
      "summary.json",
    ]);
    const rows = await readMetrics(`${dir}/whole`);
    assert.deepEqual(rows.filter((r) => "loss" in r).map((r) => r.step), [
      5,
      10,
      15,
      20,
      25,
      30,
      35,
      40,
    ]);
    assert.deepEqual(rows.filter((r) => "evalLoss" in r).map((r) => r.step), [20, 40]);
    const summary = JSON.parse(await Deno.readTextFile(`${dir}/whole/summary.json`));
    assert.ok(summary.steps === 40 && Number.isFinite(summary.evalLoss), JSON.stringify(summary));
    const reference = await checkpointBits(`${dir}/whole`);
    assert.equal(reference.step, 40);
    // eval: the checkpoint beside a random initialisation, by inner steps, and their SVG
    const scored = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, "eval", `${dir}/whole`, "--tasks", "10", "--inner", "0,1,3"]
        .concat(["--svg", `${dir}/curves.svg`]),
      stdout: "piped",
      stderr: "piped",
    }).output();
    const table = new TextDecoder().decode(scored.stdout);
    assert.equal(scored.code, 0, new TextDecoder().decode(scored.stderr));
    assert.match(
      table,
      /\| maml \(whole, step 40\) \| [\d.]+ ± [\d.]+ \| [\d.]+ ± [\d.]+ \| [\d.]+ ±/,
    );
    assert.match(table, /\| random init \|/);
    const svg = await Deno.readTextFile(`${dir}/curves.svg`);
    assert.equal((svg.match(/<polyline /g) ?? []).length, 2);

    // stopped at 17 steps (checkpointed at its end), resumed to 40
    const part = await run(["maml", "--out", `${dir}/part`, "--steps", "17", ...SMALL, ...EVAL]);
    assert.equal(part.code, 0, part.stderr);
    assert.equal((await checkpointBits(`${dir}/part`)).step, 17);
    const rest = await run(["--resume", `${dir}/part`, "--steps", "40"]);
    assert.equal(rest.code, 0, rest.stderr);
    assertSameBits((await checkpointBits(`${dir}/part`)).bits, reference.bits, "resumed at 17");
    const resumedRows = await readMetrics(`${dir}/part`);
    assert.deepEqual(
      resumedRows.filter((r) => "loss" in r).map((r) => r.step),
      [5, 10, 15, 17, 20, 25, 30, 35, 40],
    );

    // Ctrl-C once the first metrics line is out: a checkpoint at the step reached, exit 130
    const child = cli(["maml", "--out", `${dir}/int`, "--steps", "400", ...SMALL, ...EVAL]);
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!seen.includes("step 5/")) seen += (await reader.read()).value ?? "";
    child.kill("SIGINT");
    for (;;) if ((await reader.read()).done) break;
    const status = await child.status;
    await child.stderr.cancel();
    assert.equal(status.code, 130);
    const stopped = await checkpointBits(`${dir}/int`);
    assert.ok(stopped.step >= 5 && stopped.step < 400, `stopped at ${stopped.step}`);
    // the resumed run's config (400 steps) is cut to 40 to compare with the reference
    const resumed = await run(["--resume", `${dir}/int`, "--steps", "40"]);
    if (stopped.step < 40) {
      assert.equal(resumed.code, 0, resumed.stderr);
      assertSameBits((await checkpointBits(`${dir}/int`)).bits, reference.bits, "after Ctrl-C");
    } else {
      assert.equal(resumed.code, 2);
      assert.match(resumed.stderr, /already; pass a larger --steps/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train ppo: a run stopped by Ctrl-C and resumed equals one that never stopped", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // 10 updates of 4 × 128 steps; the learning rate anneals over the run's configured length
    const args = ["--steps", "5120", "--log-every", "2", "--checkpoint-every", "4"];
    const whole = await run(["ppo", "--out", `${dir}/whole`, ...args]);
    assert.equal(whole.code, 0, whole.stderr);
    const reference = await checkpointBits(`${dir}/whole`);
    assert.equal(reference.step, 10);
    const rows = await readMetrics(`${dir}/whole`);
    assert.deepEqual(rows.filter((r) => "episodeReturn" in r).map((r) => r.step), [2, 4, 6, 8, 10]);
    const child = cli(["ppo", "--out", `${dir}/int`, ...args]);
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!seen.includes("step 2/")) seen += (await reader.read()).value ?? "";
    child.kill("SIGINT");
    for (;;) if ((await reader.read()).done) break;
    await child.stderr.cancel();
    const status = await child.status;
    const stopped = await checkpointBits(`${dir}/int`);
    if (status.code === 130) {
      assert.ok(stopped.step < 10, `stopped at ${stopped.step}`);
      const resumed = await run(["--resume", `${dir}/int`]);
      assert.equal(resumed.code, 0, resumed.stderr);
    } else assert.equal(status.code, 0); // it finished before the signal arrived
    assertSameBits((await checkpointBits(`${dir}/int`)).bits, reference.bits, "ppo resumed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train: misuse gets a clear error, never an overwritten run", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const noOut = await run(["maml", "--steps", "5"]);
    assert.equal(noOut.code, 2);
    assert.match(noOut.stderr, /--out DIR/);
    const badAlg = await run(["mamml", "--out", `${dir}/x`]);
    assert.notEqual(badAlg.code, 0);
    assert.match(
      badAlg.stderr,
      /the algorithm must be one of maml, metasgd, anil, reptile, protonet, matching, ppo, a2c, trpo, sac, rl2, mamlrl, pearl; got "mamml"/,
    );
    const badTask = await run(["rl2", "--task", "sinusoid", "--out", `${dir}/y`]);
    assert.notEqual(badTask.code, 0);
    assert.match(badTask.stderr, /--task must be one of bandit; got "sinusoid"/);
    // an RL² run of two updates: its held-out score is logged and summarised
    const rl = await run(["rl2", "--out", `${dir}/rl2`, "--steps", "2", "--log-every", "1"]);
    assert.equal(rl.code, 0, rl.stderr);
    const summary = JSON.parse(await Deno.readTextFile(`${dir}/rl2/summary.json`));
    assert.ok(summary.heldOutReturn > 2 && summary.heldOutReturn < 10, JSON.stringify(summary));
    const ok = await run(["anil", "--out", `${dir}/a`, "--steps", "3", "--eval-tasks", "5"]);
    assert.equal(ok.code, 0, ok.stderr);
    // a corrupted checkpoint: a clear error, exit 1, and every file of the run as it was
    const path = `${dir}/a/checkpoint.safetensors`;
    const bytes = await Deno.readFile(path);
    await Deno.writeFile(path, bytes.subarray(0, bytes.length >> 1));
    const before = await Promise.all(
      ["checkpoint.safetensors", "metrics.jsonl", "summary.json", "config.json"]
        .map((f) => Deno.readFile(`${dir}/a/${f}`)),
    );
    const corrupt = await run(["--resume", `${dir}/a`, "--steps", "6"]);
    assert.equal(corrupt.code, 1, corrupt.stderr);
    assert.match(corrupt.stderr, /^error: loadCheckpoint\(.*truncated.*nothing was loaded/m);
    assert.ok(!corrupt.stderr.includes("    at "), "no stack trace");
    const after = await Promise.all(
      ["checkpoint.safetensors", "metrics.jsonl", "summary.json", "config.json"]
        .map((f) => Deno.readFile(`${dir}/a/${f}`)),
    );
    after.forEach((a, i) => assert.deepEqual(a, before[i], `file ${i} changed`));
    const again = await run(["maml", "--out", `${dir}/a`, "--steps", "3"]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already holds a run.*--resume/);
    const nothing = await run(["--resume", `${dir}/none`]);
    assert.equal(nothing.code, 2);
    assert.match(nothing.stderr, /no run in .*none.*config\.json/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** An Omniglot-layout folder of `classes` characters × 4 drawings, 28×28 ink patterns. */
async function omniglotFixture(root: string, classes: number): Promise<void> {
  for (let c = 0; c < classes; c++) {
    const dir = `${root}/images_background/Alpha${c % 3}/character${
      String(c + 1).padStart(2, "0")
    }`;
    await Deno.mkdir(dir, { recursive: true });
    for (let d = 0; d < 4; d++) {
      const png = await inkPng(28, 28, (x, y) => (x * (c % 5 + 1) + y * (c % 7 + 2) + d) % 9 < 3);
      await Deno.writeFile(`${dir}/${String(1000 + c)}_0${d + 1}.png`, png);
    }
  }
}

Deno.test("train on omniglot: protonet, matching and first-order MAML runs, resumed bit for bit, scored by eval", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await omniglotFixture(`${dir}/data`, 15); // split 12 / 3 characters
    const args = ["--task", "omniglot", "--data", `${dir}/data`, "--ways", "3", "--queries", "2"]
      .concat(["--eval-tasks", "4", "--log-every", "1", "--checkpoint-every", "2"])
      .concat(["--eval-every", "4"]);
    const env = { METAGRAD_CACHE: `${dir}/cache` };
    const proto = ["protonet", ...args, "--train-ways", "4"];
    const whole = await run([...proto, "--out", `${dir}/p`, "--steps", "4"], env);
    assert.equal(whole.code, 0, whole.stderr);
    const summary = JSON.parse(await Deno.readTextFile(`${dir}/p/summary.json`));
    assert.ok(
      summary.heldOutAccuracy >= 0 && summary.heldOutAccuracy <= 1,
      JSON.stringify(summary),
    );
    const rows = await readMetrics(`${dir}/p`);
    assert.ok(rows.some((r) => r.step === 4 && typeof r.accuracy === "number"), "accuracy logged");
    const part = await run([...proto, "--out", `${dir}/q`, "--steps", "2"], env);
    assert.equal(part.code, 0, part.stderr);
    const rest = await run(["--resume", `${dir}/q`, "--steps", "4"], env);
    assert.equal(rest.code, 0, rest.stderr);
    assertSameBits(
      (await checkpointBits(`${dir}/q`)).bits,
      (await checkpointBits(`${dir}/p`)).bits,
      "protonet resumed at 2",
    );
    const matching = await run([
      "matching",
      ...args,
      "--train-ways",
      "3",
      "--out",
      `${dir}/mt`,
      "--steps",
      "2",
    ], env);
    assert.equal(matching.code, 0, matching.stderr);
    const matchingSummary = JSON.parse(await Deno.readTextFile(`${dir}/mt/summary.json`));
    assert.ok(matchingSummary.heldOutAccuracy >= 0, JSON.stringify(matchingSummary));
    const maml = await run(
      ["maml", ...args, "--first-order", "--meta-batch", "2", "--test-steps", "2"]
        .concat(["--out", `${dir}/m`, "--steps", "2"]),
      env,
    );
    assert.equal(maml.code, 0, maml.stderr);
    const scored = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, "eval", `${dir}/m`, "--tasks", "4", "--inner", "0,2"],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(scored.code, 0, new TextDecoder().decode(scored.stderr));
    const table = new TextDecoder().decode(scored.stdout);
    assert.match(table, /3-way 1-shot accuracy on 4 held-out tasks/);
    assert.match(table, /\| maml \(m, step 2\) \| [\d.]+ ± [\d.]+% \| [\d.]+ ± [\d.]+% \|/);
    // without data: a clear error before anything is written
    const noData = await run(["maml", "--task", "omniglot", "--out", `${dir}/n`], {
      OMNIGLOT_DIR: "",
    });
    assert.equal(noData.code, 2);
    assert.match(noData.stderr, /Omniglot needs its data: pass --data DIR/);
    assert.ok(!(await Deno.stat(`${dir}/n`).then(() => true, () => false)), "no run directory");
    const tooWide = await run(["maml", ...args, "--ways", "5", "--out", `${dir}/w`], env);
    assert.equal(tooWide.code, 2);
    assert.match(tooWide.stderr, /--ways 5 needs that many characters, the held-out split/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train: learned rates, an outer optimiser and its schedule are kept in config and resume bit for bit", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const args = ["maml", "--learned-lr", "perLayer", "--optimizer", "sgd", "--schedule", "cosine"]
      .concat(["--lr", "0.01", "--meta-batch", "4", "--eval-tasks", "4", "--log-every", "2"])
      .concat(["--checkpoint-every", "2", "--eval-every", "30"]);
    const whole = await run([...args, "--steps", "30", "--out", `${dir}/w`]);
    assert.equal(whole.code, 0, whole.stderr);
    const config = JSON.parse(await Deno.readTextFile(`${dir}/w/config.json`));
    assert.deepEqual(
      [config.learnedLr, config.optimizer, config.schedule, config.lr],
      ["perLayer", "sgd", "cosine", 0.01],
    );
    // the same run stopped by Ctrl-C (its schedule spans all 30 steps), then continued
    const child = cli([...args, "--steps", "30", "--out", `${dir}/c`]);
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!seen.includes("step 4/")) seen += (await reader.read()).value ?? "";
    child.kill("SIGINT");
    for (;;) if ((await reader.read()).done) break;
    assert.equal((await child.status).code, 130);
    await child.stderr.cancel();
    const stopped = (await checkpointBits(`${dir}/c`)).step;
    assert.ok(stopped >= 4 && stopped < 30, `stopped at ${stopped}`);
    const resumed = await run(["--resume", `${dir}/c`]);
    assert.equal(resumed.code, 0, resumed.stderr);
    const reference = (await checkpointBits(`${dir}/w`)).bits;
    assertSameBits((await checkpointBits(`${dir}/c`)).bits, reference, "stopped and resumed");
    const wrong = await run(["ppo", "--schedule", "cosine", "--out", `${dir}/x`]);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /--schedule is for the meta- and metric learners/);
    const sgdRates = await run(["metasgd", "--learned-lr", "perLayer", "--out", `${dir}/y`]);
    assert.equal(sgdRates.code, 2);
    assert.match(sgdRates.stderr, /--learned-lr is for maml and anil/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runSteps refuses counts that would never log or save, and a step that is not a function", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await startRun(dir, { what: "count" });
    const base = {
      dir,
      state: 0,
      from: 0,
      to: 3,
      logEvery: 1,
      checkpointEvery: 1,
      step: (s: number) =>
        [s + 1, () => Promise.resolve({ value: s + 1 })] as [
          number,
          () => Promise<Record<string, number>>,
        ],
    };
    for (
      const [bad, message] of [
        [{ logEvery: 0 }, /logEvery must be an integer ≥ 1, got 0/],
        [{ checkpointEvery: NaN }, /checkpointEvery must be an integer ≥ 1, got NaN/],
        [{ evalEvery: 2.5 }, /evalEvery must be an integer ≥ 1, got 2.5/],
        [{ from: 5 }, /0 ≤ from ≤ to, got 5 and 3/],
        [{ step: "go" }, /step must be a function/],
      ] as const
    ) {
      await assert.rejects(() => runSteps({ ...base, ...bad } as never), message as RegExp);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
