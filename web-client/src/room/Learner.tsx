// The learner's room. On a larger screen: the video with the reactions under it and the chat
// beside it; until the learner sits, the seat grid comes first, above the video, as the first
// step; once seated it becomes a small pane over the chat. On a phone: the video stays at the
// top and tabs below switch between chat, questions, seats and reactions (every pane stays mounted, so
// what was typed is kept), the page itself never scrolls, so typing never moves the video away.
import type { ClientMsg } from "@protocol/ClientMsg";
import type { Seat } from "@protocol/Seat";
import { useEffect, useRef, useState } from "preact/hooks";
import { t } from "../i18n";
import { Chat, type UnsentLine } from "./Chat";
import { usePhone, useTouchWords, useVisibleHeight } from "./layout";
import type { Viewer } from "./media";
import { Questions } from "./Questions";
import { Reactions } from "./Reactions";
import { SeatGrid } from "./SeatGrid";
import { type RoomState, type SeatIndex, isTaken, seatIndex } from "./state";
import { type Refused, refusedChat } from "./refused";
import { VideoArea } from "./VideoArea";

/** How long "this seat is taken" stays after a click on a taken seat. */
const TAKEN_NOTICE_MS = 4_000;

/** A seat's size on a touch screen: a finger's target. */
const TOUCH_CELL = 44;

type Tab = "chat" | "questions" | "seats" | "reactions";
const TABS: Tab[] = ["chat", "questions", "seats", "reactions"];

function SeatsPanel(props: {
  state: RoomState;
  send: (m: ClientMsg) => boolean;
  onView: (seats: SeatIndex[]) => void;
  hidden?: boolean;
  id?: string;
  prominent: boolean;
}) {
  const { state, send } = props;
  const touch = useTouchWords();
  const seat = state.yourSeat;
  const [notice, setNotice] = useState<{ text: string; at: number } | null>(null);
  useEffect(() => {
    if (!notice) return;
    const id = setTimeout(() => setNotice(null), TAKEN_NOTICE_MS);
    return () => clearTimeout(id);
  }, [notice]);
  const onActivate = (s: Seat) => {
    const mine = seat !== null && seatIndex(seat, state.lecture.cols) === seatIndex(s, state.lecture.cols);
    if (mine) return;
    if (isTaken(state, s)) {
      setNotice({ text: t("seat_taken_notice"), at: Date.now() });
      return;
    }
    setNotice(null);
    send({ type: "take_seat", seat: s });
  };
  return (
    <section class={`seats${props.prominent ? " first-step" : ""}`} aria-labelledby="seats-title" hidden={props.hidden} id={props.id}>
      <div class="seats-head">
        <h2 id="seats-title">{t("seats_title")}</h2>
        <p class="your-seat" role="status">
          {seat
            ? t("your_seat", { seat: t("seat_name", { row: seat.row + 1, col: seat.col + 1 }) })
            : t(touch ? "no_seat_touch" : "no_seat")}
        </p>
        {seat && (
          <button type="button" onClick={() => send({ type: "leave_seat" })}>
            {t("stand_up")}
          </button>
        )}
      </div>
      <p class="seat-notice" role="status" data-notice={notice ? "taken" : undefined}>
        {notice?.text ?? ""}
      </p>
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
        minCell={touch ? TOUCH_CELL : undefined}
        onActivate={onActivate}
        onView={props.onView}
      />
    </section>
  );
}

export function Learner(props: {
  state: RoomState;
  send: (m: ClientMsg) => boolean;
  now: number;
  viewer: Viewer;
  unsent: UnsentLine[];
  /** The room connection is down: the video shows it is not live. */
  reconnecting: boolean;
  /** The command the node refused last: its text goes back where it was typed. */
  refused: Refused;
  /** The seats the grid shows: their nicknames are asked for. */
  onView: (seats: SeatIndex[]) => void;
}) {
  const { state, send, now } = props;
  const phone = usePhone();
  useVisibleHeight(phone);
  const seated = state.yourSeat !== null;
  const [tab, setTab] = useState<Tab>(seated ? "chat" : "seats");
  // Sitting down is the first step; once it is done the chat comes forward.
  const wasSeated = useRef(seated);
  useEffect(() => {
    if (seated && !wasSeated.current) setTab("chat");
    wasSeated.current = seated;
  }, [seated]);
  const tabs = useRef<(HTMLButtonElement | null)[]>([]);

  const chat = (
    <Chat
      messages={state.chat}
      maxChars={state.lecture.chat_max_chars}
      mutedUntil={state.mutedUntil === null ? null : state.mutedUntil - state.clockOffset}
      canAsk
      unsent={props.unsent}
      you={state.you.user}
      restore={refusedChat(props.refused)}
      onSend={(text, question) => send({ type: "chat", text, question })}
    />
  );

  if (phone) {
    const onTabKey = (e: KeyboardEvent, i: number) => {
      const step = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
      if (step === 0) return;
      e.preventDefault();
      const next = (i + step + TABS.length) % TABS.length;
      setTab(TABS[next]!);
      tabs.current[next]?.focus();
    };
    return (
      <div class="room-body learner-body phone" data-layout="phone" data-seated={seated ? "yes" : "no"}>
        <VideoArea state={state} now={now} viewer={props.viewer} reconnecting={props.reconnecting} />
        <div class="tabs" role="tablist" aria-label={t("room_panes")}>
          {TABS.map((name, i) => (
            <button
              key={name}
              type="button"
              role="tab"
              id={`tab-${name}`}
              ref={(el) => {
                tabs.current[i] = el;
              }}
              aria-selected={tab === name}
              aria-controls={`pane-${name}`}
              tabIndex={tab === name ? 0 : -1}
              data-tab={name}
              onClick={() => setTab(name)}
              onKeyDown={(e) => onTabKey(e, i)}
            >
              {t(`tab_${name}` as const)}
            </button>
          ))}
        </div>
        {/* The panes share one place; a hidden one keeps its size (styles.css), so the chat's
            scroll position and the grid's measurements hold while another tab is shown. */}
        <div class="panes">
          <div class="pane" role="tabpanel" id="pane-chat" aria-labelledby="tab-chat" hidden={tab !== "chat"}>
            {chat}
          </div>
          <div class="pane" role="tabpanel" id="pane-questions" aria-labelledby="tab-questions" hidden={tab !== "questions"}>
            <Questions state={state} send={send} />
          </div>
          <div class="pane" role="tabpanel" id="pane-seats" aria-labelledby="tab-seats" hidden={tab !== "seats"}>
            <SeatsPanel state={state} send={send} onView={props.onView} prominent={!seated} />
          </div>
          <div class="pane" role="tabpanel" id="pane-reactions" aria-labelledby="tab-reactions" hidden={tab !== "reactions"}>
            <Reactions state={state} now={now} send={send} />
          </div>
        </div>
      </div>
    );
  }

  return (
    <div class={`room-body learner-body wide ${seated ? "seated" : "needs-seat"}`} data-layout="wide" data-seated={seated ? "yes" : "no"}>
      <div class="stage">
        {!seated && <SeatsPanel state={state} send={send} onView={props.onView} prominent />}
        <VideoArea state={state} now={now} viewer={props.viewer} reconnecting={props.reconnecting} />
        <Reactions state={state} now={now} send={send} />
      </div>
      <div class="side">
        {seated && <SeatsPanel state={state} send={send} onView={props.onView} prominent={false} />}
        <Questions state={state} send={send} />
        {chat}
      </div>
    </div>
  );
}
