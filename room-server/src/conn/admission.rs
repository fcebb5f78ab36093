//! What every WebSocket of the node (the room's, the connection check's) passes before its
//! upgrade, and how an admitted one is set up: a node not draining, an allowed origin, the
//! connect limit of the client's address, a place under `max_connections` (taken now, not once
//! upgraded, so a burst cannot overshoot it), and one of the room protocol's subprotocols.

use super::upgrade::{NotWebSocket, Upgrade, WsSettings};
use crate::config::Limits;
use crate::metrics::Metrics;
use crate::refusal::refuse;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use protocol::Codec;
use protocol::codec::{SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The node's door for WebSockets.
#[derive(Debug)]
pub(crate) struct Admission {
    /// Cancelled when the node starts shutting down: no new sockets, and sessions end.
    pub(crate) shutdown: CancellationToken,
    /// Every socket's task, so shutdown can wait for them to close.
    pub(crate) sessions: TaskTracker,
    /// Browser origins allowed to connect; empty: the node's own host only.
    allowed_origins: Vec<String>,
    /// New connections per client address.
    connect_limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Places under `max_connections`, taken when a WebSocket is admitted and given back when
    /// it closes.
    admitted: Arc<Semaphore>,
    /// Largest message and frame a client may send.
    max_message_bytes: usize,
    /// The kernel send buffer each socket gets.
    socket_send_buffer: usize,
    /// Refusals are counted.
    metrics: Arc<Metrics>,
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

impl Admission {
    pub(crate) fn new(
        limits: &Limits,
        allowed_origins: Vec<String>,
        shutdown: CancellationToken,
        sessions: TaskTracker,
        metrics: Arc<Metrics>,
    ) -> Self {
        let quota = Quota::per_second(nonzero(limits.connects_per_sec_per_ip))
            .allow_burst(nonzero(limits.connect_burst_per_ip));
        Self {
            shutdown,
            sessions,
            allowed_origins,
            connect_limiter: RateLimiter::keyed(quota),
            admitted: Arc::new(Semaphore::new(
                limits.max_connections.min(Semaphore::MAX_PERMITS),
            )),
            max_message_bytes: limits.max_message_bytes,
            socket_send_buffer: limits.socket_send_buffer_bytes,
            metrics,
        }
    }

    /// Whether the node is shutting down (and so takes no new connections).
    pub(crate) fn is_draining(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Forgets idle per-address counters, so the limiter's memory stays bounded.
    pub(crate) fn forget_idle_limits(&self) {
        self.connect_limiter.retain_recent();
    }

    /// A refusal before the upgrade, counted.
    pub(crate) fn refused(
        &self,
        status: StatusCode,
        error: &'static str,
        message: impl Into<String>,
    ) -> UpgradeRefused {
        self.metrics.upgrades_refused_total.inc();
        UpgradeRefused {
            status,
            error,
            message: message.into(),
        }
    }

    /// Admits a WebSocket request from `client` (see the module documentation).
    pub(crate) fn admit(
        &self,
        client: IpAddr,
        headers: &HeaderMap,
        upgrade: Result<Upgrade, NotWebSocket>,
    ) -> Result<Admitted, UpgradeRefused> {
        let upgrade = upgrade.map_err(|rejection| {
            self.refused(
                StatusCode::BAD_REQUEST,
                "not_websocket",
                format!("a WebSocket upgrade is required: {rejection}"),
            )
        })?;
        if self.is_draining() {
            return Err(self.refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "draining",
                "the node is shutting down; retry",
            ));
        }
        if !self.origin_allowed(headers) {
            return Err(self.refused(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "this page's origin may not connect",
            ));
        }
        if self.connect_limiter.check_key(&client).is_err() {
            return Err(self.refused(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many connections from this address",
            ));
        }
        let Some(codec) = upgrade
            .choose(&[SUBPROTOCOL_MSGPACK, SUBPROTOCOL_JSON])
            .and_then(Codec::from_subprotocol)
        else {
            return Err(self.refused(
                StatusCode::BAD_REQUEST,
                "unsupported_subprotocol",
                format!(
                    "ask for the WebSocket subprotocol `{SUBPROTOCOL_MSGPACK}` or `{SUBPROTOCOL_JSON}`"
                ),
            ));
        };
        // Connection checks count too: each holds a socket like a room connection does.
        let Ok(permit) = Arc::clone(&self.admitted).try_acquire_owned() else {
            return Err(self.refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "node_full",
                "this node is full; retry",
            ));
        };
        Ok(Admitted {
            upgrade,
            codec,
            permit,
        })
    }

    /// Whether a browser page from `origin` may open a socket: one of the configured origins,
    /// or — when none are configured — a page served from this same host.
    fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            // Not a browser (browsers always send Origin on WebSocket requests).
            return true;
        };
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        if !self.allowed_origins.is_empty() {
            return self.allowed_origins.iter().any(|a| a == origin);
        }
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin_host = origin.split_once("://").map(|(_, rest)| rest);
        host.is_some() && origin_host == host
    }

    /// How an admitted WebSocket is set up: the size limits and a small read buffer (an idle
    /// connection holds little; a larger message gets the room it needs while it is read).
    /// Tungstenite writes only its own control frames (see `ws`): its write buffer stays
    /// small.
    pub(crate) fn ws_settings(&self) -> WsSettings {
        let size = self.max_message_bytes;
        WsSettings {
            config: WebSocketConfig::default()
                .read_buffer_size(READ_BUFFER)
                .write_buffer_size(0)
                .max_write_buffer_size(16 * 1024)
                .max_message_size(Some(size))
                .max_frame_size(Some(size)),
            send_buffer: self.socket_send_buffer,
        }
    }
}

/// The bytes a connection reads from its socket at once, and its read buffer's size while
/// messages are small.
const READ_BUFFER: usize = 512;

/// A WebSocket request that passed [`Admission::admit`].
#[derive(Debug)]
pub(crate) struct Admitted {
    /// The upgrade to answer.
    pub(crate) upgrade: Upgrade,
    /// The encoding the client chose.
    pub(crate) codec: Codec,
    /// Its place under `max_connections`, held for as long as the connection lives.
    pub(crate) permit: OwnedSemaphorePermit,
}

/// A refusal before a WebSocket upgrade (counted for `/metrics` when made).
#[derive(Debug)]
pub(crate) struct UpgradeRefused {
    status: StatusCode,
    error: &'static str,
    message: String,
}

impl IntoResponse for UpgradeRefused {
    fn into_response(self) -> Response {
        refuse(self.status, self.error, self.message)
    }
}
