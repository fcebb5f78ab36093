//! The entry gate: who may enter which lecture and when, and the records the portal and
//! corporate admins need.
//!
//! # Layout
//! - [`model`]: lectures, accounts, profiles, purchases, allocations, attendance.
//! - [`store`]: those records in SQLite or PostgreSQL.
//! - [`entitlement`]: the pure rules — a lecture's state and the Enter button's answer.
//! - [`identity`]: the portal's identity tokens (and the demo's).
//! - [`names`]: when two nicknames read as the same name.
//! - [`notices`]: who is told what by e-mail (the learners a lecture admits; the notice kinds).
//! - [`demo`]: the demo records and people (demo mode).
//! - `http`: errors and extractors shared by the APIs; `learner`, `corporate`, `integration`:
//!   the three APIs (the node's `openapi` module makes their contract).
//!
//! The gate is a part of the node with its own state ([`Gate`], shared as `Arc<Gate>`): its
//! routes and extractors take that, never the node.

pub(crate) mod corporate;
pub mod demo;
pub mod entitlement;
pub(crate) mod http;
pub mod identity;
pub(crate) mod integration;
pub(crate) mod learner;
pub mod model;
pub mod names;
pub mod notices;
pub mod store;

use crate::bus::{Bus, BusEvent};
use crate::client_addr::TrustedProxies;
use crate::clock::Clock;
use crate::log::RoomEntry;
use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post, put};
use demo::{Demo, DemoError};
use entitlement::{Admission, Facts, LectureState, Refusal, Timing, decide, lecture_state};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use identity::{PortalIdentity, TokenIssuer};
use model::{Lecture, Purchase, PurchaseStatus};
use protocol::ticket::{TicketClaims, TicketKey};
use protocol::{CloseCode, LectureId, Nickname, Role, UnixMillis, UserId};
use serde::Serialize;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use store::{Store, StoreError};
use tracing::warn;
use utoipa::ToSchema;

/// The gate's parts: everything its APIs need, and nothing of the rest of the node.
#[derive(Debug)]
pub struct Gate {
    /// The records.
    pub store: Store,
    /// Where revocations and cancellations go.
    pub bus: Bus,
    /// Checks the portal's identity tokens.
    pub identity: Option<PortalIdentity>,
    /// Issues identity tokens for demo people (demo mode only).
    pub demo_issuer: Option<TokenIssuer>,
    /// The room's timing, so the gate's window matches the room's phases.
    pub timing: Timing,
    /// The demo people (demo mode only).
    pub(crate) demo: Option<Demo>,
    /// Signs room tickets (the key every node shares).
    pub(crate) ticket_key: TicketKey,
    /// Lifetime of the tickets the gate signs.
    pub(crate) ticket_ttl_secs: u64,
    /// The key the portal sends to the integration API; none: that API is off.
    pub(crate) integration_api_key: Option<String>,
    /// Where the web client sends people to sign in through the portal.
    pub(crate) portal_sign_in_url: Option<String>,
    /// Whose forwarding headers name the client's address.
    pub(crate) trusted_proxies: TrustedProxies,
    /// Ticket requests per person.
    pub(crate) ticket_limiter: DefaultKeyedRateLimiter<String>,
    /// Demo sign-ins per client address.
    pub(crate) sign_in_limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// The one source of the time.
    pub(crate) clock: Arc<dyn Clock>,
    /// This node sends learners' e-mails (`[mail]`): a cancellation queues its notices.
    pub(crate) mail_notices: bool,
    /// Wakes the mail sender when notices were queued (a cancellation), so they do not wait
    /// for its next round.
    pub mail_wake: tokio::sync::Notify,
}

/// What the gate is made from (the node's configuration says).
#[derive(Debug)]
pub struct GateSettings {
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// Lectures to put in the store at start.
    pub lectures: Vec<Lecture>,
    /// Demo mode: demo records, people and sign-in.
    pub demo: bool,
    /// How the portal signs identity tokens.
    pub identity: Option<identity::IdentitySettings>,
    /// Signs room tickets.
    pub ticket_key: TicketKey,
    /// Lifetime of the tickets the gate signs.
    pub ticket_ttl_secs: u64,
    /// The integration API's key.
    pub integration_api_key: Option<String>,
    /// The portal's sign-in address for the web client.
    pub portal_sign_in_url: Option<String>,
    /// Whose forwarding headers name the client's address.
    pub trusted_proxies: TrustedProxies,
    /// The room's timing (doors, end grace).
    pub timing: Timing,
    /// Ticket requests per person per minute, sustained…
    pub tickets_per_min: u32,
    /// …and in a burst.
    pub ticket_burst: u32,
    /// Demo sign-ins per client address per minute.
    pub sign_ins_per_min: u32,
    /// Learners' e-mails are sent (`[mail]` is configured).
    pub mail_notices: bool,
}

/// Why the gate could not start.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The database is unreachable or could not be migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The identity settings are unusable.
    #[error(transparent)]
    Identity(#[from] identity::IdentityConfigError),
    /// Demo mode could not seed its records.
    #[error(transparent)]
    Demo(#[from] DemoError),
    /// The system's random source failed (the demo's identity secret).
    #[error("the system's random source failed: {0}")]
    Random(#[from] getrandom::Error),
}

/// The client-address extractor's sub-state on the gate's routes.
impl FromRef<Arc<Gate>> for TrustedProxies {
    fn from_ref(gate: &Arc<Gate>) -> Self {
        gate.trusted_proxies.clone()
    }
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// Puts a lecture of the config file in the store. What the portal decided since (a
/// cancellation, the archive's date) and what rooms recorded stay; staff the file no longer
/// lists lose the tickets they hold, as when the portal drops them.
async fn put_configured_lecture(
    store: &Store,
    lecture: &model::Lecture,
    now: UnixMillis,
) -> Result<(), StoreError> {
    let before = store.lecture(&lecture.id).await?;
    let mut lecture = lecture.clone();
    if let Some(before) = &before {
        lecture.status = before.status;
        lecture.cancel_reason.clone_from(&before.cancel_reason);
        lecture.archive_available_at = before.archive_available_at;
        lecture.started_at = before.started_at;
        lecture.ended_at = before.ended_at;
    }
    store.upsert_lecture(&lecture, now).await?;
    for old in before.iter().flat_map(|b| &b.staff) {
        if !lecture.staff.contains(old) {
            store.revoke(&lecture.id, &old.account, now).await?;
        }
    }
    Ok(())
}

impl Gate {
    /// Connects the store (migrating it), puts the configured lectures and, in demo mode, the
    /// demo records in it, and sets up identity checks and limits from `config`.
    pub async fn start(config: GateSettings, clock: Arc<dyn Clock>) -> Result<Self, GateError> {
        let store = Store::connect(&config.database_url).await?;
        let now = clock.now();
        for lecture in &config.lectures {
            put_configured_lecture(&store, lecture, now).await?;
        }
        let demo = match config.demo {
            true => Some(Demo::seed(&store, now).await?),
            false => None,
        };
        let identity_settings = match (&config.identity, config.demo) {
            (Some(settings), _) => Some(settings.clone()),
            (None, true) => {
                let mut secret = [0u8; 32];
                getrandom::fill(&mut secret)?;
                Some(identity::IdentitySettings {
                    algorithm: "HS256".into(),
                    secret: Some(secret.iter().map(|b| format!("{b:02x}")).collect()),
                    public_key_pem: None,
                    issuer: "room-server-demo".into(),
                    audience: "lecture-room".into(),
                    max_token_lifetime_secs: identity::DEFAULT_MAX_TOKEN_LIFETIME_SECS,
                })
            }
            (None, false) => None,
        };
        let identity = identity_settings
            .as_ref()
            .map(PortalIdentity::new)
            .transpose()?;
        if identity.is_none() {
            warn!(
                "no [identity] configured: the learner and corporate APIs will refuse everyone (401)"
            );
        }
        let demo_issuer = identity_settings
            .as_ref()
            .filter(|_| config.demo)
            .and_then(TokenIssuer::new);
        let tickets = Quota::per_minute(nonzero(config.tickets_per_min))
            .allow_burst(nonzero(config.ticket_burst));
        let sign_ins = Quota::per_minute(nonzero(config.sign_ins_per_min));
        Ok(Self {
            store,
            bus: Bus::default(),
            identity,
            demo_issuer,
            timing: config.timing,
            demo,
            ticket_key: config.ticket_key,
            ticket_ttl_secs: config.ticket_ttl_secs,
            integration_api_key: config.integration_api_key,
            portal_sign_in_url: config.portal_sign_in_url,
            trusted_proxies: config.trusted_proxies,
            ticket_limiter: RateLimiter::keyed(tickets),
            sign_in_limiter: RateLimiter::keyed(sign_ins),
            clock,
            mail_notices: config.mail_notices,
            mail_wake: tokio::sync::Notify::new(),
        })
    }

    /// Forgets idle per-person and per-address counters, so the limiters' memory stays
    /// bounded.
    pub(crate) fn forget_idle_limits(&self) {
        self.ticket_limiter.retain_recent();
        self.sign_in_limiter.retain_recent();
    }
}

/// What decides one person's entries: their account, purchases, the company seats given to
/// them, what their companies bought, and their nickname.
#[derive(Debug)]
struct Person {
    account: Option<model::Account>,
    purchases: Vec<Purchase>,
    allocated: Vec<Purchase>,
    company_lectures: BTreeSet<String>,
    profile: model::Profile,
    /// Lectures staff removed them from without return.
    banned_from: BTreeSet<String>,
}

/// A lecture on "My page".
#[derive(Clone, Debug, Serialize, ToSchema, ts_rs::TS)]
pub struct MyLecture {
    /// Lecture id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Start, Unix milliseconds.
    #[schema(value_type = u64)]
    pub starts_at: UnixMillis,
    /// End, Unix milliseconds.
    #[schema(value_type = u64)]
    pub ends_at: UnixMillis,
    /// The person's role in it.
    #[schema(value_type = String)]
    pub role: Role,
    /// Where the lecture stands.
    pub state: LectureState,
    /// Whether the Enter button works now, and if not, why.
    pub entry: Entry,
}

/// The Enter button's answer.
#[derive(Clone, Debug, Serialize, ToSchema, ts_rs::TS)]
pub struct Entry {
    /// A ticket would be given now.
    pub allowed: bool,
    /// Why not.
    pub refusal: Option<RefusalBody>,
}

/// A refusal as the APIs send it.
#[derive(Clone, Debug, Serialize, ToSchema, ts_rs::TS)]
pub struct RefusalBody {
    /// Stable code.
    pub error: String,
    /// English.
    pub message: String,
    /// Japanese.
    pub message_ja: String,
    /// When the doors open (doors_not_open).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u64>)]
    #[ts(optional)]
    pub doors_open_at: Option<UnixMillis>,
    /// When the archive is available (lecture_ended), if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u64>)]
    #[ts(optional)]
    pub archive_available_at: Option<UnixMillis>,
    /// Why the lecture was cancelled (lecture_cancelled).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub reason: Option<String>,
}

/// The gate's routes.
pub(crate) fn router() -> Router<Arc<Gate>> {
    Router::new()
        .route("/api/v1/me/lectures", get(learner::my_lectures))
        .route(
            "/api/v1/me/profile",
            get(learner::get_profile).put(learner::put_profile),
        )
        .route("/api/v1/lectures/{id}/ticket", post(learner::ticket))
        .route("/api/v1/sign-in", get(learner::sign_in_options))
        .route("/api/v1/demo/users", get(learner::demo_users))
        .route("/api/v1/demo/sign-in", post(learner::demo_sign_in))
        .route("/api/v1/corporate/members", get(corporate::members))
        .route("/api/v1/corporate/purchases", get(corporate::purchases))
        .route(
            "/api/v1/corporate/purchases/{purchase}/allocations/{individual}",
            put(corporate::allocate).delete(corporate::take_back),
        )
        .route("/api/v1/corporate/attendance", get(corporate::attendance))
        .route(
            "/api/v1/integration/lectures/{id}",
            put(integration::put_lecture),
        )
        .route(
            "/api/v1/integration/lectures/{id}/archive",
            put(integration::put_archive),
        )
        .route(
            "/api/v1/integration/lectures/{id}/cancel",
            post(integration::cancel_lecture),
        )
        .route(
            "/api/v1/integration/accounts/{id}",
            put(integration::put_account),
        )
        .route(
            "/api/v1/integration/accounts/{id}/profile",
            put(integration::put_profile),
        )
        .route(
            "/api/v1/integration/links",
            put(integration::put_link).delete(integration::delete_link),
        )
        .route(
            "/api/v1/integration/purchases/{id}",
            put(integration::put_purchase),
        )
        .route(
            "/api/v1/integration/purchases/{id}/status",
            post(integration::set_purchase_status),
        )
        .route(
            "/api/v1/integration/purchases/{purchase}/allocations/{individual}",
            put(integration::put_allocation).delete(integration::delete_allocation),
        )
        .layer(axum::extract::DefaultBodyLimit::max(http::MAX_JSON_BODY))
        .route_layer(axum::middleware::from_fn(http::log_refusals))
}

impl From<&Refusal> for RefusalBody {
    fn from(r: &Refusal) -> Self {
        let (doors_open_at, archive_available_at, reason) = match r {
            Refusal::DoorsNotOpen { doors_open_at } => (Some(*doors_open_at), None, None),
            Refusal::LectureEnded {
                archive_available_at,
            } => (None, *archive_available_at, None),
            Refusal::LectureCancelled { reason } => (None, None, Some(reason.clone())),
            _ => (None, None, None),
        };
        Self {
            error: r.code().to_owned(),
            message: r.message_en(),
            message_ja: r.message_ja(),
            doors_open_at,
            archive_available_at,
            reason,
        }
    }
}

impl Gate {
    /// Everything the gate knows about one person that decides their entries, read once.
    async fn person(&self, account: &str) -> Result<Person, StoreError> {
        let store = &self.store;
        let companies = store.companies_of(account).await?;
        let mut company_lectures = BTreeSet::new();
        for company in &companies {
            company_lectures.extend(
                store
                    .purchases_by(company)
                    .await?
                    .into_iter()
                    .map(|p| p.lecture),
            );
        }
        Ok(Person {
            account: store.account(account).await?,
            purchases: store.purchases_by(account).await?,
            // Only seats of companies the person is still linked to admit them.
            // A seat beyond the quantity bought (the portal lowered it) admits nobody either.
            allocated: store
                .allocated_to(account)
                .await?
                .into_iter()
                .filter(|s| s.within_quantity && companies.contains(&s.purchase.buyer))
                .map(|s| s.purchase)
                .collect(),
            company_lectures,
            profile: store.profile(account).await?,
            banned_from: store.bans_of(account).await?,
        })
    }

    /// The nicknames of `lecture`'s instructors and moderators, from their profiles (those
    /// without one have no name to take).
    async fn staff_nicknames(&self, lecture: &Lecture) -> Result<Vec<String>, StoreError> {
        let mut names = Vec::with_capacity(lecture.staff.len());
        for member in &lecture.staff {
            if let Some(nickname) = self.store.profile(&member.account).await?.nickname {
                names.push(nickname);
            }
        }
        Ok(names)
    }

    /// Whether `account` may watch `lecture`'s archive (see [`entitlement::may_watch`]), and
    /// in which role.
    pub async fn archive_access(
        &self,
        account: &str,
        lecture: &Lecture,
    ) -> Result<Result<Role, Refusal>, StoreError> {
        let person = self.person(account).await?;
        let facts = Self::facts(account, &person, lecture, &[]);
        Ok(entitlement::may_watch(&facts))
    }

    /// What decides `account`'s entries to `lecture`.
    fn facts<'a>(
        account: &str,
        person: &'a Person,
        lecture: &'a Lecture,
        staff_nicknames: &'a [String],
    ) -> Facts<'a> {
        let of_lecture = |p: &&Purchase| p.lecture == lecture.id;
        Facts {
            lecture,
            account: person.account.as_ref(),
            staff: lecture
                .staff
                .iter()
                .find(|s| s.account == account)
                .map(|s| s.role),
            purchases: person.purchases.iter().filter(of_lecture).collect(),
            allocated: person.allocated.iter().filter(of_lecture).collect(),
            company_bought: person.company_lectures.contains(&lecture.id),
            nickname: person.profile.nickname.as_deref(),
            staff_nicknames: staff_nicknames.iter().map(String::as_str).collect(),
            banned: person.banned_from.contains(&lecture.id),
        }
    }

    /// The Enter button's answer for `account` and `lecture` at `now`, from their records.
    fn answer(
        &self,
        account: &str,
        person: &Person,
        lecture: &Lecture,
        staff_nicknames: &[String],
        now: UnixMillis,
    ) -> Result<Admission, Refusal> {
        let facts = Self::facts(account, person, lecture, staff_nicknames);
        decide(&facts, now, self.timing)
    }

    /// The Enter button's answer for `account` and `lecture` at `now`.
    pub async fn admission(
        &self,
        account: &str,
        lecture: &Lecture,
        now: UnixMillis,
    ) -> Result<Result<Admission, Refusal>, StoreError> {
        let person = self.person(account).await?;
        let staff_nicknames = self.staff_nicknames(lecture).await?;
        Ok(self.answer(account, &person, lecture, &staff_nicknames, now))
    }

    /// Every lecture `account` bought, holds an allocated seat of, or runs, with its state
    /// and the Enter button's answer, soonest first. The person's records are read once.
    pub async fn my_lectures(
        &self,
        account: &str,
        now: UnixMillis,
    ) -> Result<Vec<MyLecture>, StoreError> {
        let store = &self.store;
        let person = self.person(account).await?;
        let mut ids: BTreeSet<String> =
            person.purchases.iter().map(|p| p.lecture.clone()).collect();
        ids.extend(person.allocated.iter().map(|p| p.lecture.clone()));
        // A lecture the person's company bought and has not given them a seat of yet: listed,
        // so they learn the reason (`seat_not_allocated`) and whom to ask, not "no lectures".
        ids.extend(person.company_lectures.iter().cloned());
        ids.extend(
            store
                .staff_lectures(account)
                .await?
                .into_iter()
                .map(|(l, _)| l),
        );
        let mut out = Vec::new();
        for id in ids {
            let Some(lecture) = store.lecture(&id).await? else {
                continue;
            };
            let staff_nicknames = self.staff_nicknames(&lecture).await?;
            let answer = self.answer(account, &person, &lecture, &staff_nicknames, now);
            let role = lecture
                .staff
                .iter()
                .find(|s| s.account == account)
                .map_or(Role::Learner, |s| s.role.room_role());
            out.push(MyLecture {
                id: lecture.id.clone(),
                title: lecture.title.clone(),
                starts_at: lecture.starts_at,
                ends_at: lecture.ends_at,
                role,
                state: lecture_state(&lecture, now, self.timing),
                entry: Entry {
                    allowed: answer.is_ok(),
                    refusal: answer.err().as_ref().map(RefusalBody::from),
                },
            });
        }
        out.sort_by_key(|l| (l.starts_at, l.id.clone()));
        Ok(out)
    }

    /// Whether `nickname` reads as the name of an instructor or moderator of a lecture
    /// `account` is about to attend as a learner (bought, awaiting payment, or given a company
    /// seat; not yet over, not cancelled). Asked when a person sets their nickname, so they
    /// hear at once rather than at the Enter button, which refuses it anyway
    /// ([`Refusal::NicknameTakenByStaff`]); lectures bought later are left to that check.
    pub async fn nickname_taken_by_staff(
        &self,
        account: &str,
        nickname: &str,
        now: UnixMillis,
    ) -> Result<bool, StoreError> {
        let store = &self.store;
        let mut ids: BTreeSet<String> = store
            .purchases_by(account)
            .await?
            .into_iter()
            .filter(|p| {
                !matches!(
                    p.status,
                    PurchaseStatus::Cancelled | PurchaseStatus::Refunded
                )
            })
            .map(|p| p.lecture)
            .collect();
        ids.extend(
            store
                .allocated_to(account)
                .await?
                .into_iter()
                .map(|s| s.purchase.lecture),
        );
        for id in ids {
            let Some(lecture) = store.lecture(&id).await? else {
                continue;
            };
            let upcoming = matches!(
                lecture_state(&lecture, now, self.timing),
                LectureState::BeforeDoors { .. }
                    | LectureState::DoorsOpen { .. }
                    | LectureState::Live
            );
            if !upcoming || lecture.staff.iter().any(|s| s.account == account) {
                continue;
            }
            let staff = self.staff_nicknames(&lecture).await?;
            if staff.iter().any(|name| names::same_name(name, nickname)) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// What the room ticket of an admitted person says.
    pub fn ticket_claims(
        account: &str,
        lecture: &Lecture,
        admission: Admission,
        now: UnixMillis,
        ttl_secs: u64,
    ) -> TicketClaims {
        TicketClaims {
            lec: LectureId::from(lecture.id.as_str()),
            sub: UserId::from(account),
            nick: Nickname::from(admission.nickname),
            role: admission.role,
            iat: now.0 / 1000,
            exp: now.0 / 1000 + ttl_secs,
        }
    }

    /// Takes `user`'s place in `lecture` away at `now`: recorded in the store first (so tickets
    /// issued before are refused at entry on every node, after a restart, and while no room of
    /// the lecture is open), then told to every node holding the lecture's room (so they are
    /// removed from it at once).
    pub async fn revoke(
        &self,
        lecture: &str,
        user: &str,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        self.store.revoke(lecture, user, now).await?;
        let lecture = LectureId::from(lecture);
        // The room knows people by their pseudonym in the lecture, not by their account.
        let user = self.ticket_key.pseudonym(&lecture, &UserId::from(user));
        self.bus.publish(BusEvent {
            entry: RoomEntry::Revoke { user, at: now },
            lecture,
        });
        Ok(())
    }

    /// Revokes the staff a new staff list of `lecture` drops or gives another role: their
    /// tickets carry the old role, so they are taken out of the room and must get a new ticket
    /// (as a learner, if they bought the lecture; in their new role).
    pub async fn revoke_staff_changes(
        &self,
        lecture: &str,
        before: &[model::StaffMember],
        after: &[model::StaffMember],
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        for old in before {
            if !after.contains(old) {
                self.revoke(lecture, &old.account, now).await?;
            }
        }
        Ok(())
    }

    /// Why a verified room ticket still may not enter its lecture: its holder was removed
    /// without return (4104), or their right was taken away at or after the ticket was issued
    /// (4113). Asked at every `hello`, so neither depends on a room being open when it
    /// happened. When the records cannot be read, the client is asked to come back (4000):
    /// letting a ticket in unchecked would let a revoked one in.
    pub async fn entry_refusal(&self, ticket: &TicketClaims) -> Option<CloseCode> {
        let issued_at = UnixMillis(ticket.iat.saturating_mul(1000));
        match self
            .store
            .entry_bars(ticket.lec.as_str(), ticket.sub.as_str())
            .await
        {
            Ok(bars) if bars.banned => Some(CloseCode::Banned),
            Ok(bars) if bars.revoked_at.is_some_and(|at| issued_at <= at) => {
                Some(CloseCode::Revoked)
            }
            Ok(_) => None,
            Err(e) => {
                warn!(error = %e, "cannot read revocations and bans; the client is asked to retry");
                Some(CloseCode::ServerShutdown)
            }
        }
    }

    /// Revokes `user`'s place in `lecture` if, after a change to their purchases, seats or
    /// links, nothing admits them any more (someone who also holds their own paid purchase
    /// stays in when their company takes its seat back).
    pub async fn revoke_if_unentitled(
        &self,
        lecture: &str,
        user: &str,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let Some(record) = self.store.lecture(lecture).await? else {
            return Ok(());
        };
        let still_admitted = match self.admission(user, &record, now).await? {
            Ok(_) => true,
            Err(refusal) => refusal.keeps_the_right(),
        };
        if !still_admitted {
            self.revoke(lecture, user, now).await?;
        }
        Ok(())
    }

    /// Revokes everyone a purchase admitted: its buyer, or the individuals its seats went to.
    pub async fn revoke_holders(
        &self,
        purchase: &Purchase,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        self.revoke_if_unentitled(&purchase.lecture, &purchase.buyer, now)
            .await?;
        for allocation in self.store.allocations_of(&purchase.id).await? {
            // Also those beyond a lowered quantity: `admission` no longer counts their seat.
            self.revoke_if_unentitled(&purchase.lecture, &allocation.individual, now)
                .await?;
        }
        Ok(())
    }
}
