//! The JSON body every refusal of the node's HTTP endpoints and sockets has:
//! `{"error": code, "message": sentence}` — a stable code to act on, a sentence for people.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A refusal with a stable code and a sentence.
pub(crate) fn refuse(status: StatusCode, error: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error": error, "message": message.into() })),
    )
        .into_response()
}
