//! The corporate admin's API: linked individuals, allocating and taking back the seats of the
//! company's purchases, and the attendance history of its people (JSON or CSV).

use super::Gate;
use super::http::{ApiError, Company, ErrorBody};
use super::model::{Allocation, AttendanceRecord, Purchase, PurchaseStatus};
use super::store::Allocated;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use protocol::UnixMillis;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// An individual linked to the company.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Member {
    /// Account id.
    account: String,
    /// Nickname, if registered.
    nickname: Option<String>,
    /// E-mail, if registered.
    email: Option<String>,
    /// When they linked, Unix milliseconds.
    #[schema(value_type = u64)]
    linked_at: UnixMillis,
}

/// The company's linked individuals.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Members {
    members: Vec<Member>,
}

#[utoipa::path(get, path = "/api/v1/corporate/members", tag = "corporate",
    responses((status = 200, body = Members), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("portal_token" = [])))]
pub(crate) async fn members(
    State(gate): State<Arc<Gate>>,
    Company(me): Company,
) -> Result<Json<Members>, ApiError> {
    let members = gate
        .store
        .members_of(&me)
        .await?
        .into_iter()
        .map(|(account, p, linked_at)| Member {
            account,
            nickname: p.nickname,
            email: p.email,
            linked_at,
        })
        .collect();
    Ok(Json(Members { members }))
}

/// A purchase with its allocated seats.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PurchaseSeats {
    purchase: Purchase,
    allocations: Vec<Allocation>,
}

/// The company's purchases.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Purchases {
    purchases: Vec<PurchaseSeats>,
}

#[utoipa::path(get, path = "/api/v1/corporate/purchases", tag = "corporate",
    responses((status = 200, body = Purchases), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("portal_token" = [])))]
pub(crate) async fn purchases(
    State(gate): State<Arc<Gate>>,
    Company(me): Company,
) -> Result<Json<Purchases>, ApiError> {
    let mut out = Vec::new();
    for purchase in gate.store.purchases_by(&me).await? {
        let allocations = gate.store.allocations_of(&purchase.id).await?;
        out.push(PurchaseSeats {
            purchase,
            allocations,
        });
    }
    Ok(Json(Purchases { purchases: out }))
}

/// Gives a seat of `purchase_id` to `individual`. `company`: the caller must own the purchase
/// (corporate API); `None`: the portal acts (integration API).
pub(crate) async fn allocate_seat(
    gate: &Gate,
    purchase_id: &str,
    individual: &str,
    company: Option<&str>,
) -> Result<Allocation, ApiError> {
    let store = &gate.store;
    let purchase = store
        .purchase(purchase_id)
        .await?
        .filter(|p| company.is_none_or(|c| p.buyer == c))
        .ok_or_else(|| {
            ApiError::NotFound(
                "unknown_purchase",
                format!("no purchase `{purchase_id}` of this company"),
            )
        })?;
    if matches!(
        purchase.status,
        PurchaseStatus::Cancelled | PurchaseStatus::Refunded
    ) {
        return Err(ApiError::Conflict(
            "purchase_cancelled",
            "the purchase was cancelled or refunded".into(),
        ));
    }
    if !store
        .companies_of(individual)
        .await?
        .contains(&purchase.buyer)
    {
        return Err(ApiError::Conflict(
            "not_linked",
            format!("`{individual}` is not linked to the buying company"),
        ));
    }
    let now = gate.clock.now();
    match store.allocate(purchase_id, individual, now).await? {
        Allocated::Added => Ok(Allocation {
            purchase: purchase_id.to_owned(),
            individual: individual.to_owned(),
            allocated_at: now,
        }),
        Allocated::AlreadyHeld => store
            .allocations_of(purchase_id)
            .await?
            .into_iter()
            .find(|a| a.individual == individual)
            // Taken back between the two reads: answered as no seat, as a retry would be.
            .ok_or_else(|| no_seats_left(purchase.quantity)),
        Allocated::NoSeatsLeft => Err(no_seats_left(purchase.quantity)),
    }
}

fn no_seats_left(quantity: u32) -> ApiError {
    ApiError::Conflict(
        "no_seats_left",
        format!("all {quantity} seats of this purchase are allocated; take one back first"),
    )
}

/// Takes a seat back; the individual is removed from the lecture's room if they are in it.
pub(crate) async fn take_back_seat(
    gate: &Gate,
    purchase_id: &str,
    individual: &str,
    company: Option<&str>,
) -> Result<(), ApiError> {
    let store = &gate.store;
    let purchase = store
        .purchase(purchase_id)
        .await?
        .filter(|p| company.is_none_or(|c| p.buyer == c))
        .ok_or_else(|| {
            ApiError::NotFound(
                "unknown_purchase",
                format!("no purchase `{purchase_id}` of this company"),
            )
        })?;
    // A cancelled lecture's notice still reaches whoever held the seat when it was cancelled.
    gate.settle_cancellation_notices(&purchase, gate.clock.now())
        .await?;
    if !store
        .deallocate(purchase_id, individual, gate.clock.now())
        .await?
    {
        return Err(ApiError::NotFound(
            "not_allocated",
            format!("`{individual}` holds no seat of this purchase"),
        ));
    }
    gate.revoke_if_unentitled(&purchase.lecture, individual, gate.clock.now())
        .await?;
    Ok(())
}

#[utoipa::path(put, path = "/api/v1/corporate/purchases/{purchase}/allocations/{individual}", tag = "corporate",
    description = "Give one seat of the company's purchase to a linked individual (idempotent).",
    params(("purchase" = String, Path), ("individual" = String, Path)),
    responses(
        (status = 200, body = Allocation),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such purchase of this company"),
        (status = 409, body = ErrorBody, description = "purchase_cancelled, not_linked, no_seats_left"),
        (status = 503, body = ErrorBody),
    ),
    security(("portal_token" = [])))]
pub(crate) async fn allocate(
    State(gate): State<Arc<Gate>>,
    Company(me): Company,
    Path((purchase, individual)): Path<(String, String)>,
) -> Result<Json<Allocation>, ApiError> {
    Ok(Json(
        allocate_seat(&gate, &purchase, &individual, Some(&me)).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/corporate/purchases/{purchase}/allocations/{individual}", tag = "corporate",
    description = "Take a seat back. The individual is removed from the lecture's room (close code 4113).",
    params(("purchase" = String, Path), ("individual" = String, Path)),
    responses(
        (status = 204, description = "taken back"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such purchase, or no seat allocated to them"),
        (status = 503, body = ErrorBody),
    ),
    security(("portal_token" = [])))]
pub(crate) async fn take_back(
    State(gate): State<Arc<Gate>>,
    Company(me): Company,
    Path((purchase, individual)): Path<(String, String)>,
) -> Result<axum::http::StatusCode, ApiError> {
    take_back_seat(&gate, &purchase, &individual, Some(&me)).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// `?format=csv` for a spreadsheet.
#[derive(Debug, Deserialize)]
pub(crate) struct Format {
    format: Option<String>,
}

/// The attendance of the company's people.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Attendance {
    records: Vec<AttendanceRecord>,
}

/// Quotes a CSV field when it needs it, and defuses spreadsheet formulas.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[utoipa::path(get, path = "/api/v1/corporate/attendance", tag = "corporate",
    description = "受講履歴: every stay the company paid for, newest first: its linked individuals' stays in a lecture while they held one of the company's seats of it. Their own purchases and stays before linking are not shown. `?format=csv` for CSV.",
    params(("format" = Option<String>, Query, description = "`json` (default) or `csv`")),
    responses(
        (status = 200, body = Attendance, description = "JSON, or text/csv with columns lecture,account,role,entered_at,left_at,seat_row,seat_col"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("portal_token" = [])))]
pub(crate) async fn attendance(
    State(gate): State<Arc<Gate>>,
    Company(me): Company,
    Query(Format { format }): Query<Format>,
) -> Result<Response, ApiError> {
    let records = gate.store.attendance_of_members(&me).await?;
    match format.as_deref() {
        None | Some("json") => Ok(Json(Attendance { records }).into_response()),
        Some("csv") => {
            let mut csv =
                String::from("lecture,account,role,entered_at,left_at,seat_row,seat_col\n");
            for r in records {
                let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
                csv.push_str(&format!(
                    "{},{},{},{},{},{},{}\n",
                    csv_field(&r.lecture),
                    csv_field(&r.account),
                    r.role.as_str(),
                    r.entered_at.0,
                    opt(r.left_at.map(|t| t.0)),
                    opt(r.seat.map(|s| u64::from(s.row))),
                    opt(r.seat.map(|s| u64::from(s.col))),
                ));
            }
            Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response())
        }
        Some(other) => Err(ApiError::BadRequest(format!(
            "format `{other}` is not json or csv"
        ))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(super::csv_field("plain"), "plain");
        assert_eq!(super::csv_field("a,b"), "\"a,b\"");
        assert_eq!(super::csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(super::csv_field("=SUM(A1)"), "'=SUM(A1)");
    }
}
