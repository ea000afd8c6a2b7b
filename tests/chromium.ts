/**
 * Headless Chromium driven over the DevTools protocol with Deno's built-in WebSocket (no
 * package): start it, open a page, evaluate expressions in it, click, and take screenshots.
 * `tests/web_page_test.ts` uses it to test the web page in a real browser with WebGPU
 * (SwiftShader on machines without a GPU).
 */

/** The Chromium executable: `$CHROMIUM`, else the first of the usual names on PATH; null if none. */
export async function findChromium(): Promise<string | null> {
  const named = Deno.env.get("CHROMIUM");
  if (named) return named;
  for (const name of ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]) {
    for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
      if (!dir) continue;
      try {
        const path = `${dir}/${name}`;
        if ((await Deno.stat(path)).isFile) return path;
      } catch { /* not here */ }
    }
  }
  return null;
}

/** A console message or uncaught exception the page reported. */
export interface PageLog {
  kind: "console" | "exception";
  text: string;
}

interface Pending {
  resolve: (value: any) => void;
  reject: (error: Error) => void;
  method: string;
}

/** One page in a headless Chromium, attached over the DevTools protocol. */
export class ChromiumPage {
  /** What the page printed to its console and the exceptions it threw, in order. */
  readonly logs: PageLog[] = [];
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #closed = false;

  private constructor(
    private readonly process: Deno.ChildProcess,
    private readonly socket: WebSocket,
    private readonly profileDir: string,
    private sessionId = "",
  ) {
    socket.onmessage = (e) => this.#receive(JSON.parse(e.data as string));
    socket.onclose = () => this.#failAll("the DevTools connection closed");
  }

  /**
   * Starts Chromium headless with WebGPU enabled (SwiftShader where there is no GPU), opens
   * `url` in a `width`×`height` viewport, and returns the attached page.
   */
  static async open(
    executable: string,
    url: string,
    opts: { width?: number; height?: number } = {},
  ): Promise<ChromiumPage> {
    const profileDir = await Deno.makeTempDir({ prefix: "metagrad-chromium-" });
    const process = new Deno.Command(executable, {
      args: [
        "--headless=new",
        "--no-sandbox", // CI runs as root, where the sandbox refuses to start
        "--enable-unsafe-webgpu",
        "--enable-unsafe-swiftshader",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        `--user-data-dir=${profileDir}`,
        "--remote-debugging-port=0",
        `--window-size=${opts.width ?? 1000},${opts.height ?? 800}`,
        "about:blank",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const endpoint = await devToolsEndpoint(process);
    const socket = new WebSocket(endpoint);
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error(`could not connect to Chromium at ${endpoint}`));
    });
    const page = new ChromiumPage(process, socket, profileDir);
    const { targetId } = await page.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await page.send("Target.attachToTarget", { targetId, flatten: true });
    page.sessionId = sessionId;
    await page.send("Runtime.enable");
    await page.send("Page.enable");
    await page.send("Emulation.setDeviceMetricsOverride", {
      width: opts.width ?? 1000,
      height: opts.height ?? 800,
      deviceScaleFactor: 1,
      mobile: false,
    });
    await page.send("Page.navigate", { url });
    return page;
  }

  /** Sends a DevTools command to the page (or to the browser before one is attached). */
  send(method: string, params: Record<string, unknown> = {}): Promise<any> {
    if (this.#closed) return Promise.reject(new Error(`${method}: the browser is closed`));
    const id = this.#nextId++;
    const message: Record<string, unknown> = { id, method, params };
    if (this.sessionId) message.sessionId = this.sessionId;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, method });
      this.socket.send(JSON.stringify(message));
    });
  }

  /** Evaluates `expression` in the page (awaiting a promise) and returns its value as JSON. */
  async evaluate<T = unknown>(expression: string): Promise<T> {
    const r = await this.send("Runtime.evaluate", {
      expression,
      awaitPromise: true,
      returnByValue: true,
    });
    if (r.exceptionDetails) {
      const d = r.exceptionDetails;
      throw new Error(`in the page: ${d.exception?.description ?? d.text}`);
    }
    return r.result.value as T;
  }

  /**
   * Evaluates `expression` every `everyMs` until it gives a truthy value, and returns that;
   * throws after `timeoutMs` with the page's last log lines.
   */
  async waitFor<T>(expression: string, timeoutMs: number, everyMs = 250): Promise<T> {
    const until = performance.now() + timeoutMs;
    while (performance.now() < until) {
      const failure = this.logs.find((l) => l.kind === "exception");
      if (failure) throw new Error(`the page threw: ${failure.text}`);
      const v = await this.evaluate<T>(expression);
      if (v) return v;
      await new Promise((r) => setTimeout(r, everyMs));
    }
    const tail = this.logs.slice(-10).map((l) => `  ${l.kind}: ${l.text}`).join("\n");
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${expression}\n${tail}`);
  }

  /** A left click at page coordinates (x, y). */
  async click(x: number, y: number): Promise<void> {
    for (const type of ["mousePressed", "mouseReleased"]) {
      await this.send("Input.dispatchMouseEvent", { type, x, y, button: "left", clickCount: 1 });
    }
  }

  /** A PNG screenshot of the viewport. */
  async screenshot(): Promise<Uint8Array> {
    const { data } = await this.send("Page.captureScreenshot", { format: "png" });
    return Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  }

  /** Closes the browser and removes its profile directory. */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.send("Browser.close").catch(() => {});
    } finally {
      this.#closed = true;
      this.socket.close();
      try {
        this.process.kill("SIGKILL");
      } catch { /* already gone */ }
      await this.process.status;
      await this.process.stderr.cancel().catch(() => {});
      await Deno.remove(this.profileDir, { recursive: true }).catch(() => {});
    }
  }

  #receive(msg: any): void {
    if (msg.id !== undefined) {
      const p = this.#pending.get(msg.id);
      if (!p) return;
      this.#pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
      else p.resolve(msg.result);
      return;
    }
    if (msg.method === "Runtime.consoleAPICalled") {
      const text = (msg.params.args ?? []).map((a: any) => a.value ?? a.description ?? "")
        .join(" ");
      this.logs.push({ kind: "console", text });
    } else if (msg.method === "Runtime.exceptionThrown") {
      const d = msg.params.exceptionDetails;
      this.logs.push({ kind: "exception", text: d.exception?.description ?? d.text });
    }
  }

  #failAll(why: string): void {
    for (const p of this.#pending.values()) p.reject(new Error(`${p.method}: ${why}`));
    this.#pending.clear();
  }
}

/** Reads Chromium's stderr until it prints its DevTools WebSocket address. */
async function devToolsEndpoint(process: Deno.ChildProcess): Promise<string> {
  const reader = process.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const timeout = setTimeout(() => reader.cancel().catch(() => {}), 30_000);
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
      const m = text.match(/DevTools listening on (ws:\/\/\S+)/);
      if (m) {
        // keep draining stderr so Chromium never blocks on a full pipe
        (async () => {
          try {
            while (!(await reader.read()).done) { /* drop */ }
          } catch { /* closed */ }
        })();
        return m[1];
      }
    }
  } finally {
    clearTimeout(timeout);
  }
  throw new Error(`Chromium did not start (its stderr: ${text.slice(-600)})`);
}
