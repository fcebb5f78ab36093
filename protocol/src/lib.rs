//! Wire protocol of the live lecture room.
//!
//! Everything a client and a room node say to each other over the room WebSocket, and nothing
//! else: no IO, no async, no clock. A client in any language can be written from
//! `docs/protocol.md`, which this crate's types are the source of.
//!
//! # Layout
//! - [`ids`]: id newtypes (lecture, user, seat, chat offset, epoch) and times.
//! - [`client`]: what a client sends ([`ClientMsg`]).
//! - [`server`]: what a node sends ([`ServerMsg`]) and the snapshot pieces it is made of.
//! - [`grid`]: the seat grid as learners get it: seat numbers, bitmaps, the seats' nicknames.
//! - [`close`]: WebSocket close codes, split into "reconnect" and "terminal" ranges.
//! - [`error`]: codes of refused commands (the connection stays open).
//! - [`codec`]: the two encodings, chosen by WebSocket subprotocol.

pub mod client;
pub mod close;
pub mod codec;
pub mod error;
pub mod grid;
pub mod ids;
pub mod server;
pub mod ticket;

pub use client::{ClientMsg, Command, IceCandidate, ResumeFrom};
pub use close::CloseCode;
pub use codec::{Codec, DecodeError, EncodeError};
pub use error::ErrorCode;
pub use grid::{Occupancy, SeatBits, SeatNumber};
pub use ids::{
    ChatOffset, CommandId, EmotionKey, Epoch, LectureId, MAX_SAFE_INTEGER, Nickname, Role, Seat,
    UnixMillis, UserId,
};
pub use server::{IceServer, ServerMsg};

/// Version of this protocol. It is part of both subprotocol names, so a client and a node that
/// do not share a version never exchange a frame. Version 2 gives learners the seat grid as
/// bitmaps and seat numbers, and the nicknames of the seats they look at on request
/// (`docs/protocol.md`, "Changes from version 1").
pub const PROTOCOL_VERSION: u16 = 2;
