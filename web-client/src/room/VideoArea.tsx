// The instructor's video as learners see it, with its controls: volume, picture-in-picture,
// fullscreen, and where the camera goes while slides are shared (a corner of the learner's
// choice, hidden, or swapped with the slides), so the inset never has to cover what is shown.
import { useEffect, useRef, useState } from "preact/hooks";
import { formatTime, t } from "../i18n";
import { formatCountdown } from "../lectures";
import type { Viewer } from "./media";
import type { RoomState } from "./state";

/** Where the camera sits while the screen is shared. */
export type Inset = "br" | "bl" | "tr" | "tl" | "hidden";
export const INSETS: Inset[] = ["br", "bl", "tl", "tr", "hidden"];

/** The next inset position of the cycle (bottom right → bottom left → top left → top right → hidden). */
export function nextInset(i: Inset): Inset {
  return INSETS[(INSETS.indexOf(i) + 1) % INSETS.length]!;
}

/** A `<video>` showing a stream (`srcObject` can only be set from script). */
export function Video(props: {
  stream: MediaStream;
  muted?: boolean;
  volume?: number;
  label: string;
  class?: string;
  role?: string;
}) {
  const ref = useRef<HTMLVideoElement>(null);
  const [blocked, setBlocked] = useState(false);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    el.srcObject = props.stream;
    el.play().then(
      () => setBlocked(false),
      () => setBlocked(true),
    );
  }, [props.stream]);
  useEffect(() => {
    if (ref.current && props.volume !== undefined) ref.current.volume = props.volume;
  }, [props.volume]);
  return (
    <div class={`video-box ${props.class ?? ""}`} data-video={props.role}>
      <video ref={ref} autoPlay playsInline muted={props.muted ?? false} aria-label={props.label} />
      {blocked && (
        <button
          type="button"
          class="primary unmute"
          onClick={() => {
            void ref.current?.play().then(() => setBlocked(false));
          }}
        >
          {t("media_play")}
        </button>
      )}
    </div>
  );
}

/** The controls' pictures, drawn (symbol fonts differ from phone to phone). */
const ICONS = {
  inset: "M3 5h18v14H3z M13 12h6v5h-6z",
  swap: "M4 8h14l-4-4 M20 16H6l4 4",
  pip: "M3 5h18v14H3z M12 12h7v5h-7z",
  fullscreen: "M4 9V4h5 M15 4h5v5 M20 15v5h-5 M9 20H4v-5",
} as const;

/** A control's picture and words; on a phone only the picture shows (the button's label says it all). */
function Labelled({ icon, text }: { icon: keyof typeof ICONS; text: string }) {
  return (
    <>
      <svg class="ctl-icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false">
        <path d={ICONS[icon]} fill="none" stroke="currentColor" stroke-width="2" stroke-linejoin="round" stroke-linecap="round" />
      </svg>
      <span class="ctl-text" aria-hidden="true">
        {text}
      </span>
    </>
  );
}

function usePersisted<T extends string | number>(key: string, initial: T): [T, (v: T) => void] {
  const [value, setValue] = useState<T>(() => {
    try {
      const saved = localStorage.getItem(key);
      if (saved !== null) return (typeof initial === "number" ? Number(saved) : saved) as T;
    } catch {
      // No storage: the default.
    }
    return initial;
  });
  return [
    value,
    (v: T) => {
      setValue(v);
      try {
        localStorage.setItem(key, String(v));
      } catch {
        // Not remembered, still applied.
      }
    },
  ];
}

export function VideoArea({
  state,
  now,
  viewer,
  reconnecting = false,
}: {
  state: RoomState;
  now: number;
  viewer: Viewer;
  /** The room connection is down: what shows is not live, whatever the last phase said. */
  reconnecting?: boolean;
}) {
  const serverNow = now + state.clockOffset;
  const phase = state.phase;
  const section = useRef<HTMLElement>(null);
  const [volume, setVolume] = usePersisted<number>("lecture.volume", 1);
  const [muted, setMuted] = useState(false);
  const [inset, setInset] = usePersisted<Inset>("lecture.inset", "br");
  const [swapped, setSwapped] = useState(false);
  const [fullscreen, setFullscreen] = useState(false);
  const [pip, setPip] = useState(false);

  useEffect(() => {
    const changed = () => setFullscreen(document.fullscreenElement === section.current && section.current !== null);
    document.addEventListener("fullscreenchange", changed);
    return () => document.removeEventListener("fullscreenchange", changed);
  }, []);

  let title: string;
  let detail: string | null = null;
  switch (phase.state) {
    case "scheduled":
      title = t("video_scheduled");
      break;
    case "doors_open":
      title = t("video_waiting");
      detail = `${t("video_waiting_start", { time: formatTime(state.lecture.starts_at) })} · ${t("countdown_start", {
        time: formatCountdown(state.lecture.starts_at - serverNow),
      })}`;
      break;
    case "live":
      title = t("video_live");
      detail = t("video_live_pending");
      break;
    case "ended":
      title = t("video_ended");
      break;
    case "cancelled":
      title = t("video_cancelled");
      detail = phase.reason;
      break;
  }
  const { camera, screen } = viewer.streams;
  const playing = phase.state === "live" && camera !== null;
  // With slides shared, the big picture is the slides unless the learner swapped them.
  const cameraMain = !screen || swapped;
  const mainVideo = () => section.current?.querySelector<HTMLVideoElement>(".video-box.main video") ?? null;
  const pipSupported = typeof document !== "undefined" && document.pictureInPictureEnabled === true;

  const toggleFullscreen = () => {
    if (document.fullscreenElement) void document.exitFullscreen();
    else void section.current?.requestFullscreen?.().catch(() => {});
  };
  const togglePip = async () => {
    try {
      if (document.pictureInPictureElement) {
        await document.exitPictureInPicture();
        setPip(false);
      } else {
        const v = mainVideo();
        if (!v) return;
        await v.requestPictureInPicture();
        setPip(true);
        v.addEventListener("leavepictureinpicture", () => setPip(false), { once: true });
      }
    } catch {
      setPip(false);
    }
  };

  return (
    <section
      ref={section}
      class={`video phase-${phase.state}`}
      aria-label={t("room_video")}
      data-phase={phase.state}
      data-media={playing ? "playing" : "waiting"}
      data-frames-decoded={viewer.framesDecoded}
    >
      <div class="video-fit">
      <div class={`video-frame${playing ? " has-media" : ""}`} data-inset={screen && !swapped ? inset : "none"}>
        {phase.state === "live" && !reconnecting && <span class="live-dot">LIVE</span>}
        {reconnecting && (
          <div class="video-reconnecting" role="status">
            <span class="spinner" aria-hidden="true" />
            {t("video_reconnecting")}
          </div>
        )}
        {playing && screen && (
          <Video stream={screen} muted label={t("media_screen")} class={cameraMain ? `corner inset-${inset}` : "main"} role="screen" />
        )}
        {playing && camera && (
          <Video
            stream={camera}
            muted={muted}
            volume={volume}
            label={t("media_camera")}
            class={cameraMain ? "main" : `corner inset-${inset}`}
            role="camera"
          />
        )}
        {!playing && (
          <>
            <p class="video-title">{title}</p>
            {detail && <p class="video-detail">{detail}</p>}
          </>
        )}
      </div>
      </div>
      {playing && (
        <div class="video-controls" role="group" aria-label={t("video_controls")}>
          <button
            type="button"
            aria-pressed={muted}
            aria-label={muted ? t("video_unmute") : t("video_mute")}
            onClick={() => setMuted(!muted)}
          >
            <span aria-hidden="true">{muted || volume === 0 ? "🔇" : "🔊"}</span>
          </button>
          <input
            type="range"
            class="volume"
            min={0}
            max={100}
            step={5}
            value={Math.round(volume * 100)}
            aria-label={t("video_volume")}
            aria-valuetext={`${Math.round(volume * 100)}%`}
            onInput={(e) => {
              setVolume(Number((e.currentTarget as HTMLInputElement).value) / 100);
              setMuted(false);
            }}
          />
          {screen && (
            <>
              <button
                type="button"
                class="inset-toggle"
                data-inset={inset}
                aria-label={t("video_inset", { where: t(`video_inset_${inset}` as const) })}
                onClick={() => setInset(nextInset(inset))}
              >
                <Labelled icon="inset" text={t("video_inset", { where: t(`video_inset_${inset}` as const) })} />
              </button>
              <button type="button" aria-pressed={swapped} aria-label={t("video_swap")} onClick={() => setSwapped(!swapped)}>
                <Labelled icon="swap" text={t("video_swap")} />
              </button>
            </>
          )}
          {pipSupported && (
            <button type="button" aria-pressed={pip} aria-label={t("video_pip")} onClick={() => void togglePip()}>
              <Labelled icon="pip" text={t("video_pip")} />
            </button>
          )}
          <button
            type="button"
            aria-label={fullscreen ? t("video_fullscreen_exit") : t("video_fullscreen")}
            onClick={toggleFullscreen}
          >
            <Labelled icon="fullscreen" text={fullscreen ? t("video_fullscreen_exit") : t("video_fullscreen")} />
          </button>
        </div>
      )}
    </section>
  );
}
