/**
 * Command-line parsing for metagrad's scripts (`cli.ts`, the bench and report scripts): `--help`
 * prints the script's usage, and a mistyped option or a bad number ends the script with one
 * line naming it plus the usage (exit status 2) instead of a stack trace from `parseArgs`.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

/** Exit status for a command line the script cannot run with (as in sysexits' EX_USAGE family). */
const USAGE_ERROR = 2;

/** Prints `message` and the usage to stderr and exits with status 2. */
export function exitWithUsage(message: string, usage: string): never {
  console.error(`${message}\n\n${usage}`);
  Deno.exit(USAGE_ERROR);
}

/**
 * `parseArgs` over `Deno.args` (or `config.args`), with `--help`/`-h` and readable errors.
 *
 * @example
 * const { values } = parseCommandLine("usage: deno run -A x.ts [--steps N]", {
 *   options: { steps: { type: "string", default: "100" } },
 * });
 */
export function parseCommandLine<T extends ParseArgsConfig>(
  usage: string,
  config: T,
): ReturnType<typeof parseArgs<T>> {
  const args = config.args ?? Deno.args;
  if (args.includes("--help") || args.includes("-h")) {
    console.log(usage);
    Deno.exit(0);
  }
  try {
    return parseArgs<T>({ ...config, args });
  } catch (e) {
    // node's text goes on about positionals after "--"; the first sentence says what is wrong
    const message = e instanceof Error ? e.message : String(e);
    exitWithUsage(message.split(". To specify a positional")[0], usage);
  }
}

/**
 * The number an option's text spells (`label` names it in the error: "--steps"), or the usage and exit 2 when it is not one (`Number("")`
 * is 0 and `Number("1e3x")` NaN, neither of which a script should run with silently).
 */
export function numberOption(
  label: string,
  text: string,
  usage: string,
  { integer = false, min = -Infinity }: { integer?: boolean; min?: number } = {},
): number {
  const value = text.trim() === "" ? NaN : Number(text);
  const kind = integer ? "an integer" : "a number";
  if (!Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min) {
    const bound = min > -Infinity ? ` ≥ ${min}` : "";
    exitWithUsage(`${label} must be ${kind}${bound}, got ${JSON.stringify(text)}`, usage);
  }
  return value;
}

/** One of `choices` (`label` names the option or argument in the error), or the usage and exit 2. */
export function choiceOption<C extends string>(
  label: string,
  text: string,
  choices: readonly C[],
  usage: string,
): C {
  if (!(choices as readonly string[]).includes(text)) {
    exitWithUsage(
      `${label} must be one of ${choices.join(", ")}; got ${JSON.stringify(text)}`,
      usage,
    );
  }
  return text as C;
}
