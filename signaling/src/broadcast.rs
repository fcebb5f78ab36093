//! One lecture's broadcast: the publisher's peer connection, the subscribers' peer
//! connections, and the bookkeeping that ties a published track to its forwarders.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RtpCodecKind};
use tokio::sync::mpsc;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, RTCSessionDescription,
};
use webrtc::rtp_transceiver::RTCRtpTransceiverDirection;

use crate::SignalingError;
use crate::candidate::CandidateFilter;
use crate::config::{IceServer, PeerFactory, SignalingConfig};
use crate::forward::{self, Sink};
use crate::recording::{self, RecordSink, Recording};
use crate::signal::{
    IceCandidate, PeerSignal, SubscriberId, to_webrtc_candidate, to_wire_candidate,
};
use crate::stats::{BroadcastStats, Counters};
use crate::subscriber::Subscriber;

/// The SFU of one lecture: one publisher (the instructor), any number of receive-only
/// subscribers (the learners), every published track forwarded to every subscriber.
///
/// Cheap to share behind an `Arc`; every method takes `&self`. Dropping it without
/// [`close`](Self::close) leaves the peer connections to time out on their own.
#[derive(Debug)]
pub struct Broadcast {
    inner: Arc<Inner>,
}

/// What a peer gets when its connection is set up: the SDP to send to the browser and the
/// stream of later signals (trickled candidates, renegotiation offers, the close).
#[derive(Debug)]
pub struct PeerStart {
    /// The publisher's answer, or the subscriber's first offer.
    pub sdp: String,
    /// Everything the node has to tell this peer afterwards, in order. Unbounded because it
    /// carries signalling only (a few candidates per negotiation), never media.
    pub signals: mpsc::UnboundedReceiver<PeerSignal>,
}

pub(crate) struct Inner {
    pub(crate) factory: PeerFactory,
    pub(crate) counters: Arc<Counters>,
    state: Mutex<State>,
    /// Names published tracks; never reused, so a forwarder of a track that ended cannot be
    /// mistaken for one of its successor.
    next_track: AtomicU64,
    /// Names publisher connections, so the events of a replaced one are ignored.
    next_publisher: AtomicU64,
    /// Where the tracks are recorded, if the configuration asks for it.
    recording: Option<Arc<Recording>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    /// Set by `close`; nothing new starts afterwards.
    closed: bool,
    publisher: Option<Publisher>,
    tracks: HashMap<TrackKey, PublishedTrack>,
    /// Each behind an async lock: negotiation awaits the peer connection, and one
    /// subscriber's negotiations must not interleave.
    subscribers: HashMap<SubscriberId, Arc<tokio::sync::Mutex<Subscriber>>>,
}

struct Publisher {
    pc: Arc<dyn PeerConnection>,
    generation: u64,
    /// Another node's relay rather than the instructor's browser.
    relayed: bool,
}

/// Names one published track for the life of the broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TrackKey(pub(crate) u64);

/// What a subscriber needs to build its local copy of a published track.
#[derive(Debug, Clone)]
pub(crate) struct TrackInfo {
    pub(crate) key: TrackKey,
    pub(crate) kind: RtpCodecKind,
    /// The node's codec (and payload type) for this track, as every subscriber negotiates it.
    pub(crate) codec: RTCRtpCodec,
    pub(crate) payload_type: u8,
    /// The publisher's stream id, kept so a client can tell the camera stream (video and
    /// microphone) from the screen share.
    pub(crate) stream_id: String,
    pub(crate) track_id: String,
}

struct PublishedTrack {
    info: TrackInfo,
    /// The queue of every subscriber that has this track.
    sinks: HashMap<SubscriberId, Sink>,
    /// The publisher's id of the track, to find it again when the publisher stops it.
    remote_track_id: String,
    /// Stops the reader when the track is retired by renegotiation (it would otherwise wait
    /// for the publisher connection to close).
    reader: Option<tokio::task::AbortHandle>,
    /// Wakes the track's keyframe requester (video only). A full slot means a request is
    /// already pending: that is the coalescing.
    keyframes: Option<mpsc::Sender<()>>,
    /// The recorder's queue, when recording. Dropping it closes the file.
    recorder: Option<RecordSink>,
}

impl Broadcast {
    /// A broadcast with no publisher and no subscribers yet. If the configuration records,
    /// the recording's folder is named `lecture-<Unix ms>-<n>`; see
    /// [`with_recording_id`](Self::with_recording_id) to name it.
    pub fn new(config: SignalingConfig) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = format!(
            "lecture-{}-{}",
            recording::unix_ms_now(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Self::with_recording_id(config, &id)
    }

    /// A broadcast whose recording (if the configuration records) goes to
    /// `<recording_dir>/<id>/`: the room's lecture id, say. Characters other than ASCII
    /// letters, digits, `-` and `_` become `_`; a folder that exists already gets a `-2`,
    /// `-3`… suffix rather than being written into.
    pub fn with_recording_id(config: SignalingConfig, id: &str) -> Self {
        let recording = config
            .recording_dir
            .clone()
            .map(|root| Arc::new(Recording::new(root, recording::sanitize_name(id))));
        Self {
            inner: Arc::new(Inner {
                factory: PeerFactory::new(config),
                counters: Arc::new(Counters::default()),
                state: Mutex::new(State::default()),
                next_track: AtomicU64::new(1),
                next_publisher: AtomicU64::new(1),
                recording,
            }),
        }
    }

    /// The recording's folder, once the first track has started recording into it.
    pub fn recording_dir(&self) -> Option<std::path::PathBuf> {
        self.inner.recording.as_ref().and_then(|r| r.dir())
    }

    /// The STUN/TURN servers a client should configure its `RTCPeerConnection` with.
    pub fn ice_servers(&self) -> &[IceServer] {
        &self.inner.factory.config().ice_servers
    }

    /// The filter a caller facing clients applies to their candidates and SDPs before handing
    /// them to this broadcast (the relay between nodes does not).
    pub fn candidate_filter(&self) -> &CandidateFilter {
        &self.inner.factory.config().candidate_filter
    }

    /// The instructor connects: `offer_sdp` is the browser's offer (camera video, microphone,
    /// and possibly the screen share), the answer goes back to it. A second call replaces the
    /// first connection (the instructor reconnected): its tracks end and subscribers are
    /// renegotiated onto the new ones.
    pub async fn publish(&self, offer_sdp: String) -> Result<PeerStart, SignalingError> {
        self.publish_from(offer_sdp, true).await
    }

    /// Another node relays the instructor (the cascading relay of a lecture that spans
    /// nodes): `offer_sdp` is that node's offer to this one as its subscriber. The tracks are
    /// forwarded to this node's subscribers like the instructor's own, with the same
    /// keyframe policy (a request here travels to the origin node, which throttles it
    /// again), but never recorded: the node the instructor is on records. Later offers go
    /// to [`publisher_offer`](Self::publisher_offer), candidates to
    /// [`add_publisher_candidate`](Self::add_publisher_candidate), as for the instructor.
    pub async fn publish_relayed(&self, offer_sdp: String) -> Result<PeerStart, SignalingError> {
        self.publish_from(offer_sdp, false).await
    }

    async fn publish_from(
        &self,
        offer_sdp: String,
        record: bool,
    ) -> Result<PeerStart, SignalingError> {
        let inner = &self.inner;
        let offer = RTCSessionDescription::offer(offer_sdp)?;
        let generation = inner.next_publisher.fetch_add(1, Ordering::Relaxed);
        let (signals_tx, signals) = mpsc::unbounded_channel();
        let handler = Arc::new(PublisherEvents {
            inner: Arc::downgrade(inner),
            generation,
            record,
            signals: signals_tx,
        });
        let pc = inner.factory.build(handler).await?;
        let replaced = {
            let mut state = inner.lock();
            if state.closed {
                None
            } else {
                state.publisher.replace(Publisher {
                    pc: Arc::clone(&pc),
                    generation,
                    relayed: !record,
                })
            }
        };
        if let Some(old) = replaced {
            // Its tracks' readers see the close and retire the tracks.
            if let Err(err) = old.pc.close().await {
                tracing::debug!(%err, "closing the replaced publisher connection");
            }
        } else if inner.lock().closed {
            let _ = pc.close().await;
            return Err(SignalingError::Closed);
        }
        match answer(pc.as_ref(), offer).await {
            Ok(sdp) => Ok(PeerStart {
                sdp: inner.factory.advertised_sdp(sdp),
                signals,
            }),
            Err(err) => {
                inner.drop_publisher(generation).await;
                Err(err)
            }
        }
    }

    /// The instructor's browser renegotiates (screen share started or stopped): its new offer
    /// in, the answer out. Tracks it adds reach every subscriber, tracks it stops end there.
    pub async fn publisher_offer(&self, offer_sdp: String) -> Result<String, SignalingError> {
        let offer = RTCSessionDescription::offer(offer_sdp)?;
        let pc = self.inner.publisher_pc()?;
        let sdp = self
            .inner
            .factory
            .advertised_sdp(answer(pc.as_ref(), offer).await?);
        // A track the browser stopped sending does not end on its own in webrtc 0.21: its
        // transceiver just stops receiving. Retire those here.
        for transceiver in pc.get_transceivers().await {
            let receiving = matches!(
                transceiver.current_direction().await,
                Ok(RTCRtpTransceiverDirection::Recvonly | RTCRtpTransceiverDirection::Sendrecv)
            );
            if receiving {
                continue;
            }
            if let Ok(Some(receiver)) = transceiver.receiver().await {
                let track_id = receiver.track().track_id().await;
                self.inner.retire_remote_track(&track_id).await;
            }
        }
        Ok(sdp)
    }

    /// A candidate trickled by the instructor's browser.
    pub async fn add_publisher_candidate(
        &self,
        candidate: IceCandidate,
    ) -> Result<(), SignalingError> {
        let pc = self.inner.publisher_pc()?;
        pc.add_ice_candidate(to_webrtc_candidate(candidate)).await?;
        Ok(())
    }

    /// The instructor leaves: the connection closes, its tracks end, subscribers are
    /// renegotiated to receive nothing until the next `publish`.
    pub async fn unpublish(&self) -> Result<(), SignalingError> {
        let publisher = self.inner.lock().publisher.take();
        let publisher = publisher.ok_or(SignalingError::NoPublisher)?;
        publisher.pc.close().await?;
        Ok(())
    }

    /// The relay from another node ends: like [`unpublish`](Self::unpublish), but only if the
    /// publisher is still the relay (an instructor who has meanwhile published on this node
    /// stays). `false` if it was not.
    pub async fn unpublish_relayed(&self) -> bool {
        let publisher = {
            let mut state = self.inner.lock();
            match &state.publisher {
                Some(p) if p.relayed => state.publisher.take(),
                _ => None,
            }
        };
        let Some(publisher) = publisher else {
            return false;
        };
        let _ = publisher.pc.close().await;
        true
    }

    /// A learner starts receiving. The node offers (it knows the tracks; a receive-only
    /// browser has nothing to offer): send `sdp` to the browser and feed its answer to
    /// [`subscriber_answer`](Self::subscriber_answer). The subscriber gets every track
    /// published now or later.
    pub async fn subscribe(&self, id: SubscriberId) -> Result<PeerStart, SignalingError> {
        let inner = &self.inner;
        let (signals_tx, signals) = mpsc::unbounded_channel();
        let handler = Arc::new(crate::subscriber::SubscriberEvents::new(
            Arc::downgrade(inner),
            id,
            signals_tx.clone(),
        ));
        let pc = inner.factory.build(handler).await?;
        let subscriber = Arc::new(tokio::sync::Mutex::new(Subscriber::new(
            id,
            Arc::clone(&pc),
            signals_tx,
            inner.factory.shared_config(),
        )));
        // Held until the first offer is made, so a track published meanwhile waits for it and
        // then finds the subscriber ready (and attaching is idempotent).
        let mut guard = Arc::clone(&subscriber).lock_owned().await;
        let tracks = {
            let mut state = inner.lock();
            if state.closed {
                None
            } else if let std::collections::hash_map::Entry::Vacant(entry) =
                state.subscribers.entry(id)
            {
                entry.insert(subscriber);
                Some(Ok(state
                    .tracks
                    .values()
                    .map(|t| t.info.clone())
                    .collect::<Vec<_>>()))
            } else {
                Some(Err(SignalingError::DuplicateSubscriber(id)))
            }
        };
        let tracks = match tracks {
            None => Err(SignalingError::Closed),
            Some(result) => result,
        };
        let tracks = match tracks {
            Ok(tracks) => tracks,
            Err(err) => {
                let _ = pc.close().await;
                return Err(err);
            }
        };
        let offered = async {
            for info in &tracks {
                guard.attach(inner, info).await?;
            }
            guard.first_offer().await
        }
        .await;
        drop(guard);
        match offered {
            Ok(sdp) => Ok(PeerStart { sdp, signals }),
            Err(err) => {
                let _ = inner.unsubscribe(id).await;
                Err(err)
            }
        }
    }

    /// The learner's browser answers the node's latest offer.
    pub async fn subscriber_answer(
        &self,
        id: SubscriberId,
        answer_sdp: String,
    ) -> Result<(), SignalingError> {
        let answer = RTCSessionDescription::answer(answer_sdp)?;
        let subscriber = self.inner.subscriber_handle(id)?;
        let mut subscriber = subscriber.lock().await;
        subscriber.apply_answer(&self.inner, answer).await
    }

    /// A candidate trickled by a learner's browser.
    pub async fn add_subscriber_candidate(
        &self,
        id: SubscriberId,
        candidate: IceCandidate,
    ) -> Result<(), SignalingError> {
        let subscriber = self.inner.subscriber_handle(id)?;
        let pc = Arc::clone(&subscriber.lock().await.pc);
        pc.add_ice_candidate(to_webrtc_candidate(candidate)).await?;
        Ok(())
    }

    /// The learner leaves: its peer connection closes, its forwarders stop, its queues are
    /// freed. Also happens on its own when the connection fails.
    pub async fn unsubscribe(&self, id: SubscriberId) -> Result<(), SignalingError> {
        self.inner.unsubscribe(id).await
    }

    /// The lecture ends: every connection closes and nothing new starts.
    pub async fn close(&self) {
        let (publisher, subscribers) = {
            let mut state = self.inner.lock();
            state.closed = true;
            let subscribers: Vec<_> = state.subscribers.keys().copied().collect();
            (state.publisher.take(), subscribers)
        };
        if let Some(publisher) = publisher {
            let _ = publisher.pc.close().await;
        }
        for id in subscribers {
            let _ = self.inner.unsubscribe(id).await;
        }
    }

    /// The counters now.
    pub fn stats(&self) -> BroadcastStats {
        let (subscribers, published_tracks) = {
            let state = self.inner.lock();
            (state.subscribers.len(), state.tracks.len())
        };
        let c = &self.inner.counters;
        BroadcastStats {
            subscribers,
            published_tracks,
            forwarded_packets: c.forwarded_packets.load(Ordering::Relaxed),
            dropped_packets: c.dropped_packets.load(Ordering::Relaxed),
            refused_packets: c.refused_packets.load(Ordering::Relaxed),
            keyframe_requests: c.keyframe_requests.load(Ordering::Relaxed),
            tasks: c.tasks.load(Ordering::Relaxed),
            recorded_packets: c.recorded_packets.load(Ordering::Relaxed),
            recording_dropped_packets: c.recording_dropped_packets.load(Ordering::Relaxed),
            recording_errors: c.recording_errors.load(Ordering::Relaxed),
            recording_tracks: c.recording_tracks.load(Ordering::Relaxed),
            recording_disk_stops: c.recording_disk_stops.load(Ordering::Relaxed),
            recording_late_packets: c.recording_late_packets.load(Ordering::Relaxed),
        }
    }
}

/// Applies a remote offer and returns the local answer.
async fn answer(
    pc: &dyn PeerConnection,
    offer: RTCSessionDescription,
) -> Result<String, SignalingError> {
    pc.set_remote_description(offer).await?;
    let answer = pc.create_answer(None).await?;
    pc.set_local_description(answer).await?;
    let local = pc
        .local_description()
        .await
        .ok_or(SignalingError::NoLocalDescription)?;
    Ok(local.sdp)
}

impl Inner {
    /// The state lock. Never held across an `.await` (clippy's `await_holding_lock` checks).
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves maps that are still consistent (every
        // update is a single insert or remove), so a poisoned lock is used as it is.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn publisher_pc(&self) -> Result<Arc<dyn PeerConnection>, SignalingError> {
        let state = self.lock();
        let publisher = state
            .publisher
            .as_ref()
            .ok_or(SignalingError::NoPublisher)?;
        Ok(Arc::clone(&publisher.pc))
    }

    pub(crate) fn subscriber_handle(
        &self,
        id: SubscriberId,
    ) -> Result<Arc<tokio::sync::Mutex<Subscriber>>, SignalingError> {
        let state = self.lock();
        let subscriber = state.subscribers.get(&id);
        subscriber
            .cloned()
            .ok_or(SignalingError::UnknownSubscriber(id))
    }

    fn subscribers(&self) -> Vec<Arc<tokio::sync::Mutex<Subscriber>>> {
        self.lock().subscribers.values().cloned().collect()
    }

    /// Closes the publisher connection of `generation` if it is still the current one.
    async fn drop_publisher(&self, generation: u64) {
        let publisher = {
            let mut state = self.lock();
            match &state.publisher {
                Some(p) if p.generation == generation => state.publisher.take(),
                _ => None,
            }
        };
        if let Some(publisher) = publisher {
            let _ = publisher.pc.close().await;
        }
    }

    /// A new track arrived from the publisher: start reading it and give it to everyone.
    async fn add_published_track(self: Arc<Self>, remote: Arc<dyn TrackRemote>, record: bool) {
        let key = TrackKey(self.next_track.fetch_add(1, Ordering::Relaxed));
        let Some(started) = forward::start_track(&self, key, &remote).await else {
            return;
        };
        let info = started.info.clone();
        {
            let mut state = self.lock();
            if state.closed {
                return;
            }
            let recording = self.recording.as_ref().filter(|_| record);
            let recorder = recording
                .map(|recording| recording::start(&self, recording, &info, self.factory.config()));
            state.tracks.insert(
                info.key,
                PublishedTrack {
                    remote_track_id: info.track_id.clone(),
                    reader: None,
                    info: info.clone(),
                    sinks: HashMap::new(),
                    keyframes: started.keyframes,
                    recorder,
                },
            );
        }
        // Only now: a reader that ended before the track was listed would leave it listed.
        let reader = forward::spawn_reader(&self, key, remote);
        if let Some(track) = self.lock().tracks.get_mut(&key) {
            track.reader = Some(reader);
        }
        tracing::debug!(key = key.0, kind = %info.kind, "track published");
        for subscriber in self.subscribers() {
            let mut subscriber = subscriber.lock().await;
            if let Err(err) = subscriber.attach(&self, &info).await {
                tracing::warn!(%err, id = %subscriber.id, "cannot add a track for a subscriber");
                continue;
            }
            subscriber.negotiate().await;
        }
    }

    /// A published track ended (screen share stopped, publisher gone): take it away from
    /// everyone.
    pub(crate) async fn remove_published_track(&self, key: TrackKey) {
        // Dropping the entry drops the sinks (writers drain and end) and the keyframe
        // sender (the requester ends).
        let Some(removed) = self.lock().tracks.remove(&key) else {
            return;
        };
        if let Some(reader) = removed.reader {
            reader.abort();
        }
        tracing::debug!(key = key.0, "track ended");
        for subscriber in self.subscribers() {
            let mut subscriber = subscriber.lock().await;
            if subscriber.detach(key).await {
                subscriber.negotiate().await;
            }
        }
    }

    /// Retires the published track the publisher knows as `track_id`, if it is still here.
    async fn retire_remote_track(&self, track_id: &str) {
        let key = {
            let state = self.lock();
            let found = state
                .tracks
                .iter()
                .find(|(_, t)| t.remote_track_id == track_id);
            found.map(|(key, _)| *key)
        };
        if let Some(key) = key {
            self.remove_published_track(key).await;
        }
    }

    /// Registers a subscriber's queue for a track; `false` if the track is already gone.
    pub(crate) fn add_sink(&self, key: TrackKey, id: SubscriberId, sink: Sink) -> bool {
        let mut state = self.lock();
        match state.tracks.get_mut(&key) {
            Some(track) => {
                track.sinks.insert(id, sink);
                true
            }
            None => false,
        }
    }

    /// Hands one packet of a track to every subscriber's queue, never waiting: a full queue
    /// loses the packet (counted).
    pub(crate) fn fan_out(&self, key: TrackKey, packet: &rtc::rtp::Packet) {
        let state = self.lock();
        let Some(track) = state.tracks.get(&key) else {
            return;
        };
        for sink in track.sinks.values() {
            if sink.offer(packet) {
                continue;
            }
            Counters::add(&self.counters.dropped_packets);
        }
        if let Some(recorder) = &track.recorder
            && !recorder.offer(packet, recording::unix_ms_now())
        {
            Counters::add(&self.counters.recording_dropped_packets);
        }
    }

    /// Asks the publisher for a keyframe of `key` (coalesced and throttled by the track's
    /// requester). Audio tracks have no requester and ignore it.
    pub(crate) fn request_keyframe(&self, key: TrackKey) {
        let state = self.lock();
        if let Some(keyframes) = state.tracks.get(&key).and_then(|t| t.keyframes.as_ref()) {
            // Full: a request is already waiting, which serves this one too.
            let _ = keyframes.try_send(());
        }
    }

    pub(crate) async fn unsubscribe(&self, id: SubscriberId) -> Result<(), SignalingError> {
        let subscriber = {
            let mut state = self.lock();
            for track in state.tracks.values_mut() {
                track.sinks.remove(&id);
            }
            state.subscribers.remove(&id)
        };
        let subscriber = subscriber.ok_or(SignalingError::UnknownSubscriber(id))?;
        subscriber.lock().await.close().await;
        tracing::debug!(%id, "subscriber released");
        Ok(())
    }
}

/// The publisher connection's events, turned into signals and track changes.
struct PublisherEvents {
    inner: Weak<Inner>,
    generation: u64,
    /// Whether its tracks are recorded (not when another node relays them).
    record: bool,
    signals: mpsc::UnboundedSender<PeerSignal>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for PublisherEvents {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        send_candidate(&self.signals, event);
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        send_end_of_candidates(&self.signals, state);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(%state, generation = self.generation, "publisher connection");
        if matches!(
            state,
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
        ) {
            let _ = self.signals.send(PeerSignal::Closed);
            if let Some(inner) = self.inner.upgrade() {
                let generation = self.generation;
                // Not here: this runs on the connection's own driver, which closing awaits.
                tokio::spawn(async move { inner.drop_publisher(generation).await });
            }
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if let Some(inner) = self.inner.upgrade() {
            // Renegotiating every subscriber takes a while; the driver must not wait for it.
            tokio::spawn(inner.add_published_track(track, self.record));
        }
    }
}

pub(crate) fn send_candidate(
    signals: &mpsc::UnboundedSender<PeerSignal>,
    event: RTCPeerConnectionIceEvent,
) {
    match event.candidate.to_json() {
        Ok(init) => {
            let _ = signals.send(PeerSignal::IceCandidate(to_wire_candidate(init)));
        }
        Err(err) => tracing::warn!(%err, "cannot serialise a local ICE candidate"),
    }
}

/// Every peer connection's last signal once it has gathered all its candidates.
pub(crate) fn send_end_of_candidates(
    signals: &mpsc::UnboundedSender<PeerSignal>,
    state: RTCIceGatheringState,
) {
    if state == RTCIceGatheringState::Complete {
        let _ = signals.send(PeerSignal::EndOfCandidates);
    }
}
