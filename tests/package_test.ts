/**
 * The package as published: every file or folder the README names, and every relative link
 * in it, exists inside the package (not excluded from publishing, not outside the repository).
 * `deno task check` runs the publish dry-run and type-checks every README snippet and doc
 * example; this test covers what those cannot see.
 */
const root = new URL("../", import.meta.url);
const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
const excluded: string[] = config.publish?.exclude ?? [];
const readme = await Deno.readTextFile(new URL("README.md", root));
/** Folders the tools write into (ignored by git): named as outputs, not shipped. */
const outputs = (await Deno.readTextFile(new URL(".gitignore", root))).split("\n")
  .map((l) => l.trim().replace(/^\//, "")).filter(Boolean);

/** Repository paths the README names: in backticks, or as relative link targets. */
function namedPaths(text: string): string[] {
  const paths = new Set<string>();
  const prose = text.replace(/```[\s\S]*?```/g, ""); // code blocks are checked by deno check
  for (const m of prose.matchAll(/`([^`\s]+)`/g)) {
    const p = m[1];
    if (/^(\.\.?\/|core\/|algorithms\/|envs\/|tests\/|bench\/|examples\/|docs\/)/.test(p)) {
      paths.add(p);
    } else if (/^[\w-]+\.(ts|md|json)$/.test(p) && !p.includes("*")) paths.add(p);
  }
  for (const m of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
    if (!/^[a-z]+:/.test(m[1]) && !m[1].startsWith("#")) paths.add(m[1]);
  }
  return [...paths];
}

Deno.test("every path the README names exists inside the published package", async () => {
  const problems: string[] = [];
  for (const p of namedPaths(readme)) {
    if (p.startsWith("../")) {
      problems.push(`${p}: outside the package`);
      continue;
    }
    const clean = p.replace(/^\.\//, "");
    if (outputs.includes(clean)) continue;
    if (excluded.some((e) => clean.startsWith(e.replace(/\/$/, "")))) {
      problems.push(`${p}: excluded from publishing (deno.json publish.exclude)`);
      continue;
    }
    // bare file names the README uses for files it has just located (simplify.ts in core/jit/)
    const candidates = clean.includes("/") ? [clean] : await findByName(clean);
    let found = false;
    for (const c of candidates) {
      try {
        await Deno.stat(new URL(c, root));
        found = true;
      } catch { /* try the next */ }
    }
    if (!found) problems.push(`${p}: no such file or folder in the repository`);
  }
  if (problems.length) throw new Error(`README paths:\n  ${problems.join("\n  ")}`);
});

Deno.test("the package has a license file and declares it", async () => {
  const text = await Deno.readTextFile(new URL("LICENSE", root));
  if (!text.startsWith("MIT License")) throw new Error("LICENSE is not the MIT license text");
  if (config.license !== "MIT") throw new Error(`deno.json license is ${config.license}`);
});

/** Files anywhere in the package with this base name. */
async function findByName(name: string, dir = root, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.name.startsWith(".") || e.name === "node_modules") continue;
    if (e.isDirectory) {
      out.push(...await findByName(name, new URL(`${e.name}/`, dir), `${prefix}${e.name}/`));
    } else if (e.name === name) out.push(`${prefix}${e.name}`);
  }
  return out;
}
