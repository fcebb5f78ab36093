'use strict';

// Smoke test of the event contract: one node in memory, then two nodes sharing
// a redis-server started here. Every wait has a timeout; nothing sleeps.

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const net = require('node:net');
const path = require('node:path');
const { io } = require('socket.io-client');

const TIMEOUT_MS = 5000;
const SERVER = path.join(__dirname, 'server.js');
const REDIS_SERVER = process.env.REDIS_SERVER || 'redis-server';

// ---- helpers ----

function withTimeout(promise, what, ms = TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Resolves with the first line of `stream` matching `pattern`.
function waitForLine(child, stream, pattern, what) {
  return withTimeout(new Promise((resolve, reject) => {
    let buffer = '';
    const onData = (chunk) => {
      buffer += chunk;
      const lines = buffer.split('\n');
      buffer = lines.pop();
      for (const line of lines) {
        const m = line.match(pattern);
        if (m) {
          stream.off('data', onData);
          resolve(m);
          return;
        }
      }
    };
    stream.setEncoding('utf8');
    stream.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${what} exited early (${code})`)));
  }), what);
}

function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

async function stop(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return null;
  process.kill(child.pid, 'SIGTERM');
  return withTimeout(exited(child), `pid ${child.pid} to exit`);
}

async function startServer(args = []) {
  const child = spawn(process.execPath, [SERVER, '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr.resume(); // quiet; drained so it never blocks
  const [, port] = await waitForLine(child, child.stdout, /^listening (\d+)$/, 'server to listen');
  const extra = [];
  child.stdout.on('data', (d) => extra.push(d));
  return { child, url: `http://127.0.0.1:${port}`, stdoutAfterReady: extra };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function startRedis() {
  const port = await freePort();
  const child = spawn(REDIS_SERVER, [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr.resume();
  await waitForLine(child, child.stdout, /Ready to accept connections/, 'redis-server');
  child.stdout.resume();
  return { child, url: `redis://127.0.0.1:${port}/0` };
}

const clients = new Set();

// Connects a learner; resolves with { socket, welcome } once welcomed.
function connect(url, auth) {
  const socket = io(url, {
    transports: ['websocket'], auth, forceNew: true, reconnection: false,
  });
  clients.add(socket);
  return withTimeout(new Promise((resolve, reject) => {
    socket.once('welcome', (welcome) => resolve({ socket, welcome }));
    socket.once('connect_error', reject);
  }), `welcome for ${auth.user}`);
}

function learner(url, user, lecture = 'bench') {
  return connect(url, { user, nickname: `nick-${user}`, lecture });
}

function rejected(url, auth) {
  const socket = io(url, { transports: ['websocket'], auth, forceNew: true, reconnection: false });
  clients.add(socket);
  return withTimeout(new Promise((resolve, reject) => {
    socket.once('connect_error', (err) => resolve(err));
    socket.once('connect', () => reject(new Error('connected, expected connect_error')));
  }), 'connect_error');
}

// Resolves with the payload of the first `event` for which `match` holds.
function waitFor(socket, event, match = () => true, what = event) {
  return withTimeout(new Promise((resolve) => {
    const handler = (payload) => {
      if (match(payload)) {
        socket.off(event, handler);
        resolve(payload);
      }
    };
    socket.on(event, handler);
  }), what);
}

const errorOf = (socket, code, command) =>
  waitFor(socket, 'error', (e) => e.code === code && e.command === command, `error ${code}/${command}`);

const seatEvent = (socket, row, col, user) =>
  waitFor(socket, 'seat', (s) => s.row === row && s.col === col && s.user === user,
    `seat ${row}:${col} → ${user}`);

// Sums the bursts `socket` receives until `emotion` reaches `total`.
function burstsTotal(socket, emotion, total) {
  let sum = 0;
  return waitFor(socket, 'burst', (b) => {
    sum += b.counts[emotion] ?? 0;
    return sum >= total;
  }, `bursts totalling ${total} ${emotion}`).then(() => sum);
}

function closeClients() {
  for (const socket of clients) socket.close();
  clients.clear();
}

// ---- one node, in memory ----

describe('single node (in memory)', () => {
  let server;
  before(async () => { server = await startServer(['--lecture', 'bench', '--rows', '10', '--cols', '10']); });
  after(async () => {
    closeClients();
    const code = await stop(server?.child);
    assert.equal(code, 0, 'exits cleanly on SIGTERM');
    assert.equal(server.stdoutAfterReady.length, 0, 'nothing on stdout after "listening"');
  });

  test('connect is rejected without a valid auth payload or for another lecture', async () => {
    await rejected(server.url, { user: 'u', nickname: 'n' });
    await rejected(server.url, { user: 'u', nickname: 'n', lecture: 'other' });
    await rejected(server.url, { user: 42, nickname: 'n', lecture: 'bench' });
    await rejected(server.url, undefined);
  });

  test('welcome: user, seats and present', async () => {
    const a = await learner(server.url, 'w1');
    assert.deepEqual(a.welcome, { user: 'w1', seats: [], present: 1 });
    const b = await learner(server.url, 'w2');
    assert.equal(b.welcome.user, 'w2');
    assert.equal(b.welcome.present, 2);
    a.socket.close();
    b.socket.close();
  });

  test('chat is trimmed and broadcast to the room, sender included', async () => {
    const a = await learner(server.url, 'c1');
    const b = await learner(server.url, 'c2');
    const atA = waitFor(a.socket, 'chat');
    const atB = waitFor(b.socket, 'chat');
    const before = Date.now();
    a.socket.emit('chat', { text: '  hello  ' });
    for (const msg of await Promise.all([atA, atB])) {
      assert.equal(msg.user, 'c1');
      assert.equal(msg.nickname, 'nick-c1');
      assert.equal(msg.text, 'hello');
      assert.ok(typeof msg.at === 'number' && msg.at >= before - 1000);
    }
    const long = 'x'.repeat(500);
    const got = waitFor(b.socket, 'chat');
    a.socket.emit('chat', { text: long });
    assert.equal((await got).text, long);

    a.socket.emit('chat', { text: '   ' });
    await errorOf(a.socket, 'bad_chat', 'chat');
    a.socket.emit('chat', { text: 'x'.repeat(501) });
    await errorOf(a.socket, 'bad_chat', 'chat');
    a.socket.close();
    b.socket.close();
  });

  test('malformed payloads get bad_request and the server carries on', async () => {
    const { socket } = await learner(server.url, 'm1');
    const cases = [
      ['chat', 'hello'], ['chat', { text: 5 }], ['chat', null], ['chat'],
      ['react', ['good']], ['react', { emotion: 1 }],
      ['take_seat', { row: '1', col: 1 }], ['take_seat', 7], ['take_seat', {}],
      ['leave_seat', 'now'],
    ];
    for (const [event, ...args] of cases) {
      const err = errorOf(socket, 'bad_request', event);
      socket.emit(event, ...args);
      await err;
    }
    const chat = waitFor(socket, 'chat');
    socket.emit('chat', { text: 'still here' });
    assert.equal((await chat).text, 'still here');
    socket.close();
  });

  test('reactions: validation, bursts and the per-socket rate limit', async () => {
    const a = await learner(server.url, 'r1');
    const b = await learner(server.url, 'r2');
    a.socket.emit('react', { emotion: 'meh' });
    await errorOf(a.socket, 'bad_emotion', 'react');

    const burst = waitFor(b.socket, 'burst', (x) => x.counts.good === 2);
    a.socket.emit('react', { emotion: 'good' });
    b.socket.emit('react', { emotion: 'good' });
    assert.deepEqual((await burst).counts, { good: 2 });

    // 20 presses at once on a fresh bucket of 10; errors come back in order, so
    // the bad_emotion marker arrives after every rate_limited reply.
    const c = await learner(server.url, 'r3');
    let limited = 0;
    c.socket.on('error', (e) => { if (e.code === 'rate_limited' && e.command === 'react') limited += 1; });
    for (let i = 0; i < 20; i += 1) c.socket.emit('react', { emotion: 'applause' });
    c.socket.emit('react', { emotion: 'marker' });
    await errorOf(c.socket, 'bad_emotion', 'react');
    const acceptedPresses = 20 - limited;
    assert.ok(acceptedPresses >= 10 && acceptedPresses <= 12, `accepted ${acceptedPresses} of 20`);
    assert.equal(await burstsTotal(b.socket, 'applause', acceptedPresses), acceptedPresses);
    for (const x of [a, b, c]) x.socket.close();
  });

  test('seats: take, move, taken, same seat, bad seat, leave, disconnect', async () => {
    const a = await learner(server.url, 's1');
    const b = await learner(server.url, 's2');

    let seen = Promise.all([seatEvent(a.socket, 1, 2, 's1'), seatEvent(b.socket, 1, 2, 's1')]);
    a.socket.emit('take_seat', { row: 1, col: 2 });
    const [taken] = await seen;
    assert.deepEqual(taken, { row: 1, col: 2, user: 's1', nickname: 'nick-s1' });

    b.socket.emit('take_seat', { row: 1, col: 2 });
    await errorOf(b.socket, 'seat_taken', 'take_seat');

    seen = Promise.all([seatEvent(b.socket, 3, 4, 's1'), seatEvent(b.socket, 1, 2, null)]);
    a.socket.emit('take_seat', { row: 3, col: 4 });
    const [, freed] = await seen;
    assert.deepEqual(freed, { row: 1, col: 2, user: null, nickname: null });

    seen = seatEvent(a.socket, 3, 4, 's1');
    a.socket.emit('take_seat', { row: 3, col: 4 });
    await seen;

    for (const seat of [{ row: 10, col: 0 }, { row: 0, col: 10 }, { row: -1, col: 0 }, { row: 1.5, col: 0 }]) {
      const err = errorOf(a.socket, 'bad_seat', 'take_seat');
      a.socket.emit('take_seat', seat);
      await err;
    }

    const c = await learner(server.url, 's3');
    assert.deepEqual(c.welcome.seats, [[3, 4, 's1', 'nick-s1']]);

    seen = seatEvent(c.socket, 3, 4, null);
    a.socket.emit('leave_seat', {});
    await seen;

    seen = seatEvent(c.socket, 5, 5, 's2');
    b.socket.emit('take_seat', { row: 5, col: 5 });
    await seen;
    seen = seatEvent(c.socket, 5, 5, null);
    b.socket.close();
    await seen;

    const d = await learner(server.url, 's4');
    assert.deepEqual(d.welcome.seats, []);
    for (const x of [a, c, d]) x.socket.close();
  });
});

// ---- two nodes sharing Redis ----

describe('two nodes sharing a redis-server', () => {
  let redis;
  let nodeA;
  let nodeB;
  before(async () => {
    redis = await startRedis();
    nodeA = await startServer(['--redis', redis.url, '--node-id', 'a', '--rows', '10', '--cols', '10']);
    nodeB = await startServer(['--redis', redis.url, '--node-id', 'b', '--rows', '10', '--cols', '10']);
  });
  after(async () => {
    closeClients();
    const codes = await Promise.allSettled([stop(nodeA?.child), stop(nodeB?.child)]);
    await stop(redis?.child);
    assert.deepEqual(codes.map((c) => c.value), [0, 0], 'both nodes exit cleanly on SIGTERM');
  });

  test('chat reaches learners on both nodes', async () => {
    const x = await learner(nodeA.url, 'x');
    const y = await learner(nodeB.url, 'y');
    const got = Promise.all([x, y].map((l) => waitFor(l.socket, 'chat', (m) => m.text === 'across')));
    x.socket.emit('chat', { text: 'across' });
    for (const msg of await got) assert.equal(msg.user, 'x');
    x.socket.close();
    y.socket.close();
  });

  test('each node broadcasts its own bursts; a learner sums them', async () => {
    const x = await learner(nodeA.url, 'bx');
    const y = await learner(nodeB.url, 'by');
    const fromA = waitFor(y.socket, 'burst', (b) => b.counts.lost === 1, 'burst from node a');
    const total = burstsTotal(x.socket, 'slower', 3);
    x.socket.emit('react', { emotion: 'lost' });
    x.socket.emit('react', { emotion: 'slower' });
    y.socket.emit('react', { emotion: 'slower' });
    y.socket.emit('react', { emotion: 'slower' });
    await fromA;
    assert.equal(await total, 3);
    x.socket.close();
    y.socket.close();
  });

  test('seats are shared, and a race for a seat has exactly one winner', async () => {
    const x = await learner(nodeA.url, 'sx');
    const y = await learner(nodeB.url, 'sy');

    let seen = seatEvent(y.socket, 0, 0, 'sx');
    x.socket.emit('take_seat', { row: 0, col: 0 });
    await seen;
    y.socket.emit('take_seat', { row: 0, col: 0 });
    await errorOf(y.socket, 'seat_taken', 'take_seat');

    // Four learners, two per node, press the same seat at once, ten times over.
    const racers = [
      x, y, await learner(nodeA.url, 'sz'), await learner(nodeB.url, 'sw'),
    ];
    for (let col = 0; col < 10; col += 1) {
      const row = 7;
      const outcomes = racers.map(({ socket, welcome }) => new Promise((resolve) => {
        const onSeat = (s) => { if (s.row === row && s.col === col && s.user === welcome.user) done('won'); };
        const onError = (e) => { if (e.code === 'seat_taken') done('lost'); };
        const done = (result) => {
          socket.off('seat', onSeat);
          socket.off('error', onError);
          resolve(result);
        };
        socket.on('seat', onSeat);
        socket.on('error', onError);
      }));
      for (const { socket } of racers) socket.emit('take_seat', { row, col });
      const results = await withTimeout(Promise.all(outcomes), `race for 7:${col}`);
      assert.equal(results.filter((r) => r === 'won').length, 1, `one winner for 7:${col}: ${results}`);
    }

    // A newcomer on either node sees one seat per seated learner.
    const v = await learner(nodeB.url, 'sv');
    const users = v.welcome.seats.map(([, , user]) => user);
    assert.equal(new Set(users).size, users.length, `one seat per learner: ${JSON.stringify(v.welcome.seats)}`);
    for (const [row, col, user, nickname] of v.welcome.seats) {
      assert.ok(Number.isInteger(row) && Number.isInteger(col));
      assert.equal(nickname, `nick-${user}`);
    }

    // A disconnect on node b frees the seat for node a's learners.
    seen = seatEvent(x.socket, 9, 9, 'sy');
    y.socket.emit('take_seat', { row: 9, col: 9 });
    await seen;
    seen = seatEvent(x.socket, 9, 9, null);
    y.socket.close();
    await seen;
    for (const r of racers) r.socket.close();
    v.socket.close();
  });
});
