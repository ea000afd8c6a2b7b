/**
 * The code of a fused elementwise kernel, shared by eager fusion (eager.ts) and jit
 * (core/jit/plan.ts): the values it loads (its leaves, each once, named `v0`, `v1`, …) and a
 * chain of `let` bindings (`e0`, `e1`, …), one per fused operation in dependency order, each
 * the operation's WGSL expression (`Primitive.fusion`) of earlier names. The kernel families
 * (core/backend/webgpu/kernels/) wrap it in loads, an index space and stores.
 */
export class FusedCodeBuilder<Leaf> {
  /** The distinct values the kernel loads, in the order first used. */
  readonly leaves: Leaf[] = [];
  #statements: string[] = [];
  #count = 0;

  /** `same(a, b)`: whether two leaves are one load (the same storage read the same way). */
  constructor(private readonly same: (a: Leaf, b: Leaf) => boolean) {}

  /** The name of leaf `l`'s loaded value (`v<i>`), adding it on first use. */
  leaf(l: Leaf): string {
    let i = this.leaves.findIndex((m) => this.same(m, l));
    if (i < 0) i = this.leaves.push(l) - 1;
    return `v${i}`;
  }

  /**
   * Binds `expr` to the next name and returns it. The names are `e0`, `e1`, …: names taken
   * from the operations (`f16`, `f32`) could shadow WGSL's type names.
   */
  bind(expr: string): string {
    const name = `e${this.#count++}`;
    this.#statements.push(`  let ${name} = ${expr};`);
    return name;
  }

  /** The `let` chain so far, one binding per line. */
  get prelude(): string {
    return this.#statements.join("\n");
  }
}
