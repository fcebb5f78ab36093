'use strict';

// Socket.IO peer server for the load generator: the lecture room's chat,
// reactions and seats, written the plain way. See README.md for the contract.

const http = require('node:http');
const { parseArgs } = require('node:util');
const { Server } = require('socket.io');

const EMOTIONS = new Set(['good', 'i_see', 'lost', 'applause', 'slower']);
const CHAT_MAX_CHARS = 500;
const BUCKET_SIZE = 10;
const REFILL_MS = 200;
const BURST_MS = 250;

const { values: opts } = parseArgs({
  options: {
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    redis: { type: 'string' },
    lecture: { type: 'string', default: 'bench' },
    rows: { type: 'string', default: '100' },
    cols: { type: 'string', default: '100' },
    'node-id': { type: 'string', default: 'a' },
  },
});

const port = Number(opts.port);
const rows = Number(opts.rows);
const cols = Number(opts.cols);
const lecture = opts.lecture;
const nodeId = opts['node-id'];
if (opts.port === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
  fail('--port P is required (0 picks a free port)');
}
if (!Number.isInteger(rows) || rows < 1 || !Number.isInteger(cols) || cols < 1) {
  fail('--rows and --cols must be positive integers');
}

function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

function log(message) {
  process.stderr.write(`[socketio ${nodeId}] ${message}\n`);
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const isName = (v) => typeof v === 'string' && v.length > 0;
const seatKey = (row, col) => `${row}:${col}`;
const parseSeat = (key) => key.split(':').map(Number);

// ---- Seats: who sits where. Both stores answer the same three questions. ----

// take() → { result: 'ok', freed: 'r:c' | null } | { result: 'same', user, nickname } | { result: 'taken' }
// leave() → the freed 'r:c', or null
// all() → [[row, col, user, nickname], ...]

class MemorySeats {
  constructor() {
    this.seats = new Map(); // 'r:c' → { user, nickname }
    this.seatOf = new Map(); // user → 'r:c'
  }

  async take(user, nickname, row, col) {
    const key = seatKey(row, col);
    const holder = this.seats.get(key);
    if (holder) {
      return holder.user === user ? { result: 'same', ...holder } : { result: 'taken' };
    }
    const freed = this.seatOf.get(user) ?? null;
    if (freed !== null) this.seats.delete(freed);
    this.seats.set(key, { user, nickname });
    this.seatOf.set(user, key);
    return { result: 'ok', freed };
  }

  async leave(user) {
    const key = this.seatOf.get(user);
    if (key === undefined) return null;
    this.seatOf.delete(user);
    this.seats.delete(key);
    return key;
  }

  async all() {
    const out = [];
    for (const [key, { user, nickname }] of this.seats) out.push([...parseSeat(key), user, nickname]);
    return out;
  }
}

// Seats in two hashes: seats:<lecture> 'r:c' → JSON [user, nickname] and
// seat_of:<lecture> user → 'r:c'. Each change is one Lua script, so two
// learners racing for a seat from different processes get exactly one winner.
const TAKE_SEAT_LUA = `
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  if cjson.decode(cur)[1] == ARGV[2] then return {'same', cur} end
  return {'taken'}
end
local freed = ''
local prev = redis.call('HGET', KEYS[2], ARGV[2])
if prev then
  local held = redis.call('HGET', KEYS[1], prev)
  if held and cjson.decode(held)[1] == ARGV[2] then
    redis.call('HDEL', KEYS[1], prev)
    freed = prev
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
return {'ok', freed}
`;

const LEAVE_SEAT_LUA = `
local seat = redis.call('HGET', KEYS[2], ARGV[1])
if not seat then return false end
redis.call('HDEL', KEYS[2], ARGV[1])
local held = redis.call('HGET', KEYS[1], seat)
if held and cjson.decode(held)[1] == ARGV[1] then
  redis.call('HDEL', KEYS[1], seat)
  return seat
end
return false
`;

class RedisSeats {
  constructor(client) {
    this.client = client;
    this.seatsKey = `seats:${lecture}`;
    this.seatOfKey = `seat_of:${lecture}`;
  }

  async take(user, nickname, row, col) {
    const reply = await this.client.takeSeat(
      this.seatsKey, this.seatOfKey, seatKey(row, col), user, JSON.stringify([user, nickname]));
    if (reply[0] === 'same') {
      const [holder, holderNickname] = JSON.parse(reply[1]);
      return { result: 'same', user: holder, nickname: holderNickname };
    }
    if (reply[0] === 'taken') return { result: 'taken' };
    return { result: 'ok', freed: reply[1] || null };
  }

  async leave(user) {
    return (await this.client.leaveSeat(this.seatsKey, this.seatOfKey, user)) || null;
  }

  async all() {
    const hash = await this.client.hGetAll(this.seatsKey);
    return Object.entries(hash).map(([key, value]) => [...parseSeat(key), ...JSON.parse(value)]);
  }
}

async function connectRedis(url) {
  const { createClient, defineScript } = require('redis');
  const script = (numberOfKeys, source) => defineScript({
    NUMBER_OF_KEYS: numberOfKeys,
    SCRIPT: source,
    parseCommand(parser, ...args) {
      args.slice(0, numberOfKeys).forEach((key) => parser.pushKey(key));
      parser.push(...args.slice(numberOfKeys));
    },
    transformReply: (reply) => reply,
  });
  const client = createClient({
    url,
    scripts: { takeSeat: script(2, TAKE_SEAT_LUA), leaveSeat: script(2, LEAVE_SEAT_LUA) },
  });
  const sub = client.duplicate();
  for (const c of [client, sub]) c.on('error', (err) => log(`redis: ${err.message}`));
  await Promise.all([client.connect(), sub.connect()]);
  return { client, sub };
}

// ---- The server ----

async function main() {
  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    transports: ['websocket'],
    serveClient: false,
    perMessageDeflate: false,
  });

  let redis = null;
  let seats;
  if (opts.redis) {
    const { createAdapter } = require('@socket.io/redis-adapter');
    redis = await connectRedis(opts.redis);
    io.adapter(createAdapter(redis.client, redis.sub));
    seats = new RedisSeats(redis.client);
  } else {
    seats = new MemorySeats();
  }

  // Seat operations are asynchronous with Redis; shutdown waits for them.
  const pending = new Set();
  const track = (command, socket, work) => {
    const p = work().catch((err) => {
      log(`${command}: ${err.message}`);
      if (socket.connected) socket.emit('error', { code: 'internal', command });
    }).finally(() => pending.delete(p));
    pending.add(p);
  };

  const room = io.to(lecture);
  const emitSeat = (row, col, user, nickname) => room.emit('seat', { row, col, user, nickname });
  const emitFreed = (key) => {
    if (key) {
      const [row, col] = parseSeat(key);
      emitSeat(row, col, null, null);
    }
  };

  // Reactions accepted on this node, broadcast every tick when there were any.
  let counts = {};
  let accepted = 0;
  const burstTimer = setInterval(() => {
    if (accepted === 0) return;
    room.emit('burst', { counts });
    counts = {};
    accepted = 0;
  }, BURST_MS);

  io.use((socket, next) => {
    const auth = socket.handshake.auth;
    if (!isObject(auth) || !isName(auth.user) || !isName(auth.nickname) || !isName(auth.lecture)) {
      return next(new Error('bad_auth'));
    }
    if (auth.lecture !== lecture) return next(new Error('unknown_lecture'));
    next();
  });

  io.on('connection', (socket) => {
    const { user, nickname } = socket.handshake.auth;
    const bucket = { tokens: BUCKET_SIZE, at: Date.now() };
    const reject = (code, command) => socket.emit('error', { code, command });

    socket.on('chat', (payload) => {
      if (!isObject(payload) || typeof payload.text !== 'string') return reject('bad_request', 'chat');
      const text = payload.text.trim();
      // Characters are code points; only long strings need counting.
      const chars = text.length <= CHAT_MAX_CHARS ? text.length : [...text].length;
      if (chars < 1 || chars > CHAT_MAX_CHARS) return reject('bad_chat', 'chat');
      room.emit('chat', { at: Date.now(), user, nickname, text });
    });

    socket.on('react', (payload) => {
      if (!isObject(payload) || typeof payload.emotion !== 'string') return reject('bad_request', 'react');
      const { emotion } = payload;
      if (!EMOTIONS.has(emotion)) return reject('bad_emotion', 'react');
      const now = Date.now();
      bucket.tokens = Math.min(BUCKET_SIZE, bucket.tokens + (now - bucket.at) / REFILL_MS);
      bucket.at = now;
      if (bucket.tokens < 1) return reject('rate_limited', 'react');
      bucket.tokens -= 1;
      counts[emotion] = (counts[emotion] ?? 0) + 1;
      accepted += 1;
    });

    socket.on('take_seat', (payload) => {
      if (!isObject(payload) || typeof payload.row !== 'number' || typeof payload.col !== 'number') {
        return reject('bad_request', 'take_seat');
      }
      const { row, col } = payload;
      if (!Number.isInteger(row) || !Number.isInteger(col) || row < 0 || row >= rows || col < 0 || col >= cols) {
        return reject('bad_seat', 'take_seat');
      }
      track('take_seat', socket, async () => {
        const outcome = await seats.take(user, nickname, row, col);
        if (outcome.result === 'taken') {
          reject('seat_taken', 'take_seat');
        } else if (outcome.result === 'same') {
          emitSeat(row, col, outcome.user, outcome.nickname);
        } else {
          emitSeat(row, col, user, nickname);
          emitFreed(outcome.freed);
        }
      });
    });

    socket.on('leave_seat', (payload) => {
      if (payload !== undefined && !isObject(payload)) return reject('bad_request', 'leave_seat');
      track('leave_seat', socket, async () => emitFreed(await seats.leave(user)));
    });

    socket.on('disconnect', () => {
      track('disconnect', socket, async () => emitFreed(await seats.leave(user)));
    });

    // Join the room first, then read the seats: a seat change made while the snapshot is read
    // (every await lets other handlers run) is then delivered to this socket too. Room events
    // may reach the socket before its welcome, some already in its snapshot and some (made
    // after the read, before the emit) not: each says a seat's whole state, so a client lays
    // them over the snapshot in order (the load generator does).
    track('connect', socket, async () => {
      socket.join(lecture);
      const snapshot = await seats.all();
      if (!socket.connected) return;
      const present = io.of('/').adapter.rooms.get(lecture)?.size ?? 0;
      socket.emit('welcome', { user, seats: snapshot, present });
    });
  });

  await new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(port, opts.host, resolve);
  });
  process.stdout.write(`listening ${httpServer.address().port}\n`);
  log(`lecture ${lecture}, ${rows}x${cols} seats, ${redis ? `redis ${opts.redis}` : 'in memory'}`);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    clearInterval(burstTimer);
    // Disconnects every socket (freeing their seats) and closes the HTTP server.
    await io.close();
    await Promise.allSettled([...pending]);
    if (redis) await Promise.allSettled([redis.sub.close(), redis.client.close()]);
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  log(`fatal: ${err.stack || err}`);
  process.exit(1);
});
