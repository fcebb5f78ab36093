//! The instructor's broadcast: a selective forwarding unit (SFU) for one lecture, built on the
//! `webrtc` crate (0.21, the async layer over the sans-IO `rtc` core).
//!
//! # Shape
//!
//! A [`Broadcast`] holds one **publisher** connection (the instructor: camera video,
//! microphone audio, and a screen share as a second video track while it is on) and any number
//! of **subscriber** connections (learners, receive-only). Every track the publisher sends is
//! forwarded to every subscriber as RTP, never decoded: only the SSRC and payload type are
//! rewritten to what that subscriber negotiated, and header extensions are stripped.
//!
//! # Negotiation
//!
//! - The **publisher offers** ([`Broadcast::publish`], [`Broadcast::publisher_offer`] when it
//!   starts or stops the screen share): it is the side that knows which tracks it sends.
//! - The **node offers to subscribers** ([`Broadcast::subscribe`] returns the first offer,
//!   [`PeerSignal::Offer`] brings later ones, [`Broadcast::subscriber_answer`] takes the
//!   answers). The node knows the track set; a receive-only browser has nothing to offer, and
//!   a screen share starting must reach learners without them asking. One offer is out per
//!   subscriber at a time; changes meanwhile are folded into the next one.
//! - ICE candidates trickle both ways: the node's arrive as [`PeerSignal::IceCandidate`] on
//!   the peer's signal stream, the browser's go in through `add_*_candidate`. Everything is
//!   plain strings, ready to travel over the room WebSocket.
//!
//! # Forwarding and keyframes
//!
//! One reader task per published track hands each packet to every subscriber's bounded queue
//! without waiting (a full queue drops the packet and counts it); one writer task per
//! subscriber track drains its queue into that subscriber's connection. A slow learner thus
//! loses its own packets and never delays anyone else. A subscriber that connects (or accepts
//! a new track) needs a keyframe: the node sends a PLI to the publisher, through one
//! requester per video track that sends at most one per
//! [`SignalingConfig::keyframe_request_interval`] (1 s) and folds the requests that arrive
//! meanwhile into the next one, so a crowd joining costs the instructor one keyframe a
//! second. A learner's own PLI/FIR (its decoder lost the picture) goes through the same
//! requester. The default interceptors answer learners' NACKs from the node's own send buffer
//! and NACK the publisher for what the node lost.
//!
//! # Recording for the archive
//!
//! With [`SignalingConfig::recording_dir`] set, every track the publisher sends is written to
//! `<recording_dir>/<id>/`, where `<id>` is the name given to
//! [`Broadcast::with_recording_id`] (sanitized; `-2`, `-3`… appended if the folder exists) or
//! `lecture-<Unix ms>-<n>` from [`Broadcast::new`]. [`Broadcast::recording_dir`] tells which.
//! One file per published track, named `track-<n>-video.ivf` or `track-<n>-audio.ogg` (`<n>`
//! never reused within the broadcast, so each screen-share session and each publisher
//! reconnection gets new files):
//!
//! - **VP8 → IVF**: the 32-byte `DKIF` header (FourCC `VP80`, width and height from the first
//!   keyframe, timebase 1/1000, frame count filled in on close), then per frame a 12-byte
//!   header (u32 length, u64 timestamp, little-endian) and the frame. A frame's timestamp is
//!   its **media time in ms**: RTP time since the file's first packet (unwrapped). Writing
//!   starts at a keyframe; after a loss (a sequence gap, a full queue) the file skips to the
//!   next keyframe, which the recorder asks the publisher for through the track's throttled
//!   requester. Late packets (reordered, retransmitted) are skipped: there is no jitter buffer.
//! - **Opus → Ogg** (RFC 7845): an `OpusHead` page (2 channels, pre-skip 0, 48 kHz) and an
//!   `OpusTags` page, then one page per Opus packet, its granule position the packet's end in
//!   48 kHz samples since the file's first packet (so a packet's media time in ms is
//!   `(granule - its samples) / 48`); gaps (loss, silence suppression) show as jumps in the
//!   granule position. The last page carries the end-of-stream flag.
//!
//! Next to them, `index.json` (rewritten atomically when a track starts or ends, and every
//! 10 s meanwhile) maps media time to the node's wall clock, the clock the chat's event times
//! use:
//!
//! ```json
//! { "format": "live-lecture-recording/1", "recording": "lecture-42", "created_unix_ms": 1700000000000,
//!   "tracks": [ { "file": "track-1-video.ivf", "kind": "video", "codec": "VP8",
//!                 "stream_id": "…", "track_id": "…", "clock_rate": 90000,
//!                 "first_rtp_timestamp": 123456, "first_unix_ms": 1700000000500,
//!                 "last_unix_ms": 1700003600500, "last_media_ms": 3600000, "frames": 90000,
//!                 "complete": true, "sync": [[0, 1700000000500], [1000, 1700000001501]] } ] }
//! ```
//!
//! `sync` holds `[media_ms, unix_ms]` pairs, one per second of wall clock, the first being
//! `[0, first_unix_ms]`: a packet's media time and when it reached the node. To show the chat
//! message sent at Unix time `t` in step, a player seeks each file to the media time
//! interpolated between the sync points around `t` (the media time of two files differs by
//! when their first packets came: compare `first_unix_ms`). `complete: false` marks a file
//! whose node stopped before the track ended (its IVF frame count is then 0; read to the end).
//!
//! A recorder is one more sink on the fan-out, with its own bounded queue
//! ([`SignalingConfig::recording_queue_packets`]; a full queue drops the packet and counts it
//! in [`BroadcastStats::recording_dropped_packets`]) and a thread of the blocking pool doing
//! all the file work: a slow disk never delays forwarding. The file is flushed, completed and
//! closed when the track ends (screen share stopped, [`Broadcast::unpublish`],
//! [`Broadcast::close`], the publisher's connection failing).
//!
//! # Layout
//!
//! - `broadcast.rs`: [`Broadcast`], its state and the publisher's events.
//! - `subscriber.rs`: one subscriber's tracks, offers and answers, and its events.
//! - `forward.rs`: readers, writers, queues, keyframe requesters.
//! - `config.rs`: [`SignalingConfig`] and how peer connections are built from it.
//! - `signal.rs`: [`SubscriberId`], [`IceCandidate`] (the wire's, from `protocol`) and its
//!   conversions to and from the webrtc crate's, [`PeerSignal`].
//! - `stats.rs`: [`BroadcastStats`] and the task accounting that shows leaks.
//! - `probe.rs`: [`probe::Probe`], the connection check's data-channel echo (no broadcast),
//!   made by a [`probe::Prober`] with its own ports.
//! - `candidate.rs`: [`CandidateFilter`], which remote candidates clients may hand the node.
//! - `recording.rs`: the recorders, the IVF and Ogg writers, `index.json`.
//! - `tcp_mux.rs`: [`TcpMux`], ICE-TCP for every connection on one shared port.
//! - `test_peer/` (feature `test-peer`): `TestPeer`, a webrtc-crate peer playing the
//!   instructor's or a learner's browser, for tests and load runs.
//!
//! The room WebSocket messages carrying these signals, and the phase gating, live in
//! `room-server` (its `media` module), as does the node-to-node relay's transport (its `relay`
//! module): on a node that pulls another node's instructor, that node's offers go to
//! [`Broadcast::publish_relayed`] and the relayed tracks are forwarded like the instructor's
//! own, but not recorded.

mod broadcast;
mod candidate;
mod config;
mod forward;
pub mod probe;
mod recording;
mod signal;
mod stats;
mod subscriber;
mod tcp_mux;
#[cfg(feature = "test-peer")]
pub mod test_peer;

pub use broadcast::{Broadcast, PeerStart};
pub use candidate::{CandidateFilter, is_public};
pub use config::{IceServer, KeyframeRequestsToApp, SignalingConfig};
pub use forward::is_keyframe_request;
pub use recording::opus_samples;
pub use signal::{IceCandidate, PeerSignal, SubscriberId, to_webrtc_candidate, to_wire_candidate};
pub use stats::BroadcastStats;
pub use tcp_mux::TcpMux;

/// Why a signalling step failed. None of these stops the broadcast; the step's peer is
/// expected to retry or give up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignalingError {
    /// The WebRTC stack refused (a malformed SDP, a bad candidate, a closed connection).
    #[error("webrtc: {0}")]
    WebRtc(#[from] webrtc::error::Error),
    /// Every port of the configured range is taken.
    #[error("no free UDP port in {first}..={last}")]
    NoFreePort {
        /// First port of the range.
        first: u32,
        /// Last port of the range.
        last: u32,
    },
    /// A publisher operation without a publisher.
    #[error("nobody is publishing")]
    NoPublisher,
    /// No such subscriber (never subscribed, or already released).
    #[error("unknown {0}")]
    UnknownSubscriber(SubscriberId),
    /// The id is in use by a live subscriber.
    #[error("{0} already exists")]
    DuplicateSubscriber(SubscriberId),
    /// An answer came when no offer was waiting for one.
    #[error("{0} answered, but no offer is outstanding")]
    NoOfferOutstanding(SubscriberId),
    /// The connection has no local description after setting one (a webrtc bug if seen).
    #[error("no local description after negotiation")]
    NoLocalDescription,
    /// A transceiver made around a track has no sender (a webrtc bug if seen).
    #[error("a track's transceiver has no sender")]
    NoSender,
    /// The broadcast was closed.
    #[error("the broadcast is closed")]
    Closed,
    /// A probe's offer has no data channel, or has audio or video sections.
    #[error("the offer must have a data channel and nothing else")]
    NotDataOnly,
}
