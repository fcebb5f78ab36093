// What a client does when the room connection closes (docs/protocol.md, "Close codes"):
// 4000-4099 and network failures mean "come back and resume", 4100-4199 are final.
import { CloseCodes } from "@protocol/CloseCodes";

export type CloseVerdict =
  | { kind: "left" }
  | { kind: "reconnect"; delayMs: number }
  | { kind: "terminal"; code: number };

/** Longest wait between two attempts. */
export const MAX_BACKOFF_MS = 30_000;

/**
 * Longest wait between two attempts while the lecture is live: every second away is a second
 * of the lecture missed, so a learner comes back within about this long of the network's return.
 */
export const MAX_LIVE_BACKOFF_MS = 2_000;

/** The wait before attempt number `attempt` (0 first), with jitter so a room's clients spread out. */
export function backoff(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(attempt, 16));
  return Math.round(base * (0.5 + random() / 2));
}

/**
 * The wait during a live lecture: starts shorter and doubles only up to
 * [`MAX_LIVE_BACKOFF_MS`], still jittered (half to all of it) so a hall of learners whose
 * network came back together do not all knock in the same instant.
 */
export function liveBackoff(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(MAX_LIVE_BACKOFF_MS, 250 * 2 ** Math.min(attempt, 16));
  return Math.round(base * (0.5 + random() / 2));
}

/** How long a new socket may take to open and bring its welcome before it is given up on. */
export const WELCOME_WITHIN_MS = 10_000;
/** How long a silent connection is trusted: after a `ping` goes unanswered this long, it is dead. */
export const PONG_WITHIN_MS = 5_000;
/** How often a quiet connection is probed with a `ping` (a dropped network sends no close). */
export const PROBE_EVERY_MS = 10_000;

export function closeVerdict(
  code: number,
  attempt: number,
  userLeft: boolean,
  random: () => number = Math.random,
  live = false,
): CloseVerdict {
  const wait = live ? liveBackoff : backoff;
  if (userLeft) return { kind: "left" };
  if (code === CloseCodes.ServerShutdown) {
    // The node is draining: another node takes the room over; spread over a second.
    return { kind: "reconnect", delayMs: Math.round(random() * 1000) };
  }
  if (code === CloseCodes.TicketExpired) {
    // A fresh ticket is fetched for every attempt.
    return { kind: "reconnect", delayMs: wait(attempt, random) };
  }
  if (code >= 4100 && code <= 4199) return { kind: "terminal", code };
  return { kind: "reconnect", delayMs: wait(attempt, random) };
}
