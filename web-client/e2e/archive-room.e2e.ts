// The archive room end to end, in real Chromium against the real room-server: an instructor
// broadcasts a camera and shares the screen, learners chat, react and are called on, the
// lecture ends and the node makes its archive. The archive's date is days ahead: the learner
// sees it being prepared; then the node's clock is shifted past the date (the node restarted
// under Debian's libfaketime, the browser's clock left alone) and the learner watches it: the
// video plays, the chat appears as the playhead passes each line, a seek shows the chat up to
// that point, the reaction timeline jumps the player. Shifted past the archive's end date, it
// is expired and its media refused. A learner without the right gets the refusal, never the
// media; a media URL without (or past) its signature is refused.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Manifest } from "../src/archive";
import { formatDateTime, t } from "../src/i18n";
import { axeViolations } from "./axe";
import {
  type Server,
  WAIT,
  artifactPath,
  chatLine,
  demoToken,
  enterFromMyPage,
  freePort,
  integration,
  launchChromium,
  portalLecture,
  PORTAL_IDENTITY,
  portalToken,
  sendLine,
  signIn,
  startRedis,
  startServer,
  watchedPage,
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

async function open(server: Server, screen = false): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  contexts.push(context);
  if (screen) await context.addInitScript(FAKE_SCREEN);
  const page = await watchedPage(context, pageErrors);
  pages.push(page);
  await page.goto(`${server.url}/sign-in`);
  return page;
}

async function say(page: Page, text: string): Promise<void> {
  await sendLine(page, text);
  await chatLine(page, text).first().waitFor();
}

/** What the node answers a person on `/api/archive/{lecture}`. */
async function archiveAs(on: Server, user: string, lecture: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const token = await demoToken(on, user);
  const server = on;
  const r = await fetch(`${server.url}/api/archive/${lecture}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

const camera = (page: Page) => page.locator("video.archive-camera");
const currentMs = (page: Page) => camera(page).evaluate((v: HTMLVideoElement) => v.currentTime * 1000);
const framesDecoded = (page: Page) => camera(page).evaluate((v: HTMLVideoElement) => v.getVideoPlaybackQuality().totalVideoFrames);
/** Archive time of the camera's playhead (its file may start after the archive's 0). */
const shownTexts = (page: Page) => page.locator(".archive-lines li.archive-line .text").allTextContents();

const DAY_MS = 86_400_000;
/** libfaketime as Debian installs it (`apt-get install faketime`; scripts/test does), in the
 * machine's own library folder, or `LIBFAKETIME`. */
function libfaketime(): string {
  const given = process.env.LIBFAKETIME;
  if (given) return given;
  const found = readdirSync("/usr/lib")
    .map((dir) => path.join("/usr/lib", dir, "faketime", "libfaketime.so.1"))
    .find((lib) => existsSync(lib));
  if (!found) throw new Error("no libfaketime in /usr/lib/*/faketime: apt-get install faketime, or set LIBFAKETIME");
  return found;
}

/** The environment that runs a node `days` ahead of the real time: its wall clock (what decides
 * dates, tokens and URLs) shifted by libfaketime, its monotonic clock (tokio's timers) real. */
function shiftedBy(days: number): Record<string, string> {
  return { LD_PRELOAD: libfaketime(), FAKETIME: `+${days * 86_400}`, FAKETIME_DONT_FAKE_MONOTONIC: "1" };
}

/** The one-node case's node, started again on the same records, recordings and store. */
let oneNode: Parameters<typeof startServer>[0];

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), "archive-room-"));
  oneNode = {
    databaseUrl: `sqlite://${path.join(work, "one-node.db")}`,
    apiKey: "archive-room-e2e-one-node-integration-key-0123",
    config: `[media]\nrecording_dir = ${JSON.stringify(path.join(work, "recordings"))}\n\n[archive]\nmedia_url_ttl_secs = 10\n`,
  };
  server = await startServer(oneNode);
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

/** Runs lecture `id` on `on` (the node the instructor publishes on, which records): a
 * camera and a shared screen, learners who chat, react and are called on; then ends it. The
 * portal dates its archive as a real one: watchable from two days ahead, for a week. Returns
 * the archive's `available_at` and `expires_at`. */
async function liveLecture(
  on: Server,
  id: string,
  /** Another node of the same deployment, where Hanako follows the lecture with a portal token. */
  elsewhere?: { node: Server; token: (user: string) => string },
): Promise<{ availableAt: number; expiresAt: number }> {
  await portalLecture(on, id, {
    title: "アーカイブの講座 / An archived lecture",
    startsInMin: 10,
    rows: 3,
    cols: 4,
    buyers: ["demo-taro", "demo-hanako"],
  });
  const availableAt = Date.now() + 2 * DAY_MS;
  const expiresAt = availableAt + 7 * DAY_MS;
  await integration(on, "PUT", `/api/v1/integration/lectures/${id}/archive`, { available_at: availableAt, expires_at: expiresAt });
  // Jiro's konbini payment has not arrived.
  await integration(on, "PUT", `/api/v1/integration/purchases/${id}-jiro`, {
    buyer: "demo-jiro",
    lecture: id,
    quantity: 1,
    modality: "online",
    payment_method: "konbini",
    status: "awaiting_payment",
  });
  const teacher = await open(on, true);
  await signIn(teacher, "demo-instructor");
  await enterFromMyPage(teacher, id);
  await teacher.getByRole("button", { name: t("media_start") }).click();
  await teacher.locator('.preview[data-sending="yes"]').waitFor();
  const taro = await open(on);
  await signIn(taro, "demo-taro");
  await enterFromMyPage(taro, id);
  const hanako = await open(elsewhere?.node ?? on);
  if (elsewhere) {
    await hanako.evaluate((token) => localStorage.setItem("lecture.token", token), elsewhere.token("demo-hanako"));
    await hanako.goto(`${elsewhere.node.url}/lectures`);
  } else {
    await signIn(hanako, "demo-hanako");
  }
  await enterFromMyPage(hanako, id);

  await teacher.getByRole("button", { name: t("console_start") }).click();
  await taro.locator('.video[data-media="playing"]').waitFor();
  await say(taro, "始まりました");
  await taro.locator('button[data-emotion="applause"]').click();
  await hanako.locator('button[data-emotion="applause"]').click();
  const applauded = Date.now();
  await teacher.getByRole("button", { name: t("media_share") }).click();
  await teacher.getByRole("button", { name: t("media_unshare") }).waitFor();
  // Let the recording run a while between the lines, so each has its own time.
  await teacher.waitForTimeout(2500);
  await say(hanako, "スライドが見えます");
  await teacher.locator("#call-input").fill("たろう");
  await teacher.getByRole("button", { name: t("console_call_button") }).click();
  await taro.locator('.called-on[role="alert"]').waitFor();
  await say(taro, "はい、答えます");
  // The timeline tallies presses per 5 s: the room is lost in a later interval than the one
  // it applauded in, whatever the machine's pace.
  await teacher.waitForTimeout(Math.max(0, applauded + 5_500 - Date.now()));
  await hanako.locator('button[data-emotion="lost"]').click();
  await teacher.waitForTimeout(2500);
  await say(hanako, "最後の一言");
  await teacher.waitForTimeout(1000);
  await teacher.getByRole("button", { name: t("console_end") }).click();
  for (const page of [teacher, taro, hanako]) await page.context().close();
  return { availableAt, expiresAt };
}

/** A learner watches archive `id` on `page` (on its archive page, paused at the start): the
 * video plays, the chat follows the playhead, seeking and the reaction timeline move it. */
async function watch(taro: Page, shot: string, manifest: Manifest): Promise<void> {
  // The screen share was recorded, as a session of its own on the archive's timeline.
  const screen = manifest.tracks.find((track) => track.kind === "screen");
  expect(screen, "a screen-share track in the manifest").toBeDefined();
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
  const answer = taro.locator(".archive-lines li.archive-line").filter({ hasText: "はい、答えます" });
  expect(await answer.count()).toBe(0);
  // Played at 1×, it comes within the archive's length (a loaded machine ran a longer lecture).
  const length = Number(await taro.locator(".archive-seek input").getAttribute("max"));
  await answer.waitFor({ timeout: length + WAIT });
  const answerT = Number(await answer.getAttribute("data-t"));
  expect(await currentMs(taro)).toBeGreaterThanOrEqual(answerT - 300);
  // The call is in place before the answer, marked as one.
  await taro.locator(".archive-lines li.archive-call").filter({ hasText: "たろう" }).waitFor();
  await answer.locator(".badge").filter({ hasText: t("archive_call_answer") }).waitFor();
  await taro.getByRole("button", { name: t("archive_pause") }).click();
  // Where the screen share was on, it is shown large, the camera small.
  const inScreen = Math.round((screen!.start_ms + screen!.duration_ms / 2) / 1000) * 1000;
  await taro.locator(".archive-seek input").fill(String(inScreen));
  await taro.locator(".archive-videos.with-screen video.archive-screen").waitFor();
  await taro.screenshot({ path: artifactPath(shot), fullPage: true });

  // Seeking: to the end, every line; back to the start, none said after it.
  const duration = Number(await taro.locator(".archive-seek input").getAttribute("max"));
  await taro.locator(".archive-seek input").fill(String(duration));
  await expect.poll(() => shownTexts(taro)).toEqual(["始まりました", "スライドが見えます", "はい、答えます", "最後の一言"]);
  await taro.locator(".archive-seek input").fill("0");
  await expect.poll(async () => (await shownTexts(taro)).includes("スライドが見えます")).toBe(false);
  expect(await currentMs(taro)).toBeLessThan(1000);

  // The reaction timeline: where the room applauded and where it was lost; a bar jumps there.
  const bars = taro.locator(".archive-reactions .archive-bar");
  expect(await bars.count()).toBeGreaterThan(0);
  const lost = taro.locator(".archive-bar.mood-lost");
  expect(await lost.count()).toBeGreaterThan(0);
  const target = Number(await lost.last().getAttribute("data-t"));
  expect(target).toBeGreaterThan(0);
  await lost.last().click();
  await expect.poll(() => currentMs(taro)).toBeGreaterThanOrEqual(target - 1000);
  expect(await currentMs(taro)).toBeLessThan(target + 1500);
  // The chat follows the jump: the lines said by then (the first at least), none after it.
  await expect.poll(() => shownTexts(taro)).toContain("始まりました");
  const now = await currentMs(taro);
  const times = (await taro.locator(".archive-lines li.archive-line").evaluateAll((lis) => lis.map((li) => Number(li.getAttribute("data-t")))));
  expect(times.every((t) => t <= now + 300)).toBe(true);
  expect(await shownTexts(taro)).not.toContain("最後の一言");
}

describe("the archive room", () => {
  it("replays the lecture, once the clock passes its date, with its chat, calls and reactions in step, to the entitled only", async () => {
    const { availableAt, expiresAt } = await liveLecture(server, "arch");

    // --- The archive is made; the instructor sees it ready, the learner not yet ----------------
    await expect
      .poll(async () => (await archiveAs(server, "demo-instructor", "arch")).body.state, { timeout: 60_000, interval: 500 })
      .toBe("ready");
    const before = await archiveAs(server, "demo-taro", "arch");
    expect([before.status, before.body.state, before.body.available_at, before.body.media]).toEqual([200, "preparing", availableAt, undefined]);
    const taro = await open(server);
    await signIn(taro, "demo-taro");
    const preparing = taro.locator('li[data-lecture="arch"] [data-archive-state="preparing"]');
    await preparing.waitFor();
    expect(await preparing.textContent()).toBe(t("archive_preparing_from", { date: formatDateTime(availableAt) }));
    expect(await taro.locator('li[data-lecture="arch"]').getByRole("link", { name: t("archive_open") }).count()).toBe(0);

    // --- Three days later (the node's clock shifted past the date), the learner watches it ----
    await server.stop();
    server = await startServer({ ...oneNode, env: shiftedBy(3) });
    await taro.goto(`${server.url}/sign-in`);
    await signIn(taro, "demo-taro");
    await taro.locator('li[data-lecture="arch"]').getByRole("link", { name: t("archive_open") }).click();
    await taro.waitForURL(/\/archive\/arch$/);
    await watch(taro, "20-archive-room.png", (await archiveAs(server, "demo-taro", "arch")).body.manifest as Manifest);
    // Keyboard and screen reader: axe finds nothing serious.
    expect(await axeViolations(taro)).toEqual([]);

    // The portal can still move the date: later than the node's now, it is being prepared again.
    await integration(server, "PUT", "/api/v1/integration/lectures/arch/archive", { available_at: Date.now() + 5 * DAY_MS });
    expect((await archiveAs(server, "demo-taro", "arch")).body.state).toBe("preparing");
    await integration(server, "PUT", "/api/v1/integration/lectures/arch/archive", { available_at: availableAt });
    expect((await archiveAs(server, "demo-taro", "arch")).body.state).toBe("ready");

    // The demo's own archived lecture plays with its chat too (./scripts/run-demo).
    await taro.goto(`${server.url}/archive/demo-archive`);
    await camera(taro).waitFor();
    await taro.getByRole("button", { name: t("archive_play") }).click();
    await expect.poll(() => framesDecoded(taro), { timeout: WAIT }).toBeGreaterThan(5);
    await taro.locator(".archive-lines li.archive-line").first().waitFor();

    // --- The refused, and URLs without or past their signature ---------------------------------
    const jiro = await open(server);
    await signIn(jiro, "demo-jiro");
    await jiro.goto(`${server.url}/archive/arch`);
    await jiro.locator('[data-refusal="payment_pending"]').waitFor();
    expect(await jiro.locator("video").count()).toBe(0);
    const refused = await archiveAs(server, "demo-jiro", "arch");
    expect(refused.status).toBe(403);
    expect(refused.body.media).toBeUndefined();

    const ready = await archiveAs(server, "demo-taro", "arch");
    expect(ready.body.state).toBe("ready");
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

    // --- Past the archive's end date (the clock shifted ten days), it is over ------------------
    const mediaPath = url.split("?")[0]!;
    await server.stop();
    server = await startServer({ ...oneNode, env: shiftedBy(10) });
    expect(Date.now() + 10 * DAY_MS).toBeGreaterThan(expiresAt);
    const over = await archiveAs(server, "demo-taro", "arch");
    expect([over.status, over.body.state, over.body.media]).toEqual([200, "expired", undefined]);
    await taro.goto(`${server.url}/sign-in`);
    await signIn(taro, "demo-taro");
    const expired = taro.locator('li[data-lecture="arch"] [data-archive-state="expired"]');
    await expired.waitFor();
    expect(await expired.textContent()).toBe(t("archive_expired_note"));
    expect(await taro.locator('li[data-lecture="arch"]').getByRole("link", { name: t("archive_open") }).count()).toBe(0);
    await taro.goto(`${server.url}/archive/arch`);
    await taro.locator('[data-archive-state="expired"]').waitFor();
    expect(await taro.locator("video").count()).toBe(0);
    // The media is refused, whoever signs for it: the old URL, and one without a signature.
    for (const asked of [url, mediaPath]) expect((await fetch(`${server.url}${asked}`)).status).toBe(403);
    expect(pageErrors).toEqual([]);
  }, 420_000);

  it("on S3-compatible storage with two nodes sharing Redis, the node that did not record serves the archive", async () => {
    const moto = await startMoto();
    const redis = await startRedis(work);
    const s3 = `[archive]\nstore = "s3"\nendpoint = "http://127.0.0.1:${moto.port}"\nbucket = "archives"\nregion = "us-east-1"\naccess_key_id = "test"\nsecret_access_key = "test"\nallow_http = true\n`;
    const db = `sqlite://${path.join(work, "shared.db")}`;
    const apiKey = "archive-room-e2e-integration-key-0123456789";
    const shared = `ticket_secret = "${TICKET_SECRET}"\nredis_url = "redis://127.0.0.1:${redis.port}/0"\n`;
    // The origin: demo people, the instructor's broadcast, the recording.
    const origin = await startServer({
      databaseUrl: db,
      apiKey,
      config: `${shared}\n[media]\nrecording_dir = ${JSON.stringify(path.join(work, "recordings-a"))}\n\n${s3}`,
    }).catch((e) => {
      redis.stop();
      moto.stop();
      throw e;
    });
    // Another node of the same deployment (the records, Redis and the bucket), which records
    // nothing: learners come to it with the portal's identity tokens.
    const other = await startServer({
      demo: false,
      databaseUrl: db,
      apiKey,
      config: `${shared}\n${PORTAL_IDENTITY}\n${s3}`,
    }).catch(async (e) => {
      await origin.stop();
      redis.stop();
      moto.stop();
      throw e;
    });
    try {
      // The lecture is held over both nodes: Hanako follows it on the other one, and what she
      // says and presses reaches the origin's timeline through Redis.
      await liveLecture(origin, "s3arch", { node: other, token: portalToken });
      const instructor = portalToken("demo-instructor");
      await expect
        .poll(async () => (await archiveWith(other, instructor, "s3arch")).body.state, { timeout: 60_000, interval: 500 })
        .toBe("ready");
      await integration(other, "PUT", "/api/v1/integration/lectures/s3arch/archive", { available_at: Date.now() - 1000 });

      const taro = await browser.newContext({ viewport: { width: 1280, height: 900 } }).then((c) => {
        contexts.push(c);
        return c.newPage();
      });
      pages.push(taro);
      taro.setDefaultTimeout(WAIT);
      taro.on("pageerror", (e) => pageErrors.push(e.message));
      await taro.goto(`${other.url}/sign-in`);
      await taro.evaluate((token) => localStorage.setItem("lecture.token", token), portalToken("demo-taro"));
      await taro.goto(`${other.url}/archive/s3arch`);
      await watch(taro, "21-archive-room-s3-other-node.png", (await archiveWith(other, portalToken("demo-taro"), "s3arch")).body.manifest as Manifest);
      // The refused get the refusal there too.
      const jiro = await archiveWith(other, portalToken("demo-jiro"), "s3arch");
      expect([jiro.status, jiro.body.error]).toEqual([403, "payment_pending"]);
      expect(pageErrors).toEqual([]);
    } finally {
      await other.stop();
      await origin.stop();
      redis.stop();
      moto.stop();
    }
  }, 360_000);
});

const TICKET_SECRET = "archive-room-e2e-shared-ticket-secret-0123456789";

async function archiveWith(on: Server, token: string, lecture: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${on.url}/api/archive/${lecture}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}


/** moto's S3 server on a free loopback port with a bucket `archives`, stopped by its pid. */
async function startMoto(): Promise<{ port: number; stop: () => void }> {
  const port = await freePort();
  const child = spawn("moto_server", ["-H", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
  const stop = () => {
    if (child.exitCode === null) child.kill();
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    const created = await fetch(`http://127.0.0.1:${port}/archives`, { method: "PUT" }).catch(() => null);
    if (created?.ok) break;
    if (Date.now() > deadline) {
      stop();
      throw new Error("moto_server did not start");
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { port, stop };
}
