//! HTTP routes of the node: health, readiness, metrics, the room WebSocket, the connection
//! check, the gate's APIs and — for every other path — the web client. Every refusal of an
//! API or socket is a JSON body `{"error": code, "message": text}`.

use crate::client_addr::ClientAddr;
use crate::conn::admission::{Admitted, UpgradeRefused};
use crate::conn::upgrade::{NotWebSocket, Upgrade};
use crate::node::Node;
use crate::refusal::refuse;
use crate::session;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

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
    let check = crate::check::router().with_state(Arc::clone(&node.check));
    let archive = crate::archive::http::router().with_state(Arc::clone(&node.archive));
    let relay_host: Arc<dyn crate::media::relay::RelayHost> = Arc::clone(&node.rooms) as _;
    let relay = crate::media::relay::router().with_state(relay_host);
    let web = Router::new()
        .fallback(crate::web::serve)
        .with_state(Arc::clone(&node.web));
    router
        .route("/ws/lectures/{lecture}", get(room_socket))
        .route("/api/openapi.json", get(crate::node::openapi::document))
        .with_state(node)
        .merge(gate)
        .merge(check)
        .merge(archive)
        .merge(relay)
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
        .route("/drain", post(drain))
        .with_state(node)
}

#[utoipa::path(post, path = "/drain", tag = "node",
    description = "Drains the node, as SIGTERM does: `/readyz` answers 503 at once, the node serves on for `[limits] drain_window_ms`, closes its connections with 4000 spread over `drain_spread_ms`, then stops. Served only on the operators' address (`metrics_listen`).",
    responses((status = 202, body = Object, description = "`{\"status\": \"draining\"}`")))]
pub(crate) async fn drain(State(node): State<Arc<Node>>) -> Response {
    node.drain();
    (StatusCode::ACCEPTED, Json(json!({ "status": "draining" }))).into_response()
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
    description = "Counters, gauges and histograms in the OpenMetrics text format (docs/metrics.md).",
    responses((status = 200, body = String, content_type = "application/openmetrics-text")))]
pub(crate) async fn metrics(State(node): State<Arc<Node>>) -> Response {
    node.metrics.node_ready.set(i64::from(!node.is_draining()));
    node.metrics
        .node_degraded
        .set(i64::from(node.is_degraded()));
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        node.metrics.encode(&node.rooms.media_now()),
    )
        .into_response()
}

#[utoipa::path(get, path = "/ws/lectures/{lecture}", tag = "node",
    description = "The room WebSocket (docs/protocol.md). Ask for the subprotocol `lecture-room.v2.msgpack` or `lecture-room.v2.json`; the first message is `hello` with a ticket. Refusals before the upgrade are JSON.",
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
    } = node.admission.admit(client, &headers, upgrade)?;
    let lecture = match node.gate.store.lecture(&lecture).await {
        Ok(Some(lecture)) => lecture,
        Ok(None) => {
            return Err(node.admission.refused(
                StatusCode::NOT_FOUND,
                "unknown_lecture",
                format!("no lecture `{lecture}`"),
            ));
        }
        Err(e) => {
            tracing::error!(error = %e, "store failure");
            return Err(node.admission.refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "retry shortly",
            ));
        }
    };
    let settings = node.admission.ws_settings();
    let tracker = node.admission.sessions.clone();
    let context = Arc::clone(&node.session);
    Ok(
        upgrade.respond(codec.subprotocol(), settings, move |reader, writer| {
            tracker.track_future(session::run(
                context, reader, writer, codec, lecture, permit,
            ))
        }),
    )
}
