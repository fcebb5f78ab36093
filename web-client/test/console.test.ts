// The instructor's tools as plain rules: the 「わからない」 alert, nickname suggestions for the
// call box, what the console records over a lecture, the summary after the end, the meter's axis.
import type { Meter } from "@protocol/Meter";
import type { ServerMsg } from "@protocol/ServerMsg";
import { describe, expect, it } from "vitest";
import { suggestNicknames } from "../src/room/callNames";
import { TIMELINE_BUCKET_MS, emptyHistory, heatOf, recordMeter, recordPresence } from "../src/room/history";
import { LOST_MIN, lostSpike } from "../src/room/lostAlert";
import { ticks } from "../src/room/MeterChart";
import { METER_BUCKET_MS, type MeterBucket, applyServer, fromWelcome } from "../src/room/state";
import { buildSummary } from "../src/room/summary";
import { nextInset } from "../src/room/VideoArea";
import { T0, welcome } from "./fixtures";

/** A meter series of 5 s buckets, oldest first, from each bucket's counts. */
function series(...counts: Record<string, number>[]): MeterBucket[] {
  return counts.map((c, i) => ({ start: T0 + i * METER_BUCKET_MS, counts: c }));
}
const quiet = (n: number) => Array.from({ length: n }, () => ({}));

describe("the 「わからない」 alert", () => {
  it("rises when lost is a large and growing share of the last 30 s", () => {
    const s = series(...quiet(6), { lost: 2, good: 1 }, {}, { lost: 2 }, {}, {}, { good: 2 });
    expect(lostSpike(s)).toEqual({ lost: 4, total: 7, share: 4 / 7, before: 0 });
  });

  it("stays quiet for a few puzzled learners in a quiet room", () => {
    expect(lostSpike(series(...quiet(11), { lost: LOST_MIN - 1 }))).toBeNull();
  });

  it("stays quiet when lost is a small share of a loud room", () => {
    expect(lostSpike(series(...quiet(11), { lost: 3, applause: 20 }))).toBeNull();
  });

  it("stays quiet once the spike is no longer rising", () => {
    // As many lost presses as in the 30 s before: a steady level, not a spike.
    expect(lostSpike(series({ lost: 4 }, ...quiet(5), { lost: 4 }, ...quiet(5)))).toBeNull();
    expect(lostSpike(series({ lost: 3 }, ...quiet(5), { lost: 4 }, ...quiet(5)))).not.toBeNull();
  });

  it("needs no more than the series it is given", () => {
    expect(lostSpike([])).toBeNull();
    expect(lostSpike(series({ lost: 3 }))).not.toBeNull();
  });
});

describe("nickname suggestions", () => {
  const names = new Map([
    [14, "はなこ"],
    [3, "たろう"],
    [20, "Hanna"],
    [7, "やまだはなこ"],
  ]);
  it("offers names starting with what was typed, then those containing it, each by seat", () => {
    expect(suggestNicknames(names, "はな").map((s) => s.nickname)).toEqual(["はなこ", "やまだはなこ"]);
    expect(suggestNicknames(names, "はな")[0]).toEqual({ nickname: "はなこ", seat: 14 });
  });
  it("ignores case and full-width letters", () => {
    expect(suggestNicknames(names, "ｈａｎ").map((s) => s.nickname)).toEqual(["Hanna"]);
  });
  it("offers nothing for nothing typed, and at most the limit", () => {
    expect(suggestNicknames(names, "  ")).toEqual([]);
    const many = new Map(Array.from({ length: 50 }, (_, i) => [i, `a${i}`] as [number, string]));
    expect(suggestNicknames(many, "a", 8)).toHaveLength(8);
  });
});

function meter(at: number, tally: Record<string, number>, seats: Meter["seats"] = []): ServerMsg {
  return { type: "meter", at, tally, rolling: tally, window_ms: 60_000, totals: tally, seats };
}

describe("what the console records", () => {
  it("keeps reactions per minute and per seat, and who sat", () => {
    let h = emptyHistory();
    h = recordMeter(h, { at: T0 + 1_000, tally: { lost: 1 }, rolling: {}, window_ms: 60_000, totals: {}, seats: [{ seat: { row: 0, col: 1 }, emotion: "lost" }] }, (s) => s.row * 12 + s.col);
    h = recordMeter(h, { at: T0 + 2_000, tally: { lost: 1, good: 2 }, rolling: {}, window_ms: 60_000, totals: {}, seats: [{ seat: { row: 0, col: 1 }, emotion: "good" }] }, (s) => s.row * 12 + s.col);
    h = recordMeter(h, { at: T0 + TIMELINE_BUCKET_MS + 5, tally: { good: 1 }, rolling: {}, window_ms: 60_000, totals: {}, seats: [] }, (s) => s.row * 12 + s.col);
    expect(h.timeline.map((b) => b.counts)).toEqual([{ lost: 2, good: 2 }, { good: 1 }]);
    expect(h.heat.get(1)).toEqual({ lost: 1, good: 1 });
    expect(heatOf(h.heat.get(1), "lost")).toBe(1);
    expect(heatOf(h.heat.get(1), null)).toBe(2);
    h = recordPresence(h, ["たろう", "はなこ", "たろう"], 4);
    h = recordPresence(h, [], 2);
    expect([...h.attended]).toEqual(["たろう", "はなこ"]);
    expect(h.peakPresent).toBe(4);
  });

  it("is filled from a staff welcome and its messages, and sums up after the end", () => {
    const w = welcome({
      you: { user: "u-teacher", nickname: "山田講師", role: "instructor" },
      seats: [{ seat: { row: 0, col: 0 }, occupant: { user: "u-taro", nickname: "たろう", away: false } }],
      present: 2,
    });
    let s = fromWelcome(w, T0, null);
    s = applyServer(s, { type: "update", seats: [{ seat: { row: 2, col: 3 }, occupant: { user: "u-hana", nickname: "はなこ", away: false } }], present: 3 }, T0 + 100);
    s = applyServer(s, meter(T0 + 200, { lost: 3 }, [{ seat: { row: 2, col: 3 }, emotion: "lost" }]), T0 + 200);
    s = applyServer(s, { type: "chat", event: { kind: "message", offset: 1, at: T0 + 300, user: "u-hana", nickname: "はなこ", role: "learner", text: "質問です", question: true, answered: false, deleted: false, call_answer: false } }, T0 + 300);
    // Everyone leaves before the end: the summary still counts them.
    s = applyServer(s, { type: "update", seats: [{ seat: { row: 2, col: 3 }, occupant: null }], present: 1 }, T0 + 400);
    const sum = buildSummary(s);
    expect(sum.attended).toBe(2);
    expect(sum.peakPresent).toBe(3);
    expect(sum.unanswered.map((q) => q.text)).toEqual(["質問です"]);
    expect(sum.timeline).toHaveLength(1);
    expect(sum.timeline[0]!.counts).toEqual({ lost: 3 });
    expect(s.history.heat.get(2 * 12 + 3)).toEqual({ lost: 1 });
  });
});

describe("the meter's axis and the camera inset", () => {
  it("ticks round numbers up to the peak", () => {
    expect(ticks(0)).toEqual([0, 1]);
    expect(ticks(3)).toEqual([0, 1, 2, 3]);
    expect(ticks(7)).toEqual([0, 5, 10]);
    expect(ticks(40)).toEqual([0, 20, 40]);
  });
  it("cycles the camera through the corners and hidden", () => {
    expect(nextInset("br")).toBe("bl");
    expect(nextInset("hidden")).toBe("br");
  });
});
