//! Codes of refused commands. A refused command gets an `error` message; the connection stays
//! open.

use serde::{Deserialize, Serialize};

/// Why a command was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The message is well-formed but its type is unknown or a field has the wrong shape.
    BadCommand,
    /// A second `hello` on a connection that already entered.
    AlreadyEntered,
    /// The sender's role may not do this (a learner trying an instructor's action).
    NotAllowed,
    /// Not possible in the lecture's current phase (for example, starting an ended lecture).
    WrongPhase,
    /// The seat is outside the lecture's grid.
    SeatOutOfRange,
    /// Someone else sits there.
    SeatTaken,
    /// The chat message is empty after trimming.
    ChatEmpty,
    /// The chat message or announcement is longer than the limit.
    TextTooLong,
    /// The text contains control or bidirectional-override characters.
    InvalidCharacters,
    /// The sender is muted; the error message says until when.
    Muted,
    /// Too many messages or reactions; slow down.
    RateLimited,
    /// The emotion key is not one of this lecture's buttons.
    UnknownEmotion,
    /// No such chat message, learner or seat occupant.
    NotFound,
    /// Several learners share that nickname; call on them by seat.
    AmbiguousNickname,
    /// The target is not a question.
    NotAQuestion,
    /// The request's parameters are out of range (a mute of 0 seconds, both nickname and
    /// seat, …).
    InvalidArgument,
    /// You have already upvoted this question (one vote per learner per question).
    AlreadyVoted,
}

impl ErrorCode {
    /// Every error code.
    pub const ALL: [ErrorCode; 17] = [
        ErrorCode::BadCommand,
        ErrorCode::AlreadyEntered,
        ErrorCode::NotAllowed,
        ErrorCode::WrongPhase,
        ErrorCode::SeatOutOfRange,
        ErrorCode::SeatTaken,
        ErrorCode::ChatEmpty,
        ErrorCode::TextTooLong,
        ErrorCode::InvalidCharacters,
        ErrorCode::Muted,
        ErrorCode::RateLimited,
        ErrorCode::UnknownEmotion,
        ErrorCode::NotFound,
        ErrorCode::AmbiguousNickname,
        ErrorCode::NotAQuestion,
        ErrorCode::InvalidArgument,
        ErrorCode::AlreadyVoted,
    ];
}
