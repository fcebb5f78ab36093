// The chat lines a client keeps: a bounded, persistent list in chunks. Appending a line copies
// only the last chunk (at most `CHUNK` lines) and the short list of chunks, never the whole
// chat, so a lecture where hundreds chat costs the same per line at the thousandth line as at
// the first. Every change returns a new list (the old one is untouched): the page re-renders
// when the list's identity changes, and a line that did not change keeps its identity, so its
// row is not drawn again.
import type { ChatMessage } from "@protocol/ChatMessage";

/** Lines per chunk: small enough to copy on every append, large enough to keep few chunks. */
export const CHUNK = 64;

export class ChatLog implements Iterable<ChatMessage> {
  /** Every chunk is full except possibly the last; none is empty. */
  private constructor(
    private readonly chunks: readonly (readonly ChatMessage[])[],
    /** Lines of the first chunk that were trimmed away (the chunk is shared, not copied). */
    private readonly start: number,
    /** The number of lines. */
    readonly length: number,
  ) {}

  static readonly empty = new ChatLog([], 0, 0);

  /** The line at `i` (0 is the oldest kept), or undefined outside the list. */
  at(i: number): ChatMessage | undefined {
    if (i < 0 || i >= this.length || !Number.isInteger(i)) return undefined;
    const g = i + this.start;
    return this.chunks[Math.floor(g / CHUNK)]![g % CHUNK];
  }

  /** The list with `m` added last, keeping the newest `keep` lines. The oldest line is trimmed
   * by moving the start of the first chunk; the chunk is dropped once all of it is gone. */
  push(m: ChatMessage, keep: number): ChatLog {
    const chunks = this.chunks.slice();
    const last = chunks[chunks.length - 1];
    if (last && last.length < CHUNK) chunks[chunks.length - 1] = [...last, m];
    else chunks.push([m]);
    let start = this.start;
    let length = this.length + 1;
    while (length > Math.max(keep, 0)) {
      start++;
      length--;
      if (start === chunks[0]!.length) {
        chunks.shift();
        start = 0;
      }
    }
    return new ChatLog(chunks, start, length);
  }

  /** The index of the line with chat offset `offset` (offsets ascend), or -1. */
  indexOfOffset(offset: number): number {
    let lo = 0;
    let hi = this.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const o = this.at(mid)!.offset;
      if (o === offset) return mid;
      if (o < offset) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** The list with line `i` replaced (copies one chunk). */
  with(i: number, m: ChatMessage): ChatLog {
    if (i < 0 || i >= this.length) return this;
    const g = i + this.start;
    const c = Math.floor(g / CHUNK);
    const chunk = this.chunks[c]!.slice();
    chunk[g % CHUNK] = m;
    const chunks = this.chunks.slice();
    chunks[c] = chunk;
    return new ChatLog(chunks, this.start, this.length);
  }

  *[Symbol.iterator](): Iterator<ChatMessage> {
    for (let i = 0; i < this.length; i++) yield this.at(i)!;
  }

  toArray(): ChatMessage[] {
    return [...this];
  }

  filter(keep: (m: ChatMessage) => boolean): ChatMessage[] {
    const out: ChatMessage[] = [];
    for (const m of this) if (keep(m)) out.push(m);
    return out;
  }

  find(test: (m: ChatMessage) => boolean): ChatMessage | undefined {
    for (const m of this) if (test(m)) return m;
    return undefined;
  }

  some(test: (m: ChatMessage) => boolean): boolean {
    return this.find(test) !== undefined;
  }

  /** Lines `start` to `end` (exclusive) as an array, as `Array.prototype.slice` counts them. */
  slice(start = 0, end = this.length): ChatMessage[] {
    const from = start < 0 ? Math.max(0, this.length + start) : Math.min(start, this.length);
    const to = end < 0 ? Math.max(0, this.length + end) : Math.min(end, this.length);
    const out: ChatMessage[] = [];
    for (let i = from; i < to; i++) out.push(this.at(i)!);
    return out;
  }

  map<T>(f: (m: ChatMessage, i: number) => T): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.length; i++) out.push(f(this.at(i)!, i));
    return out;
  }
}
