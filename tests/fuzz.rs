//! A structure-aware fuzzer of the room socket, against a real node process (a debug build, as
//! the test command builds it: a stack overflow there aborts the process). Each case opens a
//! connection in either encoding and sends frames made from valid commands and then broken:
//! bytes flipped or cut, fields of the wrong type, numbers too large, maps nested deep, strings
//! past the size limit, frames of the wrong kind, reserved opcodes and bits. It asserts what
//! the protocol promises: the node never falls over, every close carries a documented code,
//! every refusal a documented error code, and a well-behaved learner is served throughout.
//!
//! `FUZZ_CASES` (default 300) and `FUZZ_SEED` explore further; a failure prints its seed.

use e2e as common;

use common::{Client, Got, LECTURE, NodeProcess, WAIT, cluster_ticket};
use futures_util::SinkExt;
use protocol::{ClientMsg, CloseCode, Codec, Role, Seat, ServerMsg};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// SplitMix64: small, seeded, repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Valid commands of every kind, as JSON values (the MessagePack form is made from the same
/// value).
fn valid(rng: &mut Rng) -> Value {
    let commands = [
        json!({"type": "chat", "text": "こんにちは", "question": false}),
        json!({"type": "take_seat", "seat": {"row": 1, "col": 2}}),
        json!({"type": "leave_seat"}),
        json!({"type": "seat_names", "seats": [0, 1, 2, 99_999]}),
        json!({"type": "react", "emotion": "good"}),
        json!({"type": "call_on", "nickname": "taro"}),
        json!({"type": "mute", "user": "u1", "seconds": 60}),
        json!({"type": "remove", "user": "u1", "allow_return": true}),
        json!({"type": "delete_chat", "offset": 1}),
        json!({"type": "announce", "text": "休憩"}),
        json!({"type": "ping", "t": 5}),
        json!({"type": "media_candidate", "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdp_mid": "0", "sdp_mline_index": 0, "username_fragment": null}}),
        json!({"type": "media_offer", "sdp": "v=0"}),
        json!({"type": "hello", "ticket": "v1.x.y"}),
    ];
    let mut value = commands[rng.below(commands.len() as u64) as usize].clone();
    if rng.chance(30) {
        value["id"] = json!(rng.below(1 << 53));
    }
    value
}

/// A value of any shape, nested up to `depth`.
fn any_value(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth == 0 { 7 } else { 9 }) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => json!(rng.next()),
        3 => json!(-(rng.below(1 << 40) as i64)),
        4 => json!(rng.next() as f64 / 7.0),
        5 => json!("x".repeat(rng.below(40) as usize)),
        6 => json!("\u{202e}\u{0}\u{ffff}"),
        7 => Value::Array(
            (0..rng.below(4))
                .map(|_| any_value(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let mut map = serde_json::Map::new();
            for k in 0..rng.below(4) {
                map.insert(format!("k{k}"), any_value(rng, depth - 1));
            }
            Value::Object(map)
        }
    }
}

/// Breaks a valid command's structure: a field of the wrong shape, an unknown or missing type,
/// a string past the limit, deep nesting.
fn mutate(rng: &mut Rng, mut value: Value) -> Value {
    let keys: Vec<String> = value
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    match rng.below(6) {
        0 if !keys.is_empty() => {
            let key = &keys[rng.below(keys.len() as u64) as usize];
            value[key] = any_value(rng, 3);
        }
        1 => value["type"] = json!(["fly", "", "HELLO", "chat\u{0}"][rng.below(4) as usize]),
        2 => {
            if let Some(map) = value.as_object_mut() {
                map.remove("type");
            }
        }
        3 => value["text"] = json!("あ".repeat(rng.below(12_000) as usize)),
        // Spliced in as bytes by `encode`: a value nested this deep would overflow the test's
        // own stack.
        4 => value["deep"] = json!(format!("{DEEP}{}", 1 + rng.below(3_000))),
        _ => value[format!("extra{}", rng.below(9))] = any_value(rng, 2),
    }
    value
}

/// Marks where `encode` splices in maps nested as deep as the number after it.
const DEEP: &str = "@deep:";

fn encode(codec: Codec, value: &Value) -> Vec<u8> {
    let mut bytes = match codec {
        Codec::Json => serde_json::to_vec(value).expect("encodes"),
        Codec::MsgPack => rmp_serde::to_vec_named(value).expect("encodes"),
    };
    let Some(Value::String(marker)) = value.get("deep") else {
        return bytes;
    };
    let depth: usize = marker[DEEP.len()..].parse().expect("a depth");
    let (encoded_marker, nested) = match codec {
        Codec::Json => (
            format!("\"{marker}\"").into_bytes(),
            ["{\"a\":".repeat(depth), "1".into(), "}".repeat(depth)]
                .concat()
                .into_bytes(),
        ),
        Codec::MsgPack => {
            let mut m = vec![0xa0 | marker.len() as u8];
            m.extend_from_slice(marker.as_bytes());
            let mut n = [0x81, 0xa1, b'a'].repeat(depth);
            n.push(0x01);
            (m, n)
        }
    };
    if let Some(at) = bytes
        .windows(encoded_marker.len())
        .position(|w| w == encoded_marker.as_slice())
    {
        bytes.splice(at..at + encoded_marker.len(), nested);
    }
    bytes
}

fn data_frame(codec: Codec, bytes: Vec<u8>) -> Message {
    match codec {
        Codec::MsgPack => Message::Binary(bytes.into()),
        // A broken text frame is sent as bytes with the text opcode.
        Codec::Json => match String::from_utf8(bytes) {
            Ok(text) => Message::Text(text.into()),
            Err(e) => Message::Frame(Frame::message(
                e.into_bytes(),
                OpCode::Data(Data::Text),
                true,
            )),
        },
    }
}

/// One frame of a case.
fn frame(rng: &mut Rng, codec: Codec) -> Message {
    let value = valid(rng);
    // Mostly commands the node reads (valid or ill-shaped), so cases get past the first frame;
    // then frames that end the connection.
    match rng.below(14) {
        0..=4 => data_frame(codec, encode(codec, &value)),
        5..=8 => data_frame(codec, encode(codec, &mutate(rng, value))),
        9 => {
            let mut bytes = encode(codec, &value);
            for _ in 0..=rng.below(4) {
                let at = rng.below(bytes.len() as u64) as usize;
                bytes[at] = rng.next() as u8;
            }
            data_frame(codec, bytes)
        }
        10 => {
            let mut bytes = encode(codec, &value);
            bytes.truncate(rng.below(bytes.len() as u64) as usize);
            data_frame(codec, bytes)
        }
        11 => {
            // The other encoding's frame type.
            let other = if codec.is_binary() {
                Codec::Json
            } else {
                Codec::MsgPack
            };
            data_frame(other, encode(other, &value))
        }
        12 => {
            let bytes: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
            data_frame(codec, bytes)
        }
        _ => {
            // Reserved opcodes and bits, fragments out of place.
            let opcode = match rng.below(3) {
                0 => OpCode::Data(Data::Reserved(3 + rng.below(5) as u8)),
                1 => OpCode::Data(Data::Continue),
                _ => OpCode::Data(if codec.is_binary() {
                    Data::Binary
                } else {
                    Data::Text
                }),
            };
            let mut f = Frame::message(encode(codec, &value), opcode, rng.chance(50));
            f.header_mut().rsv1 = rng.chance(50);
            Message::Frame(f)
        }
    }
}

/// Every code a node may close a room connection with here (1000 follows only a `leave`, which
/// the fuzzer never sends).
fn documented(code: u16) -> bool {
    CloseCode::from_code(code).is_some()
}

/// What one case ended in: the connection still served (`None`) or closed with a code.
async fn run_case(node: &NodeProcess, rng: &mut Rng, case: u64) -> Result<Option<u16>, String> {
    let codec = if rng.chance(50) {
        Codec::MsgPack
    } else {
        Codec::Json
    };
    let mut client = Client::connect(&node.url(LECTURE), codec)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    if rng.chance(85) {
        let mut hello = json!({"type": "hello", "ticket": cluster_ticket(&format!("f{}", case % 40), "fuzz", Role::Learner)});
        if rng.chance(15) {
            hello = mutate(rng, hello);
        }
        let _ = client
            .ws
            .send(data_frame(codec, encode(codec, &hello)))
            .await;
    }
    for _ in 0..=rng.below(12) {
        if client.ws.send(frame(rng, codec)).await.is_err() {
            break;
        }
    }
    // A ping to end on: answered if the connection is still served.
    let _ = client
        .send_command(&ClientMsg::Ping { t: case }.into())
        .await;
    loop {
        match client.next_within(WAIT).await {
            None => return Err("neither answered nor closed in time".into()),
            Some(Got::Closed(code)) => return Ok(code),
            Some(Got::Msg(ServerMsg::Pong { t, .. })) if t == case => return Ok(None),
            Some(Got::Msg(_)) => {}
        }
    }
}

/// A single node process of its own (no Redis), with limits a fuzzer does not trip by mere
/// numbers of connections.
fn node(dir: &std::path::Path) -> NodeProcess {
    let config = common::cluster_config(
        dir,
        "[limits]\nconnects_per_sec_per_ip = 100000\nconnect_burst_per_ip = 100000",
    );
    let database = format!("sqlite://{}/fuzz.db", dir.display());
    NodeProcess::start(&["--config", &config, "--database-url", &database])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_room_socket_survives_broken_input_in_both_codecs() {
    let cases: u64 = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_261_127);
    let dir = std::env::temp_dir().join(format!("room-server-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let mut node = node(&dir);
    let (mut healthy, _) = common::hello_at(
        &node.url(LECTURE),
        cluster_ticket("healthy", "healthy", Role::Learner),
        None,
    )
    .await;
    healthy
        .send(&ClientMsg::TakeSeat {
            seat: Seat::new(4, 4),
        })
        .await;
    let mut rng = Rng(seed);
    let mut endings = std::collections::BTreeMap::<String, u32>::new();
    for case in 1..=cases {
        let ending = run_case(&node, &mut rng, case)
            .await
            .unwrap_or_else(|e| panic!("case {case} (FUZZ_SEED={seed}): {e}"));
        if let Some(code) = ending {
            assert!(
                documented(code),
                "case {case} (FUZZ_SEED={seed}): close code {code}"
            );
        }
        *endings
            .entry(ending.map_or("served".into(), |c| c.to_string()))
            .or_default() += 1;
        if case % 25 == 0 {
            // The learner who behaves is served all along.
            healthy.send(&ClientMsg::Ping { t: case }).await;
            healthy
                .recv_until(|m| matches!(m, ServerMsg::Pong { t, .. } if *t == case).then_some(()))
                .await;
        }
    }
    assert!(
        node.wait_exit(Duration::from_millis(1)).is_none(),
        "the node process is alive"
    );
    let (status, _) = common::http_get(node.addr, "/healthz").await;
    assert_eq!(status, 200);
    // The fuzzer reached the refusals it is meant to: served, protocol violations, oversize.
    for code in ["served", "4107", "4108"] {
        assert!(
            endings.contains_key(code),
            "no case ended {code}: {endings:?}"
        );
    }
    eprintln!("endings: {endings:?}");
    node.kill();
    let _ = std::fs::remove_dir_all(&dir);
}
