// What the console saw over the whole lecture, for the instructor's heat view and the summary
// after the end: who sat, the most people present, reactions per minute, and each seat's
// reactions. Pure and bounded: a long lecture of thousands keeps at most one entry per seat and
// one per minute (capped), never one per press.
import type { Meter } from "@protocol/Meter";
import type { Seat } from "@protocol/Seat";
import type { SeatIndex } from "./state";

/** The timeline's step. */
export const TIMELINE_BUCKET_MS = 60_000;
/** Minutes kept on the timeline (a lecture longer than this keeps its last ones). */
export const TIMELINE_KEEP = 600;
/** Nicknames remembered as having attended (a bound, far above any lecture's size). */
export const ATTENDED_KEEP = 20_000;

export interface TimelineBucket {
  /** Start of the minute, server milliseconds. */
  start: number;
  counts: Record<string, number>;
}

export interface History {
  /** Nicknames of everyone seen seated (staff see every occupant). */
  attended: Set<string>;
  /** The most people present at once. */
  peakPresent: number;
  /** Reactions per minute, oldest first. */
  timeline: TimelineBucket[];
  /**
   * Each seat's reactions since the room opened, by emotion (the seat's occupant may change).
   * A staff `meter` names each seat that reacted at most once per tick, so this counts the ticks
   * in which the seat pressed the button, a close lower bound of its presses.
   */
  heat: Map<SeatIndex, Record<string, number>>;
}

export function emptyHistory(): History {
  return { attended: new Set(), peakPresent: 0, timeline: [], heat: new Map() };
}

/** The history after a staff `meter` message (`seatOf` turns the wire's seat into its number). */
export function recordMeter(h: History, m: Meter, seatOf: (s: Seat) => SeatIndex): History {
  const start = Math.floor(m.at / TIMELINE_BUCKET_MS) * TIMELINE_BUCKET_MS;
  const timeline = h.timeline.slice();
  const last = timeline[timeline.length - 1];
  const counts = { ...(last && last.start === start ? last.counts : {}) };
  for (const [k, v] of Object.entries(m.tally)) counts[k] = (counts[k] ?? 0) + (v ?? 0);
  if (last && last.start === start) timeline[timeline.length - 1] = { start, counts };
  else timeline.push({ start, counts });
  if (timeline.length > TIMELINE_KEEP) timeline.splice(0, timeline.length - TIMELINE_KEEP);
  let heat = h.heat;
  if (m.seats.length > 0) {
    heat = new Map(heat);
    for (const r of m.seats) {
      const i = seatOf(r.seat);
      const c = { ...(heat.get(i) ?? {}) };
      c[r.emotion] = (c[r.emotion] ?? 0) + 1;
      heat.set(i, c);
    }
  }
  return { ...h, timeline, heat };
}

/** The history after people were seen: nicknames seated, and how many are present. */
export function recordPresence(h: History, seated: string[], present: number | null): History {
  let attended = h.attended;
  for (const nickname of seated) {
    if (attended.has(nickname) || attended.size >= ATTENDED_KEEP) continue;
    if (attended === h.attended) attended = new Set(attended);
    attended.add(nickname);
  }
  const peakPresent = present !== null && present > h.peakPresent ? present : h.peakPresent;
  if (attended === h.attended && peakPresent === h.peakPresent) return h;
  return { ...h, attended, peakPresent };
}

/** A seat's heat: its reactions of one emotion (or of all when `emotion` is null). */
export function heatOf(counts: Record<string, number> | undefined, emotion: string | null): number {
  if (!counts) return 0;
  if (emotion !== null) return counts[emotion] ?? 0;
  let sum = 0;
  for (const v of Object.values(counts)) sum += v;
  return sum;
}
