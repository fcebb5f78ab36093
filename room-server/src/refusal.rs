//! The JSON body every refusal of the node's HTTP endpoints and sockets has:
//! `{"error": code, "message": sentence}` — a stable code to act on, a sentence for people.
//! The gate's `ApiError` and the sockets' refusals both answer with it.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error the gate answers with.
#[derive(Debug, Serialize, ToSchema, ts_rs::TS)]
pub struct ErrorBody {
    /// Stable code.
    pub(crate) error: String,
    /// What went wrong, in English.
    pub(crate) message: String,
}

/// A refusal with a stable code and a sentence.
pub(crate) fn refuse(status: StatusCode, error: &str, message: impl Into<String>) -> Response {
    let body = ErrorBody {
        error: error.to_owned(),
        message: message.into(),
    };
    (status, Json(body)).into_response()
}
