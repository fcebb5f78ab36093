//! The room driven by simulated clients in virtual time: an hour of lecture runs in
//! milliseconds, and property tests check the invariants after every step.

use super::*;
use proptest::prelude::*;
use protocol::server::{ChatEvent, LectureInfo, Replay};
use protocol::{ClientMsg, Command, CommandId, EmotionKey, Epoch};
use std::collections::BTreeMap;

const MIN: u64 = 60_000;
/// Scheduled start of the simulated lecture.
const START: UnixMillis = UnixMillis(1_800_000_000_000);

fn spec() -> LectureInfo {
    LectureInfo {
        id: LectureId::from("lec-1"),
        title: "Rust 入門".into(),
        starts_at: START,
        ends_at: START.plus_ms(90 * MIN),
        rows: 4,
        cols: 5,
        emotions: vec![],
        chat_max_chars: 0,
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

    fn with(spec: LectureInfo, settings: RoomSettings, now: UnixMillis) -> Self {
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
                Output::Started { .. } => {}
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

/// The seat changes in a staff member's updates, occupants and all.
fn seat_updates(msgs: &[ServerMsg]) -> Vec<SeatChange> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMsg::Update(u) => Some(u.seats.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// The updates a connection got.
fn updates(msgs: &[ServerMsg]) -> Vec<protocol::server::RoomUpdate> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMsg::Update(u) => Some(u.clone()),
            _ => None,
        })
        .collect()
}

/// Seat numbers in a 4 × 5 grid (the simulated lecture's), for comparing with the wire's.
fn numbers(seats: &[(u16, u16)]) -> Vec<SeatNumber> {
    seats
        .iter()
        .map(|(r, c)| Seat::new(*r, *c).number(5))
        .collect()
}

/// The refusals among `msgs`: their codes and the commands' numbers.
fn refusals(msgs: Vec<ServerMsg>) -> Vec<(ErrorCode, Option<CommandId>)> {
    msgs.into_iter()
        .filter_map(|m| match m {
            ServerMsg::Error { code, id, .. } => Some((code, id)),
            _ => None,
        })
        .collect()
}

fn doors_open_sim() -> Sim {
    Sim::new(START.minus_ms(30 * MIN))
}

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

mod acks;
mod calls;
mod chat;
mod hands;
mod moderation;
mod phases;
mod properties;
mod reactions;
mod seats;
mod wire;
