//! The live lecture room node.
//!
//! # Layout
//! - the `room` crate (`room-server/room/`): the lecture room as a sans-IO state machine (no
//!   tokio, no clock, no locks), which this crate drives.
//! - [`node`]: the composition root ([`Node`]) and [`run`]; `node::routes` are the HTTP
//!   endpoints. `rooms`: the registry of this node's rooms, one task per lecture driving the
//!   room core; `session`: one client connection; `conn`: what every WebSocket goes through
//!   (admission, upgrade, outbox, close); `cluster`: this node among the others.
//! - `web`: the web client's files (and its own routes); `check`: the connection check its
//!   learners run (a ping socket with a WebRTC probe, capped per address and per node, and a
//!   download).
//! - [`gate`]: the entry gate — records (SQLite or PostgreSQL), identity, entitlement, and
//!   the learner, corporate and integration APIs; `records` writes what rooms report.
//! - `log`: the order a room applies its inputs in — in-process for one node, a Redis stream
//!   for many (every node applies the same entries to its own copy of the room core).
//! - `media`: the instructor's broadcast per room (the `signaling` SFU) and each session's
//!   media loop: SDP and candidates over the room connection, gated by the lecture's phase;
//!   the node-to-node relay (`media::relay`). [`turn`]: short-lived TURN credentials for
//!   admitted people (a module of its own: the configuration checks its secret).
//! - [`bus`]: events every node holding a lecture must act on (revocations, cancellations).
//! - [`config`]: flags, environment and the TOML file. Room tickets (signed, short-lived)
//!   are the protocol's (`protocol::ticket`): the gate mints them, any node verifies them.
//! - [`clock`]: the one source of wall-clock time. the demo records live in the gate (`gate::demo`).
//! - [`client_addr`]: the client's address behind trusted proxies, for every per-address
//!   limit.
//! - [`mail`]: learners' e-mails (reminder, archive ready, cancellation) through SMTP, on a
//!   task of its own; sent once per learner, lecture and kind across nodes.
//! - `metrics`: the one registry behind `/metrics` (names, buckets, encoding); the other
//!   modules only count and observe through its handles.

pub mod archive;
mod backoff;
pub mod bus;
mod check;
pub mod client_addr;
pub mod clock;
mod cluster;
pub mod config;
mod conn;
pub mod gate;
mod log;
pub mod mail;
mod media;
mod metrics;
pub mod node;
mod records;
mod refusal;
mod rooms;
mod session;
pub mod turn;
mod web;

pub use node::{Node, run};

/// The node's WebSocket writer on its own, for the micro-benchmarks
/// (`cargo bench -p room-server --bench writer`).
#[doc(hidden)]
pub mod bench_support {
    pub use crate::conn::ws::{Frame, Writer};

    /// The writing half of a server-side WebSocket over `tcp` (already upgraded).
    pub async fn writer(tcp: tokio::net::TcpStream) -> Writer {
        let socket = crate::conn::socket::Socket::new(tcp, std::time::Duration::from_secs(30));
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
        crate::conn::ws::split(socket, Vec::new(), config).await.1
    }
}

/// The JSON bodies of the gate's HTTP API that the web client reads, for its generated
/// TypeScript types (`tests/typescript.rs` writes them to `room-server/bindings/`).
pub mod web_types {
    pub use crate::gate::entitlement::LectureState;
    pub use crate::gate::http::ErrorBody;
    pub use crate::gate::learner::{
        DemoPeople, DemoPerson, MyLectures, SignInOptions, SignedIn, TicketResponse,
    };
    pub use crate::gate::model::Profile;
    pub use crate::gate::{Entry, MyLecture, RefusalBody};
}
