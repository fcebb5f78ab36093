// The learner's emotion buttons, and the room's recent reactions as bursts.
import type { ClientMsg } from "@protocol/ClientMsg";
import { lang, t } from "../i18n";
import { emotionIcon } from "./emotions";
import { HandToggle } from "./Hands";
import { type RoomState, recentBursts } from "./state";

export function Reactions(props: { state: RoomState; now: number; send: (m: ClientMsg) => boolean; hidden?: boolean; id?: string }) {
  const { state } = props;
  const bursts = recentBursts(state, props.now);
  const label = (key: string) => {
    const e = state.lecture.emotions.find((x) => x.key === key);
    return e ? (lang() === "ja" ? e.label_ja : e.label_en) : key;
  };
  return (
    <section class="emotions" aria-labelledby="emotions-title" hidden={props.hidden} id={props.id}>
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
            onClick={() => props.send({ type: "react", emotion: e.key })}
          >
            <span aria-hidden="true">{emotionIcon(e.key)}</span> {label(e.key)}
          </button>
        ))}
      </div>
      <div class="bursts" role="group" aria-label={t("bursts_label")}>
        {Object.entries(bursts).map(([key, n]) => (
          <span class="burst" key={key} data-emotion={key}>
            {emotionIcon(key)} +{n}
          </span>
        ))}
      </div>
      <HandToggle state={state} send={props.send} />
    </section>
  );
}
