//! The instructor's broadcast through the room connection: a real node, room clients over
//! WebSocket, and real webrtc-crate peers playing the browsers.

#![allow(clippy::unwrap_used)]

use e2e as common;

use common::{Client, TestNode, WAIT};
use futures_util::StreamExt;
use protocol::server::Phase;
use protocol::{ClientMsg, ErrorCode, IceCandidate, Role, ServerMsg};
use rtc::interceptor::Slot;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use signaling::{KeyframeRequestsToApp, is_keyframe_request};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
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

const VIDEO_SSRC: u32 = 0x1111_1111;
const AUDIO_SSRC: u32 = 0x2222_2222;
const SCREEN_SSRC: u32 = 0x3333_3333;

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

/// A VP8 keyframe packet carrying its sequence number.
fn vp8_payload(seq: u16) -> bytes::Bytes {
    let mut payload = vec![
        0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01,
    ];
    payload.extend(seq.to_be_bytes());
    payload.resize(200, 0xA5);
    payload.into()
}

/// An Opus packet carrying its sequence number.
fn opus_payload(seq: u16) -> bytes::Bytes {
    let mut payload = vec![0xfc];
    payload.extend(seq.to_be_bytes());
    payload.resize(60, 0x5A);
    payload.into()
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

/// Which RTP packets a viewer received: the camera's and the microphone's, and those of any
/// other track by its id (a screen share).
#[derive(Debug, Default)]
struct Received {
    video: BTreeSet<u16>,
    audio: BTreeSet<u16>,
    others: std::collections::HashMap<String, BTreeSet<u16>>,
    /// Payloads differing from what the instructor sent.
    altered: usize,
}

/// A browser: one room connection and one peer connection, negotiated over it.
struct Browser {
    /// What the test sends on the room connection.
    send: mpsc::UnboundedSender<ClientMsg>,
    /// Everything the node sent (media messages included, after the browser acted on them).
    inbox: mpsc::UnboundedReceiver<ServerMsg>,
    pc: Arc<dyn PeerConnection>,
    state: watch::Receiver<RTCPeerConnectionState>,
    received: Arc<Mutex<Received>>,
    /// Keyframe requests (PLI/FIR) that reached this browser's camera, once it publishes.
    keyframe_requests: Arc<AtomicUsize>,
}

impl Browser {
    /// Takes over `client` (welcomed already): answers the node's offers, applies its answers
    /// and candidates, trickles its own candidates.
    async fn new(client: Client) -> Self {
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
        // Keyframe requests reach the page's tracks, as they do a browser's encoder.
        let registry = register_default_interceptors(Registry::new(), &mut media_engine)
            .unwrap()
            .with(Slot::from(14_000), KeyframeRequestsToApp::default());
        let (candidates_tx, candidates) = mpsc::unbounded_channel();
        let (tracks_tx, tracks) = mpsc::unbounded_channel();
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let pc: Arc<dyn PeerConnection> = Arc::new(
            Box::pin(
                PeerConnectionBuilder::new()
                    .with_media_engine(media_engine)
                    .with_interceptor_registry(registry)
                    .with_handler(Arc::new(Events {
                        candidates: candidates_tx,
                        tracks: tracks_tx,
                        state: Arc::new(state_tx),
                    }))
                    .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
                    .build(),
            )
            .await
            .unwrap(),
        );
        let received = Arc::new(Mutex::new(Received::default()));
        record_tracks(tracks, Arc::clone(&received));
        let (send, outgoing) = mpsc::unbounded_channel();
        let (inbox_tx, inbox) = mpsc::unbounded_channel();
        tokio::spawn(drive(
            client,
            Arc::clone(&pc),
            outgoing,
            candidates,
            inbox_tx,
        ));
        Self {
            send,
            inbox,
            pc,
            state,
            received,
            keyframe_requests: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn send(&self, msg: ClientMsg) {
        self.send.send(msg).unwrap();
    }

    /// The next message the node sent that `pick` accepts, skipping others.
    async fn until<T>(&mut self, mut pick: impl FnMut(&ServerMsg) -> Option<T>) -> T {
        tokio::time::timeout(WAIT, async {
            loop {
                let msg = self.inbox.recv().await.expect("the connection is open");
                if let Some(t) = pick(&msg) {
                    return t;
                }
            }
        })
        .await
        .expect("the expected message arrives in time")
    }

    async fn connected(&mut self) {
        let connected = tokio::time::timeout(
            WAIT,
            self.state
                .wait_for(|s| *s == RTCPeerConnectionState::Connected),
        )
        .await;
        assert!(matches!(connected, Ok(Ok(_))), "the peer did not connect");
    }

    fn counts(&self) -> (usize, usize) {
        let r = self.received.lock().unwrap();
        (r.video.len(), r.audio.len())
    }
}

fn to_init(c: IceCandidate) -> RTCIceCandidateInit {
    RTCIceCandidateInit {
        candidate: c.candidate,
        sdp_mid: c.sdp_mid,
        sdp_mline_index: c.sdp_mline_index,
        username_fragment: c.username_fragment,
        ..Default::default()
    }
}

/// The browser's side of the room connection: the page's media code.
async fn drive(
    mut client: Client,
    pc: Arc<dyn PeerConnection>,
    mut outgoing: mpsc::UnboundedReceiver<ClientMsg>,
    mut candidates: mpsc::UnboundedReceiver<RTCIceCandidateInit>,
    inbox: mpsc::UnboundedSender<ServerMsg>,
) {
    loop {
        tokio::select! {
            msg = outgoing.recv() => {
                let Some(msg) = msg else { break };
                client.send(&msg).await;
            }
            Some(init) = candidates.recv() => {
                client
                    .send(&ClientMsg::MediaCandidate {
                        candidate: IceCandidate {
                            candidate: init.candidate,
                            sdp_mid: init.sdp_mid,
                            sdp_mline_index: init.sdp_mline_index,
                            username_fragment: init.username_fragment,
                        },
                    })
                    .await;
            }
            frame = client.ws.next() => {
                let bytes = match frame {
                    Some(Ok(Message::Binary(b))) => b.to_vec(),
                    Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
                    Some(Ok(_)) => continue,
                    None | Some(Err(_)) => break,
                };
                let msg = client.codec.decode_server(&bytes).expect("valid frames");
                match &msg {
                    ServerMsg::MediaOffer { sdp } => {
                        if let Some(sdp) = answer(&pc, sdp.clone()).await {
                            client.send(&ClientMsg::MediaAnswer { sdp }).await;
                        }
                    }
                    ServerMsg::MediaAnswer { sdp } => {
                        let answer = RTCSessionDescription::answer(sdp.clone()).unwrap();
                        pc.set_remote_description(answer).await.unwrap();
                    }
                    ServerMsg::MediaCandidate { candidate } => {
                        let _ = pc.add_ice_candidate(to_init(candidate.clone())).await;
                    }
                    _ => {}
                }
                if inbox.send(msg).is_err() {
                    break;
                }
            }
        }
    }
    let _ = client.ws.close(None).await;
    let _ = pc.close().await;
}

/// The answer to the node's offer; none if this peer connection cannot take it (one that
/// was closed after `media_stopped`, say: the test only looks at the offer then).
async fn answer(pc: &Arc<dyn PeerConnection>, offer: String) -> Option<String> {
    let offer = RTCSessionDescription::offer(offer).ok()?;
    pc.set_remote_description(offer).await.ok()?;
    let answer = pc.create_answer(None).await.ok()?;
    pc.set_local_description(answer).await.ok()?;
    Some(pc.local_description().await?.sdp)
}

fn record_tracks(
    mut tracks: mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
    received: Arc<Mutex<Received>>,
) {
    tokio::spawn(async move {
        while let Some(track) = tracks.recv().await {
            let received = Arc::clone(&received);
            tokio::spawn(async move {
                let kind = track.kind().await;
                let id = track.track_id().await;
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
                    // The node prefixes the instructor's track ids with its own numbers
                    // (`<n>-camera-video`), once per node the track passes.
                    match id.as_str() {
                        id if id.ends_with("-camera-video") => r.video.insert(seq),
                        id if id.ends_with("-microphone") => r.audio.insert(seq),
                        id if id.ends_with("-screen-video") => r
                            .others
                            .entry("screen-video".into())
                            .or_default()
                            .insert(seq),
                        id => r.others.entry(id.to_owned()).or_default().insert(seq),
                    };
                }
            });
        }
    });
}

fn local_track(id: &str, kind: RtpCodecKind, ssrc: u32) -> Arc<TrackLocalStaticRTP> {
    let codec = match kind {
        RtpCodecKind::Video => vp8(),
        _ => opus(),
    };
    let stream = if id.starts_with("screen") {
        "screen"
    } else {
        "camera"
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

/// Sends synthetic RTP on `track` every 20 ms until aborted.
fn pump(
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    payload_type: u8,
    make: fn(u16) -> bytes::Bytes,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut seq: u16 = 1000;
        loop {
            tick.tick().await;
            let packet = rtc::rtp::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    marker: true,
                    payload_type,
                    sequence_number: seq,
                    timestamp: u32::from(seq) * 3000,
                    ssrc,
                    ..Default::default()
                },
                payload: make(seq),
            };
            let _ = track.write_rtp(packet).await;
            seq = seq.wrapping_add(1);
        }
    })
}

/// True if `seqs` has no hole between its smallest and largest member.
fn contiguous(seqs: &BTreeSet<u16>) -> bool {
    match (seqs.first(), seqs.last()) {
        (Some(first), Some(last)) => usize::from(last - first) + 1 == seqs.len(),
        _ => true,
    }
}

/// Enters and reads the welcome and the media settings after it.
async fn enter(node: &TestNode, user: &str, role: Role) -> Client {
    let (mut client, _) = node.enter(user, user, role).await;
    assert_eq!(
        client.recv().await,
        ServerMsg::MediaConfig {
            ice_servers: vec![]
        },
        "the media settings follow the welcome"
    );
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learners_receive_the_instructor_only_while_the_lecture_is_live() {
    let node =
        TestNode::start_with(|c| c.media.bind_ip = Some(IpAddr::V4(Ipv4Addr::LOCALHOST))).await;
    let mut sensei = Browser::new(enter(&node, "t1", Role::Instructor).await).await;
    let mut learners = Vec::new();
    for user in ["u1", "u2"] {
        learners.push(Browser::new(enter(&node, user, Role::Learner).await).await);
    }

    // The instructor publishes camera and microphone before going live (a preview).
    let pumps = publish(&mut sensei).await;
    node.wait_metric("media_publishers", 1).await;

    // Doors open, not live: nobody is offered media.
    for (i, learner) in learners.iter_mut().enumerate() {
        learner.send(ClientMsg::Ping { t: i as u64 });
        let before_pong = learner
            .until(|m| match m {
                ServerMsg::Pong { .. } => Some(false),
                ServerMsg::MediaOffer { .. } => Some(true),
                _ => None,
            })
            .await;
        assert!(!before_pong, "no media offer before the lecture is live");
    }
    // The publisher is known to every session since the instructor's answer; a session that
    // wrongly offered would have done so by now. A bounded look for something that must not come.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for learner in &mut learners {
        while let Ok(msg) = learner.inbox.try_recv() {
            assert!(
                !matches!(msg, ServerMsg::MediaOffer { .. }),
                "no media offer before live"
            );
        }
    }
    assert_eq!(node.metric("media_subscribers").await, 0);

    // Live: each learner is offered the tracks, answers, and receives every packet.
    sensei.send(ClientMsg::StartLecture);
    for learner in &mut learners {
        learner
            .until(|m| matches!(m, ServerMsg::MediaOffer { .. }).then_some(()))
            .await;
        learner.connected().await;
    }
    node.wait_metric("media_subscribers", 2).await;
    for learner in &learners {
        receives(learner, 100, 100).await;
    }
    assert!(node.metric("media_forwarded_packets_total").await >= 400);

    // A learner may not publish.
    let second = &mut learners[1];
    second.send(ClientMsg::MediaOffer { sdp: "v=0".into() });
    let refusal = second
        .until(|m| match m {
            ServerMsg::Error { code, command, .. } => Some((*code, command.clone())),
            _ => None,
        })
        .await;
    assert_eq!(refusal, (ErrorCode::NotAllowed, Some("media_offer".into())));

    // A learner who leaves releases its subscriber.
    let first = learners.remove(0);
    first.send(ClientMsg::Leave);
    node.wait_metric("media_subscribers", 1).await;

    // The end stops media for everyone.
    sensei.send(ClientMsg::EndLecture);
    let second = &mut learners[0];
    second
        .until(|m| {
            matches!(
                m,
                ServerMsg::Phase {
                    phase: Phase::Ended { .. }
                }
            )
            .then_some(())
        })
        .await;
    node.wait_metric("media_subscribers", 0).await;
    node.wait_metric("media_publishers", 0).await;
    for pump in pumps {
        pump.abort();
    }
    drop(first);
}

/// Publishes camera and microphone over the room connection and starts sending on them.
async fn publish(sensei: &mut Browser) -> [tokio::task::JoinHandle<()>; 2] {
    let camera = local_track("camera-video", RtpCodecKind::Video, VIDEO_SSRC);
    let microphone = local_track("microphone", RtpCodecKind::Audio, AUDIO_SSRC);
    for track in [&camera, &microphone] {
        sensei
            .pc
            .add_track(Arc::clone(track) as Arc<dyn TrackLocal>)
            .await
            .unwrap();
    }
    count_keyframe_requests(Arc::clone(&camera), Arc::clone(&sensei.keyframe_requests));
    offer(sensei).await;
    sensei.connected().await;
    [
        pump(camera, VIDEO_SSRC, 96, vp8_payload),
        pump(microphone, AUDIO_SSRC, 111, opus_payload),
    ]
}

/// Offers the instructor's current tracks over the room connection and applies the answer.
async fn offer(sensei: &mut Browser) {
    let offer = sensei.pc.create_offer(None).await.unwrap();
    sensei.pc.set_local_description(offer).await.unwrap();
    let sdp = sensei.pc.local_description().await.unwrap().sdp;
    sensei.send(ClientMsg::MediaOffer { sdp });
    // The page's code has applied the answer by the time the test sees it.
    sensei
        .until(|m| matches!(m, ServerMsg::MediaAnswer { .. }).then_some(()))
        .await;
}

/// Starts a screen share as a browser does: a new send-only track, a new offer on the same
/// connection.
async fn share_screen(sensei: &mut Browser) -> (Arc<dyn RtpSender>, tokio::task::JoinHandle<()>) {
    let screen = local_track("screen-video", RtpCodecKind::Video, SCREEN_SSRC);
    let transceiver = sensei
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
    offer(sensei).await;
    (sender, pump(screen, SCREEN_SSRC, 96, vp8_payload))
}

/// Counts the keyframe requests the node sends for `track`.
fn count_keyframe_requests(track: Arc<TrackLocalStaticRTP>, count: Arc<AtomicUsize>) {
    tokio::spawn(async move {
        while let Some(event) = track.poll().await {
            if let TrackLocalEvent::OnRtcpPacket(packets) = event {
                if packets.iter().any(|p| is_keyframe_request(p.as_ref())) {
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    });
}

/// Waits until `learner` has at least `video` camera and `audio` microphone packets, and
/// checks they came without gaps and unaltered.
async fn receives(learner: &Browser, video: usize, audio: usize) {
    let got = tokio::time::timeout(WAIT, async {
        while {
            let (v, a) = learner.counts();
            v < video || a < audio
        } {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(got.is_ok(), "a learner received {:?}", learner.counts());
    let r = learner.received.lock().unwrap();
    assert!(contiguous(&r.video), "video without gaps");
    assert!(contiguous(&r.audio), "audio without gaps");
    assert_eq!(r.altered, 0, "payloads forwarded unchanged");
}

/// Packets of the screen share a learner has received.
fn screen_count(learner: &Browser) -> usize {
    let r = learner.received.lock().unwrap();
    r.others.get("screen-video").map_or(0, BTreeSet::len)
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let reached = tokio::time::timeout(WAIT, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "{what}");
}

async fn two_nodes(redis: &common::RedisServer) -> (TestNode, TestNode) {
    let loopback = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let home = TestNode::start_with(|c| {
        c.redis_url = Some(redis.url());
        c.media.bind_ip = loopback;
    })
    .await;
    let database_url = home.node.config().database_url.clone();
    let other = TestNode::start_with(|c| {
        c.redis_url = Some(redis.url());
        c.database_url = database_url;
        c.media.bind_ip = loopback;
    })
    .await;
    (home, other)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_learners_on_another_node_receive_the_instructor_over_the_relay() {
    let redis = common::RedisServer::start();
    let (home, other) = two_nodes(&redis).await;
    let mut sensei = Browser::new(enter(&home, "t1", Role::Instructor).await).await;
    let mut near = Browser::new(enter(&home, "u1", Role::Learner).await).await;
    let mut far = Browser::new(enter(&other, "u2", Role::Learner).await).await;
    let pumps = publish(&mut sensei).await;
    sensei.send(ClientMsg::StartLecture);

    // On the instructor's node media flows as with one node; the other node pulls it over
    // one relay and offers it to its own learner.
    for learner in [&mut near, &mut far] {
        learner
            .until(|m| matches!(m, ServerMsg::MediaOffer { .. }).then_some(()))
            .await;
        learner.connected().await;
    }
    receives(&near, 100, 100).await;
    receives(&far, 100, 100).await;
    home.wait_metric("media_relays_out", 1).await;
    other.wait_metric("media_relays_in", 1).await;
    assert_eq!(
        home.metric("media_subscribers").await,
        1,
        "the relay is no viewer"
    );
    assert_eq!(other.metric("media_subscribers").await, 1);
    assert_eq!(
        other.metric("media_publishers").await,
        0,
        "a relay is no instructor"
    );

    // A second learner joining on the other node gets its keyframe from the instructor: the
    // request travels back over the relay (nothing on the instructor's node asks meanwhile).
    let asked = sensei.keyframe_requests.load(Ordering::SeqCst);
    let mut late = Browser::new(enter(&other, "u3", Role::Learner).await).await;
    late.until(|m| matches!(m, ServerMsg::MediaOffer { .. }).then_some(()))
        .await;
    late.connected().await;
    receives(&late, 50, 50).await;
    wait_for("a keyframe request reaches the instructor", || {
        sensei.keyframe_requests.load(Ordering::SeqCst) > asked
    })
    .await;
    other.wait_metric("media_subscribers", 2).await;
    assert_eq!(
        home.metric("media_relays_out").await,
        1,
        "one relay per node"
    );

    // The screen share starts: the instructor renegotiates over the room socket, and every
    // learner on both nodes is offered the new track and receives it.
    let (screen, screen_pump) = share_screen(&mut sensei).await;
    for learner in [&mut near, &mut far, &mut late] {
        learner
            .until(|m| matches!(m, ServerMsg::MediaOffer { .. }).then_some(()))
            .await;
    }
    for learner in [&near, &far, &late] {
        wait_for("every learner receives the screen share", || {
            screen_count(learner) >= 50
        })
        .await;
        let r = learner.received.lock().unwrap();
        assert!(contiguous(&r.others["screen-video"]), "screen without gaps");
    }
    // And stops: the track is taken away everywhere (another renegotiation), the camera goes on.
    screen_pump.abort();
    sensei.pc.remove_track(&screen).await.unwrap();
    offer(&mut sensei).await;
    for learner in [&mut near, &mut far, &mut late] {
        learner
            .until(|m| match m {
                ServerMsg::MediaOffer { sdp } => Some(sdp.matches("m=video").count()),
                _ => None,
            })
            .await;
    }
    let before = far.counts().0;
    wait_for("the camera goes on after the screen share", || {
        far.counts().0 >= before + 20
    })
    .await;

    // The instructor stops: learners on both nodes are told, and the relay ends.
    sensei.send(ClientMsg::MediaStop);
    for learner in [&mut near, &mut far, &mut late] {
        learner
            .until(|m| matches!(m, ServerMsg::MediaStopped).then_some(()))
            .await;
    }
    other.wait_metric("media_relays_in", 0).await;
    home.wait_metric("media_relays_out", 0).await;
    other.wait_metric("media_subscribers", 0).await;
    for pump in pumps {
        pump.abort();
    }

    // Publishing again (from a fresh page) brings it back on both nodes; the end of the
    // lecture stops it all.
    drop(sensei);
    let mut sensei = Browser::new(enter(&home, "t1", Role::Instructor).await).await;
    let pumps = publish(&mut sensei).await;
    for learner in [&mut near, &mut far] {
        learner
            .until(|m| matches!(m, ServerMsg::MediaOffer { .. }).then_some(()))
            .await;
    }
    other.wait_metric("media_relays_in", 1).await;
    sensei.send(ClientMsg::EndLecture);
    for node in [&home, &other] {
        node.wait_metric("media_subscribers", 0).await;
        node.wait_metric("media_publishers", 0).await;
        node.wait_metric("media_relays_in", 0).await;
        node.wait_metric("media_relays_out", 0).await;
    }
    for pump in pumps {
        pump.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_endpoint_is_for_nodes_with_a_token_only() {
    let node = TestNode::start().await;
    let key = &node.node.config().ticket_key;
    let path = format!("/ws/relay/{}", common::LECTURE);
    let status = |headers: Vec<(&'static str, String)>| {
        let path = path.clone();
        let addr = node.addr;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            common::http(addr, "GET", &path, &headers, None).await
        }
    };
    let exp = common::now().0 / 1000 + 60;
    let valid = format!("Bearer {}", key.mint_relay(&common::LECTURE.into(), exp));
    let other_lecture = format!("Bearer {}", key.mint_relay(&"another".into(), exp));
    let expired = format!("Bearer {}", key.mint_relay(&common::LECTURE.into(), 1));
    let ticket = format!("Bearer {}", node.ticket("t1", "t1", Role::Instructor));
    for (auth, why) in [
        (None, "no token"),
        (Some(other_lecture), "another lecture's token"),
        (Some(expired), "an expired token"),
        (Some(ticket), "a room ticket"),
    ] {
        let headers = auth.map(|a| vec![("Authorization", a)]).unwrap_or_default();
        let (code, body) = status(headers).await;
        assert_eq!(code, 401, "{why}: {body}");
        assert!(body.contains("invalid_relay_token"), "{body}");
    }
    // A valid token, but the lecture's room is not open on this node.
    let (code, body) = status(vec![("Authorization", valid.clone())]).await;
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("not_here"), "{body}");
    // With the room open, only a WebSocket upgrade is taken.
    let _learner = enter(&node, "u1", Role::Learner).await;
    let (code, body) = status(vec![("Authorization", valid)]).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("not_websocket"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instructor_who_stops_or_leaves_stops_the_learners_media_until_the_next_offer() {
    let node =
        TestNode::start_with(|c| c.media.bind_ip = Some(IpAddr::V4(Ipv4Addr::LOCALHOST))).await;
    let mut sensei = Browser::new(enter(&node, "t1", Role::Instructor).await).await;
    let mut learner = Browser::new(enter(&node, "u1", Role::Learner).await).await;
    sensei.send(ClientMsg::StartLecture);
    learner
        .until(|m| {
            matches!(
                m,
                ServerMsg::Phase {
                    phase: Phase::Live { .. }
                }
            )
            .then_some(())
        })
        .await;
    // Live, but nobody publishes yet: nothing to offer.
    let pumps = publish(&mut sensei).await;
    learner
        .until(|m| matches!(m, ServerMsg::MediaOffer { .. }).then_some(()))
        .await;
    learner.connected().await;
    node.wait_metric("media_subscribers", 1).await;

    sensei.send(ClientMsg::MediaStop);
    learner
        .until(|m| matches!(m, ServerMsg::MediaStopped).then_some(()))
        .await;
    node.wait_metric("media_subscribers", 0).await;
    node.wait_metric("media_publishers", 0).await;
    for pump in pumps {
        pump.abort();
    }

    // The instructor comes back on a new connection and publishes again: a fresh offer.
    drop(sensei);
    let mut again = Browser::new(enter(&node, "t1", Role::Instructor).await).await;
    let pumps = publish(&mut again).await;
    learner
        .until(|m| matches!(m, ServerMsg::MediaOffer { .. }).then_some(()))
        .await;
    node.wait_metric("media_publishers", 1).await;

    // The instructor's connection closes: publishing ends with it.
    drop(again);
    learner
        .until(|m| matches!(m, ServerMsg::MediaStopped).then_some(()))
        .await;
    node.wait_metric("media_publishers", 0).await;
    node.wait_metric("media_subscribers", 0).await;
    for pump in pumps {
        pump.abort();
    }
}
