import { useEffect, useState } from "preact/hooks";
import type { Key } from "../i18n";
import { t } from "../i18n";
import {
  type BrowserSupport,
  type Verdict,
  browserVerdict,
  downloadVerdict,
  interestingCodecs,
  median,
  rttVerdict,
  throughputMbps,
  webrtcVerdict,
} from "../check";
import { SUBPROTOCOL_MSGPACK, decodeServer, encodeClient, socketUrl } from "../wire";

const PINGS = 10;
const DOWNLOAD_BYTES = 2 * 1024 * 1024;

function detectSupport(): BrowserSupport {
  const webrtc = typeof RTCPeerConnection !== "undefined";
  let mimes: string[] = [];
  try {
    if (typeof RTCRtpReceiver !== "undefined" && RTCRtpReceiver.getCapabilities) {
      mimes = [
        ...(RTCRtpReceiver.getCapabilities("video")?.codecs ?? []),
        ...(RTCRtpReceiver.getCapabilities("audio")?.codecs ?? []),
      ].map((c) => c.mimeType);
    }
  } catch {
    mimes = [];
  }
  return { websocket: typeof WebSocket !== "undefined", webrtc, codecs: interestingCodecs(mimes) };
}

/** Round trips over the check socket, in milliseconds. */
function measureRtt(): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(socketUrl("/ws/check"), [SUBPROTOCOL_MSGPACK]);
    ws.binaryType = "arraybuffer";
    const samples: number[] = [];
    let sentAt = 0;
    const timeout = setTimeout(() => {
      ws.close();
      reject(new Error("timeout"));
    }, 10_000);
    const ping = () => {
      sentAt = performance.now();
      ws.send(encodeClient({ type: "ping", t: samples.length }));
    };
    ws.onopen = ping;
    ws.onmessage = (ev) => {
      const msg = decodeServer(ev.data as ArrayBuffer);
      if (msg?.type !== "pong") return;
      samples.push(performance.now() - sentAt);
      if (samples.length < PINGS) ping();
      else {
        clearTimeout(timeout);
        ws.close(1000);
        resolve(samples);
      }
    };
    ws.onerror = () => {
      clearTimeout(timeout);
      reject(new Error("websocket error"));
    };
  });
}

/** The node refused the probe for its caps (per address, per node): retry in a minute. */
class ServerBusy extends Error {}

/**
 * A data channel to the node over WebRTC, negotiated on the check socket: the same path the
 * lecture's video takes (ICE over UDP or TCP, DTLS). Resolves to the time until an echo came
 * back, in milliseconds.
 */
function probeWebRtc(): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const ws = new WebSocket(socketUrl("/ws/check"), [SUBPROTOCOL_MSGPACK]);
    ws.binaryType = "arraybuffer";
    let pc: RTCPeerConnection | null = null;
    const pending: RTCIceCandidateInit[] = [];
    const finish = (result: number | Error) => {
      clearTimeout(timeout);
      pc?.close();
      ws.close(1000);
      if (typeof result === "number") resolve(result);
      else reject(result);
    };
    const timeout = setTimeout(() => finish(new Error("timeout")), 15_000);
    ws.onmessage = (ev) => {
      const msg = decodeServer(ev.data as ArrayBuffer);
      if (!msg) return;
      if (msg.type === "media_config" && !pc) {
        pc = new RTCPeerConnection({
          iceServers: msg.ice_servers.map((s) => ({
            urls: s.urls,
            username: s.username ?? undefined,
            credential: s.credential ?? undefined,
          })),
        });
        const channel = pc.createDataChannel("probe");
        channel.onopen = () => channel.send("probe");
        channel.onmessage = () => finish(performance.now() - started);
        // The node takes candidates only after the offer: hold them until it is sent.
        let offered = false;
        const held: Uint8Array[] = [];
        pc.onicecandidate = (e) => {
          if (!e.candidate?.candidate) return;
          const frame = encodeClient({
            type: "media_candidate",
            candidate: {
              candidate: e.candidate.candidate,
              sdp_mid: e.candidate.sdpMid ?? null,
              sdp_mline_index: e.candidate.sdpMLineIndex ?? null,
              username_fragment: e.candidate.usernameFragment ?? null,
            },
          });
          if (offered) ws.send(frame);
          else held.push(frame);
        };
        const local = pc;
        void local
          .createOffer()
          .then((offer) => local.setLocalDescription(offer).then(() => offer))
          .then((offer) => {
            ws.send(encodeClient({ type: "media_offer", sdp: offer.sdp ?? "" }));
            offered = true;
            for (const frame of held.splice(0)) ws.send(frame);
          })
          .catch((e: unknown) => finish(e instanceof Error ? e : new Error(String(e))));
      } else if (msg.type === "media_answer" && pc) {
        const local = pc;
        void local
          .setRemoteDescription({ type: "answer", sdp: msg.sdp })
          .then(async () => {
            for (const c of pending.splice(0)) await local.addIceCandidate(c).catch(() => {});
          })
          .catch((e: unknown) => finish(e instanceof Error ? e : new Error(String(e))));
      } else if (msg.type === "media_candidate" && pc) {
        const c: RTCIceCandidateInit = {
          candidate: msg.candidate.candidate,
          sdpMid: msg.candidate.sdp_mid ?? undefined,
          sdpMLineIndex: msg.candidate.sdp_mline_index ?? undefined,
          usernameFragment: msg.candidate.username_fragment ?? undefined,
        };
        if (pc.remoteDescription) void pc.addIceCandidate(c).catch(() => {});
        else pending.push(c);
      } else if (msg.type === "error" && msg.code === "rate_limited") {
        finish(new ServerBusy(msg.message));
      } else if (msg.type === "error" || msg.type === "media_stopped") {
        finish(new Error(msg.type === "error" ? msg.message : "stopped"));
      }
    };
    ws.onerror = () => finish(new Error("websocket error"));
  });
}

async function measureDownload(): Promise<number> {
  const started = performance.now();
  const response = await fetch(`/api/v1/check/download?bytes=${DOWNLOAD_BYTES}`, { cache: "no-store" });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const body = await response.arrayBuffer();
  return throughputMbps(body.byteLength, performance.now() - started);
}

interface Results {
  support: BrowserSupport;
  rtt: number | null | "pending";
  mbps: number | null | "pending";
  /**
   * Time to a WebRTC echo, ms; null when it failed; "na" when the browser has no WebRTC;
   * "busy" when the server had no probe to spare.
   */
  webrtc: number | null | "pending" | "na" | "busy";
}

export function CheckPage() {
  const [results, setResults] = useState<Results | null>(null);
  const [run, setRun] = useState(0);

  useEffect(() => {
    let live = true;
    const support = detectSupport();
    const current: Results = { support, rtt: "pending", mbps: "pending", webrtc: support.webrtc ? "pending" : "na" };
    setResults({ ...current });
    void (async () => {
      try {
        current.rtt = median(await measureRtt());
      } catch {
        current.rtt = null;
      }
      if (live) setResults({ ...current });
      try {
        current.mbps = await measureDownload();
      } catch {
        current.mbps = null;
      }
      if (live) setResults({ ...current });
      if (current.webrtc === "pending") {
        try {
          current.webrtc = await probeWebRtc();
        } catch (e) {
          current.webrtc = e instanceof ServerBusy ? "busy" : null;
        }
        if (live) setResults({ ...current });
      }
    })();
    return () => {
      live = false;
    };
  }, [run]);

  const busy = !results || results.rtt === "pending" || results.mbps === "pending" || results.webrtc === "pending";
  return (
    <section class="page narrow" aria-labelledby="check-title">
      <h1 id="check-title">{t("check_title")}</h1>
      <p>{t("check_intro")}</p>
      {results && (
        <ul class="checks" aria-busy={busy}>
          <CheckItem
            id="browser"
            title={t("check_browser")}
            verdict={browserVerdict(results.support)}
            value={t("check_codecs", { codecs: results.support.codecs.join(", ") || "—" })}
            advice={browserVerdict(results.support) === "pass" ? t("check_browser_ok") : t("check_browser_fail")}
          />
          <CheckItem
            id="rtt"
            title={t("check_rtt")}
            verdict={results.rtt === "pending" ? "pending" : rttVerdict(results.rtt)}
            value={typeof results.rtt === "number" ? t("check_rtt_value", { ms: Math.round(results.rtt) }) : null}
            advice={
              results.rtt === null ? t("check_rtt_fail") : rttVerdict(results.rtt === "pending" ? 0 : results.rtt) === "warn" ? t("check_rtt_slow") : null
            }
          />
          <CheckItem
            id="download"
            title={t("check_download")}
            verdict={results.mbps === "pending" ? "pending" : downloadVerdict(results.mbps)}
            value={typeof results.mbps === "number" ? t("check_download_value", { mbps: results.mbps.toFixed(1) }) : null}
            advice={
              results.mbps === null
                ? t("check_download_error")
                : typeof results.mbps === "number" && downloadVerdict(results.mbps) === "fail"
                  ? t("check_download_fail")
                  : null
            }
          />
          <CheckItem
            id="webrtc"
            title={t("check_webrtc")}
            verdict={results.webrtc === "pending" ? "pending" : webrtcVerdict(results.webrtc)}
            value={typeof results.webrtc === "number" ? t("check_webrtc_value", { ms: Math.round(results.webrtc) }) : null}
            advice={
              results.webrtc === null
                ? t("check_webrtc_fail")
                : results.webrtc === "na"
                  ? t("check_browser_fail")
                  : results.webrtc === "busy"
                    ? t("check_webrtc_busy")
                    : null
            }
          />
        </ul>
      )}
      <p>
        <button type="button" disabled={busy} onClick={() => setRun((r) => r + 1)}>
          {busy ? t("check_running") : t("check_run")}
        </button>
      </p>
    </section>
  );
}

const VERDICT_KEYS: Record<Verdict, Key> = { pass: "check_pass", warn: "check_warn", fail: "check_fail", na: "check_na" };

function CheckItem(props: { id: string; title: string; verdict: Verdict | "pending"; value: string | null; advice: string | null }) {
  return (
    <li class={`check-item verdict-${props.verdict}`} data-check={props.id} data-verdict={props.verdict}>
      <span class="check-title">{props.title}</span>
      <span class="verdict">{props.verdict === "pending" ? t("check_running") : t(VERDICT_KEYS[props.verdict])}</span>
      {props.value && <span class="check-value">{props.value}</span>}
      {props.advice && <p class="advice">{props.advice}</p>}
    </li>
  );
}
