/**
 * The layering, read from the import graph of the package's code (core/, algorithms/, envs/,
 * mod.ts, cli.ts; type-only imports count too):
 * - the device layer (core/backend/) imports nothing from outside it but the leaf helpers
 *   core/dtype.ts and core/shape.ts — no tensors, primitives, tracers, autodiff or fusion;
 * - the only import cycle is the inherent one of the frontend core: primitives' rules are
 *   written with ops, ops bind primitives, and tensors' methods are ops (`bind` in
 *   core/primitive.ts, core/tensor.ts, core/tracer.ts beside them), as in JAX.
 */
import assert from "node:assert/strict";

const root = new URL("../", import.meta.url);

/** Repository-relative paths of the package's TypeScript files. */
function packageFiles(): string[] {
  const out: string[] = ["mod.ts", "cli.ts"];
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(new URL(dir, root))) {
      const path = `${dir}${e.name}`;
      if (e.isDirectory) walk(`${path}/`);
      else if (path.endsWith(".ts")) out.push(path);
    }
  };
  for (const dir of ["core/", "algorithms/", "envs/"]) walk(dir);
  return out;
}

/** Each file's relative imports and re-exports, as repository-relative paths. */
export function importGraph(files: readonly string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const source = Deno.readTextFileSync(new URL(file, root));
    const targets: string[] = [];
    for (const m of source.matchAll(/^(?:import|export)\s[^;]*?\sfrom\s+"(\.{1,2}\/[^"]+)"/gms)) {
      targets.push(new URL(m[1], new URL(file, root)).pathname.slice(root.pathname.length));
    }
    graph.set(file, targets);
  }
  return graph;
}

/** The strongly connected components of more than one file (Tarjan). */
export function cycles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>(), low = new Map<string, number>();
  const stack: string[] = [], onStack = new Set<string>(), out: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) out.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

/** The files the inherent cycle may hold. */
const FRONTEND_CORE = (f: string) =>
  /^core\/(primitives|ops)\/[\w]+\.ts$/.test(f) ||
  ["core/primitive.ts", "core/tensor.ts", "core/tracer.ts"].includes(f);

/** Leaf helpers the device layer may use. */
const SHARED_LEAVES = ["core/dtype.ts", "core/shape.ts"];

Deno.test("cycles() finds exactly the strongly connected components", () => {
  const g = new Map([
    ["a", ["b"]],
    ["b", ["c"]],
    ["c", ["a", "d"]],
    ["d", ["e"]],
    ["e", ["d"]],
    ["f", ["a"]],
  ]);
  assert.deepEqual(cycles(g).sort(), [["a", "b", "c"], ["d", "e"]]);
  assert.deepEqual(cycles(new Map([["x", ["y"]], ["y", []]])), []);
});

Deno.test("the device layer (core/backend/) imports nothing above it", () => {
  const graph = importGraph(packageFiles());
  const leaks: string[] = [];
  for (const [file, targets] of graph) {
    if (!file.startsWith("core/backend/")) continue;
    for (const t of targets) {
      if (!t.startsWith("core/backend/") && !SHARED_LEAVES.includes(t)) {
        leaks.push(`${file} → ${t}`);
      }
    }
  }
  assert.deepEqual(leaks, [], `core/backend/ reaches up:\n  ${leaks.join("\n  ")}`);
  assert.ok(graph.size > 100 && graph.get("mod.ts")!.length > 10, "the graph was read");
});

Deno.test("the only import cycle is primitives ↔ ops (with bind, tensors and tracers)", () => {
  const found = cycles(importGraph(packageFiles()));
  const others = found.map((c) => c.filter((f) => !FRONTEND_CORE(f))).filter((c) => c.length);
  assert.deepEqual(others, [], `cycles outside the frontend core:\n  ${others.join("\n  ")}`);
  assert.ok(found.length <= 1, `${found.length} separate cycles: ${JSON.stringify(found)}`);
  // the frontend core's cycle is there (the test reads what it should)
  assert.ok(
    found[0]?.includes("core/primitives/elementwise.ts") && found[0].includes("core/ops/math.ts"),
  );
});
