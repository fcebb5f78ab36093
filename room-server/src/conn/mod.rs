//! The connection layer, below sessions: how sockets are accepted, upgraded and closed.
//!
//! # Layout
//! - `admission`: what a WebSocket passes before its upgrade, and how it is set up.
//! - `serve`: the accept loop (a cap on open sockets, HTTP/1 timeouts, shutdown).
//! - `socket`: one accepted socket (writes that stall fail; a bounded send buffer).
//! - `upgrade`: the WebSocket upgrade that keeps the socket in the node's hands.
//! - `ws`: the upgraded socket in two halves: tungstenite reads, the node writes batches of
//!   shared frames with one vectored write; the close that makes the close code arrive.
//! - `ids`: connection numbers, unique across the nodes.
//! - `frames`: reading a client's frames (payloads, failed reads).
//! - `outbox`: a connection's queue from its room (a frame for an idle connection is written
//!   at once, without waking its task), its kick switch, frames encoded once.
//! - `signal`: lock-free wake-ups within a connection's task (its queue, its kick switch).

pub(crate) mod admission;
pub(crate) mod frames;
pub(crate) mod ids;
pub(crate) mod join;
pub(crate) mod outbox;
pub(crate) mod serve;
pub(crate) mod signal;
pub(crate) mod socket;
pub(crate) mod upgrade;
pub(crate) mod ws;
