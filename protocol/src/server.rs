//! What a node sends, and the pieces of the room's state they carry.

use crate::client::IceCandidate;
use crate::error::ErrorCode;
use crate::grid::{Occupancy, SeatName, SeatNumber};
use crate::ids::{
    ChatOffset, CommandId, EmotionKey, Epoch, LectureId, Nickname, Role, Seat, UnixMillis, UserId,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A node's message. On the wire it is a map whose `type` field names the variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// The answer to `hello`: who you are and the whole room as it is now.
    Welcome(Box<Welcome>),
    /// The lecture's facts changed (the portal moved its times or retitled it). The seat grid
    /// keeps its size while people sit in it.
    Lecture {
        /// The lecture as it is now.
        lecture: LectureInfo,
    },
    /// The lecture moved to another phase.
    Phase {
        /// The new phase.
        phase: Phase,
    },
    /// One event of the chat stream, in offset order.
    Chat {
        /// The event.
        event: ChatEvent,
    },
    /// What changed in the room during the last tick (seats, presence, reactions), batched.
    /// Staff get the seats' occupants; learners the grid's changes by seat number.
    Update(RoomUpdate),
    /// To a learner: where you sit now, after your `take_seat` or `leave_seat` took effect
    /// (the grid shows it to everyone with the tick's `update`).
    YourSeat {
        /// Your seat; none after you stood up.
        seat: Option<Seat>,
    },
    /// The answer to your `seat_names`: the nicknames of those sitting in the seats you asked
    /// about. Empty seats are left out.
    SeatNames {
        /// The occupied seats among those asked about, each once, in seat order.
        seats: Vec<SeatName>,
    },
    /// The emotion meter for instructors and moderators, once per tick with reactions.
    Meter(Meter),
    /// Who is called on now (everyone gets this).
    Call {
        /// The current call, or none when it was cleared.
        current: Option<CallInfo>,
    },
    /// You are being called on: answer in the chat. Sent to the called learner only.
    CalledOnYou {
        /// Nickname of the instructor or moderator who called.
        by: Nickname,
        /// When.
        at: UnixMillis,
    },
    /// The pinned announcement changed.
    Announcement {
        /// The new announcement, or none when it was unpinned.
        current: Option<Announcement>,
    },
    /// You were muted (until a time) or unmuted (`until` is null: by staff, or the mute ran
    /// out).
    Muted {
        /// End of the mute.
        until: Option<UnixMillis>,
    },
    /// To instructors and moderators: the learners muted now, whenever that changed (a mute,
    /// an unmute, a mute running out). Replaces the list of the welcome or the last
    /// `muted_learners`.
    MutedLearners {
        /// Every muted learner, soonest end first.
        muted: Vec<MutedLearner>,
    },
    /// To a learner: your hand, right after it was raised or lowered (by you, by being called
    /// on, or by staff).
    YourHand {
        /// When it was raised; none when it is down.
        raised_at: Option<UnixMillis>,
    },
    /// A command was refused. The connection stays open.
    Error {
        /// Stable code to act on.
        code: ErrorCode,
        /// Human-readable explanation (English).
        message: String,
        /// The `type` of the refused command, if the node could read it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command: Option<String>,
        /// The refused command's `id`, if it had one: it took no effect, and sending it again
        /// gets the same answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<CommandId>,
    },
    /// Your command numbered `id` took effect (or had already: a command sent twice is applied
    /// once). Anything it caused for you, such as your own chat message, came before this.
    Ack {
        /// The command's number.
        id: CommandId,
    },
    /// This node lost its link to the other nodes (`degraded`), or has it back. While
    /// degraded, what you send waits on the node and takes effect once the link is back: nothing
    /// is lost, but the room looks still. Show a notice.
    Service {
        /// True while the link is down.
        degraded: bool,
    },
    /// Answer to `ping`.
    Pong {
        /// The client's number, unchanged.
        t: u64,
        /// The node's clock when it answered.
        server_time: UnixMillis,
    },
    /// How to configure `RTCPeerConnection` (its `iceServers`). Sent to every connection right
    /// after its welcome.
    MediaConfig {
        /// STUN/TURN servers; may be empty.
        ice_servers: Vec<IceServer>,
    },
    /// The node's answer to the instructor's `media_offer`.
    MediaAnswer {
        /// The answer SDP.
        sdp: String,
    },
    /// To a viewer: the node's offer (the first one, and every renegotiation). Answer with
    /// `media_answer`.
    MediaOffer {
        /// The offer SDP.
        sdp: String,
    },
    /// A candidate of the node's side, for `addIceCandidate`.
    MediaCandidate {
        /// The candidate.
        candidate: IceCandidate,
    },
    /// To a viewer: its media ended (the phase left live, the instructor stopped, or the node's
    /// side failed). Close the peer connection; a new `media_offer` may follow later.
    MediaStopped,
}

/// One STUN or TURN server, as the browser's `RTCIceServer` takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct IceServer {
    /// `stun:host:port`, `turn:host:port?transport=udp`, `turns:…`.
    pub urls: Vec<String>,
    /// TURN user name; `null` for STUN.
    #[serde(default)]
    pub username: Option<String>,
    /// TURN credential; `null` for STUN.
    #[serde(default)]
    pub credential: Option<String>,
}

/// Everything a client needs to draw the room after `hello`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct Welcome {
    /// The protocol version the node speaks.
    pub protocol: u16,
    /// The node's clock, to align countdowns.
    pub server_time: UnixMillis,
    /// Who you are in this room.
    pub you: You,
    /// The lecture.
    pub lecture: LectureInfo,
    /// Its phase now.
    pub phase: Phase,
    /// Generation of the chat stream; send it back with the last offset to resume.
    pub epoch: Epoch,
    /// How to use `chat`: replace everything (`snapshot`) or append (`missed`).
    pub replay: Replay,
    /// Chat events, oldest first: the recent history, or what you missed.
    pub chat: Vec<ChatEvent>,
    /// The last offset of the chat stream (0 when nothing was said yet).
    pub last_offset: ChatOffset,
    /// The seat grid: which seats are taken, and which of those are held for someone away.
    pub occupancy: Occupancy,
    /// Instructors and moderators: who sits in every occupied seat. `null` for a learner, who
    /// asks for the nicknames of the seats it shows (`seat_names`).
    pub seats: Option<Vec<SeatOccupant>>,
    /// Your seat, if you sit (or sat before a drop and it was held for you).
    pub your_seat: Option<Seat>,
    /// How many people are connected to the room.
    pub present: u32,
    /// The current call, if any.
    pub call: Option<CallInfo>,
    /// The pinned announcement, if any.
    pub announcement: Option<Announcement>,
    /// End of your mute, if you are muted.
    pub muted_until: Option<UnixMillis>,
    /// Instructors and moderators: the raised hands, first raised first. `null` for a learner.
    #[serde(default)]
    pub hands: Option<Vec<RaisedHand>>,
    /// How many hands are raised.
    #[serde(default)]
    pub hand_count: u32,
    /// When your hand was raised, if it is (learners).
    #[serde(default)]
    pub your_hand: Option<UnixMillis>,
    /// The upvotes of every question still in the chat history that has any, by offset; after
    /// a `snapshot`, only of the questions in `chat`.
    #[serde(default)]
    pub votes: Vec<QuestionVotes>,
    /// The questions you upvoted (learners), in offset order; after a `snapshot`, only those in
    /// `chat`.
    #[serde(default)]
    pub your_votes: Vec<ChatOffset>,
    /// Instructors and moderators: the learners muted now, soonest end first. `null` for a
    /// learner.
    #[serde(default)]
    pub muted: Option<Vec<MutedLearner>>,
    /// Set while the node runs the room on alone (Redis away, `service` degraded): where this
    /// welcome's chat generation left the shared stream. A client resumes from there, not from
    /// this generation, once it reconnects: the shared stream then replays, as `missed`,
    /// everything said after it (through every node), and the client drops what it shows past
    /// that offset before appending. `null` otherwise.
    #[serde(default)]
    pub fork_of: Option<crate::client::ResumeFrom>,
}

/// The person behind this connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct You {
    /// Account id.
    pub user: UserId,
    /// Public nickname.
    pub nickname: Nickname,
    /// Role in this lecture.
    pub role: Role,
}

/// The lecture's fixed facts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct LectureInfo {
    /// Lecture id.
    pub id: LectureId,
    /// Title.
    pub title: String,
    /// Scheduled start.
    pub starts_at: UnixMillis,
    /// Scheduled end.
    pub ends_at: UnixMillis,
    /// Seat grid rows.
    pub rows: u16,
    /// Seat grid columns.
    pub cols: u16,
    /// The emotion buttons, in display order.
    pub emotions: Vec<Emotion>,
    /// Longest chat message accepted, in characters.
    pub chat_max_chars: u32,
}

/// One emotion button.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Emotion {
    /// Key sent in `react`.
    pub key: EmotionKey,
    /// Japanese label.
    pub label_ja: String,
    /// English label.
    pub label_en: String,
}

/// A lecture's phase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Phase {
    /// More than an hour before the start: only instructors and moderators may be in.
    Scheduled,
    /// From one hour before the start: learners may enter and sit.
    DoorsOpen,
    /// Delivery is on.
    Live {
        /// When it went live.
        since: UnixMillis,
    },
    /// Over; connections are closed with 4105 right after this message.
    Ended {
        /// When it ended.
        at: UnixMillis,
    },
    /// Cancelled; connections are closed with 4106 right after this message.
    Cancelled {
        /// Why, as the operator wrote it.
        reason: String,
    },
}

/// How a welcome's chat list relates to what the client already has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum Replay {
    /// Drop any chat you have and show this history.
    Snapshot,
    /// Append these events to what you have: they are exactly what you missed.
    Missed,
}

/// One event of the chat stream. Every event, including deletions and answered marks, takes
/// the next offset, so a client that applies events in offset order never misses a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChatEvent {
    /// Someone said something.
    Message(ChatMessage),
    /// An instructor or moderator deleted a message: hide it.
    Deleted {
        /// This event's offset.
        offset: ChatOffset,
        /// When.
        at: UnixMillis,
        /// Offset of the deleted message.
        target: ChatOffset,
    },
    /// A question was marked answered.
    Answered {
        /// This event's offset.
        offset: ChatOffset,
        /// When.
        at: UnixMillis,
        /// Offset of the question.
        target: ChatOffset,
    },
}

impl ChatEvent {
    /// The event's offset in the chat stream.
    pub fn offset(&self) -> ChatOffset {
        match self {
            ChatEvent::Message(m) => m.offset,
            ChatEvent::Deleted { offset, .. } | ChatEvent::Answered { offset, .. } => *offset,
        }
    }
}

/// A chat message. In a snapshot it shows its current state (deleted messages have no text).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct ChatMessage {
    /// Offset in the chat stream.
    pub offset: ChatOffset,
    /// When it was accepted.
    pub at: UnixMillis,
    /// Author's account id.
    pub user: UserId,
    /// Author's nickname (plain text, never HTML).
    pub nickname: Nickname,
    /// Author's role.
    pub role: Role,
    /// The text (plain text, never HTML); empty once deleted.
    pub text: String,
    /// Flagged as a question.
    pub question: bool,
    /// A question that was marked answered.
    pub answered: bool,
    /// The author's answer to being called on.
    pub call_answer: bool,
    /// Deleted by an instructor or moderator.
    pub deleted: bool,
}

/// Someone sitting in a seat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct SeatOccupant {
    /// The seat.
    pub seat: Seat,
    /// Who sits there.
    pub occupant: Occupant,
}

/// A seat's occupant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Occupant {
    /// Account id.
    pub user: UserId,
    /// Nickname shown on the seat.
    pub nickname: Nickname,
    /// The connection dropped and the seat is held for their return.
    pub away: bool,
}

/// A seat whose occupant changed during the tick.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct SeatChange {
    /// The seat.
    pub seat: Seat,
    /// Who sits there now; none when it became empty.
    pub occupant: Option<Occupant>,
}

/// What changed during one tick. Empty parts are left out.
///
/// Seats reach instructors and moderators as `seats` (occupants in full) and learners as the
/// four lists of seat numbers, each seat in at most one of them — except a seat someone took
/// and was already away from by the tick's end, which is in `taken` and `away`. Apply them in
/// the order `freed`, `taken`, `away`, `back`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct RoomUpdate {
    /// Staff: seats whose occupant changed, each at most once, with its state at the end of
    /// the tick.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seats: Vec<SeatChange>,
    /// Learners: seats now taken by someone who did not sit there when the tick began (or whose
    /// nickname changed): mark them taken and forget any nickname you had for them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taken: Vec<SeatNumber>,
    /// Learners: seats now empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub freed: Vec<SeatNumber>,
    /// Learners: seats held for their occupant, whose connection is gone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub away: Vec<SeatNumber>,
    /// Learners: seats whose occupant (the same one) is connected again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub back: Vec<SeatNumber>,
    /// The number of connected people, when it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present: Option<u32>,
    /// Emotion presses accepted during the tick, by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub burst: BTreeMap<EmotionKey, u32>,
    /// The number of raised hands, when it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hand_count: Option<u32>,
    /// Staff: hands lowered during the tick (called on, lowered, left): drop them from the
    /// queue. Applied before `hands_raised`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hands_lowered: Vec<UserId>,
    /// Staff: hands raised during the tick, first raised first: append them to the queue. A
    /// learner who lowered and raised again within the tick is in both lists, and goes to the
    /// end of the queue.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hands_raised: Vec<RaisedHand>,
    /// Questions whose upvotes changed during the tick, with their count now (0 for a
    /// deleted question). One entry per question per tick, however many votes it got.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub votes: Vec<QuestionVotes>,
}

impl RoomUpdate {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.seats.is_empty()
            && self.taken.is_empty()
            && self.freed.is_empty()
            && self.away.is_empty()
            && self.back.is_empty()
            && self.present.is_none()
            && self.burst.is_empty()
            && self.hand_count.is_none()
            && self.hands_lowered.is_empty()
            && self.hands_raised.is_empty()
            && self.votes.is_empty()
    }
}

/// The instructor's emotion meter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Meter {
    /// End of the tick these counts are for.
    pub at: UnixMillis,
    /// Presses during this tick, by key.
    pub tally: BTreeMap<EmotionKey, u32>,
    /// Presses during the last `window_ms`, by key.
    pub rolling: BTreeMap<EmotionKey, u32>,
    /// Length of the rolling window.
    pub window_ms: u64,
    /// Presses since the room opened, by key.
    pub totals: BTreeMap<EmotionKey, u64>,
    /// Which seat pressed what during this tick (seated learners only).
    pub seats: Vec<SeatReaction>,
}

/// A seat's reaction during one tick.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct SeatReaction {
    /// The seat.
    pub seat: Seat,
    /// The last emotion pressed from it in the tick.
    pub emotion: EmotionKey,
}

/// A learner being called on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct CallInfo {
    /// The learner's account id.
    pub user: UserId,
    /// The learner's nickname.
    pub nickname: Nickname,
    /// The learner's seat, if seated.
    pub seat: Option<Seat>,
    /// Who called.
    pub by: Nickname,
    /// When.
    pub at: UnixMillis,
    /// Offset of the learner's answer, once given.
    pub answer: Option<ChatOffset>,
}

/// The pinned announcement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Announcement {
    /// The text (plain text, never HTML).
    pub text: String,
    /// Who pinned it.
    pub by: Nickname,
    /// When.
    pub at: UnixMillis,
}

/// A raised hand in the staff's queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct RaisedHand {
    /// The learner's id in this lecture (send it in `call_on` or `lower_hand`).
    pub user: UserId,
    /// The learner's nickname.
    pub nickname: Nickname,
    /// The learner's seat when this entry was sent (the welcome or the tick the hand went up),
    /// if seated then.
    pub seat: Option<Seat>,
    /// When the hand went up.
    pub at: UnixMillis,
}

/// How many learners upvoted a question.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct QuestionVotes {
    /// Offset of the question.
    pub offset: ChatOffset,
    /// Learners who upvoted it.
    pub votes: u32,
}

/// A learner who may not chat for now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct MutedLearner {
    /// The learner's id in this lecture (send it in `unmute`).
    pub user: UserId,
    /// The learner's nickname.
    pub nickname: Nickname,
    /// End of the mute.
    pub until: UnixMillis,
}
