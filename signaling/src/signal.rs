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

/// A trickled ICE candidate: the room WebSocket's own type (shaped like the browser's
/// `RTCIceCandidateInit`), so candidates pass between a browser and the node unchanged. Its
/// `username_fragment` names the ICE session it was gathered for, so a candidate of an old
/// session (before an ICE restart) is not applied to a new one.
pub use protocol::IceCandidate;

/// A candidate the webrtc crate gathered, as the wire carries it. (Both types belong to other
/// crates, so this cannot be a `From`.)
pub fn to_wire_candidate(init: RTCIceCandidateInit) -> IceCandidate {
    IceCandidate {
        candidate: init.candidate,
        sdp_mid: init.sdp_mid,
        sdp_mline_index: init.sdp_mline_index,
        username_fragment: init.username_fragment,
    }
}

/// A candidate from the wire, as the webrtc crate takes it.
pub fn to_webrtc_candidate(candidate: IceCandidate) -> RTCIceCandidateInit {
    RTCIceCandidateInit {
        candidate: candidate.candidate,
        sdp_mid: candidate.sdp_mid,
        sdp_mline_index: candidate.sdp_mline_index,
        username_fragment: candidate.username_fragment,
        ..Default::default()
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
