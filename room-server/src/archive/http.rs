//! The archive room's HTTP side: what a signed-in person may watch, and the archive's files
//! through short-lived signed URLs, served by any node from the store.
//!
//! - `GET /api/archive/{lecture}`: the archive's state for the person (entitlement as for the
//!   live room); when ready, the manifest, the timeline and a signed URL per file.
//! - `GET /api/v1/me/archives`: the state of the archive of each lecture on My page that is
//!   over (the Archive button, and the instructors' "ready" mark).
//! - `GET /archive-media/{lecture}/{name}?u=…&exp=…&sig=…`: one file, with byte ranges. `u` is
//!   the account, sealed (encrypted and authenticated: the URL names nobody to whoever sees it,
//!   a proxy's log or the browser's history); the signature ([`MediaKey`]) binds the lecture,
//!   the name, the sealed account and the expiry; the account's right is checked again on
//!   every request.

use super::store::{ArchiveError, ArchiveStore};
use super::{MANIFEST_NAME, Manifest, TIMELINE_NAME};
use crate::gate::Gate;
use crate::gate::entitlement::{LectureState, lecture_state};
use crate::gate::http::{ApiError, ErrorBody, Person};
use crate::gate::model::Lecture;
use crate::refusal::refuse;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use protocol::{LectureId, Role, UnixMillis};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::sync::Arc;
use utoipa::ToSchema;

const DAY_MS: u64 = 24 * 3600 * 1000;

/// What the archive room's routes need: the gate (identity, records, entitlement), the store,
/// and the key signing media URLs.
#[derive(Debug)]
pub struct ArchiveRoom {
    /// Identity, the records and the entitlement rules.
    pub(crate) gate: Arc<Gate>,
    /// Where archives are; none: this node serves none (no `[archive]` store configured).
    pub(crate) store: Option<ArchiveStore>,
    /// Signs and checks media URLs.
    pub(crate) key: MediaKey,
    /// How long a media URL stays good.
    pub(crate) url_ttl_secs: u64,
    /// How long an archive is kept when the portal set no end date.
    pub(crate) retention_days: u32,
}

/// Signs media URLs, and seals the account in them, with keys derived from the node's ticket
/// secret (every node has it, so any node checks a URL another signed).
pub(crate) struct MediaKey {
    sign: [u8; 32],
    seal: ring::aead::LessSafeKey,
}

impl std::fmt::Debug for MediaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MediaKey(..)")
    }
}

/// Why a media URL is refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum UrlRefusal {
    /// Not signed by this key for this file and person, or malformed.
    Invalid,
    /// Its time ran out.
    Expired,
}

impl MediaKey {
    /// The media key of the node whose ticket key is `tickets`.
    pub(crate) fn new(tickets: &protocol::ticket::TicketKey) -> Self {
        let seal = ring::aead::UnboundKey::new(
            &ring::aead::AES_256_GCM,
            &tickets.derive_key("archive-media-account"),
        )
        .expect("32 bytes is AES-256's key length");
        Self {
            sign: tickets.derive_key("archive-media"),
            seal: ring::aead::LessSafeKey::new(seal),
        }
    }

    /// `account`, encrypted and authenticated (AES-256-GCM, a random nonce first), base64url.
    fn seal(&self, account: &str) -> String {
        let mut nonce = [0u8; ring::aead::NONCE_LEN];
        // Never seen failing on Linux; a fixed nonce would still keep the account unreadable
        // to one who holds one URL, not to one comparing many.
        let _ = getrandom::fill(&mut nonce);
        let mut sealed = account.as_bytes().to_vec();
        self.seal
            .seal_in_place_append_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::empty(),
                &mut sealed,
            )
            .expect("AES-GCM seals any account id");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// The account `seal` sealed, if this key sealed it.
    fn open(&self, sealed: &str) -> Option<String> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() < ring::aead::NONCE_LEN {
            return None;
        }
        let (nonce, rest) = bytes.split_at(ring::aead::NONCE_LEN);
        let nonce = ring::aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut rest = rest.to_vec();
        let plain = self
            .seal
            .open_in_place(nonce, ring::aead::Aad::empty(), &mut rest)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }

    fn mac(&self, lecture: &str, name: &str, account: &str, exp: u64) -> Hmac<Sha256> {
        // HMAC takes keys of any length; `new_from_slice` only fails for fixed-size MACs.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.sign).expect("HMAC accepts any key");
        for part in [lecture, name, account] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.update(&exp.to_be_bytes());
        mac
    }

    /// The signature of a URL for `name` of `lecture`, for `account`, good until `exp` (unix s).
    pub(crate) fn sign(&self, lecture: &str, name: &str, account: &str, exp: u64) -> String {
        URL_SAFE_NO_PAD.encode(
            self.mac(lecture, name, account, exp)
                .finalize()
                .into_bytes(),
        )
    }

    /// The path and query of a signed URL for `account` (sealed in it).
    pub(crate) fn url(&self, lecture: &str, name: &str, account: &str, exp: u64) -> String {
        let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
        let sealed = self.seal(account);
        format!(
            "/archive-media/{}/{}?u={sealed}&exp={exp}&sig={}",
            enc(lecture),
            enc(name),
            self.sign(lecture, name, &sealed, exp)
        )
    }

    /// Checks a URL's signature and expiry at `now` (a URL good for longer than `max_secs`
    /// was not signed by a node of this configuration: refused); the account it was signed
    /// for.
    pub(crate) fn verify(
        &self,
        lecture: &str,
        name: &str,
        q: &MediaQuery,
        now: UnixMillis,
        max_secs: u64,
    ) -> Result<String, UrlRefusal> {
        let sig = URL_SAFE_NO_PAD
            .decode(&q.sig)
            .map_err(|_| UrlRefusal::Invalid)?;
        self.mac(lecture, name, &q.u, q.exp)
            .verify_slice(&sig)
            .map_err(|_| UrlRefusal::Invalid)?;
        let account = self.open(&q.u).ok_or(UrlRefusal::Invalid)?;
        let now = now.0 / 1000;
        if now >= q.exp {
            return Err(UrlRefusal::Expired);
        }
        if q.exp - now > max_secs.saturating_add(120) {
            return Err(UrlRefusal::Invalid);
        }
        Ok(account)
    }
}

/// A media URL's query.
#[derive(Debug, Deserialize)]
pub(crate) struct MediaQuery {
    /// The account the URL was signed for, sealed.
    u: String,
    /// Good until (unix seconds).
    exp: u64,
    /// The signature (base64url).
    sig: String,
}

/// Where an archive stands for one person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ArchiveState {
    /// Not watchable yet: the lecture is not over, the portal's date has not come, or the
    /// recording is still being made.
    Preparing,
    /// Watchable.
    Ready,
    /// Past its end date (deleted, or about to be).
    Expired,
    /// The portal withdrew it.
    Withdrawn,
}

/// What decides an archive's state, read from the records and the store.
#[derive(Debug)]
pub(crate) struct ArchiveFacts {
    /// The lecture is over, and its archive date has come (a learner's view).
    pub(crate) available: bool,
    /// The manifest is in the store (the archive is made).
    pub(crate) made: bool,
    /// When it expires, if known.
    pub(crate) expires_at: Option<UnixMillis>,
    /// When the portal withdrew it.
    pub(crate) withdrawn_at: Option<UnixMillis>,
    /// The person is the lecture's staff: they see it as soon as it is made.
    pub(crate) staff: bool,
}

/// The state of an archive at `now`.
pub(crate) fn archive_state(f: &ArchiveFacts, now: UnixMillis) -> ArchiveState {
    if f.withdrawn_at.is_some() {
        ArchiveState::Withdrawn
    } else if f.expires_at.is_some_and(|at| now >= at) {
        ArchiveState::Expired
    } else if f.made && (f.available || f.staff) {
        ArchiveState::Ready
    } else {
        ArchiveState::Preparing
    }
}

/// The archive as one person sees it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ArchiveView {
    /// Lecture id.
    lecture: String,
    /// Its title.
    title: String,
    /// The person's role in the lecture.
    #[schema(value_type = String)]
    role: Role,
    /// Where the archive stands.
    state: ArchiveState,
    /// When learners may watch it (the portal's date), Unix ms.
    #[schema(value_type = Option<u64>)]
    available_at: Option<UnixMillis>,
    /// When it expires, Unix ms, if known.
    #[schema(value_type = Option<u64>)]
    expires_at: Option<UnixMillis>,
    /// When ready: `manifest.json` (files, offsets and durations on the archive's timeline).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    manifest: Option<serde_json::Value>,
    /// When ready: `timeline.json` (chat, calls, announcements, reaction tallies).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    timeline: Option<serde_json::Value>,
    /// When ready: a signed URL (path and query) per file name.
    #[serde(skip_serializing_if = "Option::is_none")]
    media: Option<std::collections::BTreeMap<String, String>>,
    /// When the media URLs stop working, Unix ms: ask again before (or on an error).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u64>)]
    media_expires_at: Option<UnixMillis>,
}

/// One line of `GET /api/v1/me/archives`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MyArchive {
    /// Lecture id.
    lecture: String,
    /// Where its archive stands for the person.
    state: ArchiveState,
    /// When learners may watch it, Unix ms.
    #[schema(value_type = Option<u64>)]
    available_at: Option<UnixMillis>,
    /// When it expires, Unix ms, if known.
    #[schema(value_type = Option<u64>)]
    expires_at: Option<UnixMillis>,
}

/// `GET /api/v1/me/archives`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MyArchives {
    /// The lectures on My page that are over and that the person may watch.
    archives: Vec<MyArchive>,
}

/// The person signed in (the same token as My page).
#[derive(Debug)]
pub(crate) struct Viewer(String);

impl FromRequestParts<Arc<ArchiveRoom>> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        room: &Arc<ArchiveRoom>,
    ) -> Result<Self, Self::Rejection> {
        let Person(me) = Person::from_request_parts(parts, &room.gate).await?;
        Ok(Viewer(me))
    }
}

/// The archive room's routes.
pub(crate) fn router() -> Router<Arc<ArchiveRoom>> {
    Router::new()
        .route("/api/archive/{lecture}", get(archive))
        .route("/api/v1/me/archives", get(my_archives))
        .route("/archive-media/{lecture}/{name}", get(media))
        .route_layer(axum::middleware::from_fn(crate::gate::http::log_refusals))
}

fn store_error(e: &ArchiveError) -> ApiError {
    tracing::error!(error = %e, "archive store failure");
    ApiError::Unavailable(
        "archive_unavailable",
        "the archive store failed; retry shortly".into(),
    )
}

impl ArchiveRoom {
    async fn lecture(&self, id: &str) -> Result<Lecture, ApiError> {
        self.gate
            .store
            .lecture(id)
            .await?
            .ok_or_else(|| ApiError::NotFound("unknown_lecture", format!("no lecture `{id}`")))
    }

    /// The state of `lecture`'s archive for someone in `role`, with its manifest when made.
    async fn state_of(
        &self,
        lecture: &Lecture,
        role: Role,
        now: UnixMillis,
    ) -> Result<(ArchiveState, Option<UnixMillis>, Option<Manifest>), ApiError> {
        let id = LectureId::from(lecture.id.as_str());
        let manifest: Option<Manifest> = match &self.store {
            Some(store) => store
                .get_json(&id, MANIFEST_NAME)
                .await
                .map_err(|e| store_error(&e))?,
            None => None,
        };
        let records = &self.gate.store;
        let expires_at = records.archive_expires_at(&lecture.id).await?.or_else(|| {
            manifest.as_ref().map(|m| {
                UnixMillis(
                    m.started_at_ms + m.duration_ms + u64::from(self.retention_days) * DAY_MS,
                )
            })
        });
        let facts = ArchiveFacts {
            available: matches!(
                lecture_state(lecture, now, self.gate.timing),
                LectureState::ArchiveAvailable { .. }
            ),
            made: manifest.is_some(),
            expires_at,
            withdrawn_at: records.archive_withdrawn_at(&lecture.id).await?,
            staff: role.is_staff(),
        };
        Ok((archive_state(&facts, now), expires_at, manifest))
    }
}

#[utoipa::path(get, path = "/api/archive/{lecture}", tag = "archive",
    description = "A lecture's archive for the signed-in person: entitlement as for the live room (paid or allocated; the lecture's instructors and moderators too), refused with the live room's codes. `state` is `preparing` (with `available_at`), `ready`, `expired` or `withdrawn`; when ready, the manifest, the timeline and a short-lived signed URL per file (`media`, good until `media_expires_at`).",
    params(("lecture" = String, Path, description = "lecture id")),
    responses(
        (status = 200, body = ArchiveView),
        (status = 401, body = ErrorBody, description = "no or invalid identity token"),
        (status = 403, body = crate::gate::RefusalBody, description = "not_purchased, payment_pending, purchase_cancelled, seat_not_allocated, corporate_account_cannot_enter, lecture_cancelled, banned"),
        (status = 404, body = ErrorBody, description = "unknown_lecture"),
        (status = 503, body = ErrorBody, description = "store_unavailable (records), archive_unavailable (the archive store)"),
    ),
    security(("portal_token" = [])))]
pub(crate) async fn archive(
    State(room): State<Arc<ArchiveRoom>>,
    Viewer(me): Viewer,
    Path(lecture): Path<String>,
) -> Result<Json<ArchiveView>, ApiError> {
    let now = room.gate.clock.now();
    let record = room.lecture(&lecture).await?;
    let role = room
        .gate
        .archive_access(&me, &record)
        .await?
        .map_err(ApiError::Refused)?;
    let (state, expires_at, manifest) = room.state_of(&record, role, now).await?;
    let mut view = ArchiveView {
        lecture: record.id.clone(),
        title: record.title.clone(),
        role,
        state: state.clone(),
        available_at: record.archive_available_at,
        expires_at,
        manifest: None,
        timeline: None,
        media: None,
        media_expires_at: None,
    };
    if let (ArchiveState::Ready, Some(manifest), Some(store)) = (state, manifest, &room.store) {
        let id = LectureId::from(record.id.as_str());
        let timeline: Option<serde_json::Value> = store
            .get_json(&id, TIMELINE_NAME)
            .await
            .map_err(|e| store_error(&e))?;
        let exp = now.0 / 1000 + room.url_ttl_secs;
        view.media = Some(
            manifest
                .tracks
                .iter()
                .map(|t| (t.name.clone(), room.key.url(&record.id, &t.name, &me, exp)))
                .collect(),
        );
        view.media_expires_at = Some(UnixMillis(exp * 1000));
        view.timeline = timeline;
        view.manifest = serde_json::to_value(&manifest).ok();
    }
    Ok(Json(view))
}

#[utoipa::path(get, path = "/api/v1/me/archives", tag = "archive",
    description = "The archive state of every lecture on My page that is over and that the person may watch: the learner's Archive button, the instructor's \"ready\" mark.",
    responses(
        (status = 200, body = MyArchives),
        (status = 401, body = ErrorBody, description = "no or invalid identity token"),
        (status = 503, body = ErrorBody, description = "records unavailable"),
    ),
    security(("portal_token" = [])))]
pub(crate) async fn my_archives(
    State(room): State<Arc<ArchiveRoom>>,
    Viewer(me): Viewer,
) -> Result<Json<MyArchives>, ApiError> {
    let now = room.gate.clock.now();
    let mut archives = Vec::new();
    for mine in room.gate.my_lectures(&me, now).await? {
        if !matches!(
            mine.state,
            LectureState::Ended { .. } | LectureState::ArchiveAvailable { .. }
        ) {
            continue;
        }
        let Some(record) = room.gate.store.lecture(&mine.id).await? else {
            continue;
        };
        let Ok(role) = room.gate.archive_access(&me, &record).await? else {
            continue;
        };
        let (state, expires_at, _) = room.state_of(&record, role, now).await?;
        archives.push(MyArchive {
            lecture: record.id,
            state,
            available_at: record.archive_available_at,
            expires_at,
        });
    }
    Ok(Json(MyArchives { archives }))
}

/// Whether `name` is one of an archive's files a player asks for.
fn is_media_name(name: &str) -> bool {
    name == super::CAMERA_NAME
        || name == TIMELINE_NAME
        || name
            .strip_prefix("screen-")
            .and_then(|n| n.strip_suffix(".webm"))
            .is_some_and(|n| !n.is_empty() && n.len() <= 4 && n.bytes().all(|b| b.is_ascii_digit()))
}

#[utoipa::path(get, path = "/archive-media/{lecture}/{name}", tag = "archive",
    description = "One file of an archive (`camera.webm`, `screen-N.webm`, `timeline.json`) through the signed URL `GET /api/archive/{lecture}` gave: the signature binds the lecture, the file, the account and the expiry, and the account's right is checked again on every request. Byte ranges (`Range: bytes=…`) are answered with 206 and `Content-Range`, a range past the end with 416.",
    params(
        ("lecture" = String, Path, description = "lecture id"),
        ("name" = String, Path, description = "file name"),
        ("u" = String, Query, description = "the account the URL was signed for, sealed (opaque)"),
        ("exp" = u64, Query, description = "good until, Unix seconds"),
        ("sig" = String, Query, description = "signature"),
    ),
    responses(
        (status = 200, description = "the whole file (`video/webm` or `application/json`)"),
        (status = 206, description = "the asked range"),
        (status = 403, body = ErrorBody, description = "media_url_invalid, media_url_expired, archive_withdrawn, archive_expired, archive_not_available, or an entitlement refusal"),
        (status = 404, body = ErrorBody, description = "not_found"),
        (status = 416, body = ErrorBody, description = "range_not_satisfiable"),
    ))]
pub(crate) async fn media(
    State(room): State<Arc<ArchiveRoom>>,
    Path((lecture, name)): Path<(String, String)>,
    query: Result<Query<MediaQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    match serve_media(
        &room,
        &lecture,
        &name,
        query.ok().map(|Query(q)| q),
        &headers,
    )
    .await
    {
        Ok(response) | Err(response) => response,
    }
}

async fn serve_media(
    room: &ArchiveRoom,
    lecture: &str,
    name: &str,
    query: Option<MediaQuery>,
    headers: &HeaderMap,
) -> Result<Response, Response> {
    let now = room.gate.clock.now();
    let forbidden = |code: &str, m: &str| refuse(StatusCode::FORBIDDEN, code, m);
    let q = query.ok_or_else(|| forbidden("media_url_invalid", "this URL is not signed"))?;
    let account = match room.key.verify(lecture, name, &q, now, room.url_ttl_secs) {
        Ok(account) => account,
        Err(UrlRefusal::Expired) => {
            return Err(forbidden(
                "media_url_expired",
                "this URL expired; open the archive again",
            ));
        }
        Err(UrlRefusal::Invalid) => {
            return Err(forbidden("media_url_invalid", "this URL is not signed"));
        }
    };
    if !is_media_name(name) {
        return Err(refuse(StatusCode::NOT_FOUND, "not_found", "no such file"));
    }
    // The right may have changed since the URL was signed (a refund, a withdrawal).
    let record = room
        .lecture(lecture)
        .await
        .map_err(IntoResponse::into_response)?;
    let role = match room.gate.archive_access(&account, &record).await {
        Ok(Ok(role)) => role,
        Ok(Err(refusal)) => return Err(ApiError::Refused(refusal).into_response()),
        Err(e) => return Err(ApiError::from(e).into_response()),
    };
    let records = &room.gate.store;
    let withdrawn = records.archive_withdrawn_at(lecture).await;
    let expires = records.archive_expires_at(lecture).await;
    match (withdrawn, expires) {
        (Ok(Some(_)), _) => {
            return Err(forbidden("archive_withdrawn", "this archive was withdrawn"));
        }
        (_, Ok(Some(at))) if now >= at => {
            return Err(forbidden("archive_expired", "this archive has expired"));
        }
        (Err(e), _) | (_, Err(e)) => return Err(ApiError::from(e).into_response()),
        _ => {}
    }
    let available = matches!(
        lecture_state(&record, now, room.gate.timing),
        LectureState::ArchiveAvailable { .. }
    );
    if !available && !role.is_staff() {
        return Err(forbidden(
            "archive_not_available",
            "this archive is not available yet",
        ));
    }
    let Some(store) = &room.store else {
        return Err(refuse(StatusCode::NOT_FOUND, "not_found", "no such file"));
    };
    send(store, &LectureId::from(lecture), name, headers).await
}

/// The file, or the range of it the request asks for.
async fn send(
    store: &ArchiveStore,
    lecture: &LectureId,
    name: &str,
    headers: &HeaderMap,
) -> Result<Response, Response> {
    let not_found = || refuse(StatusCode::NOT_FOUND, "not_found", "no such file");
    let unsatisfiable = |total_len: u64| {
        let mut r = refuse(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range_not_satisfiable",
            "the range starts past the end of the file",
        );
        if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total_len}")) {
            r.headers_mut().insert(header::CONTENT_RANGE, v);
        }
        r
    };
    let failed = |e: &ArchiveError| {
        tracing::error!(error = %e, "archive store failure");
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "archive_unavailable",
            "the archive store failed; retry shortly",
        )
    };
    let asked = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(http_range_header::parse_range_header);
    // A range request needs the length first (suffix and open ranges are relative to it).
    let range = match asked {
        Some(Ok(parsed)) => {
            let total_len = match store.head(lecture, name).await {
                Ok(Some(len)) => len,
                Ok(None) => return Err(not_found()),
                Err(e) => return Err(failed(&e)),
            };
            match parsed.validate(total_len) {
                // One range is answered; several (rare from players) get the whole file.
                Ok(ranges) if ranges.len() == 1 => {
                    let r = &ranges[0];
                    Some(*r.start()..r.end().saturating_add(1))
                }
                Ok(_) => None,
                Err(_) => return Err(unsatisfiable(total_len)),
            }
        }
        // A malformed header is ignored, as RFC 9110 says.
        Some(Err(_)) | None => None,
    };
    let partial = range.is_some();
    let got = match store.get_range(lecture, name, range).await {
        Ok(got) => got,
        Err(ArchiveError::NotFound) => return Err(not_found()),
        Err(ArchiveError::RangeNotSatisfiable { total_len }) => {
            return Err(unsatisfiable(total_len));
        }
        Err(e) => return Err(failed(&e)),
    };
    let content_type = if name.ends_with(".json") {
        "application/json"
    } else {
        "video/webm"
    };
    let len = got.range.end - got.range.start;
    let mut response = Response::new(Body::from_stream(got.body));
    *response.status_mut() = if partial {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if partial
        && let Ok(v) = HeaderValue::from_str(&format!(
            "bytes {}-{}/{}",
            got.range.start,
            got.range.end.saturating_sub(1),
            got.total_len
        ))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MediaKey {
        let tickets = protocol::ticket::TicketKey::new(vec![7u8; 32]).expect("long enough");
        MediaKey::new(&tickets)
    }

    fn query(url: &str) -> MediaQuery {
        let q = url.split_once('?').expect("a query").1;
        serde_urlencoded_like(q)
    }

    /// Parses `u=…&exp=…&sig=…` as axum's `Query` would.
    fn serde_urlencoded_like(q: &str) -> MediaQuery {
        let mut u = String::new();
        let mut exp = 0;
        let mut sig = String::new();
        for pair in q.split('&') {
            let (k, v) = pair.split_once('=').expect("k=v");
            let v = percent_encoding::percent_decode_str(v)
                .decode_utf8()
                .expect("utf-8")
                .into_owned();
            match k {
                "u" => u = v,
                "exp" => exp = v.parse().expect("a number"),
                _ => sig = v,
            }
        }
        MediaQuery { u, exp, sig }
    }

    #[test]
    fn a_media_url_is_bound_to_its_file_person_and_time() {
        let key = key();
        let now = UnixMillis(1_800_000_000_000);
        let exp = now.0 / 1000 + 600;
        let url = key.url("L 1", "camera.webm", "taro@x", exp);
        assert!(url.starts_with("/archive-media/L%201/camera%2Ewebm?u="));
        // The account is in the URL sealed: nobody who sees the URL reads it.
        assert!(!url.contains("taro"), "{url}");
        let q = query(&url);
        assert_eq!(
            key.verify("L 1", "camera.webm", &q, now, 600),
            Ok("taro@x".to_owned())
        );
        // Each URL seals it afresh: two URLs for the same person do not even match.
        assert_ne!(query(&key.url("L 1", "camera.webm", "taro@x", exp)).u, q.u);
        assert_eq!(
            key.verify("L 1", "screen-1.webm", &q, now, 600),
            Err(UrlRefusal::Invalid)
        );
        assert_eq!(
            key.verify("L 2", "camera.webm", &q, now, 600),
            Err(UrlRefusal::Invalid)
        );
        // Another person's sealed account, or a changed one, breaks the signature.
        let hanakos = query(&key.url("L 1", "camera.webm", "hanako", exp));
        for u in [hanakos.u, "hanako".to_owned(), format!("{}A", q.u)] {
            let other = MediaQuery { u, ..query(&url) };
            assert_eq!(
                key.verify("L 1", "camera.webm", &other, now, 600),
                Err(UrlRefusal::Invalid)
            );
        }
        let later = MediaQuery {
            exp: exp + 1,
            ..query(&url)
        };
        assert_eq!(
            key.verify("L 1", "camera.webm", &later, now, 600),
            Err(UrlRefusal::Invalid)
        );
        assert_eq!(
            key.verify("L 1", "camera.webm", &q, now.plus_ms(600_000), 600),
            Err(UrlRefusal::Expired)
        );
        // A node with another ticket secret signs other URLs.
        let stranger = MediaKey::new(&protocol::ticket::TicketKey::new(vec![8u8; 32]).expect("ok"));
        assert_eq!(
            stranger.verify("L 1", "camera.webm", &q, now, 600),
            Err(UrlRefusal::Invalid)
        );
    }

    #[test]
    fn an_archive_is_ready_once_made_and_its_date_came_until_it_ends() {
        let now = UnixMillis(1_000_000);
        let mut f = ArchiveFacts {
            available: false,
            made: true,
            expires_at: Some(UnixMillis(2_000_000)),
            withdrawn_at: None,
            staff: false,
        };
        assert_eq!(archive_state(&f, now), ArchiveState::Preparing);
        f.staff = true;
        assert_eq!(archive_state(&f, now), ArchiveState::Ready);
        f.staff = false;
        f.available = true;
        assert_eq!(archive_state(&f, now), ArchiveState::Ready);
        f.made = false;
        assert_eq!(archive_state(&f, now), ArchiveState::Preparing);
        f.made = true;
        assert_eq!(
            archive_state(&f, UnixMillis(2_000_000)),
            ArchiveState::Expired
        );
        f.withdrawn_at = Some(now);
        assert_eq!(archive_state(&f, now), ArchiveState::Withdrawn);
        assert!(is_media_name("screen-12.webm") && is_media_name("camera.webm"));
        assert!(!is_media_name("manifest.json") && !is_media_name("screen-.webm"));
        assert!(!is_media_name("screen-1x.webm") && !is_media_name("../camera.webm"));
    }
}
