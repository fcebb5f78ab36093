import type { MyLecture } from "@gate/MyLecture";
import { CloseCodes } from "@protocol/CloseCodes";
import { describe, expect, it } from "vitest";
import { browserVerdict, downloadVerdict, interestingCodecs, median, rttVerdict, throughputMbps, webrtcVerdict } from "../src/check";
import { dictionaries, t } from "../src/i18n";
import { enterLabel, fixFor, formatCountdown, lectureView, needsRefresh } from "../src/lectures";
import { fitCell, hitTest, moveCursor, scrollToShow, visibleRange, zoom, MAX_CELL, MIN_CELL } from "../src/room/grid";
import { MAX_BACKOFF_MS, backoff, closeVerdict } from "../src/room/policy";
import { parseRoute } from "../src/router";
import { decodeServer, encodeClient } from "../src/wire";
import { decode, encode } from "@msgpack/msgpack";

describe("close codes", () => {
  it("reconnects after drops and 4000-4099, stops on 4100-4199, and after Leave", () => {
    const r = () => 0.5;
    expect(closeVerdict(1006, 0, false, r).kind).toBe("reconnect");
    expect(closeVerdict(CloseCodes.SlowConsumer, 0, false, r).kind).toBe("reconnect");
    expect(closeVerdict(CloseCodes.HeartbeatTimeout, 3, false, r).kind).toBe("reconnect");
    expect(closeVerdict(CloseCodes.ServerShutdown, 9, false, r)).toEqual({ kind: "reconnect", delayMs: 500 });
    expect(closeVerdict(CloseCodes.TicketExpired, 0, false, r).kind).toBe("reconnect");
    for (const code of [CloseCodes.Removed, CloseCodes.Banned, CloseCodes.LectureEnded, CloseCodes.Replaced, CloseCodes.Revoked]) {
      expect(closeVerdict(code, 0, false, r)).toEqual({ kind: "terminal", code });
    }
    expect(closeVerdict(1000, 0, true, r)).toEqual({ kind: "left" });
  });

  it("backs off exponentially with jitter, capped", () => {
    expect(backoff(0, () => 1)).toBe(500);
    expect(backoff(0, () => 0)).toBe(250);
    expect(backoff(3, () => 1)).toBe(4000);
    expect(backoff(50, () => 1)).toBe(MAX_BACKOFF_MS);
  });
});

describe("wire", () => {
  it("encodes commands as MessagePack maps without absent fields", () => {
    const bytes = encodeClient({ type: "hello", ticket: "v1.x.y", resume: undefined });
    expect(decode(bytes)).toEqual({ type: "hello", ticket: "v1.x.y" });
    expect(decode(encodeClient({ type: "take_seat", seat: { row: 2, col: 3 } }))).toEqual({
      type: "take_seat",
      seat: { row: 2, col: 3 },
    });
  });

  it("decodes server messages and ignores what it cannot read", () => {
    expect(decodeServer(encode({ type: "pong", t: 4, server_time: 5 }))).toEqual({ type: "pong", t: 4, server_time: 5 });
    expect(decodeServer(new Uint8Array([0xc1]))).toBeNull();
    // The grid's bitmaps are MessagePack `bin`: bytes, not a list of numbers.
    const welcome = decodeServer(encode({ type: "x", occupancy: { occupied: new Uint8Array([1, 2]) } })) as unknown as {
      occupancy: { occupied: Uint8Array };
    };
    expect(welcome.occupancy.occupied).toBeInstanceOf(Uint8Array);
    expect([...welcome.occupancy.occupied]).toEqual([1, 2]);
    expect(decodeServer(encode([1, 2]))).toBeNull();
  });
});

describe("my lectures", () => {
  const lecture = (over: Partial<MyLecture>): MyLecture => ({
    id: "demo",
    title: "L",
    starts_at: 0,
    ends_at: 1,
    role: "learner",
    state: { state: "live" },
    entry: { allowed: true, refusal: null },
    ...over,
  });

  it("formats countdowns", () => {
    expect(formatCountdown(0)).toBe("0:00:00");
    expect(formatCountdown(-5000)).toBe("0:00:00");
    expect(formatCountdown(61_001)).toBe("0:01:02");
    expect(formatCountdown(3_600_000 + 5_000)).toBe("1:00:05");
    expect(formatCountdown(2 * 86_400_000 + 3 * 3_600_000, "ja")).toBe("2日 3時間");
    expect(formatCountdown(2 * 86_400_000 + 3 * 3_600_000, "en")).toBe("2 d 3 h");
  });

  it("counts down to the doors, then to the start, and explains the rest", () => {
    expect(lectureView({ state: "before_doors", doors_open_at: 99 }).countdown).toEqual({ label: "countdown_doors", to: 99 });
    expect(lectureView({ state: "doors_open", starts_at: 77 }).countdown).toEqual({ label: "countdown_start", to: 77 });
    expect(lectureView({ state: "live" }).tone).toBe("live");
    expect(lectureView({ state: "cancelled", reason: "<b>台風</b>" }, "en").note).toBe("Reason: <b>台風</b>");
    expect(lectureView({ state: "ended", archive_available_at: null }, "ja").note).toBe(t("archive_soon", {}, "ja"));
    expect(lectureView({ state: "archive_available", since: 0 }, "en").badge).toBe("state_archive");
  });

  it("offers Enter only when allowed, with the staff's words for staff", () => {
    expect(enterLabel(lecture({}))).toBe("enter");
    expect(enterLabel(lecture({ role: "instructor" }))).toBe("enter_staff");
    expect(enterLabel(lecture({ entry: { allowed: false, refusal: null } }))).toBeNull();
  });

  it("says what to do about every refusal", () => {
    for (const code of [
      "payment_pending",
      "seat_not_allocated",
      "profile_incomplete",
      "doors_not_open",
      "not_purchased",
      "banned",
      "nickname_taken_by_staff",
    ]) {
      expect(fixFor(code)).toBe(`fix_${code}`);
      expect(t(fixFor(code), {}, "ja")).not.toBe(t(fixFor(code), {}, "en"));
    }
    expect(fixFor("something_new")).toBe("fix_generic");
  });

  it("refreshes when a countdown has just run out", () => {
    const soon = lecture({ state: { state: "before_doors", doors_open_at: 1000 } });
    expect(needsRefresh([soon], 999)).toBe(false);
    expect(needsRefresh([soon], 1000)).toBe(true);
    expect(needsRefresh([soon], 1000 + 120_000)).toBe(false);
  });
});

describe("seat grid geometry", () => {
  it("moves the cursor with the arrow keys within the grid", () => {
    expect(moveCursor({ row: 0, col: 0 }, "ArrowLeft", 8, 12)).toEqual({ row: 0, col: 0 });
    expect(moveCursor({ row: 0, col: 0 }, "ArrowRight", 8, 12)).toEqual({ row: 0, col: 1 });
    expect(moveCursor({ row: 7, col: 3 }, "ArrowDown", 8, 12)).toEqual({ row: 7, col: 3 });
    expect(moveCursor({ row: 2, col: 3 }, "End", 8, 12)).toEqual({ row: 2, col: 11 });
    expect(moveCursor({ row: 2, col: 3 }, "PageDown", 8, 12)).toEqual({ row: 7, col: 3 });
    expect(moveCursor({ row: 2, col: 3 }, "a", 8, 12)).toBeNull();
  });

  it("hit-tests clicks and finds the visible window of a large grid", () => {
    expect(hitTest(29, 57, 28, 8, 12)).toEqual({ row: 2, col: 1 });
    expect(hitTest(12 * 28, 0, 28, 8, 12)).toBeNull();
    expect(hitTest(-1, 0, 28, 8, 12)).toBeNull();
    // 100 x 100 seats at 20 px in a 400 px window scrolled to 1000 px: 20 or 21 cells.
    expect(visibleRange(1000, 400, 20, 100)).toEqual([50, 69]);
    expect(visibleRange(1990, 400, 20, 100)).toEqual([99, 99]);
    expect(scrollToShow(0, 400, 20, 30)).toBe(220);
    expect(scrollToShow(300, 400, 20, 10)).toBe(200);
    expect(scrollToShow(100, 400, 20, 10)).toBe(100);
  });

  it("fits and zooms within bounds", () => {
    expect(fitCell(1200, 12)).toBe(48);
    expect(fitCell(300, 100)).toBe(MIN_CELL);
    expect(zoom(MAX_CELL, 2)).toBe(MAX_CELL);
    expect(zoom(MIN_CELL, 0.5)).toBe(MIN_CELL);
  });
});

describe("connection check", () => {
  it("measures and judges", () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNull();
    expect(throughputMbps(2 * 1024 * 1024, 1000)).toBeCloseTo(16.78, 2);
    expect(downloadVerdict(1)).toBe("pass");
    expect(downloadVerdict(0.99)).toBe("fail");
    expect(downloadVerdict(null)).toBe("fail");
    expect(rttVerdict(30)).toBe("pass");
    expect(rttVerdict(900)).toBe("warn");
    expect(rttVerdict(null)).toBe("fail");
    expect(interestingCodecs(["video/VP8", "video/rtx", "audio/opus", "video/H264"])).toEqual(["H264", "VP8", "opus"]);
    expect(browserVerdict({ websocket: true, webrtc: false, codecs: [] })).toBe("fail");
    expect(webrtcVerdict(42)).toBe("pass");
    expect(webrtcVerdict(null)).toBe("fail");
    expect(webrtcVerdict("na")).toBe("fail");
    expect(webrtcVerdict("busy")).toBe("warn");
  });
});

describe("pages and words", () => {
  it("routes paths", () => {
    expect(parseRoute("/")).toEqual({ page: "lectures" });
    expect(parseRoute("/room/demo%2Dx")).toEqual({ page: "room", lecture: "demo-x" });
    expect(parseRoute("/room/%E0%A4%A")).toEqual({ page: "not-found" });
    expect(parseRoute("/check")).toEqual({ page: "check" });
    expect(parseRoute("/nope")).toEqual({ page: "not-found" });
  });

  it("has every text in both languages with the same placeholders", () => {
    const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    const ja = dictionaries.ja;
    const en = dictionaries.en;
    expect(Object.keys(en).sort()).toEqual(Object.keys(ja).sort());
    for (const key of Object.keys(ja) as (keyof typeof ja)[]) {
      expect(en[key].length, key).toBeGreaterThan(0);
      expect(placeholders(en[key]), key).toEqual(placeholders(ja[key]));
    }
    expect(t("seat_name", { row: 3, col: 5 }, "ja")).toBe("3列5番");
    expect(t("seat_name", { row: 3, col: 5 }, "en")).toBe("Row 3, seat 5");
  });
});

describe("gate errors in words", () => {
  it("explains network failures, expired sign-ins and floods in the reader's language", async () => {
    const { ApiError } = await import("../src/api");
    const { setLang } = await import("../src/i18n");
    setLang("en");
    expect(new ApiError(0, "network", "Failed to fetch", null).localized()).toBe(t("error_network", {}, "en"));
    expect(new ApiError(401, "unauthorized", "no token", null).localized()).toBe(t("error_signed_out", {}, "en"));
    expect(new ApiError(429, "rate_limited", "slow", null).localized()).toBe(t("gate_error_rate_limited", {}, "en"));
    // A refusal is explained by the client's own text for its code, not the node's sentence.
    const refusal = { error: "payment_pending", message: "Payment pending", message_ja: "お支払い待ち" };
    expect(new ApiError(403, "payment_pending", "Payment pending", refusal).localized()).toBe(
      t("gate_error_payment_pending", {}, "en"),
    );
    setLang("ja");
    expect(new ApiError(403, "payment_pending", "Payment pending", refusal).localized()).toBe(
      t("gate_error_payment_pending", {}, "ja"),
    );
    // An English sentence of a code this client does not know never reaches a Japanese reader.
    expect(new ApiError(400, "brand_new", "something in English", null).localized()).not.toContain("English");
  });
});
