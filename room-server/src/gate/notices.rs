//! Who is told what about a lecture by e-mail: the learners a lecture admits, and the kinds of
//! notice the mail queue (`mail_claims`) holds. The node's mail sender reads and sends them;
//! the integration API records a cancellation's notices the moment the portal cancels, and the
//! sender fans them out to the learners.

use super::Gate;
use super::entitlement::Refusal;
use super::model::{Lecture, LectureStatus, Purchase};
use super::store::StoreError;
use protocol::{Role, UnixMillis};
use std::collections::BTreeSet;

/// What an e-mail to a learner is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoticeKind {
    /// The lecture is soon (by default the day before): title, start, doors, My page.
    Reminder,
    /// The lecture's archive can be watched.
    ArchiveReady,
    /// The lecture was cancelled.
    Cancelled,
}

impl NoticeKind {
    /// The kind as the queue stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Reminder => "reminder",
            NoticeKind::ArchiveReady => "archive",
            NoticeKind::Cancelled => "cancelled",
        }
    }

    /// The kind from its stored text.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "reminder" => NoticeKind::Reminder,
            "archive" => NoticeKind::ArchiveReady,
            "cancelled" => NoticeKind::Cancelled,
            _ => return None,
        })
    }
}

/// A learner a lecture admits, and where to write to them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// Their account.
    pub account: String,
    /// Their registered e-mail (their profile's, else their account's); none: not written to.
    pub email: Option<String>,
}

/// Whether an answer of the Enter button means the person holds a right to attend: admitted,
/// or refused only for the time or their profile (as [`Gate::revoke_if_unentitled`] counts).
fn holds_a_right(answer: &Result<super::entitlement::Admission, Refusal>) -> bool {
    match answer {
        Ok(admission) => admission.role == Role::Learner,
        Err(refusal) => refusal.keeps_the_right(),
    }
}

fn email_of(person: &super::Person) -> Option<String> {
    person
        .profile
        .email
        .clone()
        .or_else(|| person.account.as_ref().and_then(|a| a.email.clone()))
        .filter(|e| !e.trim().is_empty())
}

impl Gate {
    /// The learners `lecture` admits at `now` (a paid purchase of their own or an allocated
    /// corporate seat; not cancelled, refunded, unpaid, taken back or banned), by account. A
    /// cancelled lecture is judged as it stood before: who would have been admitted.
    pub async fn entitled_learners(
        &self,
        lecture: &Lecture,
        now: UnixMillis,
    ) -> Result<Vec<Recipient>, StoreError> {
        let mut lecture = lecture.clone();
        lecture.status = LectureStatus::Scheduled;
        let mut candidates = BTreeSet::new();
        for purchase in self.store.purchases_of_lecture(&lecture.id).await? {
            for allocation in self.store.allocations_of(&purchase.id).await? {
                candidates.insert(allocation.individual);
            }
            candidates.insert(purchase.buyer);
        }
        let staff_nicknames = self.staff_nicknames(&lecture).await?;
        let mut out = Vec::new();
        for account in candidates {
            if let Some(learner) = self
                .entitled(&account, &lecture, &staff_nicknames, now)
                .await?
            {
                out.push(learner);
            }
        }
        Ok(out)
    }

    /// `account` as a recipient of notices about `lecture` (judged as in
    /// [`Gate::entitled_learners`]), if the lecture admits them at `now`.
    pub async fn entitled_learner(
        &self,
        account: &str,
        lecture: &Lecture,
        now: UnixMillis,
    ) -> Result<Option<Recipient>, StoreError> {
        let mut lecture = lecture.clone();
        lecture.status = LectureStatus::Scheduled;
        let staff_nicknames = self.staff_nicknames(&lecture).await?;
        self.entitled(account, &lecture, &staff_nicknames, now)
            .await
    }

    async fn entitled(
        &self,
        account: &str,
        lecture: &Lecture,
        staff_nicknames: &[String],
        now: UnixMillis,
    ) -> Result<Option<Recipient>, StoreError> {
        if lecture.staff.iter().any(|s| s.account == account) {
            return Ok(None);
        }
        let person = self.person(account).await?;
        let answer = self.answer(account, &person, lecture, staff_nicknames, now);
        if !holds_a_right(&answer) {
            return Ok(None);
        }
        Ok(Some(Recipient {
            account: account.to_owned(),
            email: email_of(&person),
        }))
    }

    /// Where to write to `account`: their profile's e-mail, else their account's.
    pub async fn email_of(&self, account: &str) -> Result<Option<String>, StoreError> {
        Ok(email_of(&self.person(account).await?))
    }

    /// Records that the cancellation notice of `lecture` is to go to every learner it admitted
    /// who has an e-mail, when this node sends e-mails: one row, whatever the number of
    /// learners. The mail sender fans it out in bounded batches
    /// ([`Gate::judge_cancellation_notices`]); a refund that comes first has its holders
    /// judged before it ([`Gate::settle_cancellation_notices`]).
    pub(crate) async fn queue_cancellation_notices(
        &self,
        lecture: &str,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        if !self.mail_notices {
            return Ok(());
        }
        self.store.queue_cancellation(lecture, now).await?;
        self.mail_wake.notify_one();
        Ok(())
    }

    /// Judges `accounts` for the cancellation notice of `lecture` (as it stood before it was
    /// cancelled): each one it admits with an e-mail gets one queued, the others a row saying
    /// they get none, so nobody is judged twice. Returns how many were queued.
    pub async fn judge_cancellation_notices(
        &self,
        lecture: &Lecture,
        accounts: &[String],
        now: UnixMillis,
    ) -> Result<usize, StoreError> {
        let mut lecture = lecture.clone();
        lecture.status = LectureStatus::Scheduled;
        let staff_nicknames = self.staff_nicknames(&lecture).await?;
        let kind = NoticeKind::Cancelled.as_str();
        let mut queued = 0;
        for account in accounts {
            let learner = self
                .entitled(account, &lecture, &staff_nicknames, now)
                .await?;
            if learner.and_then(|l| l.email).is_some() {
                if self
                    .store
                    .queue_mail(&lecture.id, account, kind, now)
                    .await?
                {
                    queued += 1;
                }
            } else {
                self.store
                    .skip_mail(&lecture.id, account, kind, now)
                    .await?;
            }
        }
        Ok(queued)
    }

    /// Before a change to `purchase` takes places away: when its lecture's cancellation is
    /// still being fanned out, its holders are judged now, as they stand before the change,
    /// so the notice reaches whoever the lecture admitted when it was cancelled.
    pub(crate) async fn settle_cancellation_notices(
        &self,
        purchase: &Purchase,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        if !self.store.cancellation_pending(&purchase.lecture).await? {
            return Ok(());
        }
        let Some(lecture) = self.store.lecture(&purchase.lecture).await? else {
            return Ok(());
        };
        let mut accounts = vec![purchase.buyer.clone()];
        for allocation in self.store.allocations_of(&purchase.id).await? {
            accounts.push(allocation.individual);
        }
        self.judge_cancellation_notices(&lecture, &accounts, now)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use axum::body::Body;
    use std::sync::Arc;
    use tower::ServiceExt;

    const KEY: &str = "notices-test-integration-key-0123456789abcdef";

    /// A gate that sends e-mails (no sender runs: the test does the sender's part), on a
    /// SQLite file of its own.
    async fn gate() -> Arc<Gate> {
        let dir = std::env::temp_dir().join(format!("room-notices-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder");
        let key =
            protocol::ticket::TicketKey::new(b"notices-test-ticket-key-0123456789abcdef".to_vec())
                .expect("a strong key");
        let mut config = crate::config::Config::new(key);
        config.database_url = format!("sqlite://{}/notices.db", dir.display());
        config.integration_api_key = Some(KEY.into());
        let mut settings = config.gate_settings();
        settings.mail_notices = true;
        Arc::new(
            Gate::start(settings, Arc::new(SystemClock))
                .await
                .expect("the gate starts"),
        )
    }

    async fn portal(gate: &Arc<Gate>, method: &str, path: &str, body: serde_json::Value) {
        let request = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("x-api-key", KEY)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("a request");
        let answer = super::super::router()
            .with_state(Arc::clone(gate))
            .oneshot(request)
            .await
            .expect("answers");
        assert!(
            answer.status().is_success(),
            "{method} {path}: {}",
            answer.status()
        );
    }

    #[tokio::test]
    async fn a_refund_right_after_a_cancellation_does_not_take_the_notice_away() {
        let gate = gate().await;
        let starts = gate.clock.now().plus_ms(7 * 24 * 3_600_000);
        let lecture = serde_json::json!({"title": "統計入門", "starts_at": starts.0,
            "ends_at": starts.0 + 5_400_000, "rows": 2, "cols": 2, "staff": []});
        portal(&gate, "PUT", "/api/v1/integration/lectures/off", lecture).await;
        for who in ["ken", "aya"] {
            portal(
                &gate,
                "PUT",
                &format!("/api/v1/integration/accounts/{who}"),
                serde_json::json!({"kind": "individual"}),
            )
            .await;
            portal(
                &gate,
                "PUT",
                &format!("/api/v1/integration/accounts/{who}/profile"),
                serde_json::json!({"nickname": who, "email": format!("{who}@example.jp")}),
            )
            .await;
            portal(&gate, "PUT", &format!("/api/v1/integration/purchases/off-{who}"),
                serde_json::json!({"buyer": who, "lecture": "off", "quantity": 1, "modality": "online",
                                   "payment_method": "card", "status": "paid"})).await;
        }
        portal(
            &gate,
            "POST",
            "/api/v1/integration/lectures/off/cancel",
            serde_json::json!({"reason": "講師急病のため"}),
        )
        .await;
        let store = &gate.store;
        // The cancellation is one row: nobody judged yet.
        assert!(store.cancellation_pending("off").await.expect("reads"));
        assert_eq!(
            store
                .mail_state("off", "ken", "cancelled")
                .await
                .expect("reads"),
            None
        );
        // Ken is refunded before the sender came by: he is judged first, as he stood.
        portal(
            &gate,
            "POST",
            "/api/v1/integration/purchases/off-ken/status",
            serde_json::json!({"status": "refunded"}),
        )
        .await;
        assert_eq!(
            store
                .mail_state("off", "ken", "cancelled")
                .await
                .expect("reads"),
            Some((super::super::store::MailState::Retry, 0))
        );
        // The sender's part: Aya is left, judged and queued; then nobody is.
        let left = store
            .unjudged_for_cancellation("off", 100)
            .await
            .expect("reads");
        assert_eq!(left, ["aya"]);
        let record = store
            .lecture("off")
            .await
            .expect("reads")
            .expect("the lecture");
        let queued = gate
            .judge_cancellation_notices(&record, &left, gate.clock.now())
            .await
            .expect("judges");
        assert_eq!(queued, 1);
        assert!(
            store
                .unjudged_for_cancellation("off", 100)
                .await
                .expect("reads")
                .is_empty()
        );
    }
}
