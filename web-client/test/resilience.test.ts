// Coming back fast: while the lecture is live a lost connection is retried within a second or
// two, still jittered and still backing off; before it, the gentler back-off of the protocol.
import { describe, expect, it } from "vitest";
import { CALL_VIBRATION, vibrate } from "../src/room/CallAlert";
import { MAX_LIVE_BACKOFF_MS, backoff, closeVerdict, liveBackoff } from "../src/room/policy";

describe("reconnecting during a live lecture", () => {
  it("waits at most two seconds, doubling up to that, with jitter", () => {
    const top = () => 1;
    const bottom = () => 0;
    expect(liveBackoff(0, top)).toBe(250);
    expect(liveBackoff(1, top)).toBe(500);
    expect(liveBackoff(2, top)).toBe(1000);
    for (let attempt = 3; attempt < 40; attempt++) expect(liveBackoff(attempt, top)).toBe(MAX_LIVE_BACKOFF_MS);
    expect(liveBackoff(10, bottom)).toBe(MAX_LIVE_BACKOFF_MS / 2);
    // Before the lecture is live the protocol's back-off reaches much further.
    expect(backoff(10, top)).toBeGreaterThan(10_000);
  });

  it("a drop while live is retried on the live schedule, a drop before it on the usual one", () => {
    const r = () => 1;
    expect(closeVerdict(1006, 8, false, r, true)).toEqual({ kind: "reconnect", delayMs: MAX_LIVE_BACKOFF_MS });
    expect(closeVerdict(4002, 8, false, r, true)).toEqual({ kind: "reconnect", delayMs: MAX_LIVE_BACKOFF_MS });
    expect(closeVerdict(1006, 8, false, r, false)).toEqual({ kind: "reconnect", delayMs: backoff(8, r) });
    expect(closeVerdict(4112, 0, false, r, true)).toEqual({ kind: "terminal", code: 4112 });
  });
});

describe("the call alert", () => {
  it("vibrates where the browser can, and does without where it cannot", () => {
    const calls: unknown[] = [];
    expect(vibrate({ vibrate: ((p: unknown) => (calls.push(p), true)) as Navigator["vibrate"] })).toBe(true);
    expect(calls).toEqual([CALL_VIBRATION]);
    expect(vibrate({} as Pick<Navigator, "vibrate">)).toBe(false);
    expect(vibrate(undefined)).toBe(false);
    expect(
      vibrate({
        vibrate: () => {
          throw new Error("blocked");
        },
      }),
    ).toBe(false);
  });
});

describe("tabs of one browser", () => {
  it("a tab claiming a lecture makes the other tabs of that lecture step aside, and no others", async () => {
    const { TabClaim } = await import("../src/room/tabs");
    const taken: string[] = [];
    const first = new TabClaim("demo", () => taken.push("first"));
    const second = new TabClaim("demo", () => taken.push("second"));
    const other = new TabClaim("another", () => taken.push("other"));
    second.claim();
    await expect.poll(() => taken).toEqual(["first"]);
    first.claim();
    await expect.poll(() => taken).toEqual(["first", "second"]);
    for (const c of [first, second, other]) c.close();
  });
});
