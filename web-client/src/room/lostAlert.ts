// When to tell the instructor that learners are getting lost. The rule, over the meter's 5 s
// buckets:
//   - the window is the last 30 s (six buckets, the current one included), compared with the
//     30 s before it;
//   - at least `LOST_MIN` presses of 「わからない」 (`lost`) in the window, so two puzzled
//     learners in a quiet room raise nothing;
//   - 「わからない」 is at least `LOST_SHARE` of all presses in the window, so a room applauding
//     loudly with a few lost among them raises nothing either;
//   - and it is rising: more 「わからない」 presses in the window than in the one before, so the
//     alert is about a spike and goes away once it has passed rather than nagging.
import type { MeterBucket } from "./state";

/** The emotion the alert is about. */
export const LOST_KEY = "lost";
/** Buckets in one window (6 × 5 s = 30 s). */
export const LOST_WINDOW_BUCKETS = 6;
/** Fewest 「わからない」 presses in the window that can raise the alert. */
export const LOST_MIN = 3;
/** Smallest share of all presses in the window that can raise the alert. */
export const LOST_SHARE = 0.3;

export interface LostSpike {
  /** 「わからない」 presses in the window. */
  lost: number;
  /** All presses in the window. */
  total: number;
  /** `lost / total`. */
  share: number;
  /** 「わからない」 presses in the window before. */
  before: number;
}

function sum(buckets: MeterBucket[], key: string | null): number {
  let n = 0;
  for (const b of buckets) {
    if (key !== null) n += b.counts[key] ?? 0;
    else for (const v of Object.values(b.counts)) n += v;
  }
  return n;
}

/** The spike the rule sees at the end of `series` (oldest first, one bucket per 5 s), or null. */
export function lostSpike(series: MeterBucket[]): LostSpike | null {
  const window = series.slice(-LOST_WINDOW_BUCKETS);
  const earlier = series.slice(-2 * LOST_WINDOW_BUCKETS, -LOST_WINDOW_BUCKETS);
  const lost = sum(window, LOST_KEY);
  const total = sum(window, null);
  const before = sum(earlier, LOST_KEY);
  if (lost < LOST_MIN || total === 0) return null;
  const share = lost / total;
  if (share < LOST_SHARE || lost <= before) return null;
  return { lost, total, share, before };
}
