import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, api } from "../api";
import {
  type ArchiveView,
  type Bar,
  EMPTY_TIMELINE,
  type Entry,
  type Manifest,
  SPEEDS,
  type Timeline,
  countUpTo,
  entries,
  formatClock,
  pinAt,
  reactionBars,
  screenAt,
} from "../archive";
import { token } from "../auth";
import { formatDateTime, t } from "../i18n";
import { fixFor } from "../lectures";
import { navigate, onLinkClick } from "../router";

/** The archive room: the recorded lecture with its chat, calls, announcements and reactions. */
export function ArchivePage({ lecture }: { lecture: string }) {
  const [view, setView] = useState<ArchiveView | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const signedIn = token() !== null;

  const load = () =>
    api
      .archive(lecture)
      .then((v) => {
        setView(v);
        setError(null);
        return v;
      })
      .catch((e: unknown) => {
        if (e instanceof ApiError && e.status === 401) navigate("/sign-in");
        else setError(e instanceof ApiError ? e : new ApiError(0, "network", String(e), null));
        return null;
      });

  useEffect(() => {
    if (signedIn) void load();
  }, [lecture, signedIn]);

  const back = (
    <p>
      <a href="/lectures" onClick={onLinkClick("/lectures")}>
        {t("back_to_lectures")}
      </a>
    </p>
  );
  if (!signedIn) {
    return (
      <section class="page narrow">
        <h1>{t("archive_title")}</h1>
        <p>{t("lectures_signed_out")}</p>
        {back}
      </section>
    );
  }
  if (error) {
    return (
      <section class="page narrow">
        <h1>{t("archive_title")}</h1>
        <div class="refusal" role="alert" data-refusal={error.code}>
          <p>{error.localized()}</p>
          {error.status === 403 && (
            <p>
              <strong>{t("what_to_do")}:</strong> {t(fixFor(error.code))}
            </p>
          )}
        </div>
        {back}
      </section>
    );
  }
  if (!view) {
    return (
      <section class="page narrow">
        <p>{t("loading")}</p>
      </section>
    );
  }
  if (view.state !== "ready" || !view.manifest || !view.media) {
    return (
      <section class="page narrow" aria-labelledby="archive-title">
        <h1 id="archive-title">{view.title}</h1>
        <p class="note" role="status" data-archive-state={view.state}>
          {archiveStateText(view)}
        </p>
        {back}
      </section>
    );
  }
  return <Player view={view} manifest={view.manifest} media={view.media} reload={load} />;
}

/** What an archive's state says to the person (My page says the same). */
export function archiveStateText(v: { state: string; available_at: number | null; expires_at: number | null }): string {
  switch (v.state) {
    case "preparing":
      return v.available_at !== null
        ? t("archive_preparing_from", { date: formatDateTime(v.available_at) })
        : t("archive_preparing");
    case "expired":
      return t("archive_expired_note");
    case "withdrawn":
      return t("archive_withdrawn_note");
    default:
      return v.expires_at !== null ? t("archive_until", { date: formatDateTime(v.expires_at) }) : t("archive_ready");
  }
}

interface PlayerProps {
  view: ArchiveView;
  manifest: Manifest;
  media: Record<string, string>;
  reload: () => Promise<ArchiveView | null>;
}

function Player({ view, manifest, media, reload }: PlayerProps) {
  const timeline: Timeline = view.timeline ?? EMPTY_TIMELINE;
  const camera = manifest.tracks.find((tr) => tr.kind === "camera") ?? null;
  const cameraRef = useRef<HTMLVideoElement>(null);
  const screenRef = useRef<HTMLVideoElement>(null);
  const frameRef = useRef<HTMLDivElement>(null);
  const chatRef = useRef<HTMLDivElement>(null);
  const [urls, setUrls] = useState(media);
  const [now, setNow] = useState(0);
  const [playing, setPlaying] = useState(false);
  const [speed, setSpeed] = useState(1);
  const [volume, setVolume] = useState(1);
  const duration = manifest.duration_ms;
  const cameraStart = camera?.start_ms ?? 0;
  const all = useMemo(() => entries(timeline), [timeline]);
  const bars = useMemo(() => reactionBars(timeline, duration), [timeline, duration]);
  const screen = screenAt(manifest, now);
  const pin = pinAt(timeline, now);
  const shown = all.slice(0, countUpTo(all, now));

  // The camera's clock is the archive's: everything else follows it.
  const sync = () => {
    const cam = cameraRef.current;
    if (!cam) return;
    const at = Math.round(cam.currentTime * 1000) + cameraStart;
    setNow(at);
    const scr = screenRef.current;
    const on = screenAt(manifest, at);
    if (scr && on) {
      const want = (at - on.start_ms) / 1000;
      if (Math.abs(scr.currentTime - want) > 0.3) scr.currentTime = want;
      scr.playbackRate = cam.playbackRate;
      if (!cam.paused && scr.paused) void scr.play().catch(() => undefined);
      if (cam.paused && !scr.paused) scr.pause();
    }
  };

  useEffect(() => {
    let frame = 0;
    const tick = () => {
      sync();
      frame = requestAnimationFrame(tick);
    };
    if (playing) frame = requestAnimationFrame(tick);
    return () => cancelAnimationFrame(frame);
  }, [playing, screen?.name]);

  // The newest line stays in view as the chat grows.
  useEffect(() => {
    const list = chatRef.current;
    if (list) list.scrollTop = list.scrollHeight;
  }, [shown.length]);

  const seek = (ms: number) => {
    const cam = cameraRef.current;
    if (!cam) return;
    const to = Math.max(0, Math.min(duration, ms));
    cam.currentTime = Math.max(0, to - cameraStart) / 1000;
    setNow(to);
    sync();
  };

  const toggle = () => {
    const cam = cameraRef.current;
    if (!cam) return;
    if (cam.paused) void cam.play().catch(() => undefined);
    else cam.pause();
  };

  // A media URL that ran out (or a right that changed): ask for fresh ones and carry on.
  const onError = async () => {
    const cam = cameraRef.current;
    const at = cam ? cam.currentTime : 0;
    const wasPlaying = cam ? !cam.paused : false;
    const fresh = await reload();
    if (fresh?.media && cam) {
      setUrls(fresh.media);
      cam.addEventListener(
        "loadedmetadata",
        () => {
          cam.currentTime = at;
          if (wasPlaying) void cam.play().catch(() => undefined);
        },
        { once: true },
      );
    }
  };

  const onKey = (e: KeyboardEvent) => {
    const target = e.target as HTMLElement;
    if (target.tagName === "INPUT" || target.tagName === "SELECT" || target.tagName === "BUTTON") return;
    if (e.key === " " || e.key === "k") {
      e.preventDefault();
      toggle();
    } else if (e.key === "ArrowLeft") {
      e.preventDefault();
      seek(now - 5000);
    } else if (e.key === "ArrowRight") {
      e.preventDefault();
      seek(now + 5000);
    }
  };

  const fullscreen = () => {
    const frame = frameRef.current;
    if (!frame) return;
    if (document.fullscreenElement) void document.exitFullscreen();
    else void frame.requestFullscreen?.().catch(() => undefined);
  };

  const cameraUrl = camera ? urls[camera.name] : undefined;
  const screenUrl = screen ? urls[screen.name] : undefined;
  return (
    <section class="page archive" aria-labelledby="archive-title">
      <h1 id="archive-title">{view.title}</h1>
      <p class="note">{archiveStateText(view)}</p>
      <div class="archive-layout">
        <div class="archive-player" ref={frameRef} tabIndex={0} onKeyDown={onKey} aria-label={t("archive_player")} role="region">
          <div class={`archive-videos ${screen ? "with-screen" : ""}`}>
            {screen && (
              <video
                key={screen.name}
                ref={screenRef}
                class="archive-screen"
                src={screenUrl}
                muted
                playsInline
                preload="auto"
                aria-label={t("archive_screen")}
                onLoadedMetadata={sync}
              />
            )}
            <video
              ref={cameraRef}
              class="archive-camera"
              src={cameraUrl}
              playsInline
              preload="metadata"
              aria-label={t("archive_camera")}
              onPlay={() => setPlaying(true)}
              onPause={() => {
                setPlaying(false);
                sync();
              }}
              onTimeUpdate={sync}
              onSeeked={sync}
              onError={() => void onError()}
              onClick={toggle}
            />
          </div>
          {pin && (
            <p class="archive-pin" data-testid="archive-pin">
              <strong>{t("archive_announcement")}:</strong> {pin.text}
            </p>
          )}
          <div class="archive-controls">
            <button type="button" class="primary" onClick={toggle} aria-label={playing ? t("archive_pause") : t("archive_play")}>
              {playing ? "❚❚" : "▶"}
            </button>
            <span class="archive-clock" aria-live="off">
              {formatClock(now)} / {formatClock(duration)}
            </span>
            <label class="archive-seek">
              <span class="visually-hidden">{t("archive_seek")}</span>
              <input
                type="range"
                min={0}
                max={duration}
                step={1000}
                value={now}
                aria-valuetext={formatClock(now)}
                onInput={(e) => seek(Number((e.currentTarget as HTMLInputElement).value))}
              />
            </label>
            <label>
              <span class="visually-hidden">{t("archive_speed")}</span>
              <select
                value={String(speed)}
                aria-label={t("archive_speed")}
                onChange={(e) => {
                  const s = Number((e.currentTarget as HTMLSelectElement).value);
                  setSpeed(s);
                  if (cameraRef.current) cameraRef.current.playbackRate = s;
                  if (screenRef.current) screenRef.current.playbackRate = s;
                }}
              >
                {SPEEDS.map((s) => (
                  <option key={s} value={String(s)}>
                    {s}×
                  </option>
                ))}
              </select>
            </label>
            <label class="archive-volume">
              <span class="visually-hidden">{t("archive_volume")}</span>
              <input
                type="range"
                min={0}
                max={1}
                step={0.05}
                value={volume}
                aria-label={t("archive_volume")}
                onInput={(e) => {
                  const v = Number((e.currentTarget as HTMLInputElement).value);
                  setVolume(v);
                  if (cameraRef.current) cameraRef.current.volume = v;
                }}
              />
            </label>
            <button type="button" onClick={fullscreen}>
              {t("archive_fullscreen")}
            </button>
          </div>
          <Reactions bars={bars} onJump={seek} />
        </div>
        <aside class="archive-chat" aria-labelledby="archive-chat-title">
          <h2 id="archive-chat-title">{t("archive_chat")}</h2>
          <div class="archive-lines" ref={chatRef} role="log" aria-live="polite" aria-relevant="additions" aria-labelledby="archive-chat-title" tabIndex={0}>
            <ol>
              {shown.map((e) => (
                <ChatEntry key={e.key} entry={e} onJump={seek} />
              ))}
            </ol>
          </div>
        </aside>
      </div>
    </section>
  );
}

function ChatEntry({ entry: e, onJump }: { entry: Entry; onJump: (ms: number) => void }) {
  const time = (
    <button type="button" class="link archive-time" onClick={() => onJump(e.t)} aria-label={t("archive_jump_to", { time: formatClock(e.t) })}>
      {formatClock(e.t)}
    </button>
  );
  switch (e.kind) {
    case "line":
      return (
        <li class={`archive-line role-${e.line.role}${e.line.question ? " question" : ""}`} data-t={e.t} data-offset={e.line.offset}>
          {time} <span class="nickname">{e.line.nickname}</span>
          {e.line.role !== "learner" && <span class="badge role">{t(e.line.role === "instructor" ? "lecture_role_instructor" : "lecture_role_moderator")}</span>}
          <span class="text">{e.line.text}</span>
          {e.line.question && e.line.answered && <span class="badge">{t("archive_answered")}</span>}
          {e.line.call_answer && <span class="badge">{t("archive_call_answer")}</span>}
        </li>
      );
    case "call":
      return (
        <li class="archive-call" data-t={e.t}>
          {time} {t("archive_called", { nickname: e.call.nickname, by: e.call.by })}
        </li>
      );
    case "pin":
      return (
        <li class="archive-announcement" data-t={e.t}>
          {time} {e.pin.text !== null ? t("archive_pinned", { text: e.pin.text }) : t("archive_unpinned")}
        </li>
      );
  }
}

function Reactions({ bars, onJump }: { bars: Bar[]; onJump: (ms: number) => void }) {
  if (bars.length === 0) return null;
  return (
    <div class="archive-reactions" role="group" aria-label={t("archive_reactions")}>
      {bars.map((b) => {
        const counts = Object.entries(b.counts)
          .map(([k, n]) => `${k} ${n}`)
          .join(", ");
        return (
          <button
            type="button"
            key={b.t}
            class={`archive-bar mood-${b.mood}`}
            style={{ left: `${b.at * 100}%`, height: `${Math.max(12, b.height * 100)}%` }}
            data-t={b.t}
            aria-label={t("archive_reaction_bar", { time: formatClock(b.t), counts })}
            title={`${formatClock(b.t)} — ${counts}`}
            onClick={() => onJump(b.t)}
          />
        );
      })}
    </div>
  );
}
