// The portal's sign-in hand-off in real Chromium against a real room-server: a link carrying
// someone's token signs nobody in unless this tab started that sign-in (login CSRF), and a
// sign-in started from the sign-in page and answered by the portal with its state does.
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakePortal, type Server, WAIT, artifactPath, demoToken, launchChromium, startServer } from "./harness";

let portal: FakePortal;
let server: Server;
let browser: Browser;
const contexts: BrowserContext[] = [];
const pageErrors: string[] = [];

async function newPage(): Promise<Page> {
  const context = await browser.newContext();
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (e) => pageErrors.push(e.message));
  return page;
}

const storedToken = (page: Page) => page.evaluate(() => localStorage.getItem("lecture.token"));

/** The account the tab acts as, as the gate sees its token; null when signed out. */
async function nickname(page: Page): Promise<string | null> {
  return page.evaluate(async () => {
    const token = localStorage.getItem("lecture.token");
    if (!token) return null;
    const r = await fetch("/api/v1/me/profile", { headers: { authorization: `Bearer ${token}` } });
    return ((await r.json()) as { nickname: string | null }).nickname;
  });
}

/** Opens `url` and checks that its token was dropped: not adopted, not in the address. */
async function expectRefused(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.getByTestId("handoff-refused").waitFor();
  expect(page.url()).toBe(`${server.url}/sign-in`);
}

beforeAll(async () => {
  portal = new FakePortal();
  const portalUrl = await portal.start();
  server = await startServer({ portalSignInUrl: `${portalUrl}/sign-in` });
  portal.rooms = server;
  browser = await launchChromium();
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await server?.stop();
  await portal?.stop();
});

describe("the portal's sign-in hand-off", () => {
  it("adopts a token only as the answer to a sign-in this tab started, once", async () => {
    // Someone sends a link holding their own token: with a state of their own, or none.
    const theirs = await demoToken(server, "demo-jiro");
    const page = await newPage();
    await expectRefused(page, `${server.url}/lectures#token=${encodeURIComponent(theirs)}&state=forged`);
    expect(await storedToken(page)).toBeNull();
    await expectRefused(page, `${server.url}/lectures#token=${encodeURIComponent(theirs)}`);
    expect(await storedToken(page)).toBeNull();
    await page.screenshot({ path: artifactPath("signin-01-link-refused.png"), fullPage: true });

    // The sign-in page sends the person to the portal, which answers with the page's state.
    await page.getByTestId("portal-sign-in").click();
    await page.waitForURL(`${server.url}/lectures`);
    await page.locator(".card").first().waitFor();
    expect(new URL(page.url()).hash).toBe("");
    expect(await nickname(page)).toBe("たろう");
    await page.screenshot({ path: artifactPath("signin-02-portal-sign-in.png"), fullPage: true });

    // The same answer again (from the history, or sent on by someone) is refused, and the
    // person stays who they signed in as.
    const answer = portal.lastAnswer;
    expect(answer).toContain("#token=");
    await page.goto(`${server.url}/check`);
    await expectRefused(page, answer!);
    expect(await nickname(page)).toBe("たろう");

    // A foreign link in a signed-in tab leaves its person alone too.
    await expectRefused(page, `${server.url}/lectures#token=${encodeURIComponent(theirs)}&state=forged`);
    expect(await nickname(page)).toBe("たろう");
    expect(pageErrors).toEqual([]);
  });
});
