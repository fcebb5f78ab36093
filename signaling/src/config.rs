//! What a node operator sets for the media path, and how peer connections are built from it.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rtc::interceptor::{Attribute, Interceptor, Packet, Slot, StreamInfo, TaggedPacket};
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_OPUS, MIME_TYPE_VP8};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceCandidateType, RTCIceConnectionState, RTCIceGatheringState,
    RTCPeerConnectionIceErrorEvent, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
    RTCSignalingState, Registry, SettingEngineBuilder, register_default_interceptors,
};

use crate::tcp_mux::{MuxRuntime, TcpMux};

use crate::SignalingError;
use crate::candidate::CandidateFilter;
use crate::forward::is_keyframe_request;

/// Media settings of a node. `Default` suits a machine with a public address and no firewall
/// rules: any UDP port, every interface, nothing handed to clients.
#[derive(Debug, Clone)]
pub struct SignalingConfig {
    /// Address the peer connections bind. A wildcard means "every interface but loopback and
    /// link-local" (webrtc's rule); tests bind `127.0.0.1` because loopback is skipped otherwise.
    pub bind_ip: IpAddr,
    /// UDP ports the node may use, one per peer connection, so a firewall can open exactly
    /// these. `None`: any ephemeral port.
    pub udp_port_range: Option<RangeInclusive<u16>>,
    /// Public addresses of a node behind a 1:1 NAT (a cloud instance's elastic IP): advertised
    /// as host candidates instead of the private address, with the same port.
    pub public_ips: Vec<IpAddr>,
    /// Also offer passive ICE-TCP candidates, on the same port number as the UDP one, for
    /// learners whose networks block UDP: one TCP listener per peer connection, as webrtc 0.21
    /// does. See [`tcp_mux`](Self::tcp_mux) for one shared port instead.
    pub ice_tcp: bool,
    /// ICE-TCP on this one shared listener for every peer connection (a firewall then opens
    /// one TCP port, 443 say). Takes precedence over [`ice_tcp`](Self::ice_tcp).
    pub tcp_mux: Option<Arc<TcpMux>>,
    /// STUN/TURN servers handed to clients (the browser needs them; the node, with a public
    /// or 1:1-NAT address, does not gather through them).
    pub ice_servers: Vec<IceServer>,
    /// Silence on a connection (no media, no keepalives) before it counts as disconnected.
    pub ice_disconnected_timeout: Duration,
    /// Further silence before a disconnected connection fails and is released: how long a
    /// learner whose browser vanished (closed lid, lost network) keeps its resources.
    pub ice_failed_timeout: Duration,
    /// RTP packets queued per subscriber track before new ones are dropped: a learner on a
    /// slow path loses packets (and asks for a keyframe) instead of slowing the others.
    pub subscriber_queue_packets: usize,
    /// Shortest time between two keyframe requests (PLI) sent to the publisher for one track:
    /// a crowd joining at once costs the instructor's encoder one keyframe, not hundreds.
    pub keyframe_request_interval: Duration,
    /// Where the instructor's tracks are recorded for the archive, one folder per broadcast
    /// (see the crate docs for the layout). `None`: nothing is recorded.
    pub recording_dir: Option<PathBuf>,
    /// RTP packets queued per recorded track before new ones are dropped: a slow disk loses
    /// recording (counted) instead of slowing forwarding.
    pub recording_queue_packets: usize,
    /// Recording stops cleanly (files closed and playable, counted in
    /// [`BroadcastStats::recording_disk_stops`](crate::BroadcastStats::recording_disk_stops))
    /// when the recording folder's file system has less free space than this. Checked when a
    /// track starts and once a second. 0: never.
    pub recording_min_free_bytes: u64,
    /// Packets held to put a recorded track's packets back in sequence order: a packet arriving
    /// up to this many packets late is still recorded in its place.
    pub recording_reorder_packets: usize,
    /// Which remote candidates clients may hand the node (see [`CandidateFilter`]). The SFU
    /// applies none itself (the node-to-node relay exchanges private addresses on purpose):
    /// the callers facing clients do, with [`Broadcast::candidate_filter`](crate::Broadcast::candidate_filter).
    /// The default drops private addresses.
    pub candidate_filter: CandidateFilter,
}

impl Default for SignalingConfig {
    fn default() -> Self {
        Self {
            bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            udp_port_range: None,
            public_ips: Vec::new(),
            ice_tcp: false,
            tcp_mux: None,
            ice_servers: Vec::new(),
            ice_disconnected_timeout: Duration::from_secs(5),
            ice_failed_timeout: Duration::from_secs(10),
            subscriber_queue_packets: 256,
            keyframe_request_interval: Duration::from_secs(1),
            recording_dir: None,
            recording_queue_packets: 1024,
            recording_min_free_bytes: 0,
            recording_reorder_packets: 32,
            candidate_filter: CandidateFilter::default(),
        }
    }
}

/// One STUN or TURN server as a browser's `RTCIceServer` wants it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceServer {
    /// `stun:host:port`, `turn:host:port?transport=udp`, `turns:…`.
    pub urls: Vec<String>,
    /// TURN user name; empty for STUN.
    pub username: String,
    /// TURN credential; empty for STUN.
    pub credential: String,
}

/// Payload types the node offers. Fixed, so a forwarded packet's type is rewritten to the one
/// every subscriber negotiated (the node writes the subscriber offers).
pub(crate) const VP8_PAYLOAD_TYPE: u8 = 96;
pub(crate) const OPUS_PAYLOAD_TYPE: u8 = 111;

/// The node's payload type for a codec, `None` for a codec it does not forward.
pub(crate) fn payload_type_for(mime_type: &str) -> Option<u8> {
    if mime_type.eq_ignore_ascii_case(MIME_TYPE_VP8) {
        Some(VP8_PAYLOAD_TYPE)
    } else if mime_type.eq_ignore_ascii_case(MIME_TYPE_OPUS) {
        Some(OPUS_PAYLOAD_TYPE)
    } else {
        None
    }
}

pub(crate) fn vp8_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: ["nack", "nack pli", "ccm fir"]
            .iter()
            .map(|fb| {
                let (typ, parameter) = fb.split_once(' ').unwrap_or((fb, ""));
                RTCPFeedback {
                    typ: typ.to_owned(),
                    parameter: parameter.to_owned(),
                }
            })
            .collect(),
    }
}

pub(crate) fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: Vec::new(),
    }
}

/// Builds peer connections from the configuration, walking the UDP port range.
#[derive(Debug)]
pub(crate) struct PeerFactory {
    /// Shared with the subscribers, whose offers it advertises.
    config: Arc<SignalingConfig>,
    /// Where the next port search starts, so consecutive connections do not all probe the
    /// ports the earlier ones hold.
    next_port: AtomicU32,
}

impl PeerFactory {
    pub(crate) fn new(config: SignalingConfig) -> Self {
        Self {
            config: Arc::new(config),
            next_port: AtomicU32::new(0),
        }
    }

    pub(crate) fn config(&self) -> &SignalingConfig {
        &self.config
    }

    /// A peer connection bound to a free port of the range (or an ephemeral one).
    pub(crate) async fn build(
        &self,
        handler: Arc<dyn PeerConnectionEventHandler>,
    ) -> Result<Arc<dyn PeerConnection>, SignalingError> {
        let Some(range) = self.config.udp_port_range.clone() else {
            return self.build_on(0, handler).await;
        };
        let (first, last) = (u32::from(*range.start()), u32::from(*range.end()));
        if first > last {
            return Err(SignalingError::NoFreePort { first, last });
        }
        let len = last - first + 1;
        let start = self.next_port.fetch_add(1, Ordering::Relaxed) % len;
        let mut last_error = None;
        for step in 0..len {
            let port = first + (start + step) % len;
            // `port` lies in `first..=last`, both of which came from `u16`s.
            let port = u16::try_from(port).unwrap_or(u16::MAX);
            match self.build_on(port, Arc::clone(&handler)).await {
                Ok(pc) => {
                    self.next_port.store(start + step + 1, Ordering::Relaxed);
                    return Ok(pc);
                }
                Err(err) => {
                    tracing::debug!(port, %err, "port taken, trying the next one");
                    last_error = Some(err);
                }
            }
        }
        tracing::warn!(first, last, error = ?last_error, "no free UDP port in the range");
        Err(SignalingError::NoFreePort { first, last })
    }

    async fn build_on(
        &self,
        port: u16,
        handler: Arc<dyn PeerConnectionEventHandler>,
    ) -> Result<Arc<dyn PeerConnection>, SignalingError> {
        let mut media_engine = MediaEngine::default();
        media_engine.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: vp8_codec(),
                payload_type: VP8_PAYLOAD_TYPE,
            },
            RtpCodecKind::Video,
        )?;
        media_engine.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: opus_codec(),
                payload_type: OPUS_PAYLOAD_TYPE,
            },
            RtpCodecKind::Audio,
        )?;
        // NACK both ways (the node retransmits to a lossy learner from its own buffer, and
        // asks the instructor for what it lost), receiver and sender reports, TWCC feedback.
        let registry = register_default_interceptors(Registry::new(), &mut media_engine)?
            // A learner's PLI/FIR about a forwarded track reaches its writer (see
            // `forward::spawn_writer`); the default chain keeps inbound RTCP to itself.
            .with(Slot::from(14_000), KeyframeRequestsToApp::default());

        let mut settings = SettingEngineBuilder::new().with_ice_timeouts(
            Some(self.config.ice_disconnected_timeout),
            Some(self.config.ice_failed_timeout),
            // webrtc's default keepalive interval (2 s), stated because the setter takes all three.
            Some(Duration::from_secs(2)),
        );
        if !self.config.public_ips.is_empty() {
            settings = settings.with_nat_1to1_ips(
                self.config
                    .public_ips
                    .iter()
                    .map(IpAddr::to_string)
                    .collect(),
                RTCIceCandidateType::Host,
            );
        }

        let addr = SocketAddr::new(self.config.bind_ip, port);
        let mut builder = PeerConnectionBuilder::new();
        let mut handler = handler;
        let tcp_addrs = if let Some(mux) = &self.config.tcp_mux {
            // The node picks the connection's ICE username fragment, so the mux can tell
            // whose a new TCP stream is; the connection's own TCP listener (on any port) only
            // names its candidate, which is advertised on the shared port.
            let (ufrag, pwd) = crate::tcp_mux::ice_credentials();
            settings = settings.with_ice_credentials(ufrag.clone(), pwd);
            builder = builder.with_runtime(Arc::new(MuxRuntime {
                mux: Arc::clone(mux),
                ufrag,
            }));
            handler = Arc::new(Advertised {
                inner: handler,
                mux: Arc::clone(mux),
                public_ips: self.config.public_ips.clone(),
            });
            vec![SocketAddr::new(self.config.bind_ip, 0)]
        } else if self.config.ice_tcp {
            vec![addr]
        } else {
            Vec::new()
        };
        // Boxed: building a connection is a 20 KiB future, too big to keep inline.
        let pc = Box::pin(
            builder
                .with_media_engine(media_engine)
                .with_interceptor_registry(registry)
                .with_setting_engine(settings.build())
                .with_handler(handler)
                .with_udp_addrs(vec![addr])
                .with_tcp_addrs(tcp_addrs)
                .build(),
        )
        .await?;
        Ok(Arc::new(pc))
    }

    /// The settings, shared.
    pub(crate) fn shared_config(&self) -> Arc<SignalingConfig> {
        Arc::clone(&self.config)
    }

    /// A local description as the browser must see it (TCP candidates on the shared port).
    pub(crate) fn advertised_sdp(&self, sdp: String) -> String {
        self.config.advertised_sdp(sdp)
    }
}

impl SignalingConfig {
    /// A local description as the browser must see it (TCP candidates on the shared port).
    pub(crate) fn advertised_sdp(&self, sdp: String) -> String {
        match &self.tcp_mux {
            Some(mux) => mux.advertise_sdp(&sdp, &self.public_ips),
            None => sdp,
        }
    }
}

/// An interceptor that hands inbound keyframe requests (PLI, FIR) to the application as
/// well, where `TrackLocal::poll` yields them; other RTCP stays with the interceptors (webrtc
/// 0.21 keeps all of it by default). The node's connections use it so a subscriber's writer
/// can relay a learner's request to the publisher; a peer that publishes to the node (a test
/// instructor) uses it to see the node's requests:
/// `registry.with(Slot::from(14_000), KeyframeRequestsToApp::default())`.
#[derive(Default)]
#[allow(missing_debug_implementations)] // Holds packets in flight only.
pub struct KeyframeRequestsToApp {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl rtc::sansio::Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestsToApp {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet
            && packets.iter().any(|p| is_keyframe_request(p.as_ref()))
        {
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }
    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }
    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }
    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for KeyframeRequestsToApp {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

/// A connection's event handler with its candidates advertised on the shared ICE-TCP port.
struct Advertised {
    inner: Arc<dyn PeerConnectionEventHandler>,
    mux: Arc<TcpMux>,
    public_ips: Vec<IpAddr>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Advertised {
    async fn on_ice_candidate(&self, mut event: RTCPeerConnectionIceEvent) {
        self.mux.advertise(&mut event.candidate, &self.public_ips);
        self.inner.on_ice_candidate(event).await;
    }
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        self.inner.on_ice_gathering_state_change(state).await;
    }
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.inner.on_connection_state_change(state).await;
    }
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        self.inner.on_track(track).await;
    }
    async fn on_data_channel(&self, channel: Arc<dyn webrtc::data_channel::DataChannel>) {
        self.inner.on_data_channel(channel).await;
    }
    async fn on_negotiation_needed(&self) {
        self.inner.on_negotiation_needed().await;
    }
    async fn on_ice_candidate_error(&self, event: RTCPeerConnectionIceErrorEvent) {
        self.inner.on_ice_candidate_error(event).await;
    }
    async fn on_signaling_state_change(&self, state: RTCSignalingState) {
        self.inner.on_signaling_state_change(state).await;
    }
    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        self.inner.on_ice_connection_state_change(state).await;
    }
}
