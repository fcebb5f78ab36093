//! What both servers share: the synthetic media the publisher sends, the receive-only
//! webrtc-crate subscribers, and what each subscriber counts (loss from RTP sequence numbers,
//! bytes, the first keyframe).

use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceCandidateInit, RTCPeerConnectionIceEvent, RTCPeerConnectionState, Registry,
    register_default_interceptors,
};

/// Video payload type (VP8), as both servers are configured.
pub const VIDEO_PT: u8 = 96;
/// Audio payload type (Opus).
pub const AUDIO_PT: u8 = 111;
/// The publisher's video SSRC.
pub const VIDEO_SSRC: u32 = 0x1111_1111;
/// The publisher's audio SSRC.
pub const AUDIO_SSRC: u32 = 0x2222_2222;

/// Video frames per second.
pub const FPS: u32 = 30;
/// A keyframe every this many frames (2 s).
pub const KEYFRAME_EVERY: u64 = 60;
/// Packets of an ordinary frame.
pub const DELTA_PACKETS: usize = 4;
/// Packets of a keyframe.
pub const KEY_PACKETS: usize = 30;
/// Bytes of every video payload: (30 + 59 × 4) packets per 2 s ≈ 133 packets/s of 1,200
/// bytes ≈ 1.3 Mbit/s of payload, about 1.5 Mbit/s with the audio and every header.
pub const VIDEO_PAYLOAD: usize = 1200;
/// Opus packets per second (20 ms each).
pub const AUDIO_PPS: u32 = 50;
/// Bytes of every audio payload.
pub const AUDIO_PAYLOAD: usize = 160;

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

/// One synthetic RTP packet, before it goes to a track or a socket.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// Video or audio.
    pub video: bool,
    /// Last packet of a frame.
    pub marker: bool,
    /// Sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Payload.
    pub payload: bytes::Bytes,
}

impl Outgoing {
    /// As an `rtp::Packet` for a local track.
    pub fn to_packet(&self) -> rtc::rtp::Packet {
        rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                marker: self.marker,
                payload_type: if self.video { VIDEO_PT } else { AUDIO_PT },
                sequence_number: self.seq,
                timestamp: self.timestamp,
                ssrc: if self.video { VIDEO_SSRC } else { AUDIO_SSRC },
                ..Default::default()
            },
            payload: self.payload.clone(),
        }
    }

    /// As plain RTP bytes (a 12-byte header, no extensions) for a UDP socket.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.payload.len());
        out.push(0x80);
        let pt = if self.video { VIDEO_PT } else { AUDIO_PT };
        out.push(pt | if self.marker { 0x80 } else { 0 });
        out.extend(self.seq.to_be_bytes());
        out.extend(self.timestamp.to_be_bytes());
        let ssrc = if self.video { VIDEO_SSRC } else { AUDIO_SSRC };
        out.extend(ssrc.to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }
}

/// A VP8 payload: the payload descriptor (S bit on a frame's first packet, partition 0) and,
/// on that first packet, the VP8 header whose P bit is clear on keyframes.
fn vp8_payload(first: bool, key: bool) -> bytes::Bytes {
    let mut p = Vec::with_capacity(VIDEO_PAYLOAD);
    if first {
        p.push(0x10);
        // Frame tag: P (bit 0) clear for a keyframe; then the keyframe start code.
        p.extend([if key { 0x10 } else { 0x11 }, 0x02, 0x00, 0x9d, 0x01, 0x2a]);
        p.extend([0x80, 0x02, 0x68, 0x01]);
    } else {
        p.push(0x00);
    }
    p.resize(VIDEO_PAYLOAD, 0xA5);
    p.into()
}

/// True if a VP8 RTP payload starts a keyframe.
pub fn is_vp8_keyframe_start(payload: &[u8]) -> bool {
    let Some(&d) = payload.first() else {
        return false;
    };
    // Skip the extended descriptor fields if present (X bit): I, L, T/K bytes.
    let mut at = 1;
    if d & 0x80 != 0 {
        let Some(&x) = payload.get(1) else {
            return false;
        };
        at = 2;
        if x & 0x80 != 0 {
            // PictureID: one or two bytes.
            at += if payload.get(at).is_some_and(|b| b & 0x80 != 0) {
                2
            } else {
                1
            };
        }
        if x & 0x40 != 0 {
            at += 1;
        }
        if x & 0x30 != 0 {
            at += 1;
        }
    }
    let start = d & 0x10 != 0 && d & 0x07 == 0;
    start && payload.get(at).is_some_and(|h| h & 0x01 == 0)
}

/// The publisher's media, frame by frame.
#[derive(Debug, Default)]
pub struct Source {
    frame: u64,
    video_seq: u16,
    audio_seq: u16,
    audio_n: u32,
}

impl Source {
    /// The next video frame's packets.
    pub fn video_frame(&mut self) -> Vec<Outgoing> {
        let key = self.frame % KEYFRAME_EVERY == 0;
        let count = if key { KEY_PACKETS } else { DELTA_PACKETS };
        // 90 kHz clock; the frame counter wraps long after any run.
        let timestamp = (self.frame as u32).wrapping_mul(90_000 / FPS);
        self.frame += 1;
        (0..count)
            .map(|i| {
                let seq = self.video_seq;
                self.video_seq = self.video_seq.wrapping_add(1);
                Outgoing {
                    video: true,
                    marker: i + 1 == count,
                    seq,
                    timestamp,
                    payload: vp8_payload(i == 0, key),
                }
            })
            .collect()
    }

    /// The next audio packet.
    pub fn audio_packet(&mut self) -> Outgoing {
        let seq = self.audio_seq;
        self.audio_seq = self.audio_seq.wrapping_add(1);
        let timestamp = self.audio_n.wrapping_mul(48_000 / AUDIO_PPS);
        self.audio_n = self.audio_n.wrapping_add(1);
        let mut p = vec![0xfc];
        p.resize(AUDIO_PAYLOAD, 0x5A);
        Outgoing {
            video: false,
            marker: false,
            seq,
            timestamp,
            payload: p.into(),
        }
    }
}

/// Where the publisher's packets go.
#[derive(Clone)]
pub enum Sink {
    /// Local tracks of a webrtc-crate peer connection (room-server).
    Tracks {
        /// The camera.
        video: Arc<TrackLocalStaticRTP>,
        /// The microphone.
        audio: Arc<TrackLocalStaticRTP>,
    },
    /// Plain RTP to two UDP ports (Janus's RTP mountpoint).
    Udp {
        /// A socket of the bench's.
        socket: Arc<tokio::net::UdpSocket>,
        /// The video port.
        video: SocketAddr,
        /// The audio port.
        audio: SocketAddr,
    },
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::Tracks { .. } => f.write_str("Sink::Tracks"),
            Sink::Udp { video, audio, .. } => write!(f, "Sink::Udp({video}, {audio})"),
        }
    }
}

/// What the publisher sent.
#[derive(Debug, Default)]
pub struct Sent {
    /// Packets, video and audio.
    pub packets: u64,
    /// Payload plus 12-byte RTP header bytes.
    pub bytes: u64,
}

impl Sink {
    async fn send(&self, p: &Outgoing) -> bool {
        match self {
            Sink::Tracks { video, audio } => {
                let track = if p.video { video } else { audio };
                track.write_rtp(p.to_packet()).await.is_ok()
            }
            Sink::Udp {
                socket,
                video,
                audio,
            } => {
                let to = if p.video { *video } else { *audio };
                socket.send_to(&p.to_bytes(), to).await.is_ok()
            }
        }
    }
}

/// Sends the synthetic media on `sink` until aborted: a video frame every 1/30 s, an audio
/// packet every 20 ms.
pub fn pump(sink: Sink, sent: Arc<Mutex<Sent>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut source = Source::default();
        let start = tokio::time::Instant::now();
        let mut video = tokio::time::interval_at(start, Duration::from_secs(1) / FPS);
        let mut audio = tokio::time::interval_at(start, Duration::from_secs(1) / AUDIO_PPS);
        loop {
            let packets = tokio::select! {
                _ = video.tick() => source.video_frame(),
                _ = audio.tick() => vec![source.audio_packet()],
            };
            let mut n = 0;
            let mut b = 0;
            for p in &packets {
                if sink.send(p).await {
                    n += 1;
                    b += 12 + p.payload.len() as u64;
                }
            }
            let mut s = sent.lock().unwrap_or_else(|e| e.into_inner());
            s.packets += n;
            s.bytes += b;
        }
    })
}

/// Counts one RTP stream's packets from its sequence numbers: expected is the span from the
/// first packet to the highest one (16-bit numbers extended across wrap-around), lost is
/// expected minus received (as RFC 3550's receiver reports count it; duplicates offset losses).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqCounter {
    first: Option<u64>,
    highest: u64,
    received: u64,
}

impl SeqCounter {
    /// Counts a packet with sequence number `seq`.
    pub fn record(&mut self, seq: u16) {
        self.received += 1;
        let Some(_) = self.first else {
            // Start one cycle up so early reordering below the first number stays positive.
            let ext = (1 << 16) + u64::from(seq);
            self.first = Some(ext);
            self.highest = ext;
            return;
        };
        // The extended number nearest the highest so far.
        let cycle = self.highest & !0xffff;
        let mut ext = cycle | u64::from(seq);
        if ext + (1 << 15) < self.highest {
            ext += 1 << 16;
        } else if ext > self.highest + (1 << 15) && ext >= 1 << 16 {
            ext -= 1 << 16;
        }
        if ext > self.highest {
            self.highest = ext;
        }
        if let Some(first) = self.first
            && ext < first
        {
            // Reordered ahead of the first: the span starts earlier.
            self.first = Some(ext);
        }
    }

    /// Packets expected from the first to the highest.
    pub fn expected(&self) -> u64 {
        self.first.map_or(0, |f| self.highest - f + 1)
    }

    /// Packets received.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Expected minus received (0 if duplicates outnumber losses).
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }
}

/// What one subscriber received so far.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Video sequence numbers.
    pub video: SeqCounter,
    /// Audio sequence numbers.
    pub audio: SeqCounter,
    /// RTP payload + 12-byte header bytes.
    pub bytes: u64,
    /// When the first keyframe's first packet arrived.
    pub first_keyframe: Option<Instant>,
}

impl Tally {
    /// Packets received, both kinds.
    pub fn packets(&self) -> u64 {
        self.video.received() + self.audio.received()
    }
    /// Expected, both kinds.
    pub fn expected(&self) -> u64 {
        self.video.expected() + self.audio.expected()
    }
}

/// One receive-only subscriber's peer connection and counters.
pub struct Subscriber {
    /// The peer connection.
    pub pc: Arc<dyn PeerConnection>,
    /// Its local ICE candidates, to trickle to the server.
    pub candidates: mpsc::UnboundedReceiver<RTCIceCandidateInit>,
    /// Its connection state.
    pub state: watch::Receiver<RTCPeerConnectionState>,
    /// What it received.
    pub tally: Arc<Mutex<Tally>>,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("state", &self.state)
            .field("tally", &self.tally)
            .finish_non_exhaustive()
    }
}

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

/// A peer connection for the publisher or a subscriber: VP8 (96) and Opus (111), the default
/// interceptors (NACK, reports, TWCC: what a browser does), bound to `bind` (port 0).
pub async fn peer(bind: SocketAddr) -> anyhow::Result<Subscriber> {
    let mut media_engine = MediaEngine::default();
    for (codec, pt, kind) in [
        (vp8(), VIDEO_PT, RtpCodecKind::Video),
        (opus(), AUDIO_PT, RtpCodecKind::Audio),
    ] {
        media_engine.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: codec,
                payload_type: pt,
            },
            kind,
        )?;
    }
    let registry = register_default_interceptors(Registry::new(), &mut media_engine)?;
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
                .with_udp_addrs(vec![bind])
                .build(),
        )
        .await?,
    );
    let tally = Arc::new(Mutex::new(Tally::default()));
    record_tracks(tracks, Arc::clone(&tally));
    Ok(Subscriber {
        pc,
        candidates,
        state,
        tally,
    })
}

fn record_tracks(
    mut tracks: mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
    tally: Arc<Mutex<Tally>>,
) {
    tokio::spawn(async move {
        while let Some(track) = tracks.recv().await {
            let tally = Arc::clone(&tally);
            tokio::spawn(async move {
                let video = track.kind().await == RtpCodecKind::Video;
                while let Some(event) = track.poll().await {
                    let TrackRemoteEvent::OnRtpPacket(packet) = event else {
                        continue;
                    };
                    let seq = packet.header.sequence_number;
                    let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
                    t.bytes += 12 + packet.payload.len() as u64;
                    if video {
                        t.video.record(seq);
                        if t.first_keyframe.is_none() && is_vp8_keyframe_start(&packet.payload) {
                            t.first_keyframe = Some(Instant::now());
                        }
                    } else {
                        t.audio.record(seq);
                    }
                }
            });
        }
    });
}

/// The publisher's two local tracks, added to `pc`.
pub async fn add_publisher_tracks(
    pc: &Arc<dyn PeerConnection>,
) -> anyhow::Result<(Arc<TrackLocalStaticRTP>, Arc<TrackLocalStaticRTP>)> {
    use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodingParameters, RTCRtpEncodingParameters};
    use webrtc::media_stream::MediaStreamTrack;
    let make = |id: &str, kind: RtpCodecKind, ssrc: u32, codec: RTCRtpCodec| {
        Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "camera".to_owned(),
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
    };
    let video = make("camera-video", RtpCodecKind::Video, VIDEO_SSRC, vp8());
    let audio = make("microphone", RtpCodecKind::Audio, AUDIO_SSRC, opus());
    for track in [&video, &audio] {
        pc.add_track(Arc::clone(track) as Arc<dyn TrackLocal>)
            .await?;
    }
    Ok((video, audio))
}

/// Waits until `state` is connected; fails on failed/closed or after `wait`.
pub async fn connected(
    state: &mut watch::Receiver<RTCPeerConnectionState>,
    wait: Duration,
) -> anyhow::Result<()> {
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
        Ok(Ok(s)) => anyhow::bail!("the peer connection went {s:?}"),
        Ok(Err(_)) => anyhow::bail!("the peer connection is gone"),
        Err(_) => anyhow::bail!("the peer connection did not connect within {wait:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_loss_across_wrap_around() {
        let mut c = SeqCounter::default();
        for seq in (65_530u16..=65_535).chain(0..10) {
            if seq != 2 && seq != 65_533 {
                c.record(seq);
            }
        }
        assert_eq!(c.expected(), 16);
        assert_eq!(c.received(), 14);
        assert_eq!(c.lost(), 2);
    }

    #[test]
    fn reordering_is_not_loss() {
        let mut c = SeqCounter::default();
        for seq in [100u16, 102, 101, 99, 103] {
            c.record(seq);
        }
        assert_eq!(c.expected(), 5);
        assert_eq!(c.lost(), 0);
        // A late packet from before a wrap.
        let mut c = SeqCounter::default();
        for seq in [65_534u16, 0, 65_535, 1] {
            c.record(seq);
        }
        assert_eq!((c.expected(), c.lost()), (4, 0));
    }

    #[test]
    fn keyframes_are_recognised() {
        let mut s = Source::default();
        let key = s.video_frame();
        assert_eq!(key.len(), KEY_PACKETS);
        assert!(is_vp8_keyframe_start(&key[0].payload));
        assert!(!is_vp8_keyframe_start(&key[1].payload));
        assert!(key.last().is_some_and(|p| p.marker));
        let delta = s.video_frame();
        assert_eq!(delta.len(), DELTA_PACKETS);
        assert!(!is_vp8_keyframe_start(&delta[0].payload));
        assert_eq!(delta[0].seq, KEY_PACKETS as u16);
        let bytes = delta[0].to_bytes();
        assert_eq!(&bytes[..2], &[0x80, VIDEO_PT]);
        assert_eq!(bytes.len(), 12 + VIDEO_PAYLOAD);
    }
}
