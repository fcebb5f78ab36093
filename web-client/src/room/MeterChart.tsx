// The instructor's emotion meter: reactions per 5 s over the last minutes, one line per
// emotion, drawn as SVG with its axes (presses per 5 s up the side, minutes ago along the
// bottom); the numbers are also in a table for screen readers.
import type { Emotion } from "@protocol/Emotion";
import { lang, t } from "../i18n";
import { emotionIcon } from "./emotions";
import { METER_BUCKET_MS, METER_SPAN_MS, type MeterBucket } from "./state";

export const PALETTE = ["#1f6fc5", "#b35900", "#c92a2a", "#2b8a3e", "#6741d9", "#0b7285"];
const W = 360;
const H = 150;
/** Room for the axes' labels: left, bottom, top, right. */
const ML = 30;
const MB = 20;
const MT = 8;
const MR = 8;

/** Round tick values for an axis from 0 to at least `peak`: [0, step, 2 step, …]. */
export function ticks(peak: number): number[] {
  const top = Math.max(1, peak);
  const rough = top / 3;
  const mag = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= rough) ?? 10 * mag;
  const out: number[] = [];
  for (let v = 0; v < top + step; v += Math.max(1, step)) {
    out.push(v);
    if (v >= top) break;
  }
  return out;
}

export function MeterChart(props: {
  emotions: Emotion[];
  series: MeterBucket[];
  rolling: Record<string, number>;
  totals: Record<string, number>;
}) {
  const { emotions, series } = props;
  const peak = Math.max(1, ...series.flatMap((b) => emotions.map((e) => b.counts[e.key] ?? 0)));
  const yTicks = ticks(peak);
  const yMax = yTicks[yTicks.length - 1]!;
  const plotW = W - ML - MR;
  const plotH = H - MT - MB;
  const step = series.length > 1 ? plotW / (series.length - 1) : plotW;
  const x = (i: number) => ML + i * step;
  const y = (v: number) => MT + plotH - (v / yMax) * plotH;
  const label = (e: Emotion) => (lang() === "ja" ? e.label_ja : e.label_en);
  const minutes = METER_SPAN_MS / 60_000;
  const perMinute = 60_000 / METER_BUCKET_MS;
  const chartLabel = t("console_meter_chart", { minutes });
  return (
    <figure class="meter">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={chartLabel}>
        {yTicks.map((v) => (
          <g key={`y${v}`} class="tick">
            <line x1={ML} y1={y(v)} x2={W - MR} y2={y(v)} class={v === 0 ? "axis" : "grid"} />
            <text x={ML - 4} y={y(v)} text-anchor="end" dominant-baseline="middle">
              {v}
            </text>
          </g>
        ))}
        <line x1={ML} y1={MT} x2={ML} y2={MT + plotH} class="axis" />
        {Array.from({ length: minutes + 1 }, (_, m) => {
          // m minutes ago, counted from the right edge.
          const i = series.length - 1 - m * perMinute;
          if (i < 0) return null;
          return (
            <g key={`x${m}`} class="tick">
              <line x1={x(i)} y1={MT + plotH} x2={x(i)} y2={MT + plotH + 3} class="axis" />
              <text x={x(i)} y={H - 5} text-anchor={m === 0 ? "end" : "middle"}>
                {m === 0 ? t("meter_now") : t("meter_minutes_ago", { m })}
              </text>
            </g>
          );
        })}
        <text x={ML + 4} y={MT + 8} class="unit">
          {t("meter_unit")}
        </text>
        {emotions.map((e, k) => (
          <polyline
            key={e.key}
            data-emotion={e.key}
            fill="none"
            stroke={PALETTE[k % PALETTE.length]}
            stroke-width="2"
            points={series.map((b, i) => `${x(i).toFixed(1)},${y(b.counts[e.key] ?? 0).toFixed(1)}`).join(" ")}
          />
        ))}
      </svg>
      <figcaption>{chartLabel}</figcaption>
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
