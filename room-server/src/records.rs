//! Writes what rooms report (attendance, lecture starts and ends, bans) to the store in batches, off the rooms'
//! path: a room never waits for the database.

use crate::gate::store::{AttendanceChange, Store};
use protocol::UnixMillis;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::warn;

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

/// Writes records until `stop`, then writes what is left and returns.
pub(crate) async fn write(store: Store, mut rx: mpsc::Receiver<Record>, stop: CancellationToken) {
    loop {
        let first = tokio::select! {
            r = rx.recv() => r,
            () = stop.cancelled() => None,
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
        flush(&store, batch).await;
        if stop.is_cancelled() {
            return;
        }
    }
}

async fn flush(store: &Store, batch: Vec<Record>) {
    let mut attendance = Vec::new();
    for record in batch {
        match record {
            Record::Attendance(change) => attendance.push(change),
            Record::Started { lecture, at } => {
                if let Err(e) = store.mark_started(&lecture, at).await {
                    warn!(error = %e, "could not record a lecture's start");
                }
            }
            Record::Ended { lecture, at } => {
                if let Err(e) = store.mark_ended(&lecture, at).await {
                    warn!(error = %e, "could not record a lecture's end");
                }
            }
            Record::Banned { lecture, user, at } => {
                if let Err(e) = store.ban(&lecture, &user, at).await {
                    // The running room still keeps them out; a restart would not.
                    warn!(error = %e, %lecture, "could not record a ban");
                }
            }
        }
    }
    if !attendance.is_empty()
        && let Err(e) = store.record_attendance(&attendance).await
    {
        warn!(error = %e, lost = attendance.len(), "could not write attendance");
    }
}
