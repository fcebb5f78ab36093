// What a client does when the room connection closes (docs/protocol.md, "Close codes"):
// 4000-4099 and network failures mean "come back and resume", 4100-4199 are final.
import { CloseCodes } from "@protocol/CloseCodes";

export type CloseVerdict =
  | { kind: "left" }
  | { kind: "reconnect"; delayMs: number }
  | { kind: "terminal"; code: number };

/** Longest wait between two attempts. */
export const MAX_BACKOFF_MS = 30_000;

/** The wait before attempt number `attempt` (0 first), with jitter so a room's clients spread out. */
export function backoff(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(attempt, 16));
  return Math.round(base * (0.5 + random() / 2));
}

export function closeVerdict(
  code: number,
  attempt: number,
  userLeft: boolean,
  random: () => number = Math.random,
): CloseVerdict {
  if (userLeft) return { kind: "left" };
  if (code === CloseCodes.ServerShutdown) {
    // The node is draining: another node takes the room over; spread over a second.
    return { kind: "reconnect", delayMs: Math.round(random() * 1000) };
  }
  if (code === CloseCodes.TicketExpired) {
    // A fresh ticket is fetched for every attempt.
    return { kind: "reconnect", delayMs: backoff(attempt, random) };
  }
  if (code >= 4100 && code <= 4199) return { kind: "terminal", code };
  return { kind: "reconnect", delayMs: backoff(attempt, random) };
}
