//! What travels between the node and one peer besides media: ids, candidates, offers.

use std::fmt;

use webrtc::peer_connection::RTCIceCandidateInit;

/// One learner's receiving connection within a broadcast. The room chooses the number (one
/// per WebSocket session, say), so a learner with two tabs has two subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriberId(pub u64);

impl fmt::Display for SubscriberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "subscriber {}", self.0)
    }
}

/// A trickled ICE candidate, shaped like the browser's `RTCIceCandidateInit` so it can cross
/// the room WebSocket unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceCandidate {
    /// The `candidate:…` attribute.
    pub candidate: String,
    /// Which m-section it belongs to (with BUNDLE every section shares the transport).
    pub sdp_mid: Option<String>,
    /// Index of that m-section.
    pub sdp_mline_index: Option<u16>,
    /// ICE ufrag of the session it was gathered for, so a candidate of an old session (before
    /// an ICE restart) is not applied to a new one.
    pub username_fragment: Option<String>,
}

impl From<RTCIceCandidateInit> for IceCandidate {
    fn from(init: RTCIceCandidateInit) -> Self {
        Self {
            candidate: init.candidate,
            sdp_mid: init.sdp_mid,
            sdp_mline_index: init.sdp_mline_index,
            username_fragment: init.username_fragment,
        }
    }
}

impl From<IceCandidate> for RTCIceCandidateInit {
    fn from(candidate: IceCandidate) -> Self {
        Self {
            candidate: candidate.candidate,
            sdp_mid: candidate.sdp_mid,
            sdp_mline_index: candidate.sdp_mline_index,
            username_fragment: candidate.username_fragment,
            ..Default::default()
        }
    }
}

/// Something the node has to tell one peer (publisher or subscriber), in the order it
/// happened. The room session that owns the peer's WebSocket drains these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerSignal {
    /// A local candidate of the node's side, to hand to the browser's `addIceCandidate`.
    IceCandidate(IceCandidate),
    /// The node has gathered all its candidates for the current session.
    EndOfCandidates,
    /// Subscribers only: the set of tracks changed (screen share started or stopped, the
    /// instructor reconnected); answer with [`Broadcast::subscriber_answer`](crate::Broadcast::subscriber_answer).
    Offer(String),
    /// The connection is gone (failed, closed by either side, or the broadcast ended).
    /// Nothing follows.
    Closed,
}
