//! Snapshots of a lecture's room, for nodes that share it through Redis.
//!
//! Every node holding a lecture applies the same entries to its own copy of the room, so the
//! copy after entry `n` is the same on every node: a **snapshot** of it, with `n`, is as good as
//! the entries `1..=n`. The lecture's time keeper (one node; see `task::keeps_time`) writes one
//! every `[room] snapshot_every_entries` entries or `snapshot_every_secs` seconds, whichever
//! comes first; a node opening the lecture starts from the latest and reads only the entries
//! after it. Writing one trims the stream to the snapshot before it, so the log stays short
//! however long the lecture runs, and a node that falls behind by more than a snapshot
//! interval starts again from the latest snapshot (`log::redis`).
//!
//! The room is cloned in the room's task (a copy of its maps, no encoding) and encoded on the
//! blocking pool, so a large room's snapshot does not hold up its deliveries.

use crate::log::redis::{LogPos, Redis};
use crate::media::MediaSource;
use crate::metrics::Metrics;
use protocol::{LectureId, UnixMillis};
use room::Room;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::Instant;
use tracing::{debug, error, warn};

/// The state of a lecture's room after some entry of its log: what a node holds besides the
/// entries (`task::Holder`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    /// The log time of that entry.
    pub(crate) at: UnixMillis,
    /// Who publishes the lecture's media, as the log said by then.
    pub(crate) source: Option<MediaSource>,
    /// The room core.
    pub(crate) room: Room,
}

impl Snapshot {
    pub(crate) fn encode(&self) -> Result<Vec<u8>, rmp_serde::encode::Error> {
        rmp_serde::to_vec_named(self)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, rmp_serde::decode::Error> {
        rmp_serde::from_slice(bytes)
    }
}

/// When a room's snapshots are due, and writing them.
#[derive(Debug)]
pub(crate) struct Snapshots {
    redis: Redis,
    lecture: LectureId,
    every_entries: u64,
    every: Duration,
    /// The entry of the latest snapshot this node wrote or started from.
    last_n: u64,
    last_at: Instant,
    /// Set while a write is under way: one at a time.
    writing: Arc<AtomicBool>,
}

impl Snapshots {
    pub(crate) fn new(
        redis: Redis,
        lecture: LectureId,
        every_entries: u64,
        every: Duration,
    ) -> Self {
        Self {
            redis,
            lecture,
            every_entries,
            every,
            last_n: 0,
            last_at: Instant::now(),
            writing: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The room started again from the snapshot after entry `n`: the next is due from there.
    pub(crate) fn started_from(&mut self, n: u64) {
        self.last_n = self.last_n.max(n);
        self.last_at = Instant::now();
    }

    /// Whether a snapshot of the room after entry `n` is due.
    pub(crate) fn due(&self, n: u64) -> bool {
        n > self.last_n
            && (n - self.last_n >= self.every_entries || self.last_at.elapsed() >= self.every)
            && !self.writing.load(Ordering::Acquire)
    }

    /// Encodes `snapshot` (the room after `pos`) on the blocking pool and keeps it in Redis.
    pub(crate) fn write(&mut self, snapshot: Snapshot, pos: LogPos, metrics: Arc<Metrics>) {
        self.last_n = pos.n;
        self.last_at = Instant::now();
        self.writing.store(true, Ordering::Release);
        let (redis, lecture, writing) = (
            self.redis.clone(),
            self.lecture.clone(),
            Arc::clone(&self.writing),
        );
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            match tokio::task::spawn_blocking(move || snapshot.encode()).await {
                Ok(Ok(bytes)) => match redis.write_snapshot(&lecture, &pos, &bytes).await {
                    Ok(kept) => {
                        if kept {
                            metrics.snapshots_written_total.inc();
                            metrics
                                .snapshot_bytes
                                .set(i64::try_from(bytes.len()).unwrap_or(i64::MAX));
                        }
                        debug!(
                            entry = pos.n,
                            bytes = bytes.len(),
                            kept,
                            ms = started.elapsed().as_millis(),
                            "wrote the room's snapshot"
                        );
                    }
                    Err(e) => {
                        warn!(error = %e, "cannot write the room's snapshot; the next one is tried later")
                    }
                },
                Ok(Err(e)) => error!(error = %e, "the room's snapshot failed to encode"),
                Err(e) => error!(error = %e, "encoding the room's snapshot failed"),
            }
            writing.store(false, Ordering::Release);
        });
    }
}
