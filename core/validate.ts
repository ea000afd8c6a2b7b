/**
 * Runtime checks of user options: types are no check for callers who run without type
 * checking or from JavaScript, so constructors validate names, numbers and ranges here and
 * say which option is wrong and what it accepts.
 */

/** The options object itself: an object (not null, an array or a number). */
export function checkOptions(
  opts: unknown,
  where: string,
  known?: readonly string[],
): Record<string, unknown> {
  if (opts === undefined) return {};
  if (opts === null || typeof opts !== "object" || Array.isArray(opts)) {
    throw new TypeError(`${where}: options must be an object, got ${describe(opts)}`);
  }
  if (known) {
    for (const k of Object.keys(opts)) {
      if (!known.includes(k)) {
        throw new TypeError(
          `${where}: unknown option ${JSON.stringify(k)}; known options: ${known.join(", ")}`,
        );
      }
    }
  }
  return opts as Record<string, unknown>;
}

/** A required option: present (not undefined or null). */
export function required<T>(
  value: T | undefined | null,
  name: string,
  where: string,
  what: string,
): T {
  if (value === undefined || value === null) {
    throw new TypeError(`${where}: the option ${name} is required (${what})`);
  }
  return value;
}

/** A string option that must be one of `choices`. */
export function oneOf<T extends string>(
  value: unknown,
  choices: readonly T[],
  name: string,
  where: string,
): T {
  if (typeof value === "string" && (choices as readonly string[]).includes(value)) {
    return value as T;
  }
  throw new TypeError(
    `${where}: ${name} must be one of ${choices.map((c) => JSON.stringify(c)).join(", ")}, got ${
      describe(value)
    }`,
  );
}

/** How a number option is bounded. */
export interface NumberRule {
  /** Smallest value allowed (inclusive unless `exclusiveMin`). */
  min?: number;
  exclusiveMin?: boolean;
  /** Largest value allowed (inclusive unless `exclusiveMax`). */
  max?: number;
  exclusiveMax?: boolean;
  /** Whole numbers only. */
  integer?: boolean;
}

/** A finite number within `rule` (NaN and ±Infinity are refused). */
export function checkNumber(
  value: unknown,
  name: string,
  where: string,
  rule: NumberRule = {},
): number {
  const bounds = [
    rule.min === undefined ? "" : `${rule.exclusiveMin ? ">" : "≥"} ${rule.min}`,
    rule.max === undefined ? "" : `${rule.exclusiveMax ? "<" : "≤"} ${rule.max}`,
  ].filter(Boolean).join(" and ");
  const kind = rule.integer ? "an integer" : "a finite number";
  const bad = typeof value !== "number" || !Number.isFinite(value) ||
    (rule.integer && !Number.isInteger(value)) ||
    (rule.min !== undefined && (rule.exclusiveMin ? value <= rule.min : value < rule.min)) ||
    (rule.max !== undefined && (rule.exclusiveMax ? value >= rule.max : value > rule.max));
  if (bad) {
    throw new RangeError(
      `${where}: ${name} must be ${kind}${bounds ? ` ${bounds}` : ""}, got ${describe(value)}`,
    );
  }
  return value as number;
}

/** A count option (an integer ≥ 1), `fallback` when it is undefined. */
export function checkCount(value: unknown, fallback: number, name: string, where: string): number {
  return checkNumber(value ?? fallback, name, where, { min: 1, integer: true });
}

/** A boolean option. */
export function checkBoolean(value: unknown, name: string, where: string): boolean {
  if (typeof value !== "boolean") {
    throw new TypeError(`${where}: ${name} must be true or false, got ${describe(value)}`);
  }
  return value;
}

/** A function option (a model's `init`, a callback). */
export function checkFunction(value: unknown, name: string, where: string): void {
  if (typeof value !== "function") {
    throw new TypeError(`${where}: ${name} must be a function, got ${describe(value)}`);
  }
}

/** Messages quote at most this much of a value (a thousand keys or tracers would bury the error). */
const MAX_QUOTED = 200;

/** `text` cut to `MAX_QUOTED` characters, saying how much was left out. */
export function brief(text: string): string {
  return text.length <= MAX_QUOTED
    ? text
    : `${text.slice(0, MAX_QUOTED)}… (${text.length - MAX_QUOTED} more characters)`;
}

/** A value as a message shows it: strings quoted, numbers as written, other things by type. */
export function describe(v: unknown): string {
  if (typeof v === "string") return brief(JSON.stringify(v));
  if (typeof v === "number" || typeof v === "boolean" || v === null || v === undefined) {
    return String(v);
  }
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return `a ${typeof v}`;
}
