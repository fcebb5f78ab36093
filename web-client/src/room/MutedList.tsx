// The console's list of muted learners: each with a muted marker, the end of the mute, and
// an unmute button. The list is the node's (`muted_learners`), so it is the same in every
// console and empties by itself when mutes run out.
import "./stafftools.css";
import type { ClientMsg } from "@protocol/ClientMsg";
import { formatTime, t } from "../i18n";
import type { RoomState } from "./state";

export function MutedList({ state, send }: { state: RoomState; send: (m: ClientMsg) => boolean }) {
  return (
    <section class="muted-list" aria-labelledby="muted-list-title">
      <h2 id="muted-list-title">{t("muted_title")}</h2>
      {state.muted.length === 0 ? (
        <p class="help">{t("muted_empty")}</p>
      ) : (
        <ul>
          {state.muted.map((m) => (
            <li key={m.user} data-user={m.user}>
              <span class="muted-marker" title={t("muted_marker")}>
                <span aria-hidden="true">🔇</span> {t("muted_marker")}
              </span>
              <span class="nick">{m.nickname}</span>
              <span class="help">{t("muted_until", { time: formatTime(m.until) })}</span>
              <button
                type="button"
                aria-label={t("muted_unmute_label", { nickname: m.nickname })}
                onClick={() => send({ type: "unmute", user: m.user })}
              >
                {t("muted_unmute")}
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
