//! The portal's integration API (`X-Api-Key`): idempotent upserts of lectures, accounts,
//! profiles, links, purchases and payment-status changes, seat allocations, and cancelling a
//! lecture. Whatever takes a right away revokes it at once: the people concerned are removed
//! from the room through the node's bus.

use super::Gate;
use super::corporate::{allocate_seat, take_back_seat};
use super::http::{ApiError, Body, ErrorBody, Portal};
use super::learner::{ProfileChange, check_profile};
use super::model::{
    Account, AccountKind, Allocation, Lecture, LectureStatus, Modality, PaymentMethod, Profile,
    Purchase, PurchaseStatus, StaffMember,
};
use crate::bus::BusEvent;
use crate::log::RoomEntry;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use protocol::server::Emotion;
use protocol::{LectureId, UnixMillis};
use serde::Deserialize;
use std::sync::Arc;
use utoipa::ToSchema;

fn ids_ok(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "ids are 1 to 128 characters without control characters".into(),
        ));
    }
    Ok(())
}

/// A lecture as the portal sends it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LectureInput {
    title: String,
    /// Start, Unix milliseconds.
    starts_at: u64,
    /// End, Unix milliseconds.
    ends_at: u64,
    rows: u16,
    cols: u16,
    /// Emotion buttons; the default five when left out.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    emotions: Vec<Emotion>,
    /// When the archive becomes available, Unix milliseconds.
    #[serde(default)]
    archive_available_at: Option<u64>,
    /// Instructors and moderators.
    #[serde(default)]
    staff: Vec<StaffMember>,
}

#[utoipa::path(put, path = "/api/v1/integration/lectures/{id}", tag = "integration",
    description = "Create or update a lecture (idempotent). A cancelled lecture stays cancelled. Staff the new list drops, or gives another role, are removed from the room (4113) and their earlier tickets refused.",
    params(("id" = String, Path)), request_body = LectureInput,
    responses((status = 200, body = Lecture), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = [])))]
pub(crate) async fn put_lecture(
    State(gate): State<Arc<Gate>>,
    _: Portal,
    Path(id): Path<String>,
    Body(input): Body<LectureInput>,
) -> Result<Json<Lecture>, ApiError> {
    let store = &gate.store;
    let before = store.lecture(&id).await?;
    let lecture = Lecture {
        id: id.clone(),
        title: input.title,
        starts_at: UnixMillis(input.starts_at),
        ends_at: UnixMillis(input.ends_at),
        rows: input.rows,
        cols: input.cols,
        emotions: input.emotions,
        archive_available_at: input.archive_available_at.map(UnixMillis),
        status: before
            .as_ref()
            .map_or(LectureStatus::Scheduled, |b| b.status),
        cancel_reason: before.as_ref().and_then(|b| b.cancel_reason.clone()),
        started_at: before.as_ref().and_then(|b| b.started_at),
        ended_at: before.as_ref().and_then(|b| b.ended_at),
        staff: input.staff,
    };
    super::model::validate_lecture(&lecture.info())
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let now = gate.clock.now();
    store.upsert_lecture(&lecture, now).await?;
    if let Some(before) = &before {
        gate.revoke_staff_changes(&id, &before.staff, &lecture.staff, now)
            .await?;
    }
    if let Some(before) = before
        && (before.title != lecture.title
            || before.starts_at != lecture.starts_at
            || before.ends_at != lecture.ends_at)
    {
        // A room running now follows the new times (it would otherwise go live at the old start).
        gate.bus.publish(BusEvent {
            lecture: LectureId::from(id.as_str()),
            entry: RoomEntry::Reschedule {
                title: lecture.title.clone(),
                starts_at: lecture.starts_at,
                ends_at: lecture.ends_at,
            },
        });
    }
    Ok(Json(lecture))
}

/// The archive's dates as the portal sets them: a field given is set (`null` clears it), a
/// field left out keeps its value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArchiveInput {
    /// When learners may watch it, Unix ms (moves the My page Archive button).
    #[serde(default, deserialize_with = "super::learner::given")]
    #[schema(value_type = Option<u64>)]
    available_at: Option<Option<u64>>,
    /// When it ends (is refused, then deleted), Unix ms; `null`: `[archive] retention_days`
    /// after the lecture.
    #[serde(default, deserialize_with = "super::learner::given")]
    #[schema(value_type = Option<u64>)]
    expires_at: Option<Option<u64>>,
    /// Withdrawn: refused to everyone (`false` puts it back).
    #[serde(default)]
    withdrawn: Option<bool>,
}

/// The archive's dates after a change.
#[derive(Debug, serde::Serialize, ToSchema)]
pub(crate) struct ArchiveDates {
    /// When learners may watch it, Unix ms.
    #[schema(value_type = Option<u64>)]
    available_at: Option<UnixMillis>,
    /// When the portal ends it, Unix ms (none: the node's retention).
    #[schema(value_type = Option<u64>)]
    expires_at: Option<UnixMillis>,
    /// When it was withdrawn, Unix ms.
    #[schema(value_type = Option<u64>)]
    withdrawn_at: Option<UnixMillis>,
}

#[utoipa::path(put, path = "/api/v1/integration/lectures/{id}/archive", tag = "integration",
    description = "Set or move when a lecture's archive may be watched (`available_at`), when it ends (`expires_at`), or withdraw it (`withdrawn`). Fields left out keep their values. Media URLs already given stop working at once for a withdrawn or ended archive.",
    params(("id" = String, Path)), request_body = ArchiveInput,
    responses((status = 200, body = ArchiveDates), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = [])))]
pub(crate) async fn put_archive(
    State(gate): State<Arc<Gate>>,
    _: Portal,
    Path(id): Path<String>,
    Body(input): Body<ArchiveInput>,
) -> Result<Json<ArchiveDates>, ApiError> {
    let store = &gate.store;
    let Some(lecture) = store.lecture(&id).await? else {
        return Err(ApiError::NotFound(
            "unknown_lecture",
            format!("no lecture `{id}`"),
        ));
    };
    if let Some(at) = input.available_at {
        store
            .set_archive_available_at(&id, at.map(UnixMillis))
            .await?;
    }
    if let Some(at) = input.expires_at {
        store
            .set_archive_expires_at(&id, at.map(UnixMillis))
            .await?;
    }
    match input.withdrawn {
        Some(true) if store.archive_withdrawn_at(&id).await?.is_none() => {
            store
                .set_archive_withdrawn_at(&id, Some(gate.clock.now()))
                .await?;
        }
        Some(false) => {
            store.set_archive_withdrawn_at(&id, None).await?;
        }
        _ => {}
    }
    Ok(Json(ArchiveDates {
        available_at: input
            .available_at
            .map_or(lecture.archive_available_at, |at| at.map(UnixMillis)),
        expires_at: store.archive_expires_at(&id).await?,
        withdrawn_at: store.archive_withdrawn_at(&id).await?,
    }))
}

/// Why a lecture is cancelled.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CancelInput {
    /// Shown to everyone (講師急病のため, 気象警報のため, …).
    reason: String,
}

#[utoipa::path(post, path = "/api/v1/integration/lectures/{id}/cancel", tag = "integration",
    description = "Cancel a lecture: everyone in its room is told why and closed (4106); tickets are refused from now on. When the node sends e-mails, every learner the lecture admitted gets the cancellation notice.",
    params(("id" = String, Path)), request_body = CancelInput,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = [])))]
pub(crate) async fn cancel_lecture(
    State(gate): State<Arc<Gate>>,
    _: Portal,
    Path(id): Path<String>,
    Body(CancelInput { reason }): Body<CancelInput>,
) -> Result<StatusCode, ApiError> {
    let reason = reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 500 || reason.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "the reason is 1 to 500 characters of text".into(),
        ));
    }
    let now = gate.clock.now();
    let Some(before) = gate.store.lecture(&id).await? else {
        return Err(ApiError::NotFound(
            "unknown_lecture",
            format!("no lecture `{id}`"),
        ));
    };
    gate.store.cancel_lecture(&id, &reason, now).await?;
    // One row, whatever the number of learners: the mail sender writes to them in the
    // background, and the portal's refunds that follow have their holders judged first.
    gate.queue_cancellation_notices(&before.id, now).await?;
    gate.bus.publish(BusEvent {
        lecture: LectureId::from(id.as_str()),
        entry: RoomEntry::Cancel { reason },
    });
    Ok(StatusCode::NO_CONTENT)
}

/// An account as the portal sends it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountInput {
    kind: AccountKind,
    /// For companies: the registered e-mail individuals link with.
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[utoipa::path(put, path = "/api/v1/integration/accounts/{id}", tag = "integration",
    params(("id" = String, Path)), request_body = AccountInput,
    responses((status = 200, body = Account), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = [])))]
pub(crate) async fn put_account(
    State(gate): State<Arc<Gate>>,
    _: Portal,
    Path(id): Path<String>,
    Body(input): Body<AccountInput>,
) -> Result<Json<Account>, ApiError> {
    ids_ok(&id)?;
    let account = Account {
        id,
        kind: input.kind,
        email: input.email,
        name: input.name,
    };
    check_profile(&Profile {
        nickname: None,
        email: account.email.clone(),
    })?;
    gate.store
        .upsert_account(&account, gate.clock.now())
        .await?;
    Ok(Json(account))
}

#[utoipa::path(put, path = "/api/v1/integration/accounts/{id}/profile", tag = "integration",
    description = "Set an account's attendee profile. A field left out keeps its value; `null` clears it; any other field is refused (400).",
    params(("id" = String, Path)), request_body = Profile,
    responses((status = 200, body = Profile), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = [])))]
pub(crate) async fn put_profile(
    State(gate): State<Arc<Gate>>,
    _: Portal,
    Path(id): Path<String>,
    Body(change): Body<ProfileChange>,
) -> Result<Json<Profile>, ApiError> {
    ids_ok(&id)?;
    let store = &gate.store;
    let profile = change.applied_to(store.profile(&id).await?);
    check_profile(&profile)?;
    store.set_profile(&id, &profile, gate.clock.now()).await?;
    Ok(Json(profile))
}

/// An individual and the company they link to, named by its registered e-mail (法人ID連携).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkInput {
    individual: String,
    company_email: String,
}

async fn company_for(gate: &Gate, input: &LinkInput) -> Result<String, ApiError> {
    ids_ok(&input.individual)?;
    let company = gate.store.company_by_email(&input.company_email).await?;
    company.map(|c| c.id).ok_or_else(|| {
        ApiError::NotFound(
            "unknown_company",
            "no company is registered with that e-mail".into(),
        )
    })
}

#[utoipa::path(put, path = "/api/v1/integration/links", tag = "integration",
    description = "Link an individual to the company registered with `company_email` (idempotent).",
    request_body = LinkInput,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = [])))]
pub(crate) async fn put_link(
    State(gate): State<Arc<Gate>>,
    _: Portal,
    Body(input): Body<LinkInput>,
) -> Result<StatusCode, ApiError> {
    let company = company_for(&gate, &input).await?;
    gate.store
        .link(&input.individual, &company, gate.clock.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/integration/links", tag = "integration",
    description = "Unlink an individual from a company. Seats the company allocated to them stop admitting them, and they are removed from those lectures' rooms.",
    request_body = LinkInput,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = [])))]
pub(crate) async fn delete_link(
    State(gate): State<Arc<Gate>>,
    _: Portal,
    Body(input): Body<LinkInput>,
) -> Result<StatusCode, ApiError> {
    let company = company_for(&gate, &input).await?;
    let store = &gate.store;
    let now = gate.clock.now();
    let seats: Vec<_> = store
        .allocated_to(&input.individual)
        .await?
        .into_iter()
        .filter(|seat| seat.purchase.buyer == company)
        .collect();
    // A cancelled lecture's notice still reaches whoever held a seat when it was cancelled.
    for seat in &seats {
        gate.settle_cancellation_notices(&seat.purchase, now)
            .await?;
    }
    if !store.unlink(&input.individual, &company).await? {
        return Err(ApiError::NotFound(
            "not_linked",
            "they were not linked".into(),
        ));
    }
    for seat in seats {
        gate.revoke_if_unentitled(&seat.purchase.lecture, &input.individual, now)
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A purchase as the portal sends it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PurchaseInput {
    buyer: String,
    lecture: String,
    quantity: u32,
    modality: Modality,
    payment_method: PaymentMethod,
    status: PurchaseStatus,
}

/// Whether a change to a purchase may take a place away: cancelled or refunded, or fewer seats
/// (the seats allocated last are beyond the new quantity).
fn takes_away(before: Option<&Purchase>, after: &Purchase) -> bool {
    let admits =
        |s: PurchaseStatus| matches!(s, PurchaseStatus::Paid | PurchaseStatus::AwaitingPayment);
    let ended = matches!(
        after.status,
        PurchaseStatus::Cancelled | PurchaseStatus::Refunded
    ) && before.is_some_and(|b| admits(b.status));
    ended || before.is_some_and(|b| after.quantity < b.quantity)
}

#[utoipa::path(put, path = "/api/v1/integration/purchases/{id}", tag = "integration",
    description = "Create or update a purchase (idempotent). Turning it cancelled or refunded removes its holders from the room; lowering the quantity removes the holders of the seats allocated last, beyond it.",
    params(("id" = String, Path)), request_body = PurchaseInput,
    responses((status = 200, body = Purchase), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = [])))]
pub(crate) async fn put_purchase(
    State(gate): State<Arc<Gate>>,
    _: Portal,
    Path(id): Path<String>,
    Body(input): Body<PurchaseInput>,
) -> Result<Json<Purchase>, ApiError> {
    ids_ok(&id)?;
    ids_ok(&input.buyer)?;
    ids_ok(&input.lecture)?;
    if input.quantity == 0 || input.quantity > 100_000 {
        return Err(ApiError::BadRequest("quantity is 1 to 100000".into()));
    }
    let purchase = Purchase {
        id,
        buyer: input.buyer,
        lecture: input.lecture,
        quantity: input.quantity,
        modality: input.modality,
        payment_method: input.payment_method,
        status: input.status,
    };
    let now = gate.clock.now();
    if let Some(before) = gate.store.purchase(&purchase.id).await?
        && takes_away(Some(&before), &purchase)
    {
        gate.settle_cancellation_notices(&before, now).await?;
    }
    let before = gate.store.upsert_purchase(&purchase, now).await?;
    if takes_away(before.as_ref(), &purchase) {
        gate.revoke_holders(&purchase, now).await?;
    }
    Ok(Json(purchase))
}

/// A payment-status change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusInput {
    status: PurchaseStatus,
}

#[utoipa::path(post, path = "/api/v1/integration/purchases/{id}/status", tag = "integration",
    description = "A payment-status change: a konbini payment arriving (awaiting_payment → paid), a cancellation or refund (its holders are removed from the room).",
    params(("id" = String, Path)), request_body = StatusInput,
    responses((status = 200, body = Purchase), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = [])))]
pub(crate) async fn set_purchase_status(
    State(gate): State<Arc<Gate>>,
    _: Portal,
    Path(id): Path<String>,
    Body(StatusInput { status }): Body<StatusInput>,
) -> Result<Json<Purchase>, ApiError> {
    let store = &gate.store;
    let before = store
        .purchase(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound("unknown_purchase", format!("no purchase `{id}`")))?;
    let after = Purchase {
        status,
        ..before.clone()
    };
    let now = gate.clock.now();
    if takes_away(Some(&before), &after) {
        gate.settle_cancellation_notices(&before, now).await?;
    }
    store.upsert_purchase(&after, now).await?;
    if takes_away(Some(&before), &after) {
        gate.revoke_holders(&after, now).await?;
    }
    Ok(Json(after))
}

#[utoipa::path(put, path = "/api/v1/integration/purchases/{purchase}/allocations/{individual}", tag = "integration",
    description = "Allocate a seat of a corporate purchase to a linked individual (idempotent).",
    params(("purchase" = String, Path), ("individual" = String, Path)),
    responses((status = 200, body = Allocation), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = [])))]
pub(crate) async fn put_allocation(
    State(gate): State<Arc<Gate>>,
    _: Portal,
    Path((purchase, individual)): Path<(String, String)>,
) -> Result<Json<Allocation>, ApiError> {
    Ok(Json(
        allocate_seat(&gate, &purchase, &individual, None).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/integration/purchases/{purchase}/allocations/{individual}", tag = "integration",
    description = "Take a seat back; the individual is removed from the room.",
    params(("purchase" = String, Path), ("individual" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = [])))]
pub(crate) async fn delete_allocation(
    State(gate): State<Arc<Gate>>,
    _: Portal,
    Path((purchase, individual)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    take_back_seat(&gate, &purchase, &individual, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
