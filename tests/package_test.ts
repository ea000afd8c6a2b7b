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
/** The documents beside the README, each checked as the README is. */
const docs = [...Deno.readDirSync(new URL("docs/", root))]
  .filter((e) => e.name.endsWith(".md"))
  .map((e) => ({
    name: `docs/${e.name}`,
    text: Deno.readTextFileSync(new URL(`docs/${e.name}`, root)),
  }));
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

/** Problems with the paths `text` names (relative to `base`, a folder of the package). */
async function pathProblems(text: string, base: string): Promise<string[]> {
  const problems: string[] = [];
  for (const p of namedPaths(text)) {
    if (p.startsWith("../") && base === "") {
      problems.push(`${p}: outside the package`);
      continue;
    }
    // a link in docs/ is relative to docs/; paths in backticks name repository paths
    const clean = p.startsWith("./") || p.startsWith("../")
      ? new URL(p, new URL(base, root)).pathname.slice(new URL(root).pathname.length)
      : p;
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
  return problems;
}

Deno.test("every path the README and docs/ name exists inside the published package", async () => {
  const problems = (await pathProblems(readme, "")).map((p) => `README.md: ${p}`);
  for (const d of docs) {
    problems.push(...(await pathProblems(d.text, "docs/")).map((p) => `${d.name}: ${p}`));
  }
  if (problems.length) throw new Error(`paths:\n  ${problems.join("\n  ")}`);
});

Deno.test("README and docs/ read as documents: no links out of the package, no work log", () => {
  for (const { name, text } of [{ name: "README.md", text: readme }, ...docs]) {
    const prose = text.replace(/```[\s\S]*?```/g, "");
    const outside = [...prose.matchAll(/\]\((https?:[^)]*)\)/g)].map((m) => m[1]);
    if (outside.length) throw new Error(`${name} links outside the package: ${outside.join(", ")}`);
    const log = prose.match(/\b(issue #?\d+|#\d+\b|\w+th session|this session)/i);
    if (log) throw new Error(`${name} reads like a work log: "${log[0]}"`);
  }
  for (
    const section of ["## Install", "## Two commands", "## A tour for JAX users", "## Algorithms"]
  ) {
    if (!readme.includes(section)) throw new Error(`README.md lacks its "${section}" section`);
  }
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
