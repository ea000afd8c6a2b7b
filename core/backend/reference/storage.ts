import { countAlloc, countFree, type Storage } from "../storage.ts";

/**
 * The reference backend keeps every tensor as float64 values (integers and bools exactly),
 * so it doubles as a high-precision oracle for finite differences and kernel tests.
 */
export class RefStorage implements Storage {
  readonly backend = "reference" as const;
  readonly bytes: number;
  #refs = 1;
  constructor(readonly values: Float64Array) {
    this.bytes = values.length * 4;
    countAlloc(this.bytes);
  }
  retain(): void {
    this.#refs++;
  }
  release(): void {
    if (--this.#refs === 0) countFree(this.bytes);
  }
}
