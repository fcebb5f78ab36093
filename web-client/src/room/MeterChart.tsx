// The instructor's emotion meter: reactions per 5 s over the last minutes, one line per
// emotion, drawn as SVG; the numbers are also in a table for screen readers.
import type { Emotion } from "@protocol/Emotion";
import { lang, t } from "../i18n";
import { emotionIcon } from "./emotions";
import { METER_SPAN_MS, type MeterBucket } from "./state";

const PALETTE = ["#2f7ed8", "#f08c00", "#e03131", "#2f9e44", "#7048e8", "#0c8599"];
const W = 320;
const H = 120;

export function MeterChart(props: {
  emotions: Emotion[];
  series: MeterBucket[];
  rolling: Record<string, number>;
  totals: Record<string, number>;
}) {
  const { emotions, series } = props;
  const peak = Math.max(1, ...series.flatMap((b) => emotions.map((e) => b.counts[e.key] ?? 0)));
  const step = series.length > 1 ? W / (series.length - 1) : W;
  const label = (e: Emotion) => (lang() === "ja" ? e.label_ja : e.label_en);
  return (
    <figure class="meter">
      <svg viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" role="img" aria-label={t("console_meter_chart", { minutes: METER_SPAN_MS / 60_000 })}>
        <line x1="0" y1={H - 0.5} x2={W} y2={H - 0.5} class="axis" />
        {emotions.map((e, k) => (
          <polyline
            key={e.key}
            fill="none"
            stroke={PALETTE[k % PALETTE.length]}
            stroke-width="2"
            vector-effect="non-scaling-stroke"
            points={series.map((b, i) => `${(i * step).toFixed(1)},${(H - 4 - ((b.counts[e.key] ?? 0) / peak) * (H - 12)).toFixed(1)}`).join(" ")}
          />
        ))}
      </svg>
      <figcaption>{t("console_meter_chart", { minutes: METER_SPAN_MS / 60_000 })}</figcaption>
      <table class="meter-table">
        <thead>
          <tr>
            <th scope="col">{t("emotions_title")}</th>
            <th scope="col">{t("console_meter_window")}</th>
            <th scope="col">{t("console_meter_totals")}</th>
          </tr>
        </thead>
        <tbody>
          {emotions.map((e, k) => (
            <tr key={e.key} data-emotion={e.key}>
              <th scope="row">
                <span class="swatch" style={{ background: PALETTE[k % PALETTE.length] }} aria-hidden="true" />
                {emotionIcon(e.key)} {label(e)}
              </th>
              <td>{props.rolling[e.key] ?? 0}</td>
              <td class="total">{props.totals[e.key] ?? 0}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}
