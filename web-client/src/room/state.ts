// The room as this client sees it, and how each server message changes it. Pure functions:
// no sockets, no timers, no DOM — the unit tests drive them message by message.
import type { Announcement } from "@protocol/Announcement";
import type { CallInfo } from "@protocol/CallInfo";
import type { ChatEvent } from "@protocol/ChatEvent";
import type { ChatMessage } from "@protocol/ChatMessage";
import type { ErrorCode } from "@protocol/ErrorCode";
import type { LectureInfo } from "@protocol/LectureInfo";
import type { Meter } from "@protocol/Meter";
import type { MutedLearner } from "@protocol/MutedLearner";
import type { Phase } from "@protocol/Phase";
import type { QuestionVotes } from "@protocol/QuestionVotes";
import type { RaisedHand } from "@protocol/RaisedHand";
import type { ResumeFrom } from "@protocol/ResumeFrom";
import type { RoomUpdate } from "@protocol/RoomUpdate";
import type { Seat } from "@protocol/Seat";
import type { SeatChange } from "@protocol/SeatChange";
import type { ServerMsg } from "@protocol/ServerMsg";
import type { Welcome } from "@protocol/Welcome";
import type { You } from "@protocol/You";
import { ChatLog } from "./chatlog";
import { type History, emptyHistory, recordMeter, recordPresence } from "./history";

/** Chat lines kept in memory; older ones scroll away. */
export const CHAT_KEEP = 1000;
/** Meter chart: one bucket per this many milliseconds … */
export const METER_BUCKET_MS = 5_000;
/** … over this span. */
export const METER_SPAN_MS = 5 * 60_000;
/** How long a seat shows its last reaction, and learners see a burst. */
export const REACTION_SHOW_MS = 4_000;

/** A seat by its number, as on the wire: `row × cols + col`. */
export type SeatIndex = number;

export function seatIndex(seat: Seat, cols: number): SeatIndex {
  return seat.row * cols + seat.col;
}

export function seatAt(index: SeatIndex, cols: number): Seat {
  return { row: Math.floor(index / cols), col: index % cols };
}

/** Whether seat `i`'s bit is set in a bitmap of the wire (bit `i % 8`, least significant first, of byte `i / 8`). */
export function bit(bits: Uint8Array, i: SeatIndex): boolean {
  return ((bits[i >> 3] ?? 0) & (1 << (i & 7))) !== 0;
}

function setBit(bits: Uint8Array, i: SeatIndex, on: boolean): void {
  const byte = i >> 3;
  if (byte >= bits.length) return;
  bits[byte] = on ? bits[byte]! | (1 << (i & 7)) : bits[byte]! & ~(1 << (i & 7));
}

/** A copy of a bitmap the node sent, sized for the grid (a decoded bitmap may be a view into its frame). */
function bitmap(from: Uint8Array, rows: number, cols: number): Uint8Array {
  const bits = new Uint8Array(Math.ceil((rows * cols) / 8));
  bits.set(from.subarray(0, bits.length));
  return bits;
}

export interface MeterBucket {
  /** Start of the bucket, server milliseconds. */
  start: number;
  counts: Record<string, number>;
}

export interface RoomState {
  you: You;
  lecture: LectureInfo;
  phase: Phase;
  epoch: number;
  /** Last chat offset applied. */
  lastOffset: number;
  /** While the node runs the room on alone (Redis away): where the shared chat stream was
   * left. The next connection resumes from there, and everything said since comes back. */
  forkOf: ResumeFrom | null;
  /** Chat messages in offset order (deletions and answers are applied to them), the newest
   * `CHAT_KEEP`; a new list on every change, an unchanged line keeps its identity. */
  chat: ChatLog;
  /** The grid: seats taken, and those held for someone away (the wire's bitmaps). */
  occupied: Uint8Array;
  away: Uint8Array;
  /**
   * Nicknames known, by seat: every occupant's for staff; for a learner, those it asked for
   * (`seat_names`) and was not told to forget since.
   */
  names: Map<SeatIndex, string>;
  yourSeat: Seat | null;
  present: number;
  call: CallInfo | null;
  announcement: Announcement | null;
  mutedUntil: number | null;
  /** Set when the instructor calls on you; cleared when dismissed or the call ends. */
  calledOnYou: { by: string; at: number } | null;
  /** Recent aggregated reactions of the room (learners' view), newest last. */
  bursts: { at: number; counts: Record<string, number> }[];
  /** Staff only: reactions per bucket for the chart, and the latest rolling and total counts. */
  meter: { buckets: MeterBucket[]; rolling: Record<string, number>; totals: Record<string, number> };
  /** Staff only: each seat's latest reaction. */
  seatReactions: Map<SeatIndex, { emotion: string; at: number }>;
  degraded: boolean;
  lastError: { code: ErrorCode; message: string; command: string | null; at: number } | null;
  /** Server clock minus local clock, milliseconds. */
  clockOffset: number;
  /** A chat event arrived past a gap: the connection should resume to fetch what is missing. */
  needsResync: boolean;
  /** Staff only: what the console saw over the lecture (heat view, summary after the end). */
  history: History;
  /** Staff only: the raised hands, first raised first. */
  hands: RaisedHand[];
  /** How many hands are raised. */
  handCount: number;
  /** When your hand went up (learners), or null while it is down. */
  yourHand: number | null;
  /** Upvotes by question offset (questions without votes are absent). */
  votes: Map<number, number>;
  /** The questions you upvoted (learners). */
  yourVotes: Set<number>;
  /** Staff only: the learners muted now, soonest end first. */
  muted: MutedLearner[];
}

/** The state a welcome describes. `previous` is kept when the welcome replays what was missed. */
export function fromWelcome(w: Welcome, localNow: number, previous: RoomState | null): RoomState {
  const { rows, cols } = w.lecture;
  const names = new Map<SeatIndex, string>();
  for (const s of w.seats ?? []) names.set(seatIndex(s.seat, cols), s.occupant.nickname);
  const kept = keptChat(w, previous);
  let state: RoomState = {
    you: w.you,
    lecture: w.lecture,
    phase: w.phase,
    epoch: w.epoch,
    lastOffset: kept.lastOffset,
    // A node of an older version leaves it out.
    forkOf: w.fork_of ?? null,
    chat: kept.chat,
    occupied: bitmap(w.occupancy.occupied, rows, cols),
    away: bitmap(w.occupancy.away, rows, cols),
    names,
    yourSeat: w.your_seat,
    present: w.present,
    call: w.call,
    announcement: w.announcement,
    mutedUntil: w.muted_until,
    calledOnYou: calledInWelcome(w, previous),
    bursts: [],
    meter: previous?.meter ?? { buckets: [], rolling: {}, totals: {} },
    seatReactions: new Map(),
    // A node running the room on alone says so in its welcomes too (after its `service`).
    degraded: w.fork_of != null,
    lastError: null,
    clockOffset: w.server_time - localNow,
    needsResync: false,
    history: recordPresence(previous?.history ?? emptyHistory(), [...names.values()], w.present),
    hands: w.hands ?? [],
    handCount: w.hand_count ?? 0,
    yourHand: w.your_hand ?? null,
    votes: applyVotes(new Map(), w.votes ?? []),
    yourVotes: new Set(w.your_votes ?? []),
    muted: w.muted ?? [],
  };
  for (const event of w.chat) state = applyChatEvent(state, event, w.replay === "snapshot");
  // A snapshot's offsets may end before the stream's; a replay with a gap is fetched again.
  if (w.last_offset > state.lastOffset && !state.needsResync) state = { ...state, lastOffset: w.last_offset };
  return state;
}

/**
 * What of the chat shown before a welcome stays. A `missed` replay of the same generation
 * appends to it. Back in the shared stream after a fork, the replay starts where the fork left
 * it: what the fork showed past that comes again with the shared offsets. A fork's own first
 * welcome (a snapshot of the stream it left) keeps what was shown up to there.
 */
function keptChat(w: Welcome, previous: RoomState | null): { chat: ChatLog; lastOffset: number } {
  const none = { chat: ChatLog.empty, lastOffset: 0 };
  if (previous === null) return none;
  if (w.replay === "missed" && previous.epoch === w.epoch) return { chat: previous.chat, lastOffset: previous.lastOffset };
  const left = (w.replay === "missed" ? previous.forkOf : w.fork_of) ?? null;
  if (left === null || left.epoch !== (w.replay === "missed" ? w.epoch : previous.epoch)) return none;
  const upTo = Math.min(left.offset, previous.lastOffset);
  let chat = ChatLog.empty;
  for (const m of previous.chat) if (m.offset <= upTo) chat = chat.push(m, CHAT_KEEP);
  return { chat, lastOffset: upTo };
}

/**
 * The called-on notice after a welcome. A call naming you that is still waiting for your answer
 * is shown even though its `called_on_you` never reached you (you were away when it was made,
 * or you just came in); one you already dismissed stays dismissed.
 */
function calledInWelcome(w: Welcome, previous: RoomState | null): RoomState["calledOnYou"] {
  const call = w.call;
  if (!call || call.user !== w.you.user) return null;
  if (previous?.calledOnYou) return previous.calledOnYou;
  if (call.answer !== null) return null;
  const dismissed = previous !== null && previous.call?.user === call.user && previous.call.at === call.at;
  return dismissed ? null : { by: call.by, at: call.at };
}

function updateMessage(chat: ChatLog, target: number, change: Partial<ChatMessage>): ChatLog {
  const i = chat.indexOfOffset(target);
  if (i < 0) return chat;
  return chat.with(i, { ...chat.at(i)!, ...change });
}

/**
 * Applies one chat event. Events at or below the last offset are duplicates and change
 * nothing; an event past a gap is left for the resync it flags, which replays everything after
 * the last offset held, the missing events and this one (a snapshot in a welcome may start
 * anywhere, so `fromSnapshot` skips the gap check).
 */
export function applyChatEvent(state: RoomState, event: ChatEvent, fromSnapshot = false): RoomState {
  if (event.offset <= state.lastOffset) return state;
  if (!fromSnapshot && event.offset !== state.lastOffset + 1) {
    return state.needsResync ? state : { ...state, needsResync: true };
  }
  let chat = state.chat;
  switch (event.kind) {
    case "message": {
      const { kind: _kind, ...message } = event;
      chat = chat.push(message, CHAT_KEEP);
      break;
    }
    case "deleted":
      chat = updateMessage(chat, event.target, { deleted: true, text: "" });
      break;
    case "answered":
      chat = updateMessage(chat, event.target, { answered: true });
      break;
  }
  return { ...state, chat, lastOffset: event.offset };
}

/** Vote counts set to the node's: absolute counts, 0 meaning none left. */
function applyVotes(votes: Map<number, number>, counts: QuestionVotes[]): Map<number, number> {
  if (counts.length === 0) return votes;
  const next = new Map(votes);
  for (const { offset, votes: n } of counts) {
    if (n > 0) next.set(offset, n);
    else next.delete(offset);
  }
  return next;
}

/** The staff's hand queue after a tick: lowered hands leave it, raised ones join its end. */
function applyHands(hands: RaisedHand[], lowered: string[], raised: RaisedHand[]): RaisedHand[] {
  if (lowered.length === 0 && raised.length === 0) return hands;
  const gone = new Set(lowered);
  return [...hands.filter((h) => !gone.has(h.user)), ...raised];
}

/**
 * Your own vote, once the node took (`ack`) or refused your `upvote` or `unvote`: an accepted
 * upvote or an `already_voted` refusal means you voted; an accepted unvote that you did not.
 */
export function applyOwnVote(
  state: RoomState,
  cmd: { type: string; offset?: number },
  refused: ErrorCode | null,
): RoomState {
  if ((cmd.type !== "upvote" && cmd.type !== "unvote") || cmd.offset === undefined) return state;
  const voted = cmd.type === "upvote" ? refused === null || refused === "already_voted" : refused !== null;
  if (state.yourVotes.has(cmd.offset) === voted) return state;
  const yourVotes = new Set(state.yourVotes);
  if (voted) yourVotes.add(cmd.offset);
  else yourVotes.delete(cmd.offset);
  return { ...state, yourVotes };
}

/** Seat changes as staff get them: each seat's occupant at the end of the tick. */
function applySeatChanges(state: RoomState, changes: SeatChange[]): RoomState {
  const occupied = state.occupied.slice();
  const away = state.away.slice();
  const names = new Map(state.names);
  for (const { seat, occupant } of changes) {
    const i = seatIndex(seat, state.lecture.cols);
    setBit(occupied, i, occupant !== null);
    setBit(away, i, occupant?.away ?? false);
    if (occupant) names.set(i, occupant.nickname);
    else names.delete(i);
  }
  const seated = changes.flatMap((c) => (c.occupant ? [c.occupant.nickname] : []));
  return { ...state, occupied, away, names, history: recordPresence(state.history, seated, null) };
}

/**
 * Seat changes as learners get them: seat numbers, each list saying the seats' whole state at
 * the end of the tick, applied in the order freed, taken, away, back. A seat freed or taken by
 * someone new loses the nickname known for it.
 */
function applyGridChanges(state: RoomState, u: RoomUpdate): RoomState {
  const occupied = state.occupied.slice();
  const away = state.away.slice();
  let names = state.names;
  const lists: [SeatIndex[] | undefined, boolean, boolean, boolean][] = [
    [u.freed, false, false, true],
    [u.taken, true, false, true],
    [u.away, true, true, false],
    [u.back, true, false, false],
  ];
  for (const [seats, isOccupied, isAway, forget] of lists) {
    for (const i of seats ?? []) {
      setBit(occupied, i, isOccupied);
      setBit(away, i, isAway);
      if (forget && names.has(i)) {
        if (names === state.names) names = new Map(names);
        names.delete(i);
      }
    }
  }
  return { ...state, occupied, away, names };
}

function hasGridChanges(u: RoomUpdate): boolean {
  return [u.freed, u.taken, u.away, u.back].some((l) => l !== undefined && l.length > 0);
}

function addCounts(into: Record<string, number>, from: Record<string, number | undefined>): Record<string, number> {
  const out = { ...into };
  for (const [k, v] of Object.entries(from)) out[k] = (out[k] ?? 0) + (v ?? 0);
  return out;
}

function applyMeter(state: RoomState, m: Meter): RoomState {
  const start = Math.floor(m.at / METER_BUCKET_MS) * METER_BUCKET_MS;
  const buckets = state.meter.buckets.filter((b) => b.start > m.at - METER_SPAN_MS);
  const last = buckets[buckets.length - 1];
  if (last && last.start === start) {
    buckets[buckets.length - 1] = { start, counts: addCounts(last.counts, m.tally) };
  } else {
    buckets.push({ start, counts: addCounts({}, m.tally) });
  }
  const seatReactions = new Map(state.seatReactions);
  for (const r of m.seats) seatReactions.set(seatIndex(r.seat, state.lecture.cols), { emotion: r.emotion, at: m.at });
  for (const [i, r] of seatReactions) if (r.at <= m.at - REACTION_SHOW_MS) seatReactions.delete(i);
  return {
    ...state,
    meter: {
      buckets,
      rolling: addCounts({}, m.rolling),
      totals: addCounts({}, m.totals),
    },
    seatReactions,
    history: recordMeter(state.history, m, (s) => seatIndex(s, state.lecture.cols)),
  };
}

/** The state after `msg`, received at local time `localNow`. */
export function applyServer(state: RoomState, msg: ServerMsg, localNow: number): RoomState {
  const serverNow = localNow + state.clockOffset;
  switch (msg.type) {
    case "welcome":
      return fromWelcome(msg, localNow, state);
    case "lecture":
      return { ...state, lecture: msg.lecture };
    case "phase":
      return { ...state, phase: msg.phase };
    case "chat":
      return applyChatEvent(state, msg.event);
    case "update": {
      let next = state;
      if (msg.seats && msg.seats.length > 0) next = applySeatChanges(next, msg.seats);
      if (hasGridChanges(msg)) next = applyGridChanges(next, msg);
      if (msg.present !== undefined && msg.present !== null) {
        next = { ...next, present: msg.present, history: recordPresence(next.history, [], msg.present) };
      }
      if (msg.hand_count !== undefined && msg.hand_count !== null) next = { ...next, handCount: msg.hand_count };
      if (msg.hands_lowered?.length || msg.hands_raised?.length) {
        next = { ...next, hands: applyHands(next.hands, msg.hands_lowered ?? [], msg.hands_raised ?? []) };
      }
      if (msg.votes?.length) next = { ...next, votes: applyVotes(next.votes, msg.votes) };
      if (msg.burst && Object.keys(msg.burst).length > 0) {
        const bursts = next.bursts.filter((b) => b.at > serverNow - REACTION_SHOW_MS);
        bursts.push({ at: serverNow, counts: addCounts({}, msg.burst) });
        next = { ...next, bursts };
      }
      return next;
    }
    case "meter":
      return applyMeter(state, msg);
    case "call": {
      const stillYou = msg.current?.user === state.you.user;
      return { ...state, call: msg.current, calledOnYou: stillYou ? state.calledOnYou : null };
    }
    case "your_seat":
      return { ...state, yourSeat: msg.seat };
    case "seat_names": {
      const names = new Map(state.names);
      for (const { seat, nickname } of msg.seats) names.set(seat, nickname);
      return { ...state, names };
    }
    case "called_on_you":
      return { ...state, calledOnYou: { by: msg.by, at: msg.at } };
    case "announcement":
      return { ...state, announcement: msg.current };
    case "muted":
      return { ...state, mutedUntil: msg.until };
    case "muted_learners":
      return { ...state, muted: msg.muted };
    case "your_hand":
      return { ...state, yourHand: msg.raised_at };
    case "error":
      // A second upvote (a double click before the first was answered) is no failure: the
      // vote counts, and the connection marks it yours.
      if (msg.code === "already_voted") return state;
      return {
        ...state,
        lastError: { code: msg.code, message: msg.message, command: msg.command ?? null, at: localNow },
      };
    case "service":
      return { ...state, degraded: msg.degraded };
    case "pong":
      return { ...state, clockOffset: msg.server_time - localNow };
    case "ack":
      // Acknowledgements are the connection's outbox's (connection.ts), not the room's.
      return state;
    case "media_config":
    case "media_offer":
    case "media_answer":
    case "media_candidate":
    case "media_stopped":
      // Media signalling is for the peer connections (connection.ts), not the room's state.
      return state;
  }
}

/** Sum of the room's bursts during the last `REACTION_SHOW_MS`, by emotion. */
export function recentBursts(state: RoomState, localNow: number): Record<string, number> {
  const serverNow = localNow + state.clockOffset;
  let sum: Record<string, number> = {};
  for (const b of state.bursts) if (b.at > serverNow - REACTION_SHOW_MS) sum = addCounts(sum, b.counts);
  return sum;
}

/** Questions still waiting for an answer, oldest first. */
export function openQuestions(state: RoomState): ChatMessage[] {
  return state.chat.filter((m) => m.question && !m.answered && !m.deleted);
}

/** How the questions pane orders questions. */
export type QuestionOrder = "votes" | "time";

/**
 * The questions to show (not deleted), with their votes: by votes (most first, then oldest
 * first) or by time (oldest first). Answered ones stay, marked, after the open ones.
 */
export function questionList(state: RoomState, order: QuestionOrder): (ChatMessage & { votes: number })[] {
  const list = state.chat
    .filter((m) => m.question && !m.deleted)
    .map((m) => ({ ...m, votes: state.votes.get(m.offset) ?? 0 }));
  list.sort((a, b) => {
    if (a.answered !== b.answered) return a.answered ? 1 : -1;
    if (order === "votes" && a.votes !== b.votes) return b.votes - a.votes;
    return a.offset - b.offset;
  });
  return list;
}

/** Whether a learner is muted now, for the console's marker. */
export function mutedLearner(state: RoomState, user: string, localNow: number): MutedLearner | null {
  const serverNow = localNow + state.clockOffset;
  return state.muted.find((m) => m.user === user && m.until > serverNow) ?? null;
}

/** Whether the learner can chat now. */
export function isMuted(state: RoomState, localNow: number): boolean {
  return state.mutedUntil !== null && state.mutedUntil > localNow + state.clockOffset;
}

export function isStaff(state: RoomState): boolean {
  return state.you.role === "instructor" || state.you.role === "moderator";
}

/** Whether someone sits in a seat (or it is held for them). */
export function isTaken(state: RoomState, seat: Seat): boolean {
  return bit(state.occupied, seatIndex(seat, state.lecture.cols));
}

/** The meter's buckets over the chart's span, oldest first, empty buckets filled in. */
export function meterSeries(state: RoomState, localNow: number): MeterBucket[] {
  const serverNow = localNow + state.clockOffset;
  const end = Math.floor(serverNow / METER_BUCKET_MS) * METER_BUCKET_MS;
  const byStart = new Map(state.meter.buckets.map((b) => [b.start, b]));
  const out: MeterBucket[] = [];
  for (let start = end - METER_SPAN_MS + METER_BUCKET_MS; start <= end; start += METER_BUCKET_MS) {
    out.push(byStart.get(start) ?? { start, counts: {} });
  }
  return out;
}
