//! A connectivity probe: one short-lived peer connection that a browser's connection check
//! offers a data channel to, and that echoes back every message received on it. It is built
//! like the broadcast's connections (public addresses, ICE-TCP, bind address), so a passing
//! probe means the lecture's media can reach this browser too, but from a [`Prober`] of its
//! own: probes are anonymous, and their ports must not be the ones the lecture's connections
//! need (give the prober its own `udp_port_range`, or none for ephemeral ports).

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceGatheringState, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, RTCSessionDescription,
};

use crate::SignalingConfig;
use crate::SignalingError;
use crate::broadcast::{send_candidate, send_end_of_candidates};
use crate::config::PeerFactory;
use crate::signal::{IceCandidate, PeerSignal, to_webrtc_candidate};

/// Data channels one probe echoes on; further ones are closed.
pub const MAX_CHANNELS: usize = 4;
/// Messages one probe echoes in all; later ones are dropped.
pub const MAX_ECHOES: usize = 1000;
/// Largest message echoed; larger ones are dropped.
pub const MAX_ECHO_BYTES: usize = 16 * 1024;

/// Makes probes: one per node, so consecutive probes walk their port range instead of all
/// trying its first port.
#[derive(Debug)]
pub struct Prober {
    factory: PeerFactory,
}

impl Prober {
    /// A prober building connections from `config` (its port range is the probes' own).
    pub fn new(config: SignalingConfig) -> Self {
        Self {
            factory: PeerFactory::new(config),
        }
    }

    /// The settings probes are built from.
    pub fn config(&self) -> &SignalingConfig {
        self.factory.config()
    }
}

/// One connectivity probe. Close it with [`Probe::close`]; dropping it closes it too (in a
/// spawned task).
pub struct Probe {
    pc: Arc<dyn PeerConnection>,
    tasks: Arc<Mutex<Tasks>>,
}

#[derive(Default)]
struct Tasks {
    handles: Vec<JoinHandle<()>>,
    closed: bool,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probe").finish_non_exhaustive()
    }
}

/// Whether an offer is one a probe takes: parsable, and only data (`m=application`)
/// sections, at least one.
fn data_only(sdp: &str) -> bool {
    let mut sections = sdp
        .lines()
        .filter_map(|line| line.trim_end().strip_prefix("m="))
        .peekable();
    sections.peek().is_some() && sections.all(|m| m.starts_with("application "))
}

impl Probe {
    /// Answers a browser's offer of a data channel (and nothing else). Returns the probe, the
    /// answer SDP, and the node's signals ([`PeerSignal::IceCandidate`],
    /// [`PeerSignal::EndOfCandidates`], then [`PeerSignal::Closed`] when the connection
    /// fails or closes). An offer with audio or video, or one the WebRTC stack refuses, is
    /// an error and leaves nothing behind.
    pub async fn answer(
        prober: &Prober,
        offer: String,
    ) -> Result<(Self, String, mpsc::UnboundedReceiver<PeerSignal>), SignalingError> {
        if !data_only(&offer) {
            return Err(SignalingError::NotDataOnly);
        }
        let offer = RTCSessionDescription::offer(offer)?;
        let (signals, signals_rx) = mpsc::unbounded_channel();
        let tasks = Arc::new(Mutex::new(Tasks::default()));
        let handler = Arc::new(ProbeEvents {
            signals,
            tasks: Arc::clone(&tasks),
        });
        let pc = prober.factory.build(handler).await?;
        let probe = Self { pc, tasks };
        let sdp = probe
            .negotiate(offer)
            .await
            .map(|sdp| prober.factory.advertised_sdp(sdp));
        match sdp {
            Ok(sdp) => Ok((probe, sdp, signals_rx)),
            Err(err) => {
                probe.close().await;
                Err(err)
            }
        }
    }

    async fn negotiate(&self, offer: RTCSessionDescription) -> Result<String, SignalingError> {
        self.pc.set_remote_description(offer).await?;
        let answer = self.pc.create_answer(None).await?;
        self.pc.set_local_description(answer).await?;
        Ok(self
            .pc
            .local_description()
            .await
            .ok_or(SignalingError::NoLocalDescription)?
            .sdp)
    }

    /// Applies one of the browser's trickled candidates.
    pub async fn add_candidate(&self, candidate: IceCandidate) -> Result<(), SignalingError> {
        self.pc
            .add_ice_candidate(to_webrtc_candidate(candidate))
            .await?;
        Ok(())
    }

    /// Stops the echo and closes the connection.
    pub async fn close(&self) {
        abort_all(&self.tasks);
        if let Err(err) = self.pc.close().await {
            tracing::debug!(%err, "closing a probe connection");
        }
    }
}

fn abort_all(tasks: &Mutex<Tasks>) {
    let mut tasks = tasks
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    tasks.closed = true;
    for handle in tasks.handles.drain(..) {
        handle.abort();
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        abort_all(&self.tasks);
        let pc = Arc::clone(&self.pc);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = pc.close().await;
            });
        }
    }
}

/// A probe connection's events: candidates out, data channels echoed.
struct ProbeEvents {
    signals: mpsc::UnboundedSender<PeerSignal>,
    tasks: Arc<Mutex<Tasks>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for ProbeEvents {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        send_candidate(&self.signals, event);
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        send_end_of_candidates(&self.signals, state);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(%state, "probe connection");
        if matches!(
            state,
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
        ) {
            let _ = self.signals.send(PeerSignal::Closed);
        }
    }

    async fn on_data_channel(&self, channel: Arc<dyn DataChannel>) {
        let accepted = {
            let mut tasks = self
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let accepted = !tasks.closed && tasks.handles.len() < MAX_CHANNELS;
            if accepted {
                tasks.handles.push(tokio::spawn(echo(Arc::clone(&channel))));
            }
            accepted
        };
        if !accepted {
            let _ = channel.close().await;
        }
    }
}

/// Sends every message of `channel` back, within the probe's limits.
async fn echo(channel: Arc<dyn DataChannel>) {
    // Each channel counts its own; `MAX_CHANNELS` bounds the sum.
    let mut echoed = 0;
    while let Some(event) = channel.poll().await {
        match event {
            DataChannelEvent::OnMessage(msg) => {
                if echoed >= MAX_ECHOES / MAX_CHANNELS || msg.data.len() > MAX_ECHO_BYTES {
                    continue;
                }
                echoed += 1;
                let sent = if msg.is_string {
                    match std::str::from_utf8(&msg.data) {
                        Ok(text) => channel.send_text(text).await,
                        Err(_) => continue,
                    }
                } else {
                    channel.send(msg.data).await
                };
                if sent.is_err() {
                    break;
                }
            }
            DataChannelEvent::OnClose => break,
            _ => {}
        }
    }
}
