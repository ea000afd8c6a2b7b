/**
 * `deno task web`: bundles the web page's program (examples/web/app.ts, with metagrad) for
 * browsers and serves the page on http://127.0.0.1:8000/ with `Deno.serve`.
 *
 *   deno task web [--port 8000] [--host 127.0.0.1] [--out DIR]
 *
 * `--out DIR` writes the page (index.html, app.js) to DIR and exits, for any static host.
 * Bundling runs `deno bundle --platform browser` (its first run fetches esbuild from the npm
 * registry). The page needs a browser with WebGPU: Chrome or Edge 113+, Safari 26+, Firefox 141+
 * on Windows.
 */
import { parseArgs } from "node:util";

const here = new URL(".", import.meta.url);

/**
 * The size budget of the page's bundle (app.js, minified): metagrad's core, its MAML and
 * sinusoid tasks, and the page. `tests/web_page_test.ts` holds the bundle to it.
 */
export const WEB_BUNDLE_BUDGET_BYTES = 300_000;

/** Bundles `entry` (a path or file URL) for browsers into `outFile`, minified. */
export async function bundleForBrowser(entry: string | URL, outFile: string): Promise<void> {
  const path = entry instanceof URL ? decodeURIComponent(entry.pathname) : entry;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform",
      "browser",
      "--minify",
      "--no-lock",
      "-o",
      outFile,
      path,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const why = new TextDecoder().decode(out.stderr).trim().slice(-2000);
    throw new Error(`deno bundle ${path} failed (exit ${out.code}): ${why}`);
  }
}

/** Writes the page (index.html and app.js) to `dir`; returns app.js's size in bytes. */
export async function buildWebPage(dir: string): Promise<number> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.copyFile(new URL("index.html", here), `${dir}/index.html`);
  await bundleForBrowser(new URL("app.ts", here), `${dir}/app.js`);
  return (await Deno.stat(`${dir}/app.js`)).size;
}

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  png: "image/png",
  svg: "image/svg+xml",
};

/**
 * Serves the files of `dir` (no listing, nothing outside it) on `hostname:port`; port 0 picks
 * a free one. Returns the server (its `addr` says where).
 */
export function serveDirectory(
  dir: string,
  opts: { port?: number; hostname?: string; quiet?: boolean } = {},
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve(
    {
      port: opts.port ?? 8000,
      hostname: opts.hostname ?? "127.0.0.1",
      onListen: opts.quiet ? () => {} : undefined,
    },
    async (req) => {
      const path = new URL(req.url).pathname;
      const name = path === "/" ? "index.html" : path.slice(1);
      if (!/^[A-Za-z0-9_-]+\.[a-z]+$/.test(name)) return new Response("not found", { status: 404 });
      try {
        const body = await Deno.readFile(`${dir}/${name}`);
        const type = TYPES[name.split(".").pop()!] ?? "application/octet-stream";
        return new Response(body, {
          headers: { "content-type": type, "cache-control": "no-store" },
        });
      } catch {
        return new Response("not found", { status: 404 });
      }
    },
  );
}

if (import.meta.main) {
  const usage = "usage: deno task web [--port 8000] [--host 127.0.0.1] [--out DIR]";
  let args;
  try {
    args = parseArgs({
      args: Deno.args,
      options: {
        port: { type: "string", default: "8000" },
        host: { type: "string", default: "127.0.0.1" },
        out: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }).values;
  } catch (e) {
    console.error(`${(e as Error).message}\n${usage}`);
    Deno.exit(2);
  }
  if (args.help) {
    console.log(usage);
    Deno.exit(0);
  }
  const port = Number(args.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`--port must be an integer in [0, 65535], got "${args.port}"\n${usage}`);
    Deno.exit(2);
  }
  const dir = args.out ?? await Deno.makeTempDir({ prefix: "metagrad-web-" });
  const bytes = await buildWebPage(dir);
  console.log(
    `bundled app.js: ${(bytes / 1000).toFixed(0)} kB (budget ${WEB_BUNDLE_BUDGET_BYTES / 1000} kB)`,
  );
  if (args.out) {
    console.log(`page written to ${dir}`);
  } else {
    const server = serveDirectory(dir, { port, hostname: args.host, quiet: true });
    console.log(`serving the page on http://${args.host}:${server.addr.port}/ (Ctrl-C stops)`);
  }
}
