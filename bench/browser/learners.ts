// The class around the two browsers: N learners as plain WebSocket connections from Node,
// speaking the room's protocol with the web client's own codec (web-client/src/wire.ts). Each
// enters with a ticket minted by `room-server mint-ticket` with the node's secret (as the gate
// would), then the driver makes them chat and react at the rates asked, learners in turn.
// They read everything the node sends (a learner that stops reading would be disconnected as
// slow) but decode only what they need: the welcome.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { SUBPROTOCOL_MSGPACK, decodeServer, encodeClient } from "../../web-client/src/wire";

const run = promisify(execFile);

export interface LoadOptions {
  /** The room-server binary (for `mint-ticket`). */
  bin: string;
  secret: string;
  lecture: string;
  /** The node's address, `127.0.0.1:port`. */
  host: string;
  learners: number;
}

export class LoadLearner {
  /** Frames received since the welcome. */
  frames = 0;
  closed: number | null = null;
  constructor(
    readonly ws: WebSocket,
    readonly emotions: string[],
  ) {
    ws.addEventListener("message", () => this.frames++);
    ws.addEventListener("close", (e) => (this.closed = e.code));
  }

  send(msg: Parameters<typeof encodeClient>[0]): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(encodeClient(msg));
  }
}

async function mint(o: LoadOptions, i: number): Promise<string> {
  const { stdout } = await run(o.bin, [
    "mint-ticket",
    "--ticket-secret",
    o.secret,
    "--lecture",
    o.lecture,
    "--user",
    `bench-learner-${i}`,
    "--nickname",
    `受講者${i}`,
    "--ttl-secs",
    "3600",
  ]);
  return stdout.trim();
}

async function connect(o: LoadOptions, ticket: string): Promise<LoadLearner> {
  if (typeof WebSocket === "undefined") {
    throw new Error("no WebSocket in this Node: run with NODE_OPTIONS=--experimental-websocket (Node 20)");
  }
  const ws = new WebSocket(`ws://${o.host}/ws/lectures/${o.lecture}`, [SUBPROTOCOL_MSGPACK]);
  ws.binaryType = "arraybuffer";
  const emotions = await new Promise<string[]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no welcome within 30 s")), 30_000);
    ws.addEventListener("open", () => ws.send(encodeClient({ type: "hello", ticket })));
    ws.addEventListener("error", () => reject(new Error("a learner's socket failed")));
    ws.addEventListener("close", (e) => reject(new Error(`a learner was closed with ${e.code} before its welcome`)));
    const first = (ev: MessageEvent) => {
      const msg = decodeServer(ev.data as ArrayBuffer);
      if (msg?.type !== "welcome") return;
      clearTimeout(timer);
      ws.removeEventListener("message", first);
      resolve(msg.lecture.emotions.map((e) => e.key));
    };
    ws.addEventListener("message", first);
  });
  return new LoadLearner(ws, emotions);
}

/** Mints the tickets (a few at a time) and connects every learner. */
export async function enterAll(o: LoadOptions): Promise<LoadLearner[]> {
  const tickets: string[] = new Array(o.learners);
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < o.learners) {
        const i = next++;
        tickets[i] = await mint(o, i);
      }
    }),
  );
  const learners: LoadLearner[] = [];
  // In batches, as a class trickles in: the node's connect rate is not what is measured.
  for (let i = 0; i < tickets.length; i += 25) {
    learners.push(...(await Promise.all(tickets.slice(i, i + 25).map((t) => connect(o, t)))));
  }
  return learners;
}

export interface Sent {
  chats: number;
  questions: number;
  reactions: number;
  /** The text of the last chat line sent. */
  lastText: string | null;
}

/**
 * Makes the learners chat at `chatRate` lines a second (one in `questionEvery` a question) and
 * react at `reactionRate` presses a second, in turn, for `seconds`. Paced against the clock, so
 * a late timer catches up instead of lowering the rate.
 */
export async function drive(
  learners: LoadLearner[],
  opts: { chatRate: number; reactionRate: number; seconds: number; questionEvery: number },
): Promise<Sent> {
  const sent: Sent = { chats: 0, questions: 0, reactions: 0, lastText: null };
  const start = performance.now();
  let chatter = 0;
  let reactor = Math.floor(learners.length / 2);
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const elapsed = (performance.now() - start) / 1000;
      const until = Math.min(elapsed, opts.seconds);
      while (sent.chats < Math.floor(until * opts.chatRate)) {
        const who = learners[chatter++ % learners.length]!;
        const n = sent.chats + 1;
        const question = n % opts.questionEvery === 0;
        const text = `${question ? "質問: " : ""}ベンチマークの発言 ${n} です。少し長めの文で折り返しも試します。`;
        who.send({ type: "chat", text, question });
        sent.chats = n;
        if (question) sent.questions++;
        sent.lastText = text;
      }
      while (sent.reactions < Math.floor(until * opts.reactionRate)) {
        const who = learners[reactor++ % learners.length]!;
        who.send({ type: "react", emotion: who.emotions[sent.reactions % who.emotions.length]! });
        sent.reactions++;
      }
      if (elapsed >= opts.seconds) {
        clearInterval(tick);
        resolve();
      }
    }, 10);
  });
  return sent;
}

export function leaveAll(learners: LoadLearner[]): void {
  for (const l of learners) l.ws.close(1000);
}
