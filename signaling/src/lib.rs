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
//! # Layout
//!
//! - `broadcast.rs`: [`Broadcast`], its state and the publisher's events.
//! - `subscriber.rs`: one subscriber's tracks, offers and answers, and its events.
//! - `forward.rs`: readers, writers, queues, keyframe requesters.
//! - `config.rs`: [`SignalingConfig`] and how peer connections are built from it.
//! - `signal.rs`: [`SubscriberId`], [`IceCandidate`], [`PeerSignal`].
//! - `stats.rs`: [`BroadcastStats`] and the task accounting that shows leaks.
//!
//! Not here yet: the room WebSocket messages carrying these signals, phase gating, recording,
//! the node-to-node relay.

mod broadcast;
mod config;
mod forward;
mod signal;
mod stats;
mod subscriber;

pub use broadcast::{Broadcast, PeerStart};
pub use config::{IceServer, SignalingConfig};
pub use signal::{IceCandidate, PeerSignal, SubscriberId};
pub use stats::BroadcastStats;

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
}
