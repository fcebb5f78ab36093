// One room per browser at a time: a person's newer connection replaces the older one (the node
// closes it with 4112), so two tabs of the same lecture would take the room from each other.
// The tabs of one browser talk over a BroadcastChannel instead: the tab the person is using
// claims the lecture, and any other tab holding it steps aside at once, without a reconnect of
// its own, offering "continue here".

/** What a tab says to the browser's other tabs. */
export interface Claim {
  type: "claim";
  lecture: string;
  /** The claiming tab, so it ignores its own claims. */
  tab: string;
}

export const CHANNEL = "lecture-room-tabs";

export function isClaim(data: unknown): data is Claim {
  const c = data as Partial<Claim> | null;
  return typeof c === "object" && c !== null && c.type === "claim" && typeof c.lecture === "string" && typeof c.tab === "string";
}

/** A lecture's claim among the browser's tabs; `onTaken` runs when another tab claims it. */
export class TabClaim {
  readonly tab = Math.random().toString(36).slice(2) + Date.now().toString(36);
  private channel: BroadcastChannel | null = null;

  constructor(
    readonly lecture: string,
    private readonly onTaken: () => void,
  ) {
    if (typeof BroadcastChannel === "undefined") return;
    this.channel = new BroadcastChannel(CHANNEL);
    this.channel.onmessage = (ev: MessageEvent) => {
      if (isClaim(ev.data) && ev.data.lecture === this.lecture && ev.data.tab !== this.tab) this.onTaken();
    };
  }

  /** This tab holds the lecture now: the others step aside. */
  claim(): void {
    const claim: Claim = { type: "claim", lecture: this.lecture, tab: this.tab };
    this.channel?.postMessage(claim);
  }

  close(): void {
    this.channel?.close();
    this.channel = null;
  }
}
