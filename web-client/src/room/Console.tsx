// The instructor's and moderators' console: fixed panes on one screen, none growing into a
// page-long column. Left: the lecture's controls, the raised hands, the muted learners, the
// small camera preview and the meter (with
// the 「わからない」 alert); middle: the seat grid (select a seat to see who sits there, select it
// again to call on them; or switch to the heat view of each seat's reactions); right: the
// questions over the chat (tall enough for a line's moderation menu). The raised hands and the
// muted learners sit under the controls on the left.
import type { ClientMsg } from "@protocol/ClientMsg";
import type { Seat } from "@protocol/Seat";
import { useEffect, useState } from "preact/hooks";
import { lang, t } from "../i18n";
import { CallBox } from "./CallBox";
import { Chat, type Moderation, type UnsentLine } from "./Chat";
import { emotionIcon } from "./emotions";
import { HandQueue } from "./Hands";
import { heatOf } from "./history";
import { useTouchWords } from "./layout";
import { LOST_KEY, LOST_WINDOW_BUCKETS, lostSpike } from "./lostAlert";
import type { Publisher } from "./media";
import { MeterChart } from "./MeterChart";
import { MutedList } from "./MutedList";
import { Questions } from "./Questions";
import { SeatGrid } from "./SeatGrid";
import { type RoomState, type SeatIndex, METER_BUCKET_MS, bit, isTaken, meterSeries, seatIndex } from "./state";
import { type Refused, refusedChat } from "./refused";
import { Video } from "./VideoArea";

type Send = (m: ClientMsg) => boolean;

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
      {!publisher.camera && <p class="help">{t("media_help")}</p>}
    </section>
  );
}

function Controls({ state, send, refused }: { state: RoomState; send: Send; refused: Refused }) {
  const [announcement, setAnnouncement] = useState("");
  // A refused announcement comes back (unless something new is being typed).
  useEffect(() => {
    const command = refused?.command;
    if (command?.type === "announce") {
      const text = command.text;
      setAnnouncement((now) => (now.trim() === "" ? text : now));
    }
  }, [refused?.command.id]);
  const phase = state.phase.state;
  const instructor = state.you.role === "instructor";
  return (
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
          {/* Ending is for a lecture that has started; before that there is nothing to end. */}
          <button
            type="button"
            class="danger"
            disabled={phase !== "live"}
            onClick={() => {
              if (window.confirm(t("console_end_confirm"))) send({ type: "end_lecture" });
            }}
          >
            {t("console_end")}
          </button>
        </div>
      )}
      <CallBox state={state} send={send} refused={refused} />
      {state.call && (
        <p class="current-call" role="status">
          <span aria-hidden="true">🎤</span> {state.call.nickname} —{" "}
          {state.call.answer !== null ? t("console_call_answered") : t("console_call_waiting")}{" "}
          <button type="button" onClick={() => send({ type: "clear_call" })}>
            {t("console_call_clear")}
          </button>
        </p>
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
    </section>
  );
}

/** What the seat grid shows: occupancy, or the heat of all reactions or of one emotion. */
type GridView = "seats" | "heat:all" | `heat:${string}`;

function ConsoleSeats({ state, send }: { state: RoomState; send: Send }) {
  const [selected, setSelected] = useState<Seat | null>(null);
  const [view, setView] = useState<GridView>("seats");
  const touch = useTouchWords();
  const cols = state.lecture.cols;
  const label = (key: string) => {
    const e = state.lecture.emotions.find((x) => x.key === key);
    return e ? (lang() === "ja" ? e.label_ja : e.label_en) : key;
  };
  // First activation selects (and names who sits there); a second on the same seat calls.
  const onActivate = (s: Seat) => {
    if (selected && seatIndex(selected, cols) === seatIndex(s, cols) && isTaken(state, s)) {
      send({ type: "call_on", seat: s });
      return;
    }
    setSelected(s);
  };
  let heat: { counts: Map<SeatIndex, number>; max: number } | null = null;
  if (view !== "seats") {
    const emotion = view === "heat:all" ? null : view.slice("heat:".length);
    const counts = new Map<SeatIndex, number>();
    let max = 0;
    for (const [i, c] of state.history.heat) {
      const n = heatOf(c, emotion);
      if (n > 0) counts.set(i, n);
      if (n > max) max = n;
    }
    heat = { counts, max };
  }
  const sel = selected ? seatIndex(selected, cols) : -1;
  const selTaken = selected !== null && bit(state.occupied, sel);
  const selName = selected ? state.names.get(sel) : undefined;
  const selAway = selected !== null && bit(state.away, sel);
  const calling = selected !== null && state.call?.seat != null && seatIndex(state.call.seat, cols) === sel;
  return (
    <section class="seats console-seats" aria-labelledby="seats-title">
      <div class="seats-head">
        <h2 id="seats-title">{t("seats_title")}</h2>
        <label class="grid-view">
          <span>{t("grid_view")}</span>
          <select value={view} onChange={(e) => setView((e.currentTarget as HTMLSelectElement).value as GridView)}>
            <option value="seats">{t("grid_view_seats")}</option>
            <option value="heat:all">{t("grid_view_heat_all")}</option>
            {state.lecture.emotions.map((e) => (
              <option key={e.key} value={`heat:${e.key}`}>
                {t("grid_view_heat", { emotion: `${emotionIcon(e.key)} ${label(e.key)}` })}
              </option>
            ))}
          </select>
        </label>
      </div>
      <div class="selected-seat" role="status" data-selected={selected ? `${selected.row}-${selected.col}` : undefined}>
        {!selected ? (
          <span class="help">{t(touch ? "console_select_hint_touch" : "console_select_hint")}</span>
        ) : (
          <>
            <span class="sel-name">
              {t("console_selected", { seat: t("seat_name", { row: selected.row + 1, col: selected.col + 1 }) })}
              {" — "}
              {!selTaken ? t("seat_empty") : selName !== undefined ? (selAway ? t("seat_away", { nickname: selName }) : selName) : t("seat_taken")}
            </span>
            {selTaken && !calling && (
              <button type="button" class="primary" onClick={() => send({ type: "call_on", seat: selected })}>
                {t("console_call_selected")}
              </button>
            )}
            {calling && <span class="tag call">{t("console_calling")}</span>}
            <button type="button" onClick={() => setSelected(null)}>
              {t("console_unselect")}
            </button>
          </>
        )}
      </div>
      <SeatGrid
        rows={state.lecture.rows}
        cols={cols}
        occupied={state.occupied}
        away={state.away}
        names={state.names}
        yourSeat={null}
        callSeat={state.call?.seat ?? null}
        reactions={heat ? new Map() : state.seatReactions}
        serverNow={() => Date.now() + state.clockOffset}
        staff
        selected={selected}
        heat={heat}
        onActivate={onActivate}
      />
    </section>
  );
}

function MeterPanel({ state, now }: { state: RoomState; now: number }) {
  const series = meterSeries(state, now);
  const spike = lostSpike(series);
  const lost = state.lecture.emotions.find((e) => e.key === LOST_KEY);
  const lostLabel = lost ? (lang() === "ja" ? lost.label_ja : lost.label_en) : LOST_KEY;
  return (
    <section class="meter-panel" aria-labelledby="meter-title">
      <h2 id="meter-title">{t("console_meter")}</h2>
      <div class="lost-slot" aria-live="assertive">
        {spike && (
          <p class="lost-alert" data-alert="lost">
            <span aria-hidden="true">{emotionIcon(LOST_KEY)}</span>{" "}
            {t("lost_alert", {
              label: lostLabel,
              seconds: (LOST_WINDOW_BUCKETS * METER_BUCKET_MS) / 1000,
              share: Math.round(spike.share * 100),
              count: spike.lost,
            })}
          </p>
        )}
      </div>
      <MeterChart emotions={state.lecture.emotions} series={series} rolling={state.meter.rolling} totals={state.meter.totals} />
    </section>
  );
}

/** A mute "until the end": the seconds left until the lecture's planned end (the protocol allows
 * 1 to 86,400), from the server's clock. */
function untilEnd(state: RoomState): number {
  const left = Math.ceil((state.lecture.ends_at - (Date.now() + state.clockOffset)) / 1000);
  return Math.min(86_400, Math.max(60, left));
}

export function Console({
  state,
  send,
  now,
  publisher,
  unsent,
  refused,
}: {
  state: RoomState;
  send: Send;
  now: number;
  publisher: Publisher;
  unsent: UnsentLine[];
  /** The command the node refused last: what was typed goes back. */
  refused: Refused;
}) {
  const instructor = state.you.role === "instructor";
  const moderation: Moderation = {
    onDelete: (m) => send({ type: "delete_chat", offset: m.offset }),
    onMute: (m, seconds) => send({ type: "mute", user: m.user, seconds: seconds ?? untilEnd(state) }),
    onRemove: (m, allowReturn) => send({ type: "remove", user: m.user, allow_return: allowReturn }),
    onAnswered: (m) => send({ type: "mark_answered", offset: m.offset }),
    onCallOn: (m) => send({ type: "call_on", nickname: m.nickname }),
  };
  return (
    <div class="room-body console-body">
      <div class="console-left">
        <Controls state={state} send={send} refused={refused} />
        <HandQueue state={state} send={send} />
        <MutedList state={state} send={send} />
        {instructor && <Broadcasting publisher={publisher} />}
      </div>
      {/* The seats and the meter share the middle column: the instructor watches both. */}
      <div class="console-middle">
        <ConsoleSeats state={state} send={send} />
        <MeterPanel state={state} now={now} />
      </div>
      <div class="console-right">
        <Questions state={state} send={send} />
        <Chat
          messages={state.chat}
          maxChars={state.lecture.chat_max_chars}
          mutedUntil={null}
          canAsk={false}
          moderation={moderation}
          unsent={unsent}
          you={state.you.user}
          restore={refusedChat(refused)}
          onSend={(text) => send({ type: "chat", text, question: false })}
        />
      </div>
    </div>
  );
}
