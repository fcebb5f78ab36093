// Two learners and an instructor in one lecture, in real Chromium against a real room-server:
// they sit, chat, react, get called on, see an announcement, leave, drop off the network and
// come back where they were. A screenshot of every page goes to e2e-artifacts/.
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Lang, t } from "../src/i18n";
import { Relay, type Server, WAIT, artifactPath, chatLine, enterFromMyPage, launchChromium, portalLecture, signIn, startServer } from "./harness";

let server: Server;
let relay: Relay;
let relayUrl: string;
let browser: Browser;
const contexts: BrowserContext[] = [];
const pageErrors: string[] = [];
const unexpectedDialogs: string[] = [];

const HTML_NICK = "<b>html</b>さん";

const pages: Page[] = [];

async function open(base: string, viewport = { width: 1280, height: 900 }): Promise<Page> {
  const context = await browser.newContext({ viewport });
  contexts.push(context);
  const page = await context.newPage();
  pages.push(page);
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (e) => pageErrors.push(e.message));
  // The node's Content-Security-Policy must not block anything the client does.
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/i.test(m.text())) pageErrors.push(m.text());
  });
  page.on("dialog", (d) => {
    if (d.type() === "confirm") void d.accept();
    else {
      unexpectedDialogs.push(d.message());
      void d.dismiss();
    }
  });
  await page.goto(`${base}/sign-in`);
  return page;
}

async function connected(page: Page): Promise<void> {
  await page.locator('[data-status="connected"]').waitFor();
}

/** Text of the seat the grid's keyboard cursor is on, after moving it to (row, col). */
async function seatText(page: Page, row: number, col: number): Promise<string> {
  const grid = page.locator('[role="grid"]');
  const rows = Number(await grid.getAttribute("aria-rowcount"));
  const cols = Number(await grid.getAttribute("aria-colcount"));
  await grid.focus();
  for (let i = 0; i < Math.ceil(rows / 10); i++) await grid.press("PageUp");
  for (let i = 0; i < Math.floor(row / 10); i++) await grid.press("PageDown");
  for (let i = 0; i < row % 10; i++) await grid.press("ArrowDown");
  if (col < cols / 2) {
    await grid.press("Home");
    for (let i = 0; i < col; i++) await grid.press("ArrowRight");
  } else {
    await grid.press("End");
    for (let i = 0; i < cols - 1 - col; i++) await grid.press("ArrowLeft");
  }
  return (await page.locator(`#seat-${row}-${col}`).textContent()) ?? "";
}

/**
 * Moves the keyboard cursor to the seat and waits, as a person does, until its label contains
 * `text` (the grid updates as the room's ticks arrive; a learner's page asks for a nickname
 * once the cursor rests on a seat).
 */
async function waitSeat(page: Page, row: number, col: number, text: string): Promise<void> {
  await seatText(page, row, col);
  const cell = page.locator(`#seat-${row}-${col}`);
  await expect.poll(async () => (await cell.textContent()) ?? "", { timeout: WAIT, interval: 100 }).toContain(text);
}

/** Scrolls a seat into view and clicks it on the canvas, as a person with a mouse does. */
async function clickSeat(page: Page, row: number, col: number): Promise<void> {
  const cell = Number(await page.locator('[role="grid"]').getAttribute("data-cell"));
  const scroller = page.locator(".grid-scroller");
  await scroller.scrollIntoViewIfNeeded();
  const scroll = await scroller.evaluate(
    (el, [r, c, size]) => {
      el.scrollTop = Math.max(0, r! * size! - el.clientHeight / 2);
      el.scrollLeft = Math.max(0, c! * size! - el.clientWidth / 2);
      return { top: el.scrollTop, left: el.scrollLeft };
    },
    [row, col, cell],
  );
  const box = await scroller.boundingBox();
  if (!box) throw new Error("no seat grid on the page");
  await page.mouse.click(box.x + (col + 0.5) * cell - scroll.left, box.y + (row + 0.5) * cell - scroll.top);
}

/** Staff: opens a chat line's menu and picks `items` in turn (a submenu, then its choice). */
async function moderate(page: Page, text: string, items: string[]): Promise<void> {
  await chatLine(page, text).first().locator(".chat-menu-button").click();
  for (const name of items) await page.getByRole("menuitem", { name, exact: true }).click();
}

/** Types and sends a line, and waits for the node to deliver it back. */
async function say(page: Page, text: string, question = false, l: Lang = "ja"): Promise<void> {
  await type(page, text, question, l);
  await chatLine(page, text).first().waitFor();
}

/** Types and sends a line without waiting for it (offline, it stays in the log as unsent). */
async function type(page: Page, text: string, question = false, l: Lang = "ja"): Promise<void> {
  await page.locator("#chat-input").fill(text);
  if (question) await page.getByLabel(t("chat_question", {}, l)).check();
  await page.getByRole("button", { name: t("chat_send", {}, l), exact: true }).click();
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: artifactPath(`${name}.png`), fullPage: true });
}

beforeAll(async () => {
  server = await startServer();
  relay = new Relay(server.port);
  relayUrl = await relay.start();
  browser = await launchChromium();
});

afterEach(async (ctx) => {
  // On failure, what every browser showed.
  if (ctx.task.result?.state === "fail") {
    for (const [i, page] of pages.entries()) await shot(page, `failure-${i}`).catch(() => {});
  }
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  await relay?.stop();
  await server?.stop();
});

describe("a lecture in the browser", () => {
  it("runs from sign-in to the end of the lecture", async () => {
    // --- Sign-in and My lectures ------------------------------------------------------------
    const instructor = await open(server.url);
    await shot(instructor, "01-sign-in");
    await signIn(instructor, "demo-instructor");
    await instructor.locator('li[data-lecture="demo"]').getByText(t("enter_staff")).waitFor();

    // Taro's browser reaches the server through the relay, so the test can cut his network.
    const taro = await open(relayUrl);
    await signIn(taro, "demo-taro");
    const demoCard = taro.locator('li[data-lecture="demo"]');
    await demoCard.getByText(t("state_doors_open")).waitFor();
    await expect.poll(() => demoCard.locator(".countdown").textContent()).toMatch(/^開始まで 0:1\d:\d\d$/);
    await shot(taro, "02-my-lectures");

    // A refusal explained, with what to do.
    const jiro = await open(server.url);
    await signIn(jiro, "demo-jiro");
    const jiroCard = jiro.locator('li[data-lecture="demo"]');
    await jiroCard.getByText(t("fix_payment_pending")).waitFor();
    expect(await jiroCard.locator("button.primary").count()).toBe(0);
    await shot(jiro, "03-my-lectures-payment-pending");

    const html = await open(server.url);
    await signIn(html, "demo-html");

    // --- Into the room ----------------------------------------------------------------------
    await enterFromMyPage(instructor, "demo");
    await instructor.getByText(t("console_title")).first().waitFor();
    await enterFromMyPage(taro, "demo");
    await enterFromMyPage(html, "demo");
    await taro.locator('.video[data-phase="doors_open"]').getByText(t("video_waiting")).waitFor();

    // Sitting: Taro clicks a cell, the other learner uses the keyboard.
    await clickSeat(taro, 0, 0);
    await taro.getByText(t("your_seat", { seat: t("seat_name", { row: 1, col: 1 }) })).waitFor();
    const grid = html.locator('[role="grid"]');
    await grid.focus();
    await grid.press("ArrowDown");
    await grid.press("ArrowRight");
    await grid.press("ArrowRight");
    expect(await html.locator("#seat-1-2").textContent()).toContain(t("seat_empty"));
    await grid.press("Enter");
    await html.getByText(t("your_seat", { seat: t("seat_name", { row: 2, col: 3 }) })).waitFor();
    // Taking an occupied seat says it is taken (once her grid shows it taken).
    await waitSeat(html, 0, 0, "たろう");
    await clickSeat(html, 0, 0);
    await html.getByText(t("seat_taken_notice")).waitFor();
    await waitSeat(instructor, 0, 0, "たろう");
    await waitSeat(instructor, 1, 2, HTML_NICK);
    await waitSeat(taro, 1, 2, HTML_NICK);

    // --- Chat, with HTML that must stay text --------------------------------------------------
    await say(taro, "こんにちは");
    await chatLine(html, "こんにちは").waitFor();
    await say(html, "質問です <script>alert(1)</script>", true);
    await chatLine(instructor, "質問です <script>alert(1)</script>").waitFor();
    for (const page of [instructor, taro, html]) {
      await page.locator('[role="log"] .nick', { hasText: HTML_NICK }).first().waitFor();
      expect(await page.locator('[role="log"] b, [role="log"] script').count()).toBe(0);
    }
    expect(await instructor.locator(".nick").filter({ hasText: HTML_NICK }).first().textContent()).toBe(HTML_NICK);

    // The questions pane, answered.
    const question = instructor.locator(".questions-pane li").filter({ hasText: "質問です" });
    await question.getByRole("button", { name: t("console_mark_answered") }).click();
    await chatLine(html, "質問です").locator(".tag.answered").waitFor();
    await question.locator(".tag.answered").waitFor();
    expect(await question.getByRole("button", { name: t("console_mark_answered") }).count()).toBe(0);

    // --- Reactions: bursts for learners, the meter for the instructor -------------------------
    await taro.locator('button[data-emotion="applause"]').click();
    await instructor.locator('tr[data-emotion="applause"] td.total').filter({ hasText: /^1$/ }).waitFor();
    await html.locator('.burst[data-emotion="applause"]').waitFor();

    // --- Going live ---------------------------------------------------------------------------
    await instructor.getByRole("button", { name: t("console_start") }).click();
    await taro.locator('.video[data-phase="live"]').waitFor();
    await html.locator('.video[data-phase="live"]').waitFor();

    // --- Calling on: by nickname, then by clicking a seat --------------------------------------
    await instructor.locator("#call-input").fill("たろう");
    await instructor.getByRole("button", { name: t("console_call_button") }).click();
    await taro.locator('.called-on[role="alert"]').getByText(t("called_on_you", { by: "山田講師" })).waitFor();
    await html.getByText(t("called_on_other", { nickname: "たろう" })).waitFor();
    // The chime sounded (the browser let the page's audio run).
    await taro.locator('.called-on[data-sound="played"]').waitFor();
    await shot(taro, "04-room-learner-called-on");
    await say(taro, "はい、わかりました");
    await chatLine(instructor, "はい、わかりました").locator(".tag.call").waitFor();
    await instructor.locator(".current-call").getByText(t("console_call_answered")).waitFor();

    // A first click selects the seat and names who sits there, a second calls.
    await clickSeat(instructor, 1, 2);
    await instructor.locator('.selected-seat[data-selected="1-2"]').getByText(HTML_NICK).waitFor();
    await clickSeat(instructor, 1, 2);
    await html.locator('.called-on[role="alert"]').waitFor();
    await taro.getByText(t("called_on_other", { nickname: HTML_NICK })).waitFor();
    expect(await taro.locator(".called-on").count()).toBe(0);
    await instructor.getByRole("button", { name: t("console_call_clear") }).click();
    await html.locator(".called-on").waitFor({ state: "detached" });

    // --- An announcement, shown as text --------------------------------------------------------
    const notice = "<i>10分休憩</i>します & 再開は15時";
    await instructor.locator("#announce-input").fill(notice);
    await instructor.getByRole("button", { name: t("console_announce") }).click();
    for (const page of [taro, html]) {
      await page.locator(".announcement-text").filter({ hasText: notice }).waitFor();
      expect(await page.locator(".announcement-text").textContent()).toBe(notice);
      expect(await page.locator(".announcement i").count()).toBe(0);
    }

    // --- Moderation: a deleted message disappears for everyone ----------------------------------
    await moderate(instructor, "こんにちは", [t("console_delete")]);
    await chatLine(taro, t("chat_deleted")).waitFor();
    await chatLine(html, t("chat_deleted")).waitFor();
    expect(await chatLine(html, "こんにちは").count()).toBe(0);
    await shot(instructor, "05-instructor-console");

    // --- A network drop: Taro comes back where he was and gets what he missed --------------------
    relay.cut();
    await taro.locator('[data-status="reconnecting"]').waitFor();
    await waitSeat(instructor, 0, 0, t("seat_away", { nickname: "たろう" }));
    await say(instructor, "聞こえていますか？");
    // What he types meanwhile is kept, shown as not yet sent …
    await type(taro, "切れている間に書きました");
    await taro.locator("li.chat-line.unsent").filter({ hasText: "切れている間に書きました" }).waitFor();
    expect(await chatLine(taro, "切れている間に書きました").count()).toBe(0);
    await shot(taro, "06-room-reconnecting");
    relay.restore();
    await connected(taro);
    await chatLine(taro, "聞こえていますか？").waitFor();
    // … and sent once he is back: acknowledged, and everyone has it exactly once.
    await taro.locator("li.chat-line.unsent").waitFor({ state: "detached" });
    await chatLine(instructor, "切れている間に書きました").waitFor();
    expect(await chatLine(instructor, "切れている間に書きました").count()).toBe(1);
    expect(await chatLine(taro, "切れている間に書きました").count()).toBe(1);
    // Nothing twice, nothing lost, the seat kept.
    expect(await chatLine(taro, "はい、わかりました").count()).toBe(1);
    expect(await chatLine(taro, "質問です").count()).toBe(1);
    await taro.getByText(t("your_seat", { seat: t("seat_name", { row: 1, col: 1 }) })).waitFor();
    // The instructor's grid shows him back in his seat, no longer away (the seat text contains
    // the nickname both ways, so wait for the whole text).
    await expect
      .poll(() => seatText(instructor, 0, 0), { timeout: WAIT, interval: 100 })
      .toBe(`${t("seat_name", { row: 1, col: 1 })}: たろう`);

    // --- Leave, and come back ----------------------------------------------------------------
    await html.getByRole("button", { name: t("leave") }).click();
    await html.getByText(t("closed_left")).waitFor();
    await waitSeat(instructor, 1, 2, t("seat_empty"));
    await shot(html, "07-left-the-room");
    await html.getByRole("button", { name: t("enter_again") }).click();
    await connected(html);
    await chatLine(html, "聞こえていますか？").waitFor();
    await clickSeat(html, 1, 2);
    await waitSeat(instructor, 1, 2, HTML_NICK);

    // --- A phone-sized screen, and English ----------------------------------------------------
    const phone = await open(server.url, { width: 390, height: 844 });
    await signIn(phone, "demo-hanako");
    await enterFromMyPage(phone, "demo");
    await phone.getByRole("tablist").waitFor();
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await shot(phone, "08-room-phone");
    await phone.getByLabel(t("language")).selectOption("en");
    await phone.getByRole("heading", { name: t("seats_title", {}, "en") }).waitFor();
    await connected(phone);

    // --- Moderation: mute, and remove ------------------------------------------------------------
    await moderate(instructor, "質問です", [t("console_mute"), t("console_mute_minutes", { minutes: 5 })]);
    await html.locator(".muted-note").waitFor();
    expect(await html.locator("#chat-input").isDisabled()).toBe(true);
    await phone.getByRole("tab", { name: t("tab_chat", {}, "en") }).click();
    await say(phone, "よろしくお願いします", false, "en");
    await moderate(instructor, "よろしくお願いします", [t("console_remove"), t("console_remove_may_return")]);
    await phone.getByText(t("closed_4103", {}, "en")).waitFor();

    // --- The connection check ------------------------------------------------------------------
    const check = await open(server.url);
    await check.goto(`${server.url}/check`);
    await check.locator('[data-check="rtt"][data-verdict="pass"]').waitFor();
    await check.locator('[data-check="download"][data-verdict="pass"]').waitFor();
    await check.locator('[data-check="browser"][data-verdict="pass"]').waitFor();
    await check.locator('[data-check="webrtc"][data-verdict="pass"]').waitFor();
    await shot(check, "09-connection-check");

    // --- The end ---------------------------------------------------------------------------------
    await instructor.getByRole("button", { name: t("console_end") }).click();
    await taro.getByText(t("closed_4105")).waitFor();
    await html.getByText(t("closed_4105")).waitFor();
    await shot(taro, "10-lecture-ended");

    expect(pageErrors).toEqual([]);
    expect(unexpectedDialogs).toEqual([]);
  });

  it("gives staff the raised hands in order, the questions by votes, and the muted learners", async () => {
    await portalLecture(server, "qa", { title: "質疑応答 / Questions and answers", startsInMin: 15, rows: 4, cols: 6, buyers: ["demo-taro", "demo-hanako"] });
    const enter = async (user: string) => {
      const page = await open(server.url);
      await signIn(page, user);
      await enterFromMyPage(page, "qa");
      return page;
    };
    const teacher = await enter("demo-instructor");
    const taro = await enter("demo-taro");
    const hanako = await enter("demo-hanako");
    const queue = teacher.locator(".hand-queue-list li .nick");

    // --- Raised hands: Hanako first, then Taro; the console calls on the first --------------------
    await hanako.getByRole("button", { name: t("hand_raise") }).click();
    await hanako.locator('.hand-toggle[data-hand="up"]').waitFor();
    await expect.poll(() => queue.allTextContents(), { timeout: WAIT }).toEqual(["はなこ"]);
    await taro.getByRole("button", { name: t("hand_raise") }).click();
    await expect.poll(() => queue.allTextContents(), { timeout: WAIT }).toEqual(["はなこ", "たろう"]);
    await taro.locator(".hand-count").getByText(t("hand_count", { count: 2 })).waitFor();
    await taro.locator('.hand-toggle[data-hand="up"]').getByRole("button", { name: t("hand_lower") }).waitFor();
    await shot(teacher, "14-console-hand-queue");
    await teacher.getByRole("button", { name: t("hands_call_first") }).click();
    await hanako.locator('.called-on[role="alert"]').waitFor();
    await expect.poll(() => queue.allTextContents(), { timeout: WAIT }).toEqual(["たろう"]);
    // Called on, her hand is down.
    await hanako.locator('.hand-toggle[data-hand="down"]').waitFor();
    // She raises it again (to the end of the queue) and lowers it herself.
    await hanako.getByRole("button", { name: t("hand_raise") }).click();
    await expect.poll(() => queue.allTextContents(), { timeout: WAIT }).toEqual(["たろう", "はなこ"]);
    await hanako.getByRole("button", { name: t("hand_lower") }).click();
    await expect.poll(() => queue.allTextContents(), { timeout: WAIT }).toEqual(["たろう"]);
    // Any hand in the queue can be called on.
    await teacher.getByRole("button", { name: t("hands_call_label", { nickname: "たろう" }) }).click();
    await taro.locator('.called-on[role="alert"]').waitFor();
    await teacher.locator(".hand-queue").getByText(t("hands_empty")).waitFor();
    await teacher.getByRole("button", { name: t("console_call_clear") }).click();

    // --- Questions: Hanako asks first, Taro second; Hanako upvotes Taro's ----------------------------
    await say(hanako, "はなこの質問です", true);
    await say(taro, "たろうの質問です", true);
    const item = (page: Page, text: string) => page.locator(".questions-pane li").filter({ hasText: text });
    await item(hanako, "たろうの質問です").waitFor();
    // No vote on your own question.
    expect(await item(hanako, "はなこの質問です").locator("button.upvote").count()).toBe(0);
    await item(hanako, "たろうの質問です").getByRole("button", { name: t("questions_upvote_label", { nickname: "たろう" }) }).click();
    await item(hanako, "たろうの質問です").locator('button.upvote[aria-pressed="true"]').waitFor();
    for (const page of [teacher, taro, hanako]) {
      await item(page, "たろうの質問です").locator(".question-votes").getByText(t("questions_votes", { count: 1 })).waitFor();
    }
    // The console sorts by votes (Taro's first) or by time (Hanako's first).
    const order = () => teacher.locator(".questions-pane li .chat-text").allTextContents();
    await teacher.getByRole("button", { name: t("questions_sort_votes") }).click();
    await expect.poll(order, { timeout: WAIT }).toEqual(["たろうの質問です", "はなこの質問です"]);
    await teacher.getByRole("button", { name: t("questions_sort_time") }).click();
    await expect.poll(order, { timeout: WAIT }).toEqual(["はなこの質問です", "たろうの質問です"]);
    await teacher.getByRole("button", { name: t("questions_sort_votes") }).click();
    await expect.poll(order, { timeout: WAIT }).toEqual(["たろうの質問です", "はなこの質問です"]);
    await shot(teacher, "15-console-questions-by-votes");
    await shot(hanako, "16-learner-questions");
    // Pressing again takes the vote back.
    await item(hanako, "たろうの質問です").getByRole("button", { name: t("questions_upvote_label", { nickname: "たろう" }), pressed: true }).click();
    await item(hanako, "たろうの質問です").getByRole("button", { pressed: false }).waitFor();
    await item(teacher, "たろうの質問です").locator(".question-votes").getByText(t("questions_votes", { count: 0 })).waitFor();

    // --- The muted list: a marker while Taro is muted, gone once unmuted ------------------------------
    await moderate(teacher, "たろうの質問です", [t("console_mute"), t("console_mute_minutes", { minutes: 5 })]);
    const mutedTaro = teacher.locator(".muted-list li").filter({ hasText: "たろう" });
    await mutedTaro.locator(".muted-marker").waitFor();
    await taro.locator(".muted-note").waitFor();
    // The console marks him muted where his question is too.
    await item(teacher, "たろうの質問です").locator(".muted-marker").waitFor();
    await shot(teacher, "17-console-muted-list");
    await mutedTaro.getByRole("button", { name: t("muted_unmute_label", { nickname: "たろう" }) }).click();
    await mutedTaro.waitFor({ state: "detached" });
    expect(await item(teacher, "たろうの質問です").locator(".muted-marker").count()).toBe(0);
    await teacher.locator(".muted-list").getByText(t("muted_empty")).waitFor();
    await taro.locator(".muted-note").waitFor({ state: "detached" });
    expect(await taro.locator("#chat-input").isDisabled()).toBe(false);
    expect(pageErrors).toEqual([]);
  });

  it("broadcasts the instructor's camera to learners once the lecture is live", async () => {
    await portalLecture(server, "video", { title: "映像の講座 / A lecture with video", startsInMin: 15, rows: 4, cols: 6, buyers: ["demo-taro", "demo-hanako"] });
    const enter = async (user: string) => {
      const page = await open(server.url);
      await signIn(page, user);
      await enterFromMyPage(page, "video");
      return page;
    };
    const frames = async (page: Page) => Number(await page.locator(".video").getAttribute("data-frames-decoded"));
    /** The learner's video is really playing: decoded frames keep increasing. */
    const playing = async (page: Page) => {
      await page.locator('.video[data-media="playing"]').waitFor();
      await expect.poll(() => frames(page), { timeout: WAIT }).toBeGreaterThan(0);
      const seen = await frames(page);
      await expect.poll(() => frames(page), { timeout: WAIT }).toBeGreaterThan(seen);
    };

    const teacher = await enter("demo-instructor");
    await teacher.getByRole("button", { name: t("media_start") }).click();
    await teacher.locator('.preview[data-sending="yes"]').waitFor();
    const taro = await enter("demo-taro");
    // Before the lecture is live, learners see the waiting state, not the camera.
    await taro.locator('.video[data-phase="doors_open"][data-media="waiting"]').waitFor();
    expect(await taro.locator(".video video").count()).toBe(0);

    await teacher.getByRole("button", { name: t("console_start") }).click();
    await playing(taro);
    // A learner arriving mid-lecture gets a picture promptly (the node asks for a keyframe).
    const hanako = await enter("demo-hanako");
    await playing(hanako);
    await shot(taro, "12-room-learner-video");
    await shot(teacher, "13-console-broadcasting");

    await teacher.getByRole("button", { name: t("media_stop") }).click();
    await taro.locator('.video[data-media="waiting"]').waitFor();
    await hanako.locator('.video[data-media="waiting"]').waitFor();
    expect(pageErrors).toEqual([]);
  });

  it("seats thousands: a 60 x 100 grid scrolls, zooms and seats by keyboard and mouse", async () => {
    await portalLecture(server, "big", { title: "大講堂 / The big hall", startsInMin: 20, rows: 60, cols: 100, buyers: ["demo-taro", "demo-hanako"] });
    const enterBig = async (user: string) => {
      const page = await open(server.url);
      await signIn(page, user);
      await enterFromMyPage(page, "big");
      return page;
    };
    const teacher = await enterBig("demo-instructor");
    const taro = await enterBig("demo-taro");
    const hanako = await enterBig("demo-hanako");

    // Keyboard: four pages down, five rows more, to the row's end, nineteen seats back.
    const grid = taro.locator('[role="grid"]');
    expect(await grid.getAttribute("aria-rowcount")).toBe("60");
    expect(await grid.getAttribute("aria-colcount")).toBe("100");
    await grid.focus();
    for (let i = 0; i < 4; i++) await grid.press("PageDown");
    for (let i = 0; i < 5; i++) await grid.press("ArrowDown");
    await grid.press("End");
    for (let i = 0; i < 19; i++) await grid.press("ArrowLeft");
    await grid.press("Enter");
    await taro.getByText(t("your_seat", { seat: t("seat_name", { row: 46, col: 81 }) })).waitFor();
    // The grid scrolled to the cursor.
    const scrolled = await taro.locator(".grid-scroller").evaluate((el) => el.scrollTop > 0 && el.scrollLeft > 0);
    expect(scrolled).toBe(true);

    // Mouse, after zooming in (the whole hall starts at the smallest cells).
    const before = Number(await hanako.locator('[role="grid"]').getAttribute("data-cell"));
    await hanako.getByRole("button", { name: t("zoom_in") }).click();
    await hanako.getByRole("button", { name: t("zoom_in") }).click();
    await expect.poll(async () => Number(await hanako.locator('[role="grid"]').getAttribute("data-cell"))).toBeGreaterThan(before);
    await clickSeat(hanako, 57, 3);
    await hanako.getByText(t("your_seat", { seat: t("seat_name", { row: 58, col: 4 }) })).waitFor();

    await waitSeat(teacher, 45, 80, "たろう");
    await waitSeat(teacher, 57, 3, "はなこ");
    // A learner's grid comes without names: the seat under the keyboard cursor is named once
    // the page has asked the node.
    await waitSeat(hanako, 45, 80, "たろう");
    await shot(teacher, "11-console-6000-seats");
    expect(pageErrors).toEqual([]);
  });
});
