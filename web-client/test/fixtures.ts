// What the web client's unit tests share: a moment, and a learner's welcome to build rooms from.
import type { Welcome } from "@protocol/Welcome";

/** The tests' "now". */
export const T0 = 1_800_000_000_000;

/** A learner's welcome to an 8 × 12 lecture with its doors open, nobody seated; `over` replaces
 * what a test needs otherwise. */
export function welcome(over: Partial<Welcome> = {}): Welcome {
  return {
    protocol: 2,
    server_time: T0,
    you: { user: "u-taro", nickname: "たろう", role: "learner" },
    lecture: {
      id: "demo",
      title: "Lecture",
      starts_at: T0 + 900_000,
      ends_at: T0 + 6_300_000,
      rows: 8,
      cols: 12,
      emotions: [
        { key: "good", label_ja: "いいね", label_en: "Good" },
        { key: "lost", label_ja: "わからない", label_en: "Lost" },
      ],
      chat_max_chars: 500,
    },
    phase: { state: "doors_open" },
    epoch: 7,
    replay: "snapshot",
    chat: [],
    last_offset: 0,
    occupancy: { occupied: new Uint8Array(12), away: new Uint8Array(12) },
    seats: null,
    your_seat: null,
    present: 1,
    call: null,
    announcement: null,
    muted_until: null,
    hands: null,
    hand_count: 0,
    your_hand: null,
    votes: [],
    your_votes: [],
    muted: null,
    fork_of: null,
    ...over,
  };
}
