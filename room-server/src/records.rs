//! Writes what rooms report (attendance, lecture starts and ends, bans) to the store in batches, off the rooms'
//! path: a room never waits for the database.
//!
//! Attendance is many small records: if the queue is full or the database refuses a batch, it is
//! dropped with a warning. Starts, ends and bans are few and matter after a restart (a ban is
//! what keeps a removed learner out then): they are never dropped. A room hands them over even
//! when the queue is full, and a write the database refuses is tried again, with growing waits,
//! until it succeeds or the node stops.

use crate::backoff::Backoff;
use crate::gate::store::{AttendanceChange, Store, StoreError};
use protocol::UnixMillis;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// Something a room reports for the records.
#[derive(Debug)]
pub(crate) enum Record {
    /// A stay began or ended.
    Attendance(AttendanceChange),
    /// The instructor started a lecture's delivery.
    Started { lecture: String, at: UnixMillis },
    /// A lecture's room ended.
    Ended { lecture: String, at: UnixMillis },
    /// Staff removed someone from a lecture without return.
    Banned {
        lecture: String,
        user: String,
        at: UnixMillis,
    },
}

/// Most records written in one transaction.
const BATCH: usize = 512;
/// Longest a record waits for its batch.
const LINGER: Duration = Duration::from_millis(500);
/// First and longest wait before a refused start, end or ban is written again.
const RETRY_FIRST: Duration = Duration::from_millis(500);
const RETRY_MOST: Duration = Duration::from_secs(30);

impl Record {
    /// Starts, ends and bans: never dropped (see the module documentation).
    pub(crate) fn lasting(&self) -> bool {
        !matches!(self, Self::Attendance(_))
    }
}

/// Hands `record` to the writer without waiting. Attendance is dropped (with a warning) when the
/// queue is full; a lasting record then waits for room in a task of its own.
pub(crate) fn hand_over(records: &mpsc::Sender<Record>, record: Record) {
    match records.try_send(record) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(record)) if record.lasting() => {
            let records = records.clone();
            tokio::spawn(async move {
                if records.send(record).await.is_err() {
                    error!(
                        "the records writer has stopped; a lecture's start, end or ban was not written"
                    );
                }
            });
        }
        Err(mpsc::error::TrySendError::Full(_)) => {
            warn!("attendance queue full; a record was dropped")
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}

/// Writes records until `stop`, then writes what is left and returns.
pub(crate) async fn write(store: Store, mut rx: mpsc::Receiver<Record>, stop: CancellationToken) {
    // Lasting records the database refused, tried again after `retry`'s wait.
    let mut refused: Vec<Record> = Vec::new();
    let mut retry = Backoff::new(RETRY_FIRST, RETRY_MOST);
    let mut retry_at: Option<tokio::time::Instant> = None;
    loop {
        let first = tokio::select! {
            r = rx.recv() => r,
            () = stop.cancelled() => None,
            () = sleep_until(retry_at) => None,
        };
        let mut batch: Vec<Record> = first.into_iter().collect();
        if !batch.is_empty() {
            let linger = tokio::time::sleep(LINGER);
            tokio::pin!(linger);
            while batch.len() < BATCH {
                tokio::select! {
                    r = rx.recv() => match r { Some(r) => batch.push(r), None => break },
                    () = &mut linger => break,
                }
            }
        }
        if stop.is_cancelled() {
            while let Ok(r) = rx.try_recv() {
                batch.push(r);
            }
        }
        let due = retry_at.is_some_and(|at| at <= tokio::time::Instant::now());
        if due || stop.is_cancelled() {
            batch.append(&mut refused);
        }
        let retried = due || (stop.is_cancelled() && retry_at.is_some());
        let mut failed = flush(&store, batch).await;
        if failed.is_empty() {
            if retried {
                info!("wrote the lecture records the database had refused");
            }
            retry.reset();
        }
        refused.append(&mut failed);
        retry_at = if refused.is_empty() {
            None
        } else if due || retry_at.is_none() {
            Some(tokio::time::Instant::now() + retry.next())
        } else {
            retry_at
        };
        if stop.is_cancelled() {
            if !refused.is_empty() {
                error!(
                    lost = refused.len(),
                    "stopping with lecture starts, ends or bans the database refused"
                );
            }
            return;
        }
    }
}

/// Sleeps until `at`; never wakes without one.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Writes `batch`; returns the lasting records the database refused.
async fn flush(store: &Store, batch: Vec<Record>) -> Vec<Record> {
    let mut attendance = Vec::new();
    let mut refused = Vec::new();
    for record in batch {
        match record {
            Record::Attendance(change) => attendance.push(change),
            lasting => {
                if let Err(e) = write_lasting(store, &lasting).await {
                    warn!(error = %e, "could not record a lecture's start, end or ban; it will be tried again");
                    refused.push(lasting);
                }
            }
        }
    }
    if !attendance.is_empty()
        && let Err(e) = store.record_attendance(&attendance).await
    {
        warn!(error = %e, lost = attendance.len(), "could not write attendance");
    }
    refused
}

async fn write_lasting(store: &Store, record: &Record) -> Result<(), StoreError> {
    match record {
        Record::Attendance(_) => Ok(()),
        Record::Started { lecture, at } => store.mark_started(lecture, *at).await,
        Record::Ended { lecture, at } => store.mark_ended(lecture, *at).await,
        Record::Banned { lecture, user, at } => store.ban(lecture, user, *at).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sqlite() -> Store {
        let dir = std::env::temp_dir().join(format!("room-server-records-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Store::connect(&format!("sqlite://{}/r{n}.db", dir.display()))
            .await
            .expect("connects")
    }

    /// Waits (bounded) until `lecture` is among `account`'s bans.
    async fn banned(store: &Store, account: &str, lecture: &str) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::time::Instant::now() < deadline {
            if store
                .bans_of(account)
                .await
                .expect("reads")
                .contains(lecture)
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    #[tokio::test]
    async fn a_ban_the_database_refused_is_written_once_it_takes_writes_again() {
        let store = sqlite().await;
        // The database refuses bans, counting each try (a FAIL keeps the count's row).
        store
            .execute_for_test("CREATE TABLE tries (n INTEGER)")
            .await;
        store
            .execute_for_test(
                "CREATE TRIGGER refuse BEFORE INSERT ON bans BEGIN \
                 INSERT INTO tries VALUES (1); SELECT RAISE(FAIL, 'refused'); END",
            )
            .await;
        let (tx, rx) = mpsc::channel(4);
        let stop = CancellationToken::new();
        let writer = tokio::spawn(write(store.clone(), rx, stop.clone()));
        hand_over(
            &tx,
            Record::Banned {
                lecture: "l".into(),
                user: "ken".into(),
                at: UnixMillis(1_000),
            },
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while store.count_for_test("SELECT count(*) FROM tries").await < 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the ban was tried twice"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(store.bans_of("ken").await.expect("reads").is_empty());
        store.execute_for_test("DROP TRIGGER refuse").await;
        assert!(
            banned(&store, "ken", "l").await,
            "the ban was written on a retry"
        );
        stop.cancel();
        writer.await.expect("the writer stops");
    }

    #[tokio::test]
    async fn a_full_queue_drops_attendance_but_not_a_ban() {
        let store = sqlite().await;
        let (tx, rx) = mpsc::channel(1);
        let entered = |id: &str| {
            Record::Attendance(AttendanceChange::Entered {
                id: id.into(),
                lecture: "l".into(),
                account: "ken".into(),
                role: protocol::Role::Learner,
                at: UnixMillis(1_000),
            })
        };
        hand_over(&tx, entered("s1"));
        // The queue is full: this one is dropped …
        hand_over(&tx, entered("s2"));
        // … and this one waits for room.
        hand_over(
            &tx,
            Record::Banned {
                lecture: "l".into(),
                user: "ken".into(),
                at: UnixMillis(2_000),
            },
        );
        let stop = CancellationToken::new();
        let writer = tokio::spawn(write(store.clone(), rx, stop.clone()));
        assert!(banned(&store, "ken", "l").await, "the ban was written");
        stop.cancel();
        writer.await.expect("the writer stops");
    }
}
