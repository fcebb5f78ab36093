// Raised hands: the learner's toggle, and the console's queue (first raised first) with
// "call on first" and a call or dismissal for each hand.
import "./stafftools.css";
import type { ClientMsg } from "@protocol/ClientMsg";
import { formatTime, t } from "../i18n";
import { type RoomState, mutedLearner } from "./state";

/** The learner's "raise hand" toggle, with the room's count of raised hands. */
export function HandToggle({ state, send }: { state: RoomState; send: (m: ClientMsg) => boolean }) {
  const up = state.yourHand !== null;
  return (
    <div class="hand-toggle" data-hand={up ? "up" : "down"}>
      <button
        type="button"
        class={up ? "primary hand-button" : "hand-button"}
        onClick={() => send(up ? { type: "lower_hand" } : { type: "raise_hand" })}
      >
        <span aria-hidden="true">✋</span> {up ? t("hand_lower") : t("hand_raise")}
      </button>
      <span class="hand-status">
        {/* Your own hand is announced; the room's count, which moves every tick in a big
            lecture, is not. */}
        <span class="hand-up" role="status">
          {up ? `${t("hand_up_status")} · ` : ""}
        </span>
        <span class="hand-count">{t("hand_count", { count: state.handCount })}</span>
      </span>
    </div>
  );
}

/** The console's hand queue. */
export function HandQueue({ state, send }: { state: RoomState; send: (m: ClientMsg) => boolean }) {
  const hands = state.hands;
  const call = (user: string) => send({ type: "call_on", user });
  return (
    <section class="hand-queue" aria-labelledby="hand-queue-title">
      <div class="hand-queue-head">
        <h2 id="hand-queue-title">
          {t("hands_title")} <span class="hand-queue-count">({hands.length})</span>
        </h2>
        <button type="button" class="primary" disabled={hands.length === 0} onClick={() => hands[0] && call(hands[0].user)}>
          {t("hands_call_first")}
        </button>
      </div>
      {hands.length === 0 ? (
        <p class="help">{t("hands_empty")}</p>
      ) : (
        <ol class="hand-queue-list">
          {hands.map((h, i) => (
            <li key={h.user} data-user={h.user}>
              <span class="hand-pos">{i + 1}.</span>
              <span class="nick">{h.nickname}</span>
              {mutedLearner(state, h.user, Date.now()) && <span class="muted-marker">{t("muted_marker")}</span>}
              {h.seat && <span class="hand-seat">{t("seat_name", { row: h.seat.row + 1, col: h.seat.col + 1 })}</span>}
              <time class="at">{formatTime(h.at)}</time>
              <button type="button" aria-label={t("hands_call_label", { nickname: h.nickname })} onClick={() => call(h.user)}>
                {t("hands_call")}
              </button>
              <button
                type="button"
                aria-label={t("hands_dismiss_label", { nickname: h.nickname })}
                onClick={() => send({ type: "lower_hand", user: h.user })}
              >
                {t("hands_dismiss")}
              </button>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
