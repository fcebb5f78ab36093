import type { ChatEvent } from "@protocol/ChatEvent";
import type { ServerMsg } from "@protocol/ServerMsg";
import type { Welcome } from "@protocol/Welcome";
import { describe, expect, it } from "vitest";
import {
  CHAT_KEEP,
  METER_BUCKET_MS,
  applyServer,
  fromWelcome,
  isMuted,
  meterSeries,
  openQuestions,
  bit,
  isTaken,
  recentBursts,
  seatAt,
  seatIndex,
} from "../src/room/state";
import { T0, welcome as fixture } from "./fixtures";

/** The test lecture's grid: 8 rows of 12. */
const COLS = 12;

/** A bitmap of the 8 × 12 grid with these seats' bits set. */
function bits(...seats: { row: number; col: number }[]): Uint8Array {
  const out = new Uint8Array(12);
  for (const s of seats) {
    const i = seatIndex(s, COLS);
    out[i >> 3]! |= 1 << (i & 7);
  }
  return out;
}

function welcome(over: Partial<Welcome> = {}): Welcome {
  return fixture({ occupancy: { occupied: bits(), away: bits() }, ...over });
}

function message(offset: number, text: string, over: Partial<Extract<ChatEvent, { kind: "message" }>> = {}): ChatEvent {
  return {
    kind: "message",
    offset,
    at: T0 + offset,
    user: "u-hanako",
    nickname: "はなこ",
    role: "learner",
    text,
    question: false,
    answered: false,
    call_answer: false,
    deleted: false,
    ...over,
  };
}

const chat = (event: ChatEvent): ServerMsg => ({ type: "chat", event });

describe("welcome", () => {
  it("takes the snapshot, seats and clock offset", () => {
    const s = fromWelcome(
      welcome({
        chat: [message(4, "a"), message(5, "b")],
        last_offset: 5,
        occupancy: { occupied: bits({ row: 1, col: 2 }), away: bits() },
        your_seat: { row: 1, col: 2 },
      }),
      T0 - 250,
      null,
    );
    expect(s.chat.map((m) => m.text)).toEqual(["a", "b"]);
    expect(s.lastOffset).toBe(5);
    expect(s.clockOffset).toBe(250);
    expect(s.yourSeat).toEqual({ row: 1, col: 2 });
    expect(isTaken(s, { row: 1, col: 2 })).toBe(true);
    expect(isTaken(s, { row: 1, col: 3 })).toBe(false);
    expect(s.names.size).toBe(0);
  });

  it("appends only what was missed on resume, and replaces everything on a new epoch", () => {
    let s = fromWelcome(welcome({ chat: [message(1, "a")], last_offset: 1 }), T0, null);
    s = applyServer(s, chat(message(2, "b")), T0);
    const resumed = fromWelcome(welcome({ replay: "missed", chat: [message(3, "c"), message(4, "d")], last_offset: 4 }), T0, s);
    expect(resumed.chat.map((m) => m.text)).toEqual(["a", "b", "c", "d"]);
    expect(resumed.lastOffset).toBe(4);
    expect(resumed.needsResync).toBe(false);

    const fresh = fromWelcome(welcome({ epoch: 8, replay: "snapshot", chat: [message(1, "z")], last_offset: 1 }), T0, s);
    expect(fresh.chat.map((m) => m.text)).toEqual(["z"]);
  });
});

describe("a node running the room on alone (Redis away)", () => {
  it("keeps what was shown, then resumes from where the shared stream was left and gets everything said since", () => {
    let s = fromWelcome(welcome({ chat: [message(1, "a")], last_offset: 1 }), T0, null);
    s = applyServer(s, chat(message(2, "b")), T0);
    // The fork's welcome on the open connection: a new generation, a snapshot of the stream it
    // left at offset 2 (the newest lines only), and where it left it.
    s = applyServer(s, { type: "welcome", ...welcome({ epoch: 99, chat: [message(2, "b")], last_offset: 2, fork_of: { epoch: 7, offset: 2 } }) }, T0);
    expect(s.chat.map((m) => m.text)).toEqual(["a", "b"]);
    expect(s.forkOf).toEqual({ epoch: 7, offset: 2 });
    // The page still says the node is cut off (the welcome came after the `service` saying so).
    expect(s.degraded).toBe(true);
    // Its own people's lines, numbered by the fork.
    s = applyServer(s, chat(message(3, "local")), T0);
    expect(s.chat.map((m) => m.text)).toEqual(["a", "b", "local"]);
    // Back through the shared stream (the connection resumes from `forkOf`): every line said
    // meanwhile on any node, the fork's own among them, once, with the shared offsets.
    const back = fromWelcome(
      welcome({ replay: "missed", chat: [message(3, "remote"), message(4, "local"), message(5, "remote 2")], last_offset: 5 }),
      T0,
      s,
    );
    expect(back.chat.map((m) => m.text)).toEqual(["a", "b", "remote", "local", "remote 2"]);
    expect(back.lastOffset).toBe(5);
    expect(back.forkOf).toBeNull();
    expect(back.degraded).toBe(false);
    expect(back.needsResync).toBe(false);
  });
});

describe("chat stream", () => {
  it("applies deletions and answered marks to their targets, ignores duplicates, flags gaps", () => {
    let s = fromWelcome(welcome(), T0, null);
    s = applyServer(s, chat(message(1, "hello")), T0);
    s = applyServer(s, chat(message(2, "why?", { question: true })), T0);
    expect(openQuestions(s).map((m) => m.offset)).toEqual([2]);
    s = applyServer(s, chat({ kind: "answered", offset: 3, at: T0, target: 2 }), T0);
    s = applyServer(s, chat({ kind: "deleted", offset: 4, at: T0, target: 1 }), T0);
    expect(s.chat.at(0)).toMatchObject({ deleted: true, text: "" });
    expect(s.chat.at(1)).toMatchObject({ answered: true });
    expect(openQuestions(s)).toEqual([]);

    const again = applyServer(s, chat(message(4, "duplicate")), T0);
    expect(again).toBe(s);
    expect(s.needsResync).toBe(false);
    const gapped = applyServer(s, chat(message(6, "after a gap")), T0);
    expect(gapped.needsResync).toBe(true);
    // The resume starts from the last offset held: the missing event and the one past the gap
    // both come in the replay, once each.
    expect(gapped.lastOffset).toBe(4);
    expect(gapped.chat.length).toBe(2);
    const resumed = fromWelcome(
      welcome({ replay: "missed", chat: [message(5, "missed"), message(6, "after a gap")], last_offset: 6 }),
      T0,
      { ...gapped, needsResync: false },
    );
    expect(resumed.chat.map((m) => m.text)).toEqual(["", "why?", "missed", "after a gap"]);
    expect(resumed.lastOffset).toBe(6);
    expect(resumed.needsResync).toBe(false);
  });

  it("keeps a bounded history", () => {
    let s = fromWelcome(welcome(), T0, null);
    for (let i = 1; i <= CHAT_KEEP + 5; i++) s = applyServer(s, chat(message(i, `m${i}`)), T0);
    expect(s.chat.length).toBe(CHAT_KEEP);
    expect(s.chat.at(0)!.offset).toBe(6);
    // Deleting a message that scrolled away changes nothing but the offset.
    s = applyServer(s, chat({ kind: "deleted", offset: CHAT_KEEP + 6, at: T0, target: 1 }), T0);
    expect(s.lastOffset).toBe(CHAT_KEEP + 6);
  });

  it("changes only what a chat event touches: every other line keeps its identity", () => {
    let s = fromWelcome(welcome(), T0, null);
    for (let i = 1; i <= CHAT_KEEP + 100; i++) s = applyServer(s, chat(message(i, `m${i}`)), T0);
    const before = s.chat;
    s = applyServer(s, chat(message(CHAT_KEEP + 101, "new")), T0);
    expect(s.chat).not.toBe(before);
    expect(s.chat.length).toBe(CHAT_KEEP);
    for (let i = 0; i < CHAT_KEEP - 1; i++) expect(s.chat.at(i)).toBe(before.at(i + 1));
    expect(before.at(CHAT_KEEP - 1)!.text).toBe(`m${CHAT_KEEP + 100}`);

    const deleted = applyServer(s, chat({ kind: "deleted", offset: CHAT_KEEP + 102, at: T0, target: 500 }), T0);
    const i = deleted.chat.indexOfOffset(500);
    expect(deleted.chat.at(i)).toMatchObject({ deleted: true, text: "" });
    expect(s.chat.at(i)!.deleted).toBe(false);
    for (const j of [0, i - 1, i + 1, CHAT_KEEP - 1]) expect(deleted.chat.at(j)).toBe(s.chat.at(j));
  });
});

describe("seats", () => {
  const at = (row: number, col: number) => seatIndex({ row, col }, COLS);

  it("draws a learner's grid from the bitmaps and follows the tick's seat numbers", () => {
    let s = fromWelcome(
      welcome({
        occupancy: { occupied: bits({ row: 0, col: 0 }, { row: 0, col: 1 }), away: bits({ row: 0, col: 1 }) },
        your_seat: { row: 0, col: 0 },
      }),
      T0,
      null,
    );
    expect(bit(s.away, at(0, 1))).toBe(true);
    s = applyServer(s, { type: "seat_names", seats: [{ seat: at(0, 1), nickname: "はなこ" }] }, T0);
    expect(s.names.get(at(0, 1))).toBe("はなこ");
    // You move: told at once; the grid follows with the tick.
    s = applyServer(s, { type: "your_seat", seat: { row: 3, col: 4 } }, T0);
    expect(s.yourSeat).toEqual({ row: 3, col: 4 });
    s = applyServer(s, { type: "update", freed: [at(0, 0)], taken: [at(3, 4)], back: [at(0, 1)], present: 3 }, T0);
    expect(isTaken(s, { row: 0, col: 0 })).toBe(false);
    expect(isTaken(s, { row: 3, col: 4 })).toBe(true);
    expect(bit(s.away, at(0, 1))).toBe(false);
    expect(s.names.get(at(0, 1)), "the same learner is back: the name stays").toBe("はなこ");
    expect(s.present).toBe(3);
    // Someone new in a seat: its name is forgotten, to be asked again.
    s = applyServer(s, { type: "update", taken: [at(0, 1)] }, T0);
    expect(s.names.has(at(0, 1))).toBe(false);
    // Taken and away by the tick's end: the lists apply in order.
    s = applyServer(s, { type: "update", taken: [at(5, 5)], away: [at(5, 5)] }, T0);
    expect(isTaken(s, { row: 5, col: 5 })).toBe(true);
    expect(bit(s.away, at(5, 5))).toBe(true);
    s = applyServer(s, { type: "your_seat", seat: null }, T0);
    expect(s.yourSeat).toBeNull();
  });

  it("gives the staff every occupant's name, from the welcome and the updates", () => {
    let s = fromWelcome(
      welcome({
        you: { user: "u-i", nickname: "講師", role: "instructor" },
        occupancy: { occupied: bits({ row: 0, col: 0 }), away: bits() },
        seats: [{ seat: { row: 0, col: 0 }, occupant: { user: "u-taro", nickname: "たろう", away: false } }],
      }),
      T0,
      null,
    );
    expect(s.names.get(at(0, 0))).toBe("たろう");
    s = applyServer(
      s,
      {
        type: "update",
        seats: [
          { seat: { row: 0, col: 0 }, occupant: null },
          { seat: { row: 0, col: 1 }, occupant: { user: "u-hanako", nickname: "はなこ", away: true } },
        ],
      },
      T0,
    );
    expect(isTaken(s, { row: 0, col: 0 })).toBe(false);
    expect(s.names.has(at(0, 0))).toBe(false);
    expect(s.names.get(at(0, 1))).toBe("はなこ");
    expect(bit(s.away, at(0, 1))).toBe(true);
  });

  it("numbers seats row by row, as the wire does", () => {
    expect(seatIndex({ row: 2, col: 5 }, 20)).toBe(45);
    for (const seat of [{ row: 0, col: 0 }, { row: 999, col: 65_534 }, { row: 12, col: 7 }]) {
      expect(seatAt(seatIndex(seat, 65_535), 65_535)).toEqual(seat);
    }
  });
});

describe("calls, announcements, mutes, reactions", () => {
  it("raises and clears the called-on notice", () => {
    let s = fromWelcome(welcome(), T0, null);
    const call = { user: "u-taro", nickname: "たろう", seat: null, by: "講師", at: T0, answer: null };
    s = applyServer(s, { type: "call", current: call }, T0);
    s = applyServer(s, { type: "called_on_you", by: "講師", at: T0 }, T0);
    expect(s.calledOnYou).toEqual({ by: "講師", at: T0 });
    s = applyServer(s, { type: "call", current: { ...call, answer: 9 } }, T0);
    expect(s.calledOnYou).not.toBeNull();
    s = applyServer(s, { type: "call", current: null }, T0);
    expect(s.calledOnYou).toBeNull();
    expect(s.call).toBeNull();
  });

  it("tracks the announcement and a mute by the server's clock", () => {
    let s = fromWelcome(welcome({ server_time: T0 }), T0 - 10_000, null);
    s = applyServer(s, { type: "announcement", current: { text: "<b>休憩</b>", by: "講師", at: T0 } }, T0);
    expect(s.announcement?.text).toBe("<b>休憩</b>");
    s = applyServer(s, { type: "muted", until: T0 + 60_000 }, T0);
    // The local clock is 10 s behind the server's.
    expect(isMuted(s, T0 - 10_000 + 59_000)).toBe(true);
    expect(isMuted(s, T0 - 10_000 + 61_000)).toBe(false);
    s = applyServer(s, { type: "muted", until: null }, T0);
    expect(isMuted(s, T0)).toBe(false);
  });

  it("sums the room's bursts over the last seconds", () => {
    let s = fromWelcome(welcome(), T0, null);
    s = applyServer(s, { type: "update", burst: { good: 3 } }, T0);
    s = applyServer(s, { type: "update", burst: { good: 2, lost: 1 } }, T0 + 1000);
    expect(recentBursts(s, T0 + 1500)).toEqual({ good: 5, lost: 1 });
    expect(recentBursts(s, T0 + 10_000)).toEqual({});
  });

  it("builds the meter chart's buckets and the seats' reactions", () => {
    let s = fromWelcome(welcome({ you: { user: "u-i", nickname: "講師", role: "instructor" } }), T0, null);
    const meter = (at: number, good: number) =>
      ({
        type: "meter",
        at,
        tally: { good },
        rolling: { good },
        window_ms: 60_000,
        totals: { good },
        seats: [{ seat: { row: 2, col: 3 }, emotion: "good" }],
      }) as ServerMsg;
    const start = Math.floor(T0 / METER_BUCKET_MS) * METER_BUCKET_MS;
    s = applyServer(s, meter(start + 100, 2), T0);
    s = applyServer(s, meter(start + 600, 3), T0);
    s = applyServer(s, meter(start + METER_BUCKET_MS + 100, 1), T0);
    const series = meterSeries(s, start + METER_BUCKET_MS + 200);
    expect(series.length).toBe(60);
    expect(series[series.length - 1]!.counts.good).toBe(1);
    expect(series[series.length - 2]!.counts.good).toBe(5);
    expect(series[0]!.counts).toEqual({});
    expect(s.seatReactions.get(seatIndex({ row: 2, col: 3 }, COLS))?.emotion).toBe("good");
    expect(s.meter.totals.good).toBe(1);
  });

  it("shows a refusal and the degraded notice", () => {
    let s = fromWelcome(welcome(), T0, null);
    s = applyServer(s, { type: "error", code: "rate_limited", message: "slow down", command: "react" }, T0);
    expect(s.lastError).toMatchObject({ code: "rate_limited", command: "react" });
    s = applyServer(s, { type: "service", degraded: true }, T0);
    expect(s.degraded).toBe(true);
    s = applyServer(s, { type: "phase", phase: { state: "live", since: T0 } }, T0);
    expect(s.phase).toEqual({ state: "live", since: T0 });
  });
});

describe("a call made while the learner was away", () => {
  const call = { user: "u-taro", nickname: "たろう", seat: null, by: "講師", at: T0 + 5, answer: null };

  it("is shown after the resume, from the welcome's call", () => {
    const before = fromWelcome(welcome(), T0, null);
    expect(before.calledOnYou).toBeNull();
    const after = fromWelcome(welcome({ replay: "missed", call }), T0 + 10, before);
    expect(after.calledOnYou).toEqual({ by: "講師", at: T0 + 5 });
  });

  it("is shown to a learner who enters while called on", () => {
    expect(fromWelcome(welcome({ call }), T0, null).calledOnYou).toEqual({ by: "講師", at: T0 + 5 });
  });

  it("is not shown when it names someone else, is answered, or was dismissed", () => {
    const other = { ...call, user: "u-hanako", nickname: "はなこ" };
    expect(fromWelcome(welcome({ call: other }), T0, null).calledOnYou).toBeNull();
    expect(fromWelcome(welcome({ call: { ...call, answer: 4 } }), T0, null).calledOnYou).toBeNull();
    let s = fromWelcome(welcome({ call }), T0, null);
    s = { ...s, calledOnYou: null }; // dismissed
    expect(fromWelcome(welcome({ replay: "missed", call }), T0 + 10, s).calledOnYou).toBeNull();
  });
});
