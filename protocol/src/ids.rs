//! Identifiers and times as they appear on the wire.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ts_rs::TS)]
                pub struct $name(pub String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

string_id!(
    /// One scheduled lecture, and so one room. Assigned by the portal.
    LectureId
);
string_id!(
    /// A person's account id, as the portal knows it. Stable across nicknames.
    UserId
);
string_id!(
    /// The public name shown on the seat, as chat author, and the name the instructor calls.
    /// Always text: clients must never render it as HTML.
    Nickname
);
string_id!(
    /// Key of one emotion button of a lecture (`good`, `lost`, …).
    EmotionKey
);

/// What a person may do in a room. Carried in the ticket; the room checks it on every command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Bought the lecture (or was given a corporate seat): sits, chats, reacts, answers.
    Learner,
    /// Runs the lecture: starts and ends it, calls on learners, announces, moderates.
    Instructor,
    /// Assists the instructor: moderates, calls on learners, announces.
    Moderator,
}

impl Role {
    /// Instructors and moderators: the people who run the room rather than attend it.
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Instructor | Role::Moderator)
    }

    /// The role's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Learner => "learner",
            Role::Instructor => "instructor",
            Role::Moderator => "moderator",
        }
    }
}

/// One cell of the seat grid, counted from 0 at the top-left.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ts_rs::TS,
)]
pub struct Seat {
    /// Row, 0-based, from the front.
    pub row: u16,
    /// Column, 0-based, from the left.
    pub col: u16,
}

impl Seat {
    /// The seat at `row`, `col`.
    pub fn new(row: u16, col: u16) -> Self {
        Self { row, col }
    }
}

impl fmt::Display for Seat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}c{}", self.row, self.col)
    }
}

/// Position of an event in a lecture's chat stream. Strictly increasing by one, no gaps,
/// starting at 1; a client remembers the last one it saw to resume after a drop.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    ts_rs::TS,
)]
pub struct ChatOffset(#[serde(deserialize_with = "safe_integer")] pub u64);

impl ChatOffset {
    /// The offset after this one.
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

/// Generation of a lecture's chat stream. Offsets are only comparable within one epoch: a
/// client resuming with another epoch gets a full snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
pub struct Epoch(#[serde(deserialize_with = "safe_integer")] pub u64);

/// A client's number for one of its commands, so the node can acknowledge it and apply it at
/// most once however often it is sent (after a reconnect, say). Any number from 1 to
/// [`MAX_SAFE_INTEGER`] that the person has not used recently: a counter from a random start
/// does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
pub struct CommandId(#[serde(deserialize_with = "safe_integer")] pub u64);

/// The largest integer on the wire: every integer fits in 53 bits, so a JavaScript client
/// holds it exactly as a number (`Number.MAX_SAFE_INTEGER`).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Reads an integer of the wire, refusing one a JavaScript client could not hold exactly.
pub(crate) fn safe_integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = u64::deserialize(d)?;
    if n > MAX_SAFE_INTEGER {
        return Err(serde::de::Error::custom(format_args!(
            "{n} is larger than 2^53 - 1"
        )));
    }
    Ok(n)
}

/// Wall-clock time: milliseconds since the Unix epoch, UTC.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    ts_rs::TS,
)]
pub struct UnixMillis(pub u64);

impl UnixMillis {
    /// This time plus `ms` milliseconds (saturating).
    pub fn plus_ms(self, ms: u64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    /// This time minus `ms` milliseconds (saturating at the epoch).
    pub fn minus_ms(self, ms: u64) -> Self {
        Self(self.0.saturating_sub(ms))
    }

    /// Milliseconds from `earlier` to `self`, 0 if `earlier` is later.
    pub fn since(self, earlier: UnixMillis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}
