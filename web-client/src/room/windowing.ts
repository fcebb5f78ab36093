// Which chat rows are drawn: only those in view and a few around them (the overscan), with the
// space of the others kept as padding so the scroll bar stays true. Rows differ in height (long
// lines wrap, questions carry tags): a row's height is what was measured when it was last drawn,
// or an estimate until then. Pure functions; the chat component feeds them.

/** Heights of rows, by key (the chat offset), as measured; unmeasured rows use the estimate. */
export class RowHeights {
  private readonly measured = new Map<number, number>();

  constructor(readonly estimate: number) {}

  get(key: number): number {
    return this.measured.get(key) ?? this.estimate;
  }

  /** Records a row's height; true when it changed. */
  set(key: number, height: number): boolean {
    if (this.measured.get(key) === height) return false;
    this.measured.set(key, height);
    return true;
  }

  /** Forgets rows no longer in the list (`keep` says which stay). */
  prune(keep: (key: number) => boolean): void {
    for (const key of this.measured.keys()) if (!keep(key)) this.measured.delete(key);
  }

  /** Forgets every measurement (after a change of width or language). */
  clear(): void {
    this.measured.clear();
  }
}

/** `tops[i]` is row i's distance from the list's top; `tops[n]` the whole list's height. */
export function rowTops(count: number, height: (i: number) => number): Float64Array {
  const tops = new Float64Array(count + 1);
  for (let i = 0; i < count; i++) tops[i + 1] = tops[i]! + height(i);
  return tops;
}

/** The row at distance `y` from the list's top (clamped to the rows there are). */
export function rowAt(tops: Float64Array, y: number): number {
  const count = tops.length - 1;
  if (count <= 0) return 0;
  let lo = 0;
  let hi = count - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (tops[mid]! <= y) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

export interface RowWindow {
  /** First row drawn. */
  start: number;
  /** One past the last row drawn. */
  end: number;
  /** Space above the first row drawn (the rows not drawn there). */
  padTop: number;
  /** Space below the last row drawn. */
  padBottom: number;
}

/**
 * The rows to draw for a viewport `height` tall scrolled to `scrollTop`: those in view plus
 * `overscan` on each side.
 */
export function rowWindow(tops: Float64Array, scrollTop: number, height: number, overscan: number): RowWindow {
  const count = tops.length - 1;
  if (count <= 0) return { start: 0, end: 0, padTop: 0, padBottom: 0 };
  const first = rowAt(tops, Math.max(0, scrollTop));
  const last = rowAt(tops, Math.max(0, scrollTop + height - 1));
  const start = Math.max(0, first - overscan);
  const end = Math.min(count, last + 1 + overscan);
  return { start, end, padTop: tops[start]!, padBottom: tops[count]! - tops[end]! };
}

/** Where a viewport's top is, as a row and the distance into it: what stays put when rows
 * above change (the oldest trimmed away, a row measured at last). */
export interface Anchor {
  key: number;
  within: number;
}

export function anchorAt(tops: Float64Array, keyOf: (i: number) => number, scrollTop: number): Anchor | null {
  if (tops.length <= 1) return null;
  const i = rowAt(tops, scrollTop);
  return { key: keyOf(i), within: scrollTop - tops[i]! };
}

/** The scroll position that shows `anchor` where it was, or null when its row is gone. */
export function scrollForAnchor(tops: Float64Array, indexOf: (key: number) => number, anchor: Anchor): number | null {
  const i = indexOf(anchor.key);
  if (i < 0) return null;
  return tops[i]! + anchor.within;
}

/** Whether a viewport is at (or within `slack` of) the bottom of what it scrolls. */
export function atBottom(scrollTop: number, clientHeight: number, scrollHeight: number, slack = 24): boolean {
  return scrollHeight - scrollTop - clientHeight <= slack;
}
