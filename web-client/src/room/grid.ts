// Seat grid geometry: keyboard movement, hit testing and the visible window. Pure, so the
// canvas component stays a thin drawing layer and these rules are unit-tested.
import type { Seat } from "@protocol/Seat";

export const MIN_CELL = 14;
export const MAX_CELL = 72;

/** The cursor after a key press, or null when the key does not move it. */
export function moveCursor(cursor: Seat, key: string, rows: number, cols: number): Seat | null {
  const clamp = (row: number, col: number): Seat => ({
    row: Math.max(0, Math.min(rows - 1, row)),
    col: Math.max(0, Math.min(cols - 1, col)),
  });
  switch (key) {
    case "ArrowUp":
      return clamp(cursor.row - 1, cursor.col);
    case "ArrowDown":
      return clamp(cursor.row + 1, cursor.col);
    case "ArrowLeft":
      return clamp(cursor.row, cursor.col - 1);
    case "ArrowRight":
      return clamp(cursor.row, cursor.col + 1);
    case "Home":
      return clamp(cursor.row, 0);
    case "End":
      return clamp(cursor.row, cols - 1);
    case "PageUp":
      return clamp(cursor.row - 10, cursor.col);
    case "PageDown":
      return clamp(cursor.row + 10, cursor.col);
    default:
      return null;
  }
}

/** The seat under a point given in grid pixels (scroll included), if any. */
export function hitTest(x: number, y: number, cell: number, rows: number, cols: number): Seat | null {
  if (x < 0 || y < 0) return null;
  const col = Math.floor(x / cell);
  const row = Math.floor(y / cell);
  if (row >= rows || col >= cols) return null;
  return { row, col };
}

/** First and last index (inclusive) of the cells visible in a window of `size` px at `scroll`. */
export function visibleRange(scroll: number, size: number, cell: number, count: number): [number, number] {
  const first = Math.max(0, Math.floor(scroll / cell));
  const last = Math.min(count - 1, Math.ceil((scroll + size) / cell) - 1);
  return [first, last];
}

/** A cell size that fits `cols` into `width`, within the zoom bounds. */
export function fitCell(width: number, cols: number): number {
  return Math.max(MIN_CELL, Math.min(48, Math.floor(width / Math.max(1, cols))));
}

export function zoom(cell: number, factor: number): number {
  return Math.max(MIN_CELL, Math.min(MAX_CELL, Math.round(cell * factor)));
}

/** The scroll offset that brings cell `index` into a window, or the current one if it is in. */
export function scrollToShow(scroll: number, size: number, cell: number, index: number): number {
  const start = index * cell;
  const end = start + cell;
  if (start < scroll) return start;
  if (end > scroll + size) return end - size;
  return scroll;
}
