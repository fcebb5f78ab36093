// The instructor's summary once the lecture has ended: attendance, the questions left
// unanswered, and the reactions minute by minute (a table, readable by everyone).
import type { Emotion } from "@protocol/Emotion";
import { formatTime, lang, t } from "../i18n";
import { emotionIcon } from "./emotions";
import { PALETTE } from "./MeterChart";
import type { RoomState } from "./state";
import { buildSummary } from "./summary";

export function Summary({ state }: { state: RoomState }) {
  const s = buildSummary(state);
  const emotions = state.lecture.emotions;
  const label = (e: Emotion) => (lang() === "ja" ? e.label_ja : e.label_en);
  const peak = Math.max(1, ...s.timeline.map((b) => emotions.reduce((n, e) => n + (b.counts[e.key] ?? 0), 0)));
  return (
    <section class="summary" aria-labelledby="summary-title">
      <h2 id="summary-title">{t("summary_title")}</h2>
      <dl class="summary-facts">
        <div>
          <dt>{t("summary_attended")}</dt>
          <dd data-fact="attended">{t("summary_people", { count: s.attended })}</dd>
        </div>
        <div>
          <dt>{t("summary_peak")}</dt>
          <dd data-fact="peak">{t("summary_people", { count: s.peakPresent })}</dd>
        </div>
        <div>
          <dt>{t("summary_unanswered")}</dt>
          <dd data-fact="unanswered">{s.unanswered.length}</dd>
        </div>
      </dl>
      {s.unanswered.length > 0 && (
        <>
          <h3>{t("summary_unanswered")}</h3>
          <ul class="summary-questions">
            {s.unanswered.map((q) => (
              <li key={q.offset}>
                <span class="nick">{q.nickname}</span> <time>{formatTime(q.at)}</time>
                <span class="chat-text">{q.text}</span>
              </li>
            ))}
          </ul>
        </>
      )}
      <h3>{t("summary_timeline")}</h3>
      {s.timeline.length === 0 ? (
        <p class="help">{t("summary_no_reactions")}</p>
      ) : (
        <div class="summary-timeline">
          <table>
            <thead>
              <tr>
                <th scope="col">{t("summary_minute")}</th>
                {emotions.map((e) => (
                  <th scope="col" key={e.key}>
                    {emotionIcon(e.key)} {label(e)}
                  </th>
                ))}
                <th scope="col">{t("console_meter_totals")}</th>
              </tr>
            </thead>
            <tbody>
              {s.timeline.map((b) => {
                const total = emotions.reduce((n, e) => n + (b.counts[e.key] ?? 0), 0);
                return (
                  <tr key={b.start}>
                    <th scope="row">{formatTime(b.start)}</th>
                    {emotions.map((e) => (
                      <td key={e.key}>{b.counts[e.key] ?? 0}</td>
                    ))}
                    <td>
                      <span class="bar" aria-hidden="true">
                        {emotions.map((e, k) => (
                          <span
                            key={e.key}
                            style={{ width: `${((b.counts[e.key] ?? 0) / peak) * 100}%`, background: PALETTE[k % PALETTE.length] }}
                          />
                        ))}
                      </span>
                      {total}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
