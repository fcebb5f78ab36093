//! The instructor's and the learners' browsers (`signaling::test_peer`) on loopback, signalling
//! straight with a [`Broadcast`].

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use signaling::test_peer::{Feed, LocalTrack, Pump, Synthetic, TestPeer};
use signaling::{Broadcast, IceCandidate, PeerSignal, SignalingConfig, SubscriberId};
use tokio::sync::mpsc;

pub use signaling::test_peer::Network;

pub const WAIT: Duration = Duration::from_secs(20);
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

pub fn loopback_config() -> SignalingConfig {
    SignalingConfig {
        bind_ip: LOOPBACK,
        ..SignalingConfig::default()
    }
}

/// Polls `check` every 20 ms until it holds, failing the test after `WAIT`.
pub async fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let result = tokio::time::timeout(WAIT, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(result.is_ok(), "timed out waiting until {what}");
}

/// The instructor: camera, microphone, and a screen share on demand.
pub struct Instructor {
    pub peer: TestPeer,
    camera: LocalTrack,
    screen: Option<LocalTrack>,
    pumps: Vec<Pump>,
}

impl Instructor {
    /// Connects camera and microphone to `broadcast` and starts sending (video every 20 ms,
    /// audio every 20 ms), every video packet a keyframe of its own.
    pub async fn publish(broadcast: &Arc<Broadcast>) -> Self {
        Self::publish_with(broadcast, Synthetic::keyframes(), Synthetic::opus()).await
    }

    /// Like `publish`, with camera-shaped VP8 and audio timestamps that follow the wall clock.
    pub async fn publish_frames(broadcast: &Arc<Broadcast>) -> Self {
        Self::publish_with(broadcast, Synthetic::camera(), Synthetic::microphone()).await
    }

    async fn publish_with(broadcast: &Arc<Broadcast>, video: Synthetic, audio: Synthetic) -> Self {
        let (peer, candidates) = TestPeer::new(LOOPBACK, Network::Open).await.unwrap();
        let camera = peer.add_track(Feed::Camera).await.unwrap();
        let microphone = peer.add_track(Feed::Microphone).await.unwrap();
        let start = broadcast
            .publish(peer.offer().await.unwrap())
            .await
            .unwrap();
        peer.apply_answer(start.sdp).await.unwrap();
        relay_candidates_to_node(broadcast, None, candidates);
        relay_node_signals(peer.clone(), None, Arc::clone(broadcast), start.signals);
        peer.connected(WAIT).await.unwrap();

        let pumps = vec![
            Pump::start(video, camera.clone()),
            Pump::start(audio, microphone),
        ];
        // Tracks appear at the node with their first packets.
        wait_until("the node knows both tracks", || {
            broadcast.stats().published_tracks == 2
        })
        .await;
        Self {
            peer,
            camera,
            screen: None,
            pumps,
        }
    }

    /// Starts the screen share: a third track (a new one each session), renegotiated with the
    /// node.
    pub async fn share_screen(&mut self, broadcast: &Broadcast) {
        let screen = self.peer.add_track(Feed::Screen).await.unwrap();
        self.renegotiate(broadcast).await;
        self.pumps
            .push(Pump::start(Synthetic::keyframes(), screen.clone()));
        self.screen = Some(screen);
    }

    /// Stops the screen share.
    pub async fn stop_screen(&mut self, broadcast: &Broadcast) {
        let screen = self.screen.take().unwrap();
        self.pumps.pop();
        self.peer.remove_track(&screen).await.unwrap();
        self.renegotiate(broadcast).await;
    }

    async fn renegotiate(&self, broadcast: &Broadcast) {
        let offer = self.peer.offer().await.unwrap();
        let answer = broadcast.publisher_offer(offer).await.unwrap();
        self.peer.apply_answer(answer).await.unwrap();
    }

    /// When each keyframe request reached the camera.
    pub fn camera_requests(&self) -> Vec<Instant> {
        self.camera.keyframe_requests()
    }

    pub async fn close(self) {
        drop(self.pumps);
        let _ = self.peer.close().await;
    }
}

/// A learner: receive-only, counts every packet.
pub struct Learner {
    pub id: SubscriberId,
    pub peer: TestPeer,
}

impl Learner {
    /// Subscribes and answers; returns once the offer/answer is done (not yet connected).
    pub async fn join(broadcast: &Arc<Broadcast>, id: u64) -> Self {
        Self::join_on(broadcast, id, Network::Open).await
    }

    /// Like `join`, for a learner on `network`.
    pub async fn join_on(broadcast: &Arc<Broadcast>, id: u64, network: Network) -> Self {
        let id = SubscriberId(id);
        let (peer, candidates) = TestPeer::new(LOOPBACK, network).await.unwrap();
        let start = broadcast.subscribe(id).await.unwrap();
        let answer = peer.answer(start.sdp).await.unwrap();
        broadcast.subscriber_answer(id, answer).await.unwrap();
        relay_candidates_to_node(broadcast, Some(id), candidates);
        relay_node_signals(peer.clone(), Some(id), Arc::clone(broadcast), start.signals);
        Self { id, peer }
    }

    pub async fn connected(&mut self) {
        self.peer.connected(WAIT).await.unwrap();
    }

    /// Asks the node for a keyframe of the camera, as a browser whose decoder lost the
    /// picture does.
    pub async fn request_camera_keyframe(&self) {
        self.peer.request_keyframe(Feed::Camera).await.unwrap();
    }

    /// Checks the camera and the microphone arrived without a hole and unchanged.
    pub fn received_intact(&self) {
        let r = self.peer.received();
        assert!(r.camera.contiguous(), "{}: a hole in the video", self.id);
        assert!(
            r.microphone.contiguous(),
            "{}: a hole in the audio",
            self.id
        );
        assert_eq!(r.altered(), 0, "{}: payloads changed on the way", self.id);
    }

    /// Distinct packets of the camera, the microphone and the screen share received.
    pub fn counts(&self) -> (usize, usize, usize) {
        let r = self.peer.received();
        (r.camera.count(), r.microphone.count(), r.screen.count())
    }
}

fn relay_candidates_to_node(
    broadcast: &Arc<Broadcast>,
    id: Option<SubscriberId>,
    mut candidates: mpsc::UnboundedReceiver<IceCandidate>,
) {
    let broadcast = Arc::clone(broadcast);
    tokio::spawn(async move {
        while let Some(candidate) = candidates.recv().await {
            let _ = match id {
                Some(id) => broadcast.add_subscriber_candidate(id, candidate).await,
                None => broadcast.add_publisher_candidate(candidate).await,
            };
        }
    });
}

/// Applies the node's signals to `peer`; a subscriber's (`viewer`) answers the node's offers.
fn relay_node_signals(
    peer: TestPeer,
    viewer: Option<SubscriberId>,
    broadcast: Arc<Broadcast>,
    mut signals: mpsc::UnboundedReceiver<PeerSignal>,
) {
    tokio::spawn(async move {
        while let Some(signal) = signals.recv().await {
            match signal {
                PeerSignal::IceCandidate(candidate) => {
                    let _ = peer.add_remote_candidate(candidate).await;
                }
                PeerSignal::Offer(sdp) => {
                    // Fails only once the learner's connection is closed (the test is tearing
                    // down while a renegotiation was in flight): nothing to answer then.
                    if let Some(id) = viewer
                        && let Ok(answer) = peer.answer(sdp).await
                    {
                        let _ = broadcast.subscriber_answer(id, answer).await;
                    }
                }
                PeerSignal::EndOfCandidates => {}
                PeerSignal::Closed => break,
            }
        }
    });
}
