//! One learner's receiving connection: its copies of the published tracks and the offer /
//! answer exchange the node drives.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, RTCSessionDescription,
};
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit, RtpSender};

use crate::SignalingConfig;
use crate::SignalingError;
use crate::broadcast::{Inner, TrackInfo, TrackKey, send_candidate, send_end_of_candidates};
use crate::forward;
use crate::signal::{PeerSignal, SubscriberId};

pub(crate) struct Subscriber {
    pub(crate) id: SubscriberId,
    pub(crate) pc: Arc<dyn PeerConnection>,
    signals: mpsc::UnboundedSender<PeerSignal>,
    /// The node's settings: its offers' candidates are advertised by them.
    config: Arc<SignalingConfig>,
    /// This subscriber's copy of each published track.
    outputs: HashMap<TrackKey, Output>,
    /// An offer is out and its answer has not come back: another change waits for it.
    awaiting_answer: bool,
    /// The tracks changed while an offer was out: offer again once it is answered.
    offer_again: bool,
    /// ICE and DTLS are up, so a keyframe requested now reaches the learner.
    connected: bool,
    /// Released: nothing is negotiated any more.
    closed: bool,
}

struct Output {
    sender: Arc<dyn RtpSender>,
    writer: JoinHandle<()>,
    is_video: bool,
}

impl Subscriber {
    pub(crate) fn new(
        id: SubscriberId,
        pc: Arc<dyn PeerConnection>,
        signals: mpsc::UnboundedSender<PeerSignal>,
        config: Arc<SignalingConfig>,
    ) -> Self {
        Self {
            id,
            pc,
            signals,
            config,
            outputs: HashMap::new(),
            awaiting_answer: false,
            offer_again: false,
            connected: false,
            closed: false,
        }
    }

    /// Adds this subscriber's copy of a published track (once), with its queue and writer.
    pub(crate) async fn attach(
        &mut self,
        inner: &Arc<Inner>,
        info: &TrackInfo,
    ) -> Result<(), SignalingError> {
        if self.closed || self.outputs.contains_key(&info.key) {
            return Ok(());
        }
        let ssrc = ssrc_for(self.id, info.key);
        let local = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            info.stream_id.clone(),
            // Unique per published track: a reconnected instructor's browser may reuse its
            // track ids while the old copies are still being removed.
            format!("{}-{}", info.key.0, info.track_id),
            info.track_id.clone(),
            info.kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: info.codec.clone(),
                ..Default::default()
            }],
        )));
        // A transceiver of its own, send-only, never `add_track`: that would reuse the
        // placeholder section of the first offer (see `first_offer`), which the learner's side
        // may have set up without a receiver because it was offered receive-only, so the
        // track would never surface there. Send-only also says what the node does.
        let transceiver = self
            .pc
            .add_transceiver_from_track(
                Arc::clone(&local) as Arc<dyn TrackLocal>,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendonly,
                    ..Default::default()
                }),
            )
            .await?;
        let sender = transceiver
            .sender()
            .await?
            .ok_or(SignalingError::NoSender)?;
        let (sink, queue) = forward::queue(inner.factory.config().subscriber_queue_packets);
        let writer = forward::spawn_writer(inner, info.key, local, ssrc, info.payload_type, queue);
        if !inner.add_sink(info.key, self.id, sink) {
            // The track ended while this copy was being made.
            writer.abort();
            let _ = self.pc.remove_track(&sender).await;
            return Ok(());
        }
        self.outputs.insert(
            info.key,
            Output {
                sender,
                writer,
                is_video: info.kind == RtpCodecKind::Video,
            },
        );
        Ok(())
    }

    /// Removes this subscriber's copy of a track; `true` if it had one.
    pub(crate) async fn detach(&mut self, key: TrackKey) -> bool {
        let Some(output) = self.outputs.remove(&key) else {
            return false;
        };
        output.writer.abort();
        if let Err(err) = self.pc.remove_track(&output.sender).await {
            tracing::debug!(%err, id = %self.id, "removing a track from a subscriber");
        }
        true
    }

    /// The first offer, returned to the caller rather than signalled.
    pub(crate) async fn first_offer(&mut self) -> Result<String, SignalingError> {
        if self.outputs.is_empty() {
            // Nobody publishes yet (the learner waits for the lecture to start). An offer
            // without media sections has no ICE credentials and no browser accepts it, so a
            // placeholder section carries the transport until the tracks come. webrtc 0.21
            // makes such a section only as recvonly (not inactive); a receive-only browser
            // answers it inactive, and the node ignores anything that arrives on it. Tracks
            // never take it over (`attach` gives each its own send-only section): the
            // learner may have set it up without a receiver, and then would never surface
            // what the node sends on it.
            self.pc
                .add_transceiver_from_kind(
                    RtpCodecKind::Video,
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Recvonly,
                        ..Default::default()
                    }),
                )
                .await?;
        }
        self.make_offer().await
    }

    /// Offers the current set of tracks, now or (if an offer is out) once it is answered.
    pub(crate) async fn negotiate(&mut self) {
        if self.closed {
            return;
        }
        if self.awaiting_answer {
            self.offer_again = true;
            return;
        }
        match self.make_offer().await {
            Ok(sdp) => {
                let _ = self.signals.send(PeerSignal::Offer(sdp));
            }
            Err(err) => tracing::warn!(%err, id = %self.id, "cannot renegotiate a subscriber"),
        }
    }

    async fn make_offer(&mut self) -> Result<String, SignalingError> {
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer).await?;
        let local = self
            .pc
            .local_description()
            .await
            .ok_or(SignalingError::NoLocalDescription)?;
        self.awaiting_answer = true;
        Ok(self.config.advertised_sdp(local.sdp))
    }

    pub(crate) async fn apply_answer(
        &mut self,
        inner: &Inner,
        answer: RTCSessionDescription,
    ) -> Result<(), SignalingError> {
        if !self.awaiting_answer {
            return Err(SignalingError::NoOfferOutstanding(self.id));
        }
        self.pc.set_remote_description(answer).await?;
        self.awaiting_answer = false;
        if std::mem::take(&mut self.offer_again) {
            self.negotiate().await;
        }
        if self.connected {
            // A track this answer just accepted needs a keyframe to start decoding.
            self.request_keyframes(inner);
        }
        Ok(())
    }

    pub(crate) fn on_connected(&mut self, inner: &Inner) {
        if self.closed || self.connected {
            return;
        }
        self.connected = true;
        self.request_keyframes(inner);
    }

    fn request_keyframes(&self, inner: &Inner) {
        for (key, output) in &self.outputs {
            if output.is_video {
                inner.request_keyframe(*key);
            }
        }
    }

    /// Stops the writers, closes the connection, tells the session.
    pub(crate) async fn close(&mut self) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        for (_, output) in self.outputs.drain() {
            output.writer.abort();
        }
        if let Err(err) = self.pc.close().await {
            tracing::debug!(%err, id = %self.id, "closing a subscriber connection");
        }
        let _ = self.signals.send(PeerSignal::Closed);
    }
}

/// Distinct SSRCs for the tracks of one connection (all that must hold), without a random
/// number generator: a splitmix64 of the subscriber and the track.
fn ssrc_for(id: SubscriberId, key: TrackKey) -> u32 {
    let mut z = id.0.rotate_left(32) ^ key.0;
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // Truncation intended; 0 is avoided because some stacks treat it as "unset".
    (z as u32).max(1)
}

/// A subscriber connection's events, turned into signals and subscriber changes.
pub(crate) struct SubscriberEvents {
    inner: Weak<Inner>,
    id: SubscriberId,
    signals: mpsc::UnboundedSender<PeerSignal>,
}

impl SubscriberEvents {
    pub(crate) fn new(
        inner: Weak<Inner>,
        id: SubscriberId,
        signals: mpsc::UnboundedSender<PeerSignal>,
    ) -> Self {
        Self { inner, id, signals }
    }
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for SubscriberEvents {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        send_candidate(&self.signals, event);
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        send_end_of_candidates(&self.signals, state);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(%state, id = %self.id, "subscriber connection");
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let id = self.id;
        // Spawned: this runs on the connection's driver, which the subscriber's own
        // operations (holding its lock) may be waiting for.
        match state {
            RTCPeerConnectionState::Connected => {
                tokio::spawn(async move {
                    if let Ok(subscriber) = inner.subscriber_handle(id) {
                        subscriber.lock().await.on_connected(&inner);
                    }
                });
            }
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                tokio::spawn(async move {
                    let _ = inner.unsubscribe(id).await;
                });
            }
            _ => {}
        }
    }
}
