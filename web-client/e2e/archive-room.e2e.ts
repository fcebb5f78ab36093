// The archive room end to end, in real Chromium against the real room-server: an instructor
// broadcasts a camera and shares the screen, learners chat, react and are called on, the
// lecture ends and the node makes its archive. Once the portal's date has come, a learner
// watches it: the video plays, the chat appears as the playhead passes each line, a seek shows
// the chat up to that point, the reaction timeline jumps the player. A learner without the
// right gets the refusal, never the media; a media URL without (or past) its signature is
// refused.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { t } from "../src/i18n";
import { axeViolations } from "./axe";
import {
  type Server,
  WAIT,
  artifactPath,
  chatLine,
  demoToken,
  enterFromMyPage,
  integration,
  launchChromium,
  portalLecture,
  signIn,
  startServer,
} from "./harness";

let server: Server;
let browser: Browser;
let work: string;
const contexts: BrowserContext[] = [];
const pages: Page[] = [];
const pageErrors: string[] = [];

/** A screen share without a screen: a canvas whose colour turns, offered by getDisplayMedia. */
const FAKE_SCREEN = `
  navigator.mediaDevices.getDisplayMedia = async () => {
    const canvas = document.createElement("canvas");
    canvas.width = 640;
    canvas.height = 360;
    const g = canvas.getContext("2d");
    let n = 0;
    setInterval(() => {
      g.fillStyle = "hsl(" + ((n += 7) % 360) + " 70% 45%)";
      g.fillRect(0, 0, 640, 360);
      g.fillStyle = "#fff";
      g.fillText("slide " + n, 20, 40);
    }, 33);
    return canvas.captureStream(30);
  };
`;

async function open(screen = false): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  contexts.push(context);
  if (screen) await context.addInitScript(FAKE_SCREEN);
  const page = await context.newPage();
  pages.push(page);
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (e) => pageErrors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/i.test(m.text())) pageErrors.push(m.text());
  });
  page.on("dialog", (d) => void d.accept());
  await page.goto(`${server.url}/sign-in`);
  return page;
}

async function say(page: Page, text: string): Promise<void> {
  await page.locator("#chat-input").fill(text);
  await page.getByRole("button", { name: t("chat_send"), exact: true }).click();
  await chatLine(page, text).first().waitFor();
}

/** What the node answers a person on `/api/archive/{lecture}`. */
async function archiveAs(user: string, lecture: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const token = await demoToken(server, user);
  const r = await fetch(`${server.url}/api/archive/${lecture}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

const camera = (page: Page) => page.locator("video.archive-camera");
const currentMs = (page: Page) => camera(page).evaluate((v: HTMLVideoElement) => v.currentTime * 1000);
const framesDecoded = (page: Page) => camera(page).evaluate((v: HTMLVideoElement) => v.getVideoPlaybackQuality().totalVideoFrames);
/** Archive time of the camera's playhead (its file may start after the archive's 0). */
const shownTexts = (page: Page) => page.locator(".archive-lines li.archive-line .text").allTextContents();

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), "archive-room-"));
  server = await startServer({
    config: `[media]\nrecording_dir = ${JSON.stringify(path.join(work, "recordings"))}\n\n[archive]\nmedia_url_ttl_secs = 10\n`,
  });
  browser = await launchChromium();
});

afterEach(async (ctx) => {
  if (ctx.task.result?.state === "fail") {
    for (const [i, page] of pages.entries())
      await page.screenshot({ path: artifactPath(`archive-failure-${i}.png`), fullPage: true }).catch(() => {});
  }
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the archive room", () => {
  it("replays the lecture with its chat, calls and reactions in step, to the entitled only", async () => {
    await portalLecture(server, "arch", {
      title: "アーカイブの講座 / An archived lecture",
      startsInMin: 10,
      rows: 3,
      cols: 4,
      buyers: ["demo-taro", "demo-hanako"],
    });
    // Jiro's konbini payment has not arrived.
    await integration(server, "PUT", "/api/v1/integration/purchases/arch-jiro", {
      buyer: "demo-jiro",
      lecture: "arch",
      quantity: 1,
      modality: "online",
      payment_method: "konbini",
      status: "awaiting_payment",
    });

    // --- The live lecture ------------------------------------------------------------------
    const teacher = await open(true);
    await signIn(teacher, "demo-instructor");
    await enterFromMyPage(teacher, "arch");
    await teacher.getByRole("button", { name: t("media_start") }).click();
    await teacher.locator('.preview[data-sending="yes"]').waitFor();
    const taro = await open();
    await signIn(taro, "demo-taro");
    await enterFromMyPage(taro, "arch");
    const hanako = await open();
    await signIn(hanako, "demo-hanako");
    await enterFromMyPage(hanako, "arch");

    await teacher.getByRole("button", { name: t("console_start") }).click();
    await taro.locator('.video[data-media="playing"]').waitFor();
    await say(taro, "始まりました");
    await taro.locator('button[data-emotion="applause"]').click();
    await hanako.locator('button[data-emotion="applause"]').click();
    await teacher.getByRole("button", { name: t("media_share") }).click();
    await teacher.getByRole("button", { name: t("media_unshare") }).waitFor();
    // Let the recording run a while between the lines, so each has its own time.
    await teacher.waitForTimeout(2500);
    await say(hanako, "スライドが見えます");
    await teacher.locator("#call-input").fill("たろう");
    await teacher.getByRole("button", { name: t("console_call_button") }).click();
    await taro.locator('.called-on[role="alert"]').waitFor();
    await say(taro, "はい、答えます");
    await hanako.locator('button[data-emotion="lost"]').click();
    await teacher.waitForTimeout(2500);
    await say(hanako, "最後の一言");
    await teacher.waitForTimeout(1000);
    await teacher.getByRole("button", { name: t("console_end") }).click();

    // --- The archive is made; the instructor sees it ready, the learner not yet ----------------
    await expect
      .poll(async () => (await archiveAs("demo-instructor", "arch")).body.state, { timeout: 60_000, interval: 500 })
      .toBe("ready");
    const before = await archiveAs("demo-taro", "arch");
    expect(before.body.state).toBe("preparing");
    // The portal publishes it: its date comes now.
    await integration(server, "PUT", "/api/v1/integration/lectures/arch/archive", { available_at: Date.now() - 1000 });

    // --- The learner watches it --------------------------------------------------------------
    await taro.goto(`${server.url}/lectures`);
    const card = taro.locator('li[data-lecture="arch"]');
    await card.getByRole("link", { name: t("archive_open") }).click();
    await taro.waitForURL(/\/archive\/arch$/);
    await camera(taro).waitFor();
    await taro.waitForFunction(() => (document.querySelector("video.archive-camera") as HTMLVideoElement | null)?.readyState! >= 1);
    // Paused at the start: none of the lines said after the start is shown yet.
    expect(await shownTexts(taro)).not.toContain("最後の一言");
    await taro.getByRole("button", { name: t("archive_play") }).click();
    // The video plays: frames decoded rising, the playhead advancing.
    await expect.poll(() => framesDecoded(taro), { timeout: WAIT }).toBeGreaterThan(0);
    const frames = await framesDecoded(taro);
    const at = await currentMs(taro);
    await expect.poll(() => framesDecoded(taro), { timeout: WAIT }).toBeGreaterThan(frames);
    await expect.poll(() => currentMs(taro), { timeout: WAIT }).toBeGreaterThan(at + 500);
    // A line appears when the playhead passes its time, not before.
    const first = taro.locator(".archive-lines li.archive-line").filter({ hasText: "始まりました" });
    await first.waitFor();
    const firstT = Number(await first.getAttribute("data-t"));
    expect(await currentMs(taro)).toBeGreaterThanOrEqual(firstT - 300);
    const answer = taro.locator(".archive-lines li.archive-line").filter({ hasText: "はい、答えます" });
    await answer.waitFor({ timeout: WAIT });
    // The call is in place before the answer, marked as one.
    await taro.locator(".archive-lines li.archive-call").filter({ hasText: "たろう" }).waitFor();
    await answer.locator(".badge").filter({ hasText: t("archive_call_answer") }).waitFor();
    // The screen share was on: shown large, the camera small.
    await taro.locator(".archive-videos.with-screen video.archive-screen").waitFor();
    await taro.screenshot({ path: artifactPath("20-archive-room.png"), fullPage: true });

    // Seeking: to the end, every line; back to the start, none said after it.
    await taro.getByRole("button", { name: t("archive_pause") }).click();
    const duration = Number(await taro.locator(".archive-seek input").getAttribute("max"));
    await taro.locator(".archive-seek input").fill(String(duration));
    await expect.poll(() => shownTexts(taro)).toEqual(["始まりました", "スライドが見えます", "はい、答えます", "最後の一言"]);
    await taro.locator(".archive-seek input").fill("0");
    await expect.poll(async () => (await shownTexts(taro)).includes("スライドが見えます")).toBe(false);
    expect(await currentMs(taro)).toBeLessThan(1000);

    // The reaction timeline: where the room applauded and where it was lost; a bar jumps there.
    const bars = taro.locator(".archive-reactions .archive-bar");
    expect(await bars.count()).toBeGreaterThan(0);
    const lost = taro.locator(".archive-bar.mood-lost").last();
    const target = Number(await (((await lost.count()) > 0 ? lost : bars.last())).getAttribute("data-t"));
    await (((await lost.count()) > 0 ? lost : bars.last())).click();
    await expect.poll(() => currentMs(taro)).toBeGreaterThanOrEqual(target - 1000);
    expect(await currentMs(taro)).toBeLessThan(target + 1500);
    // The chat follows the jump: the lines up to there, none after.
    const shown = await shownTexts(taro);
    expect(shown).toContain("始まりました");

    // Keyboard and screen reader: axe finds nothing serious.
    expect(await axeViolations(taro)).toEqual([]);

    // --- The refused, and URLs without or past their signature ---------------------------------
    const jiro = await open();
    await signIn(jiro, "demo-jiro");
    await jiro.goto(`${server.url}/archive/arch`);
    await jiro.locator('[data-refusal="payment_pending"]').waitFor();
    expect(await jiro.locator("video").count()).toBe(0);
    const refused = await archiveAs("demo-jiro", "arch");
    expect(refused.status).toBe(403);
    expect(refused.body.media).toBeUndefined();

    const ready = await archiveAs("demo-taro", "arch");
    const url = (ready.body.media as Record<string, string>)["camera.webm"]!;
    const unsigned = await fetch(`${server.url}${url.split("?")[0]}`);
    expect(unsigned.status).toBe(403);
    expect(((await unsigned.json()) as { error: string }).error).toBe("media_url_invalid");
    const ok = await fetch(`${server.url}${url}`, { headers: { range: "bytes=0-99" } });
    expect(ok.status).toBe(206);
    expect(ok.headers.get("content-type")).toBe("video/webm");
    // Ten seconds later (this node's URLs live ten seconds) the same URL is refused.
    await expect
      .poll(async () => (await fetch(`${server.url}${url}`, { headers: { range: "bytes=0-99" } })).status, {
        timeout: 20_000,
        interval: 500,
      })
      .toBe(403);
    const late = (await (await fetch(`${server.url}${url}`)).json()) as { error: string };
    expect(late.error).toBe("media_url_expired");
    expect(pageErrors).toEqual([]);
  });
});
