// A Redis outage in the browser: two nodes share a lecture through Redis; Redis stalls
// (SIGSTOP), each node runs the room on alone and its people keep talking; Redis comes back
// and every page shows every line said on either node exactly once, in the shared order —
// also when more was said than a welcome's snapshot carries (here 3 lines, to keep it short).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  PORTAL_IDENTITY,
  type Server,
  WAIT,
  artifactPath,
  chatLine,
  enterFromMyPage,
  launchChromium,
  portalToken,
  sendLine,
  signIn,
  startRedis,
  startServer,
  watchedPage,
} from "./harness";

const work = mkdtempSync(path.join(tmpdir(), "room-outage-"));
let redis: Awaited<ReturnType<typeof startRedis>>;
let nodeA: Server;
let nodeB: Server;
let browser: Browser;
const contexts: BrowserContext[] = [];
const pages: Page[] = [];
const pageErrors: string[] = [];

beforeAll(async () => {
  redis = await startRedis(work);
  // One deployment: the records, the ticket secret and Redis shared. A welcome carries the
  // newest 3 lines (50 by default), and people may speak quickly.
  const shared = `ticket_secret = "outage-e2e-shared-ticket-secret-0123456789"\nredis_url = "redis://127.0.0.1:${redis.port}/0"\n`;
  const room = "[room]\nwelcome_chat_len = 3\nchat_burst = 100\n";
  const db = `sqlite://${path.join(work, "shared.db")}`;
  const apiKey = "outage-e2e-integration-key-0123456789abcdef";
  nodeA = await startServer({ databaseUrl: db, apiKey, config: `${shared}${room}` });
  // Hanako's node: no demo people of its own; she comes with the portal's identity token.
  nodeB = await startServer({ demo: false, databaseUrl: db, apiKey, config: `${shared}${PORTAL_IDENTITY}${room}` });
  browser = await launchChromium();
}, 120_000);

afterEach(async (ctx) => {
  if (ctx.task.result?.state === "fail") {
    for (const [i, page] of pages.entries()) await page.screenshot({ path: artifactPath(`outage-failure-${i}.png`) }).catch(() => {});
  }
});

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {});
  await browser?.close();
  redis?.thaw();
  await nodeB?.stop();
  await nodeA?.stop();
  redis?.stop();
  rmSync(work, { recursive: true, force: true });
}, 60_000);

async function open(on: Server): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  contexts.push(context);
  const page = await watchedPage(context, pageErrors);
  pages.push(page);
  page.setDefaultTimeout(WAIT);
  await page.goto(`${on.url}/sign-in`);
  return page;
}

/** The test's lines a page shows, in its order (few enough to be drawn all at once). */
async function shown(page: Page): Promise<string[]> {
  const texts = await page.locator('[role="log"] li[data-offset] .chat-text').allTextContents();
  return texts.map((s) => s.trim()).filter((s) => s.startsWith("outage-"));
}

describe("a Redis outage under a lecture held by two nodes", () => {
  it("every page gets every line said on either node once, however much was said meanwhile", async () => {
    const taro = await open(nodeA);
    await signIn(taro, "demo-taro");
    await enterFromMyPage(taro, "demo");
    const hanako = await open(nodeB);
    await hanako.evaluate((token) => localStorage.setItem("lecture.token", token), portalToken("demo-hanako"));
    await hanako.goto(`${nodeB.url}/lectures`);
    await enterFromMyPage(hanako, "demo");

    const said = ["outage-1-taro", "outage-2-hanako"];
    await sendLine(taro, said[0]!);
    await chatLine(hanako, said[0]!).waitFor();
    await sendLine(hanako, said[1]!);
    await chatLine(taro, said[1]!).waitFor();

    // Redis stalls: each node notices, tells its people, and runs the room on alone.
    redis.freeze();
    for (const page of [taro, hanako]) await page.locator(".degraded").waitFor({ timeout: 30_000 });
    // Taro says more than a welcome's snapshot carries; Hanako says a line on her node.
    const alone = ["outage-3-taro", "outage-4-taro", "outage-5-taro", "outage-6-taro", "outage-7-taro"];
    for (const text of alone) {
      await sendLine(taro, text);
      await chatLine(taro, text).waitFor();
    }
    await sendLine(hanako, "outage-8-hanako");
    await chatLine(hanako, "outage-8-hanako").waitFor();
    // Neither hears the other meanwhile.
    expect(await chatLine(hanako, "outage-3-taro").count()).toBe(0);
    expect(await chatLine(taro, "outage-8-hanako").count()).toBe(0);
    await taro.screenshot({ path: artifactPath("outage-01-alone.png") });

    // Redis goes on: the nodes return to the shared room and resync their people.
    redis.thaw();
    const everything = [...said, ...alone, "outage-8-hanako"];
    for (const [name, page] of [["Taro", taro], ["Hanako", hanako]] as const) {
      await page.locator(".degraded").waitFor({ state: "detached", timeout: 60_000 });
      for (const text of everything) {
        await chatLine(page, text)
          .waitFor({ timeout: 30_000 })
          .catch(async () => {
            throw new Error(`${name}'s page never showed ${text}; it shows ${JSON.stringify(await shown(page))}`);
          });
      }
    }
    const taroShows = await shown(taro);
    const hanakoShows = await shown(hanako);
    expect([...taroShows].sort(), "Taro's page: every line once").toEqual([...everything].sort());
    expect([...hanakoShows].sort(), "Hanako's page: every line once").toEqual([...everything].sort());
    expect(hanakoShows, "both in the shared order").toEqual(taroShows);
    // Each one's own lines in the order said.
    expect(taroShows.filter((l) => l.endsWith("-taro"))).toEqual(everything.filter((l) => l.endsWith("-taro")));
    await hanako.screenshot({ path: artifactPath("outage-02-back.png") });
    expect(pageErrors).toEqual([]);
  }, 180_000);
});
