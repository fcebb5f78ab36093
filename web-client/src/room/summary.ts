// The instructor's summary after the end, from what the console saw: attendance, the questions
// left unanswered, and the reactions minute by minute.
import type { ChatMessage } from "@protocol/ChatMessage";
import { TIMELINE_BUCKET_MS, type TimelineBucket } from "./history";
import { type RoomState, openQuestions } from "./state";

export interface LectureSummary {
  /** Distinct learners seen seated. */
  attended: number;
  /** The most people present at once (staff included, as the node counts them). */
  peakPresent: number;
  unanswered: ChatMessage[];
  /** Reactions per minute from the first minute with any to the last, empty minutes filled in. */
  timeline: TimelineBucket[];
  totals: Record<string, number>;
}

export function buildSummary(state: RoomState): LectureSummary {
  const h = state.history;
  const timeline: TimelineBucket[] = [];
  const first = h.timeline[0];
  const last = h.timeline[h.timeline.length - 1];
  if (first && last) {
    const byStart = new Map(h.timeline.map((b) => [b.start, b]));
    for (let s = first.start; s <= last.start; s += TIMELINE_BUCKET_MS) timeline.push(byStart.get(s) ?? { start: s, counts: {} });
  }
  return {
    attended: h.attended.size,
    peakPresent: h.peakPresent,
    unanswered: openQuestions(state),
    timeline,
    totals: state.meter.totals,
  };
}
