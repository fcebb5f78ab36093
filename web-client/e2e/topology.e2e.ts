// deploy/'s topology run as processes on loopback, from deploy/'s own files: nginx with
// deploy/nginx.conf, three room nodes with deploy/room.toml and compose.yaml's environment,
// Redis with compose's persistence flags, PostgreSQL, coturn with deploy/turnserver.conf and
// Prometheus with deploy/observability/prometheus.yml (and its alert rules). Only ports,
// addresses, paths and the drain's length are substituted. Chromium goes through nginx: the
// instructor broadcasts a fake camera, learners sit and chat, one learner's browser may only
// relay through coturn; then every node is drained and restarted in turn while the lecture goes
// on, and Prometheus is asked what it scraped.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { t } from "../src/i18n";
import { WAIT, artifactPath, chatLine, clientRoot, enterFromMyPage, freePort, launchChromium, sendLine, serverBinary } from "./harness";

const deploy = path.resolve(clientRoot, "..", "deploy");
const work = mkdtempSync(path.join(tmpdir(), "room-topology-"));
// nginx's workers (and PostgreSQL, when run as root) are other users: they write in here too.
chmodSync(work, 0o777);
const processes: { name: string; child: ChildProcess; log: string }[] = [];
const pageErrors: string[] = [];
const contexts: BrowserContext[] = [];
const pages: Page[] = [];
let browser: Browser;

/** Starts a process whose output goes to a log file in the work folder. */
function start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const log = path.join(work, `${name}.log`);
  const out = openSync(log, "a");
  const child = spawn(command, args, { cwd: work, stdio: ["ignore", out, out], env: { ...process.env, ...env } });
  processes.push({ name, child, log });
  return child;
}

async function stop(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill(signal);
  await exited;
}

/** Waits until `check` holds, polling; fails with `what` after `timeout`. */
async function until(what: string, check: () => Promise<boolean> | boolean, timeout = WAIT): Promise<void> {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await Promise.resolve(check()).catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });

const status = async (url: string) => (await fetch(url, { signal: AbortSignal.timeout(2_000) })).status;

/** A YAML file as JSON, read by Python's yaml module (scripts/test installs it). */
function yaml(file: string): any {
  const done = spawnSync("python3", ["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))", file], {
    encoding: "utf8",
  });
  if (done.status !== 0) throw new Error(`cannot read ${file}: ${done.stderr}`);
  return JSON.parse(done.stdout);
}

/** Replaces `from` in `text`, failing when deploy/'s file no longer has it (the test would
 * silently stop exercising it). */
function substitute(text: string, from: string | RegExp, to: string, file: string): string {
  const found = typeof from === "string" ? text.includes(from) : from.test(text);
  if (!found) throw new Error(`${file} no longer has ${from}: update the topology test`);
  return typeof from === "string" ? text.split(from).join(to) : text.replace(from, to);
}

// --- The secrets (deploy/secrets.env.example's names) and the portal's identity ------------------
// The ticket secret is rotated by the rolling restart (docs/operations.md, "Rotating secrets"):
// the nodes start as after its step 2 (the old secret signs, the new one is accepted too, the
// pseudonyms keep to the old one) and each restarts as in step 3 (the new one signs).
const oldTicketSecret = randomBytes(32).toString("hex");
const newTicketSecret = randomBytes(32).toString("hex");
const secrets: Record<string, string> = {
  ROOM_TICKET_SECRET: oldTicketSecret,
  ROOM_TICKET_SECRET_PREVIOUS: newTicketSecret,
  ROOM_PSEUDONYM_SECRET: oldTicketSecret,
  ROOM_TURN_SECRET: randomBytes(32).toString("hex"),
};

/** A ticket secret's key id, as the node derives it (protocol/src/ticket.rs). */
const keyId = (secret: string) => createHmac("sha256", secret).update("key id\0").digest().subarray(0, 6).toString("base64url");

/** The id of the key that signed `ticket` (its payload's `kid`). */
const kidOf = (ticket: string) => (JSON.parse(Buffer.from(ticket.split(".")[1] ?? "", "base64url").toString()) as { kid?: string }).kid;

/** A ticket from the entry gate, through the balancer. */
async function gateTicket(who: string): Promise<string> {
  const r = await fetch(`${balancer}/api/v1/lectures/${LECTURE}/ticket`, {
    method: "POST",
    headers: { authorization: `Bearer ${portalToken(`t-${who}`)}` },
  });
  if (!r.ok) throw new Error(`ticket: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { ticket: string }).ticket;
}
const identity = { secret: randomBytes(32).toString("hex"), issuer: "portal.test", audience: "rooms.test" };
const apiKey = randomBytes(32).toString("hex");

/** The portal's identity token for `sub` (HS256, as [identity] says). */
function portalToken(sub: string): string {
  const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, iss: identity.issuer, aud: identity.audience, iat: now, exp: now + 3600 })}`;
  return `${body}.${createHmac("sha256", identity.secret).update(body).digest("base64url")}`;
}

/** The portal's sign-in page (docs/portal-sign-in.md): it signs in `user` and sends the
 * browser back to the rooms with the token and the page's own state in the fragment. */
const portal = {
  user: "",
  url: "",
  server: http.createServer((req, res) => {
    const asked = new URL(req.url ?? "/", portal.url);
    const state = asked.searchParams.get("state");
    const returnTo = asked.searchParams.get("return_to");
    if (asked.pathname !== "/sign-in" || !state || !returnTo || new URL(returnTo).origin !== balancer) {
      res.writeHead(400).end("not a sign-in this portal answers");
      return;
    }
    const back = new URL(returnTo);
    back.hash = new URLSearchParams({ token: portalToken(portal.user), state }).toString();
    res.writeHead(302, { location: back.toString(), "cache-control": "no-store" }).end();
  }),
};

// --- The topology --------------------------------------------------------------------------------
interface RoomNode {
  name: string;
  port: number;
  metrics: number;
  env: Record<string, string>;
  config: string;
  child: ChildProcess | null;
}
const nodes: RoomNode[] = [];
let balancer = "";
let prometheus = "";
let turnPort = 0;
let redisPort = 0;
let pgUrl = "";

async function startRedis(): Promise<void> {
  redisPort = await freePort();
  const command: string[] = yaml(path.join(deploy, "compose.yaml")).services.redis.command;
  // compose's own flags (persistence), on a loopback port and in the work folder.
  start("redis", command[0]!, [...command.slice(1), "--port", String(redisPort), "--bind", "127.0.0.1", "--dir", work]);
  await until("redis-server to listen", () => listening(redisPort));
}

async function startPostgres(): Promise<void> {
  const pgbin = readdirSync("/usr/lib/postgresql")
    .sort((a, b) => Number(a) - Number(b))
    .map((v) => `/usr/lib/postgresql/${v}/bin`)
    .pop();
  if (!pgbin) throw new Error("PostgreSQL is not installed (scripts/test installs it)");
  const data = path.join(work, "pg");
  mkdirSync(data);
  const root = process.getuid?.() === 0;
  if (root) spawnSync("chown", ["postgres:", data]);
  const as = (cmd: string, args: string[]) => (root ? spawnSync("runuser", ["-u", "postgres", "--", cmd, ...args], { encoding: "utf8" }) : spawnSync(cmd, args, { encoding: "utf8" }));
  // compose's user and database (POSTGRES_USER, POSTGRES_DB).
  const compose = yaml(path.join(deploy, "compose.yaml")).services.postgres.environment;
  const init = as(`${pgbin}/initdb`, ["-D", data, "-A", "trust", "-U", compose.POSTGRES_USER]);
  if (init.status !== 0) throw new Error(`initdb: ${init.stderr}`);
  const port = await freePort();
  const started = as(`${pgbin}/pg_ctl`, ["-D", data, "-l", path.join(data, "server.log"), "-w", "-o", `-p ${port} -k ${data} -c listen_addresses=127.0.0.1 -c fsync=off`, "start"]);
  if (started.status !== 0) throw new Error(`pg_ctl start: ${started.stderr}`);
  const created = as(`${pgbin}/createdb`, ["-h", "127.0.0.1", "-p", String(port), "-U", compose.POSTGRES_USER, compose.POSTGRES_DB]);
  if (created.status !== 0) throw new Error(`createdb: ${created.stderr}`);
  pgUrl = `postgres://${compose.POSTGRES_USER}@127.0.0.1:${port}/${compose.POSTGRES_DB}`;
  stopPostgres = () => void as(`${pgbin}/pg_ctl`, ["-D", data, "-m", "fast", "-w", "stop"]);
}
let stopPostgres = () => {};

async function startTurn(): Promise<void> {
  turnPort = await freePort();
  const file = path.join(deploy, "turnserver.conf");
  let conf = readFileSync(file, "utf8");
  conf = substitute(conf, /^listening-port=\d+$/m, `listening-port=${turnPort}\nlistening-ip=127.0.0.1\nno-tls\nno-dtls\npidfile=${work}/turn.pid\nuserdb=${work}/turndb`, file);
  conf = substitute(conf, /^log-file=stdout$/m, `log-file=${work}/turn-file.log`, file);
  writeFileSync(path.join(work, "turnserver.conf"), conf);
  // The secret on the command line, as compose passes it from secrets.env.
  start("coturn", "turnserver", ["-c", path.join(work, "turnserver.conf"), `--static-auth-secret=${secrets.ROOM_TURN_SECRET}`]);
  await until("turnserver to listen", () => listening(turnPort));
}

async function nodeSettings(name: string, udpRange: string): Promise<RoomNode> {
  const port = await freePort();
  const metrics = await freePort();
  const file = path.join(deploy, "room.toml");
  let toml = readFileSync(file, "utf8");
  toml = substitute(toml, 'listen = "0.0.0.0:8080"', `listen = "127.0.0.1:${port}"`, file);
  toml = substitute(toml, 'metrics_listen = "0.0.0.0:9100"', `metrics_listen = "127.0.0.1:${metrics}"`, file);
  toml = substitute(toml, /^web_root = .*$/m, `web_root = ${JSON.stringify(path.join(clientRoot, "dist"))}`, file);
  toml = substitute(toml, /^allowed_origins = .*$/m, `allowed_origins = ["${balancer}"]`, file);
  // The balancer is on loopback here.
  toml = substitute(toml, /^trusted_proxies = .*$/m, 'trusted_proxies = ["127.0.0.1/32"]', file);
  // A test does not wait the production drain: a second's window and spread.
  toml = substitute(toml, /^drain_window_ms = \d+$/m, "drain_window_ms = 1000", file);
  toml = substitute(toml, /^drain_spread_ms = \d+$/m, "drain_spread_ms = 1000", file);
  toml = substitute(toml, /^shutdown_grace_ms = \d+$/m, "shutdown_grace_ms = 3000", file);
  toml = substitute(toml, /^turn_urls = .*$/m, `turn_urls = ["turn:127.0.0.1:${turnPort}?transport=udp", "turn:127.0.0.1:${turnPort}?transport=tcp"]`, file);
  // What this test adds: the portal (its identity tokens and integration API key) and, since
  // everything is on one machine, candidates at private addresses.
  toml = `integration_api_key = "${apiKey}"\nportal_sign_in_url = "${portal.url}/sign-in"\n${toml}\n[identity]\nalgorithm = "HS256"\nsecret = "${identity.secret}"\nissuer = "${identity.issuer}"\naudience = "${identity.audience}"\n`;
  const config = path.join(work, `${name}.toml`);
  writeFileSync(config, toml);
  // compose's environment for this node, with its addresses substituted.
  const composed: Record<string, string> = yaml(path.join(deploy, "compose.yaml")).services[name].environment;
  const env: Record<string, string> = { ...composed };
  env.ROOM_CONFIG = config;
  env.ROOM_MEDIA_UDP_PORT_RANGE = udpRange;
  env.ROOM_MEDIA_RELAY_URL = substitute(composed.ROOM_MEDIA_RELAY_URL ?? "", `ws://${name}:8080`, `ws://127.0.0.1:${port}`, "compose.yaml");
  Object.assign(env, secrets, { ROOM_DATABASE_URL: pgUrl, ROOM_REDIS_URL: `redis://127.0.0.1:${redisPort}/0` });
  return { name, port, metrics, env, config, child: null };
}

async function startNode(node: RoomNode): Promise<void> {
  node.child = start(node.name, serverBinary(), [], node.env);
  const child = node.child;
  await until(`${node.name} to be ready`, async () => {
    if (child.exitCode !== null) throw new Error(`${node.name} exited with ${child.exitCode}: ${tail(node.name)}`);
    return (await status(`http://127.0.0.1:${node.metrics}/readyz`)) === 200;
  }, 60_000);
}

function tail(name: string): string {
  const log = processes.filter((p) => p.name === name).pop()?.log;
  return log && existsSync(log) ? readFileSync(log, "utf8").split("\n").slice(-20).join("\n") : "";
}

async function startNginx(balancerPort: number): Promise<void> {
  const file = path.join(deploy, "nginx.conf");
  let conf = readFileSync(file, "utf8");
  conf = substitute(conf, /^pid .*$/m, `pid ${work}/nginx.pid;`, file);
  conf = substitute(conf, /client_body_temp_path \S+;/, `client_body_temp_path ${work}/nginx-body;`, file);
  conf = substitute(conf, /proxy_temp_path \S+;/, `proxy_temp_path ${work}/nginx-proxy;`, file);
  for (const [i, node] of nodes.entries()) {
    conf = substitute(conf, `server node${i + 1}:8080 `, `server 127.0.0.1:${node.port} `, file);
  }
  conf = substitute(conf, /listen 80;/, `listen 127.0.0.1:${balancerPort};`, file);
  const out = path.join(work, "nginx.conf");
  writeFileSync(out, conf);
  const nginx = existsSync("/usr/sbin/nginx") ? "/usr/sbin/nginx" : "nginx";
  const args = ["-p", work, "-c", out, "-e", path.join(work, "nginx-error.log"), "-g", "daemon off;"];
  const test = spawnSync(nginx, ["-t", ...args.slice(0, -2)], { encoding: "utf8" });
  if (test.status !== 0) throw new Error(`nginx -t: ${test.stderr}`);
  start("nginx", nginx, args);
  await until("nginx to listen", () => listening(balancerPort));
}

async function startPrometheus(): Promise<void> {
  const port = await freePort();
  const file = path.join(deploy, "observability", "prometheus.yml");
  let conf = readFileSync(file, "utf8");
  conf = substitute(conf, /scrape_interval: \d+s/, "scrape_interval: 1s", file);
  conf = substitute(conf, /evaluation_interval: \d+s/, "evaluation_interval: 1s", file);
  conf = substitute(conf, /- alerts\.yml/, `- ${path.join(deploy, "observability", "alerts.yml")}`, file);
  conf = substitute(conf, '["node1:9100", "node2:9100", "node3:9100"]', JSON.stringify(nodes.map((n) => `127.0.0.1:${n.metrics}`)), file);
  writeFileSync(path.join(work, "prometheus.yml"), conf);
  start("prometheus", "prometheus", [
    `--config.file=${path.join(work, "prometheus.yml")}`,
    `--storage.tsdb.path=${path.join(work, "prometheus-data")}`,
    `--web.listen-address=127.0.0.1:${port}`,
  ]);
  prometheus = `http://127.0.0.1:${port}`;
  await until("prometheus to be ready", async () => (await status(`${prometheus}/-/ready`)) === 200, 60_000);
}

/** An instant query to Prometheus: the value per scraped instance. */
async function promQuery(query: string): Promise<Map<string, number>> {
  const r = await fetch(`${prometheus}/api/v1/query?${new URLSearchParams({ query })}`);
  const body = (await r.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  if (body.status !== "success") throw new Error(`prometheus: ${JSON.stringify(body)}`);
  return new Map(body.data.result.map((s) => [s.metric.instance ?? "", Number(s.value[1])]));
}

/** The portal: accounts, their nicknames, the lecture and the learners' purchases. */
async function integration(method: string, route: string, body: unknown): Promise<void> {
  const r = await fetch(`${balancer}${route}`, {
    method,
    headers: { "content-type": "application/json", "x-api-key": apiKey },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`${method} ${route}: ${r.status} ${await r.text()}`);
}

const people = { instructor: "講師", taro: "たろう", hanako: "はなこ", jiro: "じろう" } as const;
type Who = keyof typeof people;
const LECTURE = "topo";
/** The room's chat allowance (its defaults): a line every 2 s per person after a burst of 5. */
const CHAT_INTERVAL_MS = 2_000;
const CHAT_BURST = 5;

async function seedPortal(): Promise<void> {
  for (const [id, nickname] of Object.entries(people)) {
    await integration("PUT", `/api/v1/integration/accounts/t-${id}`, { kind: "individual" });
    await integration("PUT", `/api/v1/integration/accounts/t-${id}/profile`, { nickname });
  }
  const startsAt = Date.now() + 10 * 60_000;
  await integration("PUT", `/api/v1/integration/lectures/${LECTURE}`, {
    title: "配置の講座 / The deployed lecture",
    starts_at: startsAt,
    ends_at: startsAt + 90 * 60_000,
    rows: 4,
    cols: 6,
    staff: [{ account: "t-instructor", role: "instructor" }],
  });
  for (const who of ["taro", "hanako", "jiro"]) {
    await integration("PUT", `/api/v1/integration/purchases/${LECTURE}-${who}`, {
      buyer: `t-${who}`,
      lecture: LECTURE,
      quantity: 1,
      modality: "online",
      payment_method: "card",
      status: "paid",
    });
  }
}

/** A browser of its own for `who`, signed in through the portal's sign-in page, in the
 * lecture's room; `relayOnly`: its peer connections may only use TURN. */
async function enter(who: Who, relayOnly = false): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  contexts.push(context);
  if (relayOnly) {
    await context.addInitScript(() => {
      const Native = window.RTCPeerConnection;
      const made: RTCPeerConnection[] = [];
      class RelayOnly extends Native {
        constructor(config?: RTCConfiguration) {
          super({ ...(config ?? {}), iceTransportPolicy: "relay" });
          made.push(this);
        }
      }
      window.RTCPeerConnection = RelayOnly;
      (window as unknown as { relayOnly: RTCPeerConnection[] }).relayOnly = made;
    });
  }
  const page = await context.newPage();
  pages.push(page);
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (e) => pageErrors.push(`${who}: ${e.message}`));
  await page.goto(`${balancer}/sign-in`);
  portal.user = `t-${who}`;
  await page.getByTestId("portal-sign-in").click();
  await page.waitForURL(`${balancer}/lectures`);
  await page.locator(".card").first().waitFor();
  await enterFromMyPage(page, LECTURE);
  return page;
}

/** The candidate types of the local side of each selected pair of a relay-only page's peer
 * connections. */
async function relayTypes(page: Page): Promise<string[]> {
  return page.evaluate(async () => {
    const pcs = (window as unknown as { relayOnly: RTCPeerConnection[] }).relayOnly;
    const types: string[] = [];
    for (const pc of pcs) {
      if (pc.connectionState !== "connected") continue;
      const stats = await pc.getStats();
      stats.forEach((s) => {
        if (s.type === "candidate-pair" && s.state === "succeeded" && s.nominated) types.push(stats.get(s.localCandidateId)?.candidateType);
      });
    }
    return types;
  });
}

/** The candidate types of the pairs `page` plays through, once it has any: a loaded browser may
 * report its connection as checking (consent freshness) for a moment while frames still flow. */
async function relayed(page: Page): Promise<string[]> {
  let types: string[] = [];
  await until("a connected pair to report", async () => {
    types = await relayTypes(page);
    return types.length > 0;
  });
  return types;
}

/** Room connections open on `node` now, from its /metrics. */
async function activeConnections(node: RoomNode): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.metrics}/metrics`)).text();
  return Number(/^room_connections_active (\d+)/m.exec(text)?.[1] ?? 0);
}

const frames = async (page: Page) => Number((await page.locator(".video").getAttribute("data-frames-decoded")) ?? 0);

/** The video really plays: decoded frames keep rising. */
async function playing(page: Page, timeout = WAIT): Promise<void> {
  await page.locator('.video[data-media="playing"]').waitFor({ timeout });
  const seen = await frames(page);
  await expect.poll(() => frames(page), { timeout }).toBeGreaterThan(seen);
}

/** The test's chat lines as the node delivered them to `page`, in their order (by offset), each
 * as often as the page holds it. The log draws only the rows in view: it is scrolled through
 * from the top and read a window at a time. */
async function delivered(page: Page): Promise<string[]> {
  const byOffset = await page.locator(".chat-log").evaluate(async (log) => {
    const seen: [number, string][] = [];
    const settle = () => new Promise((r) => setTimeout(() => requestAnimationFrame(() => requestAnimationFrame(r)), 30));
    const read = () => {
      for (const li of log.querySelectorAll("li[data-offset]")) {
        seen.push([Number(li.getAttribute("data-offset")), li.querySelector(".chat-text")?.textContent?.trim() ?? ""]);
      }
    };
    // Each step starts from where the list really is: rows measured on the way may move it
    // (it keeps the row at the top in place), so a step from where it was asked to be could
    // jump over rows never drawn.
    log.scrollTop = 0;
    await settle();
    read();
    for (let steps = 0; steps < 10_000; steps++) {
      const from = log.scrollTop;
      log.scrollTop = from + Math.max(1, Math.floor(log.clientHeight / 2));
      await settle();
      read();
      if (log.scrollTop + log.clientHeight >= log.scrollHeight - 1) break;
    }
    return seen;
  });
  const lines = new Map<number, string>();
  for (const [offset, text] of byOffset) lines.set(offset, text);
  return [...lines.entries()]
    .sort(([a], [b]) => a - b)
    .map(([, text]) => text)
    .filter((text) => text.startsWith("topo-"));
}

beforeAll(async () => {
  const balancerPort = await freePort();
  balancer = `http://127.0.0.1:${balancerPort}`;
  await new Promise<void>((resolve) => portal.server.listen(0, "127.0.0.1", resolve));
  portal.url = `http://127.0.0.1:${(portal.server.address() as net.AddressInfo).port}`;
  await Promise.all([startRedis(), startPostgres(), startTurn()]);
  const base = 42000 + Math.floor(Math.random() * 100) * 60;
  for (const [i, name] of ["node1", "node2", "node3"].entries()) {
    nodes.push(await nodeSettings(name, `${base + i * 20}-${base + i * 20 + 19}`));
  }
  // The first node migrates the database alone; the others then start together.
  await startNode(nodes[0]!);
  await Promise.all(nodes.slice(1).map(startNode));
  await startNginx(balancerPort);
  await startPrometheus();
  browser = await launchChromium();
}, 180_000);

afterEach(async (ctx) => {
  if (ctx.task.result?.state === "fail") {
    for (const [i, page] of pages.entries()) await page.screenshot({ path: artifactPath(`topology-failure-${i}.png`) }).catch(() => {});
    for (const p of processes) console.error(`--- ${p.name} ---\n${tail(p.name)}`);
  }
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  for (const p of [...processes].reverse()) await stop(p.child);
  stopPostgres();
  portal.server.closeAllConnections();
  await new Promise<void>((resolve) => portal.server.close(() => resolve()));
  rmSync(work, { recursive: true, force: true });
}, 60_000);

describe("deploy/'s topology, run as processes", () => {
  let instructor: Page;
  let learners: Record<"taro" | "hanako" | "jiro", Page>;
  const sent: string[] = [];
  let n = 0;
  /** The learners' chat allowance as the room keeps it (GCRA: the theoretical arrival time). */
  let allowance = 0;
  /** Each learner says one more line, within the room's chat allowance: a fast machine goes
   * through the restarts quicker than people may speak, and the room rightly refuses lines
   * said faster. One line of the burst is kept spare: a line sent while its sender was being
   * moved reaches the room later, close to the next. */
  const round = async () => {
    const wait = Math.max(allowance, Date.now()) - (Date.now() + CHAT_INTERVAL_MS * (CHAT_BURST - 2));
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    allowance = Math.max(allowance, Date.now()) + CHAT_INTERVAL_MS;
    for (const [who, page] of Object.entries(learners)) {
      const text = `topo-${++n}-${who}`;
      sent.push(text);
      await sendLine(page, text);
    }
  };

  it("nginx passes a lecture: learners enter, sit and chat, and one who may only relay through coturn plays the video", async () => {
    await seedPortal();
    instructor = await enter("instructor");
    await instructor.getByRole("button", { name: t("media_start") }).click();
    await instructor.locator('.preview[data-sending="yes"]').waitFor();
    await instructor.getByRole("button", { name: t("console_start") }).click();

    learners = { taro: await enter("taro"), hanako: await enter("hanako", true), jiro: await enter("jiro") };
    for (const [i, page] of Object.values(learners).entries()) {
      const grid = page.locator('[role="grid"]');
      await grid.focus();
      for (let k = 0; k < i; k++) await grid.press("ArrowRight");
      await grid.press("Enter");
      await page.getByText(t("your_seat", { seat: t("seat_name", { row: 1, col: i + 1 }) })).waitFor();
    }
    for (const page of Object.values(learners)) await playing(page);
    // Hanako's picture came through coturn: her only peer connection's pair is a relay one.
    expect(new Set(await relayed(learners.hanako))).toEqual(new Set(["relay"]));

    await round();
    for (const page of [instructor, ...Object.values(learners)]) {
      for (const text of sent) await chatLine(page, text).waitFor();
    }
    // The learners are spread over the nodes (least_conn), so the restart below moves them.
    const connections = await Promise.all(nodes.map(activeConnections));
    expect(connections.reduce((a, b) => a + b, 0)).toBe(4);
    await instructor.screenshot({ path: artifactPath("topology-01-console.png") });
    expect(pageErrors).toEqual([]);
  });

  it("a rolling restart (rotating the ticket secret) keeps every learner in the room, in the same seat, loses and repeats no chat line, and the video resumes", async () => {
    expect(kidOf(await gateTicket("taro"))).toBe(keyId(oldTicketSecret));
    let moved = 0;
    for (const node of nodes) {
      // Step 3 of the rotation: the new secret signs, the old one is still accepted.
      Object.assign(node.env, { ROOM_TICKET_SECRET: newTicketSecret, ROOM_TICKET_SECRET_PREVIOUS: oldTicketSecret });
      await round();
      moved += await activeConnections(node);
      // Drained as compose and Kubernetes stop it: SIGTERM, then wait until it has gone. The
      // learners say a line while they are being moved to another node, and again after.
      const child = node.child!;
      const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
      child.kill("SIGTERM");
      await round();
      expect(await exited).toBe(0);
      await round();
      await startNode(node);
      for (const page of [instructor, ...Object.values(learners)]) await page.locator('[data-status="connected"]').waitFor({ timeout: 30_000 });
    }
    // Everyone was on a drained node at least once.
    expect(moved).toBeGreaterThanOrEqual(4);
    // Every node signs with the new secret now.
    for (let i = 0; i < 3; i++) expect(kidOf(await gateTicket("taro"))).toBe(keyId(newTicketSecret));
    for (const [i, page] of Object.values(learners).entries()) {
      await page.getByText(t("your_seat", { seat: t("seat_name", { row: 1, col: i + 1 }) })).waitFor();
    }
    // Every line reached everyone exactly once, and everyone saw the same order, each learner's
    // own lines in the order they were said.
    for (const [name, page] of [["instructor", instructor] as const, ...Object.entries(learners)]) {
      await chatLine(page, sent[sent.length - 1]!).waitFor({ timeout: 30_000 });
      expect(await page.getByText(t("room_error_rate_limited")).count(), `${name}'s page says a line was refused`).toBe(0);
      const lines = await delivered(page);
      expect([...lines].sort(), `the lines ${name}'s page holds`).toEqual([...sent].sort());
      for (const who of Object.keys(learners)) {
        expect(lines.filter((l) => l.endsWith(`-${who}`))).toEqual(sent.filter((l) => l.endsWith(`-${who}`)));
      }
      expect(lines).toEqual(await delivered(instructor));
    }
    for (const page of Object.values(learners)) await playing(page, 30_000);
    // Hanako's new peer connection came through coturn too.
    expect(new Set(await relayed(learners.hanako))).toEqual(new Set(["relay"]));
    await learners.hanako.screenshot({ path: artifactPath("topology-02-after-restart.png") });
    expect(pageErrors).toEqual([]);
  });

  it("Prometheus scraped every node with deploy/'s configuration: connections and deliveries", async () => {
    // Each node's series, once Prometheus has scraped it since it came back.
    const instances = nodes.map((n) => `127.0.0.1:${n.metrics}`);
    await until("Prometheus to have seen connections on every node", async () => {
      const seen = await promQuery("max_over_time(room_connections_active[10m])");
      return instances.every((i) => (seen.get(i) ?? 0) > 0);
    }, 30_000);
    // Deliveries on every node across its restart (increase() counts over the counter's reset).
    const deliveries = await promQuery("increase(room_frames_out_total[10m])");
    for (const i of instances) expect(deliveries.get(i) ?? 0).toBeGreaterThan(0);
    const up = await promQuery("up");
    for (const i of instances) expect(up.get(i)).toBe(1);
    // The alert rules loaded from deploy/observability/alerts.yml.
    const rules = (await (await fetch(`${prometheus}/api/v1/rules`)).json()) as { data: { groups: { rules: unknown[] }[] } };
    expect(rules.data.groups.flatMap((g) => g.rules).length).toBeGreaterThan(0);
  });

  it("the dashboard names only metrics the nodes export", async () => {
    // The names of the samples the nodes export (OpenMetrics: a counter's samples end in
    // `_total`, a histogram's in `_bucket`, `_count`, `_sum`).
    const exported = new Set<string>();
    for (const node of nodes) {
      const text = await (await fetch(`http://127.0.0.1:${node.metrics}/metrics`)).text();
      for (const m of text.matchAll(/^([a-z_]+)[{ ]/gm)) exported.add(m[1]!.replace(/_(bucket|count|sum)$/, ""));
    }
    const dashboard = JSON.parse(readFileSync(path.join(deploy, "observability", "grafana-dashboard.json"), "utf8")) as {
      panels: { targets?: { expr: string }[] }[];
    };
    const named = new Set<string>();
    for (const panel of dashboard.panels) {
      for (const target of panel.targets ?? []) {
        for (const m of target.expr.matchAll(/\b((?:room|media)_[a-z_]+)/g)) named.add(m[1]!.replace(/_(bucket|count|sum)$/, ""));
      }
    }
    expect(named.size).toBeGreaterThan(5);
    expect([...named].filter((m) => !exported.has(m))).toEqual([]);
  });
});
