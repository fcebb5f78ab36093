// Never missing the moment, in real Chromium against a real room-server: a call made while a
// learner's network was down reaches them when it is back, what they typed meanwhile is sent
// once, a second tab of the room does not fight the first, a refusal keeps what was typed and
// is explained in Japanese, and the client's files travel compressed.
import http from "node:http";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { t } from "../src/i18n";
import { Relay, type Server, WAIT, artifactPath, chatLine, enterFromMyPage, launchChromium, portalLecture, signIn, startServer } from "./harness";

let server: Server;
let relay: Relay;
let relayUrl: string;
let browser: Browser;
const contexts: BrowserContext[] = [];
const pages: Page[] = [];
const pageErrors: string[] = [];

async function newContext(): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  contexts.push(context);
  return context;
}

async function watch(page: Page): Promise<Page> {
  pages.push(page);
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (e) => pageErrors.push(e.message));
  page.on("dialog", (d) => void d.accept());
  return page;
}

/** A browser (its own context) signed in as `user` on `base`, on My page. */
async function signedIn(base: string, user: string): Promise<Page> {
  const page = await watch(await (await newContext()).newPage());
  await page.goto(`${base}/sign-in`);
  await signIn(page, user);
  return page;
}

async function connected(page: Page, timeout = WAIT): Promise<void> {
  await page.locator('[data-status="connected"]').waitFor({ timeout });
}

/** A screenshot of what the person sees (`full`: the whole page). */
async function shot(page: Page, name: string, full = false): Promise<void> {
  await page.screenshot({ path: artifactPath(`${name}.png`), fullPage: full });
}

/** A GET with the headers given, answered raw (no decompression): status, headers, body size. */
function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; headers: http.IncomingHttpHeaders; bytes: number }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        let bytes = 0;
        res.on("data", (chunk: Buffer) => (bytes += chunk.length));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes }));
      })
      .on("error", reject);
  });
}

beforeAll(async () => {
  server = await startServer();
  relay = new Relay(server.port);
  relayUrl = await relay.start();
  browser = await launchChromium();
});

afterEach(async (ctx) => {
  if (ctx.task.result?.state === "fail") {
    for (const [i, page] of pages.entries()) await shot(page, `resilience-failure-${i}`).catch(() => {});
  }
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  await relay?.stop();
  await server?.stop();
});

describe("never missing the moment", () => {
  let instructor: Page;

  it("a call made while the learner's network was down reaches them when it is back; what they typed meanwhile is sent once", async () => {
    instructor = await signedIn(server.url, "demo-instructor");
    await enterFromMyPage(instructor, "demo");
    await instructor.getByRole("button", { name: t("console_start") }).click();

    // Taro reaches the node through the relay, so his network can be cut.
    const taro = await signedIn(relayUrl, "demo-taro");
    await enterFromMyPage(taro, "demo");
    await taro.locator('.video[data-phase="live"]').waitFor();
    const grid = taro.locator('[role="grid"]');
    await grid.focus();
    await grid.press("Enter");
    await taro.getByText(t("your_seat", { seat: t("seat_name", { row: 1, col: 1 }) })).waitFor();
    const title = await taro.title();

    relay.cut();
    await taro.locator('[data-status="reconnecting"]').waitFor();
    // The video says so, and no LIVE badge stands over a frozen picture.
    await taro.locator(".video-reconnecting").getByText(t("video_reconnecting")).waitFor();
    expect(await taro.locator(".live-dot").count()).toBe(0);

    // Called on while away.
    await instructor.locator("#call-input").fill("たろう");
    await instructor.getByRole("button", { name: t("console_call_button") }).click();
    await instructor.locator(".current-call").getByText("たろう").waitFor();

    // What he types meanwhile is kept, marked as waiting for the network.
    const offline = "切れている間に書いた一行";
    await taro.locator("#chat-input").fill(offline);
    await taro.getByRole("button", { name: t("chat_send"), exact: true }).click();
    await taro.locator("li.chat-line.unsent").filter({ hasText: offline }).getByText(t("chat_unsent_offline")).waitFor();
    expect(await taro.locator("#chat-input").inputValue()).toBe("");
    await shot(taro, "resilience-01-offline", true);
    // He has scrolled to the bottom of the page.
    await taro.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));

    relay.restore();
    const back = Date.now();
    // During a live lecture the next attempt is at most two seconds away.
    await connected(taro, 6_000);
    expect(Date.now() - back).toBeLessThan(6_000);

    // The call he missed is shown: a toast on screen wherever he scrolled, and the tab's title.
    const toast = taro.locator('.call-toast[role="alert"]');
    await toast.getByText(t("called_on_you", { by: "山田講師" })).waitFor();
    expect(await toast.evaluate((el) => getComputedStyle(el).position)).toBe("fixed");
    const box = await toast.boundingBox();
    expect(box).not.toBeNull();
    expect(box!.y).toBeGreaterThanOrEqual(0);
    expect(box!.y + box!.height).toBeLessThanOrEqual(800);
    await expect.poll(() => taro.title()).toMatch(/^🎤/);
    await shot(taro, "resilience-02-called-after-resume");

    // The offline line went once.
    await chatLine(instructor, offline).waitFor();
    await taro.locator("li.chat-line.unsent").waitFor({ state: "detached" });
    expect(await chatLine(instructor, offline).count()).toBe(1);
    expect(await chatLine(taro, offline).count()).toBe(1);

    // Dismissed: the toast goes and the title comes back.
    await toast.getByRole("button", { name: t("dismiss") }).click();
    await toast.waitFor({ state: "detached" });
    await expect.poll(() => taro.title()).toBe(title);
    expect(pageErrors).toEqual([]);
  });

  it("comes back as soon as the browser says the network is back, whatever the back-off had reached", async () => {
    // A lecture not live yet, where the back-off grows beyond the live one's two seconds.
    await portalLecture(server, "calm", { title: "静かな講座 / A calm lecture", startsInMin: 20, minutes: 60, rows: 3, cols: 4, buyers: ["demo-taro"] });
    const taro = await signedIn(server.url, "demo-taro");
    await enterFromMyPage(taro, "calm");

    await taro.context().setOffline(true);
    const status = taro.locator('[data-status="reconnecting"]');
    // Failed attempts push the next one further away, until it is seconds off.
    await expect
      .poll(async () => Number(/(\d+)/.exec((await status.textContent().catch(() => "")) ?? "")?.[1] ?? 0), {
        timeout: 30_000,
        interval: 100,
      })
      .toBeGreaterThanOrEqual(4);
    await taro.context().setOffline(false);
    const back = Date.now();
    await connected(taro, 3_000);
    expect(Date.now() - back).toBeLessThan(3_000);
    expect(pageErrors).toEqual([]);
  });

  it("a second tab of the room takes it over; the first offers 'continue here' and does not take it back by itself", async () => {
    const first = await signedIn(server.url, "demo-hanako");
    await enterFromMyPage(first, "demo");
    // A second tab of the same browser: signed in already, straight into the room.
    const second = await watch(await first.context().newPage());
    await second.goto(`${server.url}/room/demo`);
    await connected(second);
    await first.getByTestId("elsewhere").getByRole("button", { name: t("continue_here") }).waitFor();
    await shot(first, "resilience-03-continue-here");

    // The second tab works on; the first stays where it is.
    await second.locator("#chat-input").fill("二つ目のタブから");
    await second.getByRole("button", { name: t("chat_send"), exact: true }).click();
    await chatLine(instructor, "二つ目のタブから").waitFor();
    await chatLine(second, "二つ目のタブから").waitFor();
    expect(await first.getByTestId("elsewhere").count()).toBe(1);
    expect(await first.locator('[data-status="connected"]').count()).toBe(0);
    expect(await second.locator('[data-status="connected"]').count()).toBe(1);

    // "Continue here" takes it back, with what was said meanwhile; now the second one waits.
    await first.getByRole("button", { name: t("continue_here") }).click();
    await connected(first);
    await chatLine(first, "二つ目のタブから").waitFor();
    await second.getByTestId("elsewhere").waitFor();
    expect(await second.locator('[data-status="connected"]').count()).toBe(0);
    expect(pageErrors).toEqual([]);
  });

  it("a refused call keeps the nickname typed and explains it in Japanese", async () => {
    await instructor.locator("#call-input").fill("だれもいない");
    await instructor.getByRole("button", { name: t("console_call_button") }).click();
    const error = instructor.locator('.room-header [role="alert"]');
    await error.getByText(t("refused_kept", { reason: t("room_error_not_found") })).waitFor();
    expect(await error.textContent()).not.toMatch(/[A-Za-z]{4,}/);
    await expect.poll(() => instructor.locator("#call-input").inputValue()).toBe("だれもいない");
    expect(pageErrors).toEqual([]);
  });

  it("My page follows the room, and says to each account what is true for it", async () => {
    // The instructor started the demo lecture before its scheduled start (the first test):
    // a learner's card turns live, with no countdown to a start that has happened.
    const hanako = await signedIn(server.url, "demo-hanako");
    const card = hanako.locator('li[data-lecture="demo"]');
    await card.locator(".badge.tone-live").getByText(t("state_live")).waitFor();
    await card.locator(".badge.today").waitFor();
    expect(await card.locator(".countdown").count()).toBe(0);
    await shot(hanako, "resilience-04-my-page-live");

    // A learner whose company has not allocated her a seat yet: the lecture, and whom to ask.
    const yui = await signedIn(server.url, "demo-yui");
    const yuiCard = yui.locator('li[data-lecture="demo"]');
    await yuiCard.getByText(t("gate_error_seat_not_allocated")).waitFor();
    await yuiCard.getByText(t("fix_seat_not_allocated")).waitFor();
    expect(await yuiCard.locator("button.primary").count()).toBe(0);
    expect(await yui.getByText(t("lectures_empty")).count()).toBe(0);
    await shot(yui, "resilience-05-my-page-seat-not-allocated");

    // The moderator enters as the moderator.
    const moderator = await signedIn(server.url, "demo-moderator");
    await moderator.locator('li[data-lecture="demo"]').getByRole("button", { name: t("enter_moderator") }).waitFor();

    // A company's account gets no nickname form.
    const corp = await signedIn(server.url, "demo-corp");
    await corp.getByText(t("company_account_note")).waitFor();
    expect(await corp.locator("#nickname").count()).toBe(0);
    await shot(corp, "resilience-06-my-page-company");
    // What the cards say is in Japanese: no English sentence of the node's, no field name.
    for (const page of [hanako, yui, moderator, corp]) {
      for (const text of await page.locator(".lectures .refusal, .lectures .note").allTextContents()) {
        expect(text).not.toMatch(/[A-Za-z]{3,}|_/);
      }
    }
    expect(pageErrors).toEqual([]);
  });

  it("serves the client's files compressed, and no source map", async () => {
    const html = await (await fetch(`${server.url}/lectures`)).text();
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeTruthy();
    const plain = await rawGet(`${server.url}${script}`, {});
    const gzip = await rawGet(`${server.url}${script}`, { "accept-encoding": "gzip" });
    expect(gzip.status).toBe(200);
    expect(gzip.headers["content-encoding"]).toBe("gzip");
    expect(gzip.bytes).toBeLessThan(plain.bytes / 2);
    const brotli = await rawGet(`${server.url}${script}`, { "accept-encoding": "gzip, deflate, br" });
    expect(brotli.headers["content-encoding"]).toBe("br");
    expect((await rawGet(`${server.url}${script}.map`, { "accept-encoding": "gzip" })).status).toBe(404);
  });
});
