//! The room core's cost per fanned-out message, at 100, 1,000 and 5,000 learners.
//!
//! Each benchmark drives `room::Room` the way the node's room task does: one
//! input, then drain `poll_output`; every `Output::Send` is encoded once with the MessagePack
//! codec and its recipients are visited with `Room::for_each_recipient`, each getting a
//! reference-counted handle on the encoded frame (the node clones a `Bytes`-backed frame into
//! each connection's queue; the queue itself is not part of this benchmark).
//!
//! - `fanout/chat/N`: one learner's `chat` → a chat event to everyone.
//! - `fanout/react_tick/N`: one learner's `react`, then the tick (`handle_timeout` at the next
//!   tick time) → the batched update (a burst) to everyone and the meter to the staff.
//! - `fanout/take_seat_tick/N`: one learner moves to the free seat, then the tick → the
//!   update with both seats to everyone.
//!
//! Throughput is `Elements(N)`, so criterion's "elem/s" is learners reached per second and its
//! time divided by N the cost per recipient (everything included: command, encode, visit).
//! Every room also holds one instructor, so a broadcast reaches N + 1 connections.
//!
//! Rate limits must not turn these into benchmarks of refusals: the sender rotates over all
//! learners, the clock moves on with every command (a tick per iteration where there is a tick),
//! and the lecture runs for a year so the clock never reaches its end. Each benchmark checks,
//! once before and once after its measurement, that one step gives exactly the expected
//! outputs and no `error`.
//!
//! - `snapshot/{encode,decode,catch_up_10k_entries}/N`: a room's snapshot (many nodes), see
//!   [`snapshot`].
//!
//! `cargo bench -p bench --bench room_core -- --warm-up-time 1 --measurement-time 2`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use protocol::server::LectureInfo;
use protocol::{
    ClientMsg, Codec, EmotionKey, LectureId, Nickname, Role, Seat, ServerMsg, UnixMillis, UserId,
};
use room::{ConnId, Identity, Output, Room, RoomSettings};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

/// Scheduled start of the lecture; the room opens a second after it, live.
const START: UnixMillis = UnixMillis(1_800_000_000_000);
/// Ends a year later: millions of 250 ms ticks of virtual time before the room would end.
const YEAR_MS: u64 = 365 * 24 * 60 * 60 * 1000;
/// Seat grid width; the grid has one spare row, so there is always a free seat.
const COLS: u16 = 100;
const SIZES: [usize; 3] = [100, 1_000, 5_000];
const EMOTIONS: [&str; 5] = ["good", "i_see", "lost", "applause", "slower"];
/// About sixty characters, as a learner writes them.
const CHAT_TEXT: &str = "先生、さっきの所有権の説明で、借用が終わるタイミングがよく分からなかったのですが、もう一度お願いできますか？";

// ----- what one step sent -----

/// What draining the room after one step sent, counted.
#[derive(Debug, Default, PartialEq, Eq)]
struct Fanout {
    chat: usize,
    update: usize,
    meter: usize,
    error: usize,
    other: usize,
    /// Seat changes and reactions carried by the updates.
    seat_changes: usize,
    burst: u32,
    /// Connections visited, over all sends.
    recipients: usize,
}

/// Drains the room as the node does: each send encoded once, every recipient visited.
fn deliver(room: &mut Room, fanout: &mut Fanout) {
    while let Some(output) = room.poll_output() {
        let Output::Send { to, msg } = output else {
            fanout.other += 1;
            continue;
        };
        let frame: Arc<[u8]> = Codec::MsgPack
            .encode_server(&msg)
            .expect("the room's messages encode")
            .into();
        match &msg {
            ServerMsg::Chat { .. } => fanout.chat += 1,
            ServerMsg::Update(update) => {
                fanout.update += 1;
                fanout.seat_changes += update.seats.len()
                    + update.taken.len()
                    + update.freed.len()
                    + update.away.len()
                    + update.back.len();
                fanout.burst += update.burst.values().sum::<u32>();
            }
            ServerMsg::Meter(_) => fanout.meter += 1,
            ServerMsg::Error { .. } => fanout.error += 1,
            _ => fanout.other += 1,
        }
        let mut recipients = 0;
        room.for_each_recipient(to, |conn| {
            black_box((conn, Arc::clone(&frame)));
            recipients += 1;
        });
        fanout.recipients += recipients;
    }
}

// ----- a lecture with N learners -----

/// A live room with `learners` seated learners and one instructor, and the clock around it.
struct Lecture {
    room: Room,
    now: UnixMillis,
    learners: usize,
    /// Where learner `i` (connection `i + 1`) sits.
    seats: Vec<Seat>,
    /// The one seat nobody sits in that a learner can move to.
    free: Seat,
    /// The learner who sends next.
    next: usize,
}

fn seat_of(i: usize) -> Seat {
    let cols = usize::from(COLS);
    Seat::new(
        u16::try_from(i / cols).expect("rows fit a u16"),
        u16::try_from(i % cols).expect("columns fit a u16"),
    )
}

impl Lecture {
    fn new(learners: usize) -> Self {
        let rows = u16::try_from(learners / usize::from(COLS) + 1).expect("rows fit a u16");
        let spec = LectureInfo {
            id: LectureId::from("lec_bench_room_core"),
            title: "実践 Rust 入門 第3回：所有権と借用".to_owned(),
            starts_at: START,
            ends_at: START.plus_ms(YEAR_MS),
            rows,
            cols: COLS,
            emotions: vec![],
            chat_max_chars: 0,
        };
        let mut now = START.plus_ms(1_000);
        let mut room = Room::new(spec, RoomSettings::default(), now);
        let mut setup = Fanout::default();
        let join = |room: &mut Room, conn: u64, user: UserId, nickname: Nickname, role: Role| {
            let who = Identity {
                account: user.clone(),
                user,
                nickname,
                role,
                issued_at: START,
            };
            room.handle_join(now, ConnId(conn), who, None);
        };
        join(
            &mut room,
            0,
            UserId::from("usr_instructor"),
            Nickname::from("山田講師"),
            Role::Instructor,
        );
        deliver(&mut room, &mut setup);
        // Everyone enters first, then sits: the welcomes stay small while the room fills.
        for i in 0..learners {
            join(
                &mut room,
                conn_of(i).0,
                bench::samples::user(i),
                bench::samples::nickname(i),
                Role::Learner,
            );
            deliver(&mut room, &mut setup);
        }
        let seats: Vec<Seat> = (0..learners).map(seat_of).collect();
        for (i, seat) in seats.iter().enumerate() {
            room.handle_command(now, conn_of(i), ClientMsg::TakeSeat { seat: *seat }.into());
            deliver(&mut room, &mut setup);
        }
        assert_eq!(setup.error, 0, "setting the room up was refused: {setup:?}");
        assert_eq!(room.connection_count(), learners + 1);
        assert_eq!(room.seated_count(), learners);
        // The tick that announces everyone, so the benchmarks start from a quiet room.
        now = room.poll_timeout().expect("a live room has a next tick");
        room.handle_timeout(now);
        deliver(&mut room, &mut Fanout::default());
        Self {
            room,
            now,
            learners,
            seats,
            free: seat_of(learners),
            next: 0,
        }
    }

    /// The next sender, round the room.
    fn sender(&mut self) -> usize {
        let i = self.next;
        self.next = (self.next + 1) % self.learners;
        i
    }

    /// Runs the room to its next tick.
    fn tick(&mut self, fanout: &mut Fanout) {
        self.now = self
            .room
            .poll_timeout()
            .expect("a live room has a next tick");
        self.room.handle_timeout(self.now);
        deliver(&mut self.room, fanout);
    }

    fn chat(&mut self) -> Fanout {
        let mut fanout = Fanout::default();
        let i = self.sender();
        self.now = self.now.plus_ms(1);
        let msg = ClientMsg::Chat {
            text: CHAT_TEXT.to_owned(),
            question: i % 5 == 0,
        };
        self.room.handle_command(self.now, conn_of(i), msg.into());
        deliver(&mut self.room, &mut fanout);
        fanout
    }

    fn react_and_tick(&mut self) -> Fanout {
        let mut fanout = Fanout::default();
        let i = self.sender();
        let emotion = EmotionKey::from(EMOTIONS[i % EMOTIONS.len()]);
        self.room
            .handle_command(self.now, conn_of(i), ClientMsg::React { emotion }.into());
        deliver(&mut self.room, &mut fanout);
        self.tick(&mut fanout);
        fanout
    }

    fn take_seat_and_tick(&mut self) -> Fanout {
        let mut fanout = Fanout::default();
        let i = self.sender();
        let seat = self.free;
        self.room
            .handle_command(self.now, conn_of(i), ClientMsg::TakeSeat { seat }.into());
        self.free = std::mem::replace(&mut self.seats[i], seat);
        deliver(&mut self.room, &mut fanout);
        self.tick(&mut fanout);
        fanout
    }
}

fn conn_of(learner: usize) -> ConnId {
    ConnId(learner as u64 + 1)
}

// ----- benchmarks -----

/// Benchmarks `step` at every size, checking one step's outputs before and after.
fn bench_step(
    c: &mut Criterion,
    name: &str,
    step: fn(&mut Lecture) -> Fanout,
    expected: fn(usize) -> Fanout,
) {
    let mut group = c.benchmark_group("fanout");
    for n in SIZES {
        let mut lecture = Lecture::new(n);
        assert_eq!(step(&mut lecture), expected(n), "{name} with {n} learners");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new(name, n), |b| {
            b.iter(|| step(&mut lecture));
        });
        assert_eq!(
            step(&mut lecture),
            expected(n),
            "{name} with {n} learners, after the measurement"
        );
    }
    group.finish();
}

fn fanout(c: &mut Criterion) {
    bench_step(c, "chat", Lecture::chat, |n| Fanout {
        chat: 1,
        recipients: n + 1,
        ..Fanout::default()
    });
    bench_step(c, "react_tick", Lecture::react_and_tick, |n| Fanout {
        update: 1,
        meter: 1,
        burst: 1,
        // The update to everyone, the meter to the instructor.
        recipients: n + 1 + 1,
        ..Fanout::default()
    });
    bench_step(c, "take_seat_tick", Lecture::take_seat_and_tick, |n| {
        Fanout {
            // Two seats (one freed, one taken): to the instructor with occupants, to the
            // learners by number; and the mover is told its own seat.
            update: 2,
            seat_changes: 4,
            other: 1,
            recipients: n + 2,
            ..Fanout::default()
        }
    });
}

/// Snapshots (many nodes): a room of N seated learners with a full chat history, encoded as
/// the node writes it to Redis and decoded as a node opening the lecture reads it; and the
/// catch-up after it: applying the entries written since (at most `snapshot_every_entries`,
/// 10,000 by default) on a node with nobody of its own in the room yet. Opening a running
/// lecture costs one decode plus one catch-up whatever the length of its log.
fn snapshot(c: &mut Criterion) {
    let mut group = c.benchmark_group("snapshot");
    group.sample_size(10);
    for n in SIZES {
        let mut lecture = Lecture::new(n);
        // A full chat history (1,000 lines by default), as in a lecture an hour in; from the
        // instructor, whose lines no rate limit refuses.
        for _ in 0..RoomSettings::default().history_len {
            lecture.now = lecture.now.plus_ms(1);
            instructor_says(&mut lecture.room, lecture.now);
        }
        let bytes = rmp_serde::to_vec_named(&lecture.room).expect("a room encodes");
        eprintln!("snapshot of {n} learners: {} bytes", bytes.len());
        let back: Room = rmp_serde::from_slice(&bytes).expect("a room decodes");
        assert!(back == lecture.room, "the snapshot is the room");
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(BenchmarkId::new("encode", n), |b| {
            b.iter(|| rmp_serde::to_vec_named(black_box(&lecture.room)).expect("encodes"));
        });
        group.bench_function(BenchmarkId::new("decode", n), |b| {
            b.iter(|| rmp_serde::from_slice::<Room>(black_box(&bytes)).expect("decodes"));
        });
        group.throughput(Throughput::Elements(CATCH_UP as u64));
        group.bench_function(BenchmarkId::new("catch_up_10k_entries", n), |b| {
            b.iter_batched(
                || (back.clone(), lecture.now),
                |(mut room, mut now)| {
                    for _ in 0..CATCH_UP {
                        now = now.plus_ms(1);
                        instructor_says(&mut room, now);
                    }
                    room
                },
                criterion::BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

/// One chat line from the instructor (connection 0), its outputs drained unsent: a node
/// catching up has nobody of its own to send them to yet.
fn instructor_says(room: &mut Room, now: UnixMillis) {
    let msg = ClientMsg::Chat {
        text: CHAT_TEXT.to_owned(),
        question: false,
    };
    room.handle_command(now, ConnId(0), msg.into());
    while let Some(output) = room.poll_output() {
        assert!(
            !matches!(
                output,
                Output::Send {
                    msg: ServerMsg::Error { .. },
                    ..
                }
            ),
            "the instructor's line was refused"
        );
    }
}

/// Entries applied after a snapshot, at most (`[room] snapshot_every_entries`).
const CATCH_UP: usize = 10_000;

criterion_group! {
    name = benches;
    // Short by default (2 cores); the command line overrides these.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = fanout, snapshot
}
criterion_main!(benches);
