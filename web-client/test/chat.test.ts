import type { ChatMessage } from "@protocol/ChatMessage";
import { describe, expect, it } from "vitest";
import { ChatLog, CHUNK } from "../src/room/chatlog";
import { announcement, countAfter } from "../src/room/Chat";
import { formatTime, setLang } from "../src/i18n";
import { RowHeights, anchorAt, atBottom, rowAt, rowTops, rowWindow, scrollForAnchor } from "../src/room/windowing";
import { T0 } from "./fixtures";

function line(offset: number, over: Partial<ChatMessage> = {}): ChatMessage {
  return {
    offset,
    at: T0,
    user: `u-${offset % 7}`,
    nickname: `n${offset % 7}`,
    role: "learner",
    text: `m${offset}`,
    question: false,
    answered: false,
    deleted: false,
    call_answer: false,
    ...over,
  };
}

function logOf(from: number, to: number, keep = Infinity): ChatLog {
  let log = ChatLog.empty;
  for (let o = from; o <= to; o++) log = log.push(line(o), keep);
  return log;
}

describe("the chat log", () => {
  it("keeps the newest lines in order, however many arrive", () => {
    const log = logOf(1, 1000 + 3 * CHUNK + 5, 1000);
    expect(log.length).toBe(1000);
    expect(log.at(0)!.offset).toBe(3 * CHUNK + 6);
    expect(log.at(999)!.offset).toBe(1000 + 3 * CHUNK + 5);
    expect(log.at(1000)).toBeUndefined();
    expect(log.at(-1)).toBeUndefined();
    const all = log.toArray().map((m) => m.offset);
    expect(all).toEqual(Array.from({ length: 1000 }, (_, i) => 3 * CHUNK + 6 + i));
    expect(log.map((m) => m.offset)).toEqual(all);
    expect([...log].length).toBe(1000);
  });

  it("leaves the list it was given untouched, and unchanged lines keep their identity", () => {
    const before = logOf(1, 2 * CHUNK + 3, 100);
    const first = before.at(0);
    const after = before.push(line(2 * CHUNK + 4), 100);
    expect(before.length).toBe(100);
    expect(before.at(99)!.offset).toBe(2 * CHUNK + 3);
    expect(after.at(99)!.offset).toBe(2 * CHUNK + 4);
    expect(after.at(0)!.offset).toBe(first!.offset + 1);
    expect(after.at(98)).toBe(before.at(99));

    const i = after.indexOfOffset(50);
    const edited = after.with(i, { ...after.at(i)!, deleted: true });
    expect(edited.at(i)!.deleted).toBe(true);
    expect(after.at(i)!.deleted).toBe(false);
    expect(edited.at(i + 1)).toBe(after.at(i + 1));
  });

  it("finds a line by its offset, and counts the lines after one", () => {
    const log = logOf(11, 300, 200);
    expect(log.indexOfOffset(101)).toBe(0);
    expect(log.indexOfOffset(300)).toBe(199);
    expect(log.indexOfOffset(100)).toBe(-1);
    expect(log.indexOfOffset(301)).toBe(-1);
    expect(countAfter(log, 300)).toBe(0);
    expect(countAfter(log, 290)).toBe(10);
    // A line that scrolled away: everything kept is after it.
    expect(countAfter(log, 5)).toBe(200);
    expect(countAfter(ChatLog.empty, 5)).toBe(0);
  });

  it("reads like an array where the page needs one", () => {
    const log = logOf(1, 10);
    expect(log.slice(-3).map((m) => m.offset)).toEqual([8, 9, 10]);
    expect(log.slice(2, 4).map((m) => m.offset)).toEqual([3, 4]);
    expect(log.slice(8, 50).map((m) => m.offset)).toEqual([9, 10]);
    expect(log.find((m) => m.offset > 4)?.offset).toBe(5);
    expect(log.some((m) => m.offset === 11)).toBe(false);
    expect(log.filter((m) => m.offset % 5 === 0).map((m) => m.offset)).toEqual([5, 10]);
  });
});

describe("drawing only the rows in view", () => {
  const heights = (hs: number[]) => rowTops(hs.length, (i) => hs[i]!);

  it("adds up rows of different heights", () => {
    const tops = heights([10, 30, 20]);
    expect([...tops]).toEqual([0, 10, 40, 60]);
    expect(rowAt(tops, 0)).toBe(0);
    expect(rowAt(tops, 9.9)).toBe(0);
    expect(rowAt(tops, 10)).toBe(1);
    expect(rowAt(tops, 59)).toBe(2);
    expect(rowAt(tops, 500)).toBe(2);
  });

  it("draws the rows in view and the overscan, and pads for the rest", () => {
    const tops = rowTops(1000, (i) => (i % 2 === 0 ? 40 : 60));
    // Rows 100 (at 5,000) to 109 fill a 500-pixel view at 5,000.
    const w = rowWindow(tops, 5000, 500, 3);
    expect(w.start).toBe(97);
    expect(w.end).toBe(110 + 3);
    expect(w.padTop).toBe(tops[97]);
    expect(w.padBottom).toBe(tops[1000]! - tops[113]!);
    expect(w.padTop + (tops[w.end]! - tops[w.start]!) + w.padBottom).toBe(tops[1000]);
    // At the ends, no more than there is.
    expect(rowWindow(tops, 0, 500, 3)).toMatchObject({ start: 0, padTop: 0 });
    expect(rowWindow(tops, tops[1000]! - 500, 500, 3)).toMatchObject({ end: 1000, padBottom: 0 });
    expect(rowWindow(rowTops(0, () => 0), 0, 500, 3)).toEqual({ start: 0, end: 0, padTop: 0, padBottom: 0 });
  });

  it("keeps the same line at the top of the view when older lines go and rows get measured", () => {
    const hs = new RowHeights(50);
    const keys = Array.from({ length: 100 }, (_, i) => 1 + i);
    let tops = rowTops(keys.length, (i) => hs.get(keys[i]!));
    const anchor = anchorAt(tops, (i) => keys[i]!, 1_020)!;
    expect(anchor).toEqual({ key: 21, within: 20 });
    // Ten older lines are trimmed and a row above the view turns out taller.
    keys.splice(0, 10);
    hs.set(15, 90);
    tops = rowTops(keys.length, (i) => hs.get(keys[i]!));
    const next = scrollForAnchor(tops, (k) => keys.indexOf(k), anchor)!;
    expect(next).toBe(10 * 50 + 40 + 20);
    expect(rowAt(tops, next)).toBe(keys.indexOf(21));
    // The anchored line itself gone: no answer, the caller leaves the scroll alone.
    expect(scrollForAnchor(tops, () => -1, anchor)).toBeNull();
  });

  it("remembers heights by line, and forgets lines that left", () => {
    const hs = new RowHeights(52);
    expect(hs.get(7)).toBe(52);
    expect(hs.set(7, 80)).toBe(true);
    expect(hs.set(7, 80)).toBe(false);
    expect(hs.get(7)).toBe(80);
    hs.prune((k) => k > 7);
    expect(hs.get(7)).toBe(52);
  });

  it("tells when the view is at the bottom", () => {
    expect(atBottom(600, 400, 1000)).toBe(true);
    expect(atBottom(590, 400, 1000)).toBe(true);
    expect(atBottom(500, 400, 1000)).toBe(false);
  });
});

describe("announcing new lines", () => {
  it("says one line, or a count with the questions among them", () => {
    setLang("en");
    expect(announcement([])).toBe("");
    expect(announcement([line(1, { question: true, text: "why?" })])).toBe("Question from n1: why?");
    expect(announcement([line(2, { call_answer: true, text: "yes" })])).toBe("n2 answered the call: yes");
    expect(announcement([line(3)])).toBe("n3: m3");
    const many = Array.from({ length: 12 }, (_, i) => line(10 + i, { question: i < 2 }));
    expect(announcement(many)).toBe("12 new messages (2 questions)");
    expect(announcement(many.slice(2))).toBe("10 new messages");
    setLang("ja");
    expect(announcement(many)).toBe("新しいメッセージ 12 件（うち質問 2 件）");
  });
});

describe("formatting times", () => {
  it("makes a formatter once per language, not once per line", () => {
    const Original = Intl.DateTimeFormat;
    let made = 0;
    Intl.DateTimeFormat = class extends Original {
      constructor(...args: ConstructorParameters<typeof Original>) {
        super(...args);
        made++;
      }
    } as typeof Original;
    const lines = Array.from({ length: 500 }, (_, i) => T0 + i * 60_000);
    let ja: string[];
    let en: string[];
    try {
      ja = lines.map((at) => formatTime(at, "ja"));
      en = lines.map((at) => formatTime(at, "en"));
    } finally {
      Intl.DateTimeFormat = Original;
    }
    expect(made).toBeGreaterThan(0);
    expect(made).toBeLessThanOrEqual(2);
    const fresh = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit" });
    expect(en[7]).toBe(fresh.format(lines[7]!));
    expect(ja[7]).toBe(new Intl.DateTimeFormat("ja-JP", { hour: "2-digit", minute: "2-digit" }).format(lines[7]!));
  });
});
