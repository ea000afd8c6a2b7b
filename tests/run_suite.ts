/**
 * `deno task test`: the whole suite in parallel, then the device-loss test on its own (it
 * destroys its device). Arguments, when given, replace the default targets and flags after
 * `deno test --allow-all --parallel`, e.g. `deno task test tests/conv_test.ts --filter groups`.
 * `deno task test:gl` (this script with `--gl`) runs the kernel-family tests on the GL path.
 *
 * Why a launcher and not a plain task: on Linux, wgpu's default instance also opens the GL
 * backend, which loads libglvnd's libEGL. Its exit-time destructor frees per-thread state that
 * a test worker thread still exiting frees too, and the process aborts after every test has
 * passed ("double free or corruption"; measured in a 6-file, one-kernel-each suite: 2 of 50
 * runs with `--parallel`, 1 of 50 without, 0 of 150 on Vulkan alone, where libEGL is never
 * loaded). So when `DENO_WEBGPU_BACKEND` is unset and a Vulkan adapter answers, the suite runs
 * on Vulkan alone; otherwise it leaves the choice to wgpu.
 */

const deno = Deno.execPath();

/** Whether wgpu restricted to Vulkan finds an adapter (in a child, so this process loads no driver). */
async function vulkanAdapterAnswers(): Promise<boolean> {
  const probe = new Deno.Command(deno, {
    args: ["eval", "Deno.exit((await navigator.gpu.requestAdapter()) ? 0 : 1)"],
    env: { DENO_WEBGPU_BACKEND: "vulkan" },
    stdout: "null",
    stderr: "null",
  });
  return (await probe.output()).success;
}

async function testEnv(): Promise<Record<string, string>> {
  if (Deno.build.os !== "linux" || Deno.env.get("DENO_WEBGPU_BACKEND")) return {};
  if (await vulkanAdapterAnswers()) return { DENO_WEBGPU_BACKEND: "vulkan" };
  return {};
}

/** Runs `deno test --allow-all ...args` with the terminal attached; its exit code. */
async function denoTest(args: string[], env: Record<string, string>): Promise<number> {
  const child = new Deno.Command(deno, {
    args: ["test", "--allow-all", ...args],
    env,
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  return (await child.status).code; // 128 + the signal number when a signal ended it
}

/**
 * The kernel-family tests CI also runs on the GL path (`deno task test:gl`): what a user who
 * skips the Vulkan driver gets. GL compiles kernels 10–30× slower, so the suite's other files
 * stay on Vulkan; tests inside these that only force tilings the GL path compiles for minutes
 * report themselves ignored there.
 */
const GL_KERNEL_TESTS = [
  "tests/matmul_test.ts",
  "tests/reduce_test.ts",
  "tests/elementwise_test.ts",
  "tests/conv_test.ts",
  "tests/indexing_test.ts",
  "tests/scan_test.ts",
  "tests/failed_ops_test.ts",
  "tests/loop_cap_test.ts",
  "tests/sort_test.ts",
  "tests/jit_fusion_test.ts",
  "tests/uniform_inputs_test.ts",
  "tests/smoke_test.ts",
];

/**
 * `deno test` on the GL path, its output passed through. libEGL's exit-time destructor can
 * abort the process after every test has run (see above); an abort (SIGABRT, 134) after a
 * summary line with no failures counts as the pass it reported, and says so.
 */
async function glSuite(): Promise<number> {
  const child = new Deno.Command(deno, {
    args: ["test", "--allow-all", "--parallel", ...GL_KERNEL_TESTS],
    env: { DENO_WEBGPU_BACKEND: "gl" },
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let tail = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    await Deno.stdout.write(chunk);
    tail = (tail + decoder.decode(chunk, { stream: true })).slice(-4096);
  }
  const { code } = await child.status;
  // deno's summary: "ok | 53 passed | 0 failed | 2 ignored (19s)"
  // deno-lint-ignore no-control-regex -- colour codes
  const plain = tail.replace(/\x1b\[[0-9;]*m/g, "");
  const passedClean = /(^|\n)ok \| \d+ passed \| 0 failed/.test(plain);
  if (code === 134 && passedClean) {
    console.log("test:gl: every test passed; the process then aborted in libEGL's exit handler");
    return 0;
  }
  return code;
}

if (Deno.args[0] === "--gl") Deno.exit(await glSuite());

const env = await testEnv();
if (env.DENO_WEBGPU_BACKEND) {
  console.log(
    `test suite on DENO_WEBGPU_BACKEND=${env.DENO_WEBGPU_BACKEND} (see tests/run_suite.ts)`,
  );
}
let code: number;
if (Deno.args.length > 0) {
  code = await denoTest(["--parallel", ...Deno.args], env);
} else {
  code = await denoTest(
    ["--parallel", "--ignore=tests/device_lost_test.ts", "tests/"],
    env,
  );
  if (code === 0) code = await denoTest(["tests/device_lost_test.ts"], env);
}
Deno.exit(code);
