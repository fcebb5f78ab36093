// The seat grid: drawn on a canvas that only paints the visible cells (a lecture may have
// thousands of seats), with an ARIA grid over it whose one rendered cell follows the keyboard
// cursor, so screen readers announce every seat the arrow keys reach. It draws from the grid's
// bitmaps, writes the nicknames it knows, and tells the page which seats it shows (a learner's
// page asks the node for their nicknames).
import type { Seat } from "@protocol/Seat";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { t } from "../i18n";
import { emotionIcon } from "./emotions";
import { fitCell, hitTest, moveCursor, scrollToShow, visibleRange, zoom } from "./grid";
import { wantedSeats } from "./names";
import { REACTION_SHOW_MS, type SeatIndex, bit, seatIndex } from "./state";

/** Cells at least this large have room for a nickname. */
const NAMED_CELL = 36;

export interface SeatGridProps {
  rows: number;
  cols: number;
  /** Seats taken, and held for someone away: the wire's bitmaps. */
  occupied: Uint8Array;
  away: Uint8Array;
  /** The nicknames known, by seat. */
  names: Map<SeatIndex, string>;
  yourSeat: Seat | null;
  /** Your own nickname, for your seat before anyone tells it. */
  yourNickname?: string;
  callSeat: Seat | null;
  reactions: Map<SeatIndex, { emotion: string; at: number }>;
  /** Server time now, to fade reactions. */
  serverNow: () => number;
  staff: boolean;
  /** The smallest cell the grid opens with (a finger needs 44 px; the grid then scrolls). */
  minCell?: number;
  /** Staff: the seat chosen to call on next (a second activation calls). */
  selected?: Seat | null;
  /**
   * Staff: the heat view. Each seat's reactions (see `history.ts`), drawn as shades of one
   * colour from none to `max`, instead of the seats' occupancy colours.
   */
  heat?: { counts: Map<SeatIndex, number>; max: number } | null;
  onActivate: (seat: Seat) => void;
  /** The seats shown now, most wanted first (the cursor's, the pointer's, their neighbours', the visible named cells). */
  onView?: (seats: SeatIndex[]) => void;
}

const COLORS = {
  empty: "#f1f3f5",
  emptyLine: "#c5ccd3",
  taken: "#8db4ea",
  takenLine: "#5b8fd6",
  away: "#cdd5df",
  yours: "#2f9e58",
  called: "#f08c00",
  cursor: "#1c3d6e",
  selected: "#111827",
  text: "#1b2733",
  awayMark: "#5c6b7a",
};

/** The heat view's shade for a share `f` (0 to 1) of the hottest seat: pale yellow to deep red. */
export function heatColor(f: number): string {
  const k = Math.max(0, Math.min(1, f));
  const from = [255, 243, 191];
  const to = [201, 42, 42];
  const c = from.map((v, i) => Math.round(v + (to[i]! - v) * k));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

/** What a seat says to a screen reader: its name, and who sits there (by nickname once known). */
export function seatLabel(seat: Seat, taken: boolean, away: boolean, nickname: string | undefined, yours: boolean): string {
  const name = t("seat_name", { row: seat.row + 1, col: seat.col + 1 });
  if (!taken && !yours) return `${name}: ${t("seat_empty")}`;
  let who: string;
  if (nickname !== undefined) who = away ? t("seat_away", { nickname }) : nickname;
  else who = away ? t("seat_taken_away") : t("seat_taken");
  return `${name}: ${who}${yours ? ` (${t("seat_yours")})` : ""}`;
}

export function SeatGrid(props: SeatGridProps) {
  const { rows, cols } = props;
  const scroller = useRef<HTMLDivElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const [cell, setCell] = useState(28);
  const fitted = useRef(false);
  const [cursor, setCursor] = useState<Seat>(props.yourSeat ?? { row: 0, col: 0 });
  const [focused, setFocused] = useState(false);
  const [hovered, setHovered] = useState<Seat | null>(null);
  const frame = useRef(0);
  const latest = useRef(props);
  latest.current = props;

  const draw = () => {
    frame.current = 0;
    const el = scroller.current;
    const cv = canvas.current;
    if (!el || !cv) return;
    const p = latest.current;
    const dpr = window.devicePixelRatio || 1;
    const w = el.clientWidth;
    const h = el.clientHeight;
    if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(h * dpr)) {
      cv.width = Math.round(w * dpr);
      cv.height = Math.round(h * dpr);
      cv.style.width = `${w}px`;
      cv.style.height = `${h}px`;
    }
    cv.style.transform = `translate(${el.scrollLeft}px, ${el.scrollTop}px)`;
    const ctx = cv.getContext("2d");
    if (!ctx) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const [r0, r1] = visibleRange(el.scrollTop, h, cell, rows);
    const [c0, c1] = visibleRange(el.scrollLeft, w, cell, cols);
    const gap = cell >= 20 ? 2 : 1;
    const now = p.serverNow();
    const yours = p.yourSeat ? seatIndex(p.yourSeat, cols) : -1;
    const called = p.callSeat ? seatIndex(p.callSeat, cols) : -1;
    const selected = p.selected ? seatIndex(p.selected, cols) : -1;
    const fontPx = Math.max(9, Math.min(13, Math.floor(cell / 4)));
    ctx.font = `${fontPx}px system-ui, sans-serif`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    for (let r = r0; r <= r1; r++) {
      for (let c = c0; c <= c1; c++) {
        const i = r * cols + c;
        const x = c * cell - el.scrollLeft + gap / 2;
        const y = r * cell - el.scrollTop + gap / 2;
        const s = cell - gap;
        const taken = bit(p.occupied, i);
        const away = taken && bit(p.away, i);
        const hot = p.heat ? p.heat.counts.get(i) ?? 0 : 0;
        ctx.fillStyle = p.heat
          ? hot > 0
            ? heatColor(hot / Math.max(1, p.heat.max))
            : taken
              ? COLORS.away
              : COLORS.empty
          : i === yours
            ? COLORS.yours
            : !taken
              ? COLORS.empty
              : away
                ? COLORS.away
                : COLORS.taken;
        ctx.fillRect(x, y, s, s);
        ctx.strokeStyle = i === called ? COLORS.called : taken ? COLORS.takenLine : COLORS.emptyLine;
        ctx.lineWidth = i === called ? 3 : 1;
        ctx.strokeRect(x + 0.5, y + 0.5, s - 1, s - 1);
        if (away) {
          // Away is marked by more than its colour: a diagonal stroke across the seat.
          ctx.strokeStyle = COLORS.awayMark;
          ctx.lineWidth = 1.5;
          ctx.beginPath();
          ctx.moveTo(x + 2, y + s - 2);
          ctx.lineTo(x + s - 2, y + 2);
          ctx.stroke();
        }
        if (i === selected) {
          ctx.strokeStyle = COLORS.selected;
          ctx.lineWidth = 3;
          ctx.setLineDash([4, 2]);
          ctx.strokeRect(x + 2, y + 2, s - 4, s - 4);
          ctx.setLineDash([]);
        }
        const reaction = p.reactions.get(i);
        if (reaction && now - reaction.at < REACTION_SHOW_MS) {
          ctx.globalAlpha = 1 - (now - reaction.at) / REACTION_SHOW_MS / 2;
          ctx.font = `${Math.floor(cell * 0.55)}px system-ui, sans-serif`;
          ctx.fillText(emotionIcon(reaction.emotion), x + s / 2, y + s / 2);
          ctx.font = `${fontPx}px system-ui, sans-serif`;
          ctx.globalAlpha = 1;
        } else if (cell >= NAMED_CELL) {
          const nickname = i === yours ? p.yourNickname ?? p.names.get(i) : p.names.get(i);
          if (nickname !== undefined && (taken || i === yours)) {
            ctx.fillStyle = i === yours ? "#ffffff" : COLORS.text;
            ctx.fillText(truncate(ctx, nickname, s - 4), x + s / 2, y + s / 2);
          }
        }
      }
    }
    if (p.onView) {
      const visible: Seat[] = [];
      if (cell >= NAMED_CELL) {
        for (let r = r0; r <= r1; r++) for (let c = c0; c <= c1; c++) visible.push({ row: r, col: c });
      }
      p.onView(wantedSeats([cursor, hovered], visible, rows, cols));
    }
    if (focused) {
      ctx.strokeStyle = COLORS.cursor;
      ctx.lineWidth = 3;
      ctx.strokeRect(cursor.col * cell - el.scrollLeft + 1.5, cursor.row * cell - el.scrollTop + 1.5, cell - 3, cell - 3);
    }
  };

  // Timers and observers set up once call the latest `draw`, with the current zoom and cursor.
  const drawRef = useRef(draw);
  drawRef.current = draw;
  const schedule = () => {
    if (!frame.current) frame.current = requestAnimationFrame(() => drawRef.current());
  };

  useLayoutEffect(() => {
    const el = scroller.current;
    if (el && !fitted.current && el.clientWidth > 0) {
      fitted.current = true;
      setCell(Math.max(props.minCell ?? 0, fitCell(el.clientWidth, cols)));
    }
  }, [cols]);

  // A grid that opens with your seat in it (after sitting down the grid moves to its smaller
  // pane) shows your seat, not the grid's corner.
  const shownYours = useRef(false);
  useLayoutEffect(() => {
    if (shownYours.current || !fitted.current || !props.yourSeat) return;
    shownYours.current = true;
    reveal(props.yourSeat);
  }, [cell, props.yourSeat]);

  useEffect(schedule);

  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const observer = new ResizeObserver(schedule);
    observer.observe(el);
    // Reactions fade even when nothing else changes.
    const fade = setInterval(() => {
      if (latest.current.reactions.size > 0) schedule();
    }, 250);
    return () => {
      observer.disconnect();
      clearInterval(fade);
      if (frame.current) cancelAnimationFrame(frame.current);
    };
  }, []);

  const reveal = (seat: Seat) => {
    const el = scroller.current;
    if (!el) return;
    el.scrollLeft = scrollToShow(el.scrollLeft, el.clientWidth, cell, seat.col);
    el.scrollTop = scrollToShow(el.scrollTop, el.clientHeight, cell, seat.row);
  };

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      props.onActivate(cursor);
      return;
    }
    if (e.key === "+" || e.key === "=") {
      e.preventDefault();
      setCell((c) => zoom(c, 1.25));
      return;
    }
    if (e.key === "-") {
      e.preventDefault();
      setCell((c) => zoom(c, 0.8));
      return;
    }
    const next = moveCursor(cursor, e.key, rows, cols);
    if (next) {
      e.preventDefault();
      setCursor(next);
      reveal(next);
    }
  };

  const onClick = (e: MouseEvent) => {
    const el = scroller.current;
    if (!el) return;
    const box = el.getBoundingClientRect();
    const seat = hitTest(e.clientX - box.left + el.scrollLeft, e.clientY - box.top + el.scrollTop, cell, rows, cols);
    if (!seat) return;
    setCursor(seat);
    props.onActivate(seat);
  };

  const onMouseMove = (e: MouseEvent) => {
    const el = scroller.current;
    if (!el) return;
    const box = el.getBoundingClientRect();
    const seat = hitTest(e.clientX - box.left + el.scrollLeft, e.clientY - box.top + el.scrollTop, cell, rows, cols);
    if (seat?.row !== hovered?.row || seat?.col !== hovered?.col) setHovered(seat);
  };

  const onWheel = (e: WheelEvent) => {
    if (!e.ctrlKey) return;
    e.preventDefault();
    setCell((c) => zoom(c, e.deltaY < 0 ? 1.1 : 0.9));
  };

  const label = (seat: Seat) => {
    const i = seatIndex(seat, cols);
    const yours = props.yourSeat !== null && seatIndex(props.yourSeat, cols) === i;
    const nickname = yours ? (props.yourNickname ?? props.names.get(i)) : props.names.get(i);
    const text = seatLabel(seat, bit(props.occupied, i), bit(props.away, i), nickname, yours);
    return props.heat ? `${text} — ${t("heat_count", { count: props.heat.counts.get(i) ?? 0 })}` : text;
  };
  const isYours = props.yourSeat !== null && seatIndex(props.yourSeat, cols) === seatIndex(cursor, cols);
  const cellId = `seat-${cursor.row}-${cursor.col}`;
  return (
    <div class="seat-grid">
      <div class="grid-tools">
        <button type="button" aria-label={t("zoom_out")} onClick={() => setCell((c) => zoom(c, 0.8))}>
          −
        </button>
        <button type="button" aria-label={t("zoom_in")} onClick={() => setCell((c) => zoom(c, 1.25))}>
          ＋
        </button>
      </div>
      <div
        role="grid"
        class="grid-focus"
        tabIndex={0}
        aria-label={props.staff ? t("seats_grid_label_staff") : t("seats_grid_label")}
        aria-rowcount={rows}
        aria-colcount={cols}
        aria-activedescendant={cellId}
        data-cell={cell}
        data-rows={rows}
        data-cols={cols}
        onKeyDown={onKeyDown}
        onFocus={() => setFocused(true)}
        onBlur={() => setFocused(false)}
      >
        <div role="row" aria-rowindex={cursor.row + 1} class="visually-hidden">
          <div role="gridcell" id={cellId} aria-colindex={cursor.col + 1} aria-selected={isYours}>
            {label(cursor)}
          </div>
        </div>
        <div
          class="grid-scroller"
          ref={scroller}
          onScroll={schedule}
          onClick={onClick}
          onWheel={onWheel}
          onMouseMove={onMouseMove}
          onMouseLeave={() => setHovered(null)}
        >
          <div class="grid-space" style={{ width: `${cols * cell}px`, height: `${rows * cell}px` }}>
            <canvas ref={canvas} aria-hidden="true" />
          </div>
        </div>
      </div>
      {/* What the pointer is over, or the keyboard cursor's seat, for sighted people (the
          keyboard's cell above is the screen reader's). */}
      <p class="seat-hover" aria-hidden="true">
        {hovered ? label(hovered) : focused ? label(cursor) : "\u00a0"}
      </p>
      {props.heat ? (
        <p class="grid-legend heat-legend" aria-hidden="true">
          <span class="swatch" style={{ background: heatColor(0) }} />0
          <span class="swatch" style={{ background: heatColor(0.5) }} />
          <span class="swatch" style={{ background: heatColor(1) }} />
          {props.heat.max}
        </p>
      ) : (
        <ul class="grid-legend" aria-label={t("grid_legend")}>
          <li><span class="swatch" style={{ background: COLORS.empty, borderColor: COLORS.emptyLine }} aria-hidden="true" />{t("seat_empty")}</li>
          <li><span class="swatch" style={{ background: COLORS.taken }} aria-hidden="true" />{t("legend_taken")}</li>
          <li><span class="swatch away" style={{ background: COLORS.away }} aria-hidden="true" />{t("legend_away")}</li>
          {!props.staff && <li><span class="swatch" style={{ background: COLORS.yours }} aria-hidden="true" />{t("seat_yours")}</li>}
          <li><span class="swatch" style={{ borderColor: COLORS.called, borderWidth: "2px" }} aria-hidden="true" />{t("legend_called")}</li>
        </ul>
      )}
    </div>
  );
}

function truncate(ctx: CanvasRenderingContext2D, text: string, width: number): string {
  if (ctx.measureText(text).width <= width) return text;
  let s = text;
  while (s.length > 1 && ctx.measureText(`${s}…`).width > width) s = s.slice(0, -1);
  return `${s}…`;
}
