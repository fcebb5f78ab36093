//! The load generator's parts. The `bench` binary (src/main.rs) is its command line; see
//! bench/README.md for the profiles and what each number means.
//!
//! - [`wire`]: the wires learners speak (the room protocol, Socket.IO for the Socket.IO peer,
//!   NATS for nats-server), and a learner's [`wire::Link`].
//! - [`nats`]: the NATS client protocol over WebSocket, without IO.
//! - [`learner`]: one simulated learner as a task, and what it heard.
//! - [`profiles`]: `heavy-lecture` / `multi-node`, `join-storm`, `idle`.
//! - [`chart`]: `compare` and `chart` against the Socket.IO peer.
//! - [`system`], [`nodes`]: the servers under test, started on loopback.
//! - [`proc`]: CPU and memory of a process from `/proc`. [`report`]: tables and JSON.
//! - [`scrape`]: counters from a room node's `/metrics` (frames per `write`).
//! - [`samples`]: realistic sample data for the micro-benchmarks.

pub mod chart;
pub mod learner;
pub mod nats;
pub mod nodes;
pub mod proc;
pub mod profiles;
pub mod report;
pub mod samples;
pub mod scrape;
pub mod sfu;
pub mod system;
pub mod wire;
