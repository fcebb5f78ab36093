// My page: one clear state per card, today's lecture first, staff entering by their role.
import type { MyLecture } from "@gate/MyLecture";
import { describe, expect, it } from "vitest";
import { enterLabel, isToday, myPageOrder, shownRefusal } from "../src/lectures";

const NOW = new Date(2026, 10, 28, 10, 0).getTime();
const HOUR = 3_600_000;

const lecture = (id: string, over: Partial<MyLecture> = {}): MyLecture => ({
  id,
  title: id,
  starts_at: NOW + HOUR,
  ends_at: NOW + 2 * HOUR,
  role: "learner",
  state: { state: "doors_open", starts_at: NOW + HOUR },
  entry: { allowed: true, refusal: null },
  ...over,
});

const refusal = (error: string) => ({ allowed: false, refusal: { error, message: "English", message_ja: "日本語" } });

describe("My page", () => {
  it("gives the moderator and the instructor their own Enter words", () => {
    expect(enterLabel(lecture("a", { role: "moderator" }))).toBe("enter_moderator");
    expect(enterLabel(lecture("a", { role: "instructor" }))).toBe("enter_staff");
    expect(enterLabel(lecture("a"))).toBe("enter");
  });

  it("explains a refusal once: not again when the card's state already says it", () => {
    expect(shownRefusal(lecture("a", { entry: refusal("seat_not_allocated") }))).toBe("seat_not_allocated");
    expect(shownRefusal(lecture("a", { entry: refusal("payment_pending") }))).toBe("payment_pending");
    for (const told of ["lecture_ended", "doors_not_open", "lecture_cancelled"]) {
      expect(shownRefusal(lecture("a", { entry: refusal(told) }))).toBeNull();
    }
    expect(shownRefusal(lecture("a"))).toBeNull();
  });

  it("lists today's lectures first (live first), then the coming ones, then those over, latest first", () => {
    const tomorrow = lecture("tomorrow", { starts_at: NOW + 24 * HOUR, state: { state: "before_doors", doors_open_at: NOW + 23 * HOUR } });
    const nextWeek = lecture("next-week", { starts_at: NOW + 7 * 24 * HOUR, state: { state: "before_doors", doors_open_at: NOW } });
    const today = lecture("today");
    const live = lecture("live", { starts_at: NOW + 2 * HOUR, state: { state: "live" } });
    const lastWeek = lecture("last-week", { starts_at: NOW - 7 * 24 * HOUR, state: { state: "archive_available", since: NOW } });
    const yesterday = lecture("yesterday", { starts_at: NOW - 24 * HOUR, state: { state: "ended", archive_available_at: null } });
    const order = myPageOrder([nextWeek, lastWeek, tomorrow, yesterday, today, live], NOW).map((l) => l.id);
    expect(order).toEqual(["live", "today", "tomorrow", "next-week", "yesterday", "last-week"]);
    expect(isToday(today, NOW)).toBe(true);
    expect(isToday(tomorrow, NOW)).toBe(false);
  });
});
