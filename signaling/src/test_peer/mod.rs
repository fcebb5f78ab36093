//! A webrtc-crate peer playing a browser, for tests and load runs: the instructor's, sending
//! synthetic camera, microphone and screen share, or a learner's, receiving and counting what
//! arrives. Compiled with the `test-peer` feature only.
//!
//! The peer only speaks WebRTC; how its offers, answers and candidates travel (straight to a
//! [`Broadcast`](crate::Broadcast), over the room WebSocket, to another SFU) is its user's.
//!
//! # Layout
//!
//! - `mod.rs`: [`TestPeer`]: the connection, negotiation, candidates, what arrives.
//! - `local.rs`: the [`LocalTrack`]s it sends, and the keyframe requests that reach them.
//! - `media.rs`: [`Synthetic`] media, and the [`Pump`] that sends it to an [`RtpSink`].
//! - `tally.rs`: [`Received`]: what a receiving peer counts per [`Feed`].

mod local;
mod media;
mod tally;

pub use local::LocalTrack;
pub use media::{Outgoing, Pump, RtpSink, Sent, Synthetic, load_description};
pub use tally::{Received, SeqCounter, Tally};

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rtc::interceptor::Slot;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodecParameters, RtpCodecKind};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSessionDescription, Registry,
    register_default_interceptors,
};
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};

use crate::config::KeyframeRequestsToApp;
use crate::signal::{IceCandidate, to_webrtc_candidate, to_wire_candidate};

/// Video payload type (VP8), as the node and Janus are configured.
pub const VIDEO_PT: u8 = 96;
/// Audio payload type (Opus).
pub const AUDIO_PT: u8 = 111;
/// The camera's SSRC.
pub const VIDEO_SSRC: u32 = 0x1111_1111;
/// The microphone's SSRC.
pub const AUDIO_SSRC: u32 = 0x2222_2222;
/// The first screen-share session's SSRC; each later session takes the next number.
pub const SCREEN_SSRC: u32 = 0x3333_3333;

/// Why a test peer's step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The WebRTC stack refused (a malformed SDP, a closed connection).
    #[error("webrtc: {0}")]
    WebRtc(#[from] webrtc::error::Error),
    /// The connection has no local description after setting one.
    #[error("no local description after negotiation")]
    NoLocalDescription,
    /// A transceiver made around a track has no sender.
    #[error("a track's transceiver has no sender")]
    NoSender,
    /// No track of that feed has arrived.
    #[error("no {0:?} track has arrived")]
    NoTrack(Feed),
    /// The connection failed or was closed before it connected.
    #[error("the peer connection went {0:?}")]
    NotConnected(RTCPeerConnectionState),
    /// It did not connect in time.
    #[error("the peer connection did not connect within {0:?}")]
    Timeout(Duration),
}

/// The network a test peer is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// UDP works.
    Open,
    /// A firewall drops UDP and lets TCP out only: the peer has no UDP socket, and only its
    /// active TCP candidates (it connects out) reach the other side, as with a browser there.
    UdpBlocked,
}

/// What a track carries, from its kind and stream id (`screen` for the screen share).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feed {
    /// The camera's video.
    Camera,
    /// The microphone's audio.
    Microphone,
    /// The screen share's video.
    Screen,
}

impl Feed {
    fn of(kind: RtpCodecKind, stream_id: &str) -> Self {
        match kind {
            RtpCodecKind::Video if stream_id == "screen" => Self::Screen,
            RtpCodecKind::Video => Self::Camera,
            _ => Self::Microphone,
        }
    }
}

/// A browser's peer connection with VP8 (96) and Opus (111) and the default interceptors
/// (NACK, reports, TWCC, as a browser has), keyframe requests surfacing to its own tracks as
/// they do to a browser's encoder. Clones are handles to the same connection.
#[derive(Clone)]
pub struct TestPeer {
    pc: Arc<dyn PeerConnection>,
    network: Network,
    state: watch::Receiver<RTCPeerConnectionState>,
    received: Arc<Mutex<Received>>,
    /// The latest track of each feed that arrived, to ask it for keyframes.
    remote_tracks: Arc<Mutex<HashMap<Feed, Arc<dyn TrackRemote>>>>,
    /// The `candidate:…` lines the other side gave, in its offers and trickled.
    remote_candidates: Arc<Mutex<Vec<String>>>,
    /// Screen-share sessions started, for their tracks' ids and SSRCs.
    screens: Arc<AtomicU32>,
}

impl std::fmt::Debug for TestPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPeer")
            .field("network", &self.network)
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

impl TestPeer {
    /// A peer with its sockets on `bind` (any port), on `network`; and its local candidates,
    /// to trickle to the other side (passive TCP ones left out on a network that blocks UDP:
    /// nobody can reach them there).
    pub async fn new(
        bind: IpAddr,
        network: Network,
    ) -> Result<(Self, mpsc::UnboundedReceiver<IceCandidate>), PeerError> {
        let mut media_engine = MediaEngine::default();
        for (codec, payload_type, kind) in [
            (local::vp8(), VIDEO_PT, RtpCodecKind::Video),
            (local::opus(), AUDIO_PT, RtpCodecKind::Audio),
        ] {
            media_engine.register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: codec,
                    payload_type,
                },
                kind,
            )?;
        }
        let registry = register_default_interceptors(Registry::new(), &mut media_engine)?
            .with(Slot::from(14_000), KeyframeRequestsToApp::default());
        let (candidates_tx, candidates) = mpsc::unbounded_channel();
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let received = Arc::new(Mutex::new(Received::default()));
        let remote_tracks = Arc::new(Mutex::new(HashMap::new()));
        let any_port = vec![SocketAddr::new(bind, 0)];
        let (udp, tcp) = match network {
            Network::Open => (any_port, Vec::new()),
            Network::UdpBlocked => (Vec::new(), any_port),
        };
        // Boxed: a connection's build future is 20 KiB.
        let pc = Box::pin(
            PeerConnectionBuilder::new()
                .with_media_engine(media_engine)
                .with_interceptor_registry(registry)
                .with_handler(Arc::new(Events {
                    network,
                    candidates: candidates_tx,
                    state: state_tx,
                    received: Arc::clone(&received),
                    remote_tracks: Arc::clone(&remote_tracks),
                }))
                .with_udp_addrs(udp)
                .with_tcp_addrs(tcp)
                .build(),
        )
        .await?;
        let peer = Self {
            pc: Arc::new(pc),
            network,
            state,
            received,
            remote_tracks,
            remote_candidates: Arc::default(),
            screens: Arc::default(),
        };
        Ok((peer, candidates))
    }

    /// The peer connection itself, for what this peer does not cover (a data channel).
    pub fn connection(&self) -> &Arc<dyn PeerConnection> {
        &self.pc
    }

    /// An offer for the current tracks, set as the local description.
    pub async fn offer(&self) -> Result<String, PeerError> {
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer).await?;
        self.local_sdp().await
    }

    /// Applies the other side's answer to this peer's offer.
    pub async fn apply_answer(&self, sdp: String) -> Result<(), PeerError> {
        let answer = RTCSessionDescription::answer(sdp)?;
        self.pc.set_remote_description(answer).await?;
        Ok(())
    }

    /// Takes the other side's offer and answers it.
    pub async fn answer(&self, offer: String) -> Result<String, PeerError> {
        lock(&self.remote_candidates).extend(sdp_candidates(&offer));
        self.pc
            .set_remote_description(RTCSessionDescription::offer(offer)?)
            .await?;
        let answer = self.pc.create_answer(None).await?;
        self.pc.set_local_description(answer).await?;
        self.local_sdp().await
    }

    /// Applies a candidate the other side trickled.
    pub async fn add_remote_candidate(&self, candidate: IceCandidate) -> Result<(), PeerError> {
        lock(&self.remote_candidates).push(candidate.candidate.clone());
        self.pc
            .add_ice_candidate(to_webrtc_candidate(candidate))
            .await?;
        Ok(())
    }

    /// Every `candidate:…` line the other side gave so far, in its offers and trickled.
    pub fn remote_candidates(&self) -> Vec<String> {
        lock(&self.remote_candidates).clone()
    }

    /// Waits until the connection is up; fails as soon as it failed or closed, or after `wait`.
    pub async fn connected(&self, wait: Duration) -> Result<(), PeerError> {
        let mut state = self.state.clone();
        let reached = tokio::time::timeout(
            wait,
            state.wait_for(|s| {
                matches!(
                    s,
                    RTCPeerConnectionState::Connected
                        | RTCPeerConnectionState::Failed
                        | RTCPeerConnectionState::Closed
                )
            }),
        )
        .await;
        match reached {
            Ok(Ok(s)) if *s == RTCPeerConnectionState::Connected => Ok(()),
            Ok(Ok(s)) => Err(PeerError::NotConnected(*s)),
            Ok(Err(_)) => Err(PeerError::NotConnected(RTCPeerConnectionState::Closed)),
            Err(_) => Err(PeerError::Timeout(wait)),
        }
    }

    /// The connection's state now.
    pub fn state(&self) -> RTCPeerConnectionState {
        *self.state.borrow()
    }

    /// Adds a track of `feed` to send: the camera (`camera-video`) and the microphone
    /// (`microphone`) in the stream `camera`; a screen share (`screen-video-<n>`, a new SSRC
    /// each session) in the stream `screen`, on a new send-only transceiver, as a browser's
    /// `addTrack` after `removeTrack` makes a new m-section. Negotiate it with [`offer`](Self::offer).
    pub async fn add_track(&self, feed: Feed) -> Result<LocalTrack, PeerError> {
        let session = match feed {
            Feed::Screen => self.screens.fetch_add(1, Ordering::Relaxed) + 1,
            _ => 0,
        };
        let (track, ssrc, payload_type) = local::track(feed, session);
        let sender = match feed {
            Feed::Screen => {
                let transceiver = self
                    .pc
                    .add_transceiver_from_track(
                        Arc::clone(&track) as Arc<dyn TrackLocal>,
                        Some(RTCRtpTransceiverInit {
                            direction: RTCRtpTransceiverDirection::Sendonly,
                            ..Default::default()
                        }),
                    )
                    .await?;
                transceiver.sender().await?.ok_or(PeerError::NoSender)?
            }
            _ => {
                self.pc
                    .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
                    .await?
            }
        };
        Ok(LocalTrack::new(track, sender, ssrc, payload_type))
    }

    /// Stops sending `track` (renegotiate with [`offer`](Self::offer)).
    pub async fn remove_track(&self, track: &LocalTrack) -> Result<(), PeerError> {
        self.pc.remove_track(&track.sender).await?;
        Ok(())
    }

    /// What arrived so far. Do not hold it across an `.await`.
    pub fn received(&self) -> MutexGuard<'_, Received> {
        lock(&self.received)
    }

    /// Asks the sender of `feed` for a keyframe (a PLI), as a browser whose decoder lost the
    /// picture does.
    pub async fn request_keyframe(&self, feed: Feed) -> Result<(), PeerError> {
        let track = lock(&self.remote_tracks)
            .get(&feed)
            .cloned()
            .ok_or(PeerError::NoTrack(feed))?;
        let media_ssrc = *track
            .ssrcs()
            .await
            .first()
            .ok_or(PeerError::NoTrack(feed))?;
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc,
        };
        track.write_rtcp(vec![Box::new(pli)]).await?;
        Ok(())
    }

    /// Closes the connection.
    pub async fn close(&self) -> Result<(), PeerError> {
        self.pc.close().await?;
        Ok(())
    }

    async fn local_sdp(&self) -> Result<String, PeerError> {
        let sdp = self
            .pc
            .local_description()
            .await
            .ok_or(PeerError::NoLocalDescription)?
            .sdp;
        Ok(match self.network {
            Network::Open => sdp,
            // Nobody reaches a listening socket behind that firewall.
            Network::UdpBlocked => sdp
                .split_inclusive('\n')
                .filter(|l| !(l.starts_with("a=candidate:") && is_passive_tcp(l)))
                .collect(),
        })
    }
}

/// A test peer's events.
struct Events {
    network: Network,
    candidates: mpsc::UnboundedSender<IceCandidate>,
    state: watch::Sender<RTCPeerConnectionState>,
    received: Arc<Mutex<Received>>,
    remote_tracks: Arc<Mutex<HashMap<Feed, Arc<dyn TrackRemote>>>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        let Ok(init) = event.candidate.to_json() else {
            return;
        };
        if self.network == Network::UdpBlocked && is_passive_tcp(&init.candidate) {
            return;
        }
        let _ = self.candidates.send(to_wire_candidate(init));
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.state.send_replace(state);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let feed = Feed::of(track.kind().await, &track.stream_id().await);
        lock(&self.remote_tracks).insert(feed, Arc::clone(&track));
        let received = Arc::clone(&self.received);
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                if let TrackRemoteEvent::OnRtpPacket(packet) = event {
                    lock(&received).record(feed, &packet, Instant::now());
                }
            }
        });
    }
}

/// The `candidate:…` lines of an SDP, without the `a=`.
fn sdp_candidates(sdp: &str) -> impl Iterator<Item = String> + '_ {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a="))
        .filter(|l| l.starts_with("candidate:"))
        .map(str::to_owned)
}

fn is_passive_tcp(candidate: &str) -> bool {
    candidate.contains(" tcp ") && candidate.contains("tcptype passive")
}

/// Every update is one push or insert: a poisoned lock still holds consistent data.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
