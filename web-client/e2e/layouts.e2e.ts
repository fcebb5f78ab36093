// The layouts people use, in real Chromium against a real room-server: a learner on a laptop
// (1366 × 800) sees the seat grid first and everything else on one screen; a learner on a phone
// (390 × 844) keeps the video in view while typing; the console fits one screen, calls by
// selecting a seat twice or by a suggested nickname, alerts on a 「わからない」 spike, shows the
// heat of each seat and a summary after the end; the learner's video has its controls. Every
// page and main state passes axe-core's WCAG A/AA rules with no serious or critical violation,
// and leaves a screenshot in e2e-artifacts/.
import type { Browser, BrowserContext, Locator, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { t } from "../src/i18n";
import { axeViolations } from "./axe";
import {
  type Server,
  WAIT,
  artifactPath,
  chatLine,
  enterFromMyPage,
  launchChromium,
  signIn,
  startServer,
  watchedPage,
} from "./harness";

let server: Server;
let browser: Browser;
const contexts: BrowserContext[] = [];
const pages: Page[] = [];
const pageErrors: string[] = [];
/** Serious and critical accessibility violations, by the state they were found in. */
const a11y: Record<string, string[]> = {};

const LAPTOP = { width: 1366, height: 800 };
const PHONE = { width: 390, height: 844 };

async function open(viewport: { width: number; height: number }, touch = false): Promise<Page> {
  const context = await browser.newContext({ viewport, hasTouch: touch, isMobile: touch });
  contexts.push(context);
  const page = await watchedPage(context, pageErrors);
  pages.push(page);
  await page.goto(`${server.url}/sign-in`);
  return page;
}

/** Screenshot, and axe's verdict on the page in this state. */
async function evidence(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: artifactPath(`layout-${name}.png`) });
  const found = await axeViolations(page);
  if (found.length > 0) a11y[name] = found;
}

/** Clicks a seat on the canvas grid, as a person with a mouse does. */
async function clickSeat(page: Page, row: number, col: number): Promise<void> {
  const cell = Number(await page.locator('[role="grid"]').getAttribute("data-cell"));
  const scroller = page.locator(".grid-scroller");
  const box = await scroller.boundingBox();
  if (!box) throw new Error("no seat grid on the page");
  await page.mouse.click(box.x + (col + 0.5) * cell, box.y + (row + 0.5) * cell);
}

/** The element's box, which must be wholly inside the window (nothing to scroll to). */
async function inView(page: Page, locator: Locator, what: string): Promise<{ x: number; y: number; width: number; height: number }> {
  const box = await locator.boundingBox();
  const vp = page.viewportSize()!;
  expect(box, `${what} is on the page`).not.toBeNull();
  expect(box!.y, `${what} top`).toBeGreaterThanOrEqual(0);
  expect(box!.y + box!.height, `${what} bottom`).toBeLessThanOrEqual(vp.height);
  return box!;
}

/** The seats pane holds its own: its grid above its legend, the legend inside the pane, and the
 * pane above the one under it (nothing drawn over the legend, the questions or the chat). */
async function seatsHoldTheirOwn(page: Page, what: string): Promise<void> {
  const boxes = await page.locator(".side .seats").evaluate((pane) => {
    const r = (e: Element | null) => (e ? e.getBoundingClientRect() : null);
    const box = r(pane)!;
    return {
      pane: { top: box.top, bottom: box.bottom },
      grid: r(pane.querySelector(".grid-scroller"))?.bottom ?? null,
      legendTop: r(pane.querySelector(".grid-legend"))?.top ?? null,
      legend: r(pane.querySelector(".grid-legend"))?.bottom ?? null,
      next: r(pane.nextElementSibling)?.top ?? null,
    };
  });
  expect(boxes.grid, `${what}: the seat grid is drawn`).not.toBeNull();
  expect(boxes.grid!, `${what}: the seat grid ends above its legend`).toBeLessThanOrEqual(boxes.legendTop! + 0.5);
  expect(boxes.legend!, `${what}: the legend ends inside its pane`).toBeLessThanOrEqual(boxes.pane.bottom + 0.5);
  if (boxes.next !== null) expect(boxes.pane.bottom, `${what}: the seats pane ends above the next`).toBeLessThanOrEqual(boxes.next + 0.5);
}

async function pageScrolls(page: Page): Promise<boolean> {
  return page.evaluate(() => document.documentElement.scrollHeight > window.innerHeight + 1);
}

beforeAll(async () => {
  server = await startServer();
  browser = await launchChromium();
});

afterEach(async (ctx) => {
  if (ctx.task.result?.state === "fail") {
    for (const [i, page] of pages.entries()) {
      await page.screenshot({ path: artifactPath(`layout-failure-${i}.png`) }).catch(() => {});
    }
  }
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  await server?.stop();
});

describe("layouts people use", () => {
  it("fits laptop, phone and console, with accessible pages and states", async () => {
    // --- Pages before the room ------------------------------------------------------------------
    const teacher = await open(LAPTOP);
    await evidence(teacher, "01-sign-in");
    await signIn(teacher, "demo-instructor");
    await evidence(teacher, "02-my-page");
    const check = await open(LAPTOP);
    await check.goto(`${server.url}/check`);
    await check.locator('[data-check="rtt"][data-verdict="pass"]').waitFor();
    await check.locator('[data-check="webrtc"][data-verdict]').waitFor();
    await evidence(check, "03-connection-check");

    // --- The console: one screen, End only once started -----------------------------------------
    await enterFromMyPage(teacher, "demo");
    const end = teacher.getByRole("button", { name: t("console_end") });
    expect(await end.isDisabled()).toBe(true);
    expect(await pageScrolls(teacher)).toBe(false);
    await inView(teacher, teacher.locator(".console-right #chat-input"), "the console's chat input");
    await inView(teacher, teacher.locator(".console-seats .grid-scroller"), "the console's seat grid");
    await inView(teacher, teacher.locator(".meter-panel svg"), "the meter's chart");
    await inView(teacher, teacher.locator(".meter-table"), "the meter's table");

    // --- A learner on a laptop: the seat grid first, everything on one screen --------------------
    const taro = await open(LAPTOP);
    await signIn(taro, "demo-taro");
    await enterFromMyPage(taro, "demo");
    const taroGrid = await inView(taro, taro.locator(".seats.first-step .grid-scroller"), "the seat grid on entry");
    // It is the first thing under the header, not somewhere below the video.
    const taroVideo = await taro.locator(".video").boundingBox();
    expect(taroGrid.y).toBeLessThan(taroVideo!.y);
    await inView(taro, taro.locator("#chat-input"), "the chat input");
    await inView(taro, taro.locator('button[data-emotion="lost"]'), "the reaction buttons");
    expect(await pageScrolls(taro)).toBe(false);
    await evidence(taro, "04-learner-laptop-entry");
    await clickSeat(taro, 0, 0);
    await taro.getByText(t("your_seat", { seat: t("seat_name", { row: 1, col: 1 }) })).waitFor();
    await taro.locator('.learner-body[data-seated="yes"]').waitFor();
    await inView(taro, taro.locator(".video"), "the video once seated");
    await inView(taro, taro.locator("#chat-input"), "the chat input once seated");
    await inView(taro, taro.locator('button[data-emotion="lost"]'), "the reaction buttons once seated");
    expect(await pageScrolls(taro)).toBe(false);
    await seatsHoldTheirOwn(taro, "seated on a laptop");
    await evidence(taro, "05-learner-laptop-seated");
    // A smaller laptop, a chat of long lines, the grid zoomed in: the pane still holds its grid,
    // which scrolls.
    await taro.setViewportSize({ width: 1280, height: 720 });
    for (let i = 1; i <= 4; i++) {
      const text = `layout-${i} ${"長い行が折り返して何行にもなる。".repeat(8)}`;
      await taro.locator("#chat-input").fill(text);
      await taro.getByRole("button", { name: t("chat_send"), exact: true }).click();
      await chatLine(taro, text).waitFor();
    }
    for (let i = 0; i < 3; i++) await taro.getByRole("button", { name: t("zoom_in") }).click();
    await seatsHoldTheirOwn(taro, "seated at 1280 × 720, zoomed in");
    await inView(taro, taro.locator("#chat-input"), "the chat input at 1280 × 720");
    expect(await pageScrolls(taro)).toBe(false);
    await evidence(taro, "05b-learner-1280-zoomed");
    await taro.setViewportSize(LAPTOP);

    // A taken seat says so.
    const hanako = await open(LAPTOP);
    await signIn(hanako, "demo-hanako");
    await enterFromMyPage(hanako, "demo");
    // Wait until Hanako's grid shows Taro's seat taken before clicking it.
    await expect.poll(() => hanako.locator("#seat-0-0").textContent(), { timeout: WAIT }).not.toContain(t("seat_empty"));
    await clickSeat(hanako, 0, 0);
    await hanako.locator('.seat-notice[data-notice="taken"]').getByText(t("seat_taken_notice")).waitFor();
    expect(await hanako.locator(".your-seat").textContent()).toBe(t("no_seat"));
    await evidence(hanako, "06-learner-taken-seat");
    await clickSeat(hanako, 1, 3);
    await hanako.getByText(t("your_seat", { seat: t("seat_name", { row: 2, col: 4 }) })).waitFor();

    // --- A learner on a phone: video on top, tabs, the video stays while typing -------------------
    const phone = await open(PHONE, true);
    await signIn(phone, "demo-html");
    await enterFromMyPage(phone, "demo");
    await phone.locator('[role="tab"][data-tab="seats"][aria-selected="true"]').waitFor();
    // Words for touch, not for a mouse.
    await phone.getByText(t("no_seat_touch")).waitFor();
    expect(await phone.evaluate(() => document.body.innerText.includes("クリック"))).toBe(false);
    // Seats are a finger's size too (the grid scrolls rather than shrink them).
    expect(Number(await phone.locator('[role="grid"]').getAttribute("data-cell"))).toBeGreaterThanOrEqual(44);
    await evidence(phone, "07-phone-seats");
    await clickSeat(phone, 2, 2);
    // Seated: the chat comes forward.
    await phone.locator('[role="tab"][data-tab="chat"][aria-selected="true"]').waitFor();
    const input = phone.locator("#chat-input");
    const before = await inView(phone, phone.locator(".video"), "the phone's video");
    await input.click();
    await phone.keyboard.type("スマホから質問です");
    const video = await inView(phone, phone.locator(".video"), "the phone's video while typing");
    // Where it was: typing moved nothing, and nothing but the header is above it.
    expect(video.y).toBe(before.y);
    expect(video.y).toBeLessThan(PHONE.height / 6);
    await inView(phone, input, "the phone's chat input while typing");
    expect(await phone.evaluate(() => window.scrollY)).toBe(0);
    // The on-screen keyboard: the page asks for `interactive-widget=resizes-content`, so on a
    // phone the keyboard shrinks the viewport (here by a typical 336 px). The video stays on top
    // (smaller, the site's top bar stepping aside), the input just above the keyboard, and the
    // page still does not scroll.
    await phone.setViewportSize({ width: PHONE.width, height: PHONE.height - 336 });
    await expect.poll(() => phone.evaluate(() => window.innerHeight), { timeout: WAIT }).toBe(PHONE.height - 336);
    const videoOverKeyboard = await inView(phone, phone.locator(".video"), "the phone's video over the keyboard");
    expect(videoOverKeyboard.y).toBeLessThanOrEqual(before.y);
    await inView(phone, input, "the phone's chat input over the keyboard");
    expect(await pageScrolls(phone)).toBe(false);
    expect(await input.evaluate((el) => el === document.activeElement)).toBe(true);
    await evidence(phone, "08-phone-keyboard");
    await phone.setViewportSize(PHONE);
    expect(await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);
    await phone.getByLabel(t("chat_question")).check();
    await phone.getByRole("button", { name: t("chat_send"), exact: true }).click();
    await phone.locator('[role="log"] li[data-offset]').filter({ hasText: "スマホから質問です" }).waitFor();
    await inView(phone, phone.locator(".video"), "the phone's video after sending");
    // Touch targets are at least 44 px tall (the grid's cells have their own zoom).
    const small = await phone.evaluate(() =>
      [...document.querySelectorAll<HTMLElement>("button, [role=tab], select, textarea, input:not([type=checkbox])")]
        .filter((el) => el.offsetParent !== null && !el.closest(".visually-hidden"))
        .filter((el) => el.getBoundingClientRect().height < 44)
        .map((el) => `${el.tagName} ${el.textContent?.trim() ?? ""} ${el.getBoundingClientRect().height}`),
    );
    expect(small).toEqual([]);
    await evidence(phone, "08-phone-chat");
    await phone.locator('[role="tab"][data-tab="reactions"]').click();
    await phone.locator('button[data-emotion="good"]').waitFor();
    await evidence(phone, "09-phone-reactions");
    await phone.locator('[role="tab"][data-tab="chat"]').click();

    // --- Calling by seat: select (names who sits there), then call -------------------------------
    await teacher.locator(".console-seats #seat-0-0").waitFor({ state: "attached" });
    await clickSeat(teacher, 0, 0);
    await teacher.locator('.selected-seat[data-selected="0-0"]').getByText("たろう").waitFor();
    await teacher.getByRole("button", { name: t("console_start") }).click();
    await expect.poll(() => end.isDisabled(), { timeout: WAIT }).toBe(false);
    // The node answered the start, sent after the selection: a call the selection had made would
    // have arrived before it.
    expect(await teacher.locator(".current-call").count()).toBe(0);
    await taro.locator('.video[data-phase="live"]').waitFor();
    expect(await taro.locator(".called-on").count()).toBe(0);
    await clickSeat(teacher, 0, 0);
    await taro.locator('.called-on[role="alert"]').waitFor();
    await teacher.locator(".current-call").getByText("たろう").waitFor();
    await evidence(taro, "10-learner-called-on");
    await teacher.getByRole("button", { name: t("console_call_clear") }).click();
    await taro.locator(".called-on").waitFor({ state: "detached" });

    // By keyboard: Enter selects the seat under the cursor and names who sits there.
    const teacherGrid = teacher.locator(".console-seats [role=grid]");
    await teacherGrid.focus();
    await teacherGrid.press("ArrowDown");
    for (let i = 0; i < 3; i++) await teacherGrid.press("ArrowRight");
    // The cursor's seat is named under the grid before anything is chosen.
    await teacher.locator(".console-seats .seat-hover").getByText("はなこ").waitFor();
    await teacherGrid.press("Enter");
    await teacher.locator('.selected-seat[data-selected="1-3"]').getByText("はなこ").waitFor();
    await teacher.getByRole("button", { name: t("console_unselect") }).click();

    // Calling by a suggested nickname.
    const call = teacher.locator("#call-input");
    await call.fill("はな");
    await teacher.locator('#call-suggestions [role="option"]').filter({ hasText: "はなこ" }).waitFor();
    await call.press("ArrowDown");
    await call.press("Enter");
    expect(await call.inputValue()).toBe("はなこ");
    await teacher.getByRole("button", { name: t("console_call_button"), exact: true }).click();
    await hanako.locator('.called-on[role="alert"]').waitFor();
    await teacher.getByRole("button", { name: t("console_call_clear") }).click();

    // --- The meter: a 「わからない」 spike alerts, the heat view shows who pressed -----------------
    // Taro presses twice, one meter tick apart (a tick names each seat that reacted once);
    // Hanako twice at once.
    const lostTotal = teacher.locator('tr[data-emotion="lost"] td.total');
    await taro.locator('button[data-emotion="lost"]').click();
    await lostTotal.filter({ hasText: /^1$/ }).waitFor();
    await taro.locator('button[data-emotion="lost"]').click();
    await lostTotal.filter({ hasText: /^2$/ }).waitFor();
    for (let i = 0; i < 2; i++) await hanako.locator('button[data-emotion="lost"]').click();
    await teacher.locator('.lost-alert[data-alert="lost"]').waitFor();
    await teacher.locator('tr[data-emotion="lost"] td.total').filter({ hasText: /^4$/ }).waitFor();
    await teacher.getByLabel(t("grid_view")).selectOption("heat:lost");
    await teacherGrid.focus();
    await teacherGrid.press("ArrowUp");
    await teacherGrid.press("Home");
    await expect.poll(() => teacher.locator("#seat-0-0").textContent(), { timeout: WAIT }).toContain(t("heat_count", { count: 2 }));
    expect(await pageScrolls(teacher)).toBe(false);
    // With the alert up, the whole meter is still on screen beside the grid.
    await inView(teacher, teacher.locator(".lost-alert"), "the lost alert");
    await inView(teacher, teacher.locator(".meter-panel svg"), "the live meter's chart");
    await inView(teacher, teacher.locator(".meter-table"), "the live meter's table");
    await evidence(teacher, "11-console-live");

    // --- The learner's video: volume, fullscreen, picture-in-picture ------------------------------
    await teacher.getByRole("button", { name: t("media_start") }).click();
    await teacher.locator('.preview[data-sending="yes"]').waitFor();
    await taro.locator('.video[data-media="playing"]').waitFor();
    // On the phone the playing video, its controls and the chat input share the screen.
    await phone.locator('.video[data-media="playing"]').waitFor();
    await inView(phone, phone.locator(".video-controls"), "the phone's video controls");
    await inView(phone, phone.locator("#chat-input"), "the phone's chat input under the live video");
    expect(await pageScrolls(phone)).toBe(false);
    await evidence(phone, "12-phone-live");
    const volume = taro.getByLabel(t("video_volume"));
    await volume.fill("40");
    await expect
      .poll(() => taro.locator('[data-video="camera"] video').evaluate((v: HTMLVideoElement) => v.volume), { timeout: WAIT })
      .toBeCloseTo(0.4);
    await taro.getByRole("button", { name: t("video_mute") }).click();
    expect(await taro.locator('[data-video="camera"] video').evaluate((v: HTMLVideoElement) => v.muted)).toBe(true);
    await taro.getByRole("button", { name: t("video_unmute") }).click();
    await taro.getByRole("button", { name: t("video_fullscreen") }).click();
    await expect.poll(() => taro.evaluate(() => document.fullscreenElement?.classList.contains("video") ?? false)).toBe(true);
    await taro.getByRole("button", { name: t("video_fullscreen_exit") }).click();
    await expect.poll(() => taro.evaluate(() => document.fullscreenElement === null)).toBe(true);
    // Picture-in-picture is offered where the browser has it (entering it crashes headless
    // Chromium's renderer, so the test stops at the button).
    expect(await taro.getByRole("button", { name: t("video_pip") }).count()).toBe(
      (await taro.evaluate(() => document.pictureInPictureEnabled)) ? 1 : 0,
    );
    // Slides shared: the camera is an inset the learner moves, hides or swaps with the slides.
    await teacher.getByRole("button", { name: t("media_share") }).click();
    const frame = taro.locator(".video-frame");
    await taro.locator('.video-frame[data-inset="br"] [data-video="screen"].main').waitFor();
    const cameraBox = taro.locator('[data-video="camera"]');
    const corner = async () => {
      const f = (await frame.boundingBox())!;
      const c = (await cameraBox.boundingBox())!;
      return { left: c.x - f.x < f.width / 4, top: c.y - f.y < f.height / 4, width: c.width / f.width };
    };
    expect(await corner()).toMatchObject({ left: false, top: false });
    expect((await corner()).width).toBeLessThan(0.3);
    await evidence(taro, "12-learner-video-slides");
    const insetButton = taro.locator("button.inset-toggle");
    await insetButton.click();
    await taro.locator('.video-frame[data-inset="bl"]').waitFor();
    expect(await corner()).toMatchObject({ left: true, top: false });
    await insetButton.click();
    await insetButton.click();
    await taro.locator('.video-frame[data-inset="tr"]').waitFor();
    expect(await corner()).toMatchObject({ left: false, top: true });
    await insetButton.click();
    await taro.locator('.video-frame[data-inset="hidden"]').waitFor();
    // Hidden from view, still playing the instructor's voice.
    expect((await corner()).width).toBeLessThan(0.01);
    expect(await cameraBox.locator("video").evaluate((v: HTMLVideoElement) => !v.paused)).toBe(true);
    await taro.getByRole("button", { name: t("video_swap") }).click();
    await taro.locator('[data-video="camera"].main').waitFor();
    await taro.locator('[data-video="screen"].corner').waitFor();
    await evidence(taro, "13-learner-video-swapped");
    await taro.getByRole("button", { name: t("video_swap") }).click();

    // --- The end: learners see it, the instructor gets the summary ------------------------------
    await end.click();
    await taro.getByText(t("closed_4105")).waitFor();
    await evidence(taro, "14-learner-ended");
    const summary = teacher.locator(".summary");
    await summary.waitFor();
    expect(Number((await summary.locator('[data-fact="attended"]').textContent())!.replace(/\D/g, ""))).toBe(3);
    expect(await summary.locator('[data-fact="unanswered"]').textContent()).toBe("1");
    await summary.getByText("スマホから質問です").waitFor();
    expect(await summary.locator(".summary-timeline tbody tr").count()).toBeGreaterThan(0);
    await evidence(teacher, "15-console-summary");

    expect(a11y).toEqual({});
    expect(pageErrors).toEqual([]);
  });
});
