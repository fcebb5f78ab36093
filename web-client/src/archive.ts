// The archive room's logic: what the replay shows at a moment of the archive's timeline (the
// chat up to it, the pinned announcement, the screen share on then) and the reaction timeline
// drawn under the seek bar. Plain functions of the server's `GET /api/archive/{lecture}`.

/** Where an archive stands for the signed-in person. */
export type ArchiveState = "preparing" | "ready" | "expired" | "withdrawn";

export interface ManifestTrack {
  kind: "camera" | "screen";
  name: string;
  /** Where the file's time 0 falls on the archive's timeline, ms. */
  start_ms: number;
  duration_ms: number;
}

export interface Manifest {
  started_at_ms: number;
  duration_ms: number;
  tracks: ManifestTrack[];
}

export interface Line {
  t: number;
  offset: number;
  nickname: string;
  role: "learner" | "instructor" | "moderator";
  text: string;
  question: boolean;
  answered: boolean;
  call_answer: boolean;
}

export interface Call {
  t: number;
  nickname: string;
  by: string;
  answer: number | null;
}

export interface Pin {
  t: number;
  text: string | null;
  by: string | null;
}

export interface Tally {
  t: number;
  counts: Record<string, number>;
}

export interface Timeline {
  bucket_ms: number;
  chat: Line[];
  calls: Call[];
  announcements: Pin[];
  reactions: Tally[];
}

export interface ArchiveView {
  lecture: string;
  title: string;
  role: "learner" | "instructor" | "moderator";
  state: ArchiveState;
  available_at: number | null;
  expires_at: number | null;
  manifest?: Manifest;
  timeline?: Timeline | null;
  media?: Record<string, string>;
  media_expires_at?: number;
}

export interface MyArchive {
  lecture: string;
  state: ArchiveState;
  available_at: number | null;
  expires_at: number | null;
}

export const EMPTY_TIMELINE: Timeline = { bucket_ms: 5000, chat: [], calls: [], announcements: [], reactions: [] };

/** The number of items (sorted by `t`) at or before `at`. */
export function countUpTo(items: readonly { t: number }[], at: number): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((items[mid] as { t: number }).t <= at) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** One entry of the replayed chat column: a line, a call, or an announcement. */
export type Entry =
  | { kind: "line"; t: number; key: string; line: Line }
  | { kind: "call"; t: number; key: string; call: Call }
  | { kind: "pin"; t: number; key: string; pin: Pin };

/** The chat column's entries in time order (calls and announcements in place). */
export function entries(timeline: Timeline): Entry[] {
  const all: Entry[] = [
    ...timeline.chat.map((line) => ({ kind: "line" as const, t: line.t, key: `l${line.offset}`, line })),
    ...timeline.calls.map((call, i) => ({ kind: "call" as const, t: call.t, key: `c${i}`, call })),
    ...timeline.announcements.map((pin, i) => ({ kind: "pin" as const, t: pin.t, key: `p${i}`, pin })),
  ];
  // Stable: at one moment, a call comes before the answer that follows it in the chat.
  const rank = { pin: 0, call: 1, line: 2 };
  return all.sort((a, b) => a.t - b.t || rank[a.kind] - rank[b.kind]);
}

/** The announcement pinned at `at`, if any. */
export function pinAt(timeline: Timeline, at: number): Pin | null {
  const n = countUpTo(timeline.announcements, at);
  const pin = n > 0 ? timeline.announcements[n - 1] : undefined;
  return pin && pin.text !== null ? pin : null;
}

/** The screen share on at `at` (shown large, the camera small), if any. */
export function screenAt(manifest: Manifest, at: number): ManifestTrack | null {
  return (
    manifest.tracks.find((tr) => tr.kind === "screen" && tr.start_ms <= at && at < tr.start_ms + tr.duration_ms) ?? null
  );
}

/** Emotions that say the room was lost, and those that say it applauded (the bar's colour). */
const LOST = new Set(["lost", "slower"]);

export interface Bar {
  t: number;
  /** 0..1 of the busiest interval. */
  height: number;
  /** 0..1 position on the timeline. */
  at: number;
  /** Presses in the interval. */
  total: number;
  /** The emotion pressed most. */
  top: string;
  /** "lost" when confusion dominated, "good" otherwise. */
  mood: "lost" | "good";
  counts: Record<string, number>;
}

/** The reaction timeline: one bar per interval with presses. */
export function reactionBars(timeline: Timeline, durationMs: number): Bar[] {
  const totals = timeline.reactions.map((r) => Object.values(r.counts).reduce((a, b) => a + b, 0));
  const max = Math.max(1, ...totals);
  const span = Math.max(1, durationMs);
  return timeline.reactions.map((r, i) => {
    const total = totals[i] ?? 0;
    let top = "";
    let topN = -1;
    let lost = 0;
    for (const [key, n] of Object.entries(r.counts)) {
      if (n > topN) {
        top = key;
        topN = n;
      }
      if (LOST.has(key)) lost += n;
    }
    return {
      t: r.t,
      height: total / max,
      at: Math.min(1, r.t / span),
      total,
      top,
      mood: lost * 2 > total ? "lost" : "good",
      counts: r.counts,
    };
  });
}

/** "1:02:03" or "2:03". */
export function formatClock(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** The playback speeds offered. */
export const SPEEDS = [0.75, 1, 1.25, 1.5, 1.75, 2] as const;
