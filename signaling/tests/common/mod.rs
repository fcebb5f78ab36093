//! Real webrtc-crate peers on loopback playing the instructor's and the learners' browsers.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc::interceptor::Slot;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use signaling::{
    Broadcast, KeyframeRequestsToApp, PeerSignal, SignalingConfig, SubscriberId,
    is_keyframe_request,
};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceCandidateInit, RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSessionDescription,
    Registry, register_default_interceptors,
};
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit, RtpSender};

pub const WAIT: Duration = Duration::from_secs(20);

pub fn loopback_config() -> SignalingConfig {
    SignalingConfig {
        bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
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

fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90_000,
        ..Default::default()
    }
}

fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        ..Default::default()
    }
}

/// Events of one test peer.
#[derive(Clone)]
struct Events {
    candidates: mpsc::UnboundedSender<RTCIceCandidateInit>,
    tracks: mpsc::UnboundedSender<Arc<dyn TrackRemote>>,
    state: Arc<watch::Sender<RTCPeerConnectionState>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let _ = self.candidates.send(init);
        }
    }
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.state.send_replace(state);
    }
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let _ = self.tracks.send(track);
    }
}

struct Peer {
    pc: Arc<dyn PeerConnection>,
    candidates: mpsc::UnboundedReceiver<RTCIceCandidateInit>,
    tracks: mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
    state: watch::Receiver<RTCPeerConnectionState>,
}

/// The network a test learner is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// UDP works.
    Open,
    /// A firewall drops UDP and lets TCP out only: the learner has no UDP socket, and only
    /// its active TCP candidates (it connects out) reach the node, as with a browser there.
    UdpBlocked,
}

async fn peer(surface_keyframe_requests: bool, network: Network) -> Peer {
    let mut media_engine = MediaEngine::default();
    for (codec, pt, kind) in [
        (vp8(), 96, RtpCodecKind::Video),
        (opus(), 111, RtpCodecKind::Audio),
    ] {
        media_engine
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: codec,
                    payload_type: pt,
                },
                kind,
            )
            .unwrap();
    }
    let mut registry = register_default_interceptors(Registry::new(), &mut media_engine).unwrap();
    if surface_keyframe_requests {
        registry = registry.with(Slot::from(14_000), KeyframeRequestsToApp::default());
    }
    let (candidates_tx, candidates) = mpsc::unbounded_channel();
    let (tracks_tx, tracks) = mpsc::unbounded_channel();
    let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
    // Boxed: a connection's build future is 20 KiB.
    let pc = Box::pin(
        PeerConnectionBuilder::new()
            .with_media_engine(media_engine)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Events {
                candidates: candidates_tx,
                tracks: tracks_tx,
                state: Arc::new(state_tx),
            }))
            .with_udp_addrs(match network {
                Network::Open => vec!["127.0.0.1:0".to_owned()],
                Network::UdpBlocked => Vec::new(),
            })
            .with_tcp_addrs(match network {
                Network::Open => Vec::new(),
                Network::UdpBlocked => vec!["127.0.0.1:0".to_owned()],
            })
            .build(),
    )
    .await
    .unwrap();
    Peer {
        pc: Arc::new(pc),
        candidates,
        tracks,
        state,
    }
}

/// Which RTP packets arrived, per track kind.
#[derive(Debug, Default)]
pub struct Received {
    pub video: BTreeSet<u16>,
    pub audio: BTreeSet<u16>,
    pub screen: BTreeSet<u16>,
    /// Payloads differing from what the instructor sent.
    pub altered: usize,
}

pub const VIDEO_SSRC: u32 = 0x1111_1111;
pub const AUDIO_SSRC: u32 = 0x2222_2222;
pub const SCREEN_SSRC: u32 = 0x3333_3333;

/// A VP8 packet: payload descriptor with S=1 (start of partition), then a keyframe header
/// (P bit clear, start code 9d 01 2a, 640x360), then filler.
pub fn vp8_payload(seq: u16) -> bytes::Bytes {
    let mut payload = vec![
        0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01,
    ];
    payload.extend(seq.to_be_bytes());
    payload.resize(200, 0xA5);
    payload.into()
}

/// An Opus packet: TOC byte for 20 ms CELT fullband, then filler.
pub fn opus_payload(seq: u16) -> bytes::Bytes {
    let mut payload = vec![0xfc];
    payload.extend(seq.to_be_bytes());
    payload.resize(60, 0x5A);
    payload.into()
}

fn local_track(stream: &str, id: &str, kind: RtpCodecKind, ssrc: u32) -> Arc<TrackLocalStaticRTP> {
    let codec = match kind {
        RtpCodecKind::Video => vp8(),
        _ => opus(),
    };
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        stream.to_owned(),
        id.to_owned(),
        id.to_owned(),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    )))
}

/// The instructor: camera, microphone, and a screen share on demand.
pub struct Instructor {
    pub pc: Arc<dyn PeerConnection>,
    /// When each keyframe request (PLI/FIR) reached the instructor, per track.
    pub camera_keyframe_requests: Arc<Mutex<Vec<Instant>>>,
    pub screen_keyframe_requests: Arc<Mutex<Vec<Instant>>>,
    screen: Option<(Arc<TrackLocalStaticRTP>, Arc<dyn RtpSender>)>,
    /// Screen-share sessions started so far.
    screen_sessions: u32,
    pumps: Vec<tokio::task::JoinHandle<()>>,
    state: watch::Receiver<RTCPeerConnectionState>,
}

fn count_keyframe_requests(track: Arc<TrackLocalStaticRTP>, log: Arc<Mutex<Vec<Instant>>>) {
    tokio::spawn(async move {
        while let Some(TrackLocalEvent::OnRtcpPacket(packets)) = track.poll().await {
            if packets.iter().any(|p| is_keyframe_request(p.as_ref())) {
                log.lock().unwrap().push(Instant::now());
            }
        }
    });
}

/// What a synthetic packet carries: payload, marker bit, RTP timestamp.
pub type Synthetic = (bytes::Bytes, bool, u32);

/// Every packet a one-packet VP8 keyframe (`vp8_payload`), timestamps 3000 apart.
fn plain_video(seq: u16) -> Synthetic {
    (vp8_payload(seq), true, u32::from(seq).wrapping_mul(3000))
}

/// Every packet an Opus packet (`opus_payload`), timestamps 3000 apart.
fn plain_audio(seq: u16) -> Synthetic {
    (opus_payload(seq), true, u32::from(seq).wrapping_mul(3000))
}

/// The first sequence number a pump sends.
const FIRST_SEQ: u16 = 1000;
/// The first RTP timestamp of the frame-shaped streams: close to the wrap, so a recording
/// sees the timestamp wrap within its first seconds.
const FIRST_TIMESTAMP: u32 = u32::MAX - 90_000;

/// VP8 as a camera sends it, one packet every 20 ms: frames of two packets (the first with
/// S=1 in its payload descriptor, the second a continuation carrying the marker), 40 ms
/// apart on a 90 kHz clock; a keyframe (640x360) first and every 25th frame.
pub fn vp8_frame_packet(seq: u16) -> Synthetic {
    let n = u32::from(seq.wrapping_sub(FIRST_SEQ));
    let frame = n / 2;
    let timestamp = FIRST_TIMESTAMP.wrapping_add(frame * 3600);
    let mut payload = if n % 2 == 0 {
        if frame % 25 == 0 {
            vec![
                0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01,
            ]
        } else {
            vec![0x10, 0x11, 0x02, 0x00]
        }
    } else {
        vec![0x00]
    };
    payload.extend(seq.to_be_bytes());
    payload.resize(300, 0xA5);
    (payload.into(), n % 2 == 1, timestamp)
}

/// Opus as a microphone sends it: a 20 ms CELT packet every 20 ms, 960 apart on 48 kHz.
pub fn opus_frame_packet(seq: u16) -> Synthetic {
    let n = u32::from(seq.wrapping_sub(FIRST_SEQ));
    (
        opus_payload(seq),
        true,
        FIRST_TIMESTAMP.wrapping_add(n * 960),
    )
}

/// Sends RTP on `track` every `period` until aborted.
fn pump(
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    payload_type: u8,
    period: Duration,
    make: fn(u16) -> Synthetic,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        let mut seq: u16 = FIRST_SEQ;
        loop {
            tick.tick().await;
            let (payload, marker, timestamp) = make(seq);
            let packet = rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    marker,
                    payload_type,
                    sequence_number: seq,
                    timestamp,
                    ssrc,
                    ..Default::default()
                },
                payload,
            };
            // Before the connection is up the track is not bound yet: those are just lost.
            let _ = track.write_rtp(packet).await;
            seq = seq.wrapping_add(1);
        }
    })
}

impl Instructor {
    /// Connects camera and microphone to `broadcast` and starts sending (video every 20 ms,
    /// audio every 20 ms), every video packet a keyframe of its own.
    pub async fn publish(broadcast: &Arc<Broadcast>) -> Self {
        Self::publish_with(broadcast, plain_video, plain_audio).await
    }

    /// Like `publish`, with camera-shaped VP8 (`vp8_frame_packet`) and audio timestamps that
    /// follow the wall clock (`opus_frame_packet`).
    pub async fn publish_frames(broadcast: &Arc<Broadcast>) -> Self {
        Self::publish_with(broadcast, vp8_frame_packet, opus_frame_packet).await
    }

    async fn publish_with(
        broadcast: &Arc<Broadcast>,
        video: fn(u16) -> Synthetic,
        audio: fn(u16) -> Synthetic,
    ) -> Self {
        let peer = peer(true, Network::Open).await;
        let camera = local_track("camera", "camera-video", RtpCodecKind::Video, VIDEO_SSRC);
        let microphone = local_track("camera", "microphone", RtpCodecKind::Audio, AUDIO_SSRC);
        peer.pc
            .add_track(Arc::clone(&camera) as Arc<dyn TrackLocal>)
            .await
            .unwrap();
        peer.pc
            .add_track(Arc::clone(&microphone) as Arc<dyn TrackLocal>)
            .await
            .unwrap();
        let camera_keyframe_requests = Arc::new(Mutex::new(Vec::new()));
        count_keyframe_requests(Arc::clone(&camera), Arc::clone(&camera_keyframe_requests));

        let offer = peer.pc.create_offer(None).await.unwrap();
        peer.pc.set_local_description(offer).await.unwrap();
        let offer = peer.pc.local_description().await.unwrap().sdp;
        let start = broadcast.publish(offer).await.unwrap();
        peer.pc
            .set_remote_description(RTCSessionDescription::answer(start.sdp).unwrap())
            .await
            .unwrap();
        relay_candidates_to_node(broadcast, None, peer.candidates, Network::Open);
        relay_node_signals(
            Arc::clone(&peer.pc),
            None,
            Arc::clone(broadcast),
            start.signals,
        );
        let mut state = peer.state.clone();
        wait_connected(&mut state).await;

        let pumps = vec![
            pump(camera, VIDEO_SSRC, 96, Duration::from_millis(20), video),
            pump(
                microphone,
                AUDIO_SSRC,
                111,
                Duration::from_millis(20),
                audio,
            ),
        ];
        // Tracks appear at the node with their first packets.
        wait_until("the node knows both tracks", || {
            broadcast.stats().published_tracks == 2
        })
        .await;
        drop(peer.tracks);
        Self {
            pc: peer.pc,
            camera_keyframe_requests,
            screen_keyframe_requests: Arc::new(Mutex::new(Vec::new())),
            screen: None,
            screen_sessions: 0,
            pumps,
            state,
        }
    }

    /// Starts the screen share: a third track, renegotiated with the node.
    pub async fn share_screen(&mut self, broadcast: &Broadcast) {
        // Each session a new track with an SSRC of its own, on a new send-only transceiver,
        // as a browser's `addTrack` after `removeTrack` makes a new m-section.
        self.screen_sessions += 1;
        let ssrc = SCREEN_SSRC + self.screen_sessions - 1;
        let id = format!("screen-video-{}", self.screen_sessions);
        let screen = local_track("screen", &id, RtpCodecKind::Video, ssrc);
        let transceiver = self
            .pc
            .add_transceiver_from_track(
                Arc::clone(&screen) as Arc<dyn TrackLocal>,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendonly,
                    ..Default::default()
                }),
            )
            .await
            .unwrap();
        let sender = transceiver.sender().await.unwrap().unwrap();
        count_keyframe_requests(
            Arc::clone(&screen),
            Arc::clone(&self.screen_keyframe_requests),
        );
        self.renegotiate(broadcast).await;
        self.pumps.push(pump(
            Arc::clone(&screen),
            ssrc,
            96,
            Duration::from_millis(20),
            plain_video,
        ));
        self.screen = Some((screen, sender));
    }

    /// Stops the screen share.
    pub async fn stop_screen(&mut self, broadcast: &Broadcast) {
        let (_, sender) = self.screen.take().unwrap();
        if let Some(pump) = self.pumps.pop() {
            pump.abort();
        }
        self.pc.remove_track(&sender).await.unwrap();
        self.renegotiate(broadcast).await;
    }

    async fn renegotiate(&self, broadcast: &Broadcast) {
        let offer = self.pc.create_offer(None).await.unwrap();
        self.pc.set_local_description(offer).await.unwrap();
        let offer = self.pc.local_description().await.unwrap().sdp;
        let answer = broadcast.publisher_offer(offer).await.unwrap();
        self.pc
            .set_remote_description(RTCSessionDescription::answer(answer).unwrap())
            .await
            .unwrap();
    }

    pub fn camera_requests(&self) -> Vec<Instant> {
        self.camera_keyframe_requests.lock().unwrap().clone()
    }

    pub async fn close(self) {
        for pump in self.pumps {
            pump.abort();
        }
        let _ = self.pc.close().await;
    }
}

/// A learner: receive-only, records every packet.
pub struct Learner {
    pub id: SubscriberId,
    pub pc: Arc<dyn PeerConnection>,
    pub received: Arc<Mutex<Received>>,
    pub state: watch::Receiver<RTCPeerConnectionState>,
    /// The camera track as the learner sees it, once it surfaced.
    pub camera: Arc<Mutex<Option<Arc<dyn TrackRemote>>>>,
    /// Every candidate the node gave this learner, in its offers and trickled.
    pub node_candidates: Arc<Mutex<Vec<String>>>,
}

impl Learner {
    /// Subscribes and answers; returns once the offer/answer is done (not yet connected).
    pub async fn join(broadcast: &Arc<Broadcast>, id: u64) -> Self {
        Self::join_on(broadcast, id, Network::Open).await
    }

    /// Like `join`, for a learner on `network`.
    pub async fn join_on(broadcast: &Arc<Broadcast>, id: u64, network: Network) -> Self {
        let id = SubscriberId(id);
        let peer = peer(false, network).await;
        let start = broadcast.subscribe(id).await.unwrap();
        let node_candidates = Arc::new(Mutex::new(sdp_candidates(&start.sdp)));
        answer(broadcast, &peer.pc, id, start.sdp, network).await;
        relay_candidates_to_node(broadcast, Some(id), peer.candidates, network);
        relay_node_signals(
            Arc::clone(&peer.pc),
            Some((id, network, Arc::clone(&node_candidates))),
            Arc::clone(broadcast),
            start.signals,
        );
        let received = Arc::new(Mutex::new(Received::default()));
        let camera = Arc::new(Mutex::new(None));
        record_tracks(peer.tracks, Arc::clone(&received), Arc::clone(&camera));
        Self {
            id,
            pc: peer.pc,
            received,
            state: peer.state,
            camera,
            node_candidates,
        }
    }

    pub async fn connected(&mut self) {
        wait_connected(&mut self.state).await;
    }

    /// Asks the node for a keyframe of the camera, as a browser whose decoder lost the
    /// picture does.
    pub async fn request_camera_keyframe(&self) {
        let camera = self
            .camera
            .lock()
            .unwrap()
            .clone()
            .expect("no camera track yet");
        let media_ssrc = camera.ssrcs().await[0];
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc,
        };
        camera.write_rtcp(vec![Box::new(pli)]).await.unwrap();
    }

    pub fn counts(&self) -> (usize, usize, usize) {
        let r = self.received.lock().unwrap();
        (r.video.len(), r.audio.len(), r.screen.len())
    }
}

async fn wait_connected(state: &mut watch::Receiver<RTCPeerConnectionState>) {
    let connected = tokio::time::timeout(
        WAIT,
        state.wait_for(|s| *s == RTCPeerConnectionState::Connected),
    )
    .await;
    assert!(matches!(connected, Ok(Ok(_))), "peer did not connect");
}

/// The `a=candidate:` lines of an SDP, without the prefix.
fn sdp_candidates(sdp: &str) -> Vec<String> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a="))
        .filter(|l| l.starts_with("candidate:"))
        .map(str::to_owned)
        .collect()
}

fn is_passive_tcp(candidate: &str) -> bool {
    candidate.contains(" tcp ") && candidate.contains("tcptype passive")
}

async fn answer(
    broadcast: &Broadcast,
    pc: &Arc<dyn PeerConnection>,
    id: SubscriberId,
    offer: String,
    network: Network,
) {
    if let Err(err) = pc
        .set_remote_description(RTCSessionDescription::offer(offer.clone()).unwrap())
        .await
    {
        panic!("{err}: {offer}");
    }
    // Errors only once the learner's connection is closed (the test is tearing down while
    // a renegotiation was in flight): nothing to answer then.
    let Ok(answer) = pc.create_answer(None).await else {
        return;
    };
    if pc.set_local_description(answer).await.is_err() {
        return;
    }
    let Some(answer) = pc.local_description().await else {
        return;
    };
    let sdp = match network {
        Network::Open => answer.sdp,
        Network::UdpBlocked => answer
            .sdp
            .split_inclusive('\n')
            .filter(|l| !(l.starts_with("a=candidate:") && is_passive_tcp(l)))
            .collect(),
    };
    let _ = broadcast.subscriber_answer(id, sdp).await;
}

fn relay_candidates_to_node(
    broadcast: &Arc<Broadcast>,
    id: Option<SubscriberId>,
    mut candidates: mpsc::UnboundedReceiver<RTCIceCandidateInit>,
    network: Network,
) {
    let broadcast = Arc::clone(broadcast);
    tokio::spawn(async move {
        while let Some(candidate) = candidates.recv().await {
            if network == Network::UdpBlocked && is_passive_tcp(&candidate.candidate) {
                continue;
            }
            let candidate = signaling::to_wire_candidate(candidate);
            let _ = match id {
                Some(id) => broadcast.add_subscriber_candidate(id, candidate).await,
                None => broadcast.add_publisher_candidate(candidate).await,
            };
        }
    });
}

/// A subscriber: its id, its network, and where the node's candidates are noted.
type Viewer = (SubscriberId, Network, Arc<Mutex<Vec<String>>>);

fn relay_node_signals(
    pc: Arc<dyn PeerConnection>,
    viewer: Option<Viewer>,
    broadcast: Arc<Broadcast>,
    mut signals: mpsc::UnboundedReceiver<PeerSignal>,
) {
    tokio::spawn(async move {
        while let Some(signal) = signals.recv().await {
            match signal {
                PeerSignal::IceCandidate(candidate) => {
                    if let Some((_, _, seen)) = &viewer {
                        seen.lock().unwrap().push(candidate.candidate.clone());
                    }
                    let _ = pc
                        .add_ice_candidate(signaling::to_webrtc_candidate(candidate))
                        .await;
                }
                PeerSignal::Offer(sdp) => {
                    if let Some((id, network, seen)) = &viewer {
                        seen.lock().unwrap().extend(sdp_candidates(&sdp));
                        answer(&broadcast, &pc, *id, sdp, *network).await;
                    }
                }
                PeerSignal::EndOfCandidates => {}
                PeerSignal::Closed => break,
            }
        }
    });
}

fn record_tracks(
    mut tracks: mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
    received: Arc<Mutex<Received>>,
    camera: Arc<Mutex<Option<Arc<dyn TrackRemote>>>>,
) {
    tokio::spawn(async move {
        while let Some(track) = tracks.recv().await {
            let received = Arc::clone(&received);
            let camera = Arc::clone(&camera);
            tokio::spawn(async move {
                let stream = track.stream_id().await;
                let kind = track.kind().await;
                if kind == RtpCodecKind::Video && stream == "camera" {
                    *camera.lock().unwrap() = Some(Arc::clone(&track));
                }
                while let Some(event) = track.poll().await {
                    let TrackRemoteEvent::OnRtpPacket(packet) = event else {
                        continue;
                    };
                    let seq = packet.header.sequence_number;
                    let expected = match kind {
                        RtpCodecKind::Video => vp8_payload(seq),
                        _ => opus_payload(seq),
                    };
                    let mut r = received.lock().unwrap();
                    if packet.payload != expected {
                        r.altered += 1;
                    }
                    match (kind, stream.as_str()) {
                        (RtpCodecKind::Video, "screen") => r.screen.insert(seq),
                        (RtpCodecKind::Video, _) => r.video.insert(seq),
                        _ => r.audio.insert(seq),
                    };
                }
            });
        }
    });
}

/// True if `seqs` has no hole between its smallest and largest member.
pub fn contiguous(seqs: &BTreeSet<u16>) -> bool {
    match (seqs.first(), seqs.last()) {
        (Some(first), Some(last)) => usize::from(last - first) + 1 == seqs.len(),
        _ => true,
    }
}
