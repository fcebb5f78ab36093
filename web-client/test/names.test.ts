import { describe, expect, it } from "vitest";
import { MAX_SEAT_NAMES, RETRY_MS, SeatNameRequests, wantedSeats } from "../src/room/names";
import { applyServer, fromWelcome, seatIndex } from "../src/room/state";
import { T0, welcome } from "./fixtures";

const ROWS = 60;
const COLS = 100;

/** A learner's room in a 60 × 100 hall where every seat is taken and no nickname is known. */
function fullHall() {
  const hall = welcome({
    epoch: 1,
    lecture: { id: "big", title: "Hall", starts_at: T0, ends_at: T0 + 1, rows: ROWS, cols: COLS, emotions: [], chat_max_chars: 500 },
    occupancy: { occupied: new Uint8Array(750).fill(0xff), away: new Uint8Array(750) },
  });
  return fromWelcome(hall, T0, null);
}

describe("asking who sits where", () => {
  it("wants the cursor's seat first, then the pointer's, their neighbours, then what is on screen", () => {
    const wanted = wantedSeats([{ row: 0, col: 0 }, null], [{ row: 5, col: 5 }, { row: 0, col: 1 }], ROWS, COLS);
    // (0, 0) has three neighbours in the grid; (0, 1) is one of them and comes only once.
    expect(wanted).toEqual([0, 1, COLS, COLS + 1, seatIndex({ row: 5, col: 5 }, COLS)]);
  });

  it("asks once for taken seats without a name, at most a request's worth, and again after a change", () => {
    let state = fullHall();
    const requests = new SeatNameRequests();
    const visible = Array.from({ length: 150 }, (_, i) => i);
    const first = requests.next(state, visible, T0);
    expect(first).toEqual(visible.slice(0, MAX_SEAT_NAMES));
    expect(requests.next(state, visible, T0 + 10), "in flight: not asked twice").toEqual(visible.slice(MAX_SEAT_NAMES));
    // The answer names them all but seat 7 (taken since the node's last tick).
    state = applyServer(
      state,
      { type: "seat_names", seats: visible.filter((i) => i !== 7).map((seat) => ({ seat, nickname: `n${seat}` })) },
      T0,
    );
    expect(requests.next(state, visible, T0 + 20)).toEqual([]);
    // The tick says who is new at 7 (and at 3): both are asked for again at once.
    state = applyServer(state, { type: "update", taken: [3, 7] }, T0);
    requests.forget([3, 7]);
    expect(requests.next(state, visible, T0 + 30)).toEqual([3, 7]);
    // Without news, a seat left unnamed is asked again only after a while.
    expect(requests.next(state, visible, T0 + 40)).toEqual([]);
    expect(requests.next(state, visible, T0 + 30 + RETRY_MS)).toEqual([3, 7]);
  });

  it("never asks about empty seats", () => {
    let state = fullHall();
    state = applyServer(state, { type: "update", freed: [0, 1, 2] }, T0);
    expect(new SeatNameRequests().next(state, [0, 1, 2, 3], T0)).toEqual([3]);
  });
});

describe("what a seat says to a screen reader", () => {
  it("names who sits there once the nickname is known, and says taken until then", async () => {
    const { seatLabel } = await import("../src/room/SeatGrid");
    const { setLang, t } = await import("../src/i18n");
    setLang("en");
    const seat = { row: 1, col: 2 };
    const name = t("seat_name", { row: 2, col: 3 });
    expect(seatLabel(seat, false, false, undefined, false)).toBe(`${name}: ${t("seat_empty")}`);
    expect(seatLabel(seat, true, false, undefined, false)).toBe(`${name}: ${t("seat_taken")}`);
    expect(seatLabel(seat, true, true, undefined, false)).toBe(`${name}: ${t("seat_taken_away")}`);
    expect(seatLabel(seat, true, false, "はなこ", false)).toBe(`${name}: はなこ`);
    expect(seatLabel(seat, true, true, "はなこ", false)).toBe(`${name}: ${t("seat_away", { nickname: "はなこ" })}`);
    expect(seatLabel(seat, false, false, "たろう", true)).toBe(`${name}: たろう (${t("seat_yours")})`);
    setLang("ja");
  });
});
