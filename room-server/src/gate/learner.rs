//! The learner's API: "My page", the attendee profile, and the Enter button's ticket. Also the
//! demo sign-in, in demo mode.

use super::http::{ApiError, Body, ErrorBody, Person};
use super::model::{AccountKind, Profile};
use super::{Gate, MyLecture, RefusalBody};
use crate::client_addr::ClientAddr;
use axum::Json;
use axum::extract::{Path, State};
use protocol::codec::{SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK};
use protocol::ticket::nickname_is_valid;
use protocol::{Nickname, Role};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// "My page": the person's lectures.
#[derive(Debug, Serialize, ToSchema, ts_rs::TS)]
pub struct MyLectures {
    /// Soonest first.
    lectures: Vec<MyLecture>,
    /// The signed-in account is a company's (corporate or corporate group): it buys and
    /// allocates seats and never enters a room, so it has no nickname to set.
    company: bool,
}

#[utoipa::path(get, path = "/api/v1/me/lectures", tag = "learner",
    description = "Every lecture the person bought, holds an allocated seat of, or runs: its state and whether Enter works now.",
    responses(
        (status = 200, body = MyLectures),
        (status = 401, body = ErrorBody, description = "no or invalid identity token"),
        (status = 503, body = ErrorBody, description = "records unavailable"),
    ),
    security(("portal_token" = [])))]
pub(crate) async fn my_lectures(
    State(gate): State<Arc<Gate>>,
    Person(me): Person,
) -> Result<Json<MyLectures>, ApiError> {
    let lectures = gate.my_lectures(&me, gate.clock.now()).await?;
    let company = gate
        .store
        .account(&me)
        .await?
        .is_some_and(|a| a.kind != AccountKind::Individual);
    Ok(Json(MyLectures { lectures, company }))
}

#[utoipa::path(get, path = "/api/v1/me/profile", tag = "learner",
    responses((status = 200, body = Profile), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("portal_token" = [])))]
pub(crate) async fn get_profile(
    State(gate): State<Arc<Gate>>,
    Person(me): Person,
) -> Result<Json<Profile>, ApiError> {
    Ok(Json(gate.store.profile(&me).await?))
}

/// Longest e-mail address accepted.
const MAX_EMAIL: usize = 254;

/// A change to an attendee profile: a field given is set (`null` clears it), a field left out
/// keeps its value, and any other field is refused — so a misspelt field (`nick`) is a 400
/// saying which, never a profile silently wiped to nothing.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileChange {
    #[serde(default, deserialize_with = "given")]
    nickname: Option<Option<String>>,
    #[serde(default, deserialize_with = "given")]
    email: Option<Option<String>>,
}

/// `Some(value)` for a field present in the body (`Some(None)` for `null`); a missing field
/// stays `None` through `#[serde(default)]`.
pub(crate) fn given<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl ProfileChange {
    /// `profile` with this change made.
    pub(crate) fn applied_to(self, mut profile: Profile) -> Profile {
        if let Some(nickname) = self.nickname {
            profile.nickname = nickname;
        }
        if let Some(email) = self.email {
            profile.email = email;
        }
        profile
    }
}

/// Checks a profile a person or the portal sends: a displayable nickname (HTML is fine — it is
/// always shown as text), a plausible e-mail.
pub(crate) fn check_profile(p: &Profile) -> Result<(), ApiError> {
    if let Some(nickname) = &p.nickname
        && !nickname_is_valid(&Nickname::from(nickname.as_str()))
    {
        return Err(ApiError::BadRequest(
            "the nickname must be 1 to 40 characters, without surrounding spaces, control characters or invisible marks (zero-width, direction controls, blank fillers)".into(),
        ));
    }
    if let Some(email) = &p.email
        && (email.len() > MAX_EMAIL
            || !email.contains('@')
            || email.chars().any(char::is_whitespace))
    {
        return Err(ApiError::BadRequest(
            "the e-mail address is not valid".into(),
        ));
    }
    Ok(())
}

#[utoipa::path(put, path = "/api/v1/me/profile", tag = "learner",
    description = "Set or change the nickname (the public name in rooms) and the e-mail for reminders. A field left out keeps its value; `null` clears it; any other field is refused (400).",
    request_body = Profile,
    responses(
        (status = 200, body = Profile),
        (status = 400, body = ErrorBody, description = "an unknown field; empty, too long or control characters in the nickname; bad e-mail"),
        (status = 401, body = ErrorBody),
        (status = 409, body = RefusalBody, description = "nickname_taken_by_staff: the nickname reads as the name of an instructor or moderator of a lecture the person is to attend as a learner (compared without regard to full-width or half-width letters, case or spaces)"),
        (status = 503, body = ErrorBody),
    ),
    security(("portal_token" = [])))]
pub(crate) async fn put_profile(
    State(gate): State<Arc<Gate>>,
    Person(me): Person,
    Body(change): Body<ProfileChange>,
) -> Result<Json<Profile>, ApiError> {
    let store = &gate.store;
    let before = store.profile(&me).await?;
    let profile = change.applied_to(before.clone());
    check_profile(&profile)?;
    // Only a changed name is compared: one already held is refused at the Enter button.
    if let Some(nickname) = &profile.nickname
        && before.nickname.as_ref() != Some(nickname)
        && gate
            .nickname_taken_by_staff(&me, nickname, gate.clock.now())
            .await?
    {
        return Err(ApiError::NicknameTakenByStaff);
    }
    store.set_profile(&me, &profile, gate.clock.now()).await?;
    Ok(Json(profile))
}

/// A room ticket.
#[derive(Debug, Serialize, ToSchema, ts_rs::TS)]
pub struct TicketResponse {
    /// Present it in `hello` on the room WebSocket.
    ticket: String,
    /// Expiry, Unix seconds.
    expires_at: u64,
    /// The lecture.
    lecture: String,
    /// Role in the room.
    #[schema(value_type = String)]
    role: Role,
    /// Path of the room WebSocket.
    websocket: String,
    /// Subprotocols the room WebSocket speaks, preferred first.
    subprotocols: Vec<&'static str>,
}

#[utoipa::path(post, path = "/api/v1/lectures/{id}/ticket", tag = "learner",
    description = "The Enter button: a short-lived room ticket, or the reason there is none.",
    params(("id" = String, Path, description = "lecture id")),
    responses(
        (status = 200, body = TicketResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = RefusalBody, description = "not_purchased, payment_pending, purchase_cancelled, corporate_account_cannot_enter, seat_not_allocated, profile_incomplete, nickname_taken_by_staff, doors_not_open, lecture_ended, lecture_cancelled, banned"),
        (status = 404, body = ErrorBody, description = "no such lecture"),
        (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ),
    security(("portal_token" = [])))]
pub(crate) async fn ticket(
    State(gate): State<Arc<Gate>>,
    Person(me): Person,
    Path(id): Path<String>,
) -> Result<Json<TicketResponse>, ApiError> {
    if gate.ticket_limiter.check_key(&me).is_err() {
        return Err(ApiError::RateLimited);
    }
    let now = gate.clock.now();
    let lecture = gate
        .store
        .lecture(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound("unknown_lecture", format!("no lecture `{id}`")))?;
    let admission = gate
        .admission(&me, &lecture, now)
        .await?
        .map_err(ApiError::Refused)?;
    let claims = Gate::ticket_claims(&me, &lecture, admission, now, gate.ticket_ttl_secs);
    Ok(Json(TicketResponse {
        ticket: gate.ticket_key.mint(&claims),
        expires_at: claims.exp,
        lecture: lecture.id.clone(),
        role: claims.role,
        websocket: format!("/ws/lectures/{}", lecture.id),
        subprotocols: vec![SUBPROTOCOL_MSGPACK, SUBPROTOCOL_JSON],
    }))
}

/// How people sign in on this node: what the sign-in page offers.
#[derive(Debug, Serialize, ToSchema, ts_rs::TS)]
pub struct SignInOptions {
    /// The portal's sign-in page (`portal_sign_in_url`): the client sends the person there
    /// with `state` and `return_to`, and takes the token that comes back only with its own
    /// `state` (docs/portal-sign-in.md). `null`: the portal links to the rooms itself.
    portal_sign_in_url: Option<String>,
    /// Demo mode: the demo people can sign in here (`/api/v1/demo/…`).
    demo: bool,
}

#[utoipa::path(get, path = "/api/v1/sign-in", tag = "learner",
    description = "Public, no identity needed: where the sign-in page sends people (the portal's sign-in address, if configured) and whether the demo sign-in is on.",
    responses((status = 200, body = SignInOptions)))]
pub(crate) async fn sign_in_options(State(gate): State<Arc<Gate>>) -> Json<SignInOptions> {
    Json(SignInOptions {
        portal_sign_in_url: gate.portal_sign_in_url.clone(),
        demo: gate.demo.is_some(),
    })
}

/// A demo person to sign in as.
#[derive(Debug, Serialize, ToSchema, ts_rs::TS)]
pub struct DemoPerson {
    /// Account id.
    id: String,
    /// What this person shows off.
    about: String,
}

/// The demo's people.
#[derive(Debug, Serialize, ToSchema, ts_rs::TS)]
pub struct DemoPeople {
    /// Sign in as any of them.
    users: Vec<DemoPerson>,
}

#[utoipa::path(get, path = "/api/v1/demo/users", tag = "demo",
    responses((status = 200, body = DemoPeople), (status = 404, body = ErrorBody, description = "not in demo mode")))]
pub(crate) async fn demo_users(
    State(gate): State<Arc<Gate>>,
) -> Result<Json<DemoPeople>, ApiError> {
    let demo = gate.demo.as_ref().ok_or_else(not_demo)?;
    let users = demo
        .people
        .iter()
        .map(|p| DemoPerson {
            id: p.id.to_owned(),
            about: p.about.to_owned(),
        })
        .collect();
    Ok(Json(DemoPeople { users }))
}

fn not_demo() -> ApiError {
    ApiError::NotFound("not_demo", "this node is not in demo mode".into())
}

/// Who to sign in as.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct DemoSignIn {
    /// A demo account id.
    user: String,
}

/// A demo identity token.
#[derive(Debug, Serialize, ToSchema, ts_rs::TS)]
pub struct SignedIn {
    /// Send as `Authorization: Bearer <token>`.
    token: String,
    /// The account.
    account: String,
    /// Expiry, Unix seconds.
    expires_at: u64,
}

#[utoipa::path(post, path = "/api/v1/demo/sign-in", tag = "demo",
    description = "Demo mode only: an identity token for one of the demo people, as the portal would issue.",
    request_body = DemoSignIn,
    responses(
        (status = 200, body = SignedIn),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "not in demo mode, or no such demo person"),
        (status = 429, body = ErrorBody),
    ))]
pub(crate) async fn demo_sign_in(
    State(gate): State<Arc<Gate>>,
    ClientAddr(client): ClientAddr,
    Body(DemoSignIn { user }): Body<DemoSignIn>,
) -> Result<Json<SignedIn>, ApiError> {
    if gate.sign_in_limiter.check_key(&client).is_err() {
        return Err(ApiError::RateLimited);
    }
    let demo = gate.demo.as_ref().ok_or_else(not_demo)?;
    let issuer = gate.demo_issuer.as_ref().ok_or_else(not_demo)?;
    if !demo.people.iter().any(|p| p.id == user) {
        return Err(ApiError::NotFound(
            "unknown_user",
            "no such demo person; see GET /api/v1/demo/users".into(),
        ));
    }
    let now = gate.clock.now().0 / 1000;
    let ttl = 12 * 3600;
    Ok(Json(SignedIn {
        token: issuer.issue(&user, now, ttl),
        account: user,
        expires_at: now + ttl,
    }))
}
