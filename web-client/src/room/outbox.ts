// Commands this client sent and the node has not acknowledged yet (docs/protocol.md,
// "Acknowledgements"): each is numbered, kept until its `ack` or its `error`, and sent again,
// in order, after every welcome — the room applies a number once, so nothing typed is lost
// across a dropped connection and nothing is doubled. Pure: no socket, no timer.
import type { ClientMsg } from "@protocol/ClientMsg";

/** A command with the number the node acknowledges it by. */
export type Numbered = ClientMsg & { id: number };

/** At most this many commands wait unacknowledged; the room remembers twice as many. */
export const MAX_UNACKED = 32;

export class Outbox {
  private next: number;
  private waiting = new Map<number, Numbered>();

  /** `start`: the first number (a random one keeps two tabs of one person apart). */
  constructor(start: number = Math.floor(Math.random() * 2 ** 40) + 1) {
    this.next = start;
  }

  /** Numbers `msg` and keeps it; null when too many wait already (the caller keeps the text). */
  add(msg: ClientMsg): Numbered | null {
    if (this.waiting.size >= MAX_UNACKED) return null;
    const numbered = { ...msg, id: this.next++ } as Numbered;
    this.waiting.set(numbered.id, numbered);
    return numbered;
  }

  /** The node took command `id` (`ack`) or refused it (`error` with its id): it is done. */
  settle(id: number): Numbered | undefined {
    const done = this.waiting.get(id);
    this.waiting.delete(id);
    return done;
  }

  /** Everything still waiting, oldest first: what to send again after a welcome. */
  unacked(): Numbered[] {
    return [...this.waiting.values()];
  }

  /** Chat lines still waiting, to show as not yet sent. */
  unsentChat(): { id: number; text: string; question: boolean }[] {
    const out = [];
    for (const m of this.waiting.values()) if (m.type === "chat") out.push({ id: m.id, text: m.text, question: m.question });
    return out;
  }
}
