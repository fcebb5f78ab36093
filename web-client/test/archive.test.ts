import { describe, expect, it } from "vitest";
import { type Manifest, type Timeline, countUpTo, entries, formatClock, pinAt, reactionBars, screenAt } from "../src/archive";

const timeline: Timeline = {
  bucket_ms: 5000,
  chat: [
    { t: 1000, offset: 1, nickname: "Aki", role: "learner", text: "hello", question: false, answered: false, call_answer: false },
    { t: 7000, offset: 3, nickname: "Aki", role: "learner", text: "42", question: false, answered: false, call_answer: true },
  ],
  calls: [{ t: 7000, nickname: "Aki", by: "Prof", answer: 3 }],
  announcements: [
    { t: 2000, text: "Page 12", by: "Prof" },
    { t: 9000, text: null, by: null },
  ],
  reactions: [
    { t: 0, counts: { good: 2 } },
    { t: 5000, counts: { lost: 6, good: 1 } },
  ],
};

describe("the archive room", () => {
  it("shows the chat up to the playhead, calls before the answers they got", () => {
    const all = entries(timeline);
    expect(all.map((e) => e.kind)).toEqual(["line", "pin", "call", "line", "pin"]);
    expect(countUpTo(all, 0)).toBe(0);
    expect(countUpTo(all, 1000)).toBe(1);
    expect(countUpTo(all, 6999)).toBe(2);
    expect(countUpTo(all, 7000)).toBe(4);
    expect(countUpTo(all, 60_000)).toBe(5);
  });

  it("knows the pinned announcement and the screen share at a moment", () => {
    expect(pinAt(timeline, 1500)).toBeNull();
    expect(pinAt(timeline, 5000)?.text).toBe("Page 12");
    expect(pinAt(timeline, 9000)).toBeNull();
    const manifest: Manifest = {
      started_at_ms: 0,
      duration_ms: 60_000,
      tracks: [
        { kind: "camera", name: "camera.webm", start_ms: 0, duration_ms: 60_000 },
        { kind: "screen", name: "screen-1.webm", start_ms: 10_000, duration_ms: 20_000 },
      ],
    };
    expect(screenAt(manifest, 9999)).toBeNull();
    expect(screenAt(manifest, 10_000)?.name).toBe("screen-1.webm");
    expect(screenAt(manifest, 30_000)).toBeNull();
  });

  it("draws where the room was lost and where it was pleased", () => {
    const bars = reactionBars(timeline, 60_000);
    expect(bars.map((b) => [b.t, b.mood, b.height])).toEqual([
      [0, "good", 2 / 7],
      [5000, "lost", 1],
    ]);
    expect(bars[1]?.at).toBeCloseTo(5000 / 60_000);
    expect(formatClock(65_000)).toBe("1:05");
    expect(formatClock(3_725_000)).toBe("1:02:05");
  });
});
