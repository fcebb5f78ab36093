// A busy chat in real Chromium against a real room-server: the list draws only the rows in
// view, holds still when scrolled up and offers a jump to the new lines, and staff moderate a
// line from its one menu by keyboard alone.
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { formatTime, t } from "../src/i18n";
import { type Server, WAIT, artifactPath, chatLine, launchChromium, startServer } from "./harness";

let server: Server;
let browser: Browser;
const contexts: BrowserContext[] = [];
const pages: Page[] = [];
const pageErrors: string[] = [];

async function enter(user: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  contexts.push(context);
  const page = await context.newPage();
  pages.push(page);
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (e) => pageErrors.push(e.message));
  await page.goto(`${server.url}/sign-in`);
  await page.locator(`button[data-user="${user}"]`).click();
  await page.waitForURL(/\/lectures$/);
  await page.locator('li[data-lecture="demo"] button.primary').click();
  await page.waitForURL(/\/room\/demo$/);
  await page.locator('[data-status="connected"]').waitFor();
  return page;
}

/** Types and sends lines without waiting for each (the chat must keep up). */
async function sayAll(page: Page, lines: string[]): Promise<void> {
  const input = page.locator("#chat-input");
  for (const line of lines) {
    await input.fill(line);
    await input.press("Enter");
  }
}

/** Whether a row is inside the chat's visible box. */
async function inView(page: Page, text: string): Promise<boolean> {
  const row = await chatLine(page, text).boundingBox();
  const box = await page.locator(".chat-log").boundingBox();
  return row !== null && box !== null && row.y >= box.y - 1 && row.y + row.height <= box.y + box.height + 1;
}

beforeAll(async () => {
  // People here chat faster than the room normally lets one person.
  server = await startServer({ config: "[room]\nchat_interval_ms = 1\nchat_burst = 100000\n" });
  browser = await launchChromium();
});

afterEach(async (ctx) => {
  if (ctx.task.result?.state === "fail") {
    for (const [i, page] of pages.entries()) {
      await page.screenshot({ path: artifactPath(`chat-failure-${i}.png`), fullPage: true }).catch(() => {});
    }
  }
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  await server?.stop();
});

describe("the chat in a busy lecture", () => {
  it("draws only what is in view, offers a jump to new lines, and moderates by keyboard", async () => {
    const instructor = await enter("demo-instructor");
    const taro = await enter("demo-taro");
    const moderator = await enter("demo-moderator");

    // Staff lines say who wrote them: the instructor, or a moderator.
    await sayAll(moderator, ["モデレーターです"]);
    await sayAll(instructor, ["講師です"]);
    await chatLine(taro, "講師です").waitFor();
    expect(await chatLine(taro, "モデレーターです").locator(".tag.staff").textContent()).toBe(t("chat_badge_moderator"));
    expect(await chatLine(taro, "講師です").locator(".tag.staff").textContent()).toBe(t("chat_badge_instructor"));

    // A question, marked answered from its line's menu (by mouse here).
    await taro.locator("#chat-input").fill("質問があります");
    await taro.getByLabel(t("chat_question")).check();
    await taro.locator("#chat-input").press("Enter");
    await chatLine(instructor, "質問があります").locator(".chat-menu-button").click();
    await instructor.getByRole("menuitem", { name: t("console_mark_answered"), exact: true }).click();
    await chatLine(taro, "質問があります").locator(".tag.answered").waitFor();

    // Forty lines: far more than the list's height.
    const lines = Array.from({ length: 40 }, (_, i) => `行 ${i + 1}`);
    await sayAll(taro, lines);
    await chatLine(instructor, "行 40").waitFor();
    const log = instructor.locator(".chat-log");
    const drawn = Number(await log.getAttribute("data-rows-drawn"));
    expect(Number(await log.getAttribute("data-rows"))).toBe(43);
    expect(drawn).toBeLessThan(43);
    expect(await inView(instructor, "行 40")).toBe(true);
    // Screen readers: the log itself is not live; the polite region sums the burst up in one
    // sentence instead of forty.
    expect(await log.getAttribute("aria-live")).toBe("off");
    const announcer = instructor.locator("[data-chat-announcer]");
    expect(await announcer.getAttribute("aria-live")).toBe("polite");
    await expect.poll(() => announcer.textContent(), { timeout: WAIT }).toMatch(/^新しいメッセージ \d+ 件/);
    // One tab stop in the whole list.
    expect(await log.locator('[tabindex="0"]').count()).toBe(1);
    await instructor.screenshot({ path: artifactPath("chat-01-busy.png") });

    // Scrolled up, the list holds still and counts what arrives below.
    await log.evaluate((el) => {
      el.scrollTop = 0;
    });
    await chatLine(instructor, "モデレーターです").waitFor();
    expect(await instructor.locator(".chat-jump").count()).toBe(0);
    await sayAll(taro, ["行 41", "行 42", "行 43"]);
    const jumpButton = instructor.locator(".chat-jump");
    await jumpButton.filter({ hasText: t("chat_new_messages", { count: 3 }) }).waitFor();
    expect(await inView(instructor, "モデレーターです")).toBe(true);
    await instructor.screenshot({ path: artifactPath("chat-02-new-messages.png") });
    await jumpButton.click();
    await jumpButton.waitFor({ state: "detached" });
    await expect.poll(() => inView(instructor, "行 43")).toBe(true);

    // By keyboard: into the list (one Shift+Tab back from the message box), up one line, its
    // menu; Escape closes it and leaves the keyboard on the line.
    await instructor.locator("#chat-input").focus();
    await instructor.keyboard.press("Shift+Tab");
    const focusedText = () => instructor.evaluate(() => document.activeElement?.closest("li")?.textContent ?? "");
    expect(await focusedText()).toContain("行 43");
    await instructor.keyboard.press("ArrowUp");
    expect(await focusedText()).toContain("行 42");
    await instructor.keyboard.press("Enter");
    const menu = instructor.getByRole("menu");
    await menu.waitFor();
    await instructor.keyboard.press("Escape");
    await menu.waitFor({ state: "detached" });
    expect(await focusedText()).toContain("行 42");

    // Mute for 15 minutes: Enter, down to "Mute…", Enter, down to 15 minutes, Enter.
    await instructor.keyboard.press("Enter");
    await menu.waitFor();
    const focusedItem = () => instructor.evaluate(() => document.activeElement?.textContent ?? "");
    expect(await focusedItem()).toBe(t("console_delete"));
    while ((await focusedItem()) !== t("console_mute")) await instructor.keyboard.press("ArrowDown");
    await instructor.keyboard.press("Enter");
    await expect.poll(focusedItem).toBe(t("console_mute_minutes", { minutes: 1 }));
    await instructor.screenshot({ path: artifactPath("chat-03-mute-menu.png") });
    await instructor.keyboard.press("ArrowDown");
    await instructor.keyboard.press("ArrowDown");
    expect(await focusedItem()).toBe(t("console_mute_minutes", { minutes: 15 }));
    const asked = Date.now();
    await instructor.keyboard.press("Enter");
    await menu.waitFor({ state: "detached" });
    expect(await focusedText()).toContain("行 42");

    // The learner sees it: the box is closed until about 15 minutes from now.
    const note = taro.locator(".muted-note");
    await note.waitFor();
    expect(await taro.locator("#chat-input").isDisabled()).toBe(true);
    const until = [0, 1].map((m) => t("chat_muted", { time: formatTime(asked + 15 * 60_000 + m * 60_000) }));
    expect(until).toContain(await note.textContent());
    await taro.screenshot({ path: artifactPath("chat-04-muted.png") });

    // Calling on the line's author from its menu.
    await instructor.keyboard.press("Enter");
    await menu.waitFor();
    while ((await focusedItem()) !== t("console_call_this")) await instructor.keyboard.press("ArrowDown");
    await instructor.keyboard.press("Enter");
    await taro.locator(".called-on").waitFor();
    await instructor.locator(".current-call").filter({ hasText: "たろう" }).waitFor();

    // Removing asks which kind first; Escape steps back to the line's menu. "May not return"
    // closes the learner's room for good.
    await instructor.keyboard.press("Enter");
    await menu.waitFor();
    while ((await focusedItem()) !== t("console_remove")) await instructor.keyboard.press("ArrowDown");
    await instructor.keyboard.press("Enter");
    await expect.poll(focusedItem).toBe(t("console_remove_may_return"));
    await instructor.keyboard.press("Escape");
    await expect.poll(focusedItem).toBe(t("console_delete"));
    while ((await focusedItem()) !== t("console_remove")) await instructor.keyboard.press("ArrowDown");
    await instructor.keyboard.press("Enter");
    await expect.poll(focusedItem).toBe(t("console_remove_may_return"));
    await instructor.keyboard.press("ArrowDown");
    expect(await focusedItem()).toBe(t("console_remove_no_return"));
    await instructor.keyboard.press("Enter");
    await taro.getByText(t("closed_4104")).waitFor();

    // Rows are drawn again in the other language.
    const lastMenu = moderator.locator('[role="log"] li').last().locator(".chat-menu-button");
    expect(await lastMenu.getAttribute("aria-label")).toBe(t("chat_line_actions", { nickname: "たろう" }));
    await moderator.getByLabel(t("language")).selectOption("en");
    await expect.poll(() => lastMenu.getAttribute("aria-label")).toBe(t("chat_line_actions", { nickname: "たろう" }, "en"));

    expect(pageErrors).toEqual([]);
  });
});
