// The browser benchmark: does the instructor console, and a learner's page, stay smooth while a
// whole class chats? A real room-server in demo mode serving the built client, Debian's
// Chromium driven by playwright-core (the e2e harness's), N learners from Node chatting and
// reacting (learners.ts). Both pages record the gaps between animation frames
// (requestAnimationFrame) and the main thread's long tasks (PerformanceObserver 'longtask')
// while the class chats; the result is printed and, with BENCH_JSON, written as JSON.
//
// Settings (environment): BENCH_LEARNERS (300), BENCH_CHAT_RATE lines/s (20),
// BENCH_REACTION_RATE presses/s (50), BENCH_DURATION seconds (60), BENCH_JSON (a file).
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import os from "node:os";
import type { Browser, Page } from "playwright-core";
import { afterAll, describe, expect, it } from "vitest";
import { type Server, WAIT, artifactPath, launchChromium, serverBinary, startServer } from "../../web-client/e2e/harness";
import { t } from "../../web-client/src/i18n";
import { type LoadLearner, type Sent, drive, enterAll, leaveAll } from "./learners";

const settings = {
  learners: Number(process.env.BENCH_LEARNERS ?? 300),
  chatRate: Number(process.env.BENCH_CHAT_RATE ?? 20),
  reactionRate: Number(process.env.BENCH_REACTION_RATE ?? 50),
  seconds: Number(process.env.BENCH_DURATION ?? 60),
  /** One chat line in this many is a question. */
  questionEvery: 25,
};
const json = process.env.BENCH_JSON;
/** The goal for both pages: a frame at least every 33 ms (30 frames a second) at p95. */
const GOAL_P95_MS = 33;

// Installed before any page script: frame gaps and long tasks, recorded only while `on`.
const RECORDER = `
window.__bench = { on: false, last: 0, gaps: [], longTasks: [] };
const frame = (now) => {
  const b = window.__bench;
  if (b.on) { if (b.last) b.gaps.push(now - b.last); b.last = now; } else b.last = 0;
  requestAnimationFrame(frame);
};
requestAnimationFrame(frame);
new PerformanceObserver((list) => {
  if (!window.__bench.on) return;
  for (const e of list.getEntries()) window.__bench.longTasks.push(e.duration);
}).observe({ type: "longtask" });
`;

interface Figures {
  frames: number;
  frame_gap_ms: { p50: number; p95: number; p99: number; max: number };
  long_tasks: { count: number; total_ms: number; longest_ms: number };
  /** Chat rows the page holds, and of them those in its DOM at the end. */
  chat_rows: number;
  chat_rows_drawn: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const round = (x: number) => Math.round(x * 10) / 10;

async function figures(page: Page): Promise<Figures> {
  const raw = await page.evaluate(() => {
    const b = (window as unknown as { __bench: { gaps: number[]; longTasks: number[] } }).__bench;
    const log = document.querySelector(".chat-log");
    return {
      gaps: b.gaps,
      longTasks: b.longTasks,
      rows: Number(log?.getAttribute("data-rows") ?? 0),
      drawn: document.querySelectorAll(".chat-log li[data-offset]").length,
    };
  });
  const gaps = raw.gaps.slice().sort((a, b) => a - b);
  return {
    frames: gaps.length,
    frame_gap_ms: {
      p50: round(percentile(gaps, 50)),
      p95: round(percentile(gaps, 95)),
      p99: round(percentile(gaps, 99)),
      max: round(gaps[gaps.length - 1] ?? NaN),
    },
    long_tasks: {
      count: raw.longTasks.length,
      total_ms: round(raw.longTasks.reduce((a, b) => a + b, 0)),
      longest_ms: round(Math.max(0, ...raw.longTasks)),
    },
    chat_rows: raw.rows,
    chat_rows_drawn: raw.drawn,
  };
}

let server: Server | undefined;
let browser: Browser | undefined;
let learners: LoadLearner[] = [];

afterAll(async () => {
  leaveAll(learners);
  await browser?.close();
  await server?.stop();
});

async function enter(user: string): Promise<Page> {
  const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addInitScript(RECORDER);
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  await page.goto(`${server!.url}/sign-in`);
  await page.locator(`button[data-user="${user}"]`).click();
  await page.waitForURL(/\/lectures$/);
  await page.locator('li[data-lecture="demo"] button.primary').click();
  await page.waitForURL(/\/room\/demo$/);
  await page.locator('[data-status="connected"]').waitFor();
  return page;
}

describe("the browser benchmark", () => {
  it(`keeps the console and a learner's page smooth while ${settings.learners} learners chat`, async () => {
    const secret = randomBytes(32).toString("hex");
    // Limits raised where a benchmark is not an attack: every learner comes from 127.0.0.1, and
    // one learner's chat rate is not what is measured.
    server = await startServer({
      config: `ticket_secret = "${secret}"
[limits]
max_connections = 100000
connects_per_sec_per_ip = 100000
connect_burst_per_ip = 100000
outbound_queue = 4096
[room]
chat_interval_ms = 1
chat_burst = 1000000
reaction_interval_ms = 1
reaction_burst = 1000000
`,
    });
    browser = await launchChromium();
    const instructor = await enter("demo-instructor");
    const learner = await enter("demo-taro");
    await instructor.getByRole("button", { name: t("console_start") }).click();
    await learner.locator('.video[data-phase="live"]').waitFor();

    const started = Date.now();
    learners = await enterAll({
      bin: serverBinary(),
      secret,
      lecture: "demo",
      host: `127.0.0.1:${server.port}`,
      learners: settings.learners,
    });
    const enteredSecs = (Date.now() - started) / 1000;

    const loadBefore = os.loadavg()[0]!;
    const profilers = profile ? await Promise.all([instructor, learner].map(startProfile)) : [];
    for (const page of [instructor, learner]) await page.evaluate(() => ((window as unknown as { __bench: { on: boolean } }).__bench.on = true));
    const sent: Sent = await drive(learners, settings);
    for (const page of [instructor, learner]) await page.evaluate(() => ((window as unknown as { __bench: { on: boolean } }).__bench.on = false));
    for (const [i, stop] of profilers.entries()) await stop(["instructor", "learner"][i]!);

    const result = {
      profile: "browser",
      at: new Date().toISOString(),
      commit: gitCommit(),
      room_server: serverBinary(),
      chromium: browser.version(),
      settings: {
        learners: settings.learners,
        chat_rate: settings.chatRate,
        reaction_rate: settings.reactionRate,
        duration_secs: settings.seconds,
        question_every: settings.questionEvery,
      },
      // The machine is shared: its load (1-minute average, all processes) when the class
      // started chatting and when it stopped, against its cores.
      machine: { cores: os.cpus().length, load_before: round(loadBefore), load_after: round(os.loadavg()[0]!) },
      entered_secs: round(enteredSecs),
      sent,
      learners_closed: learners.filter((l) => l.closed !== null).length,
      frames_per_learner: Math.round(learners.reduce((a, l) => a + l.frames, 0) / learners.length),
      instructor: await figures(instructor),
      learner: await figures(learner),
      /** Seconds after the load until both pages showed the last line sent (null: not within
       * the bounded wait). */
      caught_up_secs: null as number | null,
      goal_p95_frame_gap_ms: GOAL_P95_MS,
      goal_met: false,
    };
    // Both pages received the class's chat: the last line sent arrives (bounded wait).
    const stopped = Date.now();
    try {
      for (const page of [instructor, learner]) {
        await page.locator(".chat-log li").filter({ hasText: sent.lastText! }).waitFor({ timeout: WAIT });
      }
      result.caught_up_secs = round((Date.now() - stopped) / 1000);
    } catch {
      // Reported as null, and the check below fails.
    }
    await instructor.screenshot({ path: artifactPath("bench-instructor.png") });
    await learner.screenshot({ path: artifactPath("bench-learner.png") });
    result.goal_met = result.instructor.frame_gap_ms.p95 < GOAL_P95_MS && result.learner.frame_gap_ms.p95 < GOAL_P95_MS;
    console.log(JSON.stringify(result, null, 2));
    console.log(
      `browser bench: ${settings.learners} learners, ${settings.chatRate} lines/s, ${settings.seconds} s — ` +
        `instructor p95 frame gap ${result.instructor.frame_gap_ms.p95} ms, long tasks ${result.instructor.long_tasks.total_ms} ms; ` +
        `learner p95 ${result.learner.frame_gap_ms.p95} ms, long tasks ${result.learner.long_tasks.total_ms} ms`,
    );
    if (json) writeFileSync(json, `${JSON.stringify(result, null, 2)}\n`);

    // It worked (a check, not a speed threshold): frames were measured, lines were sent and
    // every learner stayed.
    expect(sent.chats).toBeGreaterThan(0);
    expect(result.caught_up_secs !== null, "both pages showed the last line sent").toBe(true);
    expect(result.learners_closed).toBe(0);
    for (const page of [result.instructor, result.learner]) {
      expect(page.frames).toBeGreaterThan(0);
      expect(Number.isFinite(page.frame_gap_ms.p95)).toBe(true);
      expect(page.chat_rows).toBeGreaterThan(0);
    }
  });
});

/** BENCH_PROFILE=1: a CPU profile of each page during the load (Chrome DevTools' format, in
 * web-client/e2e-artifacts/), and its functions with the most time of their own printed. */
const profile = process.env.BENCH_PROFILE === "1";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}

async function startProfile(page: Page): Promise<(name: string) => Promise<void>> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: 500 });
  await cdp.send("Profiler.start");
  return async (name) => {
    const { profile: p } = (await cdp.send("Profiler.stop")) as unknown as {
      profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
    };
    writeFileSync(artifactPath(`bench-${name}.cpuprofile`), JSON.stringify(p));
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const self = new Map<string, number>();
    p.samples.forEach((id, i) => {
      const f = byId.get(id)!.callFrame;
      const key = `${f.functionName || "(anonymous)"} ${f.url.split("/").pop()}:${f.lineNumber + 1}:${f.columnNumber + 1}`;
      self.set(key, (self.get(key) ?? 0) + (p.timeDeltas[i] ?? 0));
    });
    const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, 25);
    console.log(`${name}: most self time\n${top.map(([k, us]) => `${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`).join("\n")}`);
  };
}

function gitCommit(): string | null {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim();
  } catch {
    return null;
  }
}
