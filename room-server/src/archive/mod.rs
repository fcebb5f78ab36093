//! A finished lecture's archive: the instructor's recording made into files browsers play,
//! kept in a store any node can serve from, and deleted when it expires.
//!
//! - `store`: [`ArchiveStore`], a local folder or an S3-compatible bucket.
//! - `mux`: the recording (VP8 in IVF, Opus in Ogg, `index.json`) into WebM files on one
//!   timeline, with `manifest.json` ([`make_archive`]).
//! - `demo`: the demo's archived lecture.
//! - `http`: the archive room's API and its signed, ranged media URLs ([`ArchiveRoom`]).
//! - `retention`: the sweep deleting expired archives.
//! - `timeline`: the chat, calls, announcements and reaction tallies on the recording's clock
//!   (`timeline.json`).
//!
//! Object names inside one lecture's archive: `manifest.json`, `camera.webm`,
//! `screen-1.webm`, `screen-2.webm`…, `timeline.json`.

pub mod demo;
pub(crate) mod http;
mod mux;
mod retention;
mod store;
pub(crate) mod timeline;

pub use http::ArchiveRoom;
pub use mux::{MANIFEST, Manifest, ManifestTrack, TrackKind, make_archive};
pub use retention::{expires_at, sweep, sweep_loop};
pub use store::{ArchiveError, ArchiveStore, Body, ByteStream, Ranged};

/// The manifest's object name.
pub const MANIFEST_NAME: &str = "manifest.json";
/// The timeline's object name (written by the archive room's timeline builder).
pub const TIMELINE_NAME: &str = "timeline.json";
/// The camera (with the instructor's audio) object name.
pub const CAMERA_NAME: &str = "camera.webm";

/// The object name of the `n`th screen share (from 1).
pub fn screen_name(n: usize) -> String {
    format!("screen-{n}.webm")
}

/// Waits (a bounded time) for the broadcast's recorders to close their files, then makes
/// the lecture's archive from its recording on the live span `since..until`: what the origin
/// node does when a recorded lecture ends. Counted in `room_archives_made` /
/// `room_archive_failures`.
pub(crate) async fn after_lecture(
    store: ArchiveStore,
    broadcast: std::sync::Arc<signaling::Broadcast>,
    lecture: protocol::LectureId,
    since: protocol::UnixMillis,
    until: protocol::UnixMillis,
    timeline: Option<timeline::Timeline>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
) {
    let Some(dir) = broadcast.recording_dir() else {
        return; // nothing was recorded here (the instructor published on another node)
    };
    // The recorders close their files once the broadcast is closed; a recorder still busy
    // after this long leaves its file as a node that stopped would (still readable).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while broadcast.stats().recording_tracks > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The timeline goes first: the manifest, written last by `make_archive`, says the whole
    // archive is there.
    if let Some(timeline) = &timeline
        && let Err(e) = store.put_json(&lecture, TIMELINE_NAME, timeline).await
    {
        tracing::warn!(error = %e, "archive not made: its timeline could not be stored");
        metrics.archive_failures_total.inc();
        return;
    }
    match make_archive(&dir, &lecture, since.0, until.0, &store).await {
        Ok(_) => {
            metrics.archives_made_total.inc();
        }
        Err(_) => {
            metrics.archive_failures_total.inc();
        }
    }
}
