// The lecture room: the learner's view, or the instructor console for staff.
// The page is composition: the connection, the header and notices, then the learner's room or
// the console (Learner.tsx, Console.tsx), or what closed it (with the instructor's summary after
// the end).
import type { ClientMsg } from "@protocol/ClientMsg";
import { useEffect, useRef, useState } from "preact/hooks";
import { useNow } from "../hooks";
import { roomErrorText } from "../errors";
import { t } from "../i18n";
import { onLinkClick } from "../router";
import { CallAlert } from "./CallAlert";
import { RoomConnection, type Status } from "./connection";
import { Elsewhere } from "./Elsewhere";
import { keptText } from "./refused";
import { Console } from "./Console";
import { Learner } from "./Learner";
import { type RoomState, isStaff } from "./state";
import { Summary } from "./Summary";

function useRoom(lecture: string): { conn: RoomConnection; state: RoomState | null; status: Status } {
  const conn = useRef<RoomConnection | null>(null);
  conn.current ??= new RoomConnection(lecture);
  const [, setVersion] = useState(0);
  useEffect(() => {
    const c = conn.current!;
    // One render per frame however many messages arrive in it (a busy room sends dozens a
    // second); a hidden page has no frames, so there a timer stands in (a call still chimes).
    let pending = false;
    const render = () => {
      pending = false;
      setVersion((v) => v + 1);
    };
    const off = c.subscribe(() => {
      if (pending) return;
      pending = true;
      if (document.hidden) setTimeout(render, 0);
      else requestAnimationFrame(render);
    });
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

  if (status.kind === "closed") return <Closed status={status} state={state} onAgain={onAgain} />;
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

function Closed({
  status,
  state,
  onAgain,
}: {
  status: Extract<Status, { kind: "closed" }>;
  /** The room as last seen: staff get a summary of it after the end. */
  state: RoomState | null;
  onAgain: () => void;
}) {
  let message: string;
  if (status.left) message = t("closed_left");
  else if (status.refusal) message = status.refusal.localized();
  else if (status.code !== null && [4103, 4104, 4105, 4106, 4111, 4112, 4113].includes(status.code))
    message = t(`closed_${status.code}` as "closed_4103");
  else message = t("closed_generic", { code: status.code ?? "?" });
  const mayReturn = status.left || status.code === 4103 || status.code === 4112 || status.code === 4111;
  const signedOut = status.refusal?.status === 401;
  const summary = state !== null && isStaff(state) && (status.code === 4105 || state.phase.state === "ended");
  return (
    <section class={`page ${summary ? "" : "narrow "}closed`} aria-live={summary ? undefined : "assertive"}>
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
      {summary && <Summary state={state} />}
    </section>
  );
}
