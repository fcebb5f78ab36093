//! Synthetic media: what a publishing test peer sends on a track, tick by tick, and the pump
//! that sends it.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use super::lock;

/// The first sequence number of the plain and the frame-shaped streams.
const FIRST_SEQ: u16 = 1000;
/// The first RTP timestamp of the frame-shaped streams: close to the wrap, so a recording
/// sees the timestamp wrap within its first seconds.
const FIRST_TIMESTAMP: u32 = u32::MAX - 90_000;
/// A VP8 payload descriptor with S=1 (start of partition 0), then a keyframe's frame tag
/// (P bit clear), its start code and 640x360.
const VP8_KEYFRAME_START: [u8; 11] = [
    0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01,
];
/// A VP8 payload descriptor with S=1, then an interframe's frame tag (P bit set).
const VP8_DELTA_START: [u8; 4] = [0x10, 0x11, 0x02, 0x00];
/// An Opus TOC byte: 20 ms CELT fullband.
const OPUS_TOC: u8 = 0xfc;
const VIDEO_FILL: u8 = 0xA5;
const AUDIO_FILL: u8 = 0x5A;
/// Bytes of the plain streams' payloads.
const PLAIN_VIDEO_BYTES: usize = 200;
const PLAIN_AUDIO_BYTES: usize = 60;

/// Video frames per second of the load ([`Synthetic::load_video`]).
const LOAD_FPS: u32 = 30;
/// A keyframe every this many frames of the load (2 s).
const LOAD_KEYFRAME_EVERY: u64 = 60;
/// Packets of an ordinary frame of the load.
const LOAD_DELTA_PACKETS: usize = 4;
/// Packets of a keyframe of the load.
const LOAD_KEY_PACKETS: usize = 30;
/// Bytes of every video payload of the load: (30 + 59 × 4) packets per 2 s ≈ 133 packets/s of
/// 1,200 bytes ≈ 1.3 Mbit/s of payload, about 1.5 Mbit/s with the audio and every header.
const LOAD_VIDEO_PAYLOAD: usize = 1200;
/// Opus packets per second of the load (20 ms each).
const LOAD_AUDIO_PPS: u32 = 50;
/// Bytes of every audio payload of the load.
const LOAD_AUDIO_PAYLOAD: usize = 160;

/// One synthetic RTP packet, before it goes to a track or a socket.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// Last packet of a frame.
    pub marker: bool,
    /// Sequence number.
    pub seq: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Payload.
    pub payload: Bytes,
}

impl Outgoing {
    /// As an RTP packet of the stream `ssrc`, payload type `payload_type`.
    pub fn to_packet(&self, ssrc: u32, payload_type: u8) -> rtc::rtp::Packet {
        rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                marker: self.marker,
                payload_type,
                sequence_number: self.seq,
                timestamp: self.timestamp,
                ssrc,
                ..Default::default()
            },
            payload: self.payload.clone(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Keyframes,
    Opus,
    Camera,
    Microphone,
    LoadVideo,
    LoadAudio,
}

/// One track's synthetic media: the packets of each tick, and how often ticks come.
#[derive(Clone, Debug)]
pub struct Synthetic {
    shape: Shape,
    /// The next packet's sequence number.
    seq: u16,
    /// Ticks so far.
    ticks: u32,
}

impl Synthetic {
    fn new(shape: Shape, seq: u16) -> Self {
        Self {
            shape,
            seq,
            ticks: 0,
        }
    }

    /// Every 20 ms a one-packet VP8 keyframe carrying its sequence number (200 bytes),
    /// timestamps 3000 apart: a receiver can tell a changed payload.
    pub fn keyframes() -> Self {
        Self::new(Shape::Keyframes, FIRST_SEQ)
    }

    /// Every 20 ms an Opus packet carrying its sequence number (60 bytes), timestamps 3000
    /// apart.
    pub fn opus() -> Self {
        Self::new(Shape::Opus, FIRST_SEQ)
    }

    /// VP8 as a camera sends it, one packet every 20 ms: frames of two 300-byte packets (the
    /// first with S=1 in its payload descriptor, the second a continuation carrying the
    /// marker), 40 ms apart on a 90 kHz clock that wraps within the first second; a keyframe
    /// (640x360) first and every 25th frame.
    pub fn camera() -> Self {
        Self::new(Shape::Camera, FIRST_SEQ)
    }

    /// Opus as a microphone sends it: a 20 ms packet every 20 ms, 960 apart on 48 kHz, the
    /// clock wrapping within the first seconds.
    pub fn microphone() -> Self {
        Self::new(Shape::Microphone, FIRST_SEQ)
    }

    /// A load of about 1.3 Mbit/s of VP8: 30 frames a second, a keyframe of 30 packets every
    /// 60 frames (2 s), else 4 packets, every payload 1,200 bytes ([`load_description`]).
    pub fn load_video() -> Self {
        Self::new(Shape::LoadVideo, 0)
    }

    /// The load's Opus: 50 packets a second of 160 bytes.
    pub fn load_audio() -> Self {
        Self::new(Shape::LoadAudio, 0)
    }

    /// The time between two ticks.
    pub fn period(&self) -> Duration {
        match self.shape {
            Shape::LoadVideo => Duration::from_secs(1) / LOAD_FPS,
            Shape::LoadAudio => Duration::from_secs(1) / LOAD_AUDIO_PPS,
            _ => Duration::from_millis(20),
        }
    }

    /// The packets of the next tick.
    pub fn next_tick(&mut self) -> Vec<Outgoing> {
        let tick = self.ticks;
        self.ticks = self.ticks.wrapping_add(1);
        match self.shape {
            Shape::Keyframes | Shape::Opus => {
                let video = self.shape == Shape::Keyframes;
                let seq = self.next_seq();
                vec![Outgoing {
                    marker: true,
                    seq,
                    timestamp: u32::from(seq).wrapping_mul(3000),
                    payload: plain_payload(video, seq),
                }]
            }
            Shape::Camera => {
                let seq = self.next_seq();
                let n = u32::from(seq.wrapping_sub(FIRST_SEQ));
                let frame = n / 2;
                let mut payload = match (n % 2, frame % 25) {
                    (0, 0) => VP8_KEYFRAME_START.to_vec(),
                    (0, _) => VP8_DELTA_START.to_vec(),
                    _ => vec![0x00],
                };
                payload.extend(seq.to_be_bytes());
                payload.resize(300, VIDEO_FILL);
                vec![Outgoing {
                    marker: n % 2 == 1,
                    seq,
                    timestamp: FIRST_TIMESTAMP.wrapping_add(frame * 3600),
                    payload: payload.into(),
                }]
            }
            Shape::Microphone => {
                let seq = self.next_seq();
                let n = u32::from(seq.wrapping_sub(FIRST_SEQ));
                vec![Outgoing {
                    marker: true,
                    seq,
                    timestamp: FIRST_TIMESTAMP.wrapping_add(n * 960),
                    payload: plain_payload(false, seq),
                }]
            }
            Shape::LoadVideo => {
                let frame = u64::from(tick);
                let key = frame % LOAD_KEYFRAME_EVERY == 0;
                let count = if key {
                    LOAD_KEY_PACKETS
                } else {
                    LOAD_DELTA_PACKETS
                };
                // 90 kHz clock; the frame counter wraps long after any run.
                let timestamp = tick.wrapping_mul(90_000 / LOAD_FPS);
                (0..count)
                    .map(|i| Outgoing {
                        marker: i + 1 == count,
                        seq: self.next_seq(),
                        timestamp,
                        payload: load_video_payload(i == 0, key),
                    })
                    .collect()
            }
            Shape::LoadAudio => {
                let mut payload = vec![OPUS_TOC];
                payload.resize(LOAD_AUDIO_PAYLOAD, AUDIO_FILL);
                vec![Outgoing {
                    marker: false,
                    seq: self.next_seq(),
                    timestamp: tick.wrapping_mul(48_000 / LOAD_AUDIO_PPS),
                    payload: payload.into(),
                }]
            }
        }
    }

    fn next_seq(&mut self) -> u16 {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        seq
    }
}

/// The load's nominal media, in words (for a report).
pub fn load_description() -> String {
    format!(
        "VP8 {LOAD_FPS} fps, {LOAD_KEY_PACKETS}-packet keyframe every {LOAD_KEYFRAME_EVERY} frames \
         else {LOAD_DELTA_PACKETS} packets of {LOAD_VIDEO_PAYLOAD} B; \
         Opus {LOAD_AUDIO_PPS} packets/s of {LOAD_AUDIO_PAYLOAD} B"
    )
}

/// The plain streams' payload for `seq`: a VP8 keyframe start or an Opus TOC byte, the
/// sequence number, then filler.
fn plain_payload(video: bool, seq: u16) -> Bytes {
    let (head, len, fill): (&[u8], _, _) = plain_shape(video);
    let mut payload = head.to_vec();
    payload.extend(seq.to_be_bytes());
    payload.resize(len, fill);
    payload.into()
}

/// True if `payload` is the plain streams' payload for `seq`.
pub(super) fn is_plain(video: bool, seq: u16, payload: &[u8]) -> bool {
    let (head, len, fill) = plain_shape(video);
    let Some(rest) = payload.strip_prefix(head) else {
        return false;
    };
    payload.len() == len
        && rest.starts_with(&seq.to_be_bytes())
        && rest[2..].iter().all(|&b| b == fill)
}

fn plain_shape(video: bool) -> (&'static [u8], usize, u8) {
    if video {
        (&VP8_KEYFRAME_START, PLAIN_VIDEO_BYTES, VIDEO_FILL)
    } else {
        (&[OPUS_TOC], PLAIN_AUDIO_BYTES, AUDIO_FILL)
    }
}

/// A load video payload: the payload descriptor (S bit on a frame's first packet, partition
/// 0) and, on that first packet, the VP8 header whose P bit is clear on keyframes.
fn load_video_payload(first: bool, key: bool) -> Bytes {
    let mut p = Vec::with_capacity(LOAD_VIDEO_PAYLOAD);
    if first {
        let mut head = VP8_KEYFRAME_START;
        if !key {
            // The frame tag's P bit: an interframe.
            head[1] = 0x11;
        }
        p.extend(head);
    } else {
        p.push(0x00);
    }
    p.resize(LOAD_VIDEO_PAYLOAD, VIDEO_FILL);
    p.into()
}

/// Where a pump's packets go: a publishing peer's track, or a plain RTP socket.
pub trait RtpSink: Send + Sync + 'static {
    /// Sends one packet; false if it did not go out.
    fn send(&self, packet: &Outgoing) -> impl Future<Output = bool> + Send;
}

/// What a pump sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// Packets.
    pub packets: u64,
    /// Payload plus 12-byte RTP header bytes.
    pub bytes: u64,
}

impl std::iter::Sum for Sent {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), |total, s| Self {
            packets: total.packets + s.packets,
            bytes: total.bytes + s.bytes,
        })
    }
}

/// A task sending synthetic media until it is dropped.
#[derive(Debug)]
pub struct Pump {
    task: tokio::task::JoinHandle<()>,
    sent: Arc<Mutex<Sent>>,
}

impl Pump {
    /// Sends `media` to `sink`, a tick every [`Synthetic::period`], the first one now.
    pub fn start(mut media: Synthetic, sink: impl RtpSink) -> Self {
        let sent = Arc::new(Mutex::new(Sent::default()));
        let counted = Arc::clone(&sent);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(media.period());
            loop {
                tick.tick().await;
                for packet in media.next_tick() {
                    // Before the connection is up a track is not bound yet: those are lost.
                    if sink.send(&packet).await {
                        let mut sent = lock(&counted);
                        sent.packets += 1;
                        sent.bytes += 12 + packet.payload.len() as u64;
                    }
                }
            }
        });
        Self { task, sent }
    }

    /// What it sent so far.
    pub fn sent(&self) -> Sent {
        *lock(&self.sent)
    }
}

impl Drop for Pump {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::super::tally::starts_vp8_keyframe;
    use super::*;

    #[test]
    fn the_load_starts_with_a_keyframe_then_ordinary_frames() {
        let mut video = Synthetic::load_video();
        let key = video.next_tick();
        assert_eq!(key.len(), LOAD_KEY_PACKETS);
        assert!(starts_vp8_keyframe(&key[0].payload));
        assert!(!starts_vp8_keyframe(&key[1].payload));
        assert!(key.last().is_some_and(|p| p.marker));
        let delta = video.next_tick();
        assert_eq!(delta.len(), LOAD_DELTA_PACKETS);
        assert!(!starts_vp8_keyframe(&delta[0].payload));
        assert_eq!(delta[0].seq, LOAD_KEY_PACKETS as u16);
        assert_eq!(delta[0].payload.len(), LOAD_VIDEO_PAYLOAD);
    }

    #[test]
    fn the_camera_sends_a_keyframe_every_25th_frame() {
        let mut camera = Synthetic::camera();
        let packets: Vec<Outgoing> = (0..100).flat_map(|_| camera.next_tick()).collect();
        let keyframes: Vec<u16> = packets
            .iter()
            .filter(|p| starts_vp8_keyframe(&p.payload))
            .map(|p| p.seq)
            .collect();
        assert_eq!(keyframes, [FIRST_SEQ, FIRST_SEQ + 50]);
        assert!(
            packets
                .iter()
                .all(|p| p.marker == ((p.seq - FIRST_SEQ) % 2 == 1))
        );
    }

    #[test]
    fn plain_payloads_are_recognised_by_their_sequence_number() {
        let mut keyframes = Synthetic::keyframes();
        let mut opus = Synthetic::opus();
        for _ in 0..3 {
            let v = keyframes.next_tick().remove(0);
            let a = opus.next_tick().remove(0);
            assert!(is_plain(true, v.seq, &v.payload));
            assert!(is_plain(false, a.seq, &a.payload));
            assert!(!is_plain(true, v.seq + 1, &v.payload));
            assert!(!is_plain(true, v.seq, &v.payload[..100]));
            assert!(starts_vp8_keyframe(&v.payload));
        }
    }
}
