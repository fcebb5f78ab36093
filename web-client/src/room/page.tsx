// The lecture room: the learner's view, or the instructor console for staff.
import type { ChatMessage } from "@protocol/ChatMessage";
import type { ClientMsg } from "@protocol/ClientMsg";
import type { Seat } from "@protocol/Seat";
import { useEffect, useRef, useState } from "preact/hooks";
import { useNow } from "../hooks";
import { roomErrorText } from "../errors";
import { formatTime, lang, t } from "../i18n";
import { formatCountdown } from "../lectures";
import { onLinkClick } from "../router";
import { CallAlert } from "./CallAlert";
import { Elsewhere } from "./Elsewhere";
import { Chat, type UnsentLine } from "./Chat";
import { RoomConnection, type Status } from "./connection";
import { emotionIcon } from "./emotions";
import type { Publisher, Viewer } from "./media";
import { MeterChart } from "./MeterChart";
import { SeatGrid } from "./SeatGrid";
import {
  type RoomState,
  type SeatIndex,
  isStaff,
  isTaken,
  meterSeries,
  openQuestions,
  recentBursts,
} from "./state";

function useRoom(lecture: string): { conn: RoomConnection; state: RoomState | null; status: Status } {
  const conn = useRef<RoomConnection | null>(null);
  conn.current ??= new RoomConnection(lecture);
  const [, setVersion] = useState(0);
  useEffect(() => {
    const c = conn.current!;
    const off = c.subscribe(() => setVersion((v) => v + 1));
    c.start();
    return () => {
      off();
      c.dispose();
    };
  }, []);
  return { conn: conn.current, state: conn.current.state, status: conn.current.status };
}

export function RoomPage({ lecture }: { lecture: string }) {
  // "Enter again" after leaving starts a fresh connection.
  const [generation, setGeneration] = useState(0);
  return <Room key={generation} lecture={lecture} onAgain={() => setGeneration((g) => g + 1)} />;
}

function Room({ lecture, onAgain }: { lecture: string; onAgain: () => void }) {
  const { conn, state, status } = useRoom(lecture);
  const now = useNow(500);

  useEffect(() => {
    if (state) document.title = `${state.lecture.title} — ${t("app_title")}`;
  }, [state?.lecture.title]);

  if (status.kind === "closed") return <Closed status={status} onAgain={onAgain} />;
  if (status.kind === "elsewhere") return <Elsewhere onContinue={() => conn.continueHere()} />;
  if (!state) {
    return (
      <section class="page narrow">
        <p role="status">{t("status_connecting")}</p>
      </section>
    );
  }
  // Reactions are fire-and-forget; everything else a person does is kept until acknowledged.
  const send = (msg: ClientMsg) => (msg.type === "react" ? conn.send(msg) : conn.command(msg));
  const unsent = conn.unsentChat();
  return (
    <div class={`room ${isStaff(state) ? "console" : "learner"}`}>
      <RoomHeader
        state={state}
        status={status}
        now={now}
        onLeave={() => conn.leave()}
        staff={isStaff(state)}
        send={send}
        kept={keptText(conn.refused) && conn.refused?.code === state.lastError?.code}
      />
      {state.announcement && (
        <section class="announcement" aria-live="polite" aria-label={t("announcement")}>
          <strong>{t("announcement")}</strong> <span class="announcement-text">{state.announcement.text}</span>
          <span class="by">— {state.announcement.by}</span>
        </section>
      )}
      <CallAlert call={state.calledOnYou} onDismiss={() => conn.dismissCall()} />
      {state.call && !state.calledOnYou && state.call.user !== state.you.user && (
        <p class="call-banner" role="status">
          <span aria-hidden="true">🎤</span> {t("called_on_other", { nickname: state.call.nickname })}
        </p>
      )}
      {isStaff(state) ? (
        <Console state={state} send={send} now={now} publisher={conn.publisher} unsent={unsent} refused={conn.refused} />
      ) : (
        <Learner
          state={state}
          send={send}
          now={now}
          viewer={conn.viewer}
          unsent={unsent}
          reconnecting={status.kind === "reconnecting"}
          refused={conn.refused}
          onView={(seats) => conn.wantNames(seats)}
        />
      )}
    </div>
  );
}

type Refused = RoomConnection["refused"];

/** Whether the refused command had typed text that was put back (a call by seat had none). */
function keptText(refused: Refused): boolean {
  const c = refused?.command;
  return c?.type === "chat" || c?.type === "announce" || (c?.type === "call_on" && Boolean(c.nickname));
}

/** A refused chat line, to put back in the chat's input. */
function refusedChat(refused: Refused): UnsentLine | null {
  const command = refused?.command;
  return command?.type === "chat" ? { id: command.id, text: command.text, question: command.question } : null;
}

function statusText(status: Status, now: number): string {
  switch (status.kind) {
    case "connecting":
      return t("status_connecting");
    case "connected":
      return t("status_connected");
    case "reconnecting":
      return status.retryAt && status.retryAt > now
        ? t("status_reconnecting", { seconds: Math.ceil((status.retryAt - now) / 1000) })
        : t("status_reconnecting_now");
    case "closed":
      return t("status_closed");
    case "elsewhere":
      return t("other_tab_title");
  }
}

function RoomHeader(props: {
  state: RoomState;
  /** The error refused a command whose typed text was put back. */
  kept: boolean;
  status: Status;
  now: number;
  staff: boolean;
  onLeave: () => void;
  send: (m: ClientMsg) => boolean;
}) {
  const { state, status } = props;
  return (
    <header class="room-header">
      <div class="room-title">
        <h1>{state.lecture.title}</h1>
        {props.staff && <span class="badge role">{t("console_title")}</span>}
      </div>
      <div class="room-status">
        <span class={`conn conn-${status.kind}`} role="status" data-status={status.kind}>
          {statusText(status, props.now)}
        </span>
        <span class="present">{t("present", { count: state.present })}</span>
        <button
          type="button"
          class="leave"
          onClick={() => {
            if (props.staff || window.confirm(t("leave_confirm"))) props.onLeave();
          }}
        >
          {t("leave")}
        </button>
      </div>
      {state.degraded && (
        <p class="degraded" role="status">
          {t("status_degraded")}
        </p>
      )}
      {state.lastError && props.now - state.lastError.at < 6000 && (
        <p class="error" role="alert">
          {props.kept
            ? t("refused_kept", { reason: roomErrorText(state.lastError.code) })
            : roomErrorText(state.lastError.code)}
        </p>
      )}
    </header>
  );
}

/** A `<video>` showing a stream (`srcObject` can only be set from script). */
function Video(props: { stream: MediaStream; muted?: boolean; label: string; class?: string }) {
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
  return (
    <div class={`video-box ${props.class ?? ""}`}>
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

function VideoArea({
  state,
  now,
  viewer,
  reconnecting,
}: {
  state: RoomState;
  now: number;
  viewer: Viewer;
  /** The room connection is down: what shows is not live, whatever the last phase said. */
  reconnecting: boolean;
}) {
  const serverNow = now + state.clockOffset;
  const phase = state.phase;
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
  return (
    <section
      class={`video phase-${phase.state}`}
      aria-label={t("room_video")}
      data-phase={phase.state}
      data-media={playing ? "playing" : "waiting"}
      data-frames-decoded={viewer.framesDecoded}
      data-reconnecting={reconnecting ? "yes" : "no"}
    >
      <div class={`video-frame${playing ? " has-media" : ""}`}>
        {phase.state === "live" && !reconnecting && <span class="live-dot">LIVE</span>}
        {reconnecting && (
          <div class="video-reconnecting" role="status">
            <span class="spinner" aria-hidden="true" />
            {t("video_reconnecting")}
          </div>
        )}
        {playing && screen && <Video stream={screen} muted label={t("media_screen")} class="main" />}
        {playing && camera && (
          <Video stream={camera} label={t("media_camera")} class={screen ? "corner" : "main"} />
        )}
        {!playing && !reconnecting && (
          <>
            <p class="video-title">{title}</p>
            {detail && <p class="video-detail">{detail}</p>}
          </>
        )}
      </div>
    </section>
  );
}

function Learner({
  state,
  send,
  now,
  viewer,
  unsent,
  onView,
  reconnecting,
  refused,
}: {
  state: RoomState;
  reconnecting: boolean;
  /** The command the node refused last: its text goes back where it was typed. */
  refused: Refused;
  send: (m: ClientMsg) => boolean;
  now: number;
  viewer: Viewer;
  unsent: UnsentLine[];
  /** The seats the grid shows: their nicknames are asked for. */
  onView: (seats: SeatIndex[]) => void;
}) {
  const bursts = recentBursts(state, now);
  const label = (key: string) => {
    const e = state.lecture.emotions.find((x) => x.key === key);
    return e ? (lang() === "ja" ? e.label_ja : e.label_en) : key;
  };
  const seat = state.yourSeat;
  return (
    <div class="room-body">
      <div class="stage">
        <VideoArea state={state} now={now} viewer={viewer} reconnecting={reconnecting} />
        <section class="emotions" aria-labelledby="emotions-title">
          <h2 id="emotions-title" class="visually-hidden">
            {t("emotions_title")}
          </h2>
          <div class="emotion-buttons">
            {state.lecture.emotions.map((e) => (
              <button
                type="button"
                key={e.key}
                class="emotion"
                data-emotion={e.key}
                aria-label={t("emotion_press", { label: label(e.key) })}
                onClick={() => send({ type: "react", emotion: e.key })}
              >
                <span aria-hidden="true">{emotionIcon(e.key)}</span> {label(e.key)}
              </button>
            ))}
          </div>
          <div class="bursts" aria-label={t("bursts_label")}>
            {Object.entries(bursts).map(([key, n]) => (
              <span class="burst" key={key} data-emotion={key}>
                {emotionIcon(key)} +{n}
              </span>
            ))}
          </div>
        </section>
        <section class="seats" aria-labelledby="seats-title">
          <div class="seats-head">
            <h2 id="seats-title">{t("seats_title")}</h2>
            <p class="your-seat" role="status">
              {seat ? t("your_seat", { seat: t("seat_name", { row: seat.row + 1, col: seat.col + 1 }) }) : t("no_seat")}
            </p>
            {seat && (
              <button type="button" onClick={() => send({ type: "leave_seat" })}>
                {t("stand_up")}
              </button>
            )}
          </div>
          <SeatGrid
            rows={state.lecture.rows}
            cols={state.lecture.cols}
            occupied={state.occupied}
            away={state.away}
            names={state.names}
            yourSeat={state.yourSeat}
            yourNickname={state.you.nickname}
            callSeat={state.call?.seat ?? null}
            reactions={new Map()}
            serverNow={() => Date.now() + state.clockOffset}
            staff={false}
            onActivate={(s) => {
              if (!isTaken(state, s)) send({ type: "take_seat", seat: s });
            }}
            onView={onView}
          />
        </section>
      </div>
      <Chat
        messages={state.chat}
        maxChars={state.lecture.chat_max_chars}
        mutedUntil={state.mutedUntil === null ? null : state.mutedUntil - state.clockOffset}
        canAsk
        unsent={unsent}
        restore={refusedChat(refused)}
        onSend={(text, question) => send({ type: "chat", text, question })}
      />
    </div>
  );
}

function Broadcasting({ publisher }: { publisher: Publisher }) {
  return (
    <section class="broadcast" aria-labelledby="broadcast-title">
      <h2 id="broadcast-title">{t("media_title")}</h2>
      <div class="row">
        {!publisher.live ? (
          <button type="button" class="primary" onClick={() => void publisher.start()}>
            {t("media_start")}
          </button>
        ) : (
          <>
            {publisher.screen ? (
              <button type="button" onClick={() => void publisher.stopScreen()}>
                {t("media_unshare")}
              </button>
            ) : (
              <button type="button" onClick={() => void publisher.shareScreen()}>
                {t("media_share")}
              </button>
            )}
            <button type="button" class="danger" onClick={() => publisher.stop()}>
              {t("media_stop")}
            </button>
          </>
        )}
      </div>
      {publisher.error && (
        <p class="error" role="alert">
          {t("media_error", { message: publisher.error })}
        </p>
      )}
      {publisher.camera && (
        <div class="preview" data-sending={publisher.live ? "yes" : "no"}>
          <Video stream={publisher.camera} muted label={t("media_preview")} />
          {publisher.screen && <Video stream={publisher.screen} muted label={t("media_screen")} />}
        </div>
      )}
      <p class="help">{t("media_help")}</p>
    </section>
  );
}

function Console({
  state,
  send,
  now,
  publisher,
  unsent,
  refused,
}: {
  state: RoomState;
  send: (m: ClientMsg) => boolean;
  now: number;
  publisher: Publisher;
  unsent: UnsentLine[];
  refused: Refused;
}) {
  const [announcement, setAnnouncement] = useState("");
  const [callName, setCallName] = useState("");
  // A refused call or announcement: what was typed comes back (unless something new is typed).
  useEffect(() => {
    const command = refused?.command;
    if (command?.type === "call_on" && command.nickname) {
      const nickname = command.nickname;
      setCallName((now) => (now.trim() === "" ? nickname : now));
    } else if (command?.type === "announce") {
      const text = command.text;
      setAnnouncement((now) => (now.trim() === "" ? text : now));
    }
  }, [refused?.command.id]);
  const questions = openQuestions(state);
  const phase = state.phase.state;
  const instructor = state.you.role === "instructor";
  const callOnSeat = (seat: Seat) => {
    if (isTaken(state, seat)) send({ type: "call_on", seat });
  };
  const moderation = {
    onDelete: (m: ChatMessage) => send({ type: "delete_chat", offset: m.offset }),
    onMute: (m: ChatMessage) => send({ type: "mute", user: m.user, seconds: 300 }),
    onRemove: (m: ChatMessage) => {
      if (window.confirm(t("console_remove_confirm", { nickname: m.nickname }))) {
        send({ type: "remove", user: m.user, allow_return: true });
      }
    },
    onAnswered: (m: ChatMessage) => send({ type: "mark_answered", offset: m.offset }),
  };
  return (
    <div class="room-body">
      <div class="stage">
        <section class="controls" aria-label={t("console_title")}>
          <p class="phase" data-phase={phase}>
            {t("console_phase", { phase: t(`phase_${phase}` as const) })}
          </p>
          {instructor && (
            <div class="row">
              <button
                type="button"
                class="primary"
                disabled={phase !== "doors_open" && phase !== "scheduled"}
                onClick={() => send({ type: "start_lecture" })}
              >
                {t("console_start")}
              </button>
              <button
                type="button"
                class="danger"
                disabled={phase === "ended" || phase === "cancelled"}
                onClick={() => {
                  if (window.confirm(t("console_end_confirm"))) send({ type: "end_lecture" });
                }}
              >
                {t("console_end")}
              </button>
            </div>
          )}
          <form
            class="row"
            onSubmit={(e) => {
              e.preventDefault();
              if (announcement.trim() && send({ type: "announce", text: announcement.trim() })) setAnnouncement("");
            }}
          >
            <label for="announce-input" class="visually-hidden">
              {t("console_announce_input")}
            </label>
            <input
              id="announce-input"
              value={announcement}
              maxLength={1000}
              placeholder={t("console_announce_input")}
              onInput={(e) => setAnnouncement((e.currentTarget as HTMLInputElement).value)}
            />
            <button type="submit">{t("console_announce")}</button>
            {state.announcement && (
              <button type="button" onClick={() => send({ type: "clear_announcement" })}>
                {t("console_announce_clear")}
              </button>
            )}
          </form>
          <form
            class="row"
            onSubmit={(e) => {
              e.preventDefault();
              const nickname = callName.trim();
              if (nickname && send({ type: "call_on", nickname })) setCallName("");
            }}
          >
            <label for="call-input" class="visually-hidden">
              {t("console_call_input")}
            </label>
            <input
              id="call-input"
              value={callName}
              maxLength={40}
              placeholder={t("console_call_input")}
              onInput={(e) => setCallName((e.currentTarget as HTMLInputElement).value)}
            />
            <button type="submit">{t("console_call_button")}</button>
          </form>
          {state.call && (
            <p class="current-call" role="status">
              <span aria-hidden="true">🎤</span> {state.call.nickname} —{" "}
              {state.call.answer !== null ? t("console_call_answered") : t("console_call_waiting")}{" "}
              <button type="button" onClick={() => send({ type: "clear_call" })}>
                {t("console_call_clear")}
              </button>
            </p>
          )}
        </section>
        {instructor && <Broadcasting publisher={publisher} />}
        <section class="seats" aria-labelledby="seats-title">
          <div class="seats-head">
            <h2 id="seats-title">{t("seats_title")}</h2>
            <p class="help">{t("console_select_hint")}</p>
          </div>
          <SeatGrid
            rows={state.lecture.rows}
            cols={state.lecture.cols}
            occupied={state.occupied}
            away={state.away}
            names={state.names}
            yourSeat={null}
            callSeat={state.call?.seat ?? null}
            reactions={state.seatReactions}
            serverNow={() => Date.now() + state.clockOffset}
            staff
            onActivate={callOnSeat}
          />
        </section>
        <section class="meter-panel" aria-labelledby="meter-title">
          <h2 id="meter-title">{t("console_meter")}</h2>
          <MeterChart
            emotions={state.lecture.emotions}
            series={meterSeries(state, now)}
            rolling={state.meter.rolling}
            totals={state.meter.totals}
          />
        </section>
      </div>
      <div class="side">
        <section class="questions" aria-labelledby="questions-title">
          <h2 id="questions-title">{t("console_questions")}</h2>
          {questions.length === 0 && <p class="help">{t("console_questions_empty")}</p>}
          <ul>
            {questions.map((q) => (
              <li key={q.offset} data-offset={q.offset}>
                <span class="nick">{q.nickname}</span> <span class="chat-text">{q.text}</span>{" "}
                <button type="button" onClick={() => moderation.onAnswered(q)}>
                  {t("console_mark_answered")}
                </button>
              </li>
            ))}
          </ul>
        </section>
        <Chat
          messages={state.chat}
          maxChars={state.lecture.chat_max_chars}
          mutedUntil={null}
          canAsk={false}
          moderation={moderation}
          unsent={unsent}
          restore={refusedChat(refused)}
          onSend={(text) => send({ type: "chat", text, question: false })}
        />
      </div>
    </div>
  );
}

function Closed({ status, onAgain }: { status: Extract<Status, { kind: "closed" }>; onAgain: () => void }) {
  let message: string;
  if (status.left) message = t("closed_left");
  else if (status.refusal) message = status.refusal.localized();
  else if (status.code !== null && [4103, 4104, 4105, 4106, 4111, 4112, 4113].includes(status.code))
    message = t(`closed_${status.code}` as "closed_4103");
  else message = t("closed_generic", { code: status.code ?? "?" });
  const mayReturn = status.left || status.code === 4103 || status.code === 4112 || status.code === 4111;
  const signedOut = status.refusal?.status === 401;
  return (
    <section class="page narrow closed" aria-live="assertive">
      <h1>{message}</h1>
      <p class="row">
        <a class="button" href="/lectures" onClick={onLinkClick("/lectures")}>
          {t("back_to_lectures")}
        </a>
        {signedOut && (
          <a class="button primary" href="/sign-in" onClick={onLinkClick("/sign-in")}>
            {t("lectures_go_signin")}
          </a>
        )}
        {mayReturn && (
          <button type="button" class="primary" onClick={onAgain}>
            {t("enter_again")}
          </button>
        )}
      </p>
    </section>
  );
}
