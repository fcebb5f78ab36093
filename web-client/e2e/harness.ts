// Real parts for the end-to-end test: the room-server binary in demo mode serving the built
// client, Debian's Chromium driven by playwright-core, and a TCP relay that can cut a
// browser's connections the way a network drop does.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { homedir, tmpdir } from "node:os";
import { createHash, createHmac, randomBytes } from "node:crypto";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { type Browser, type BrowserContext, type Locator, type Page, chromium } from "playwright-core";
import { t } from "../src/i18n";

const here = path.dirname(fileURLToPath(import.meta.url));
export const clientRoot = path.resolve(here, "..");
export const artifacts = process.env.E2E_ARTIFACTS ?? path.join(clientRoot, "e2e-artifacts");

/** Waits shorter than this never decide a test; they only bound how long a failure takes. */
export const WAIT = 20_000;

/** The build folder the scripts use for this checkout (scripts/test). */
function scriptsTargetDir(): string {
  const key = createHash("sha256").update(`${realpathSync(path.join(clientRoot, ".."))}\n`).digest("hex").slice(0, 12);
  return path.join(homedir(), ".cache", "live-lecture", `target-${key}`);
}

export function serverBinary(): string {
  const candidates = [
    process.env.ROOM_SERVER_BIN,
    path.join(process.env.CARGO_TARGET_DIR ?? scriptsTargetDir(), "debug", "room-server"),
  ].filter((p): p is string => Boolean(p));
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      `no room-server binary (looked at ${candidates.join(", ")}): build it with \`cargo build -p room-server\` and set ROOM_SERVER_BIN`,
    );
  }
  return found;
}

export interface Server {
  url: string;
  port: number;
  /** The portal's key for the integration API. */
  apiKey: string;
  stop: () => Promise<void>;
}

/** Starts `room-server --demo` on a free loopback port, serving the built client; with a
 * portal's sign-in address when given (`portal_sign_in_url` in a config file), `config`
 * (more of the config file's TOML: a ticket secret, raised limits) and `env` (more of its
 * environment: a shifted clock) when given. */
export async function startServer(
  options: {
    portalSignInUrl?: string;
    config?: string;
    demo?: boolean;
    databaseUrl?: string;
    apiKey?: string;
    env?: Record<string, string>;
  } = {},
): Promise<Server> {
  const dist = path.join(clientRoot, "dist");
  if (!existsSync(path.join(dist, "index.html"))) throw new Error("web-client/dist is missing: run `npm run build` first");
  const work = mkdtempSync(path.join(tmpdir(), "room-e2e-"));
  const apiKey = options.apiKey ?? randomBytes(32).toString("hex");
  const config = path.join(work, "room.toml");
  // A short drain on SIGTERM: the tests do not wait the production window. Its keys go in the
  // `[limits]` table, which a caller's `config` may open too (a table is opened only once).
  const drain = "drain_window_ms = 100\ndrain_spread_ms = 200\n";
  const extra = options.config ?? "";
  const limits = /^\[limits\][ \t]*$/m;
  writeFileSync(
    config,
    (options.portalSignInUrl ? `portal_sign_in_url = ${JSON.stringify(options.portalSignInUrl)}\n` : "") +
      (limits.test(extra) ? extra.replace(limits, `[limits]\n${drain}`) : `${extra}\n[limits]\n${drain}`),
  );
  const child: ChildProcess = spawn(
    serverBinary(),
    [
      "--config",
      config,
      ...(options.demo === false ? [] : ["--demo"]),
      "--listen",
      "127.0.0.1:0",
      "--web-root",
      dist,
      "--database-url",
      options.databaseUrl ?? `sqlite://${work}/demo.db`,
      "--integration-api-key",
      apiKey,
    ],
    { cwd: work, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, RUST_LOG: "info", ...options.env } },
  );
  const lines = createInterface({ input: child.stderr! });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("room-server did not log `listening` in time")), 60_000);
    const seen: string[] = [];
    child.once("exit", (code) => reject(new Error(`room-server exited early with ${code}:\n${seen.join("\n")}`)));
    lines.on("line", (line) => {
      if (seen.push(line) > 20) seen.shift();
      if (process.env.E2E_SERVER_LOG) console.error(`[server] ${line}`);
      const m = /listening addr=127\.0\.0\.1:(\d+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    apiKey,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/** An identity token for a demo person, from the demo sign-in API (as the portal would issue). */
export async function demoToken(server: Server, user: string): Promise<string> {
  const response = await fetch(`${server.url}/api/v1/demo/sign-in`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user }),
  });
  if (!response.ok) throw new Error(`demo sign-in of ${user}: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { token: string }).token;
}

/**
 * The portal's sign-in page, played on loopback as docs/portal-sign-in.md asks: it takes
 * `state` and `return_to`, checks that `return_to` is on the rooms' own origin (never sends a
 * token elsewhere), signs `user` in (a real token from the demo node) and sends the browser
 * back with `#token=…&state=…`.
 */
export class FakePortal {
  private server = http.createServer((req, res) => void this.answer(req, res));
  /** The rooms' node, once it runs (it needs this portal's address to start). */
  rooms: Server | null = null;
  /** Who signs in here. */
  user = "demo-taro";
  /** The address the last sign-in was answered with. */
  lastAnswer: string | null = null;
  url = "";

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
    return this.url;
  }

  private async answer(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const asked = new URL(req.url ?? "/", this.url);
    const state = asked.searchParams.get("state");
    const returnTo = asked.searchParams.get("return_to");
    if (asked.pathname !== "/sign-in" || !this.rooms || !state || !returnTo || new URL(returnTo).origin !== this.rooms.url) {
      res.writeHead(400, { "content-type": "text/plain" }).end("not a sign-in this portal answers");
      return;
    }
    const token = await demoToken(this.rooms, this.user);
    const back = new URL(returnTo);
    back.hash = new URLSearchParams({ token, state }).toString();
    this.lastAnswer = back.toString();
    res.writeHead(302, { location: this.lastAnswer, "cache-control": "no-store" }).end();
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A TCP relay in front of the server; `cut()` drops every connection and refuses new ones until `restore()`. */
export class Relay {
  private server = net.createServer((client) => this.accept(client));
  private sockets = new Set<net.Socket>();
  private down = false;
  port = 0;

  constructor(private readonly target: number) {}

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
    return `http://127.0.0.1:${this.port}`;
  }

  private accept(client: net.Socket): void {
    if (this.down) {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.target, "127.0.0.1");
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
      s.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  }

  cut(): void {
    this.down = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  restore(): void {
    this.down = false;
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Debian's Chromium, headless, with the flags this closed network needs. */
export async function launchChromium(): Promise<Browser> {
  const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
  if (!existsSync(executablePath)) throw new Error(`no Chromium at ${executablePath}: apt-get install chromium`);
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      // A synthetic camera and microphone, granted without a prompt, and playback with sound
      // without a click: the instructor's broadcast end to end.
      "--use-fake-device-for-media-stream",
      "--use-fake-ui-for-media-stream",
      "--autoplay-policy=no-user-gesture-required",
    ],
  });
}

/** The chat lines the node delivered (they carry their offset) holding `text`: not a copy still
 * waiting to be sent, which the same log shows marked as unsent. */
/**
 * A new page of `context` as the tests watch it: the harness's timeout, uncaught errors and
 * anything the node's Content-Security-Policy blocked collected in `errors`, dialogs accepted.
 */
export async function watchedPage(context: BrowserContext, errors: string[]): Promise<Page> {
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/i.test(m.text())) errors.push(m.text());
  });
  page.on("dialog", (d) => void d.accept());
  return page;
}

export function chatLine(page: Page, text: string): Locator {
  return page.locator('[role="log"] li[data-offset]').filter({ hasText: text });
}

/** Types `text` in the chat and sends it, as a person does (not waiting for it to arrive). */
export async function sendLine(page: Page, text: string): Promise<void> {
  await page.locator("#chat-input").fill(text);
  await page.getByRole("button", { name: t("chat_send"), exact: true }).click();
}

export function artifactPath(name: string): string {
  mkdirSync(artifacts, { recursive: true });
  return path.join(artifacts, name);
}

/** A lecture the portal announces through the integration API: starting `startsInMin` minutes
 * from now, taught by demo-instructor, bought (paid by card) by each of `buyers`. */
export async function portalLecture(
  server: Server,
  id: string,
  lecture: { title: string; startsInMin: number; minutes?: number; rows: number; cols: number; buyers: string[] },
): Promise<void> {
  const startsAt = Date.now() + lecture.startsInMin * 60_000;
  await integration(server, "PUT", `/api/v1/integration/lectures/${id}`, {
    title: lecture.title,
    starts_at: startsAt,
    ends_at: startsAt + (lecture.minutes ?? 90) * 60_000,
    rows: lecture.rows,
    cols: lecture.cols,
    staff: [{ account: "demo-instructor", role: "instructor" }],
  });
  for (const buyer of lecture.buyers) {
    await integration(server, "PUT", `/api/v1/integration/purchases/${id}-${buyer}`, {
      buyer,
      lecture: id,
      quantity: 1,
      modality: "online",
      payment_method: "card",
      status: "paid",
    });
  }
}

/** On the demo's sign-in page: signs in as the demo account `user` and waits for My page. */
export async function signIn(page: Page, user: string): Promise<void> {
  await page.locator(`button[data-user="${user}"]`).click();
  await page.waitForURL(/\/lectures$/);
  await page.locator(".card").first().waitFor();
}

/** From My page, enters the lecture `id` and waits until the room is connected. */
export async function enterFromMyPage(page: Page, id: string): Promise<void> {
  await page.locator(`li[data-lecture="${id}"] button.primary`).click();
  await page.waitForURL(new RegExp(`/room/${id}$`));
  await page.locator('[data-status="connected"]').waitFor({ timeout: WAIT });
}

/** A call to the portal's integration API; throws unless it answers 2xx. */
export async function integration(server: Server, method: string, path: string, body: unknown): Promise<void> {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { "content-type": "application/json", "x-api-key": server.apiKey },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
}

/** A free TCP port on loopback. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** A redis-server of the deployment's own on a free loopback port, without persistence,
 * stopped by its pid; `freeze` and `thaw` stall it (SIGSTOP) and let it go on (SIGCONT). */
export async function startRedis(dir: string): Promise<{ port: number; stop: () => void; freeze: () => void; thaw: () => void }> {
  const port = await freePort();
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], {
    stdio: "ignore",
  });
  const stop = () => {
    if (child.exitCode === null) child.kill();
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.end();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (up) break;
    if (Date.now() > deadline || child.exitCode !== null) {
      stop();
      throw new Error("redis-server did not start");
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port, stop, freeze: () => child.kill("SIGSTOP"), thaw: () => child.kill("SIGCONT") };
}

const PORTAL_SECRET = "e2e-portal-identity-secret-0123456789";

/** A node's `[identity]` table trusting the portal's tokens ([`portalToken`]). */
export const PORTAL_IDENTITY = `[identity]\nalgorithm = "HS256"\nsecret = "${PORTAL_SECRET}"\nissuer = "https://portal.example.jp"\naudience = "lecture-room"\n`;

/** An identity token as the portal signs it (HS256), for a node with [`PORTAL_IDENTITY`]. */
export function portalToken(user: string): string {
  const b64 = (v: object | Buffer) => Buffer.from(v instanceof Buffer ? v : JSON.stringify(v)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const signed = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub: user, iss: "https://portal.example.jp", aud: "lecture-room", iat: now, exp: now + 3600 })}`;
  return `${signed}.${createHmac("sha256", PORTAL_SECRET).update(signed).digest("base64url")}`;
}
