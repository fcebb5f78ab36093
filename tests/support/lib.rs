//! The harness of the end-to-end tests: real nodes (in this process, or `room-server`
//! processes), real Redis, coturn and SMTP servers, real WebSocket clients (a careful [`Learner`]
//! among them) and an HTTP client. The black-box tests next to it (`tests/*.rs`) and
//! room-server's own end-to-end tests use it.

use futures_util::{SinkExt, StreamExt};
use protocol::server::Welcome;
use protocol::ticket::{TicketClaims, TicketKey};
use protocol::{
    ClientMsg, Codec, LectureId, Nickname, ResumeFrom, Role, ServerMsg, UnixMillis, UserId,
};
use room_server::clock::{Clock, SystemClock};
use room_server::config::Config;
use room_server::gate::model::{Lecture, LectureStatus, StaffMember};
use room_server::{Node, run};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The lecture every test node serves: doors open, starting in 30 minutes.
pub const LECTURE: &str = "lec-e2e";
/// Bound on waiting for anything a test expects to happen.
pub const WAIT: Duration = Duration::from_secs(10);

mod client;
mod http;
mod learner;
mod node;
mod process;
mod servers;
mod smtp;

pub use client::*;
pub use http::*;
pub use learner::*;
pub use node::*;
pub use process::*;
pub use servers::*;
pub use smtp::*;

pub fn now() -> UnixMillis {
    SystemClock.now()
}
