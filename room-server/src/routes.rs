//! HTTP routes of the node: health, readiness, metrics, the room WebSocket, the connection
//! check, the gate's APIs and — for every other path — the web client. Every refusal of an
//! API or socket is a JSON body `{"error": code, "message": text}`.

use crate::client_addr::ClientAddr;
use crate::conn::upgrade::{NotWebSocket, Upgrade, WsSettings};
use crate::node::{Metrics, Node};
use crate::refusal::refuse;
use crate::session;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use protocol::Codec;
use protocol::codec::{SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK};
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The node's routes. `/metrics` is among them unless it has its own address
/// (`metrics_listen`, served by [`admin`]).
pub fn app(node: Arc<Node>) -> Router {
    let deadline = Duration::from_millis(node.config.limits.request_timeout_ms);
    let mut router = Router::new()
        .route("/healthz", get(health))
        .route("/readyz", get(ready));
    if node.config.metrics_listen.is_none() {
        router = router.route("/metrics", get(metrics));
    }
    let gate = crate::gate::router().with_state(Arc::clone(&node.gate));
    let web = Router::new()
        .fallback(crate::web::serve)
        .with_state(Arc::clone(&node.web));
    router
        .route("/ws/lectures/{lecture}", get(room_socket))
        .route("/ws/check", get(crate::check::socket))
        .route("/ws/relay/{lecture}", get(crate::relay::socket))
        .route("/api/v1/check/download", get(crate::check::download))
        .route("/api/openapi.json", get(crate::openapi::document))
        .with_state(node)
        .merge(gate)
        .merge(web)
        .layer(axum::middleware::from_fn(move |request, next| {
            within(deadline, request, next)
        }))
        .layer(axum::middleware::from_fn(crate::web::refuse_long_uris))
}

/// The operators' routes on their own address: metrics and the health checks.
pub fn admin(node: Arc<Node>) -> Router {
    Router::new()
        .route("/healthz", get(health))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .with_state(node)
}

/// Answers 408 when a request is not answered within `deadline` (a body sent slowly, say).
/// A WebSocket's session runs after its `101`, outside this deadline.
async fn within(
    deadline: Duration,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => refuse(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request took too long",
        ),
    }
}

#[utoipa::path(get, path = "/healthz", tag = "node",
    description = "Liveness: the process answers.",
    responses((status = 200, body = String, content_type = "text/plain", description = "`ok`")))]
pub(crate) async fn health() -> &'static str {
    "ok"
}

#[utoipa::path(get, path = "/readyz", tag = "node",
    description = "Readiness: `{\"status\": \"ready\"}`, or `degraded` (200, still serving) while Redis is unreachable.",
    responses(
        (status = 200, body = Object, description = "ready or degraded"),
        (status = 503, body = crate::gate::http::ErrorBody, description = "draining: the node is shutting down"),
    ))]
pub(crate) async fn ready(State(node): State<Arc<Node>>) -> Response {
    if node.is_draining() {
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "the node is shutting down",
        )
    } else if node.is_degraded() {
        // Still serving its people (their commands wait for Redis): not a reason to take the
        // node out of the balancer, which would do the same to every node.
        Json(json!({ "status": "degraded", "redis": "unreachable" })).into_response()
    } else {
        Json(json!({ "status": "ready" })).into_response()
    }
}

#[utoipa::path(get, path = "/metrics", tag = "node",
    description = "Counters in Prometheus text format.",
    responses((status = 200, body = String, content_type = "text/plain")))]
pub(crate) async fn metrics(State(node): State<Arc<Node>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        node.metrics.render() + &node.render_media_metrics(),
    )
        .into_response()
}

/// Whether a browser page from `origin` may open a room connection: one of the configured
/// origins, or — when none are configured — a page served from this same host.
fn origin_allowed(node: &Node, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        // Not a browser (browsers always send Origin on WebSocket requests).
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let allowed = &node.config.allowed_origins;
    if !allowed.is_empty() {
        return allowed.iter().any(|a| a == origin);
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    host.is_some() && origin_host == host
}

#[utoipa::path(get, path = "/ws/lectures/{lecture}", tag = "node",
    description = "The room WebSocket (docs/protocol.md). Ask for the subprotocol `lecture-room.v1.msgpack` or `lecture-room.v1.json`; the first message is `hello` with a ticket. Refusals before the upgrade are JSON.",
    params(("lecture" = String, Path, description = "lecture id")),
    responses(
        (status = 101, description = "switching to the room protocol"),
        (status = 400, body = crate::gate::http::ErrorBody, description = "not_websocket, unsupported_subprotocol"),
        (status = 403, body = crate::gate::http::ErrorBody, description = "origin_not_allowed"),
        (status = 404, body = crate::gate::http::ErrorBody, description = "unknown_lecture"),
        (status = 429, body = crate::gate::http::ErrorBody, description = "rate_limited"),
        (status = 503, body = crate::gate::http::ErrorBody, description = "draining, node_full, store_unavailable"),
    ))]
pub(crate) async fn room_socket(
    State(node): State<Arc<Node>>,
    Path(lecture): Path<String>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    upgrade: Result<Upgrade, NotWebSocket>,
) -> Result<Response, UpgradeRefused> {
    let Admitted {
        upgrade,
        codec,
        permit,
    } = admit_socket(&node, client, &headers, upgrade)?;
    let lecture = match node.gate.store.lecture(&lecture).await {
        Ok(Some(lecture)) => lecture,
        Ok(None) => {
            return Err(UpgradeRefused::new(
                &node,
                StatusCode::NOT_FOUND,
                "unknown_lecture",
                format!("no lecture `{lecture}`"),
            ));
        }
        Err(e) => {
            tracing::error!(error = %e, "store failure");
            return Err(UpgradeRefused::new(
                &node,
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "retry shortly",
            ));
        }
    };
    let settings = node.ws_settings(
        // Reached only while a client is not reading; must hold the largest single message
        // (a welcome with a full history and seat grid).
        16 * 1024 * 1024,
    );
    let tracker = node.sessions.clone();
    Ok(upgrade.respond(codec.subprotocol(), settings, move |ws| {
        tracker.track_future(session::run(node, ws, codec, lecture, permit))
    }))
}

/// A refusal before a WebSocket upgrade, counted for `/metrics` when made.
#[derive(Debug)]
pub(crate) struct UpgradeRefused {
    status: StatusCode,
    error: &'static str,
    message: String,
}

impl UpgradeRefused {
    fn new(
        node: &Node,
        status: StatusCode,
        error: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Metrics::add(&node.metrics.upgrades_refused_total, 1);
        Self {
            status,
            error,
            message: message.into(),
        }
    }
}

impl IntoResponse for UpgradeRefused {
    fn into_response(self) -> Response {
        refuse(self.status, self.error, self.message)
    }
}

/// A WebSocket request that passed [`admit_socket`].
#[derive(Debug)]
pub(crate) struct Admitted {
    /// The upgrade to answer.
    pub(crate) upgrade: Upgrade,
    /// The encoding the client chose.
    pub(crate) codec: Codec,
    /// Its place under `max_connections`, held for as long as the connection lives.
    pub(crate) permit: OwnedSemaphorePermit,
}

/// What every WebSocket of the node (the room's, the connection check's) passes before the
/// upgrade: a real upgrade, a node not draining, an allowed origin, the connect limit of the
/// `client`'s address (the real one behind trusted proxies: see [`ClientAddr`]), a place under
/// `max_connections` (taken now, not once upgraded, so a burst cannot overshoot it), and one of
/// the room protocol's subprotocols.
pub(crate) fn admit_socket(
    node: &Node,
    client: IpAddr,
    headers: &HeaderMap,
    upgrade: Result<Upgrade, NotWebSocket>,
) -> Result<Admitted, UpgradeRefused> {
    let upgrade = upgrade.map_err(|rejection| {
        UpgradeRefused::new(
            node,
            StatusCode::BAD_REQUEST,
            "not_websocket",
            format!("a WebSocket upgrade is required: {rejection}"),
        )
    })?;
    if node.is_draining() {
        return Err(UpgradeRefused::new(
            node,
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "the node is shutting down; retry",
        ));
    }
    if !origin_allowed(node, headers) {
        return Err(UpgradeRefused::new(
            node,
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this page's origin may not connect",
        ));
    }
    if node.connect_limiter.check_key(&client).is_err() {
        return Err(UpgradeRefused::new(
            node,
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many connections from this address",
        ));
    }
    let Some(codec) = upgrade
        .choose(&[SUBPROTOCOL_MSGPACK, SUBPROTOCOL_JSON])
        .and_then(Codec::from_subprotocol)
    else {
        return Err(UpgradeRefused::new(
            node,
            StatusCode::BAD_REQUEST,
            "unsupported_subprotocol",
            format!(
                "ask for the WebSocket subprotocol `{SUBPROTOCOL_MSGPACK}` or `{SUBPROTOCOL_JSON}`"
            ),
        ));
    };
    // Connection checks count too: each holds a socket like a room connection does.
    let Ok(permit) = Arc::clone(&node.admitted).try_acquire_owned() else {
        return Err(UpgradeRefused::new(
            node,
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

impl Node {
    /// How the node's WebSockets are set up: its size limits, small buffers (an idle
    /// connection holds little), and at most `max_write_buffer` bytes waiting for a client.
    pub(crate) fn ws_settings(&self, max_write_buffer: usize) -> WsSettings {
        let limits = &self.config.limits;
        let size = limits.max_message_bytes;
        WsSettings {
            config: WebSocketConfig::default()
                .read_buffer_size(4 * 1024)
                .write_buffer_size(4 * 1024)
                .max_write_buffer_size(max_write_buffer)
                .max_message_size(Some(size))
                .max_frame_size(Some(size)),
            send_buffer: limits.socket_send_buffer_bytes,
        }
    }
}
