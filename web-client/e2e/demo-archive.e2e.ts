// The demo's archived lecture, as ./scripts/run-demo shows it: the node started with the
// script's own arguments (read from the script, so the check follows it), the demo sign-in,
// My page, the Archive button, and the recording playing with its chat, on a laptop and on a
// phone. On the phone (390 × 844, touch) nothing scrolls sideways, the video comes above the
// chat, play, seek and speed are touch targets of at least 44 px and the chat is readable.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { t } from "../src/i18n";
import { WAIT, artifactPath, clientRoot, launchChromium, serverBinary, signIn, watchedPage } from "./harness";

let browser: Browser;
let node: ChildProcess | undefined;
let work: string;
let url: string;
const contexts: BrowserContext[] = [];
const pages: Page[] = [];
const pageErrors: string[] = [];

/** The arguments ./scripts/run-demo gives room-server (what follows `-p room-server --`). */
function runDemoArguments(): string[] {
  const script = readFileSync(path.join(clientRoot, "..", "scripts", "run-demo"), "utf8");
  const m = /-p room-server -- (.*?)\s*"\$@"\s*$/m.exec(script);
  if (!m) throw new Error("scripts/run-demo no longer runs `cargo run … -p room-server -- … \"$@\"`");
  return m[1]!.trim().split(/\s+/);
}

/** Starts the node as ./scripts/run-demo does: from a checkout's root (here a scratch folder
 * holding the built client at the same relative path, so the demo's database lands there), with
 * the script's arguments, plus the one the script passes on (a free loopback port). */
async function startDemoNode(): Promise<string> {
  work = mkdtempSync(path.join(tmpdir(), "run-demo-"));
  mkdirSync(path.join(work, "web-client"));
  symlinkSync(path.join(clientRoot, "dist"), path.join(work, "web-client", "dist"));
  const child = spawn(serverBinary(), [...runDemoArguments(), "--listen", "127.0.0.1:0"], {
    cwd: work,
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, RUST_LOG: "info" },
  });
  node = child;
  const lines = createInterface({ input: child.stderr! });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the demo node did not log `listening` in time")), 60_000);
    const seen: string[] = [];
    child.once("exit", (code) => reject(new Error(`the demo node exited early with ${code}:\n${seen.join("\n")}`)));
    lines.on("line", (line) => {
      if (seen.push(line) > 20) seen.shift();
      const m = /listening addr=127\.0\.0\.1:(\d+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  return `http://127.0.0.1:${port}`;
}

async function open(options: { viewport: { width: number; height: number }; phone?: boolean }): Promise<Page> {
  const context = await browser.newContext({ viewport: options.viewport, isMobile: options.phone ?? false, hasTouch: options.phone ?? false });
  contexts.push(context);
  const page = await watchedPage(context, pageErrors);
  pages.push(page);
  await page.goto(`${url}/sign-in`);
  return page;
}

const camera = (page: Page) => page.locator("video.archive-camera");
const framesDecoded = (page: Page) => camera(page).evaluate((v: HTMLVideoElement) => v.getVideoPlaybackQuality().totalVideoFrames);
const currentMs = (page: Page) => camera(page).evaluate((v: HTMLVideoElement) => v.currentTime * 1000);

/** From My page, the demo archive's button, then the recording playing and its chat appearing. */
async function playsFromMyPage(page: Page, tap: boolean): Promise<void> {
  const button = page.locator('li[data-lecture="demo-archive"]').getByRole("link", { name: t("archive_open") });
  if (tap) await button.tap();
  else await button.click();
  await page.waitForURL(/\/archive\/demo-archive$/);
  await camera(page).waitFor();
  const play = page.getByRole("button", { name: t("archive_play") });
  if (tap) await play.tap();
  else await play.click();
  await expect.poll(() => framesDecoded(page), { timeout: WAIT }).toBeGreaterThan(0);
  const frames = await framesDecoded(page);
  const at = await currentMs(page);
  await expect.poll(() => framesDecoded(page), { timeout: WAIT }).toBeGreaterThan(frames);
  await expect.poll(() => currentMs(page), { timeout: WAIT }).toBeGreaterThan(at + 500);
  // The demo's chat appears as the playhead passes it: at least two lines, from its people.
  await expect
    .poll(() => page.locator(".archive-lines li.archive-line").count(), { timeout: WAIT })
    .toBeGreaterThanOrEqual(2);
}

beforeAll(async () => {
  url = await startDemoNode();
  browser = await launchChromium();
});

afterEach(async (ctx) => {
  if (ctx.task.result?.state === "fail") {
    for (const [i, page] of pages.entries())
      await page.screenshot({ path: artifactPath(`demo-archive-failure-${i}.png`), fullPage: true }).catch(() => {});
  }
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  if (node && node.exitCode === null) {
    const exited = new Promise((r) => node!.once("exit", r));
    node.kill("SIGTERM");
    await exited;
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the demo's archived lecture (./scripts/run-demo)", () => {
  it("plays with its chat from My page on a laptop", async () => {
    const taro = await open({ viewport: { width: 1280, height: 900 } });
    await signIn(taro, "demo-taro");
    await playsFromMyPage(taro, false);
    await taro.screenshot({ path: artifactPath("22-demo-archive.png") });
    expect(pageErrors).toEqual([]);
  });

  it("fits a phone: no sideways scroll, the video above the chat, 44 px touch targets, a readable chat", async () => {
    const hanako = await open({ viewport: { width: 390, height: 844 }, phone: true });
    await hanako.locator('button[data-user="demo-hanako"]').tap();
    await hanako.waitForURL(/\/lectures$/);
    await playsFromMyPage(hanako, true);
    await hanako.screenshot({ path: artifactPath("23-demo-archive-phone.png"), fullPage: true });

    // Nothing wider than the screen: no sideways scrolling.
    const widths = await hanako.evaluate(() => ({ scroll: document.documentElement.scrollWidth, view: window.innerWidth }));
    expect(widths.scroll).toBeLessThanOrEqual(widths.view);
    // The video first, the chat under it, both the screen's width at most.
    const video = (await hanako.locator(".archive-videos").boundingBox())!;
    const chat = (await hanako.locator(".archive-chat").boundingBox())!;
    expect(video.y + video.height).toBeLessThanOrEqual(chat.y);
    for (const box of [video, chat]) {
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width).toBeLessThanOrEqual(390);
    }
    expect(video.width).toBeGreaterThan(300);
    // Play, seek and speed: touch targets of at least 44 × 44 px, inside the screen.
    const targets = {
      play: hanako.locator(".archive-controls button.primary"),
      seek: hanako.locator(".archive-seek input"),
      speed: hanako.getByRole("combobox", { name: t("archive_speed") }),
    };
    for (const [what, target] of Object.entries(targets)) {
      const box = await target.boundingBox();
      expect(box, `${what} is on the page`).not.toBeNull();
      expect([what, box!.width >= 44, box!.height >= 44]).toEqual([what, true, true]);
      expect(box!.x + box!.width, `${what} inside the screen`).toBeLessThanOrEqual(390);
    }
    // The chat is readable: text of 14 px or more, each line within the screen's width.
    const lines = hanako.locator(".archive-lines li.archive-line");
    const sizes = await lines.evaluateAll((lis) => lis.map((li) => parseFloat(getComputedStyle(li.querySelector(".text")!).fontSize)));
    expect(sizes.length).toBeGreaterThan(0);
    expect(sizes.every((px) => px >= 14)).toBe(true);
    const right = await lines.evaluateAll((lis) => Math.max(...lis.map((li) => li.getBoundingClientRect().right)));
    expect(right).toBeLessThanOrEqual(390);
    // The speed control works by touch.
    await targets.speed.selectOption("1.5");
    expect(await camera(hanako).evaluate((v: HTMLVideoElement) => v.playbackRate)).toBe(1.5);
    // Seeking by touch on the bar moves the playhead: a tap near its end.
    const seek = (await targets.seek.boundingBox())!;
    await hanako.touchscreen.tap(seek.x + seek.width * 0.9, seek.y + seek.height / 2);
    const length = Number(await targets.seek.getAttribute("max"));
    await expect.poll(() => currentMs(hanako), { timeout: WAIT }).toBeGreaterThan(length * 0.6);
    expect(pageErrors).toEqual([]);
  });
});
