// The connection check's measurements and verdicts, kept apart from the page so the rules
// (what counts as good enough) are unit-tested.

/** The video needs this much download speed. */
export const MIN_DOWNLOAD_MBPS = 1;
/** Above this round trip, chat and reactions feel late. */
export const SLOW_RTT_MS = 400;

export type Verdict = "pass" | "warn" | "fail" | "na";

export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Megabits per second for `bytes` received in `ms`. */
export function throughputMbps(bytes: number, ms: number): number {
  if (ms <= 0) return Number.POSITIVE_INFINITY;
  return (bytes * 8) / (ms / 1000) / 1_000_000;
}

export function downloadVerdict(mbps: number | null): Verdict {
  if (mbps === null) return "fail";
  return mbps >= MIN_DOWNLOAD_MBPS ? "pass" : "fail";
}

export function rttVerdict(ms: number | null): Verdict {
  if (ms === null) return "fail";
  return ms <= SLOW_RTT_MS ? "pass" : "warn";
}

export interface BrowserSupport {
  websocket: boolean;
  webrtc: boolean;
  codecs: string[];
}

/** Which of the formats the lecture video may use this browser can receive. */
export function interestingCodecs(mimeTypes: string[]): string[] {
  const wanted = ["video/H264", "video/VP8", "video/VP9", "video/AV1", "audio/opus"];
  const have = new Set(mimeTypes.map((m) => m.toLowerCase()));
  return wanted.filter((w) => have.has(w.toLowerCase())).map((w) => w.split("/")[1]!);
}

export function browserVerdict(s: BrowserSupport): Verdict {
  return s.websocket && s.webrtc ? "pass" : "fail";
}

/**
 * The video's path works when a WebRTC data channel to the node echoed; "na" without WebRTC;
 * "busy" when the node had no probe to spare (too many checks at once): nothing is known of
 * the network then, so a warning, not a failure.
 */
export function webrtcVerdict(result: number | null | "na" | "busy"): Verdict {
  if (result === "na") return "fail";
  if (result === "busy") return "warn";
  return result === null ? "fail" : "pass";
}
