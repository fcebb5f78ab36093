//! WebSocket close codes of the room, in two ranges with a meaning.
//!
//! - `4000–4099` **reconnect**: nothing is wrong with the client's right to be here. Reconnect
//!   (with back-off and jitter) and resume with the last chat offset; the seat is held.
//! - `4100–4199` **terminal**: do not reconnect with the same ticket. Show the reason; a new
//!   ticket from the entry gate may or may not help (it will for an expired ticket).
//!
//! Code `1000` (normal) closes a connection after the client's own `leave`.

use serde::{Deserialize, Serialize};

/// Why a node closed a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CloseCode {
    /// 4000: the node is shutting down or draining. Reconnect; another node will take you.
    ServerShutdown,
    /// 4001: the client did not read fast enough and its queue filled. Reconnect and resume.
    SlowConsumer,
    /// 4002: nothing arrived from the client within the idle timeout. Reconnect.
    HeartbeatTimeout,
    /// 4003: the room lost track of this connection's state; reconnect and resume.
    ResyncRequired,
    /// 4100: the ticket is malformed or its signature is wrong.
    TicketInvalid,
    /// 4101: the ticket has expired. Get a new one from the entry gate.
    TicketExpired,
    /// 4102: the ticket is for another lecture than the one in the URL.
    TicketWrongLecture,
    /// 4103: an instructor or moderator removed you; you may enter again.
    Removed,
    /// 4104: an instructor or moderator removed you and you may not return to this lecture.
    Banned,
    /// 4105: the lecture has ended. The archive follows.
    LectureEnded,
    /// 4106: the lecture was cancelled.
    LectureCancelled,
    /// 4107: the client broke the protocol (malformed frame, wrong frame type, a message
    /// before `hello`).
    ProtocolViolation,
    /// 4108: a frame or message exceeded the node's size limit.
    MessageTooBig,
    /// 4109: no `hello` arrived in time after the connection opened.
    HelloTimeout,
    /// 4110: the client kept sending far beyond its rate limit.
    Flooding,
    /// 4111: learners may enter from one hour before the start; the doors are not open yet.
    DoorsNotOpen,
    /// 4112: the same person connected again elsewhere (another tab or device); this older
    /// connection gives way.
    Replaced,
    /// 4113: the right to attend was taken away (purchase cancelled or refunded, seat taken
    /// back by the company).
    Revoked,
}

impl CloseCode {
    /// Every close code, in numeric order.
    pub const ALL: [CloseCode; 18] = [
        CloseCode::ServerShutdown,
        CloseCode::SlowConsumer,
        CloseCode::HeartbeatTimeout,
        CloseCode::ResyncRequired,
        CloseCode::TicketInvalid,
        CloseCode::TicketExpired,
        CloseCode::TicketWrongLecture,
        CloseCode::Removed,
        CloseCode::Banned,
        CloseCode::LectureEnded,
        CloseCode::LectureCancelled,
        CloseCode::ProtocolViolation,
        CloseCode::MessageTooBig,
        CloseCode::HelloTimeout,
        CloseCode::Flooding,
        CloseCode::DoorsNotOpen,
        CloseCode::Replaced,
        CloseCode::Revoked,
    ];

    /// The numeric code sent in the close frame.
    pub fn code(self) -> u16 {
        match self {
            CloseCode::ServerShutdown => 4000,
            CloseCode::SlowConsumer => 4001,
            CloseCode::HeartbeatTimeout => 4002,
            CloseCode::ResyncRequired => 4003,
            CloseCode::TicketInvalid => 4100,
            CloseCode::TicketExpired => 4101,
            CloseCode::TicketWrongLecture => 4102,
            CloseCode::Removed => 4103,
            CloseCode::Banned => 4104,
            CloseCode::LectureEnded => 4105,
            CloseCode::LectureCancelled => 4106,
            CloseCode::ProtocolViolation => 4107,
            CloseCode::MessageTooBig => 4108,
            CloseCode::HelloTimeout => 4109,
            CloseCode::Flooding => 4110,
            CloseCode::DoorsNotOpen => 4111,
            CloseCode::Replaced => 4112,
            CloseCode::Revoked => 4113,
        }
    }

    /// The close code with this number, if it is one of the room's.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// Whether a client should reconnect and resume (true) or stop and show the reason.
    pub fn is_reconnect(self) -> bool {
        self.code() < 4100
    }

    /// The reason text sent in the close frame (short, English, for logs and developers;
    /// clients show their own localised text for the code).
    pub fn reason(self) -> &'static str {
        match self {
            CloseCode::ServerShutdown => "server going away; reconnect",
            CloseCode::SlowConsumer => "too slow to keep up; reconnect and resume",
            CloseCode::HeartbeatTimeout => "no traffic within the idle timeout; reconnect",
            CloseCode::ResyncRequired => "resync required; reconnect and resume",
            CloseCode::TicketInvalid => "invalid ticket",
            CloseCode::TicketExpired => "ticket expired; get a new one from the entry gate",
            CloseCode::TicketWrongLecture => "ticket is for another lecture",
            CloseCode::Removed => "removed from the room",
            CloseCode::Banned => "removed from the room; return not allowed",
            CloseCode::LectureEnded => "the lecture has ended",
            CloseCode::LectureCancelled => "the lecture was cancelled",
            CloseCode::ProtocolViolation => "protocol violation",
            CloseCode::MessageTooBig => "message too big",
            CloseCode::HelloTimeout => "no hello in time",
            CloseCode::Flooding => "too many messages",
            CloseCode::DoorsNotOpen => "doors are not open yet",
            CloseCode::Replaced => "connected again elsewhere",
            CloseCode::Revoked => "entitlement revoked",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for c in CloseCode::ALL {
            assert!(seen.insert(c.code()), "duplicate code {}", c.code());
            assert_eq!(CloseCode::from_code(c.code()), Some(c));
            assert!((4000..4200).contains(&c.code()));
            assert!(
                c.reason().len() <= 123,
                "close reasons must fit a close frame"
            );
        }
        assert_eq!(CloseCode::from_code(1000), None);
    }

    #[test]
    fn reconnect_and_terminal_ranges() {
        assert!(CloseCode::SlowConsumer.is_reconnect());
        assert!(CloseCode::ServerShutdown.is_reconnect());
        assert!(!CloseCode::TicketExpired.is_reconnect());
        assert!(!CloseCode::Banned.is_reconnect());
    }
}
