//! Counters a test, the metrics page or an operator reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A snapshot of a broadcast's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BroadcastStats {
    /// Subscribers holding a peer connection now.
    pub subscribers: usize,
    /// Tracks the publisher is sending now.
    pub published_tracks: usize,
    /// RTP packets handed to a subscriber's peer connection.
    pub forwarded_packets: u64,
    /// RTP packets a subscriber missed because its queue was full.
    pub dropped_packets: u64,
    /// RTP packets a subscriber's connection refused (not negotiated or not connected yet).
    pub refused_packets: u64,
    /// Keyframe requests (PLI) sent to the publisher.
    pub keyframe_requests: u64,
    /// Tasks of this broadcast still running (readers, writers, keyframe requesters,
    /// recorders).
    pub tasks: usize,
    /// RTP packets a recorder took from its queue and wrote (or held for the next frame).
    pub recorded_packets: u64,
    /// RTP packets not recorded because a recorder's queue was full (the disk fell behind).
    pub recording_dropped_packets: u64,
    /// Recording failures: a folder or file that could not be created, a write that failed
    /// (that track's recording stops; forwarding goes on).
    pub recording_errors: u64,
    /// Recording files open now: a track's file is closed, and its index entry complete,
    /// once this falls.
    pub recording_tracks: usize,
    /// Track recordings stopped because the disk was nearly full.
    pub recording_disk_stops: u64,
    /// Recorded packets that arrived too late to be put back in order (skipped).
    pub recording_late_packets: u64,
}

/// The live counters, shared by every task of a broadcast.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) forwarded_packets: AtomicU64,
    pub(crate) dropped_packets: AtomicU64,
    pub(crate) refused_packets: AtomicU64,
    pub(crate) keyframe_requests: AtomicU64,
    pub(crate) tasks: AtomicUsize,
    pub(crate) recorded_packets: AtomicU64,
    pub(crate) recording_dropped_packets: AtomicU64,
    pub(crate) recording_errors: AtomicU64,
    pub(crate) recording_tracks: AtomicUsize,
    pub(crate) recording_disk_stops: AtomicU64,
    pub(crate) recording_late_packets: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Held by every task the broadcast spawns: the task count falls when the task ends, however
/// it ends (finished, aborted, panicked), so a leak shows as a count that stays up.
#[derive(Debug)]
pub(crate) struct TaskGuard(Arc<Counters>);

impl TaskGuard {
    pub(crate) fn new(counters: &Arc<Counters>) -> Self {
        counters.tasks.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(counters))
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.tasks.fetch_sub(1, Ordering::Relaxed);
    }
}
