// "My page": what each lecture's card says and offers, from the gate's answer and the clock.
import type { LectureState } from "@gate/LectureState";
import type { MyLecture } from "@gate/MyLecture";
import { type Key, type Lang, formatDateTime, lang, t } from "./i18n";

export type Tone = "wait" | "open" | "live" | "done" | "cancel";

export interface LectureView {
  badge: Key;
  tone: Tone;
  /** A running countdown: its label and the moment it counts to. */
  countdown: { label: Key; to: number } | null;
  /** A sentence about the archive or the cancellation, already in the reader's language. */
  note: string | null;
}

/** "1:02:03" under a day, "2日 3時間" / "2 d 3 h" beyond; never negative. */
export function formatCountdown(ms: number, l: Lang = lang()): string {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const days = Math.floor(total / 86_400);
  const hours = Math.floor((total % 86_400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  if (days > 0) return l === "ja" ? `${days}日 ${hours}時間` : `${days} d ${hours} h`;
  const mm = String(minutes).padStart(2, "0");
  const ss = String(seconds).padStart(2, "0");
  return `${hours}:${mm}:${ss}`;
}

export function lectureView(state: LectureState, l: Lang = lang()): LectureView {
  switch (state.state) {
    case "before_doors":
      return { badge: "state_before_doors", tone: "wait", countdown: { label: "countdown_doors", to: state.doors_open_at }, note: null };
    case "doors_open":
      return { badge: "state_doors_open", tone: "open", countdown: { label: "countdown_start", to: state.starts_at }, note: null };
    case "live":
      return { badge: "state_live", tone: "live", countdown: null, note: null };
    case "ended":
      return {
        badge: "state_ended",
        tone: "done",
        countdown: null,
        note:
          state.archive_available_at !== null
            ? t("archive_expected", { date: formatDateTime(state.archive_available_at, l) }, l)
            : t("archive_soon", {}, l),
      };
    case "archive_available":
      return {
        badge: "state_archive",
        tone: "done",
        countdown: null,
        note: t("archive_since", { date: formatDateTime(state.since, l) }, l),
      };
    case "cancelled":
      return { badge: "state_cancelled", tone: "cancel", countdown: null, note: t("cancelled_reason", { reason: state.reason }, l) };
  }
}

const FIXES: Record<string, Key> = {
  payment_pending: "fix_payment_pending",
  not_purchased: "fix_not_purchased",
  purchase_cancelled: "fix_purchase_cancelled",
  corporate_account_cannot_enter: "fix_corporate_account_cannot_enter",
  seat_not_allocated: "fix_seat_not_allocated",
  profile_incomplete: "fix_profile_incomplete",
  nickname_taken_by_staff: "fix_nickname_taken_by_staff",
  doors_not_open: "fix_doors_not_open",
  lecture_ended: "fix_lecture_ended",
  lecture_cancelled: "fix_lecture_cancelled",
  banned: "fix_banned",
};

/** What a person should do about a refusal code. */
export function fixFor(code: string): Key {
  return FIXES[code] ?? "fix_generic";
}

/** Whether the card should show the Enter button, and with which words (staff by their role). */
export function enterLabel(l: MyLecture): Key | null {
  if (!l.entry.allowed) return null;
  if (l.role === "moderator") return "enter_moderator";
  return l.role === "instructor" ? "enter_staff" : "enter";
}

/**
 * Refusals the card's state already tells (before the doors, ended, cancelled): the card says
 * it once, through its badge and note, not a second time in other words.
 */
const TOLD_BY_STATE = new Set(["doors_not_open", "lecture_ended", "lecture_cancelled"]);

/** The refusal a card explains (why Enter is missing and what to do), or null. */
export function shownRefusal(l: MyLecture): string | null {
  const code = l.entry.refusal?.error;
  return code && !TOLD_BY_STATE.has(code) ? code : null;
}

/** Whether two moments fall on the same day where the reader is. */
function sameDay(a: number, b: number): boolean {
  const x = new Date(a);
  const y = new Date(b);
  return x.getFullYear() === y.getFullYear() && x.getMonth() === y.getMonth() && x.getDate() === y.getDate();
}

/** Whether a lecture is today's: live now, or starting today. */
export function isToday(l: MyLecture, now: number): boolean {
  return l.state.state === "live" || sameDay(l.starts_at, now);
}

/**
 * My page's order: today's lectures first (live before the rest), then the coming ones,
 * soonest first, then those over, the latest first.
 */
export function myPageOrder(lectures: MyLecture[], now: number): MyLecture[] {
  const over = (l: MyLecture) => ["ended", "archive_available", "cancelled"].includes(l.state.state);
  const rank = (l: MyLecture) => (isToday(l, now) && !over(l) ? (l.state.state === "live" ? 0 : 1) : over(l) ? 3 : 2);
  return [...lectures].sort((a, b) => {
    const r = rank(a) - rank(b);
    if (r !== 0) return r;
    return rank(a) === 3 ? b.starts_at - a.starts_at : a.starts_at - b.starts_at;
  });
}

/** Lectures whose countdown just ran out need the gate's fresh answer. */
export function needsRefresh(lectures: MyLecture[], now: number): boolean {
  return lectures.some((l) => {
    const v = lectureView(l.state);
    return v.countdown !== null && v.countdown.to <= now && v.countdown.to > now - 60_000;
  });
}
