/**
 * The scripts' command lines: `--help` prints the usage and exits 0; a mistyped option, a bad
 * number or an unknown choice exits 2 with one line naming it and the usage, never a stack trace.
 * Each case runs the real script in a child process (parsing happens before any adapter is
 * opened, so these need no GPU).
 */
import assert from "node:assert/strict";

const root = new URL("../", import.meta.url);

async function runScript(
  script: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", new URL(script, root).pathname, ...args],
    cwd: root.pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("cli.ts --help prints the commands and exits 0", async () => {
  const r = await runScript("cli.ts", ["--help"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^usage: deno run -A cli\.ts/);
  for (const cmd of ["demo", "kernels", "info"]) assert.match(r.stdout, new RegExp(`\\n  ${cmd} `));
});

Deno.test("command-line mistakes name the option and print the usage, exit 2", async () => {
  const cases: Array<[string, string[], RegExp]> = [
    ["cli.ts", ["--stpes", "3"], /^Unknown option '--stpes'\n\nusage: /],
    ["cli.ts", ["demo", "--steps", "0"], /^--steps must be an integer ≥ 1, got "0"\n\nusage: /],
    ["cli.ts", ["demo", "--steps", ""], /^--steps must be an integer ≥ 1, got ""\n/],
    [
      "cli.ts",
      ["trian"],
      /^the command must be one of demo, train, eval, plot, kernels, info; got "trian"\n/,
    ],
    [
      "bench/sinusoid_report.ts",
      ["--only", "maml2,maml3"],
      /^--only must be one of maml2, maml1, reptile, joint; got "maml3"\n/,
    ],
    ["bench/sinusoid_float64.ts", ["--seeds", "0,x"], /^--seeds must be an integer ≥ 0, got "x"\n/],
    // the tolerance is checked before any record is read (a fresh clone has none)
    ["bench/compare.ts", ["--tolerance=-1"], /^--tolerance must be a number ≥ 0, got "-1"\n/],
    // a record that is not there is named
    [
      "bench/compare.ts",
      ["no/such/record.json"],
      /^cannot read the record no\/such\/record\.json: No such file/,
    ],
  ];
  for (const [script, args, message] of cases) {
    const r = await runScript(script, args);
    assert.equal(r.code, 2, `${script} ${args.join(" ")}: exit ${r.code}\n${r.stderr}`);
    assert.match(r.stderr, message, `${script} ${args.join(" ")}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  }
});
