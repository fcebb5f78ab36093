//! The lecture room as a sans-IO state machine.
//!
//! [`Room`] holds everything one lecture's room knows — phase, seat grid, chat stream,
//! reactions, the current call, the pinned announcement, moderation — and nothing about
//! sockets, tasks or clocks. The node feeds it inputs with the time passed in and drains what
//! it must do; tests drive it the same way with simulated clients and virtual time.
//!
//! # Driving a room
//! 1. Feed one input: [`Room::handle_join`], [`Room::handle_command`],
//!    [`Room::handle_disconnect`], [`Room::handle_timeout`] or [`Room::handle_cancel`]. A
//!    question that changes nothing ([`Room::handle_seat_names`]) is answered the same way,
//!    from any copy of the room.
//! 2. Drain [`Room::poll_output`] until it returns `None`. Resolve each output's [`Audience`]
//!    with [`Room::for_each_recipient`] while draining: it reflects the room after the input,
//!    which is what every output of that input was meant for.
//! 3. Read [`Room::poll_timeout`] and call [`Room::handle_timeout`] no later than that.
//!
//! A client's mistake becomes an `error` message to that client (or, for a refused entry, a
//! close), never a panic and never an `Err` that stops the room.
//!
//! # Layout
//! - [`spec`]: what a room is made from besides the lecture (the wire's `LectureInfo`): its
//!   settings and the default emotion buttons.
//! - `seats`: the grid, the only place seats change hands; its bitmaps and the tick's changes.
//! - `chat`: offsets, bounded history, resume, text rules.
//! - `allowance`: rate limits kept in the room (presses, chat lines), on the room's time.
//! - `reactions`: per-tick tally, rolling meter.
//! - `hands`: the raised-hand queue and its per-tick changes.
//! - `mutes`: the staff's list of muted learners and the end of mutes.
//! - `votes`: question upvotes, one per learner per question, and their per-tick counts.
//! - `commands`: what each client command does, with its role check.
//! - `tests/`: the room driven by simulated clients in virtual time, a file per facet (phases,
//!   seats, chat, reactions, calls, moderation, acknowledgements, what a full hall weighs on
//!   the wire) and the property tests.
//!
//! This crate depends on `protocol` only, and its `clippy.toml` refuses reading the clock: what
//! the room does follows from its inputs alone, on every node alike.

mod allowance;
mod chat;
mod commands;
mod hands;
mod mutes;
mod reactions;
mod seats;
pub mod spec;
#[cfg(test)]
mod tests;
mod votes;

pub use spec::{RoomSettings, default_emotions};

use allowance::Allowance;
use chat::ChatLog;
use hands::HandQueue;
use protocol::grid::{MAX_SEAT_NAMES, SeatName};
use protocol::server::{
    Announcement, CallInfo, LectureInfo, Occupant, Phase, RoomUpdate, SeatChange, SeatOccupant,
    Welcome, You,
};
use protocol::{
    ChatOffset, ClientMsg, CloseCode, Command, CommandId, ErrorCode, LectureId, Nickname,
    ResumeFrom, Role, Seat, SeatNumber, ServerMsg, UnixMillis, UserId,
};
use reactions::ReactionTally;
use seats::SeatGrid;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use votes::Votes;

/// One client connection, numbered by the node. A person has at most one in a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConnId(pub u64);

/// Who is behind a connection, as the verified ticket says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The person's id in this room: on the wire, in commands aimed at them, in seats and chat.
    /// A pseudonym of the account (see `TicketKey::pseudonym`), never the account id itself.
    pub user: UserId,
    /// The portal's account id: only for what the node records (attendance, bans); never sent
    /// to anyone in the room.
    pub account: UserId,
    /// Public nickname.
    pub nickname: Nickname,
    /// Role in this lecture.
    pub role: Role,
    /// When the ticket was issued: tickets issued before a revocation are refused.
    pub issued_at: UnixMillis,
}

/// Who an output is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// One connection.
    One(ConnId),
    /// Every connection in the room.
    Everyone,
    /// Instructors' and moderators' connections.
    Staff,
    /// Every connection but the staff's: the learners.
    Learners,
}

/// Something the node must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Send `msg` to everyone in `to`.
    Send {
        /// Recipients.
        to: Audience,
        /// The message; encode it once for all of them.
        msg: ServerMsg,
    },
    /// Close `conn` after what was sent to it before. `None` is a normal closure (1000) after
    /// the client's own `leave`.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why.
        code: Option<CloseCode>,
    },
    /// Someone's stay in the room began or ended: for the attendance records.
    Attendance(Attendance),
    /// The instructor started the delivery at this time (the clock's start at `starts_at` is
    /// not reported: everyone knows it).
    Started {
        /// When.
        at: UnixMillis,
    },
    /// The lecture ended at this time (the instructor ended it, or the clock did).
    Ended {
        /// When.
        at: UnixMillis,
    },
    /// Staff removed someone without return: for the records, so the ban outlives this room
    /// (a restart, the room closing while empty, another node's copy).
    Banned {
        /// Their account.
        account: UserId,
        /// When.
        at: UnixMillis,
    },
}

/// A stay in the room, one per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attendance {
    /// `conn` was let in.
    Entered {
        /// The connection.
        conn: ConnId,
        /// Whose (the account).
        account: UserId,
        /// Their role.
        role: Role,
        /// When.
        at: UnixMillis,
    },
    /// `conn` is no longer in the room.
    Left {
        /// The connection.
        conn: ConnId,
        /// When.
        at: UnixMillis,
        /// Where its person sat at that moment.
        seat: Option<Seat>,
    },
}

/// A person who has entered the room on this node, connected or not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Attendee {
    /// The portal's account, for what the node records.
    account: UserId,
    nickname: Nickname,
    role: Role,
    /// The live connection, if any.
    conn: Option<ConnId>,
    /// Set while the connection is gone and the seat is held for the learner's return.
    held_until: Option<UnixMillis>,
    /// Set while chat is muted by an instructor or moderator.
    muted_until: Option<UnixMillis>,
    presses: Allowance,
    /// Chat lines a learner may still send now (staff are not limited: they answer).
    chat_lines: Allowance,
    /// Tick in which the learner was last told they press too fast: at most one notice a tick.
    press_notice_tick: Option<u64>,
    /// The numbers of this person's latest numbered commands and how each ended, so a command
    /// sent again (after a reconnect, through any node) is answered again, not applied twice.
    recent: RecentCommands,
}

/// A person's latest numbered commands, oldest first: enough for every command a client may
/// leave unacknowledged ([`RECENT_COMMANDS`]), and bounded whatever it sends.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct RecentCommands(VecDeque<(CommandId, Option<ErrorCode>)>);

/// How many numbered commands a room remembers per person. Clients keep at most half as many
/// unacknowledged (docs/protocol.md), so a resent command is always still remembered.
pub const RECENT_COMMANDS: usize = 64;

impl RecentCommands {
    /// How the command numbered `id` ended, if it is among the remembered ones: `Some(None)`
    /// for applied, `Some(Some(code))` for refused.
    fn outcome(&self, id: CommandId) -> Option<Option<ErrorCode>> {
        self.0.iter().find(|(i, _)| *i == id).map(|(_, o)| *o)
    }

    fn remember(&mut self, id: CommandId, outcome: Option<ErrorCode>) {
        if self.0.len() == RECENT_COMMANDS {
            self.0.pop_front();
        }
        self.0.push_back((id, outcome));
    }
}

/// The learner being called on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Call {
    user: UserId,
    by: Nickname,
    at: UnixMillis,
    /// Offset of the learner's first message after the call: their answer.
    answer: Option<ChatOffset>,
}

/// One lecture's room. See the module documentation for how to drive it. A clone is an
/// independent copy (kept, for instance, while a node runs on alone and must later return to
/// the shared state).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Room {
    settings: RoomSettings,
    /// The lecture's facts, as sent in every welcome.
    info: LectureInfo,
    phase: Phase,
    /// Connections in the room and whose they are.
    conns: HashMap<ConnId, UserId>,
    /// The staff's connections (instructors, moderators): the meter and other staff-only
    /// outputs reach them without walking every learner's connection.
    staff_conns: BTreeSet<ConnId>,
    attendees: HashMap<UserId, Attendee>,
    /// Learners removed without the right to return.
    banned: HashSet<UserId>,
    /// When each person's entitlement was revoked: their older tickets are refused.
    revoked: HashMap<UserId, UnixMillis>,
    grid: SeatGrid,
    chat: ChatLog,
    reactions: ReactionTally,
    call: Option<Call>,
    announcement: Option<Announcement>,
    /// Learners' raised hands, first raised first.
    hands: HandQueue,
    /// Upvotes of the questions in the chat history.
    votes: Votes,
    /// Earliest end of a mute, so the room tells the staff (and the learner) when it runs out.
    next_mute_expiry: Option<UnixMillis>,
    /// Whether the number of connections changed since the last tick.
    present_dirty: bool,
    next_tick: UnixMillis,
    /// Ticks closed so far; names the current tick for once-a-tick notices.
    tick_count: u64,
    /// Earliest end of a held seat, so ticks skip the scan while nothing can expire.
    next_hold_expiry: Option<UnixMillis>,
    /// Set while this copy runs on alone (see [`Room::fork`]): where its chat generation left
    /// the shared stream. Never part of a snapshot (a forked copy writes none).
    #[serde(skip)]
    fork_of: Option<ResumeFrom>,
    /// Drained by the node after every input; never part of a snapshot.
    #[serde(skip)]
    outputs: VecDeque<Output>,
}

impl Room {
    /// A room for `lecture`, opened at `now`. A lecture without emotion buttons gets the
    /// default five; its `chat_max_chars` is the settings' (whatever it says).
    pub fn new(mut lecture: LectureInfo, settings: RoomSettings, now: UnixMillis) -> Self {
        if lecture.emotions.is_empty() {
            lecture.emotions = default_emotions();
        }
        lecture.chat_max_chars = settings.chat_max_chars;
        let mut room = Self {
            phase: Phase::Scheduled,
            conns: HashMap::new(),
            staff_conns: BTreeSet::new(),
            attendees: HashMap::new(),
            banned: HashSet::new(),
            revoked: HashMap::new(),
            grid: SeatGrid::new(lecture.rows, lecture.cols),
            chat: ChatLog::new(settings.history_len, settings.welcome_chat_len),
            reactions: ReactionTally::new(
                &lecture.emotions,
                settings.meter_window_ms,
                settings.tick_ms,
            ),
            call: None,
            announcement: None,
            hands: HandQueue::default(),
            votes: Votes::default(),
            next_mute_expiry: None,
            present_dirty: false,
            next_tick: now.plus_ms(settings.tick_ms),
            tick_count: 0,
            next_hold_expiry: None,
            fork_of: None,
            outputs: VecDeque::new(),
            settings,
            info: lecture,
        };
        room.advance(now);
        // Nobody is connected yet: the opening phase needs no announcement.
        room.outputs.clear();
        room
    }

    // ----- getters -----

    /// The generation of the room's chat stream.
    pub fn epoch(&self) -> protocol::Epoch {
        self.settings.epoch
    }

    /// Starts running this copy on alone (its node cut off from the shared log) under the new
    /// chat generation `epoch` (a client resuming with an offset of the shared one gets a full
    /// snapshot, never a delta that would not match what it has): its welcomes say where the shared stream was left (`fork_of`), so a
    /// client that later resumes through the shared stream gets everything said since, however
    /// much. Forking a fork keeps the first departure.
    pub fn fork(&mut self, epoch: protocol::Epoch) {
        if self.fork_of.is_none() {
            self.fork_of = Some(ResumeFrom {
                epoch: self.settings.epoch,
                offset: self.chat.last(),
            });
        }
        self.settings.epoch = epoch;
    }

    /// Sends `conn` a fresh welcome (a full snapshot), as if it had just entered.
    pub fn rewelcome(&mut self, now: UnixMillis, conn: ConnId) {
        let Some(user) = self.conns.get(&conn).cloned() else {
            return;
        };
        let welcome = self.welcome(now, &user, None);
        self.outputs.push_back(Output::Send {
            to: Audience::One(conn),
            msg: ServerMsg::Welcome(Box::new(welcome)),
        });
    }

    /// The lecture this room holds.
    pub fn lecture_id(&self) -> &LectureId {
        &self.info.id
    }

    /// The current phase.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// Whether the lecture has ended or was cancelled: the room takes no one any more.
    pub fn is_over(&self) -> bool {
        matches!(self.phase, Phase::Ended { .. } | Phase::Cancelled { .. })
    }

    /// Connections in the room.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Every connection in the room (on every node sharing it).
    pub fn connections(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.conns.keys().copied()
    }

    /// Learners sitting in the grid (including held seats).
    pub fn seated_count(&self) -> usize {
        self.grid.seated_count()
    }

    /// Seats held by learners who dropped and may come back.
    pub fn held_seat_count(&self) -> usize {
        self.attendees
            .iter()
            .filter(|(user, a)| a.held_until.is_some() && self.grid.seat_of(user).is_some())
            .count()
    }

    /// Drops a connection from the room's indexes; its person, if it had one.
    fn forget_conn(&mut self, conn: ConnId) -> Option<UserId> {
        self.staff_conns.remove(&conn);
        self.conns.remove(&conn)
    }

    /// Calls `f` with every connection in `to`, as the room is now.
    pub fn for_each_recipient(&self, to: Audience, mut f: impl FnMut(ConnId)) {
        match to {
            Audience::One(conn) => f(conn),
            Audience::Everyone => self.conns.keys().copied().for_each(f),
            Audience::Staff => self.staff_conns.iter().copied().for_each(f),
            Audience::Learners => self
                .conns
                .keys()
                .filter(|c| !self.staff_conns.contains(c))
                .copied()
                .for_each(f),
        }
    }

    // ----- inputs -----

    /// A connection presented a valid ticket for this lecture: let it in (welcome) or refuse
    /// it (close). A second connection of the same person replaces the first.
    pub fn handle_join(
        &mut self,
        now: UnixMillis,
        conn: ConnId,
        who: Identity,
        resume: Option<ResumeFrom>,
    ) {
        self.advance(now);
        if let Some(code) = self.refusal(&who) {
            self.outputs.push_back(Output::Close {
                conn,
                code: Some(code),
            });
            return;
        }
        if let Some(old) = self.attendees.get(&who.user).and_then(|a| a.conn) {
            self.forget_conn(old);
            self.left(now, old, &who.user);
            self.outputs.push_back(Output::Close {
                conn: old,
                code: Some(CloseCode::Replaced),
            });
        }
        let attendee = self
            .attendees
            .entry(who.user.clone())
            .or_insert_with(|| Attendee {
                account: who.account.clone(),
                nickname: who.nickname.clone(),
                role: who.role,
                conn: None,
                held_until: None,
                muted_until: None,
                presses: Allowance::default(),
                chat_lines: Allowance::default(),
                press_notice_tick: None,
                recent: RecentCommands::default(),
            });
        let renamed = attendee.nickname != who.nickname;
        attendee.nickname = who.nickname;
        attendee.role = who.role;
        attendee.conn = Some(conn);
        attendee.held_until = None;
        self.conns.insert(conn, who.user.clone());
        if who.role.is_staff() {
            self.staff_conns.insert(conn);
        }
        self.present_dirty = true;
        if who.role.is_staff() {
            // A learner who became staff with a newer ticket leaves the grid (and the hand
            // queue) to learners.
            self.stand(&who.user);
            self.lower_hand(&who.user);
        } else {
            if renamed {
                self.grid.renamed(&who.user);
            }
            // A seat held for them is theirs again.
            self.grid.set_away(&who.user, false);
        }
        let welcome = self.welcome(now, &who.user, resume);
        self.outputs.push_back(Output::Send {
            to: Audience::One(conn),
            msg: ServerMsg::Welcome(Box::new(welcome)),
        });
        self.outputs
            .push_back(Output::Attendance(Attendance::Entered {
                conn,
                account: who.account,
                role: who.role,
                at: now,
            }));
    }

    /// A message from a connection in the room. Refusals become `error` messages to it. A
    /// numbered command is answered with `ack` (after what it caused) or an `error` carrying its
    /// number; one whose number the room already saw from this person is answered the same way
    /// again and not applied twice.
    pub fn handle_command(&mut self, now: UnixMillis, conn: ConnId, command: Command) {
        self.advance(now);
        let Some(user) = self.conns.get(&conn).cloned() else {
            // The connection was closed by the room (replaced, removed, lecture over) and its
            // last frames are still arriving: nothing to do. A numbered command is resent by
            // its client after it reconnects.
            return;
        };
        let Command { id, msg } = command;
        if let ClientMsg::SeatNames { seats } = &msg {
            // A question: answered, never remembered or acknowledged.
            self.handle_seat_names(conn, id, seats);
            return;
        }
        let kind = msg.kind();
        if let Some(id) = id
            && let Some(outcome) = self.attendees.get(&user).and_then(|a| a.recent.outcome(id))
        {
            match outcome {
                None => self.send_to(conn, ServerMsg::Ack { id }),
                Some(code) => self.send_error(
                    conn,
                    code,
                    "refused when it was first sent".into(),
                    Some(kind),
                    Some(id),
                ),
            }
            return;
        }
        let result = self.command(now, conn, &user, msg);
        let Some(id) = id else {
            if let Err((code, message)) = result {
                self.send_error(conn, code, message, Some(kind), None);
            }
            return;
        };
        if let Some(attendee) = self.attendees.get_mut(&user) {
            attendee
                .recent
                .remember(id, result.as_ref().err().map(|(code, _)| *code));
        }
        match result {
            Ok(()) => self.send_to(conn, ServerMsg::Ack { id }),
            Err((code, message)) => self.send_error(conn, code, message, Some(kind), Some(id)),
        }
    }

    /// `conn` asks who sits in `seats`: the answer goes to it alone. A question that changes
    /// nothing (not even the time), so a node answers it from its own copy of the room, without
    /// the log, and a number it carries is neither remembered nor acknowledged; a refusal
    /// carries it.
    pub fn handle_seat_names(&mut self, conn: ConnId, id: Option<CommandId>, seats: &[SeatNumber]) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        let msg = match self.seat_names(seats) {
            Ok(seats) => ServerMsg::SeatNames { seats },
            Err((code, message)) => ServerMsg::Error {
                code,
                message,
                command: Some("seat_names".to_owned()),
                id,
            },
        };
        self.send_to(conn, msg);
    }

    /// The nicknames of those sitting in `seats`, each seat once, in seat order, as of the last
    /// tick (what the asker's grid shows).
    fn seat_names(&self, seats: &[SeatNumber]) -> Result<Vec<SeatName>, (ErrorCode, String)> {
        if seats.len() > MAX_SEAT_NAMES {
            return Err((
                ErrorCode::InvalidArgument,
                format!("at most {MAX_SEAT_NAMES} seats at a time"),
            ));
        }
        let mut asked = BTreeSet::new();
        for number in seats {
            let seat = self.grid.seat_numbered(*number).ok_or_else(|| {
                (
                    ErrorCode::SeatOutOfRange,
                    format!(
                        "seat number {} is outside the {}×{} grid",
                        number.0, self.info.rows, self.info.cols
                    ),
                )
            })?;
            asked.insert(seat);
        }
        Ok(asked
            .into_iter()
            .filter_map(|seat| {
                let user = self.grid.occupant_as_told(seat)?;
                Some(SeatName {
                    seat: self.grid.number(seat),
                    nickname: self.attendees.get(user)?.nickname.clone(),
                })
            })
            .collect())
    }

    /// A connection is gone (closed by either side, or dropped). A seated learner's seat is
    /// held for the grace period.
    pub fn handle_disconnect(&mut self, now: UnixMillis, conn: ConnId) {
        self.advance(now);
        let Some(user) = self.forget_conn(conn) else {
            return;
        };
        // Usually the connection is closed already and this reaches nobody. But the node
        // holding it may only have been frozen while the others took it for dead: it must not
        // stay open and deaf. Its client reconnects, resumes, and sends again what was not
        // acknowledged.
        self.outputs.push_back(Output::Close {
            conn,
            code: Some(CloseCode::ResyncRequired),
        });
        self.present_dirty = true;
        self.left(now, conn, &user);
        let grace = self.settings.seat_grace_ms;
        let Some(attendee) = self.attendees.get_mut(&user) else {
            return;
        };
        if attendee.conn != Some(conn) {
            return;
        }
        attendee.conn = None;
        let seated = self.grid.seat_of(&user).is_some();
        // A raised hand waits for its learner's return like a seat does.
        if seated || self.hands.raised_at(&user).is_some() {
            let until = now.plus_ms(grace);
            attendee.held_until = Some(until);
            self.next_hold_expiry = Some(self.next_hold_expiry.map_or(until, |t| t.min(until)));
        }
        if seated {
            self.grid.set_away(&user, true);
        }
    }

    /// Time passed: phase changes, held seats expire, and the tick's batch goes out.
    pub fn handle_timeout(&mut self, now: UnixMillis) {
        self.advance(now);
        if now >= self.next_tick && !self.is_over() {
            self.close_tick(now);
            self.tick_count += 1;
            self.next_tick = self.next_tick.plus_ms(self.settings.tick_ms);
            if self.next_tick <= now {
                self.next_tick = now.plus_ms(self.settings.tick_ms);
            }
        }
    }

    /// `user`'s right to attend was taken away at `at`: they are removed now, and tickets
    /// issued before `at` are refused from now on.
    pub fn handle_revoke(&mut self, now: UnixMillis, user: UserId, at: UnixMillis) {
        self.advance(now);
        let since = self.revoked.entry(user.clone()).or_insert(at);
        *since = (*since).max(at);
        self.take_out(now, &user, Some(CloseCode::Revoked));
    }

    /// The portal moved the lecture's times or changed its title. Phases follow the new times
    /// from now on; everyone is told. The seat grid keeps its size (people sit in it).
    pub fn handle_reschedule(
        &mut self,
        now: UnixMillis,
        title: String,
        starts_at: UnixMillis,
        ends_at: UnixMillis,
    ) {
        if self.info.title == title
            && self.info.starts_at == starts_at
            && self.info.ends_at == ends_at
        {
            self.advance(now);
            return;
        }
        self.info.title = title;
        self.info.starts_at = starts_at;
        self.info.ends_at = ends_at;
        if !self.is_over() {
            self.outputs.push_back(Output::Send {
                to: Audience::Everyone,
                msg: ServerMsg::Lecture {
                    lecture: self.info.clone(),
                },
            });
        }
        self.advance(now);
    }

    /// The lecture was cancelled (instructor ill, weather warning): everyone is told why and
    /// the room closes.
    pub fn handle_cancel(&mut self, now: UnixMillis, reason: String) {
        self.advance(now);
        if !self.is_over() {
            self.finish(Phase::Cancelled { reason }, CloseCode::LectureCancelled);
        }
    }

    // ----- outputs -----

    /// The next thing to do, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Room::handle_timeout`] must be called next; `None` once the lecture is over.
    pub fn poll_timeout(&self) -> Option<UnixMillis> {
        if self.is_over() {
            return None;
        }
        let mut at = self.info.ends_at.plus_ms(self.settings.end_grace_ms);
        match self.phase {
            Phase::Scheduled => at = at.min(self.doors_open_at()).min(self.info.starts_at),
            Phase::DoorsOpen => at = at.min(self.info.starts_at),
            _ => {}
        }
        let batch_pending = self.grid.has_changes()
            || self.present_dirty
            || self.hands.has_changes()
            || self.votes.has_changes();
        if !self.conns.is_empty() || batch_pending {
            at = at.min(self.next_tick);
        }
        if let Some(hold) = self.next_hold_expiry {
            at = at.min(hold);
        }
        if let Some(mute) = self.next_mute_expiry {
            at = at.min(mute);
        }
        Some(at)
    }

    // ----- internals -----

    fn doors_open_at(&self) -> UnixMillis {
        self.info
            .starts_at
            .minus_ms(self.settings.doors_open_before_ms)
    }

    /// Why `who` may not enter now, if they may not.
    fn refusal(&self, who: &Identity) -> Option<CloseCode> {
        match self.phase {
            Phase::Ended { .. } => Some(CloseCode::LectureEnded),
            Phase::Cancelled { .. } => Some(CloseCode::LectureCancelled),
            Phase::Scheduled if !who.role.is_staff() => Some(CloseCode::DoorsNotOpen),
            _ if self.banned.contains(&who.user) => Some(CloseCode::Banned),
            _ if self
                .revoked
                .get(&who.user)
                .is_some_and(|at| who.issued_at <= *at) =>
            {
                Some(CloseCode::Revoked)
            }
            _ => None,
        }
    }

    /// Moves the phase on and expires held seats, as of `now`.
    fn advance(&mut self, now: UnixMillis) {
        if !self.is_over() {
            if now >= self.info.ends_at.plus_ms(self.settings.end_grace_ms) {
                self.finish(Phase::Ended { at: now }, CloseCode::LectureEnded);
                self.outputs.push_back(Output::Ended { at: now });
            } else if matches!(self.phase, Phase::Scheduled | Phase::DoorsOpen)
                && now >= self.info.starts_at
            {
                self.set_phase(Phase::Live { since: now });
            } else if self.phase == Phase::Scheduled && now >= self.doors_open_at() {
                self.set_phase(Phase::DoorsOpen);
            }
        }
        if self.next_hold_expiry.is_some_and(|t| t <= now) {
            self.expire_holds(now);
        }
        if self.next_mute_expiry.is_some_and(|t| t <= now) {
            self.expire_mutes(now);
        }
    }

    fn expire_holds(&mut self, now: UnixMillis) {
        let expired: Vec<UserId> = self
            .attendees
            .iter()
            .filter(|(_, a)| a.held_until.is_some_and(|t| t <= now))
            .map(|(u, _)| u.clone())
            .collect();
        for user in expired {
            if let Some(a) = self.attendees.get_mut(&user) {
                a.held_until = None;
            }
            self.stand(&user);
            self.end_call_of(&user);
            self.lower_hand(&user);
        }
        self.next_hold_expiry = self.attendees.values().filter_map(|a| a.held_until).min();
    }

    fn set_phase(&mut self, phase: Phase) {
        self.phase = phase.clone();
        self.outputs.push_back(Output::Send {
            to: Audience::Everyone,
            msg: ServerMsg::Phase { phase },
        });
    }

    /// Ends the room: tells everyone the final phase, then closes every connection with
    /// `code`. Connections stay listed until the node reports them gone, so the phase message
    /// reaches all of them.
    fn finish(&mut self, phase: Phase, code: CloseCode) {
        self.set_phase(phase);
        for conn in self.conns.keys() {
            self.outputs.push_back(Output::Close {
                conn: *conn,
                code: Some(code),
            });
        }
        self.call = None;
        // Nothing goes out after the end: the tick's seat changes are dropped.
        self.grid.take_changes();
        self.present_dirty = false;
    }

    /// Sends the tick's batch: presence, reactions, the hand count and the changed questions'
    /// upvotes to everyone; seat changes to the staff with their occupants and to learners as
    /// seat numbers, and the hand queue's changes to the staff (one message for each side when
    /// the sides differ, else one for everyone); the meter to instructors and moderators.
    fn close_tick(&mut self, now: UnixMillis) {
        // What everyone gets.
        let mut update = RoomUpdate::default();
        if std::mem::take(&mut self.present_dirty) {
            update.present = Some(self.present());
        }
        let (burst, meter) = self
            .reactions
            .close_tick(now, self.settings.meter_window_ms);
        update.burst = burst;
        if let Some(first_kept) = self.chat.first_kept() {
            self.votes.forget_before(first_kept);
        }
        update.votes = self.votes.take_changes();
        let hands = self.hands.take_changes();
        update.hand_count = hands.count;
        // What only the staff get: the seats' occupants and the hand queue's changes.
        let changes = self.grid.take_changes();
        let mut staff = update.clone();
        staff.seats = changes
            .keys()
            .map(|seat| SeatChange {
                seat: *seat,
                occupant: self.occupant_at(*seat),
            })
            .collect();
        staff.hands_lowered = hands.lowered;
        staff.hands_raised = hands
            .raised
            .into_iter()
            .filter_map(|(user, at)| self.raised_hand(user, at))
            .collect();
        // What only learners get: the grid's changes by seat number.
        let mut learners = update.clone();
        self.learner_changes(&changes, &mut learners);
        if staff == update && learners == update {
            if !update.is_empty() {
                self.outputs.push_back(Output::Send {
                    to: Audience::Everyone,
                    msg: ServerMsg::Update(update),
                });
            }
        } else {
            if !self.staff_conns.is_empty() && !staff.is_empty() {
                self.outputs.push_back(Output::Send {
                    to: Audience::Staff,
                    msg: ServerMsg::Update(staff),
                });
            }
            if self.conns.len() > self.staff_conns.len() && !learners.is_empty() {
                self.outputs.push_back(Output::Send {
                    to: Audience::Learners,
                    msg: ServerMsg::Update(learners),
                });
            }
        }
        if let Some(meter) = meter {
            self.outputs.push_back(Output::Send {
                to: Audience::Staff,
                msg: ServerMsg::Meter(meter),
            });
        }
    }

    /// The tick's seat changes as learners get them: each changed seat by its state at the end
    /// of the tick and whether its occupant is the one the tick began with.
    fn learner_changes(&self, changes: &BTreeMap<Seat, Option<UserId>>, update: &mut RoomUpdate) {
        for (seat, before) in changes {
            let number = self.grid.number(*seat);
            let Some(now) = self.grid.occupant(*seat) else {
                update.freed.push(number);
                continue;
            };
            let same = before.as_ref() == Some(now);
            let away = self.grid.is_away(*seat);
            if !same {
                update.taken.push(number);
            }
            if away {
                update.away.push(number);
            } else if same {
                update.back.push(number);
            }
        }
    }

    fn present(&self) -> u32 {
        u32::try_from(self.conns.len()).unwrap_or(u32::MAX)
    }

    fn occupant_at(&self, seat: Seat) -> Option<Occupant> {
        let user = self.grid.occupant(seat)?;
        let a = self.attendees.get(user)?;
        Some(Occupant {
            user: user.clone(),
            nickname: a.nickname.clone(),
            away: self.grid.is_away(seat),
        })
    }

    /// Takes `user` out of the room now: their stay ends (with the seat they had), the seat is
    /// freed rather than held, a call on them ends, and their connection closes with `code`
    /// (`None`: a normal closure, after their own `leave`).
    pub(crate) fn take_out(&mut self, now: UnixMillis, user: &UserId, code: Option<CloseCode>) {
        let conn = self.attendees.get_mut(user).and_then(|a| {
            a.held_until = None;
            a.conn.take()
        });
        if let Some(conn) = conn {
            self.forget_conn(conn);
            self.present_dirty = true;
            self.left(now, conn, user);
            self.outputs.push_back(Output::Close { conn, code });
        }
        self.stand(user);
        self.end_call_of(user);
        self.lower_hand(user);
    }

    /// Records the end of `conn`'s stay (its person's seat as it is now).
    fn left(&mut self, now: UnixMillis, conn: ConnId, user: &UserId) {
        let seat = self.grid.seat_of(user);
        self.outputs.push_back(Output::Attendance(Attendance::Left {
            conn,
            at: now,
            seat,
        }));
    }

    /// Frees `user`'s seat, if they sit (the grid queues the change for the tick).
    fn stand(&mut self, user: &UserId) {
        self.grid.stand(user);
    }

    /// Clears the call if it is on `user` (they left or were removed).
    fn end_call_of(&mut self, user: &UserId) {
        if self.call.as_ref().is_some_and(|c| &c.user == user) {
            self.call = None;
            self.outputs.push_back(Output::Send {
                to: Audience::Everyone,
                msg: ServerMsg::Call { current: None },
            });
        }
    }

    fn call_info(&self) -> Option<CallInfo> {
        let call = self.call.as_ref()?;
        Some(CallInfo {
            user: call.user.clone(),
            nickname: self.attendees.get(&call.user).map(|a| a.nickname.clone())?,
            seat: self.grid.seat_of(&call.user),
            by: call.by.clone(),
            at: call.at,
            answer: call.answer,
        })
    }

    fn send_error(
        &mut self,
        conn: ConnId,
        code: ErrorCode,
        message: String,
        command: Option<&str>,
        id: Option<CommandId>,
    ) {
        self.send_to(
            conn,
            ServerMsg::Error {
                code,
                message,
                command: command.map(str::to_owned),
                id,
            },
        );
    }

    fn send_to(&mut self, conn: ConnId, msg: ServerMsg) {
        self.outputs.push_back(Output::Send {
            to: Audience::One(conn),
            msg,
        });
    }

    fn welcome(&self, now: UnixMillis, user: &UserId, resume: Option<ResumeFrom>) -> Welcome {
        let epoch_matches = resume.is_some_and(|r| r.epoch == self.settings.epoch);
        let (replay, chat) = self.chat.replay_for(resume, epoch_matches);
        // A snapshot replaces what the client shows: the votes of older questions would be
        // weight for nothing. After `missed`, the client still shows what it had.
        let shown_from = match replay {
            protocol::server::Replay::Snapshot => {
                chat.first().map_or(ChatOffset(0), |e| e.offset())
            }
            protocol::server::Replay::Missed => ChatOffset(0),
        };
        let attendee = self.attendees.get(user);
        let staff = attendee.is_some_and(|a| a.role.is_staff());
        Welcome {
            protocol: protocol::PROTOCOL_VERSION,
            server_time: now,
            you: You {
                user: user.clone(),
                nickname: attendee
                    .map(|a| a.nickname.clone())
                    .unwrap_or_else(|| Nickname::from("")),
                role: attendee.map_or(Role::Learner, |a| a.role),
            },
            lecture: self.info.clone(),
            phase: self.phase.clone(),
            epoch: self.settings.epoch,
            replay,
            chat,
            last_offset: self.chat.last(),
            occupancy: self.grid.occupancy(),
            // Who sits where is for those who run the room; a learner asks for the nicknames
            // of the seats it shows.
            seats: staff.then(|| {
                let mut seats: Vec<SeatOccupant> = self
                    .grid
                    .occupied()
                    .filter_map(|(_, seat)| {
                        self.occupant_at(seat)
                            .map(|occupant| SeatOccupant { seat, occupant })
                    })
                    .collect();
                // In seat order, the same on every node whatever order its index holds them.
                seats.sort_unstable_by_key(|s| s.seat);
                seats
            }),
            your_seat: self.grid.seat_of(user),
            present: self.present(),
            call: self.call_info(),
            announcement: self.announcement.clone(),
            muted_until: attendee.and_then(|a| a.muted_until).filter(|t| *t > now),
            hands: staff.then(|| {
                self.hands
                    .queue()
                    .filter_map(|(user, at)| self.raised_hand(user.clone(), at))
                    .collect()
            }),
            hand_count: self.hands.count(),
            your_hand: self.hands.raised_at(user),
            votes: self
                .votes
                .counts()
                .into_iter()
                .filter(|v| v.offset >= shown_from)
                .collect(),
            your_votes: if staff {
                Vec::new()
            } else {
                self.votes
                    .of(user)
                    .into_iter()
                    .filter(|o| *o >= shown_from)
                    .collect()
            },
            muted: staff.then(|| self.muted_learners(now)),
            fork_of: self.fork_of,
        }
    }
}
