// One learner's or instructor's connection to a lecture room: fetches a ticket, says hello
// (resuming where the chat left off after a drop), applies what the node sends, and comes back
// by itself when the connection drops.
import type { ClientMsg } from "@protocol/ClientMsg";
import { CloseCodes } from "@protocol/CloseCodes";
import type { ErrorCode } from "@protocol/ErrorCode";
import type { ServerMsg } from "@protocol/ServerMsg";
import { ApiError, api } from "../api";
import { SUBPROTOCOL_MSGPACK, decodeServer, encodeClient, socketUrl } from "../wire";
import { Publisher, Viewer } from "./media";
import { ASK_AFTER_MS, ASK_AT_LEAST_EVERY_MS, SeatNameRequests } from "./names";
import { type Numbered, Outbox } from "./outbox";
import { PONG_WITHIN_MS, PROBE_EVERY_MS, WELCOME_WITHIN_MS, backoff, closeVerdict, liveBackoff } from "./policy";
import { type RoomState, type SeatIndex, applyOwnVote, applyServer, fromWelcome, isStaff } from "./state";
import { TabClaim } from "./tabs";

export type Status =
  | { kind: "connecting" }
  | { kind: "connected" }
  | { kind: "reconnecting"; retryAt: number | null }
  /** Another tab of this browser holds the room: this one waits for "continue here". */
  | { kind: "elsewhere" }
  /** Over: `left` after the Leave button, else a close code or the gate's refusal. */
  | { kind: "closed"; left: boolean; code: number | null; refusal: ApiError | null };

export class RoomConnection {
  state: RoomState | null = null;
  status: Status = { kind: "connecting" };
  private ws: WebSocket | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private leaving = false;
  private disposed = false;
  private listeners = new Set<() => void>();
  /** Commands sent and not yet acknowledged: sent again after every welcome. */
  private readonly outbox = new Outbox();
  /**
   * The latest command the node refused, with its code: the page puts what was typed (a chat
   * line, a nickname to call, an announcement) back where it was typed.
   */
  refused: { command: Numbered; code: ErrorCode } | null = null;
  /** A learner's questions about who sits where, and the seats its grid shows now. */
  private readonly names = new SeatNameRequests();
  private wanted: SeatIndex[] = [];
  private namesTimer: ReturnType<typeof setTimeout> | null = null;
  /** When the pending question was first due to be asked. */
  private namesDueSince = 0;
  /** When the node was last heard from on the current socket (local clock). */
  private heardAt = 0;
  /** Probes a quiet socket now and then: a network that drops sends no close. */
  private probeTimer: ReturnType<typeof setInterval> | null = null;
  /** Set from opening a socket until its welcome: a socket that never gets there is dropped. */
  private welcomeDeadline: ReturnType<typeof setTimeout> | null = null;
  /** Set while a probe waits for its `pong`: when it fires, the socket is taken as dead. */
  private probeDeadline: ReturnType<typeof setTimeout> | null = null;
  /** The browser says the network is back: try at once rather than at the next attempt. */
  private readonly onOnline = () => {
    if (this.disposed || this.status.kind === "closed") return;
    if (this.ws === null && this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
      void this.connect();
    } else if (this.status.kind === "connected") {
      this.probe();
    }
  };
  /** The browser says the network is gone: the socket is dead even if it has not noticed. */
  private readonly onOffline = () => {
    if (this.status.kind === "connected") this.drop();
  };
  /** The instructor's video as received here, and (for the instructor) as sent from here. */
  readonly viewer = new Viewer((m) => this.send(m), () => this.changed());
  readonly publisher = new Publisher((m) => this.send(m), () => this.changed());

  /** This browser's other tabs of the lecture step aside when this one connects. */
  private readonly tabs: TabClaim;

  constructor(readonly lecture: string) {
    this.tabs = new TabClaim(lecture, () => this.stepAside());
  }

  /** Another tab took the room: let go of it without coming back by itself. */
  private stepAside(): void {
    if (this.disposed || this.status.kind === "closed" || this.status.kind === "elsewhere") return;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = null;
      ws.onmessage = null;
      ws.onclose = null;
      ws.close(1000);
    }
    this.stopProbing();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.viewer.stop();
    if (this.publisher.camera) this.publisher.stop();
    this.status = { kind: "elsewhere" };
    this.changed();
  }

  /** Whether another tab holds the room (a method: the status changes across awaits). */
  private steppedAside(): boolean {
    return this.status.kind === "elsewhere";
  }

  /** "Continue here": take the room back (the other tab steps aside) and resume. */
  continueHere(): void {
    if (this.disposed || this.status.kind !== "elsewhere") return;
    this.attempt = 0;
    this.tabs.claim();
    void this.connect();
  }

  subscribe(f: () => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  private changed(): void {
    for (const f of this.listeners) f();
  }

  start(): void {
    if (typeof window !== "undefined") {
      window.addEventListener("online", this.onOnline);
      window.addEventListener("offline", this.onOffline);
    }
    this.tabs.claim();
    void this.connect();
  }

  /** Whether the lecture is live: then a lost connection is retried within a second or two. */
  private live(): boolean {
    return this.state?.phase.state === "live";
  }

  /** The wait before the next attempt. */
  private nextWait(): number {
    return (this.live() ? liveBackoff : backoff)(this.attempt++);
  }

  /** Sends a `ping` and gives the node `PONG_WITHIN_MS` to answer anything. */
  private probe(): void {
    if (this.probeDeadline || !this.send({ type: "ping", t: Date.now() })) return;
    const sentAt = Date.now();
    this.probeDeadline = setTimeout(() => {
      this.probeDeadline = null;
      if (this.heardAt < sentAt) this.drop();
    }, PONG_WITHIN_MS);
  }

  private stopProbing(): void {
    if (this.welcomeDeadline) clearTimeout(this.welcomeDeadline);
    this.welcomeDeadline = null;
    if (this.probeTimer) clearInterval(this.probeTimer);
    if (this.probeDeadline) clearTimeout(this.probeDeadline);
    this.probeTimer = null;
    this.probeDeadline = null;
  }

  /** Gives up on the current socket (dead without a close) and comes back like after a drop. */
  private drop(): void {
    const ws = this.ws;
    if (!ws || this.disposed) return;
    this.ws = null;
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    ws.close();
    this.stopProbing();
    this.viewer.stop();
    this.retry(this.nextWait());
  }

  /** Sends a message now, untracked (media signalling, reactions); false when not connected. */
  send(msg: ClientMsg): boolean {
    if (this.status.kind !== "connected" || !this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(encodeClient(msg));
    return true;
  }

  /**
   * Sends a command the person must not lose (a chat line, a seat, a moderation): numbered and
   * kept until the node acknowledges it, sent now if connected and again after a reconnect.
   * False only when too many wait already (the caller keeps what was typed).
   */
  command(msg: ClientMsg): boolean {
    const numbered = this.outbox.add(msg);
    if (!numbered) return false;
    if (this.status.kind === "connected" && this.ws?.readyState === WebSocket.OPEN) this.ws.send(encodeClient(numbered));
    this.changed();
    return true;
  }

  /**
   * The seats the grid shows now, most wanted first: a learner asks for the nicknames it lacks
   * once the view has been still for a moment, and now and then while it keeps moving (staff
   * know every occupant already).
   */
  wantNames(seats: SeatIndex[]): void {
    const changed = seats.length !== this.wanted.length || seats.some((s, i) => s !== this.wanted[i]);
    if (!changed && this.namesTimer) return;
    this.wanted = seats;
    const now = Date.now();
    if (this.namesTimer) {
      // Still moving: the question already due goes out in time, with the latest seats.
      if (now - this.namesDueSince >= ASK_AT_LEAST_EVERY_MS - ASK_AFTER_MS) return;
      clearTimeout(this.namesTimer);
    } else {
      this.namesDueSince = now;
    }
    this.namesTimer = setTimeout(() => {
      this.namesTimer = null;
      const state = this.state;
      if (!state || isStaff(state) || this.status.kind !== "connected") return;
      const ask = this.names.next(state, this.wanted, Date.now());
      if (ask.length > 0) this.send({ type: "seat_names", seats: ask });
    }, ASK_AFTER_MS);
  }

  /**
   * Chat lines typed here and not yet acknowledged, oldest first; `offline` while there is no
   * connection to send them on (they go, once each, after the next welcome).
   */
  unsentChat(): { id: number; text: string; question: boolean; offline: boolean }[] {
    const offline = this.status.kind !== "connected";
    return this.outbox.unsentChat().map((line) => ({ ...line, offline }));
  }

  /** The Leave button: the seat is freed at once and the node closes the connection. */
  leave(): void {
    this.leaving = true;
    if (!this.send({ type: "leave" })) {
      this.finish({ kind: "closed", left: true, code: null, refusal: null });
      return;
    }
    // The node closes with 1000; don't wait on it forever.
    this.timer = setTimeout(() => this.ws?.close(1000), 3000);
  }

  dispose(): void {
    this.disposed = true;
    if (typeof window !== "undefined") {
      window.removeEventListener("online", this.onOnline);
      window.removeEventListener("offline", this.onOffline);
    }
    this.stopProbing();
    this.tabs.close();
    if (this.publisher.live) this.publisher.stop();
    this.viewer.stop();
    if (this.timer) clearTimeout(this.timer);
    if (this.namesTimer) clearTimeout(this.namesTimer);
    this.ws?.close(1000);
    this.ws = null;
    this.listeners.clear();
  }

  /** Clears the called-on notice (the person dismissed it). */
  dismissCall(): void {
    if (this.state) {
      this.state = { ...this.state, calledOnYou: null };
      this.changed();
    }
  }

  /** Media signalling goes to the peer connections, not to the room's state. */
  private media(msg: ServerMsg): boolean {
    switch (msg.type) {
      case "media_config":
        this.viewer.configure(msg.ice_servers);
        this.publisher.configure(msg.ice_servers);
        return true;
      case "media_offer":
        void this.viewer.offer(msg.sdp);
        return true;
      case "media_answer":
        void this.publisher.answer(msg.sdp);
        return true;
      case "media_candidate":
        void (this.publisher.live ? this.publisher.candidate(msg.candidate) : this.viewer.candidate(msg.candidate));
        return true;
      case "media_stopped":
        this.viewer.stop();
        return true;
      default:
        return false;
    }
  }

  private finish(status: Status): void {
    this.status = status;
    this.stopProbing();
    if (status.kind === "closed" || status.kind === "elsewhere") {
      this.viewer.stop();
      if (this.publisher.camera) this.publisher.stop();
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.changed();
  }

  private async connect(): Promise<void> {
    if (this.disposed) return;
    this.status = this.state ? { kind: "reconnecting", retryAt: null } : { kind: "connecting" };
    this.changed();
    let ticket;
    try {
      ticket = await api.ticket(this.lecture);
    } catch (e) {
      if (this.disposed || this.steppedAside()) return;
      if (e instanceof ApiError && e.status !== 0 && e.status !== 429 && e.status < 500) {
        this.finish({ kind: "closed", left: false, code: null, refusal: e });
      } else {
        this.retry(this.nextWait());
      }
      return;
    }
    // Another tab took the room while the ticket was on its way.
    if (this.disposed || this.steppedAside()) return;
    const ws = new WebSocket(socketUrl(ticket.websocket), [SUBPROTOCOL_MSGPACK]);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.welcomeDeadline = setTimeout(() => {
      this.welcomeDeadline = null;
      if (this.ws === ws && this.status.kind !== "connected") this.drop();
    }, WELCOME_WITHIN_MS);
    ws.onopen = () => {
      const s = this.state;
      ws.send(
        encodeClient({
          type: "hello",
          ticket: ticket.ticket,
          // After a fork (the node ran on alone), from where the shared stream was left.
          resume: s ? (s.forkOf ?? { epoch: s.epoch, offset: s.lastOffset }) : undefined,
        }),
      );
    };
    ws.onmessage = (ev: MessageEvent) => {
      this.heardAt = Date.now();
      if (!(ev.data instanceof ArrayBuffer)) return;
      const msg = decodeServer(ev.data);
      if (!msg) return;
      if (this.media(msg)) return;
      const now = Date.now();
      let settled: ReturnType<Outbox["settle"]>;
      if (msg.type === "ack") settled = this.outbox.settle(msg.id);
      else if (msg.type === "error" && msg.id != null) {
        settled = this.outbox.settle(msg.id);
        if (settled) this.refused = { command: settled, code: msg.code };
      }
      // Your own upvotes are known from how the node answered them.
      if (settled && this.state) this.state = applyOwnVote(this.state, settled, msg.type === "error" ? msg.code : null);
      if (msg.type === "update") this.names.forget([...(msg.taken ?? []), ...(msg.freed ?? [])]);
      if (msg.type === "welcome") {
        this.names.reset();
        this.state = fromWelcome(msg, now, this.state);
        this.status = { kind: "connected" };
        this.attempt = 0;
        this.stopProbing();
        this.probeTimer = setInterval(() => {
          if (Date.now() - this.heardAt >= PROBE_EVERY_MS) this.probe();
        }, PROBE_EVERY_MS);
        // What was not acknowledged goes again, in order; the room applies each number once.
        for (const numbered of this.outbox.unacked()) ws.send(encodeClient(numbered));
        // The node forgot this connection's peer connections: send again, and wait for a new
        // offer to view.
        this.viewer.stop();
        if (this.publisher.camera) void this.publisher.connect();
      } else if (this.state) {
        this.state = applyServer(this.state, msg, now);
      }
      if (this.state?.needsResync) {
        // A chat event went missing: come back at once and get it replayed.
        this.state = { ...this.state, needsResync: false };
        ws.close(1000);
      }
      this.changed();
    };
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws || this.disposed) return;
      this.ws = null;
      this.stopProbing();
      if (ev.code === CloseCodes.Replaced && !this.leaving) {
        // The same person connected again elsewhere (another browser or device): wait for
        // "continue here" rather than take the room back and be taken it from in turn.
        this.finish({ kind: "elsewhere" });
        return;
      }
      const verdict = closeVerdict(ev.code, this.attempt, this.leaving, Math.random, this.live());
      if (verdict.kind === "left") this.finish({ kind: "closed", left: true, code: ev.code, refusal: null });
      else if (verdict.kind === "terminal") this.finish({ kind: "closed", left: false, code: verdict.code, refusal: null });
      else {
        this.attempt++;
        this.retry(verdict.delayMs);
      }
    };
  }

  private retry(delay: number): void {
    this.status = { kind: "reconnecting", retryAt: Date.now() + delay };
    this.changed();
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, delay);
  }
}
