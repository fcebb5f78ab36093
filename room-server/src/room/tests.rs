//! The room driven by simulated clients in virtual time: an hour of lecture runs in
//! milliseconds, and property tests check the invariants after every step.

use super::*;
use proptest::prelude::*;
use protocol::server::{ChatEvent, Replay};
use protocol::{ClientMsg, Command, CommandId, EmotionKey, Epoch};
use std::collections::BTreeMap;

const MIN: u64 = 60_000;
/// Scheduled start of the simulated lecture.
const START: UnixMillis = UnixMillis(1_800_000_000_000);

fn spec() -> LectureSpec {
    LectureSpec {
        id: LectureId::from("lec-1"),
        title: "Rust 入門".into(),
        starts_at: START,
        ends_at: START.plus_ms(90 * MIN),
        rows: 4,
        cols: 5,
        emotions: vec![],
    }
}

/// A room and the clients around it: what each connection received, and how it was closed.
struct Sim {
    room: Room,
    now: UnixMillis,
    next_conn: u64,
    inbox: HashMap<ConnId, Vec<ServerMsg>>,
    /// Everything each connection ever received (the inbox is drained by checks, this is not).
    log: HashMap<ConnId, Vec<ServerMsg>>,
    closed: HashMap<ConnId, Option<CloseCode>>,
    /// Attendance the room reported, in order.
    attendance: Vec<Attendance>,
    /// When the room reported the lecture ended.
    ended_at: Option<UnixMillis>,
    /// Bans the room reported for the records, in order.
    bans: Vec<(protocol::UserId, UnixMillis)>,
}

impl Sim {
    fn new(now: UnixMillis) -> Self {
        Self::with(spec(), RoomSettings::default(), now)
    }

    fn with(spec: LectureSpec, settings: RoomSettings, now: UnixMillis) -> Self {
        Self {
            room: Room::new(spec, settings, now),
            now,
            next_conn: 0,
            inbox: HashMap::new(),
            log: HashMap::new(),
            closed: HashMap::new(),
            attendance: Vec::new(),
            ended_at: None,
            bans: Vec::new(),
        }
    }

    /// Delivers every output the way the node does; a closed connection then reports its end.
    fn drain(&mut self) {
        let mut gone = Vec::new();
        while let Some(out) = self.room.poll_output() {
            match out {
                Output::Send { to, msg } => {
                    let mut recipients = Vec::new();
                    self.room.for_each_recipient(to, |c| recipients.push(c));
                    for c in recipients {
                        if !self.closed.contains_key(&c) {
                            self.inbox.entry(c).or_default().push(msg.clone());
                            self.log.entry(c).or_default().push(msg.clone());
                        }
                    }
                }
                // A connection closes once: a later close finds it gone, as on a node.
                Output::Close { conn, code } => {
                    if let std::collections::hash_map::Entry::Vacant(slot) = self.closed.entry(conn)
                    {
                        slot.insert(code);
                        gone.push(conn);
                    }
                }
                Output::Attendance(a) => self.attendance.push(a),
                Output::Ended { at } => self.ended_at = Some(at),
                Output::Banned { account, at } => self.bans.push((account, at)),
            }
        }
        for conn in gone {
            self.room.handle_disconnect(self.now, conn);
            self.drain();
        }
    }

    fn join(&mut self, user: &str, nickname: &str, role: Role) -> ConnId {
        self.join_resuming(user, nickname, role, None)
    }

    fn join_resuming(
        &mut self,
        user: &str,
        nickname: &str,
        role: Role,
        resume: Option<ResumeFrom>,
    ) -> ConnId {
        self.next_conn += 1;
        let conn = ConnId(self.next_conn);
        // The room's tests give people their account id as their pseudonym: the node makes them
        // differ (session.rs), the room only passes the account on to its records.
        let who = Identity {
            user: user.into(),
            account: format!("acct-{user}").into(),
            nickname: nickname.into(),
            role,
            issued_at: self.now,
        };
        self.room.handle_join(self.now, conn, who, resume);
        self.drain();
        conn
    }

    fn send(&mut self, conn: ConnId, msg: ClientMsg) {
        self.room.handle_command(self.now, conn, msg.into());
        self.drain();
    }

    /// Sends `msg` numbered `id`, as a client that tracks it does.
    fn send_numbered(&mut self, conn: ConnId, id: u64, msg: ClientMsg) {
        let command = Command {
            id: Some(CommandId(id)),
            msg,
        };
        self.room.handle_command(self.now, conn, command);
        self.drain();
    }

    fn drop_conn(&mut self, conn: ConnId) {
        self.closed.insert(conn, None);
        self.room.handle_disconnect(self.now, conn);
        self.drain();
    }

    /// Runs virtual time forward to `until`, waking the room exactly when it asks.
    fn run_until(&mut self, until: UnixMillis) {
        while let Some(wake) = self.room.poll_timeout().filter(|t| *t <= until) {
            self.now = wake.max(self.now);
            self.room.handle_timeout(self.now);
            self.drain();
        }
        self.now = until.max(self.now);
    }

    fn run_for(&mut self, ms: u64) {
        self.run_until(self.now.plus_ms(ms));
    }

    fn take(&mut self, conn: ConnId) -> Vec<ServerMsg> {
        self.inbox.remove(&conn).unwrap_or_default()
    }

    fn errors(&mut self, conn: ConnId) -> Vec<ErrorCode> {
        self.take(conn)
            .into_iter()
            .filter_map(|m| match m {
                ServerMsg::Error { code, .. } => Some(code),
                _ => None,
            })
            .collect()
    }

    fn welcome(&mut self, conn: ConnId) -> Welcome {
        self.take(conn)
            .into_iter()
            .find_map(|m| match m {
                ServerMsg::Welcome(w) => Some(*w),
                _ => None,
            })
            .expect("a welcome")
    }

    fn chat(&mut self, conn: ConnId, text: &str) {
        self.send(
            conn,
            ClientMsg::Chat {
                text: text.into(),
                question: false,
            },
        );
    }

    fn take_seat(&mut self, conn: ConnId, row: u16, col: u16) {
        self.send(
            conn,
            ClientMsg::TakeSeat {
                seat: Seat::new(row, col),
            },
        );
    }

    fn occupant(&self, seat: Seat) -> Option<&str> {
        self.room.grid.occupant(seat).map(UserId::as_str)
    }
}

fn chat_events(msgs: &[ServerMsg]) -> Vec<ChatEvent> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMsg::Chat { event } => Some(event.clone()),
            _ => None,
        })
        .collect()
}

fn texts(events: &[ChatEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::Message(m) => Some(m.text.clone()),
            _ => None,
        })
        .collect()
}

fn seat_updates(msgs: &[ServerMsg]) -> Vec<SeatChange> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMsg::Update(u) => Some(u.seats.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn doors_open_sim() -> Sim {
    Sim::new(START.minus_ms(30 * MIN))
}

// ----- phases -----

#[test]
fn a_lecture_goes_from_scheduled_to_doors_open_to_live_to_ended_by_the_clock() {
    let mut sim = Sim::new(START.minus_ms(3 * 60 * MIN));
    assert_eq!(sim.room.phase(), &Phase::Scheduled);
    let sensei = sim.join("t1", "先生", Role::Instructor);
    assert_eq!(
        sim.welcome(sensei).phase,
        Phase::Scheduled,
        "instructors may enter early to prepare"
    );
    let early = sim.join("u1", "taro", Role::Learner);
    assert_eq!(sim.closed[&early], Some(CloseCode::DoorsNotOpen));

    sim.run_until(START.minus_ms(60 * MIN));
    assert_eq!(sim.room.phase(), &Phase::DoorsOpen);
    let taro = sim.join("u1", "taro", Role::Learner);
    assert_eq!(sim.welcome(taro).phase, Phase::DoorsOpen);

    sim.run_until(START);
    assert_eq!(sim.room.phase(), &Phase::Live { since: START });
    let phases: Vec<Phase> = sim
        .take(taro)
        .into_iter()
        .filter_map(|m| match m {
            ServerMsg::Phase { phase } => Some(phase),
            _ => None,
        })
        .collect();
    assert_eq!(phases, vec![Phase::Live { since: START }]);

    // Nobody ends it: the room ends itself after the end time plus the grace.
    let end = START.plus_ms(90 * MIN + 30 * MIN);
    sim.run_until(end);
    assert_eq!(sim.room.phase(), &Phase::Ended { at: end });
    assert_eq!(sim.closed[&taro], Some(CloseCode::LectureEnded));
    assert_eq!(sim.closed[&sensei], Some(CloseCode::LectureEnded));
    assert_eq!(sim.room.connection_count(), 0);
    assert_eq!(sim.room.poll_timeout(), None);
    let late = sim.join("u2", "hanako", Role::Learner);
    assert_eq!(sim.closed[&late], Some(CloseCode::LectureEnded));
}

#[test]
fn learners_may_enter_exactly_when_the_doors_open_and_not_a_millisecond_before() {
    let doors = START.minus_ms(60 * MIN);
    let mut sim = Sim::new(doors.minus_ms(1));
    let early = sim.join("u1", "taro", Role::Learner);
    assert_eq!(sim.closed[&early], Some(CloseCode::DoorsNotOpen));
    sim.run_until(doors);
    let on_time = sim.join("u1", "taro", Role::Learner);
    assert!(!sim.closed.contains_key(&on_time));
    assert_eq!(sim.welcome(on_time).phase, Phase::DoorsOpen);
}

#[test]
fn the_instructor_starts_early_and_ends_the_lecture_for_everyone() {
    let mut sim = doors_open_sim();
    let sensei = sim.join("t1", "先生", Role::Instructor);
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.send(taro, ClientMsg::StartLecture);
    assert_eq!(sim.errors(taro), vec![ErrorCode::NotAllowed]);
    sim.send(sensei, ClientMsg::StartLecture);
    assert!(matches!(sim.room.phase(), Phase::Live { .. }));
    sim.send(sensei, ClientMsg::StartLecture);
    assert_eq!(sim.errors(sensei), vec![ErrorCode::WrongPhase]);
    sim.take(taro);
    sim.send(sensei, ClientMsg::EndLecture);
    let last = sim.take(taro);
    assert!(
        matches!(
            last.last(),
            Some(ServerMsg::Phase {
                phase: Phase::Ended { .. }
            })
        ),
        "{last:?}"
    );
    assert_eq!(sim.closed[&taro], Some(CloseCode::LectureEnded));
}

#[test]
fn a_cancelled_lecture_tells_everyone_why_and_closes() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.take(taro);
    sim.room.handle_cancel(sim.now, "講師急病のため".into());
    sim.drain();
    assert_eq!(
        sim.take(taro),
        vec![ServerMsg::Phase {
            phase: Phase::Cancelled {
                reason: "講師急病のため".into()
            }
        }]
    );
    assert_eq!(sim.closed[&taro], Some(CloseCode::LectureCancelled));
    let again = sim.join("u1", "taro", Role::Learner);
    assert_eq!(sim.closed[&again], Some(CloseCode::LectureCancelled));
}

// ----- acknowledgements and exactly-once -----

fn chat(text: &str) -> ClientMsg {
    ClientMsg::Chat {
        text: text.into(),
        question: false,
    }
}

fn chat_texts(msgs: &[ServerMsg]) -> Vec<String> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMsg::Chat {
                event: ChatEvent::Message(m),
            } => Some(m.text.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_numbered_command_is_acknowledged_after_what_it_caused() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    let hanako = sim.join("u2", "hanako", Role::Learner);
    sim.take(taro);
    sim.send_numbered(taro, 7, chat("hello"));
    let got = sim.take(taro);
    assert_eq!(chat_texts(&got), ["hello"]);
    assert_eq!(got.last(), Some(&ServerMsg::Ack { id: CommandId(7) }));
    // Others see the chat, never the acknowledgement.
    assert!(
        !sim.take(hanako)
            .iter()
            .any(|m| matches!(m, ServerMsg::Ack { .. }))
    );
    // An unnumbered command gets no acknowledgement.
    sim.send(taro, chat("plain"));
    assert!(
        !sim.take(taro)
            .iter()
            .any(|m| matches!(m, ServerMsg::Ack { .. }))
    );
}

#[test]
fn a_command_sent_again_after_a_reconnect_takes_effect_once() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    let hanako = sim.join("u2", "hanako", Role::Learner);
    // The chat is applied, but the connection drops before its acknowledgement arrives.
    sim.send_numbered(taro, 41, chat("did this arrive?"));
    sim.drop_conn(taro);
    sim.take(hanako);
    // The client comes back and sends what it has no acknowledgement for.
    let back = sim.join("u1", "taro", Role::Learner);
    sim.take(back);
    sim.send_numbered(back, 41, chat("did this arrive?"));
    assert_eq!(sim.take(back), vec![ServerMsg::Ack { id: CommandId(41) }]);
    assert!(chat_texts(&sim.take(hanako)).is_empty(), "not twice");
    // A refused command is refused again, with the same code, never applied.
    sim.send_numbered(back, 42, ClientMsg::StartLecture);
    sim.send_numbered(back, 42, ClientMsg::StartLecture);
    let refusals: Vec<(ErrorCode, Option<CommandId>)> = sim
        .take(back)
        .into_iter()
        .filter_map(|m| match m {
            ServerMsg::Error { code, id, .. } => Some((code, id)),
            _ => None,
        })
        .collect();
    assert_eq!(
        refusals,
        vec![(ErrorCode::NotAllowed, Some(CommandId(42))); 2]
    );
}

#[test]
fn the_numbers_a_room_remembers_per_person_are_bounded() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    let total = RECENT_COMMANDS as u64 + 10;
    for id in 1..=total {
        sim.send_numbered(taro, id, ClientMsg::LeaveSeat);
    }
    let remembered = sim.room.attendees[&UserId::from("u1")].recent.0.len();
    assert_eq!(remembered, RECENT_COMMANDS);
    // The latest are still recognised.
    sim.take(taro);
    sim.send_numbered(taro, total, chat("late copy"));
    assert_eq!(
        sim.take(taro),
        vec![ServerMsg::Ack {
            id: CommandId(total)
        }]
    );
}

#[test]
fn a_connection_the_log_disconnects_while_its_node_holds_it_is_told_to_reconnect() {
    // Another node took this one for dead (it was only frozen) and its disconnect reached the
    // room: the node still holding the socket must close it, with a reconnect code.
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.send(
        taro,
        ClientMsg::TakeSeat {
            seat: Seat::new(1, 1),
        },
    );
    sim.room.handle_disconnect(sim.now, taro);
    sim.drain();
    assert_eq!(sim.closed[&taro], Some(CloseCode::ResyncRequired));
    // It resumes with its seat, which was held for it.
    let back = sim.join("u1", "taro", Role::Learner);
    assert_eq!(sim.welcome(back).your_seat, Some(Seat::new(1, 1)));
}

// ----- seats -----

#[test]
fn a_learner_sits_moves_and_everyone_sees_it_in_one_batch_per_tick() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    let hanako = sim.join("u2", "hanako", Role::Learner);
    sim.run_for(250);
    sim.take(hanako);
    sim.take_seat(taro, 0, 0);
    sim.take_seat(taro, 1, 2);
    sim.take_seat(taro, 1, 3);
    assert!(
        sim.take(hanako).is_empty(),
        "seat changes wait for the tick"
    );
    sim.run_for(250);
    let changes = seat_updates(&sim.take(hanako));
    let occupied: Vec<Seat> = changes
        .iter()
        .filter(|c| c.occupant.is_some())
        .map(|c| c.seat)
        .collect();
    assert_eq!(
        occupied,
        vec![Seat::new(1, 3)],
        "only the final seat is occupied: {changes:?}"
    );
    assert_eq!(changes.len(), 3, "each touched seat once");
    assert_eq!(sim.occupant(Seat::new(1, 3)), Some("u1"));
    assert_eq!(sim.occupant(Seat::new(0, 0)), None);
}

#[test]
fn a_taken_or_missing_seat_is_refused_with_a_clear_error() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    let hanako = sim.join("u2", "hanako", Role::Learner);
    sim.take_seat(taro, 0, 0);
    sim.take_seat(hanako, 0, 0);
    assert_eq!(sim.errors(hanako), vec![ErrorCode::SeatTaken]);
    sim.take_seat(hanako, 4, 0);
    assert_eq!(sim.errors(hanako), vec![ErrorCode::SeatOutOfRange]);
    let sensei = sim.join("t1", "先生", Role::Instructor);
    sim.take_seat(sensei, 2, 2);
    assert_eq!(
        sim.errors(sensei),
        vec![ErrorCode::NotAllowed],
        "the grid is for learners"
    );
}

#[test]
fn a_dropped_learner_gets_the_same_seat_back_within_the_grace_period() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    let hanako = sim.join("u2", "hanako", Role::Learner);
    sim.take_seat(taro, 2, 2);
    sim.drop_conn(taro);
    sim.run_for(250);
    let away = seat_updates(&sim.take(hanako));
    assert_eq!(
        away.last()
            .and_then(|c| c.occupant.as_ref())
            .map(|o| o.away),
        Some(true)
    );
    sim.take_seat(hanako, 2, 2);
    assert_eq!(
        sim.errors(hanako),
        vec![ErrorCode::SeatTaken],
        "a held seat is not free"
    );

    sim.run_for(2 * MIN - 1000);
    let back = sim.join("u1", "taro", Role::Learner);
    assert_eq!(sim.welcome(back).your_seat, Some(Seat::new(2, 2)));
    sim.run_for(10 * MIN);
    assert_eq!(
        sim.occupant(Seat::new(2, 2)),
        Some("u1"),
        "back in time: the hold is over"
    );
}

#[test]
fn a_seat_not_returned_to_is_freed_after_the_grace_period() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.take_seat(taro, 2, 2);
    sim.drop_conn(taro);
    sim.run_for(2 * MIN - 1);
    assert_eq!(sim.occupant(Seat::new(2, 2)), Some("u1"));
    sim.run_for(1);
    assert_eq!(sim.occupant(Seat::new(2, 2)), None);
    let back = sim.join("u1", "taro", Role::Learner);
    assert_eq!(sim.welcome(back).your_seat, None);
}

#[test]
fn leaving_frees_the_seat_at_once_and_closes_normally() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.take_seat(taro, 1, 1);
    sim.send(taro, ClientMsg::Leave);
    assert_eq!(sim.closed[&taro], None);
    assert_eq!(sim.occupant(Seat::new(1, 1)), None);
    assert_eq!(sim.room.connection_count(), 0);
}

#[test]
fn a_second_connection_of_the_same_learner_replaces_the_first() {
    let mut sim = doors_open_sim();
    let tab1 = sim.join("u1", "taro", Role::Learner);
    sim.take_seat(tab1, 0, 1);
    let tab2 = sim.join("u1", "taro", Role::Learner);
    assert_eq!(sim.closed[&tab1], Some(CloseCode::Replaced));
    assert_eq!(sim.welcome(tab2).your_seat, Some(Seat::new(0, 1)));
    assert_eq!(sim.room.connection_count(), 1);
    assert_eq!(
        sim.room.held_seat_count(),
        0,
        "the old connection's end does not hold the seat"
    );
}

// ----- chat -----

#[test]
fn chat_gets_increasing_offsets_and_the_authors_nickname() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    let hanako = sim.join("u2", "hanako", Role::Learner);
    sim.chat(taro, "  おはようございます  ");
    sim.chat(hanako, "hello");
    let events = chat_events(&sim.take(hanako));
    assert_eq!(
        events.iter().map(|e| e.offset().0).collect::<Vec<_>>(),
        vec![1, 2]
    );
    match &events[0] {
        ChatEvent::Message(m) => {
            assert_eq!(m.nickname.as_str(), "taro");
            assert_eq!(m.text, "おはようございます", "trimmed");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_chat_is_refused_and_takes_no_offset() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.chat(taro, "   ");
    sim.chat(taro, &"x".repeat(501));
    sim.chat(taro, "bell\u{7}");
    assert_eq!(
        sim.errors(taro),
        vec![
            ErrorCode::ChatEmpty,
            ErrorCode::TextTooLong,
            ErrorCode::InvalidCharacters
        ]
    );
    sim.chat(taro, "ok");
    assert_eq!(chat_events(&sim.take(taro))[0].offset(), ChatOffset(1));
}

#[test]
fn history_is_bounded_and_feeds_the_welcome() {
    let settings = RoomSettings {
        history_len: 10,
        ..RoomSettings::default()
    };
    let mut sim = Sim::with(spec(), settings, START);
    let taro = sim.join("u1", "taro", Role::Learner);
    for i in 0..25 {
        sim.chat(taro, &format!("m{i}"));
        // At a learner's pace (chat lines are rate-limited).
        sim.run_for(2_000);
    }
    let hanako = sim.join("u2", "hanako", Role::Learner);
    let w = sim.welcome(hanako);
    assert_eq!(w.replay, Replay::Snapshot);
    assert_eq!(
        texts(&w.chat),
        (15..25).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    assert_eq!(w.last_offset, ChatOffset(25));
}

#[test]
fn a_learner_cannot_flood_the_chat_but_staff_answer_freely() {
    let mut sim = doors_open_sim();
    let sensei = sim.join("t1", "先生", Role::Instructor);
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.take(taro);
    for i in 0..10 {
        sim.chat(taro, &format!("flood {i}"));
    }
    let got = sim.take(taro);
    assert_eq!(chat_texts(&got).len(), 5, "a burst of five");
    assert_eq!(
        got.iter()
            .filter(|m| matches!(
                m,
                ServerMsg::Error {
                    code: ErrorCode::RateLimited,
                    ..
                }
            ))
            .count(),
        5
    );
    // One more line every two seconds.
    sim.run_for(2_000);
    sim.chat(taro, "later");
    assert_eq!(chat_texts(&sim.take(taro)), ["later"]);
    // The instructor is not limited.
    for i in 0..20 {
        sim.chat(sensei, &format!("answer {i}"));
    }
    assert_eq!(chat_texts(&sim.take(taro)).len(), 20);
}

#[test]
fn a_returning_client_gets_exactly_what_it_missed() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    let hanako = sim.join("u2", "hanako", Role::Learner);
    let epoch = sim.welcome(hanako).epoch;
    sim.chat(taro, "one");
    sim.chat(taro, "two");
    let seen = chat_events(&sim.take(hanako))
        .last()
        .map(ChatEvent::offset)
        .expect("saw two");
    sim.drop_conn(hanako);
    sim.chat(taro, "three");
    sim.chat(taro, "four");
    let back = sim.join_resuming(
        "u2",
        "hanako",
        Role::Learner,
        Some(ResumeFrom {
            epoch,
            offset: seen,
        }),
    );
    let w = sim.welcome(back);
    assert_eq!(w.replay, Replay::Missed);
    assert_eq!(texts(&w.chat), vec!["three", "four"]);
}

#[test]
fn a_resume_that_history_cannot_serve_gets_a_snapshot() {
    let settings = RoomSettings {
        history_len: 3,
        epoch: Epoch(9),
        ..RoomSettings::default()
    };
    let mut sim = Sim::with(spec(), settings, START);
    let taro = sim.join("u1", "taro", Role::Learner);
    for i in 0..10 {
        sim.chat(taro, &format!("m{i}"));
        sim.run_for(2_000);
    }
    let too_old = ResumeFrom {
        epoch: Epoch(9),
        offset: ChatOffset(2),
    };
    let c = sim.join_resuming("u2", "hanako", Role::Learner, Some(too_old));
    assert_eq!(sim.welcome(c).replay, Replay::Snapshot);
    let other_epoch = ResumeFrom {
        epoch: Epoch(8),
        offset: ChatOffset(9),
    };
    let c = sim.join_resuming("u2", "hanako", Role::Learner, Some(other_epoch));
    assert_eq!(sim.welcome(c).replay, Replay::Snapshot);
    let from_the_future = ResumeFrom {
        epoch: Epoch(9),
        offset: ChatOffset(99),
    };
    let c = sim.join_resuming("u2", "hanako", Role::Learner, Some(from_the_future));
    assert_eq!(sim.welcome(c).replay, Replay::Snapshot);
    let just_in_reach = ResumeFrom {
        epoch: Epoch(9),
        offset: ChatOffset(7),
    };
    let c = sim.join_resuming("u2", "hanako", Role::Learner, Some(just_in_reach));
    let w = sim.welcome(c);
    assert_eq!(
        (w.replay, texts(&w.chat)),
        (
            Replay::Missed,
            vec!["m7".to_owned(), "m8".into(), "m9".into()]
        )
    );
}

#[test]
fn questions_are_answered_and_messages_deleted_for_everyone() {
    let mut sim = doors_open_sim();
    let sensei = sim.join("t1", "先生", Role::Instructor);
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.send(
        taro,
        ClientMsg::Chat {
            text: "質問です".into(),
            question: true,
        },
    );
    sim.chat(taro, "spam");
    sim.send(
        taro,
        ClientMsg::MarkAnswered {
            offset: ChatOffset(1),
        },
    );
    sim.send(
        taro,
        ClientMsg::DeleteChat {
            offset: ChatOffset(2),
        },
    );
    let errors = sim.errors(taro);
    assert_eq!(errors, vec![ErrorCode::NotAllowed, ErrorCode::NotAllowed]);
    sim.send(
        sensei,
        ClientMsg::MarkAnswered {
            offset: ChatOffset(2),
        },
    );
    assert_eq!(sim.errors(sensei), vec![ErrorCode::NotAQuestion]);
    sim.send(
        sensei,
        ClientMsg::MarkAnswered {
            offset: ChatOffset(1),
        },
    );
    sim.send(
        sensei,
        ClientMsg::DeleteChat {
            offset: ChatOffset(2),
        },
    );
    sim.send(
        sensei,
        ClientMsg::DeleteChat {
            offset: ChatOffset(77),
        },
    );
    assert_eq!(sim.errors(sensei), vec![ErrorCode::NotFound]);
    let events = chat_events(&sim.take(taro));
    assert!(
        matches!(
            events[..],
            [
                ChatEvent::Answered {
                    offset: ChatOffset(3),
                    target: ChatOffset(1),
                    ..
                },
                ChatEvent::Deleted {
                    offset: ChatOffset(4),
                    target: ChatOffset(2),
                    ..
                },
            ]
        ),
        "{events:?}"
    );
    let late = sim.join("u2", "hanako", Role::Learner);
    let w = sim.welcome(late);
    match &w.chat[..] {
        [ChatEvent::Message(q), ChatEvent::Message(spam), ..] => {
            assert!(q.question && q.answered);
            assert!(
                spam.deleted && spam.text.is_empty(),
                "a deleted text never reaches a newcomer"
            );
        }
        other => panic!("{other:?}"),
    }
}

// ----- reactions -----

#[test]
fn reactions_are_batched_per_tick_and_the_instructor_gets_the_meter() {
    let mut sim = doors_open_sim();
    let sensei = sim.join("t1", "先生", Role::Instructor);
    let learners: Vec<ConnId> = (0..8)
        .map(|i| sim.join(&format!("u{i}"), &format!("n{i}"), Role::Learner))
        .collect();
    sim.take_seat(learners[0], 0, 0);
    sim.run_for(250);
    sim.take(learners[1]);
    sim.take(sensei);
    for (i, c) in learners.iter().enumerate() {
        let emotion = if i % 2 == 0 { "good" } else { "lost" };
        sim.send(
            *c,
            ClientMsg::React {
                emotion: EmotionKey::from(emotion),
            },
        );
    }
    assert!(
        sim.take(learners[1]).is_empty(),
        "never one message per press"
    );
    sim.run_for(250);
    let got = sim.take(learners[1]);
    assert_eq!(got.len(), 1);
    let ServerMsg::Update(update) = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(
        update.burst,
        BTreeMap::from([(EmotionKey::from("good"), 4), (EmotionKey::from("lost"), 4)])
    );
    let meter = sim
        .take(sensei)
        .into_iter()
        .find_map(|m| match m {
            ServerMsg::Meter(m) => Some(m),
            _ => None,
        })
        .expect("the instructor gets a meter");
    assert_eq!(meter.totals.values().sum::<u64>(), 8);
    assert_eq!(
        meter.seats,
        vec![protocol::server::SeatReaction {
            seat: Seat::new(0, 0),
            emotion: "good".into()
        }]
    );
    assert!(
        sim.take(learners[1])
            .iter()
            .all(|m| !matches!(m, ServerMsg::Meter(_))),
        "learners get no meter"
    );
}

#[test]
fn a_learner_pressing_too_fast_is_limited_and_told_once_per_tick() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    for _ in 0..30 {
        sim.send(
            taro,
            ClientMsg::React {
                emotion: "applause".into(),
            },
        );
    }
    assert_eq!(sim.errors(taro), vec![ErrorCode::RateLimited]);
    assert_eq!(sim.room.reactions.total(&"applause".into()), 10);
    sim.send(
        taro,
        ClientMsg::React {
            emotion: "dance".into(),
        },
    );
    assert_eq!(sim.errors(taro), vec![ErrorCode::UnknownEmotion]);
}

#[test]
fn a_lecture_may_bring_its_own_emotion_buttons() {
    let mut own = spec();
    own.emotions = vec![protocol::server::Emotion {
        key: "wow".into(),
        label_ja: "すごい".into(),
        label_en: "Wow".into(),
    }];
    let mut sim = Sim::with(own, RoomSettings::default(), START);
    let taro = sim.join("u1", "taro", Role::Learner);
    assert_eq!(sim.welcome(taro).lecture.emotions.len(), 1);
    sim.send(
        taro,
        ClientMsg::React {
            emotion: "good".into(),
        },
    );
    assert_eq!(sim.errors(taro), vec![ErrorCode::UnknownEmotion]);
}

// ----- calls, announcements, moderation -----

#[test]
fn a_called_learner_is_told_everyone_sees_it_and_the_next_message_is_the_answer() {
    let mut sim = doors_open_sim();
    let sensei = sim.join("t1", "先生", Role::Instructor);
    let taro = sim.join("u1", "taro", Role::Learner);
    let hanako = sim.join("u2", "hanako", Role::Learner);
    sim.take_seat(hanako, 3, 4);
    sim.take(taro);
    sim.take(hanako);
    sim.send(
        sensei,
        ClientMsg::CallOn {
            nickname: Some("taro".into()),
            seat: None,
        },
    );
    let to_taro = sim.take(taro);
    assert!(
        to_taro
            .iter()
            .any(|m| matches!(m, ServerMsg::CalledOnYou { by, .. } if by.as_str() == "先生"))
    );
    let seen = sim.take(hanako);
    assert!(
        matches!(&seen[..], [ServerMsg::Call { current: Some(c) }] if c.nickname.as_str() == "taro"),
        "{seen:?}"
    );

    sim.chat(taro, "はい、わかります");
    sim.chat(taro, "追加です");
    let events = chat_events(&sim.take(hanako));
    let answers: Vec<bool> = events
        .iter()
        .map(|e| matches!(e, ChatEvent::Message(m) if m.call_answer))
        .collect();
    assert_eq!(answers, vec![true, false]);

    sim.send(
        sensei,
        ClientMsg::CallOn {
            nickname: None,
            seat: Some(Seat::new(3, 4)),
        },
    );
    assert!(
        sim.take(hanako)
            .iter()
            .any(|m| matches!(m, ServerMsg::CalledOnYou { .. }))
    );
    sim.send(sensei, ClientMsg::ClearCall);
    assert!(sim.take(taro).contains(&ServerMsg::Call { current: None }));
}

#[test]
fn calling_on_an_unknown_or_ambiguous_nickname_is_refused() {
    let mut sim = doors_open_sim();
    let sensei = sim.join("t1", "先生", Role::Instructor);
    sim.join("u1", "sato", Role::Learner);
    sim.join("u2", "sato", Role::Learner);
    let learner = sim.join("u3", "kei", Role::Learner);
    sim.send(
        sensei,
        ClientMsg::CallOn {
            nickname: Some("sato".into()),
            seat: None,
        },
    );
    sim.send(
        sensei,
        ClientMsg::CallOn {
            nickname: Some("nobody".into()),
            seat: None,
        },
    );
    sim.send(
        sensei,
        ClientMsg::CallOn {
            nickname: None,
            seat: Some(Seat::new(0, 0)),
        },
    );
    sim.send(
        sensei,
        ClientMsg::CallOn {
            nickname: None,
            seat: None,
        },
    );
    assert_eq!(
        sim.errors(sensei),
        vec![
            ErrorCode::AmbiguousNickname,
            ErrorCode::NotFound,
            ErrorCode::NotFound,
            ErrorCode::InvalidArgument
        ]
    );
    sim.send(
        learner,
        ClientMsg::CallOn {
            nickname: Some("sato".into()),
            seat: None,
        },
    );
    assert_eq!(sim.errors(learner), vec![ErrorCode::NotAllowed]);
}

#[test]
fn the_announcement_is_pinned_and_in_every_welcome() {
    let mut sim = doors_open_sim();
    let sensei = sim.join("t1", "先生", Role::Instructor);
    sim.send(
        sensei,
        ClientMsg::Announce {
            text: "資料は p.12 から".into(),
        },
    );
    let taro = sim.join("u1", "taro", Role::Learner);
    let w = sim.welcome(taro);
    assert_eq!(
        w.announcement.map(|a| a.text),
        Some("資料は p.12 から".into())
    );
    sim.send(taro, ClientMsg::Announce { text: "me".into() });
    assert_eq!(sim.errors(taro), vec![ErrorCode::NotAllowed]);
    sim.send(sensei, ClientMsg::ClearAnnouncement);
    assert!(
        sim.take(taro)
            .contains(&ServerMsg::Announcement { current: None })
    );
}

#[test]
fn a_muted_learner_cannot_chat_until_the_mute_ends() {
    let mut sim = doors_open_sim();
    let moderator = sim.join("m1", "assist", Role::Moderator);
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.send(
        moderator,
        ClientMsg::Mute {
            user: "u1".into(),
            seconds: 60,
        },
    );
    assert!(matches!(
        sim.take(taro)[..],
        [.., ServerMsg::Muted { until: Some(_) }]
    ));
    sim.chat(taro, "hello?");
    assert_eq!(sim.errors(taro), vec![ErrorCode::Muted]);
    // A reconnect does not lift it.
    sim.drop_conn(taro);
    let taro = sim.join("u1", "taro", Role::Learner);
    assert!(sim.welcome(taro).muted_until.is_some());
    sim.run_for(60_000);
    sim.chat(taro, "back");
    assert!(sim.errors(taro).is_empty());
    sim.send(
        moderator,
        ClientMsg::Mute {
            user: "t9".into(),
            seconds: 60,
        },
    );
    sim.send(
        moderator,
        ClientMsg::Mute {
            user: "u1".into(),
            seconds: 0,
        },
    );
    assert_eq!(
        sim.errors(moderator),
        vec![ErrorCode::NotFound, ErrorCode::InvalidArgument]
    );
}

#[test]
fn a_removed_learner_loses_the_seat_and_may_or_may_not_return() {
    let mut sim = doors_open_sim();
    let sensei = sim.join("t1", "先生", Role::Instructor);
    let moderator = sim.join("m1", "assist", Role::Moderator);
    let taro = sim.join("u1", "taro", Role::Learner);
    let jiro = sim.join("u2", "jiro", Role::Learner);
    sim.take_seat(taro, 0, 0);
    sim.send(
        moderator,
        ClientMsg::Remove {
            user: "u1".into(),
            allow_return: true,
        },
    );
    assert_eq!(sim.closed[&taro], Some(CloseCode::Removed));
    assert_eq!(sim.occupant(Seat::new(0, 0)), None);
    let taro = sim.join("u1", "taro", Role::Learner);
    assert!(!sim.closed.contains_key(&taro));

    sim.send(
        sensei,
        ClientMsg::Remove {
            user: "u2".into(),
            allow_return: false,
        },
    );
    assert_eq!(sim.closed[&jiro], Some(CloseCode::Banned));
    let again = sim.join("u2", "jiro", Role::Learner);
    assert_eq!(sim.closed[&again], Some(CloseCode::Banned));
    assert_eq!(
        sim.bans,
        vec![("acct-u2".into(), sim.now)],
        "the ban is reported once, for the records; a removal with return is not a ban"
    );

    sim.send(
        moderator,
        ClientMsg::Remove {
            user: "t1".into(),
            allow_return: true,
        },
    );
    assert_eq!(
        sim.errors(moderator),
        vec![ErrorCode::NotAllowed],
        "staff are not moderated"
    );
    sim.send(
        taro,
        ClientMsg::Remove {
            user: "m1".into(),
            allow_return: false,
        },
    );
    assert_eq!(sim.errors(taro), vec![ErrorCode::NotAllowed]);
}

#[test]
fn a_learner_is_refused_every_instructor_action_and_the_room_is_unchanged() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.join("u2", "hanako", Role::Learner);
    let staff_only = vec![
        ClientMsg::DeleteChat {
            offset: ChatOffset(1),
        },
        ClientMsg::MarkAnswered {
            offset: ChatOffset(1),
        },
        ClientMsg::CallOn {
            nickname: Some("hanako".into()),
            seat: None,
        },
        ClientMsg::ClearCall,
        ClientMsg::Announce { text: "hi".into() },
        ClientMsg::ClearAnnouncement,
        ClientMsg::Mute {
            user: "u2".into(),
            seconds: 10,
        },
        ClientMsg::Unmute { user: "u2".into() },
        ClientMsg::Remove {
            user: "u2".into(),
            allow_return: false,
        },
        ClientMsg::StartLecture,
        ClientMsg::EndLecture,
    ];
    let n = staff_only.len();
    for msg in staff_only {
        sim.send(taro, msg);
    }
    assert_eq!(sim.errors(taro), vec![ErrorCode::NotAllowed; n]);
    assert_eq!(sim.room.phase(), &Phase::DoorsOpen);
    assert_eq!(sim.room.connection_count(), 2);
    assert!(
        sim.room.announcement.is_none() && sim.room.call.is_none() && sim.room.banned.is_empty()
    );
}

#[test]
fn an_hour_of_lecture_runs_in_virtual_time() {
    let mut sim = doors_open_sim();
    let sensei = sim.join("t1", "先生", Role::Instructor);
    let learners: Vec<ConnId> = (0..20)
        .map(|i| sim.join(&format!("u{i}"), &format!("n{i}"), Role::Learner))
        .collect();
    for (i, c) in learners.iter().enumerate() {
        let i = u16::try_from(i).expect("few learners");
        sim.take_seat(*c, i / 5, i % 5);
    }
    sim.run_until(START);
    for minute in 0..60 {
        for c in learners.iter().take(5) {
            sim.chat(*c, &format!("minute {minute}"));
            sim.send(
                *c,
                ClientMsg::React {
                    emotion: "good".into(),
                },
            );
        }
        sim.run_for(MIN);
    }
    sim.send(sensei, ClientMsg::EndLecture);
    assert_eq!(sim.room.chat.last(), ChatOffset(300));
    assert_eq!(sim.room.reactions.total(&"good".into()), 300);
    let seen = chat_events(&sim.take(learners[19]));
    assert_eq!(seen.len(), 300);
    assert!(
        seen.windows(2)
            .all(|w| w[1].offset() == w[0].offset().next())
    );
}

#[test]
fn a_revoked_learner_is_removed_and_older_tickets_are_refused() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.take_seat(taro, 2, 2);
    let revoked_at = sim.now;
    sim.room.handle_revoke(sim.now, "u1".into(), revoked_at);
    sim.drain();
    assert_eq!(sim.closed[&taro], Some(CloseCode::Revoked));
    assert_eq!(
        sim.occupant(Seat::new(2, 2)),
        None,
        "the seat is freed, not held"
    );
    // A ticket issued at or before the revocation is refused…
    let old = sim.join("u1", "taro", Role::Learner);
    assert_eq!(sim.closed[&old], Some(CloseCode::Revoked));
    // …a ticket issued after it (entitlement given back) is let in.
    sim.run_for(1000);
    let fresh = sim.join("u1", "taro", Role::Learner);
    assert!(!sim.closed.contains_key(&fresh));
}

#[test]
fn every_stay_is_reported_with_the_seat_it_ended_in() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.take_seat(taro, 1, 3);
    sim.drop_conn(taro);
    let back = sim.join("u1", "taro", Role::Learner);
    sim.send(back, ClientMsg::Leave);
    let stays: Vec<(ConnId, bool, Option<Seat>)> = sim
        .attendance
        .iter()
        .map(|a| match a {
            Attendance::Entered { conn, .. } => (*conn, true, None),
            Attendance::Left { conn, seat, .. } => (*conn, false, *seat),
        })
        .collect();
    assert_eq!(
        stays,
        vec![
            (taro, true, None),
            (taro, false, Some(Seat::new(1, 3))),
            (back, true, None),
            (back, false, Some(Seat::new(1, 3))),
        ]
    );
    let sensei = sim.join("t1", "先生", Role::Instructor);
    sim.send(sensei, ClientMsg::EndLecture);
    assert!(
        sim.ended_at.is_some(),
        "the end is reported for the records"
    );
}

#[test]
fn a_rescheduled_lecture_goes_live_at_its_new_time_and_everyone_is_told() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.take(taro);
    let later = START.plus_ms(15 * MIN);
    sim.room.handle_reschedule(
        sim.now,
        "Rust 入門(延長)".into(),
        later,
        later.plus_ms(90 * MIN),
    );
    sim.drain();
    let told = sim.take(taro);
    assert!(
        matches!(&told[..], [ServerMsg::Lecture { lecture }] if lecture.starts_at == later && lecture.title.contains("延長")),
        "{told:?}"
    );
    sim.run_until(START);
    assert_eq!(
        sim.room.phase(),
        &Phase::DoorsOpen,
        "not live at the old start"
    );
    sim.run_until(later);
    assert_eq!(sim.room.phase(), &Phase::Live { since: later });
}

// ----- invariants under random use -----

#[derive(Clone, Debug)]
enum Step {
    Join(usize),
    Drop(usize),
    Leave(usize),
    Sit(usize, u16, u16),
    Stand(usize),
    Chat(usize, bool),
    React(usize, usize),
    Staff(usize, usize),
    Wait(u64),
}

const PEOPLE: usize = 6;

fn step() -> impl Strategy<Value = Step> {
    let who = 0..PEOPLE;
    prop_oneof![
        3 => who.clone().prop_map(Step::Join),
        1 => who.clone().prop_map(Step::Drop),
        1 => who.clone().prop_map(Step::Leave),
        4 => (who.clone(), 0..4u16, 0..5u16).prop_map(|(w, r, c)| Step::Sit(w, r, c)),
        1 => who.clone().prop_map(Step::Stand),
        3 => (who.clone(), any::<bool>()).prop_map(|(w, q)| Step::Chat(w, q)),
        3 => (who.clone(), 0..6usize).prop_map(|(w, e)| Step::React(w, e)),
        2 => (who.clone(), 0..9usize).prop_map(|(w, a)| Step::Staff(w, a)),
        2 => (1..200_000u64).prop_map(Step::Wait),
    ]
}

/// Person 0 is the instructor, person 1 a moderator, the rest learners.
fn role_of(who: usize) -> Role {
    match who {
        0 => Role::Instructor,
        1 => Role::Moderator,
        _ => Role::Learner,
    }
}

fn staff_action(action: usize, target: usize) -> ClientMsg {
    let user = UserId::from(format!("u{target}"));
    match action {
        0 => ClientMsg::DeleteChat {
            offset: ChatOffset(target as u64 + 1),
        },
        1 => ClientMsg::MarkAnswered {
            offset: ChatOffset(target as u64 + 1),
        },
        2 => ClientMsg::CallOn {
            nickname: Some(format!("n{target}").into()),
            seat: None,
        },
        3 => ClientMsg::ClearCall,
        4 => ClientMsg::Announce {
            text: format!("notice {target}"),
        },
        5 => ClientMsg::Mute { user, seconds: 30 },
        6 => ClientMsg::Unmute { user },
        7 => ClientMsg::Remove {
            user,
            allow_return: true,
        },
        _ => ClientMsg::Remove {
            user,
            allow_return: false,
        },
    }
}

impl Room {
    /// Every invariant of ARCHITECTURE.md that the room's own state can show.
    fn assert_invariants(&self) {
        self.grid.assert_consistent();
        for (user, _) in self.grid.occupied() {
            let a = &self.attendees[user];
            assert_eq!(a.role, Role::Learner, "only learners sit");
            assert!(
                !self.banned.contains(user),
                "a banned learner keeps no seat"
            );
        }
        for (conn, user) in &self.conns {
            assert_eq!(
                self.attendees[user].conn,
                Some(*conn),
                "a person has one connection"
            );
            assert!(
                !self.banned.contains(user),
                "a banned learner is not in the room"
            );
        }
        let staff: BTreeSet<ConnId> = self
            .conns
            .iter()
            .filter(|(_, user)| self.attendees[*user].role.is_staff())
            .map(|(conn, _)| *conn)
            .collect();
        assert_eq!(
            self.staff_conns, staff,
            "the staff index holds exactly the staff's connections"
        );
        let history = self.chat.history();
        assert!(
            history
                .iter()
                .zip(history.iter().skip(1))
                .all(|(a, b)| b.offset() == a.offset().next())
        );
        assert_eq!(
            history.back().map_or(self.chat.last(), ChatEvent::offset),
            self.chat.last()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_after_every_step(steps in prop::collection::vec(step(), 1..120)) {
        // A huge burst lets every valid press through, so totals must equal presses sent.
        let settings = RoomSettings { reaction_burst: 1_000_000, ..RoomSettings::default() };
        let mut sim = Sim::with(spec(), settings, START.minus_ms(30 * MIN));
        let observer = sim.join("observer", "obs", Role::Instructor);
        let mut conns: Vec<Option<ConnId>> = vec![None; PEOPLE];
        let mut expected_presses = 0u64;
        let mut first_offset: HashMap<ConnId, ChatOffset> = HashMap::new();
        for step in steps {
            let live = |c: &Option<ConnId>, sim: &Sim| c.filter(|c| !sim.closed.contains_key(c));
            match step {
                Step::Join(w) => {
                    let c = sim.join(&format!("u{w}"), &format!("n{w}"), role_of(w));
                    if let Some(ServerMsg::Welcome(welcome)) = sim.inbox.get(&c).and_then(|m| m.first()) {
                        first_offset.insert(c, welcome.last_offset);
                    }
                    conns[w] = Some(c);
                }
                Step::Drop(w) => if let Some(c) = live(&conns[w], &sim) { sim.drop_conn(c) },
                Step::Leave(w) => if let Some(c) = live(&conns[w], &sim) { sim.send(c, ClientMsg::Leave) },
                Step::Sit(w, r, col) => if let Some(c) = live(&conns[w], &sim) { sim.take_seat(c, r, col) },
                Step::Stand(w) => if let Some(c) = live(&conns[w], &sim) { sim.send(c, ClientMsg::LeaveSeat) },
                Step::Chat(w, q) => if let Some(c) = live(&conns[w], &sim) {
                    sim.send(c, ClientMsg::Chat { text: format!("from {w}"), question: q });
                },
                Step::React(w, e) => if let Some(c) = live(&conns[w], &sim) {
                    let keys = ["good", "i_see", "lost", "applause", "slower", "nope"];
                    let valid = role_of(w) == Role::Learner && e < 5 && !sim.room.is_over();
                    sim.send(c, ClientMsg::React { emotion: keys[e].into() });
                    expected_presses += u64::from(valid);
                },
                Step::Staff(w, a) => if let Some(c) = live(&conns[w], &sim) {
                    sim.take(c);
                    let before = (sim.room.banned.len(), sim.room.connection_count(), sim.room.chat.last());
                    sim.send(c, staff_action(a, (w + a) % PEOPLE));
                    if !role_of(w).is_staff() {
                        let errors = sim.errors(c);
                        prop_assert_eq!(errors, vec![ErrorCode::NotAllowed]);
                        let after = (sim.room.banned.len(), sim.room.connection_count(), sim.room.chat.last());
                        prop_assert_eq!(before, after, "a refused command changes nothing");
                    }
                },
                Step::Wait(ms) => sim.run_for(ms),
            }
            sim.room.assert_invariants();
        }
        sim.run_for(250);
        let totals: u64 = sim.room.reactions.grand_total();
        prop_assert_eq!(totals, expected_presses);
        if !sim.closed.contains_key(&observer) {
            let metered: u64 = sim.take(observer).iter().filter_map(|m| match m {
                ServerMsg::Meter(m) => Some(m.tally.values().map(|v| u64::from(*v)).sum::<u64>()),
                _ => None,
            }).sum();
            prop_assert_eq!(metered, expected_presses, "the instructor's tallies add up to every accepted press");
        }
        // Every client saw the chat stream in order with no gaps, from where its welcome left off.
        for (conn, msgs) in &sim.log {
            let mut last = first_offset.get(conn).copied().unwrap_or_default();
            for event in chat_events(msgs) {
                prop_assert_eq!(event.offset(), last.next());
                last = event.offset();
            }
        }
    }
}
