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
}

export function CheckPage() {
  const [results, setResults] = useState<Results | null>(null);
  const [run, setRun] = useState(0);

  useEffect(() => {
    let live = true;
    const support = detectSupport();
    const current: Results = { support, rtt: "pending", mbps: "pending" };
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
    })();
    return () => {
      live = false;
    };
  }, [run]);

  const busy = !results || results.rtt === "pending" || results.mbps === "pending";
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
          <CheckItem id="webrtc" title={t("check_webrtc")} verdict="na" value={null} advice={t("check_webrtc_pending")} />
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
