//! The node's own WebSocket upgrade (RFC 6455 §4.2): checks the request, answers `101`, and
//! hands the session the connection's own [`Socket`], split into tokio-tungstenite's reader and
//! the node's writer (see [`super::ws`]). Keeping the socket (rather than an opaque stream) is
//! what lets a close code arrive: the node can half-close it and read away what the client
//! still sends, and bound its send buffer.

use super::serve::OpenSlot;
use super::socket::Socket;
use super::ws::{Reader, Writer};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::{debug, warn};

/// How an upgraded connection is set up.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WsSettings {
    /// Frame and message limits, the read buffer's size.
    pub(crate) config: WebSocketConfig,
    /// The kernel send buffer the socket gets (see [`Socket::bound_send_buffer`]).
    pub(crate) send_buffer: usize,
}

/// A checked request to open a WebSocket.
#[derive(Debug)]
pub(crate) struct Upgrade {
    on_upgrade: OnUpgrade,
    /// The `Sec-WebSocket-Accept` answer to the client's key.
    accept: HeaderValue,
    /// The subprotocols the client offered, as sent.
    offered: Option<HeaderValue>,
    /// The connection's slot among the node's open sockets, carried into the WebSocket's
    /// life once upgraded.
    slot: Option<OpenSlot>,
}

/// Not a WebSocket upgrade request; the sentence says what is missing.
#[derive(Debug)]
pub(crate) struct NotWebSocket(pub(crate) &'static str);

impl IntoResponse for NotWebSocket {
    fn into_response(self) -> Response {
        crate::refusal::refuse(
            StatusCode::BAD_REQUEST,
            "not_websocket",
            format!("a WebSocket upgrade is required: {}", self.0),
        )
    }
}

impl std::fmt::Display for NotWebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Whether a header holds `token` in its comma-separated list (case-insensitive).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = NotWebSocket;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if parts.method != Method::GET {
            return Err(NotWebSocket("a WebSocket opens with GET"));
        }
        let headers = &parts.headers;
        if !has_token(headers, header::CONNECTION, "upgrade") {
            return Err(NotWebSocket("`Connection: upgrade` is missing"));
        }
        if !has_token(headers, header::UPGRADE, "websocket") {
            return Err(NotWebSocket("`Upgrade: websocket` is missing"));
        }
        if headers.get(header::SEC_WEBSOCKET_VERSION) != Some(&HeaderValue::from_static("13")) {
            return Err(NotWebSocket("`Sec-WebSocket-Version: 13` is missing"));
        }
        let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
            return Err(NotWebSocket("`Sec-WebSocket-Key` is missing"));
        };
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let accept = HeaderValue::from_str(&accept)
            .map_err(|_| NotWebSocket("the key cannot be answered"))?;
        let offered = headers.get(header::SEC_WEBSOCKET_PROTOCOL).cloned();
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or(NotWebSocket("this connection cannot be upgraded"))?;
        Ok(Self {
            on_upgrade,
            accept,
            offered,
            slot: parts.extensions.get::<OpenSlot>().cloned(),
        })
    }
}

impl Upgrade {
    /// The first of `ours` (in our order of preference) that the client offered.
    pub(crate) fn choose(&self, ours: &[&'static str]) -> Option<&'static str> {
        let offered = self.offered.as_ref()?.to_str().ok()?;
        ours.iter()
            .copied()
            .find(|p| offered.split(',').any(|o| o.trim() == *p))
    }

    /// Answers `101 Switching Protocols` (with `protocol`) and runs `session` on the connection
    /// once the client has it. The socket keeps its place among the node's open sockets for as
    /// long as the session runs.
    pub(crate) fn respond<F, Fut>(
        self,
        protocol: &'static str,
        settings: WsSettings,
        session: F,
    ) -> Response
    where
        F: FnOnce(Reader, Writer) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Upgrade {
            on_upgrade,
            accept,
            slot,
            ..
        } = self;
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(e) => {
                    debug!(error = %e, "the upgrade did not complete");
                    return;
                }
            };
            // Every connection the node serves is a `Socket` (see `serve`).
            let Ok(parts) = upgraded.downcast::<TokioIo<Socket>>() else {
                warn!("an upgraded connection is not one of the node's sockets");
                return;
            };
            let slot = slot.and_then(|s| s.take());
            let socket = parts.io.into_inner();
            socket.bound_send_buffer(settings.send_buffer);
            // Bytes the client sent right behind its request (a `hello`, say) come first.
            let read = parts.read_buf.to_vec();
            drop(parts.read_buf);
            let (reader, writer) = super::ws::split(socket, read, settings.config).await;
            // The session is a task of its own, the size of its own future: what the upgrade
            // needed is not kept for the connection's life.
            // (`map`, not an `async` block awaiting it: that would hold the future twice.)
            tokio::spawn(session(reader, writer).map(move |()| drop(slot)));
        });
        (
            StatusCode::SWITCHING_PROTOCOLS,
            [
                (header::CONNECTION, HeaderValue::from_static("upgrade")),
                (header::UPGRADE, HeaderValue::from_static("websocket")),
                (header::SEC_WEBSOCKET_ACCEPT, accept),
                (
                    header::SEC_WEBSOCKET_PROTOCOL,
                    HeaderValue::from_static(protocol),
                ),
            ],
        )
            .into_response()
    }
}
