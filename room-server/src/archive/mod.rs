//! A finished lecture's archive: the instructor's recording made into files browsers play,
//! kept in a store any node can serve from, and deleted when it expires.
//!
//! - `store`: [`ArchiveStore`], a local folder or an S3-compatible bucket.
//! - `mux`: the recording (VP8 in IVF, Opus in Ogg, `index.json`) into WebM files on one
//!   timeline, with `manifest.json` ([`make_archive`]).
//! - `retention`: the sweep deleting expired archives.
//!
//! Object names inside one lecture's archive: `manifest.json`, `camera.webm`,
//! `screen-1.webm`, `screen-2.webm`…, `timeline.json`.

mod mux;
mod retention;
mod store;

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
