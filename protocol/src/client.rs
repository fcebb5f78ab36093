//! What a client sends. One message per WebSocket frame.

use crate::grid::SeatNumber;
use crate::ids::{ChatOffset, CommandId, EmotionKey, Epoch, Nickname, Seat, UserId, safe_integer};
use serde::{Deserialize, Serialize};

/// A client's message. On the wire it is a map whose `type` field names the variant
/// (`{"type":"chat","text":"hi","question":false}`); unknown fields are ignored so that
/// newer clients can talk to older nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// First message on every connection: presents the ticket and, after a drop, where the
    /// client's chat left off. Nothing else is accepted before it.
    Hello {
        /// The signed ticket from the entry gate.
        ticket: String,
        /// The chat position to resume from, if the client was here before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<ResumeFrom>,
    },
    /// Sit in an empty cell, or move there from the current one. Learners only.
    TakeSeat {
        /// The cell to sit in.
        seat: Seat,
    },
    /// Stand up: free the current cell but stay in the room. Learners only.
    LeaveSeat,
    /// Ask who sits in these seats (the ones on screen, under the pointer, around the cursor):
    /// answered with `seat_names`, to this connection alone. At most
    /// [`crate::grid::MAX_SEAT_NAMES`] seats; not acknowledged (the answer is its own).
    SeatNames {
        /// The seats, by number.
        seats: Vec<SeatNumber>,
    },
    /// Leave the room (the 退室 button): the seat is freed at once, not held, and the node
    /// closes the connection with code 1000.
    Leave,
    /// Say something in the chat. The author is the nickname from the ticket.
    Chat {
        /// The message; trimmed, 1 to the lecture's limit (default 500) characters, no
        /// control characters.
        text: String,
        /// Flag the message as a question for the instructor.
        #[serde(default)]
        question: bool,
    },
    /// Delete a chat message for everyone. Instructors and moderators.
    DeleteChat {
        /// Offset of the message to delete.
        offset: ChatOffset,
    },
    /// Mark a question as answered. Instructors and moderators.
    MarkAnswered {
        /// Offset of the question.
        offset: ChatOffset,
    },
    /// Press an emotion button. Learners only; rate-limited per learner.
    React {
        /// One of the lecture's emotion keys.
        emotion: EmotionKey,
    },
    /// Call on a learner, by nickname, by seat or by user id (exactly one of the three; the
    /// user id is how the console calls on someone from the raised-hand queue). A learner
    /// called on has their hand lowered. Instructors and moderators.
    CallOn {
        /// Nickname of the learner to call on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nickname: Option<Nickname>,
        /// Seat of the learner to call on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seat: Option<Seat>,
        /// Id of the learner to call on (as in the hand queue, a seat's occupant or a chat
        /// message).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<UserId>,
    },
    /// End the current call. Instructors and moderators.
    ClearCall,
    /// Raise your hand: you join the end of the staff's hand queue. Raising a raised hand
    /// changes nothing (you keep your place). Learners only.
    RaiseHand,
    /// Lower a hand. A learner lowers their own (no `user`); an instructor or moderator
    /// lowers a learner's (`user` required), to dismiss it without calling on them. Lowering
    /// a hand that is not raised changes nothing.
    LowerHand {
        /// Staff: whose hand. Learners leave it out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<UserId>,
    },
    /// Upvote a question (a chat message sent with `question: true`): one vote per learner
    /// per question; a second upvote is refused with `already_voted`, and your own question
    /// with `not_allowed`. Learners only.
    Upvote {
        /// Offset of the question.
        offset: ChatOffset,
    },
    /// Take back your upvote of a question. Taking back a vote you did not give changes
    /// nothing. Learners only.
    Unvote {
        /// Offset of the question.
        offset: ChatOffset,
    },
    /// Pin an announcement for everyone; replaces the previous one. Instructors and moderators.
    Announce {
        /// The announcement; trimmed, 1 to 1,000 characters.
        text: String,
    },
    /// Unpin the announcement. Instructors and moderators.
    ClearAnnouncement,
    /// Stop a learner from chatting for a while. Instructors and moderators.
    Mute {
        /// The learner.
        user: UserId,
        /// How long, 1 to 86,400 seconds.
        seconds: u32,
    },
    /// Let a muted learner chat again. Instructors and moderators.
    Unmute {
        /// The learner.
        user: UserId,
    },
    /// Remove a learner from the room. Instructors and moderators.
    Remove {
        /// The learner.
        user: UserId,
        /// Whether the learner may enter again (true), or is kept out of this lecture (false).
        allow_return: bool,
    },
    /// Go live now, before the scheduled start. Instructors only; from doors open.
    StartLecture,
    /// End the lecture for everyone. Instructors only.
    EndLecture,
    /// Ask for a [`crate::ServerMsg::Pong`] carrying `t` back: a round-trip probe.
    Ping {
        /// Any number from 0 to 2^53 - 1 the client chooses; echoed unchanged.
        #[serde(deserialize_with = "safe_integer")]
        t: u64,
    },
    /// The instructor's offer for its camera, microphone and screen share: the first one
    /// publishes, later ones renegotiate (screen share started or stopped). Answered with
    /// [`crate::ServerMsg::MediaAnswer`]. Instructors only. On the connection check socket
    /// (`/ws/check`) anyone may send one offer with a data channel only, to test WebRTC.
    MediaOffer {
        /// The browser's offer (`RTCSessionDescription.sdp`).
        sdp: String,
    },
    /// A viewer's answer to the node's [`crate::ServerMsg::MediaOffer`].
    MediaAnswer {
        /// The browser's answer (`RTCSessionDescription.sdp`).
        sdp: String,
    },
    /// An ICE candidate trickled by the browser, for this connection's peer connection
    /// (the instructor's publishing one, a viewer's receiving one, or the check socket's
    /// probe).
    MediaCandidate {
        /// The candidate as the browser's `RTCIceCandidate.toJSON()` gives it.
        candidate: IceCandidate,
    },
    /// The instructor stops publishing. Instructors only.
    MediaStop,
}

impl ClientMsg {
    /// The `type` of this message on the wire, for error replies and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientMsg::Hello { .. } => "hello",
            ClientMsg::TakeSeat { .. } => "take_seat",
            ClientMsg::LeaveSeat => "leave_seat",
            ClientMsg::SeatNames { .. } => "seat_names",
            ClientMsg::Leave => "leave",
            ClientMsg::Chat { .. } => "chat",
            ClientMsg::DeleteChat { .. } => "delete_chat",
            ClientMsg::MarkAnswered { .. } => "mark_answered",
            ClientMsg::React { .. } => "react",
            ClientMsg::CallOn { .. } => "call_on",
            ClientMsg::ClearCall => "clear_call",
            ClientMsg::RaiseHand => "raise_hand",
            ClientMsg::LowerHand { .. } => "lower_hand",
            ClientMsg::Upvote { .. } => "upvote",
            ClientMsg::Unvote { .. } => "unvote",
            ClientMsg::Announce { .. } => "announce",
            ClientMsg::ClearAnnouncement => "clear_announcement",
            ClientMsg::Mute { .. } => "mute",
            ClientMsg::Unmute { .. } => "unmute",
            ClientMsg::Remove { .. } => "remove",
            ClientMsg::StartLecture => "start_lecture",
            ClientMsg::EndLecture => "end_lecture",
            ClientMsg::Ping { .. } => "ping",
            ClientMsg::MediaOffer { .. } => "media_offer",
            ClientMsg::MediaAnswer { .. } => "media_answer",
            ClientMsg::MediaCandidate { .. } => "media_candidate",
            ClientMsg::MediaStop => "media_stop",
        }
    }
}

/// A client's message with the number it gave it, if any. On the wire the number is one more
/// field of the message's map, `id`: `{"type":"chat","text":"hi","id":17}`. The node
/// acknowledges a numbered command once it took effect (`ack`), or refuses it with an `error`
/// carrying the same `id`; a command sent again with a number the room has already seen from
/// the same person is acknowledged again and not applied twice.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    /// The client's number for it; none for a command the client does not track.
    pub id: Option<CommandId>,
    /// The message.
    pub msg: ClientMsg,
}

impl Serialize for Command {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// The id is one more field of the message's map.
        #[derive(Serialize)]
        struct Numbered<'a> {
            #[serde(flatten)]
            msg: &'a ClientMsg,
            #[serde(skip_serializing_if = "Option::is_none")]
            id: Option<CommandId>,
        }
        Numbered {
            msg: &self.msg,
            id: self.id,
        }
        .serialize(serializer)
    }
}

impl From<ClientMsg> for Command {
    fn from(msg: ClientMsg) -> Self {
        Self { id: None, msg }
    }
}

/// A trickled ICE candidate, shaped like the browser's `RTCIceCandidateInit` (its fields in
/// snake case). Absent fields travel as `null`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct IceCandidate {
    /// The `candidate:…` attribute (empty: end of candidates).
    pub candidate: String,
    /// The m-section's `mid` it belongs to.
    #[serde(default)]
    pub sdp_mid: Option<String>,
    /// Index of that m-section.
    #[serde(default)]
    pub sdp_mline_index: Option<u16>,
    /// The ICE ufrag of the session it was gathered for.
    #[serde(default)]
    pub username_fragment: Option<String>,
}

/// Where a returning client's chat left off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct ResumeFrom {
    /// The epoch from the client's last welcome.
    pub epoch: Epoch,
    /// The last chat offset the client received.
    pub offset: ChatOffset,
}
