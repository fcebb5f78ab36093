//! HTTP routes of the node: health, readiness, metrics, the room WebSocket, the connection
//! check, the gate's APIs and — for every other path — the web client. Every refusal of an
//! API or socket is a JSON body `{"error": code, "message": text}`.

use crate::client_addr::ClientAddr;
use crate::node::{Metrics, Node};
use crate::session;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
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
use std::sync::atomic::Ordering;

/// The node's routes.
pub fn app(node: Arc<Node>) -> Router {
    Router::new()
        .route("/healthz", get(health))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/ws/lectures/{lecture}", get(room_socket))
        .route("/ws/check", get(crate::check::socket))
        .route("/ws/relay/{lecture}", get(crate::relay::socket))
        .route("/api/v1/check/download", get(crate::check::download))
        .merge(crate::gate::router())
        .fallback(crate::web::serve)
        .with_state(node)
}

/// A refusal with a stable code and a sentence.
pub(crate) fn refuse(status: StatusCode, error: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error": error, "message": message.into() })),
    )
        .into_response()
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
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, UpgradeRefused> {
    let (upgrade, codec) = admit_socket(&node, client, &headers, upgrade)?;
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
    let session_node = Arc::clone(&node);
    Ok(upgrade
        // Reached only while a client is not reading; must hold the largest single message
        // (a welcome with a full history and seat grid).
        .max_write_buffer_size(16 * 1024 * 1024)
        .on_upgrade(move |socket| {
            let tracker = session_node.sessions.clone();
            tracker.track_future(session::run(session_node, socket, codec, lecture))
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

/// What every WebSocket of the node (the room's, the connection check's) passes before the
/// upgrade: a real upgrade, a node not draining, an allowed origin, the connect limit of the
/// `client`'s address (the real one behind trusted proxies: see [`ClientAddr`]), room under
/// `max_connections`, and one of the room protocol's subprotocols. Returns the upgrade with
/// the node's size limits set and the chosen codec, or the refusal.
pub(crate) fn admit_socket(
    node: &Node,
    client: IpAddr,
    headers: &HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<(WebSocketUpgrade, Codec), UpgradeRefused> {
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
    let limits = &node.config.limits;
    let metrics = &node.metrics;
    // Connection checks count too: each holds a socket like a room connection does.
    let active = metrics.connections_active.load(Ordering::Relaxed)
        + metrics.check_connections_active.load(Ordering::Relaxed);
    if active >= limits.max_connections as u64 {
        return Err(UpgradeRefused::new(
            node,
            StatusCode::SERVICE_UNAVAILABLE,
            "node_full",
            "this node is full; retry",
        ));
    }
    let upgrade = upgrade.protocols([SUBPROTOCOL_MSGPACK, SUBPROTOCOL_JSON]);
    let Some(codec) = upgrade
        .selected_protocol()
        .and_then(|p| p.to_str().ok())
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
    let size = limits.max_message_bytes;
    let upgrade = upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_message_size(size)
        .max_frame_size(size);
    Ok((upgrade, codec))
}
