import { describe, expect, it } from "vitest";
import { MAX_UNACKED, Outbox } from "../src/room/outbox";

describe("the outbox of unacknowledged commands", () => {
  it("numbers commands and keeps each until the node settles it", () => {
    const box = new Outbox(100);
    const a = box.add({ type: "chat", text: "hello", question: false })!;
    const b = box.add({ type: "take_seat", seat: { row: 1, col: 2 } })!;
    expect([a.id, b.id]).toEqual([100, 101]);
    expect(box.unsentChat()).toEqual([{ id: 100, text: "hello", question: false }]);
    // After a reconnect both go again, in the order they were made.
    expect(box.unacked().map((m) => m.id)).toEqual([100, 101]);
    expect(box.settle(100)?.type).toBe("chat");
    expect(box.unsentChat()).toEqual([]);
    expect(box.unacked().map((m) => m.id)).toEqual([101]);
    // A second acknowledgement of the same number (sent twice, applied once) changes nothing.
    expect(box.settle(100)).toBeUndefined();
  });

  it("takes no more than the room remembers, keeping the rest with the person", () => {
    const box = new Outbox(1);
    for (let i = 0; i < MAX_UNACKED; i++) expect(box.add({ type: "leave_seat" })).not.toBeNull();
    expect(box.add({ type: "chat", text: "one too many", question: false })).toBeNull();
    box.settle(1);
    expect(box.add({ type: "chat", text: "room again", question: false })).not.toBeNull();
  });

  it("numbers within JavaScript's exact integers", () => {
    const box = new Outbox();
    const id = box.add({ type: "leave_seat" })!.id;
    expect(Number.isSafeInteger(id) && id > 0).toBe(true);
  });
});
