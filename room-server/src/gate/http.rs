//! What the gate's APIs share: one error type that always answers with a JSON body and never
//! a 5xx for a client's mistake, the extractors for identity, API key and JSON bodies, and
//! the log line of every refused request (a security event).

use super::Gate;
use super::RefusalBody;
use super::entitlement::Refusal;
use super::identity::IdentityError;
use super::store::StoreError;
use axum::Json;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::sync::Arc;
use tracing::{error, info, warn};

/// Largest JSON body the gate's APIs read: a lecture with a long staff list is a few KiB.
pub(crate) const MAX_JSON_BODY: usize = 256 * 1024;

/// The body of every error the gate answers with: the node's one error body.
pub use crate::refusal::ErrorBody;

/// Why a gate request failed.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// 400: the request is malformed.
    BadRequest(String),
    /// 401: no valid identity.
    Unauthenticated(IdentityError),
    /// 403: the API key is missing or wrong.
    BadApiKey,
    /// 403: identified, but this is not theirs to do.
    Forbidden(&'static str, String),
    /// 403: no ticket, for an entitlement reason.
    Refused(Refusal),
    /// 409: a learner's new nickname is the name of their lecture's staff; answered with the
    /// refusal's body, so the person reads why in their language.
    NicknameTakenByStaff,
    /// 404: no such thing.
    NotFound(&'static str, String),
    /// 409: the request contradicts the records (a seat over the quantity, …).
    Conflict(&'static str, String),
    /// 413: the body is larger than [`MAX_JSON_BODY`].
    TooLarge,
    /// 429: slow down.
    RateLimited,
    /// 503: the database failed; not the client's fault, and retrying may help.
    Store(StoreError),
    /// 503: another store (the archive's) failed; retrying may help.
    Unavailable(&'static str, String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Store(e)
    }
}

/// The stable code of a refusal, left on the response for [`log_refusals`].
#[derive(Clone, Copy, Debug)]
struct RefusalCode(&'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = RefusalCode(self.code());
        let mut response = self.into_body_response();
        response.extensions_mut().insert(code);
        response
    }
}

impl ApiError {
    /// The stable code the body carries.
    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthenticated(IdentityError::Expired) => "token_expired",
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::BadApiKey => "bad_api_key",
            ApiError::Forbidden(code, _)
            | ApiError::NotFound(code, _)
            | ApiError::Conflict(code, _)
            | ApiError::Unavailable(code, _) => code,
            ApiError::Refused(refusal) => refusal.code(),
            ApiError::NicknameTakenByStaff => Refusal::NicknameTakenByStaff.code(),
            ApiError::TooLarge => "payload_too_large",
            ApiError::RateLimited => "rate_limited",
            ApiError::Store(_) => "store_unavailable",
        }
    }

    fn into_body_response(self) -> Response {
        let (status, (code, message)) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, ("bad_request", m)),
            ApiError::Unauthenticated(e) => {
                let code = if matches!(e, IdentityError::Expired) {
                    "token_expired"
                } else {
                    "unauthenticated"
                };
                (StatusCode::UNAUTHORIZED, (code, e.to_string()))
            }
            ApiError::BadApiKey => (
                StatusCode::FORBIDDEN,
                (
                    "bad_api_key",
                    "send the integration API key in X-Api-Key".into(),
                ),
            ),
            ApiError::Forbidden(code, m) => (StatusCode::FORBIDDEN, (code, m)),
            ApiError::Refused(refusal) => {
                return (StatusCode::FORBIDDEN, Json(RefusalBody::from(&refusal))).into_response();
            }
            ApiError::NicknameTakenByStaff => {
                let refusal = RefusalBody::from(&Refusal::NicknameTakenByStaff);
                return (StatusCode::CONFLICT, Json(refusal)).into_response();
            }
            ApiError::NotFound(code, m) => (StatusCode::NOT_FOUND, (code, m)),
            ApiError::Conflict(code, m) => (StatusCode::CONFLICT, (code, m)),
            ApiError::Unavailable(code, m) => (StatusCode::SERVICE_UNAVAILABLE, (code, m)),
            ApiError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                (
                    "payload_too_large",
                    format!("the body is larger than {MAX_JSON_BODY} bytes"),
                ),
            ),
            ApiError::RateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                ("rate_limited", "too many requests; retry shortly".into()),
            ),
            ApiError::Store(e) => {
                error!(error = %e, "store failure");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    (
                        "store_unavailable",
                        "the records are unavailable; retry shortly".into(),
                    ),
                )
            }
        };
        crate::refusal::refuse(status, code, message)
    }
}

/// A JSON body whose mistakes are a 400 with a JSON answer (axum's own is plain text, and a
/// wrong content type would be 415).
#[derive(Debug)]
pub(crate) struct Body<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge,
                _ => ApiError::BadRequest(format!("unreadable body: {e}")),
            })?;
        serde_json::from_slice(&bytes)
            .map(Body)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}

/// The person a request comes from, as the portal's (or the demo's) token says.
#[derive(Debug, Clone)]
pub(crate) struct Person(pub(crate) String);

impl FromRequestParts<Arc<Gate>> for Person {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        gate: &Arc<Gate>,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthenticated(IdentityError::Missing))?;
        let identity = gate
            .identity
            .as_ref()
            .ok_or(ApiError::Unauthenticated(IdentityError::Invalid))?;
        identity
            .verify(token.trim(), gate.clock.now())
            .map(Person)
            .map_err(ApiError::Unauthenticated)
    }
}

/// A request from the portal, carrying the integration API key.
#[derive(Debug)]
pub(crate) struct Portal;

impl FromRequestParts<Arc<Gate>> for Portal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        gate: &Arc<Gate>,
    ) -> Result<Self, Self::Rejection> {
        let Some(expected) = gate.integration_api_key.as_deref() else {
            return Err(ApiError::NotFound(
                "integration_off",
                "the integration API is not configured".into(),
            ));
        };
        let given = parts
            .headers
            .get("x-api-key")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        // Compare in time independent of where the first difference is.
        let same = given.len() == expected.len()
            && given
                .iter()
                .zip(expected.as_bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if same {
            Ok(Portal)
        } else {
            Err(ApiError::BadApiKey)
        }
    }
}

/// A corporate admin: a person whose account is a company (corporate or corporate group).
#[derive(Debug, Clone)]
pub(crate) struct Company(pub(crate) String);

impl FromRequestParts<Arc<Gate>> for Company {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        gate: &Arc<Gate>,
    ) -> Result<Self, Self::Rejection> {
        let Person(me) = Person::from_request_parts(parts, gate).await?;
        match gate.store.account(&me).await? {
            Some(a) if a.kind != super::model::AccountKind::Individual => Ok(Company(me)),
            _ => Err(ApiError::Forbidden(
                "not_a_company",
                "only corporate accounts use this API".into(),
            )),
        }
    }
}

/// Logs every request of the gate's APIs refused with 401, 403 or 429 — who tried what, for
/// operators watching for abuse: the method, the route as declared (`/api/v1/corporate/
/// purchases/{purchase}/…`, so no account id from the path), the status, the refusal's code
/// and the client's address. Never a token, an API key, an account id or a nickname. A wrong
/// integration API key is a warning: the portal is misconfigured, or someone is guessing.
pub(crate) async fn log_refusals(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let response = next.run(request).await;
    let status = response.status();
    if matches!(status.as_u16(), 401 | 403 | 429) {
        let code = response
            .extensions()
            .get::<RefusalCode>()
            .map_or("", |c| c.0);
        let client = client.map(|ip| ip.to_string()).unwrap_or_default();
        if code == "bad_api_key" {
            warn!(%method, route, status = status.as_u16(), code, client, "refused: wrong integration API key");
        } else {
            info!(%method, route, status = status.as_u16(), code, client, "refused");
        }
    }
    response
}
