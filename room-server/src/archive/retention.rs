//! Expired archives deleted: a lecture's archive ends on the date the portal set for it
//! (`archive_expires_at` on the lecture), or `[archive] retention_days` after the lecture
//! ended (the manifest's end); a periodic sweep deletes what has expired.

use super::store::{ArchiveError, ArchiveStore};
use super::{MANIFEST_NAME, Manifest};
use crate::gate::store::Store;
use protocol::{LectureId, UnixMillis};
use std::time::Duration;

const DAY_MS: u64 = 24 * 3600 * 1000;

/// When `lecture`'s archive expires: the portal's date when set, else `retention_days` after
/// the end of its manifest's timeline. None: neither is known (an archive still being made).
pub async fn expires_at(
    store: &ArchiveStore,
    records: &Store,
    lecture: &LectureId,
    retention_days: u32,
) -> Result<Option<UnixMillis>, ArchiveError> {
    if let Some(at) = records
        .archive_expires_at(lecture.as_str())
        .await
        .map_err(|e| ArchiveError::Config(format!("reading the lecture's end date: {e}")))?
    {
        return Ok(Some(at));
    }
    let manifest: Option<Manifest> = store.get_json(lecture, MANIFEST_NAME).await?;
    Ok(manifest
        .map(|m| UnixMillis(m.started_at_ms + m.duration_ms + u64::from(retention_days) * DAY_MS)))
}

/// Deletes every archive that expired at or before `now`; returns the lectures deleted.
pub async fn sweep(
    store: &ArchiveStore,
    records: &Store,
    retention_days: u32,
    now: UnixMillis,
) -> Result<Vec<LectureId>, ArchiveError> {
    let mut deleted = Vec::new();
    for lecture in store.list_lectures().await? {
        let expiry = match expires_at(store, records, &lecture, retention_days).await {
            Ok(expiry) => expiry,
            Err(err) => {
                tracing::warn!(%err, lecture = %lecture.as_str(), "archive expiry unknown");
                continue;
            }
        };
        if expiry.is_some_and(|at| at.0 <= now.0) {
            store.delete_lecture(&lecture).await?;
            tracing::info!(lecture = %lecture.as_str(), "expired archive deleted");
            deleted.push(lecture);
        }
    }
    Ok(deleted)
}

/// Sweeps every `every` until the process ends, counting deletions in `deleted`. `now`: the
/// node's clock.
pub async fn sweep_loop(
    store: ArchiveStore,
    records: Store,
    retention_days: u32,
    every: Duration,
    now: impl Fn() -> UnixMillis + Send + 'static,
    deleted: impl Fn(u64) + Send + 'static,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match sweep(&store, &records, retention_days, now()).await {
            Ok(gone) => deleted(gone.len() as u64),
            Err(err) => tracing::warn!(%err, "archive sweep failed"),
        }
    }
}
