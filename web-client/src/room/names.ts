// Which seats' nicknames a learner asks the node for. A learner's grid comes without names
// (docs/protocol.md, "The seat grid"): the page asks, with `seat_names`, for those it shows —
// the keyboard cursor's seat, the one under the pointer, their neighbours, the visible cells
// when they are large enough to write names in — and only for taken seats it has no name for.
import type { Seat } from "@protocol/Seat";
import { type RoomState, type SeatIndex, bit, seatIndex } from "./state";

/** Most seats one `seat_names` may ask about (protocol/src/grid.rs, `MAX_SEAT_NAMES`). */
export const MAX_SEAT_NAMES = 100;
/** How long after the view stops changing the page asks… */
export const ASK_AFTER_MS = 150;
/** …or, while it keeps changing (arrow keys held down, a long scroll), at least this often. */
export const ASK_AT_LEAST_EVERY_MS = 600;
/** A seat asked about and not named (taken since the node's last tick) is asked again after this. */
export const RETRY_MS = 2_000;

/**
 * The seats a view wants names for, most wanted first: `first` (the cursor's, the pointer's),
 * then their neighbours, then `visible` in reading order. Duplicates and seats outside the
 * grid are left out.
 */
export function wantedSeats(first: (Seat | null)[], visible: Seat[], rows: number, cols: number): SeatIndex[] {
  const out: SeatIndex[] = [];
  const seen = new Set<SeatIndex>();
  const add = (row: number, col: number) => {
    if (row < 0 || col < 0 || row >= rows || col >= cols) return;
    const i = seatIndex({ row, col }, cols);
    if (!seen.has(i)) {
      seen.add(i);
      out.push(i);
    }
  };
  const centres = first.filter((s): s is Seat => s !== null);
  for (const s of centres) add(s.row, s.col);
  for (const s of centres) {
    for (const [dr, dc] of [
      [0, -1],
      [0, 1],
      [-1, 0],
      [1, 0],
      [-1, -1],
      [-1, 1],
      [1, -1],
      [1, 1],
    ] as const) {
      add(s.row + dr, s.col + dc);
    }
  }
  for (const s of visible) add(s.row, s.col);
  return out;
}

/** The seat-name questions of one connection: what to ask next, and what is being asked. */
export class SeatNameRequests {
  /** Seats asked about, with when: not asked again before an answer or `RETRY_MS`. */
  private asked = new Map<SeatIndex, number>();

  /**
   * The seats to ask about now, at most `MAX_SEAT_NAMES`, most wanted first: taken, with no
   * nickname known, not asked about lately. They count as asked from now on.
   */
  next(state: RoomState, wanted: SeatIndex[], now: number): SeatIndex[] {
    const out: SeatIndex[] = [];
    for (const i of wanted) {
      if (out.length >= MAX_SEAT_NAMES) break;
      if (!bit(state.occupied, i) || state.names.has(i)) continue;
      const at = this.asked.get(i);
      if (at !== undefined && now - at < RETRY_MS) continue;
      out.push(i);
      this.asked.set(i, now);
    }
    return out;
  }

  /** These seats changed hands (an update's `taken` and `freed`): ask again when wanted. */
  forget(seats: SeatIndex[]): void {
    for (const i of seats) this.asked.delete(i);
  }

  /** A new welcome: everything is asked afresh. */
  reset(): void {
    this.asked.clear();
  }
}
