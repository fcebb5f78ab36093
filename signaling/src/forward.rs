//! The media path: a reader per published track, a writer per subscriber track, a keyframe
//! requester per published video track. Packets are never decoded; only the SSRC and payload
//! type are rewritten to what each subscriber negotiated.

use std::sync::{Arc, Weak};
use std::time::Duration;

use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::Packet;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::{AbortHandle, JoinHandle};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use crate::broadcast::{Inner, TrackInfo, TrackKey};
use crate::config::{opus_codec, payload_type_for, vp8_codec};
use crate::stats::{Counters, TaskGuard};

/// One subscriber's queue for one track.
#[derive(Debug, Clone)]
pub(crate) struct Sink(mpsc::Sender<Packet>);

impl Sink {
    /// Queues a copy of `packet`; `false` if the queue is full (the packet is lost for this
    /// subscriber only). A queue whose writer is gone is being torn down: not a loss.
    pub(crate) fn offer(&self, packet: &Packet) -> bool {
        match self.0.try_send(packet.clone()) {
            Ok(()) | Err(TrySendError::Closed(_)) => true,
            Err(TrySendError::Full(_)) => false,
        }
    }
}

/// A published track the node can forward, with its keyframe requester running.
pub(crate) struct StartedTrack {
    pub(crate) info: TrackInfo,
    pub(crate) keyframes: Option<mpsc::Sender<()>>,
}

/// Learns what a remote track carries and starts its keyframe requester. `None` for a codec
/// the node does not forward (it offers only VP8 and Opus, so a browser should not send one).
pub(crate) async fn start_track(
    inner: &Arc<Inner>,
    key: TrackKey,
    remote: &Arc<dyn TrackRemote>,
) -> Option<StartedTrack> {
    let ssrc = remote.ssrcs().await.first().copied()?;
    let mime_type = remote.codec(ssrc).await?.mime_type;
    let Some(payload_type) = payload_type_for(&mime_type) else {
        tracing::warn!(%mime_type, "published track with a codec the node does not forward");
        return None;
    };
    let kind = remote.kind().await;
    let codec = match kind {
        RtpCodecKind::Video => vp8_codec(),
        _ => opus_codec(),
    };
    let info = TrackInfo {
        key,
        kind,
        codec,
        payload_type,
        stream_id: remote.stream_id().await,
        track_id: remote.track_id().await,
    };
    let keyframes = (kind == RtpCodecKind::Video).then(|| {
        let (tx, rx) = mpsc::channel(1);
        let interval = inner.factory.config().keyframe_request_interval;
        let guard = TaskGuard::new(&inner.counters);
        let counters = Arc::clone(&inner.counters);
        let remote = Arc::clone(remote);
        tokio::spawn(async move {
            let _guard = guard;
            request_keyframes(remote, ssrc, rx, interval, counters).await;
        });
        tx
    });
    Some(StartedTrack { info, keyframes })
}

/// Sends a PLI for each wake-up, then rests for `interval`: requests arriving meanwhile
/// collapse into the one slot of `requests`, so the publisher sees at most one PLI per
/// interval and a request never goes unanswered. Ends when the track is retired.
async fn request_keyframes(
    remote: Arc<dyn TrackRemote>,
    media_ssrc: u32,
    mut requests: mpsc::Receiver<()>,
    interval: Duration,
    counters: Arc<Counters>,
) {
    while requests.recv().await.is_some() {
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc,
        };
        if let Err(err) = remote.write_rtcp(vec![Box::new(pli)]).await {
            tracing::debug!(%err, "keyframe request not sent; the track is gone");
            return;
        }
        Counters::add(&counters.keyframe_requests);
        tokio::time::sleep(interval).await;
    }
}

/// Reads a published track until it ends, handing each packet to the subscribers' queues.
pub(crate) fn spawn_reader(
    inner: &Arc<Inner>,
    key: TrackKey,
    remote: Arc<dyn TrackRemote>,
) -> AbortHandle {
    let guard = TaskGuard::new(&inner.counters);
    let weak = Arc::downgrade(inner);
    tokio::spawn(async move {
        let _guard = guard;
        while let Some(event) = remote.poll().await {
            match event {
                TrackRemoteEvent::OnRtpPacket(packet) => {
                    let Some(inner) = weak.upgrade() else { return };
                    inner.fan_out(key, &packet);
                }
                TrackRemoteEvent::OnEnded => break,
                _ => {}
            }
        }
        if let Some(inner) = Weak::upgrade(&weak) {
            // In a task of its own: retiring aborts this reader.
            tokio::spawn(async move { inner.remove_published_track(key).await });
        }
    })
    .abort_handle()
}

/// Writes one subscriber's queue of one track into its peer connection. The only place that
/// awaits a subscriber: if its connection is slow, only its own queue fills.
///
/// Also reads the learner's RTCP about this track: a keyframe request (PLI or FIR, sent when
/// its decoder lost the picture) goes to the track's requester, the same throttled one the
/// node's own requests use, so the instructor still sees at most one per interval. Receiver
/// reports and the rest are dropped here (the interceptors have used them already).
pub(crate) fn spawn_writer(
    inner: &Arc<Inner>,
    key: TrackKey,
    local: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    payload_type: u8,
    mut queue: mpsc::Receiver<Packet>,
) -> JoinHandle<()> {
    let guard = TaskGuard::new(&inner.counters);
    let counters = Arc::clone(&inner.counters);
    let weak = Arc::downgrade(inner);
    tokio::spawn(async move {
        let _guard = guard;
        // Until the track is unbound (its sender removed): nothing more comes then.
        let mut feedback = true;
        loop {
            tokio::select! {
                packet = queue.recv() => {
                    let Some(mut packet) = packet else { break };
                    packet.header.ssrc = ssrc;
                    packet.header.payload_type = payload_type;
                    // The publisher's header extension ids mean nothing on this leg (and the
                    // sender refuses ids it did not negotiate).
                    packet.header.extension = false;
                    packet.header.extension_profile = 0;
                    packet.header.extensions.clear();
                    match local.write_rtp(packet).await {
                        Ok(()) => Counters::add(&counters.forwarded_packets),
                        Err(_) => Counters::add(&counters.refused_packets),
                    }
                }
                event = local.poll(), if feedback => match event {
                    Some(TrackLocalEvent::OnRtcpPacket(packets)) => {
                        if packets.iter().any(|p| is_keyframe_request(p.as_ref())) {
                            let Some(inner) = weak.upgrade() else { break };
                            inner.request_keyframe(key);
                        }
                    }
                    Some(_) => {}
                    None => feedback = false,
                },
            }
        }
    })
}

/// Whether an RTCP packet asks for a keyframe (a PLI or a FIR).
pub fn is_keyframe_request(packet: &dyn rtc::rtcp::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

/// A new queue for one subscriber's copy of a track.
pub(crate) fn queue(capacity: usize) -> (Sink, mpsc::Receiver<Packet>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (Sink(tx), rx)
}
