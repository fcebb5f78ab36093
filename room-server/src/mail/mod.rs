//! Learners' e-mails: the reminder before a lecture, "the archive is ready", and the
//! cancellation notice, sent through the SMTP server of `[mail]`.
//!
//! # Layout
//! - [`letter`]: what each e-mail says (pure).
//! - `smtp`: the SMTP transport and one message's delivery.
//! - this module: the sender task. It runs on every node that has `[mail]`, on its own task,
//!   so no room ever waits for it.
//!
//! The queue is the `mail_claims` table, one row per learner, lecture and kind. A round
//! queues what has become due (reminders of lectures starting within the lead time, archives
//! that became available, and the learners of lectures the portal cancelled, which the
//! integration API records as one row of the lecture's, a bounded batch a round), then sends
//! the due rows a few at a time. A row is claimed in the database before its message is sent and
//! marked sent after, so nodes sharing the database send each message once; a failed attempt
//! is due again after a doubling wait, up to `max_attempts`; a claim whose node died is taken
//! over when its lease runs out.

pub mod letter;
mod smtp;

use crate::clock::Clock;
use crate::config::MailSettings;
use crate::gate::Gate;
use crate::gate::model::{Lecture, LectureStatus};
use crate::gate::notices::NoticeKind;
use crate::gate::store::{DueMail, StoreError};
use futures_util::StreamExt;
use prometheus_client::metrics::counter::Counter;
use protocol::UnixMillis;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub use smtp::SmtpError;

/// Archives that became available longer ago than this are not announced: a node given
/// `[mail]` for the first time does not write about last year's lectures.
const ARCHIVE_NOTICE_WINDOW_MS: u64 = 3 * 24 * 3_600_000;
/// Due messages taken per round at most; the rest wait for the next.
const BATCH: u32 = 512;
/// Learners judged per round at most for the cancellation notices of cancelled lectures (a
/// cancellation is one row until then); a round that reached it is followed by another at once.
const FAN_OUT_BATCH: u32 = 500;

/// Why a round of the sender failed (it tries again at the next).
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the sender counts (`room_mail_*` on `/metrics`).
#[derive(Clone, Debug, Default)]
pub struct MailCounters {
    /// Messages the SMTP server took.
    pub sent: Counter,
    /// Messages given up (the last attempt failed, or the server refused them for good).
    pub failed: Counter,
    /// Failed attempts that will be tried again.
    pub retries: Counter,
    /// Rounds done (queue what became due, send what is due): the sender is alive.
    pub rounds: Counter,
}

/// What the sender needs of the node.
#[derive(Debug)]
pub struct MailParts {
    /// The records and who is entitled.
    pub gate: Arc<Gate>,
    /// The one source of the time.
    pub clock: Arc<dyn Clock>,
    /// `[mail]`.
    pub settings: MailSettings,
    /// Its counters.
    pub counters: MailCounters,
}

/// The sender.
#[derive(Debug)]
struct Sender {
    parts: MailParts,
    smtp: smtp::Smtp,
    /// When each lecture's learners were last queued a notice of each kind (clock ms), so a
    /// round does not read every learner of every lecture again.
    scanned: HashMap<(String, NoticeKind), UnixMillis>,
}

/// Starts the sender on its own task; it stops when `shutdown` is cancelled.
pub fn start(
    parts: MailParts,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, SmtpError> {
    let smtp = smtp::Smtp::new(&parts.settings)?;
    info!(
        host = %parts.settings.smtp_host,
        port = parts.settings.port(),
        tls = ?parts.settings.tls,
        "learners' e-mails go through this SMTP server"
    );
    let sender = Sender {
        parts,
        smtp,
        scanned: HashMap::new(),
    };
    Ok(tokio::spawn(sender.run(shutdown)))
}

impl Sender {
    async fn run(mut self, shutdown: CancellationToken) {
        let mut every =
            tokio::time::interval(Duration::from_secs(self.parts.settings.poll_interval_secs));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let gate = Arc::clone(&self.parts.gate);
        let mut more = false;
        loop {
            // A round that left work behind (a large cancellation, a full batch) is followed by
            // the next at once; otherwise the next waits for the interval or a new cancellation.
            if !more {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = every.tick() => {}
                    () = gate.mail_wake.notified() => {}
                }
            } else if shutdown.is_cancelled() {
                return;
            }
            more = match self.round().await {
                Ok(more) => more,
                Err(e) => {
                    warn!(error = %e, "mail: a round failed; trying again at the next");
                    false
                }
            };
            self.parts.counters.rounds.inc();
        }
    }

    /// Queues what became due, then sends what is due. Returns whether work was left for the
    /// next round (a batch was full).
    async fn round(&mut self) -> Result<bool, MailError> {
        let now = self.parts.clock.now();
        self.queue_due(now).await?;
        let fan_out_left = self.fan_out_cancellations(now).await?;
        let settings = &self.parts.settings;
        let due = self
            .parts
            .gate
            .store
            .due_mail(now, settings.max_attempts, BATCH)
            .await?;
        let full = due.len() >= BATCH as usize;
        let this = &*self;
        futures_util::stream::iter(due)
            .for_each_concurrent(settings.concurrency, |mail| async move {
                if let Err(e) = this.deliver(&mail).await {
                    warn!(error = %e, lecture = %mail.lecture, kind = %mail.kind, "mail: cannot record a delivery");
                }
            })
            .await;
        Ok(full || fan_out_left)
    }

    /// Judges up to [`FAN_OUT_BATCH`] learners of the lectures the portal cancelled for their
    /// cancellation notice (queued to the admitted with an e-mail). Several nodes may do it at
    /// once: a learner's row is written once. Returns whether learners are left.
    async fn fan_out_cancellations(&mut self, now: UnixMillis) -> Result<bool, MailError> {
        let gate = &self.parts.gate;
        let store = &gate.store;
        let mut budget = FAN_OUT_BATCH;
        for lecture in store.cancellations_to_fan_out(16).await? {
            if budget == 0 {
                return Ok(true);
            }
            let accounts = store.unjudged_for_cancellation(&lecture, budget).await?;
            let record = match store.lecture(&lecture).await? {
                Some(record) if !accounts.is_empty() => record,
                _ => {
                    store.cancellation_fanned_out(&lecture, now).await?;
                    debug!(%lecture, "mail: every learner judged for the cancellation notice");
                    continue;
                }
            };
            let queued = gate
                .judge_cancellation_notices(&record, &accounts, now)
                .await?;
            info!(%lecture, judged = accounts.len(), queued, "mail: cancellation notices queued");
            // At most `FAN_OUT_BATCH` accounts were asked for, so this fits.
            budget = budget.saturating_sub(u32::try_from(accounts.len()).unwrap_or(u32::MAX));
        }
        Ok(budget == 0)
    }

    /// Queues the reminder of every lecture starting within the lead time, and "the archive
    /// is ready" of every lecture whose archive just became available, to each learner it
    /// admits who has an e-mail.
    async fn queue_due(&mut self, now: UnixMillis) -> Result<(), MailError> {
        let store = &self.parts.gate.store;
        let lead_ms = u64::from(self.parts.settings.reminder_lead_hours) * 3_600_000;
        let reminders = store.lectures_due(now, now.plus_ms(lead_ms), false).await?;
        let archives = store
            .lectures_due(now.minus_ms(ARCHIVE_NOTICE_WINDOW_MS), now, true)
            .await?;
        self.scanned
            .retain(|_, at| now.0.saturating_sub(at.0) < ARCHIVE_NOTICE_WINDOW_MS);
        // A lecture due a notice has its learners looked up again this often, for those who
        // bought it since (the rows already queued stay as they are).
        let rescan_ms = self
            .parts
            .settings
            .rescan_interval_secs
            .saturating_mul(1000);
        let due = reminders
            .into_iter()
            .map(|l| (l, NoticeKind::Reminder))
            .chain(archives.into_iter().map(|l| (l, NoticeKind::ArchiveReady)));
        for (lecture, kind) in due {
            let key = (lecture, kind);
            if self
                .scanned
                .get(&key)
                .is_some_and(|at| now.0.saturating_sub(at.0) < rescan_ms)
            {
                continue;
            }
            let Some(record) = store.lecture(&key.0).await? else {
                continue;
            };
            let mut queued = 0_usize;
            for learner in self.parts.gate.entitled_learners(&record, now).await? {
                if learner.email.is_some()
                    && store
                        .queue_mail(&record.id, &learner.account, kind.as_str(), now)
                        .await?
                {
                    queued += 1;
                }
            }
            if queued > 0 {
                info!(lecture = %record.id, kind = kind.as_str(), queued, "mail: notices queued");
            }
            self.scanned.insert(key, now);
        }
        Ok(())
    }

    /// Claims one message and sends it: marked sent, due again later, or given up.
    async fn deliver(&self, mail: &DueMail) -> Result<(), StoreError> {
        let settings = &self.parts.settings;
        let store = &self.parts.gate.store;
        let now = self.parts.clock.now();
        // Longer than one attempt can take (at most four timeouts, see `smtp`), so a live
        // sender never loses its claim mid-send; a dead one's is taken over soon after.
        let lease_ms = settings.timeout_secs.saturating_mul(6_000);
        let (lecture, account, kind) = (&mail.lecture, &mail.account, &mail.kind);
        if !store
            .claim_mail(lecture, account, kind, now, lease_ms, settings.max_attempts)
            .await?
        {
            // Another node has it, or sent it in the meantime.
            return Ok(());
        }
        let attempt = mail.attempts.saturating_add(1);
        let outcome = match self.letter(mail, now).await? {
            Some((to, letter)) => self.smtp.send(&settings.from, &to, &letter).await,
            None => {
                debug!(%lecture, %account, %kind, "mail: no longer due; not sent");
                // Given up at once: zero attempts allowed.
                return store.mail_failed(lecture, account, kind, now, now, 0).await;
            }
        };
        let done = self.parts.clock.now();
        match outcome {
            Ok(()) => {
                store.mail_sent(lecture, account, kind, done).await?;
                self.parts.counters.sent.inc();
                debug!(%lecture, %account, %kind, "mail: sent");
            }
            Err(e) if e.is_permanent() || attempt >= settings.max_attempts => {
                store
                    .mail_failed(lecture, account, kind, done, done, 0)
                    .await?;
                self.parts.counters.failed.inc();
                warn!(%lecture, %kind, attempt, error = %e, "mail: given up");
            }
            Err(e) => {
                let wait = retry_wait(settings, attempt);
                store
                    .mail_failed(
                        lecture,
                        account,
                        kind,
                        done,
                        done.plus_ms(wait),
                        settings.max_attempts,
                    )
                    .await?;
                self.parts.counters.retries.inc();
                warn!(%lecture, %kind, attempt, retry_in_ms = wait, error = %e, "mail: not sent; will retry");
            }
        }
        Ok(())
    }

    /// The address and the letter of a claimed message, or none when it is no longer due: the
    /// lecture is gone or changed (a reminder after the start, a notice of a lecture cancelled
    /// since), the learner lost their right, or has no e-mail.
    async fn letter(
        &self,
        mail: &DueMail,
        now: UnixMillis,
    ) -> Result<Option<(String, letter::Letter)>, StoreError> {
        let gate = &self.parts.gate;
        let Some(kind) = NoticeKind::parse(&mail.kind) else {
            return Ok(None);
        };
        let Some(lecture) = gate.store.lecture(&mail.lecture).await? else {
            return Ok(None);
        };
        if !still_due(kind, &lecture, now) {
            return Ok(None);
        }
        let email = match kind {
            // The cancellation goes to whoever was admitted when it was queued: refunds follow.
            NoticeKind::Cancelled => gate.email_of(&mail.account).await?,
            NoticeKind::Reminder | NoticeKind::ArchiveReady => gate
                .entitled_learner(&mail.account, &lecture, now)
                .await?
                .and_then(|r| r.email),
        };
        let Some(email) = email else {
            return Ok(None);
        };
        let doors = lecture.starts_at.minus_ms(gate.timing.doors_open_before_ms);
        let my_page = format!("{}/lectures", self.parts.settings.base_url);
        Ok(Some((
            email,
            letter::compose(kind, &lecture, doors, &my_page),
        )))
    }
}

/// Whether a notice of `kind` about `lecture` still makes sense at `now`.
fn still_due(kind: NoticeKind, lecture: &Lecture, now: UnixMillis) -> bool {
    match kind {
        NoticeKind::Reminder => {
            lecture.status == LectureStatus::Scheduled && now < lecture.starts_at
        }
        NoticeKind::ArchiveReady => {
            lecture.status == LectureStatus::Scheduled
                && lecture.archive_available_at.is_some_and(|at| at <= now)
        }
        NoticeKind::Cancelled => lecture.status == LectureStatus::Cancelled,
    }
}

/// The wait after failed attempt number `attempt` (1 for the first): doubling from
/// `retry_first_secs` up to `retry_most_secs`, in milliseconds.
fn retry_wait(settings: &MailSettings, attempt: u32) -> u64 {
    let doublings = attempt.saturating_sub(1).min(30);
    settings
        .retry_first_secs
        .saturating_mul(1 << doublings)
        .min(settings.retry_most_secs)
        .saturating_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> MailSettings {
        crate::config::FileConfig::parse(
            r#"
            [mail]
            smtp_host = "127.0.0.1"
            from = "Lectures <lectures@example.jp>"
            base_url = "https://lectures.example.jp"
            retry_first_secs = 10
            retry_most_secs = 60
            "#,
        )
        .expect("parses")
        .mail
        .expect("a [mail] table")
    }

    #[test]
    fn retries_wait_doubling_up_to_the_longest() {
        let s = settings();
        let waits: Vec<u64> = (1..=5).map(|a| retry_wait(&s, a)).collect();
        assert_eq!(waits, [10_000, 20_000, 40_000, 60_000, 60_000]);
        assert_eq!(retry_wait(&s, u32::MAX), 60_000);
    }
}
