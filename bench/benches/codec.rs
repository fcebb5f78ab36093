//! Encode and decode cost of the room protocol, per message kind and encoding.
//!
//! Three encodings of the same messages:
//! - `msgpack_named`: what the node speaks ([`Codec::MsgPack`]: `rmp_serde::to_vec_named`,
//!   structs as maps with named fields; decoding through the codec, with its whole-frame check);
//! - `msgpack_compact`: `rmp_serde::to_vec` / `from_slice`, structs as arrays. Not a protocol
//!   the node offers: it shows what the field names cost. The internally tagged enums (`type`,
//!   `kind`, `state`) do come back (serde reads the tag as an array's first element), but a
//!   field skipped when empty (`skip_serializing_if`) shifts the fields after it in array
//!   form: an update without seat changes or presence (`update_burst`, the most frequent one:
//!   a tick with only reactions) does not decode back, while the full `update` sample does.
//!   Every sample is round-tripped before the benchmarks run; one that does not come back
//!   equal gets its encode measured (its size is still a lower bound) but no decode, and a `*`
//!   in the size table;
//! - `json`: [`Codec::Json`], the debugging encoding in text frames.
//!
//! Every benchmark reports `Throughput::Bytes` of its encoded size, so each encoding's size
//! shows in criterion's output next to its time; the sizes are also printed once, as a table on
//! stderr, before the measurements.
//!
//! `cargo bench -p bench --bench codec -- --warm-up-time 1 --measurement-time 2`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use protocol::server::{
    ChatEvent, ChatMessage, LectureInfo, Meter, Occupant, Phase, Replay, RoomUpdate, SeatChange,
    SeatOccupant, SeatReaction, Welcome, You,
};
use protocol::{
    ChatOffset, ClientMsg, Codec, EmotionKey, Epoch, LectureId, Occupancy, ResumeFrom, Role, Seat,
    SeatBits, SeatNumber, ServerMsg, UnixMillis,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hint::black_box;
use std::time::Duration;

/// A time during the lecture (2027-01-15, 19:00 JST).
const NOW: UnixMillis = UnixMillis(1_800_000_000_000);

// ----- encodings -----

/// One way of putting a message into a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    MsgPackNamed,
    MsgPackCompact,
    Json,
}

impl Encoding {
    const ALL: [Encoding; 3] = [
        Encoding::MsgPackNamed,
        Encoding::MsgPackCompact,
        Encoding::Json,
    ];

    fn name(self) -> &'static str {
        match self {
            Encoding::MsgPackNamed => "msgpack_named",
            Encoding::MsgPackCompact => "msgpack_compact",
            Encoding::Json => "json",
        }
    }

    fn encode<M: Wire>(self, msg: &M) -> Vec<u8> {
        match self {
            Encoding::MsgPackNamed => msg.encode_with(Codec::MsgPack),
            Encoding::Json => msg.encode_with(Codec::Json),
            Encoding::MsgPackCompact => {
                rmp_serde::to_vec(msg).expect("every protocol message encodes as compact msgpack")
            }
        }
    }

    fn decode<M: Wire>(self, bytes: &[u8]) -> Result<M, String> {
        match self {
            Encoding::MsgPackNamed => M::decode_with(Codec::MsgPack, bytes),
            Encoding::Json => M::decode_with(Codec::Json, bytes),
            Encoding::MsgPackCompact => rmp_serde::from_slice(bytes).map_err(|e| e.to_string()),
        }
    }
}

/// A message of either direction, through the codec's own entry points for that direction.
trait Wire: Serialize + DeserializeOwned + PartialEq + Debug {
    fn encode_with(&self, codec: Codec) -> Vec<u8>;
    fn decode_with(codec: Codec, bytes: &[u8]) -> Result<Self, String>;
}

impl Wire for ServerMsg {
    fn encode_with(&self, codec: Codec) -> Vec<u8> {
        codec
            .encode_server(self)
            .expect("the codec encodes every node message")
    }

    fn decode_with(codec: Codec, bytes: &[u8]) -> Result<Self, String> {
        codec.decode_server(bytes).map_err(|e| e.to_string())
    }
}

impl Wire for ClientMsg {
    fn encode_with(&self, codec: Codec) -> Vec<u8> {
        codec
            .encode_client(self)
            .expect("the codec encodes every client message")
    }

    fn decode_with(codec: Codec, bytes: &[u8]) -> Result<Self, String> {
        codec.decode_client(bytes).map_err(|e| e.to_string())
    }
}

// ----- realistic samples -----

use bench::samples::{nickname, user};

/// About sixty characters of what a learner writes during a lecture.
const CHAT_TEXTS: [&str; 4] = [
    "先生、さっきの所有権の説明で、借用が終わるタイミングがよく分からなかったのですが、もう一度お願いできますか？",
    "なるほど、ライフタイムは参照が有効な範囲をコンパイラに伝えるための注釈なんですね。とても分かりやすいです！",
    "スライド12枚目のコード例、手元で試したら E0502 のエラーになりました。Vec を可変で借りている間に読んだからでしょうか？",
    "質問です。Arc と Rc の使い分けについて、実務ではどういう基準で選んでいますか？スレッドをまたぐかどうかだけですか？",
];

fn chat_message(i: usize) -> ChatMessage {
    ChatMessage {
        offset: ChatOffset(1_000 + i as u64),
        at: NOW.plus_ms(i as u64 * 1_700),
        user: user(i * 7),
        nickname: nickname(i * 7),
        role: Role::Learner,
        text: CHAT_TEXTS[i % CHAT_TEXTS.len()].to_owned(),
        question: i % 5 == 3,
        answered: i % 10 == 3,
        call_answer: false,
        deleted: false,
    }
}

fn counts<T: From<u16>>(values: [u16; 5]) -> BTreeMap<EmotionKey, T> {
    room::default_emotions()
        .into_iter()
        .zip(values)
        .filter(|(_, n)| *n > 0)
        .map(|(e, n)| (e.key, T::from(n)))
        .collect()
}

/// 40 columns: seat `i` in reading order.
fn seat(i: usize) -> Seat {
    Seat::new((i / 40) as u16, (i % 40) as u16)
}

/// A learner's welcome: the grid as bitmaps, nobody's name.
fn welcome() -> ServerMsg {
    let staff = staff_welcome();
    ServerMsg::Welcome(Box::new(Welcome {
        you: You {
            role: Role::Learner,
            ..staff.you.clone()
        },
        seats: None,
        your_seat: Some(seat(84)),
        ..staff
    }))
}

/// An instructor's welcome: every occupant too.
fn staff_welcome() -> Welcome {
    let mut occupancy = Occupancy {
        occupied: SeatBits::new(400),
        away: SeatBits::new(400),
    };
    for i in 0..200 {
        occupancy.occupied.set(i * 2, true);
        occupancy.away.set(i * 2, i % 37 == 0);
    }
    Welcome {
        protocol: protocol::PROTOCOL_VERSION,
        server_time: NOW,
        you: You {
            user: user(4_242),
            nickname: nickname(42),
            role: Role::Instructor,
        },
        lecture: LectureInfo {
            id: LectureId::from("lec_2027_rust_intro_03"),
            title: "実践 Rust 入門 第3回：所有権と借用 / Ownership and borrowing".to_owned(),
            starts_at: NOW.minus_ms(20 * 60_000),
            ends_at: NOW.plus_ms(70 * 60_000),
            rows: 10,
            cols: 40,
            emotions: room::default_emotions(),
            chat_max_chars: 500,
        },
        phase: Phase::Live {
            since: NOW.minus_ms(20 * 60_000),
        },
        epoch: Epoch(3),
        replay: Replay::Snapshot,
        chat: (0..100)
            .map(|i| ChatEvent::Message(chat_message(i)))
            .collect(),
        last_offset: ChatOffset(1_099),
        occupancy,
        seats: Some(
            (0..200)
                .map(|i| SeatOccupant {
                    seat: seat(i * 2),
                    occupant: Occupant {
                        user: user(i),
                        nickname: nickname(i),
                        away: i % 37 == 0,
                    },
                })
                .collect(),
        ),
        your_seat: None,
        present: 214,
        call: None,
        announcement: None,
        muted_until: None,
        hands: None,
        hand_count: 0,
        your_hand: None,
        votes: Vec::new(),
        your_votes: Vec::new(),
        muted: None,
        fork_of: None,
    }
}

/// The samples: (kind, message). Server kinds are plain, client kinds start with `client_`.
fn server_samples() -> Vec<(&'static str, ServerMsg)> {
    vec![
        (
            "chat",
            ServerMsg::Chat {
                event: ChatEvent::Message(chat_message(0)),
            },
        ),
        (
            // A learner's: seat numbers.
            "update",
            ServerMsg::Update(RoomUpdate {
                taken: vec![SeatNumber(17)],
                freed: vec![SeatNumber(58)],
                away: vec![SeatNumber(121)],
                present: Some(214),
                burst: counts([12, 3, 0, 25, 1]),
                ..RoomUpdate::default()
            }),
        ),
        (
            // The staff's: occupants.
            "update_staff",
            ServerMsg::Update(RoomUpdate {
                seats: vec![
                    SeatChange {
                        seat: seat(17),
                        occupant: Some(Occupant {
                            user: user(17),
                            nickname: nickname(17),
                            away: false,
                        }),
                    },
                    SeatChange {
                        seat: seat(58),
                        occupant: None,
                    },
                    SeatChange {
                        seat: seat(121),
                        occupant: Some(Occupant {
                            user: user(121),
                            nickname: nickname(121),
                            away: true,
                        }),
                    },
                ],
                present: Some(214),
                burst: counts([12, 3, 0, 25, 1]),
                ..RoomUpdate::default()
            }),
        ),
        (
            // The most frequent update: a tick with only reactions (its other fields skipped).
            "update_burst",
            ServerMsg::Update(RoomUpdate {
                burst: counts([12, 3, 0, 25, 1]),
                ..RoomUpdate::default()
            }),
        ),
        (
            "meter",
            ServerMsg::Meter(Meter {
                at: NOW,
                tally: counts([12, 3, 0, 25, 1]),
                rolling: counts([140, 61, 9, 233, 4]),
                window_ms: 60_000,
                totals: counts([1_812, 640, 95, 2_410, 77]),
                seats: (0..12)
                    .map(|i| SeatReaction {
                        seat: seat(i * 13),
                        emotion: EmotionKey::from(if i % 3 == 0 { "applause" } else { "good" }),
                    })
                    .collect(),
            }),
        ),
        ("welcome", welcome()),
        (
            "welcome_staff",
            ServerMsg::Welcome(Box::new(staff_welcome())),
        ),
        (
            "pong",
            ServerMsg::Pong {
                t: 1_737_000_123_456,
                server_time: NOW,
            },
        ),
    ]
}

fn client_samples() -> Vec<(&'static str, ClientMsg)> {
    vec![
        (
            "client_chat",
            ClientMsg::Chat {
                text: CHAT_TEXTS[0].to_owned(),
                question: true,
            },
        ),
        (
            "client_react",
            ClientMsg::React {
                emotion: EmotionKey::from("applause"),
            },
        ),
        (
            "client_take_seat",
            ClientMsg::TakeSeat {
                seat: Seat::new(3, 17),
            },
        ),
        (
            "client_hello",
            ClientMsg::Hello {
                // The shape of a room ticket: version, base64url claims, base64url MAC.
                ticket: format!(
                    "v1.{}.{}",
                    "eyJsIjoibGVjXzIwMjdfcnVzdF9pbnRyb18wMyIsInUiOiJ1c3JfNWVlZDEwOTIiLCJuIjoi5L2Q6Jek6Iqx5a2QIiwiciI6ImxlYXJuZXIiLCJpYXQiOjE4MDAwMDAwMDAwMDAsImV4cCI6MTgwMDAwMzYwMDAwMH0",
                    "q1Jx0bY2ZQm7xWk4yV3p8sT0fL9uHc6dA2eNrKgPzEo"
                ),
                resume: Some(ResumeFrom {
                    epoch: Epoch(3),
                    offset: ChatOffset(1_099),
                }),
            },
        ),
    ]
}

// ----- benchmarks -----

/// Size of each encoding of one kind, and whether compact msgpack round-trips it.
struct SizeRow {
    kind: &'static str,
    sizes: [usize; 3],
    compact_round_trips: bool,
}

/// Encode and decode benchmarks of one message in every encoding (no decode where compact
/// msgpack does not give the message back).
fn bench_kind<M: Wire>(c: &mut Criterion, kind: &'static str, msg: &M) {
    for encoding in Encoding::ALL {
        let bytes = encoding.encode(msg);
        let round_trips = encoding.decode::<M>(&bytes).is_ok_and(|back| back == *msg);
        assert!(
            round_trips || encoding == Encoding::MsgPackCompact,
            "{kind} must round-trip in {}",
            encoding.name()
        );
        let id = BenchmarkId::new(encoding.name(), kind);
        let throughput = Throughput::Bytes(bytes.len() as u64);

        let mut group = c.benchmark_group("encode");
        group.throughput(throughput.clone());
        group.bench_function(id.clone(), |b| {
            b.iter(|| encoding.encode(black_box(msg)));
        });
        group.finish();

        if round_trips {
            let mut group = c.benchmark_group("decode");
            group.throughput(throughput);
            group.bench_function(id, |b| {
                b.iter(|| encoding.decode::<M>(black_box(&bytes)));
            });
            group.finish();
        }
    }
}

fn print_sizes(rows: &[SizeRow]) {
    eprintln!();
    eprintln!("encoded sizes in bytes (compact: structs as arrays; * = does not round-trip)");
    eprintln!(
        "{:<18} {:>14} {:>16} {:>10}",
        "kind", "msgpack_named", "msgpack_compact", "json"
    );
    for row in rows {
        let compact = format!(
            "{}{}",
            row.sizes[1],
            if row.compact_round_trips { "" } else { "*" }
        );
        eprintln!(
            "{:<18} {:>14} {:>16} {:>10}",
            row.kind, row.sizes[0], compact, row.sizes[2]
        );
    }
    eprintln!();
}

fn codecs(c: &mut Criterion) {
    let servers = server_samples();
    let clients = client_samples();
    // The table first, from the same bytes the benchmarks measure.
    let mut rows = Vec::new();
    for (kind, msg) in &servers {
        rows.push(size_row(kind, msg));
    }
    for (kind, msg) in &clients {
        rows.push(size_row(kind, msg));
    }
    print_sizes(&rows);

    for (kind, msg) in &servers {
        bench_kind(c, kind, msg);
    }
    for (kind, msg) in &clients {
        bench_kind(c, kind, msg);
    }
}

fn size_row<M: Wire>(kind: &'static str, msg: &M) -> SizeRow {
    let mut sizes = [0; 3];
    let mut compact_round_trips = true;
    for (slot, encoding) in Encoding::ALL.into_iter().enumerate() {
        let bytes = encoding.encode(msg);
        sizes[slot] = bytes.len();
        if encoding == Encoding::MsgPackCompact {
            compact_round_trips = encoding.decode::<M>(&bytes).is_ok_and(|back| back == *msg);
        }
    }
    SizeRow {
        kind,
        sizes,
        compact_round_trips,
    }
}

criterion_group! {
    name = benches;
    // Short by default (2 cores, many benchmarks); the command line overrides these.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = codecs
}
criterion_main!(benches);
