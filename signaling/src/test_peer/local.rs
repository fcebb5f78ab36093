//! The tracks a test peer sends: camera, microphone and screen share, as a browser names and
//! numbers them, and the keyframe requests that reach them.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::rtp_transceiver::RtpSender;

use super::{
    AUDIO_PT, AUDIO_SSRC, Feed, Outgoing, RtpSink, SCREEN_SSRC, VIDEO_PT, VIDEO_SSRC, lock,
};
use crate::forward::is_keyframe_request;

/// A track a test peer sends, with the keyframe requests that reached it. Send media on it
/// with a [`Pump`](super::Pump).
#[derive(Clone)]
pub struct LocalTrack {
    track: Arc<TrackLocalStaticRTP>,
    pub(super) sender: Arc<dyn RtpSender>,
    ssrc: u32,
    payload_type: u8,
    keyframe_requests: Arc<Mutex<Vec<Instant>>>,
}

impl std::fmt::Debug for LocalTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTrack")
            .field("ssrc", &self.ssrc)
            .field("payload_type", &self.payload_type)
            .finish_non_exhaustive()
    }
}

impl LocalTrack {
    /// `track`, added to its connection as `sender`; notes the keyframe requests reaching it.
    pub(super) fn new(
        track: Arc<TrackLocalStaticRTP>,
        sender: Arc<dyn RtpSender>,
        ssrc: u32,
        payload_type: u8,
    ) -> Self {
        let keyframe_requests = Arc::new(Mutex::new(Vec::new()));
        log_keyframe_requests(Arc::clone(&track), Arc::clone(&keyframe_requests));
        Self {
            track,
            sender,
            ssrc,
            payload_type,
            keyframe_requests,
        }
    }

    /// When each keyframe request (PLI/FIR) reached this track.
    pub fn keyframe_requests(&self) -> Vec<Instant> {
        lock(&self.keyframe_requests).clone()
    }
}

impl RtpSink for LocalTrack {
    fn send(&self, packet: &Outgoing) -> impl Future<Output = bool> + Send {
        let packet = packet.to_packet(self.ssrc, self.payload_type);
        async move { self.track.write_rtp(packet).await.is_ok() }
    }
}

/// A new track of `feed`, with its SSRC and payload type: the camera (`camera-video`) and the
/// microphone (`microphone`) in the stream `camera`; screen-share session `session` (from 1)
/// as `screen-video-<session>` in the stream `screen`, each session with an SSRC of its own.
pub(super) fn track(feed: Feed, session: u32) -> (Arc<TrackLocalStaticRTP>, u32, u8) {
    let (stream, id, kind, ssrc) = match feed {
        Feed::Camera => (
            "camera",
            "camera-video".to_owned(),
            RtpCodecKind::Video,
            VIDEO_SSRC,
        ),
        Feed::Microphone => (
            "camera",
            "microphone".to_owned(),
            RtpCodecKind::Audio,
            AUDIO_SSRC,
        ),
        Feed::Screen => (
            "screen",
            format!("screen-video-{session}"),
            RtpCodecKind::Video,
            SCREEN_SSRC + session - 1,
        ),
    };
    let (codec, payload_type) = match kind {
        RtpCodecKind::Video => (vp8(), VIDEO_PT),
        _ => (opus(), AUDIO_PT),
    };
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        stream.to_owned(),
        id.clone(),
        id,
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    )));
    (track, ssrc, payload_type)
}

/// Notes when a keyframe request reaches `track`, until the track ends.
fn log_keyframe_requests(track: Arc<TrackLocalStaticRTP>, log: Arc<Mutex<Vec<Instant>>>) {
    tokio::spawn(async move {
        while let Some(event) = track.poll().await {
            if let TrackLocalEvent::OnRtcpPacket(packets) = event
                && packets.iter().any(|p| is_keyframe_request(p.as_ref()))
            {
                lock(&log).push(Instant::now());
            }
        }
    });
}

pub(super) fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90_000,
        ..Default::default()
    }
}

pub(super) fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        ..Default::default()
    }
}
