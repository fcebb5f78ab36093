// Raised hands, question upvotes and the muted list, as the client's state applies them.
import type { ChatEvent } from "@protocol/ChatEvent";
import type { RaisedHand } from "@protocol/RaisedHand";
import type { ServerMsg } from "@protocol/ServerMsg";
import { describe, expect, it } from "vitest";
import { applyOwnVote, applyServer, fromWelcome, mutedLearner, questionList } from "../src/room/state";
import { T0, welcome } from "./fixtures";

const hand = (user: string, at = T0): RaisedHand => ({ user, nickname: `n-${user}`, seat: null, at });

const staff = { user: "u-t", nickname: "先生", role: "instructor" as const };

function question(offset: number, user = "u-hanako", over: Partial<Extract<ChatEvent, { kind: "message" }>> = {}): ChatEvent {
  return {
    kind: "message",
    offset,
    at: T0 + offset,
    user,
    nickname: user,
    role: "learner",
    text: `q${offset}`,
    question: true,
    answered: false,
    call_answer: false,
    deleted: false,
    ...over,
  };
}

const update = (over: Partial<Extract<ServerMsg, { type: "update" }>>): ServerMsg => ({ type: "update", ...over });

describe("raised hands", () => {
  it("keeps the staff's queue in the order hands went up, lowered ones out, raised again at the end", () => {
    let s = fromWelcome(welcome({ you: staff, hands: [hand("a"), hand("b")], hand_count: 2 }), T0, null);
    expect(s.hands.map((h) => h.user)).toEqual(["a", "b"]);
    s = applyServer(s, update({ hands_raised: [hand("c")], hand_count: 3 }), T0);
    expect(s.hands.map((h) => h.user)).toEqual(["a", "b", "c"]);
    // a lowered and raised again within the tick; b was called on.
    s = applyServer(s, update({ hands_lowered: ["a", "b"], hands_raised: [hand("a")], hand_count: 2 }), T0);
    expect(s.hands.map((h) => h.user)).toEqual(["c", "a"]);
    expect(s.handCount).toBe(2);
  });

  it("shows a learner their own hand and the room's count", () => {
    let s = fromWelcome(welcome({ hand_count: 4, your_hand: T0 - 5 }), T0, null);
    expect([s.yourHand, s.handCount]).toEqual([T0 - 5, 4]);
    s = applyServer(s, { type: "your_hand", raised_at: null }, T0);
    s = applyServer(s, update({ hand_count: 3 }), T0);
    expect([s.yourHand, s.handCount]).toEqual([null, 3]);
    // An update without a count keeps it.
    s = applyServer(s, update({ present: 9 }), T0);
    expect(s.handCount).toBe(3);
  });
});

describe("question upvotes", () => {
  it("sets the node's counts, drops a count of 0, and sorts by votes or by time", () => {
    let s = fromWelcome(
      welcome({
        chat: [question(1), question(2, "u-jiro"), question(3, "u-taro", { answered: true }), question(4, "u-x", { deleted: true, text: "" })],
        last_offset: 4,
        votes: [{ offset: 1, votes: 2 }],
        your_votes: [1],
      }),
      T0,
      null,
    );
    expect(s.yourVotes.has(1)).toBe(true);
    s = applyServer(s, update({ votes: [{ offset: 2, votes: 5 }, { offset: 3, votes: 9 }] }), T0);
    // Open questions first, most votes first; answered after; deleted never.
    expect(questionList(s, "votes").map((q) => [q.offset, q.votes])).toEqual([
      [2, 5],
      [1, 2],
      [3, 9],
    ]);
    expect(questionList(s, "time").map((q) => q.offset)).toEqual([1, 2, 3]);
    s = applyServer(s, update({ votes: [{ offset: 2, votes: 0 }] }), T0);
    expect(s.votes.has(2)).toBe(false);
    expect(questionList(s, "votes").map((q) => q.offset)).toEqual([1, 2, 3]);
  });

  it("knows your own vote from how the node answered", () => {
    let s = fromWelcome(welcome({ chat: [question(1)], last_offset: 1 }), T0, null);
    s = applyOwnVote(s, { type: "upvote", offset: 1 }, null);
    expect(s.yourVotes.has(1)).toBe(true);
    s = applyOwnVote(s, { type: "unvote", offset: 1 }, null);
    expect(s.yourVotes.has(1)).toBe(false);
    // Refused as already given: it is given.
    s = applyOwnVote(s, { type: "upvote", offset: 1 }, "already_voted");
    expect(s.yourVotes.has(1)).toBe(true);
    // Refused otherwise: nothing changes; other commands are not votes.
    const before = applyOwnVote(s, { type: "upvote", offset: 7 }, "not_found");
    expect(before.yourVotes.has(7)).toBe(false);
    expect(applyOwnVote(s, { type: "chat" }, null)).toBe(s);
  });

  it("does not show a second upvote's refusal as a failure", () => {
    const s = fromWelcome(welcome(), T0, null);
    const refused = (code: "already_voted" | "not_found") =>
      applyServer(s, { type: "error", code, message: "", command: "upvote", id: 3 }, T0).lastError?.code ?? null;
    expect(refused("already_voted")).toBeNull();
    expect(refused("not_found")).toBe("not_found");
  });
});

describe("muted learners", () => {
  it("takes the staff's list from the welcome and every muted_learners", () => {
    const until = T0 + 60_000;
    let s = fromWelcome(welcome({ you: staff, muted: [{ user: "u-a", nickname: "あ", until }] }), T0, null);
    expect(mutedLearner(s, "u-a", T0)?.until).toBe(until);
    expect(mutedLearner(s, "u-a", T0 + 61_000)).toBeNull();
    s = applyServer(s, { type: "muted_learners", muted: [] }, T0);
    expect(s.muted).toEqual([]);
    expect(mutedLearner(s, "u-a", T0)).toBeNull();
  });
});
