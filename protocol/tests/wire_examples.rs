//! The wire examples in `docs/protocol.md` are produced by the codec itself: this test fails
//! when the page and the code disagree. `UPDATE_PROTOCOL_DOCS=1 cargo test -p protocol`
//! rewrites the generated part.

use protocol::grid::SeatName;
use protocol::server::{
    Announcement, CallInfo, ChatEvent, ChatMessage, Emotion, LectureInfo, Meter, MutedLearner,
    Occupant, Phase, QuestionVotes, RaisedHand, Replay, RoomUpdate, SeatChange, SeatOccupant,
    SeatReaction, Welcome, You,
};
use protocol::{
    ChatOffset, ClientMsg, Codec, Command, CommandId, EmotionKey, Epoch, ErrorCode, IceCandidate,
    IceServer, Occupancy, ResumeFrom, Role, Seat, SeatBits, SeatNumber, ServerMsg, UnixMillis,
};
use std::collections::BTreeMap;

const T: UnixMillis = UnixMillis(1_796_115_600_000);
const BEGIN: &str =
    "<!-- BEGIN GENERATED EXAMPLES (cargo test -p protocol --test wire_examples) -->";
const END: &str = "<!-- END GENERATED EXAMPLES -->";

fn message(offset: u64, text: &str, question: bool) -> ChatMessage {
    ChatMessage {
        offset: ChatOffset(offset),
        at: T,
        user: "u-1001".into(),
        nickname: "たろう".into(),
        role: Role::Learner,
        text: text.into(),
        question,
        answered: false,
        call_answer: false,
        deleted: false,
    }
}

/// The client's examples; a chat carries the number the client tracks it by.
fn client_examples() -> Vec<(&'static str, Command)> {
    client_messages()
        .into_iter()
        .map(|(name, msg)| {
            let id = matches!(msg, ClientMsg::Chat { .. }).then_some(CommandId(17));
            (name, Command { id, msg })
        })
        .collect()
}

fn client_messages() -> Vec<(&'static str, ClientMsg)> {
    vec![
        (
            "Enter, first time",
            ClientMsg::Hello {
                ticket: "v1.eyJsZWMiOi….sig".into(),
                resume: None,
            },
        ),
        (
            "Enter again after a drop",
            ClientMsg::Hello {
                ticket: "v1.eyJsZWMiOi….sig".into(),
                resume: Some(ResumeFrom {
                    epoch: Epoch(1_796_115_000_001),
                    offset: ChatOffset(41),
                }),
            },
        ),
        (
            "Sit or move",
            ClientMsg::TakeSeat {
                seat: Seat::new(2, 5),
            },
        ),
        ("Stand up", ClientMsg::LeaveSeat),
        (
            "Who sits in these seats?",
            ClientMsg::SeatNames {
                seats: [44, 45, 46, 65].into_iter().map(SeatNumber).collect(),
            },
        ),
        ("Leave the room", ClientMsg::Leave),
        (
            "Chat",
            ClientMsg::Chat {
                text: "質問です。p.12 の図は?".into(),
                question: true,
            },
        ),
        (
            "Delete a message",
            ClientMsg::DeleteChat {
                offset: ChatOffset(40),
            },
        ),
        (
            "Mark a question answered",
            ClientMsg::MarkAnswered {
                offset: ChatOffset(41),
            },
        ),
        (
            "Press an emotion button",
            ClientMsg::React {
                emotion: "i_see".into(),
            },
        ),
        (
            "Call on by nickname",
            ClientMsg::CallOn {
                nickname: Some("たろう".into()),
                seat: None,
                user: None,
            },
        ),
        (
            "Call on by seat",
            ClientMsg::CallOn {
                nickname: None,
                seat: Some(Seat::new(2, 5)),
                user: None,
            },
        ),
        (
            "Call on the first raised hand",
            ClientMsg::CallOn {
                nickname: None,
                seat: None,
                user: Some("u-1001".into()),
            },
        ),
        ("End the call", ClientMsg::ClearCall),
        ("Raise your hand", ClientMsg::RaiseHand),
        ("Lower your hand", ClientMsg::LowerHand { user: None }),
        (
            "Dismiss a learner's hand (staff)",
            ClientMsg::LowerHand {
                user: Some("u-1001".into()),
            },
        ),
        (
            "Upvote a question",
            ClientMsg::Upvote {
                offset: ChatOffset(41),
            },
        ),
        (
            "Take the upvote back",
            ClientMsg::Unvote {
                offset: ChatOffset(41),
            },
        ),
        (
            "Pin an announcement",
            ClientMsg::Announce {
                text: "休憩は 20:00 まで".into(),
            },
        ),
        ("Unpin it", ClientMsg::ClearAnnouncement),
        (
            "Mute a learner",
            ClientMsg::Mute {
                user: "u-1001".into(),
                seconds: 300,
            },
        ),
        (
            "Unmute",
            ClientMsg::Unmute {
                user: "u-1001".into(),
            },
        ),
        (
            "Remove a learner",
            ClientMsg::Remove {
                user: "u-1001".into(),
                allow_return: false,
            },
        ),
        ("Go live", ClientMsg::StartLecture),
        ("End the lecture", ClientMsg::EndLecture),
        ("Round trip", ClientMsg::Ping { t: 17 }),
        (
            "The instructor publishes (or renegotiates)",
            ClientMsg::MediaOffer {
                sdp: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n…".into(),
            },
        ),
        (
            "A viewer answers the node's offer",
            ClientMsg::MediaAnswer {
                sdp: "v=0\r\no=- 3 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n…".into(),
            },
        ),
        (
            "A trickled ICE candidate",
            ClientMsg::MediaCandidate {
                candidate: candidate(),
            },
        ),
        ("The instructor stops publishing", ClientMsg::MediaStop),
    ]
}

fn candidate() -> IceCandidate {
    IceCandidate {
        candidate: "candidate:1 1 udp 2130706431 192.0.2.10 50000 typ host".into(),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        username_fragment: None,
    }
}

fn server_examples() -> Vec<(&'static str, ServerMsg)> {
    let occupant = Occupant {
        user: "u-1001".into(),
        nickname: "たろう".into(),
        away: false,
    };
    let call = CallInfo {
        user: "u-1001".into(),
        nickname: "たろう".into(),
        seat: Some(Seat::new(2, 5)),
        by: "山田講師".into(),
        at: T,
        answer: None,
    };
    // The 10 × 20 grid of the examples: you at r2c5 (seat 45), someone at r0c0 who is away,
    // someone at r3c5 (seat 65).
    let mut occupied = SeatBits::new(200);
    let mut away = SeatBits::new(200);
    for n in [0, 45, 65] {
        occupied.set(n, true);
    }
    away.set(0, true);
    let counts = |pairs: &[(&str, u32)]| -> BTreeMap<EmotionKey, u32> {
        pairs
            .iter()
            .map(|(k, v)| (EmotionKey::from(*k), *v))
            .collect()
    };
    let learner_welcome = Welcome {
        protocol: 2,
        server_time: T,
        you: You {
            user: "u-1001".into(),
            nickname: "たろう".into(),
            role: Role::Learner,
        },
        lecture: LectureInfo {
            id: "rust-101".into(),
            title: "Rust 入門".into(),
            starts_at: T.plus_ms(3_600_000),
            ends_at: T.plus_ms(9_000_000),
            rows: 10,
            cols: 20,
            emotions: vec![Emotion {
                key: "good".into(),
                label_ja: "いいね".into(),
                label_en: "Good".into(),
            }],
            chat_max_chars: 500,
        },
        phase: Phase::DoorsOpen,
        epoch: Epoch(1_796_115_000_001),
        replay: Replay::Snapshot,
        chat: vec![ChatEvent::Message(message(1, "こんばんは", false))],
        last_offset: ChatOffset(1),
        occupancy: Occupancy { occupied, away },
        seats: None,
        your_seat: Some(Seat::new(2, 5)),
        present: 42,
        call: None,
        announcement: Some(Announcement {
            text: "資料は p.12 から".into(),
            by: "山田講師".into(),
            at: T,
        }),
        muted_until: None,
        hands: None,
        hand_count: 2,
        your_hand: None,
        votes: vec![QuestionVotes {
            offset: ChatOffset(1),
            votes: 3,
        }],
        your_votes: vec![ChatOffset(1)],
        muted: None,
        fork_of: None,
    };
    let hand = RaisedHand {
        user: "u-1003".into(),
        nickname: "はなこ".into(),
        seat: Some(Seat::new(3, 5)),
        at: T,
    };
    let muted = MutedLearner {
        user: "u-1002".into(),
        nickname: "じろう".into(),
        until: T.plus_ms(300_000),
    };
    vec![
        (
            "Welcome (a learner)",
            ServerMsg::Welcome(Box::new(learner_welcome.clone())),
        ),
        (
            "Welcome (an instructor or moderator)",
            ServerMsg::Welcome(Box::new(Welcome {
                you: You {
                    user: "u-9001".into(),
                    nickname: "山田講師".into(),
                    role: Role::Instructor,
                },
                chat: vec![],
                seats: Some(vec![
                    SeatOccupant {
                        seat: Seat::new(0, 0),
                        occupant: Occupant {
                            user: "u-1002".into(),
                            nickname: "じろう".into(),
                            away: true,
                        },
                    },
                    SeatOccupant {
                        seat: Seat::new(2, 5),
                        occupant: occupant.clone(),
                    },
                    SeatOccupant {
                        seat: Seat::new(3, 5),
                        occupant: Occupant {
                            user: "u-1003".into(),
                            nickname: "はなこ".into(),
                            away: false,
                        },
                    },
                ]),
                your_seat: None,
                announcement: None,
                hands: Some(vec![
                    hand.clone(),
                    RaisedHand {
                        user: "u-1001".into(),
                        nickname: "たろう".into(),
                        seat: None,
                        at: T.plus_ms(4_000),
                    },
                ]),
                your_votes: vec![],
                muted: Some(vec![muted.clone()]),
                ..learner_welcome
            })),
        ),
        (
            "Phase change",
            ServerMsg::Phase {
                phase: Phase::Live { since: T },
            },
        ),
        (
            "Chat message",
            ServerMsg::Chat {
                event: ChatEvent::Message(message(42, "<b>太字</b>は文字のまま", false)),
            },
        ),
        (
            "Chat deletion",
            ServerMsg::Chat {
                event: ChatEvent::Deleted {
                    offset: ChatOffset(43),
                    at: T,
                    target: ChatOffset(40),
                },
            },
        ),
        (
            "Question answered",
            ServerMsg::Chat {
                event: ChatEvent::Answered {
                    offset: ChatOffset(44),
                    at: T,
                    target: ChatOffset(41),
                },
            },
        ),
        (
            "Tick update (learners)",
            ServerMsg::Update(RoomUpdate {
                taken: vec![SeatNumber(46), SeatNumber(130)],
                freed: vec![SeatNumber(0)],
                away: vec![SeatNumber(65)],
                present: Some(43),
                burst: counts(&[("good", 12), ("lost", 2)]),
                hand_count: Some(2),
                votes: vec![QuestionVotes {
                    offset: ChatOffset(41),
                    votes: 12,
                }],
                ..RoomUpdate::default()
            }),
        ),
        (
            "Tick update (instructors and moderators)",
            ServerMsg::Update(RoomUpdate {
                seats: vec![
                    SeatChange {
                        seat: Seat::new(2, 5),
                        occupant: Some(occupant.clone()),
                    },
                    SeatChange {
                        seat: Seat::new(0, 0),
                        occupant: None,
                    },
                ],
                present: Some(43),
                burst: counts(&[("good", 12), ("lost", 2)]),
                hand_count: Some(2),
                hands_lowered: vec!["u-1004".into()],
                hands_raised: vec![hand],
                votes: vec![QuestionVotes {
                    offset: ChatOffset(41),
                    votes: 12,
                }],
                ..RoomUpdate::default()
            }),
        ),
        (
            "Your seat, after your take_seat",
            ServerMsg::YourSeat {
                seat: Some(Seat::new(2, 5)),
            },
        ),
        (
            "Who sits in the seats you asked about",
            ServerMsg::SeatNames {
                seats: vec![
                    SeatName {
                        seat: SeatNumber(45),
                        nickname: "たろう".into(),
                    },
                    SeatName {
                        seat: SeatNumber(65),
                        nickname: "はなこ".into(),
                    },
                ],
            },
        ),
        (
            "Emotion meter (staff)",
            ServerMsg::Meter(Meter {
                at: T,
                tally: counts(&[("good", 12)]),
                rolling: counts(&[("good", 130), ("slower", 9)]),
                window_ms: 60_000,
                totals: [(EmotionKey::from("good"), 2_480u64)].into_iter().collect(),
                seats: vec![SeatReaction {
                    seat: Seat::new(2, 5),
                    emotion: "good".into(),
                }],
            }),
        ),
        (
            "Call (everyone)",
            ServerMsg::Call {
                current: Some(call),
            },
        ),
        (
            "Called on you",
            ServerMsg::CalledOnYou {
                by: "山田講師".into(),
                at: T,
            },
        ),
        (
            "Announcement",
            ServerMsg::Announcement {
                current: Some(Announcement {
                    text: "休憩は 20:00 まで".into(),
                    by: "山田講師".into(),
                    at: T,
                }),
            },
        ),
        (
            "Muted",
            ServerMsg::Muted {
                until: Some(T.plus_ms(300_000)),
            },
        ),
        (
            "The muted learners (staff)",
            ServerMsg::MutedLearners { muted: vec![muted] },
        ),
        (
            "Your hand is up",
            ServerMsg::YourHand { raised_at: Some(T) },
        ),
        (
            "Refused command",
            ServerMsg::Error {
                code: ErrorCode::SeatTaken,
                message: "seat r2c5 is taken".into(),
                command: Some("take_seat".into()),
                id: Some(CommandId(18)),
            },
        ),
        ("Command taken", ServerMsg::Ack { id: CommandId(17) }),
        (
            "Round trip",
            ServerMsg::Pong {
                t: 17,
                server_time: T,
            },
        ),
        (
            "The lecture was moved",
            ServerMsg::Lecture {
                lecture: LectureInfo {
                    id: "rust-101".into(),
                    title: "Rust 入門".into(),
                    starts_at: T.plus_ms(5_400_000),
                    ends_at: T.plus_ms(10_800_000),
                    rows: 10,
                    cols: 20,
                    emotions: vec![],
                    chat_max_chars: 500,
                },
            },
        ),
        (
            "Link to the other nodes lost",
            ServerMsg::Service { degraded: true },
        ),
        (
            "Media settings, right after the welcome",
            ServerMsg::MediaConfig {
                ice_servers: vec![
                    IceServer {
                        urls: vec!["stun:stun.example.jp:3478".into()],
                        username: None,
                        credential: None,
                    },
                    // A TURN REST credential for this connection alone:
                    // base64(HMAC-SHA1("example-turn-secret", username)).
                    IceServer {
                        urls: vec!["turn:turn.example.jp:3478?transport=udp".into()],
                        username: Some("1764590400:10000002a".into()),
                        credential: Some("zNrCovbAX5BLs9XBOL5bAdUgnMo=".into()),
                    },
                ],
            },
        ),
        (
            "The node answers the instructor",
            ServerMsg::MediaAnswer {
                sdp: "v=0\r\no=- 4 2 IN IP4 192.0.2.10\r\ns=-\r\nt=0 0\r\n…".into(),
            },
        ),
        (
            "The node offers the lecture's tracks to a viewer",
            ServerMsg::MediaOffer {
                sdp: "v=0\r\no=- 5 2 IN IP4 192.0.2.10\r\ns=-\r\nt=0 0\r\n…".into(),
            },
        ),
        (
            "A candidate of the node",
            ServerMsg::MediaCandidate {
                candidate: candidate(),
            },
        ),
        ("A viewer's media ended", ServerMsg::MediaStopped),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .chunks(32)
        .map(|c| {
            c.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn section<T: serde::Serialize>(
    title: &str,
    examples: &[(&str, T)],
    encode: impl Fn(Codec, &T) -> Vec<u8>,
) -> String {
    let mut out = format!("### {title}\n\n");
    for (name, msg) in examples {
        let json: serde_json::Value =
            serde_json::from_slice(&encode(Codec::Json, msg)).expect("the JSON codec writes JSON");
        let kind = json["type"].as_str().expect("every message has a type");
        // Pretty-printed in the codec's own field order; only whitespace differs from the wire.
        let pretty = serde_json::to_string_pretty(msg).expect("a message prints");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&pretty).expect("parses"),
            json
        );
        let packed = encode(Codec::MsgPack, msg);
        out.push_str(&format!(
            "#### `{kind}` — {name}\n\n```json\n{pretty}\n```\n\nMessagePack ({} bytes):\n\n```text\n{}\n```\n\n",
            packed.len(),
            hex(&packed)
        ));
    }
    out
}

fn render() -> String {
    let mut out = String::new();
    out.push_str(&section("Client → node", &client_examples(), |c, m| {
        c.encode_command(m).expect("encodes")
    }));
    out.push_str(&section("Node → client", &server_examples(), |c, m| {
        c.encode_server(m).expect("encodes")
    }));
    out
}

#[test]
fn every_example_decodes_back_to_itself() {
    for codec in Codec::ALL {
        for (_, msg) in client_examples() {
            assert_eq!(
                codec
                    .decode_command(&codec.encode_command(&msg).expect("encodes"))
                    .expect("decodes"),
                msg
            );
        }
        for (_, msg) in server_examples() {
            assert_eq!(
                codec
                    .decode_server(&codec.encode_server(&msg).expect("encodes"))
                    .expect("decodes"),
                msg
            );
        }
    }
}

#[test]
fn protocol_docs_show_what_the_codec_writes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
    let doc = std::fs::read_to_string(path).expect("docs/protocol.md exists");
    let (head, rest) = doc
        .split_once(BEGIN)
        .expect("the page has the generated-examples marker");
    let (_, tail) = rest.split_once(END).expect("the page has the end marker");
    let fresh = format!("{head}{BEGIN}\n\n{}{END}{tail}", render());
    if std::env::var_os("UPDATE_PROTOCOL_DOCS").is_some() {
        std::fs::write(path, &fresh).expect("writes the page");
    } else {
        assert!(
            doc == fresh,
            "docs/protocol.md is out of date: run UPDATE_PROTOCOL_DOCS=1 cargo test -p protocol --test wire_examples"
        );
    }
}
