//! The gate's records in SQL: a SQLite file by default, PostgreSQL when nodes share one.
//!
//! One SQL text serves both through sqlx's `Any` driver (`$N` placeholders work in both; times
//! are BIGINT milliseconds; statuses are text). Migrations are embedded in the binary and run
//! at connect with sqlx's migrator (checksummed; PostgreSQL takes an advisory lock so several
//! nodes starting at once migrate once).

use super::model::{
    Account, AccountKind, Allocation, AttendanceRecord, Lecture, LectureStatus, Modality,
    PaymentMethod, Profile, Purchase, PurchaseStatus, StaffMember, StaffRole,
};
use protocol::{Seat, UnixMillis};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::{AnyPool, Row};
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

/// A store failure: the database is unreachable or holds something unreadable.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed a query.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value is not one the code knows (edited by hand, or from a newer version).
    #[error("unreadable stored value: {0}")]
    Corrupt(String),
}

type Result<T> = std::result::Result<T, StoreError>;

/// The migrations, embedded so a deployed binary needs no files beside it.
#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<
        Box<
            dyn Future<Output = std::result::Result<Vec<Migration>, sqlx::error::BoxDynError>>
                + Send,
        >,
    > {
        Box::pin(async {
            Ok(vec![
                Migration::new(
                    1,
                    Cow::Borrowed("gate"),
                    MigrationType::Simple,
                    Cow::Borrowed(include_str!("../../migrations/0001_gate.sql")),
                    false,
                ),
                Migration::new(
                    2,
                    Cow::Borrowed("revocations bans grants"),
                    MigrationType::Simple,
                    Cow::Borrowed(include_str!(
                        "../../migrations/0002_revocations_bans_grants.sql"
                    )),
                    false,
                ),
                Migration::new(
                    3,
                    Cow::Borrowed("lecture started"),
                    MigrationType::Simple,
                    Cow::Borrowed(include_str!("../../migrations/0003_lecture_started.sql")),
                    false,
                ),
                Migration::new(
                    4,
                    Cow::Borrowed("mail"),
                    MigrationType::Simple,
                    Cow::Borrowed(include_str!("../../migrations/0004_mail.sql")),
                    false,
                ),
                Migration::new(
                    5,
                    Cow::Borrowed("archive"),
                    MigrationType::Simple,
                    Cow::Borrowed(include_str!("../../migrations/0005_archive.sql")),
                    false,
                ),
                Migration::new(
                    6,
                    Cow::Borrowed("archive withdrawn"),
                    MigrationType::Simple,
                    Cow::Borrowed(include_str!("../../migrations/0006_archive_withdrawn.sql")),
                    false,
                ),
            ])
        })
    }
}

// ----- mail claims -----

/// The account of a lecture's own row in `mail_claims` (its cancellation still to be fanned
/// out to the learners): no account has an empty id.
const WHOLE_LECTURE: &str = "";

impl Store {
    /// Claims the right to send `kind` to `account` about `lecture` now, for `lease_ms`: true
    /// for exactly one caller among nodes sharing the database. A claim is taken when nobody
    /// has one yet, when the holder's lease ran out (it crashed), or when a failed attempt is
    /// due again and fewer than `max_attempts` were made.
    pub async fn claim_mail(
        &self,
        lecture: &str,
        account: &str,
        kind: &str,
        now: UnixMillis,
        lease_ms: u64,
        max_attempts: u32,
    ) -> Result<bool> {
        let until = ms(UnixMillis(now.0.saturating_add(lease_ms)));
        let inserted = sqlx::query(
            "INSERT INTO mail_claims (lecture_id, account_id, kind, state, attempts, lease_until, next_at, updated_at) \
             VALUES ($1, $2, $3, 'sending', 1, $4, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(lecture)
        .bind(account)
        .bind(kind)
        .bind(until)
        .bind(ms(now))
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(true);
        }
        // One statement: the database lets one node's update through and re-checks the
        // condition for the other, which then changes nothing.
        let taken = sqlx::query(
            "UPDATE mail_claims SET state = 'sending', attempts = attempts + 1, lease_until = $4, updated_at = $5 \
             WHERE lecture_id = $1 AND account_id = $2 AND kind = $3 AND attempts < $6 \
             AND ((state = 'sending' AND lease_until <= $5) OR (state = 'retry' AND next_at <= $5))",
        )
        .bind(lecture)
        .bind(account)
        .bind(kind)
        .bind(until)
        .bind(ms(now))
        .bind(i64::from(max_attempts))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    /// Records that the claimed message was delivered.
    pub async fn mail_sent(
        &self,
        lecture: &str,
        account: &str,
        kind: &str,
        now: UnixMillis,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE mail_claims SET state = 'sent', updated_at = $4 \
             WHERE lecture_id = $1 AND account_id = $2 AND kind = $3",
        )
        .bind(lecture)
        .bind(account)
        .bind(kind)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a failed attempt: due again at `retry_at`, or given up when it was the
    /// `max_attempts`th.
    pub async fn mail_failed(
        &self,
        lecture: &str,
        account: &str,
        kind: &str,
        now: UnixMillis,
        retry_at: UnixMillis,
        max_attempts: u32,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE mail_claims SET state = CASE WHEN attempts < $6 THEN 'retry' ELSE 'failed' END, \
             next_at = $5, updated_at = $4 \
             WHERE lecture_id = $1 AND account_id = $2 AND kind = $3",
        )
        .bind(lecture)
        .bind(account)
        .bind(kind)
        .bind(ms(now))
        .bind(ms(retry_at))
        .bind(i64::from(max_attempts))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Where a message stands and how many attempts were made, if it was ever claimed.
    pub async fn mail_state(
        &self,
        lecture: &str,
        account: &str,
        kind: &str,
    ) -> Result<Option<(MailState, u32)>> {
        let Some(row) = sqlx::query(
            "SELECT state, attempts FROM mail_claims WHERE lecture_id = $1 AND account_id = $2 AND kind = $3",
        )
        .bind(lecture)
        .bind(account)
        .bind(kind)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let state = text_of(&row, "state", MailState::parse)?;
        let attempts: i64 = row.try_get("attempts")?;
        Ok(Some((state, u32::try_from(attempts).unwrap_or(0))))
    }

    /// Puts a message in the queue, due now, unless one of its kind to this learner about this
    /// lecture is queued, sent or given up already. Returns whether it was new.
    pub async fn queue_mail(
        &self,
        lecture: &str,
        account: &str,
        kind: &str,
        now: UnixMillis,
    ) -> Result<bool> {
        self.insert_claim(lecture, account, kind, "retry", now)
            .await
    }

    /// A row of `kind` about `lecture` for `account` in `state`, unless one exists already.
    /// Returns whether it was new.
    async fn insert_claim(
        &self,
        lecture: &str,
        account: &str,
        kind: &str,
        state: &str,
        now: UnixMillis,
    ) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO mail_claims (lecture_id, account_id, kind, state, attempts, lease_until, next_at, updated_at) \
             VALUES ($1, $2, $3, $5, 0, 0, $4, $4) ON CONFLICT DO NOTHING",
        )
        .bind(lecture)
        .bind(account)
        .bind(kind)
        .bind(ms(now))
        .bind(state)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// Records that the cancellation notices of `lecture` are to be sent: one row (the
    /// lecture's, with no account), which the mail sender fans out to the learners in bounded
    /// batches ([`Store::unjudged_for_cancellation`]). Returns whether it was new.
    pub async fn queue_cancellation(&self, lecture: &str, now: UnixMillis) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO mail_claims (lecture_id, account_id, kind, state, attempts, lease_until, next_at, updated_at) \
             VALUES ($1, $2, 'cancelled', 'fanout', 0, 0, $3, $3) ON CONFLICT DO NOTHING",
        )
        .bind(lecture)
        .bind(WHOLE_LECTURE)
        .bind(ms(now))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// Up to `limit` cancelled lectures whose notices are still being fanned out, oldest first.
    pub async fn cancellations_to_fan_out(&self, limit: u32) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT lecture_id FROM mail_claims WHERE account_id = $1 AND kind = 'cancelled' AND state = 'fanout' \
             ORDER BY next_at LIMIT $2",
        )
        .bind(WHOLE_LECTURE)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Whether the cancellation notices of `lecture` are still being fanned out.
    pub async fn cancellation_pending(&self, lecture: &str) -> Result<bool> {
        Ok(sqlx::query(
            "SELECT 1 FROM mail_claims WHERE lecture_id = $1 AND account_id = $2 AND kind = 'cancelled' AND state = 'fanout'",
        )
        .bind(lecture)
        .bind(WHOLE_LECTURE)
        .fetch_optional(&self.pool)
        .await?
        .is_some())
    }

    /// Up to `limit` people who hold or held a place at `lecture` (buyers of its purchases and
    /// holders of their allocated seats) and were not yet judged for its cancellation notice
    /// (no `cancelled` row of theirs), in account order.
    pub async fn unjudged_for_cancellation(
        &self,
        lecture: &str,
        limit: u32,
    ) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT account FROM ( \
                 SELECT buyer_id AS account FROM purchases WHERE lecture_id = $1 \
                 UNION \
                 SELECT a.individual_id AS account FROM seat_allocations a \
                 JOIN purchases p ON p.id = a.purchase_id WHERE p.lecture_id = $1 \
             ) people \
             WHERE NOT EXISTS (SELECT 1 FROM mail_claims m \
                 WHERE m.lecture_id = $1 AND m.account_id = people.account AND m.kind = 'cancelled') \
             ORDER BY account LIMIT $2",
        )
        .bind(lecture)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records that `account` gets no `kind` message about `lecture` (judged: not admitted, or
    /// no e-mail), unless a row of theirs exists already.
    pub async fn skip_mail(
        &self,
        lecture: &str,
        account: &str,
        kind: &str,
        now: UnixMillis,
    ) -> Result<bool> {
        self.insert_claim(lecture, account, kind, "skipped", now)
            .await
    }

    /// Records that every learner of `lecture` was judged for its cancellation notice.
    pub async fn cancellation_fanned_out(&self, lecture: &str, now: UnixMillis) -> Result<()> {
        sqlx::query(
            "UPDATE mail_claims SET state = 'done', updated_at = $3 \
             WHERE lecture_id = $1 AND account_id = $2 AND kind = 'cancelled' AND state = 'fanout'",
        )
        .bind(lecture)
        .bind(WHOLE_LECTURE)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Up to `limit` messages a sender may claim at `now` (see [`Store::claim_mail`]): queued or
    /// failed ones that are due, and those whose sender's lease ran out. Oldest first.
    pub async fn due_mail(
        &self,
        now: UnixMillis,
        max_attempts: u32,
        limit: u32,
    ) -> Result<Vec<DueMail>> {
        sqlx::query(
            "SELECT lecture_id, account_id, kind, attempts FROM mail_claims \
             WHERE attempts < $2 AND ((state = 'retry' AND next_at <= $1) OR (state = 'sending' AND lease_until <= $1)) \
             ORDER BY next_at LIMIT $3",
        )
        .bind(ms(now))
        .bind(i64::from(max_attempts))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(DueMail {
                lecture: r.try_get("lecture_id")?,
                account: r.try_get("account_id")?,
                kind: r.try_get("kind")?,
                attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(0),
            })
        })
        .collect()
    }

    /// The ids of scheduled lectures starting in `(from, to]`, and of those whose archive
    /// became available in `(from, to]` (and is not withdrawn) when `archive` is set.
    pub async fn lectures_due(
        &self,
        from: UnixMillis,
        to: UnixMillis,
        archive: bool,
    ) -> Result<Vec<String>> {
        let (column, withdrawn) = if archive {
            ("archive_available_at", " AND archive_withdrawn_at IS NULL")
        } else {
            ("starts_at", "")
        };
        let sql = format!(
            "SELECT id FROM lectures WHERE status = 'scheduled' AND {column} > $1 AND {column} <= $2{withdrawn} ORDER BY id"
        );
        Ok(sqlx::query_scalar(&sql)
            .bind(ms(from))
            .bind(ms(to))
            .fetch_all(&self.pool)
            .await?)
    }

    /// Every purchase of `lecture` (individual and corporate, whatever its status).
    pub async fn purchases_of_lecture(&self, lecture: &str) -> Result<Vec<Purchase>> {
        let sql = format!(
            "SELECT {} FROM purchases WHERE lecture_id = $1 ORDER BY id",
            Self::PURCHASE_COLUMNS
        );
        sqlx::query(&sql)
            .bind(lecture)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(Self::purchase_of)
            .collect()
    }
}

fn ms(t: UnixMillis) -> i64 {
    i64::try_from(t.0).unwrap_or(i64::MAX)
}

fn time(v: i64) -> UnixMillis {
    UnixMillis(u64::try_from(v).unwrap_or(0))
}

fn text_of<T>(row: &AnyRow, col: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    let s: String = row.try_get(col)?;
    parse(&s).ok_or_else(|| StoreError::Corrupt(format!("{col} = {s:?}")))
}

/// The gate's database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    /// SQLite, where one statement that writes holds the database's write lock from its first
    /// read (so a count-and-insert in one statement is atomic); PostgreSQL needs a row lock.
    sqlite: bool,
}

/// What giving a seat did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocated {
    /// The seat is theirs now.
    Added,
    /// They already held a seat of this purchase.
    AlreadyHeld,
    /// Every seat bought is held by someone else.
    NoSeatsLeft,
}

/// A corporate seat an individual holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldSeat {
    /// The allocation.
    pub allocation: Allocation,
    /// The purchase the seat is of.
    pub purchase: Purchase,
    /// Whether the seat is among the first `quantity` allocated of its purchase: a seat beyond
    /// what was bought (the portal lowered the quantity) admits nobody.
    pub within_quantity: bool,
}

/// Why someone may not enter a lecture whatever their ticket says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EntryBars {
    /// Their right was taken away at this time: tickets issued at or before it are refused.
    pub revoked_at: Option<UnixMillis>,
    /// Staff removed them without return.
    pub banned: bool,
}

/// A message a sender may claim (see [`Store::due_mail`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueMail {
    /// The lecture it is about.
    pub lecture: String,
    /// The learner it goes to.
    pub account: String,
    /// `reminder`, `archive` or `cancelled`.
    pub kind: String,
    /// Attempts made so far.
    pub attempts: u32,
}

/// Where one e-mail to one learner about one lecture stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailState {
    /// A node is sending it until its lease ends.
    Sending,
    /// The last attempt failed; due again later.
    Retry,
    /// Delivered to the SMTP server.
    Sent,
    /// Given up after the last allowed attempt.
    Failed,
    /// Not to be sent: the learner was judged not to get it (not admitted, or no e-mail).
    Skipped,
}

impl MailState {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sending" => Self::Sending,
            "retry" => Self::Retry,
            "sent" => Self::Sent,
            "failed" => Self::Failed,
            "skipped" => Self::Skipped,
            _ => return None,
        })
    }
}

impl Store {
    /// Connects to `url` (`sqlite://path` or `postgres://…`), creating a SQLite file if it is
    /// missing, and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let url = if sqlite && !url.contains("mode=") {
            format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
        } else {
            url.to_owned()
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 4 } else { 8 })
            .connect(&url)
            .await?;
        if sqlite {
            // Readers do not wait for the writer.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        Migrator::new(Embedded).await?.run(&pool).await?;
        Ok(Self { pool, sqlite })
    }

    // ----- lectures -----

    /// Creates or replaces a lecture and its staff list.
    pub async fn upsert_lecture(&self, l: &Lecture, now: UnixMillis) -> Result<()> {
        let emotions =
            serde_json::to_string(&l.emotions).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO lectures (id, title, starts_at, ends_at, seat_rows, seat_cols, emotions,
                                   archive_available_at, status, cancel_reason, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, starts_at = excluded.starts_at,
                ends_at = excluded.ends_at, seat_rows = excluded.seat_rows, seat_cols = excluded.seat_cols,
                emotions = excluded.emotions, archive_available_at = excluded.archive_available_at,
                status = excluded.status, cancel_reason = excluded.cancel_reason,
                updated_at = excluded.updated_at",
        )
        .bind(&l.id)
        .bind(&l.title)
        .bind(ms(l.starts_at))
        .bind(ms(l.ends_at))
        .bind(i64::from(l.rows))
        .bind(i64::from(l.cols))
        .bind(emotions)
        .bind(l.archive_available_at.map(ms))
        .bind(l.status.as_str())
        .bind(l.cancel_reason.clone())
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM lecture_staff WHERE lecture_id = $1")
            .bind(&l.id)
            .execute(&mut *tx)
            .await?;
        for s in &l.staff {
            sqlx::query(
                "INSERT INTO lecture_staff (lecture_id, account_id, role) VALUES ($1, $2, $3)
                 ON CONFLICT (lecture_id, account_id) DO UPDATE SET role = excluded.role",
            )
            .bind(&l.id)
            .bind(&s.account)
            .bind(s.role.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The lecture with this id.
    pub async fn lecture(&self, id: &str) -> Result<Option<Lecture>> {
        let Some(row) = sqlx::query("SELECT * FROM lectures WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let staff = sqlx::query(
            "SELECT account_id, role FROM lecture_staff WHERE lecture_id = $1 ORDER BY account_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(StaffMember {
                account: r.try_get("account_id")?,
                role: text_of(r, "role", StaffRole::parse)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let emotions: String = row.try_get("emotions")?;
        Ok(Some(Lecture {
            id: row.try_get("id")?,
            title: row.try_get("title")?,
            starts_at: time(row.try_get("starts_at")?),
            ends_at: time(row.try_get("ends_at")?),
            rows: u16::try_from(row.try_get::<i64, _>("seat_rows")?).unwrap_or(0),
            cols: u16::try_from(row.try_get::<i64, _>("seat_cols")?).unwrap_or(0),
            emotions: serde_json::from_str(&emotions)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            archive_available_at: row
                .try_get::<Option<i64>, _>("archive_available_at")?
                .map(time),
            status: text_of(&row, "status", LectureStatus::parse)?,
            cancel_reason: row.try_get("cancel_reason")?,
            started_at: row.try_get::<Option<i64>, _>("started_at")?.map(time),
            ended_at: row.try_get::<Option<i64>, _>("ended_at")?.map(time),
            staff,
        }))
    }

    /// Marks a lecture cancelled. Returns whether it exists.
    pub async fn cancel_lecture(&self, id: &str, reason: &str, now: UnixMillis) -> Result<bool> {
        let done = sqlx::query("UPDATE lectures SET status = 'cancelled', cancel_reason = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(reason)
            .bind(ms(now))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records that the instructor started a lecture's delivery (first start wins).
    pub async fn mark_started(&self, id: &str, at: UnixMillis) -> Result<()> {
        sqlx::query("UPDATE lectures SET started_at = $2 WHERE id = $1 AND started_at IS NULL")
            .bind(id)
            .bind(ms(at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records that a lecture's room ended (first end wins).
    pub async fn mark_ended(&self, id: &str, at: UnixMillis) -> Result<()> {
        sqlx::query("UPDATE lectures SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL")
            .bind(id)
            .bind(ms(at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// When `lecture`'s archive expires, as the portal set it (none: not set, or no such
    /// lecture).
    pub async fn archive_expires_at(&self, lecture: &str) -> Result<Option<UnixMillis>> {
        let row = sqlx::query("SELECT archive_expires_at FROM lectures WHERE id = $1")
            .bind(lecture)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => row
                .try_get::<Option<i64>, _>("archive_expires_at")?
                .map(time),
            None => None,
        })
    }

    /// Sets (or clears) when `lecture`'s archive expires; `false`: no such lecture.
    pub async fn set_archive_expires_at(
        &self,
        lecture: &str,
        at: Option<UnixMillis>,
    ) -> Result<bool> {
        let done = sqlx::query("UPDATE lectures SET archive_expires_at = $2 WHERE id = $1")
            .bind(lecture)
            .bind(at.map(ms))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// When the portal withdrew `lecture`'s archive (none: not withdrawn, or no such lecture).
    pub async fn archive_withdrawn_at(&self, lecture: &str) -> Result<Option<UnixMillis>> {
        let row = sqlx::query("SELECT archive_withdrawn_at FROM lectures WHERE id = $1")
            .bind(lecture)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row) => row
                .try_get::<Option<i64>, _>("archive_withdrawn_at")?
                .map(time),
            None => None,
        })
    }

    /// Withdraws `lecture`'s archive at `at` (none: puts it back); `false`: no such lecture.
    pub async fn set_archive_withdrawn_at(
        &self,
        lecture: &str,
        at: Option<UnixMillis>,
    ) -> Result<bool> {
        let done = sqlx::query("UPDATE lectures SET archive_withdrawn_at = $2 WHERE id = $1")
            .bind(lecture)
            .bind(at.map(ms))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Sets (or clears) when `lecture`'s archive may be watched; `false`: no such lecture.
    pub async fn set_archive_available_at(
        &self,
        lecture: &str,
        at: Option<UnixMillis>,
    ) -> Result<bool> {
        let done = sqlx::query("UPDATE lectures SET archive_available_at = $2 WHERE id = $1")
            .bind(lecture)
            .bind(at.map(ms))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Forgets a lecture's start and end (the demo reopens its lecture on every start).
    pub async fn reopen(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE lectures SET started_at = NULL, ended_at = NULL WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Lectures where `account` is staff, with the role.
    pub async fn staff_lectures(&self, account: &str) -> Result<Vec<(String, StaffRole)>> {
        sqlx::query("SELECT lecture_id, role FROM lecture_staff WHERE account_id = $1")
            .bind(account)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("lecture_id")?,
                    text_of(r, "role", StaffRole::parse)?,
                ))
            })
            .collect()
    }

    // ----- accounts, links, profiles -----

    /// Creates or replaces an account.
    pub async fn upsert_account(&self, a: &Account, now: UnixMillis) -> Result<()> {
        sqlx::query(
            "INSERT INTO accounts (id, kind, email, name, updated_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, email = excluded.email,
                name = excluded.name, updated_at = excluded.updated_at",
        )
        .bind(&a.id)
        .bind(a.kind.as_str())
        .bind(a.email.clone())
        .bind(a.name.clone())
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    fn account_of(row: &AnyRow) -> Result<Account> {
        Ok(Account {
            id: row.try_get("id")?,
            kind: text_of(row, "kind", AccountKind::parse)?,
            email: row.try_get("email")?,
            name: row.try_get("name")?,
        })
    }

    /// The account with this id.
    pub async fn account(&self, id: &str) -> Result<Option<Account>> {
        let row = sqlx::query("SELECT id, kind, email, name FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::account_of).transpose()
    }

    /// The company (corporate or corporate group) registered with this e-mail.
    pub async fn company_by_email(&self, email: &str) -> Result<Option<Account>> {
        let row = sqlx::query(
            "SELECT id, kind, email, name FROM accounts WHERE lower(email) = lower($1) AND kind <> 'individual'
             ORDER BY id LIMIT 1",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(Self::account_of).transpose()
    }

    /// Links an individual to a company (idempotent).
    pub async fn link(&self, individual: &str, company: &str, now: UnixMillis) -> Result<()> {
        sqlx::query(
            "INSERT INTO corporate_links (individual_id, corporate_id, linked_at) VALUES ($1, $2, $3)
             ON CONFLICT (individual_id, corporate_id) DO NOTHING",
        )
        .bind(individual)
        .bind(company)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Unlinks an individual from a company. Returns whether they were linked.
    pub async fn unlink(&self, individual: &str, company: &str) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM corporate_links WHERE individual_id = $1 AND corporate_id = $2",
        )
        .bind(individual)
        .bind(company)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The companies an individual is linked to.
    pub async fn companies_of(&self, individual: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT corporate_id FROM corporate_links WHERE individual_id = $1 ORDER BY corporate_id")
            .bind(individual)
            .fetch_all(&self.pool)
            .await?)
    }

    /// The individuals linked to a company, with their profile and when they linked.
    pub async fn members_of(&self, company: &str) -> Result<Vec<(String, Profile, UnixMillis)>> {
        sqlx::query(
            "SELECT l.individual_id, l.linked_at, p.nickname, p.email FROM corporate_links l
             LEFT JOIN profiles p ON p.account_id = l.individual_id
             WHERE l.corporate_id = $1 ORDER BY l.individual_id",
        )
        .bind(company)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            let profile = Profile {
                nickname: r.try_get("nickname")?,
                email: r.try_get("email")?,
            };
            Ok((
                r.try_get("individual_id")?,
                profile,
                time(r.try_get("linked_at")?),
            ))
        })
        .collect()
    }

    /// An account's attendee profile (empty when never set).
    pub async fn profile(&self, account: &str) -> Result<Profile> {
        let row = sqlx::query("SELECT nickname, email FROM profiles WHERE account_id = $1")
            .bind(account)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Profile {
                nickname: r.try_get("nickname")?,
                email: r.try_get("email")?,
            },
            None => Profile::default(),
        })
    }

    /// Sets an account's attendee profile.
    pub async fn set_profile(
        &self,
        account: &str,
        profile: &Profile,
        now: UnixMillis,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO profiles (account_id, nickname, email, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (account_id) DO UPDATE SET nickname = excluded.nickname, email = excluded.email,
                updated_at = excluded.updated_at",
        )
        .bind(account)
        .bind(profile.nickname.clone())
        .bind(profile.email.clone())
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ----- purchases and allocations -----

    fn purchase_of(row: &AnyRow) -> Result<Purchase> {
        Ok(Purchase {
            id: row.try_get("id")?,
            buyer: row.try_get("buyer_id")?,
            lecture: row.try_get("lecture_id")?,
            quantity: u32::try_from(row.try_get::<i64, _>("quantity")?).unwrap_or(0),
            modality: text_of(row, "modality", Modality::parse)?,
            payment_method: text_of(row, "payment_method", PaymentMethod::parse)?,
            status: text_of(row, "status", PurchaseStatus::parse)?,
        })
    }

    const PURCHASE_COLUMNS: &'static str =
        "id, buyer_id, lecture_id, quantity, modality, payment_method, status";

    /// Creates or replaces a purchase; returns what it was before.
    pub async fn upsert_purchase(&self, p: &Purchase, now: UnixMillis) -> Result<Option<Purchase>> {
        let before = self.purchase(&p.id).await?;
        sqlx::query(
            "INSERT INTO purchases (id, buyer_id, lecture_id, quantity, modality, payment_method, status, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id) DO UPDATE SET buyer_id = excluded.buyer_id, lecture_id = excluded.lecture_id,
                quantity = excluded.quantity, modality = excluded.modality,
                payment_method = excluded.payment_method, status = excluded.status,
                updated_at = excluded.updated_at",
        )
        .bind(&p.id)
        .bind(&p.buyer)
        .bind(&p.lecture)
        .bind(i64::from(p.quantity))
        .bind(p.modality.as_str())
        .bind(p.payment_method.as_str())
        .bind(p.status.as_str())
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(before)
    }

    /// The purchase with this id.
    pub async fn purchase(&self, id: &str) -> Result<Option<Purchase>> {
        let sql = format!(
            "SELECT {} FROM purchases WHERE id = $1",
            Self::PURCHASE_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::purchase_of).transpose()
    }

    /// Every purchase made by `buyer`.
    pub async fn purchases_by(&self, buyer: &str) -> Result<Vec<Purchase>> {
        let sql = format!(
            "SELECT {} FROM purchases WHERE buyer_id = $1 ORDER BY id",
            Self::PURCHASE_COLUMNS
        );
        sqlx::query(&sql)
            .bind(buyer)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(Self::purchase_of)
            .collect()
    }

    /// The corporate seats `individual` holds, with their purchases. A seat's place among its
    /// purchase's allocations (by time, then id) says whether it is within the quantity bought.
    pub async fn allocated_to(&self, individual: &str) -> Result<Vec<HeldSeat>> {
        let sql = "SELECT a.allocated_at, p.id, p.buyer_id, p.lecture_id, p.quantity, p.modality, p.payment_method,
                          p.status,
                          (SELECT count(*) FROM seat_allocations b
                           WHERE b.purchase_id = a.purchase_id
                             AND (b.allocated_at < a.allocated_at
                                  OR (b.allocated_at = a.allocated_at AND b.individual_id < a.individual_id)))
                          AS ahead
                   FROM seat_allocations a JOIN purchases p ON p.id = a.purchase_id
                   WHERE a.individual_id = $1 ORDER BY p.id";
        sqlx::query(sql)
            .bind(individual)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                let purchase = Self::purchase_of(r)?;
                let ahead: i64 = r.try_get("ahead")?;
                let allocation = Allocation {
                    purchase: purchase.id.clone(),
                    individual: individual.to_owned(),
                    allocated_at: time(r.try_get("allocated_at")?),
                };
                Ok(HeldSeat {
                    allocation,
                    within_quantity: ahead < i64::from(purchase.quantity),
                    purchase,
                })
            })
            .collect()
    }

    /// The allocations of a purchase.
    pub async fn allocations_of(&self, purchase: &str) -> Result<Vec<Allocation>> {
        sqlx::query(
            "SELECT individual_id, allocated_at FROM seat_allocations WHERE purchase_id = $1 ORDER BY individual_id",
        )
        .bind(purchase)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(Allocation {
                purchase: purchase.to_owned(),
                individual: r.try_get("individual_id")?,
                allocated_at: time(r.try_get("allocated_at")?),
            })
        })
        .collect()
    }

    /// Gives a seat of `purchase` to `individual` if one is left (idempotent), counting the
    /// seats held and adding this one atomically: concurrent calls never give more seats than
    /// the purchase's quantity.
    ///
    /// SQLite: the count and the insert are one statement, and a statement that writes takes
    /// the database's write lock before it reads anything, so no other writer runs between
    /// them. PostgreSQL: under READ COMMITTED two such statements would both count the same
    /// snapshot, so the purchase's row is locked first (`FOR UPDATE`); the insert, a new
    /// statement, then counts what the lock's previous holder committed.
    pub async fn allocate(
        &self,
        purchase: &str,
        individual: &str,
        now: UnixMillis,
    ) -> Result<Allocated> {
        let mut tx = self.pool.begin().await?;
        if !self.sqlite {
            sqlx::query("SELECT id FROM purchases WHERE id = $1 FOR UPDATE")
                .bind(purchase)
                .fetch_optional(&mut *tx)
                .await?;
        }
        let added = sqlx::query(
            "INSERT INTO seat_allocations (purchase_id, individual_id, allocated_at)
             SELECT $1, $2, $3
             WHERE (SELECT count(*) FROM seat_allocations WHERE purchase_id = $1)
                   < (SELECT quantity FROM purchases WHERE id = $1)
             ON CONFLICT (purchase_id, individual_id) DO NOTHING",
        )
        .bind(purchase)
        .bind(individual)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        let outcome = if added {
            sqlx::query(
                "INSERT INTO seat_grants (purchase_id, individual_id, corporate_id, lecture_id, granted_at)
                 SELECT id, $2, buyer_id, lecture_id, $3 FROM purchases WHERE id = $1",
            )
            .bind(purchase)
            .bind(individual)
            .bind(ms(now))
            .execute(&mut *tx)
            .await?;
            Allocated::Added
        } else {
            let held = sqlx::query(
                "SELECT 1 AS held FROM seat_allocations WHERE purchase_id = $1 AND individual_id = $2",
            )
            .bind(purchase)
            .bind(individual)
            .fetch_optional(&mut *tx)
            .await?;
            match held {
                Some(_) => Allocated::AlreadyHeld,
                None => Allocated::NoSeatsLeft,
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Takes a seat back (its past stays in the seat history). Returns whether it was allocated.
    pub async fn deallocate(
        &self,
        purchase: &str,
        individual: &str,
        now: UnixMillis,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "DELETE FROM seat_allocations WHERE purchase_id = $1 AND individual_id = $2",
        )
        .bind(purchase)
        .bind(individual)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE seat_grants SET released_at = $3
             WHERE purchase_id = $1 AND individual_id = $2 AND released_at IS NULL",
        )
        .bind(purchase)
        .bind(individual)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    // ----- revocations and bans -----

    /// Records that `account`'s right to attend `lecture` was taken away at `at` (the latest
    /// time is kept).
    pub async fn revoke(&self, lecture: &str, account: &str, at: UnixMillis) -> Result<()> {
        sqlx::query(
            "INSERT INTO revocations (lecture_id, account_id, revoked_at) VALUES ($1, $2, $3)
             ON CONFLICT (lecture_id, account_id) DO UPDATE SET revoked_at =
                CASE WHEN excluded.revoked_at > revocations.revoked_at
                     THEN excluded.revoked_at ELSE revocations.revoked_at END",
        )
        .bind(lecture)
        .bind(account)
        .bind(ms(at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records that staff removed `account` from `lecture` without return (idempotent).
    pub async fn ban(&self, lecture: &str, account: &str, at: UnixMillis) -> Result<()> {
        sqlx::query(
            "INSERT INTO bans (lecture_id, account_id, banned_at) VALUES ($1, $2, $3)
             ON CONFLICT (lecture_id, account_id) DO NOTHING",
        )
        .bind(lecture)
        .bind(account)
        .bind(ms(at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Runs `sql` as it is: tests break and mend the schema with it.
    #[cfg(test)]
    pub(crate) async fn execute_for_test(&self, sql: &str) {
        sqlx::query(sql)
            .execute(&self.pool)
            .await
            .expect("test SQL runs");
    }

    /// The one number `sql` selects (a test's count).
    #[cfg(test)]
    pub(crate) async fn count_for_test(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.pool)
            .await
            .expect("test SQL runs")
    }

    /// The lectures `account` was removed from without return.
    pub async fn bans_of(&self, account: &str) -> Result<std::collections::BTreeSet<String>> {
        Ok(
            sqlx::query_scalar("SELECT lecture_id FROM bans WHERE account_id = $1")
                .bind(account)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .collect(),
        )
    }

    /// The revocation and ban of `account` in `lecture`, in one round trip (asked at every
    /// entry).
    pub async fn entry_bars(&self, lecture: &str, account: &str) -> Result<EntryBars> {
        let row = sqlx::query(
            "SELECT (SELECT revoked_at FROM revocations WHERE lecture_id = $1 AND account_id = $2)
                        AS revoked_at,
                    (SELECT count(*) FROM bans WHERE lecture_id = $1 AND account_id = $2) AS bans",
        )
        .bind(lecture)
        .bind(account)
        .fetch_one(&self.pool)
        .await?;
        Ok(EntryBars {
            revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(time),
            banned: row.try_get::<i64, _>("bans")? > 0,
        })
    }

    /// Whether the store holds an account whose id does not start with `prefix` (demo mode
    /// refuses a store with records other than its own).
    pub async fn has_accounts_beyond(&self, prefix: &str) -> Result<bool> {
        let row = sqlx::query("SELECT id FROM accounts WHERE id NOT LIKE $1 LIMIT 1")
            .bind(format!("{prefix}%"))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    // ----- attendance -----

    /// Writes a batch of attendance changes in one transaction.
    pub async fn record_attendance(&self, batch: &[AttendanceChange]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for change in batch {
            match change {
                AttendanceChange::Entered {
                    id,
                    lecture,
                    account,
                    role,
                    at,
                } => {
                    sqlx::query(
                        "INSERT INTO attendance (id, lecture_id, account_id, role, entered_at) VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(id)
                    .bind(lecture)
                    .bind(account)
                    .bind(role.as_str())
                    .bind(ms(*at))
                    .execute(&mut *tx)
                    .await?;
                }
                AttendanceChange::Left { id, at, seat } => {
                    sqlx::query("UPDATE attendance SET left_at = $2, seat_row = $3, seat_col = $4 WHERE id = $1")
                        .bind(id)
                        .bind(ms(*at))
                        .bind(seat.map(|s| i64::from(s.row)))
                        .bind(seat.map(|s| i64::from(s.col)))
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The stays `company` paid for, newest first: learners' stays in a lecture while they held
    /// one of the company's seats of it, and were linked to it. Their own purchases, other
    /// lectures, and anything before the link or outside the seat's time are theirs alone.
    pub async fn attendance_of_members(&self, company: &str) -> Result<Vec<AttendanceRecord>> {
        sqlx::query(
            "SELECT a.lecture_id, a.account_id, a.role, a.entered_at, a.left_at, a.seat_row, a.seat_col
             FROM attendance a JOIN corporate_links l ON l.individual_id = a.account_id
             WHERE l.corporate_id = $1 AND a.role = 'learner' AND a.entered_at >= l.linked_at
               AND EXISTS (SELECT 1 FROM seat_grants g
                           WHERE g.individual_id = a.account_id AND g.lecture_id = a.lecture_id
                             AND g.corporate_id = $1 AND g.granted_at <= a.entered_at
                             AND (g.released_at IS NULL OR g.released_at >= a.entered_at))
             ORDER BY a.entered_at DESC, a.account_id",
        )
        .bind(company)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            let role: String = r.try_get("role")?;
            let role = serde_json::from_value(serde_json::Value::String(role.clone()))
                .map_err(|_| StoreError::Corrupt(format!("role = {role:?}")))?;
            let seat = match (r.try_get::<Option<i64>, _>("seat_row")?, r.try_get::<Option<i64>, _>("seat_col")?) {
                (Some(row), Some(col)) => Some(Seat::new(u16::try_from(row).unwrap_or(0), u16::try_from(col).unwrap_or(0))),
                _ => None,
            };
            Ok(AttendanceRecord {
                lecture: r.try_get("lecture_id")?,
                account: r.try_get("account_id")?,
                role,
                entered_at: time(r.try_get("entered_at")?),
                left_at: r.try_get::<Option<i64>, _>("left_at")?.map(time),
                seat,
            })
        })
        .collect()
    }
}

/// A change to the attendance records, as room nodes report them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttendanceChange {
    /// Someone entered a room.
    Entered {
        /// Unique id of this stay.
        id: String,
        /// The lecture.
        lecture: String,
        /// The person.
        account: String,
        /// Their role.
        role: protocol::Role,
        /// When.
        at: UnixMillis,
    },
    /// The stay ended.
    Left {
        /// The stay's id.
        id: String,
        /// When.
        at: UnixMillis,
        /// Where they sat last.
        seat: Option<Seat>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sqlite() -> Store {
        let dir = std::env::temp_dir().join(format!("room-server-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Store::connect(&format!("sqlite://{}/s{n}.db", dir.display()))
            .await
            .expect("connects")
    }

    #[tokio::test]
    async fn attendance_of_a_companys_people_comes_back_with_seats() {
        let store = sqlite().await;
        let t = UnixMillis(1_000);
        store.link("ken", "acme", t).await.expect("links");
        let purchase = |id: &str, buyer: &str, lecture: &str| Purchase {
            id: id.into(),
            buyer: buyer.into(),
            lecture: lecture.into(),
            quantity: 1,
            modality: Modality::Online,
            payment_method: PaymentMethod::Card,
            status: PurchaseStatus::Paid,
        };
        store
            .upsert_purchase(&purchase("p1", "acme", "l"), t)
            .await
            .expect("writes");
        store
            .upsert_purchase(&purchase("p2", "ken", "own"), t)
            .await
            .expect("writes");
        assert_eq!(
            store.allocate("p1", "ken", t).await.expect("writes"),
            Allocated::Added
        );
        let entered = |id: &str, lecture: &str| AttendanceChange::Entered {
            id: id.into(),
            lecture: lecture.into(),
            account: "ken".into(),
            role: protocol::Role::Learner,
            at: t,
        };
        let left = AttendanceChange::Left {
            id: "s1".into(),
            at: UnixMillis(2_000),
            seat: Some(Seat::new(1, 2)),
        };
        store
            .record_attendance(&[entered("s1", "l"), left, entered("s2", "own")])
            .await
            .expect("writes");
        // Taken back later: the stay it paid for stays in the history.
        assert!(
            store
                .deallocate("p1", "ken", UnixMillis(3_000))
                .await
                .expect("writes")
        );
        let records = store.attendance_of_members("acme").await.expect("reads");
        assert_eq!(
            records.len(),
            1,
            "only the stay on the company's seat: {records:?}"
        );
        assert_eq!(records[0].lecture, "l");
        assert_eq!(records[0].seat, Some(Seat::new(1, 2)));
        assert_eq!(records[0].left_at, Some(UnixMillis(2_000)));
        assert!(
            store
                .attendance_of_members("other")
                .await
                .expect("reads")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_mail_is_claimed_once_retried_after_failure_and_after_a_lapsed_lease() {
        let store = sqlite().await;
        let claim = |t: u64| store.claim_mail("l", "ken", "reminder", UnixMillis(t), 100, 3);
        assert!(claim(1_000).await.expect("claims"), "the first node claims");
        assert!(!claim(1_000).await.expect("claims"), "a second does not");
        assert!(
            !claim(1_099).await.expect("claims"),
            "not while the lease runs"
        );
        // The holder crashed: once its lease ends another node takes over.
        assert!(claim(1_100).await.expect("claims"));
        store
            .mail_failed(
                "l",
                "ken",
                "reminder",
                UnixMillis(1_110),
                UnixMillis(1_500),
                3,
            )
            .await
            .expect("writes");
        assert_eq!(
            store
                .mail_state("l", "ken", "reminder")
                .await
                .expect("reads"),
            Some((MailState::Retry, 2))
        );
        assert!(
            !claim(1_499).await.expect("claims"),
            "not before the backoff"
        );
        assert!(claim(1_500).await.expect("claims"), "the retry is due");
        store
            .mail_sent("l", "ken", "reminder", UnixMillis(1_510))
            .await
            .expect("writes");
        assert!(!claim(99_999).await.expect("claims"), "sent stays sent");
        assert_eq!(
            store
                .mail_state("l", "ken", "reminder")
                .await
                .expect("reads"),
            Some((MailState::Sent, 3))
        );
        // Another kind about the same lecture is its own message.
        assert!(
            store
                .claim_mail("l", "ken", "cancelled", UnixMillis(1_000), 100, 3)
                .await
                .expect("claims")
        );
    }

    #[tokio::test]
    async fn a_mail_is_given_up_after_the_last_attempt() {
        let store = sqlite().await;
        for t in [1_000, 2_000] {
            assert!(
                store
                    .claim_mail("l", "ken", "archive", UnixMillis(t), 100, 2)
                    .await
                    .expect("claims")
            );
            store
                .mail_failed("l", "ken", "archive", UnixMillis(t), UnixMillis(t + 500), 2)
                .await
                .expect("writes");
        }
        assert_eq!(
            store
                .mail_state("l", "ken", "archive")
                .await
                .expect("reads"),
            Some((MailState::Failed, 2))
        );
        assert!(
            !store
                .claim_mail("l", "ken", "archive", UnixMillis(9_000), 100, 2)
                .await
                .expect("claims")
        );
    }

    #[tokio::test]
    async fn a_queued_mail_is_due_once_claimed_it_is_not_until_its_lease_runs_out() {
        let store = sqlite().await;
        let due = |t: u64| {
            let store = store.clone();
            async move {
                store
                    .due_mail(UnixMillis(t), 3, 10)
                    .await
                    .expect("reads")
                    .into_iter()
                    .map(|m| (m.account, m.attempts))
                    .collect::<Vec<_>>()
            }
        };
        assert!(
            store
                .queue_mail("l", "ken", "reminder", UnixMillis(1_000))
                .await
                .expect("queues")
        );
        assert!(
            !store
                .queue_mail("l", "ken", "reminder", UnixMillis(1_500))
                .await
                .expect("queues"),
            "queued once per learner, lecture and kind"
        );
        assert_eq!(due(999).await, [], "not before it was queued");
        assert_eq!(due(1_000).await, [("ken".to_owned(), 0)]);
        assert!(
            store
                .claim_mail("l", "ken", "reminder", UnixMillis(1_000), 100, 3)
                .await
                .expect("claims")
        );
        assert_eq!(due(1_050).await, [], "claimed: nobody else's");
        assert_eq!(
            due(1_100).await,
            [("ken".to_owned(), 1)],
            "its sender died: the lease ran out"
        );
        store
            .mail_sent("l", "ken", "reminder", UnixMillis(1_060))
            .await
            .expect("writes");
        assert_eq!(due(9_000).await, [], "sent: never again");
    }

    #[tokio::test]
    async fn migrating_twice_is_harmless() {
        let dir =
            std::env::temp_dir().join(format!("room-server-store-twice-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}/twice.db", dir.display());
        Store::connect(&url).await.expect("first start");
        Store::connect(&url)
            .await
            .expect("a restart finds the schema in place");
    }
}
