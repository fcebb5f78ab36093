//! The connection check a learner's page runs before a lecture: a WebSocket that answers
//! pings (does a WebSocket get through this network, and how long is the round trip) and
//! runs one WebRTC probe (does the lecture's media get through: a data channel to a peer
//! connection built like the broadcast's, echoing what it receives), and a download of
//! random bytes (how fast). Public: no ticket, no sign-in — it says nothing about
//! anyone — and bounded like everything public: the room socket's origin check, connect
//! limit, capacity and sizes; a download limit per address.
//!
//! A probe is a whole WebRTC connection (a UDP port, file descriptors, memory) made for
//! anyone, so it is held on a short leash: a cap per client address and per node
//! ([`Probes`]), ports of its own (never the lecture's), a life of `check_probe_secs`, no TURN
//! credential, and the node's candidate filter on what the page names.

use crate::client_addr::{ClientAddr, TrustedProxies};
use crate::clock::Clock;
use crate::conn::admission::Admission;
use crate::conn::admission::{Admitted, UpgradeRefused};
use crate::conn::frames::{data_of, read_failure};
use crate::conn::outbox::encode;
use crate::conn::upgrade::{NotWebSocket, Upgrade};
use crate::conn::ws::{Frame, Reader, Writer, close_frame, normal_close};
use crate::gate::http::{ApiError, ErrorBody};
use crate::metrics::Metrics;
use axum::Router;
use axum::extract::FromRef;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use protocol::{ClientMsg, CloseCode, Codec, DecodeError, ErrorCode, ServerMsg};
use serde::Deserialize;
use signaling::PeerSignal;
use signaling::probe::{Probe, Prober};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout_at};
use tokio_tungstenite::tungstenite::Message;

/// Messages one check connection answers before it closes (pings or not).
pub(crate) const MAX_MESSAGES: u32 = 100;
/// How long one check connection lives.
pub(crate) const LIFE: Duration = Duration::from_secs(60);

/// The node's connection-check probes: what builds them, and how many each client address
/// and the node hold now.
#[derive(Debug)]
pub(crate) struct Probes {
    /// Builds probes on their own ports (`[media] check_udp_port_range`, or ephemeral).
    prober: Prober,
    /// Probes open now in all, and per address (an address is in the map only while it
    /// holds one, so the map is never larger than the node's cap).
    held: Mutex<Held>,
    /// `[limits] max_check_probes`.
    per_node: u32,
    /// `[limits] check_probes_per_ip`.
    per_address: u32,
    /// `[limits] check_probe_secs`.
    life: Duration,
}

#[derive(Debug, Default)]
struct Held {
    total: u32,
    by_address: HashMap<IpAddr, u32>,
}

/// Why a probe was not made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProbeRefused {
    /// The client's address holds its share already.
    #[error("too many connection checks from your address at once; retry in a minute")]
    Address,
    /// The node holds all the probes it makes at once.
    #[error("too many connection checks on this server at once; retry in a minute")]
    Node,
}

impl Probes {
    pub(crate) fn new(prober: Prober, limits: &crate::config::Limits) -> Self {
        Self {
            prober,
            held: Mutex::default(),
            per_node: limits.max_check_probes,
            per_address: limits.check_probes_per_ip,
            life: Duration::from_secs(limits.check_probe_secs),
        }
    }

    /// Takes a place for a probe from `addr`, released when the lease is dropped.
    fn lease(&self, addr: IpAddr) -> Result<Lease<'_>, ProbeRefused> {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if held.total >= self.per_node {
            return Err(ProbeRefused::Node);
        }
        let mine = held.by_address.entry(addr).or_insert(0);
        if *mine >= self.per_address {
            if *mine == 0 {
                held.by_address.remove(&addr);
            }
            return Err(ProbeRefused::Address);
        }
        *mine += 1;
        held.total += 1;
        Ok(Lease { probes: self, addr })
    }
}

/// One probe's place in [`Probes`], given back on drop.
#[derive(Debug)]
struct Lease<'a> {
    probes: &'a Probes,
    addr: IpAddr,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut held = self
            .probes
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.total = held.total.saturating_sub(1);
        if let Some(n) = held.by_address.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                held.by_address.remove(&self.addr);
            }
        }
    }
}
/// The connection check's part of the node: what its socket and its download need.
#[derive(Debug)]
pub(crate) struct Check {
    /// The door the check's socket passes, like the room's.
    admission: Arc<Admission>,
    /// The WebRTC probes and their caps.
    probes: Probes,
    /// Which ICE candidates the node contacts (the lecture's rule).
    candidate_filter: signaling::CandidateFilter,
    /// STUN only: this socket is anyone's, so it never gets a TURN credential.
    ice_servers: Vec<protocol::IceServer>,
    clock: Arc<dyn Clock>,
    /// Downloads per client address.
    download_limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Random bytes drawn once at start: every download is a slice of them (incompressible,
    /// so no proxy can shrink them, and no copy or draw per request).
    payload: bytes::Bytes,
    metrics: Arc<Metrics>,
    /// Whose forwarding headers name the client's address.
    trusted_proxies: TrustedProxies,
}

/// What the connection check is made from.
#[derive(Debug)]
pub(crate) struct CheckParts {
    pub(crate) admission: Arc<Admission>,
    pub(crate) probes: Probes,
    pub(crate) candidate_filter: signaling::CandidateFilter,
    pub(crate) ice_servers: Vec<protocol::IceServer>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) downloads_per_min: u32,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) trusted_proxies: TrustedProxies,
}

impl Check {
    /// The check, with its random download bytes drawn now.
    pub(crate) fn new(parts: CheckParts) -> Result<Self, getrandom::Error> {
        let mut payload = vec![0u8; MAX_DOWNLOAD];
        getrandom::fill(&mut payload)?;
        let per_min = NonZeroU32::new(parts.downloads_per_min).unwrap_or(NonZeroU32::MIN);
        Ok(Self {
            admission: parts.admission,
            probes: parts.probes,
            candidate_filter: parts.candidate_filter,
            ice_servers: parts.ice_servers,
            clock: parts.clock,
            download_limiter: RateLimiter::keyed(Quota::per_minute(per_min)),
            payload: payload.into(),
            metrics: parts.metrics,
            trusted_proxies: parts.trusted_proxies,
        })
    }

    /// Forgets idle per-address counters, so the limiter's memory stays bounded.
    pub(crate) fn forget_idle_limits(&self) {
        self.download_limiter.retain_recent();
    }
}

/// The client-address extractor's sub-state on the check's routes.
impl FromRef<Arc<Check>> for TrustedProxies {
    fn from_ref(check: &Arc<Check>) -> Self {
        check.trusted_proxies.clone()
    }
}

/// The check's routes: its socket and its download.
pub(crate) fn router() -> Router<Arc<Check>> {
    Router::new()
        .route("/ws/check", get(socket))
        .route("/api/v1/check/download", get(download))
}

/// Largest download, and the size of the random bytes a node draws at start.
pub(crate) const MAX_DOWNLOAD: usize = 8 * 1024 * 1024;
/// The download's size when none is asked for.
const DEFAULT_DOWNLOAD: usize = 1024 * 1024;

#[utoipa::path(get, path = "/ws/check", tag = "check",
    description = "The connection check's WebSocket (docs/protocol.md, \"Connection check\"). Same subprotocols, origin rule and limits as the room socket; no ticket and no `hello`. The node first sends `media_config` (STUN servers only, never a TURN credential); every `ping` gets a `pong`; one `media_offer` of a data channel (no audio or video) gets a `media_answer` and opens a WebRTC probe that echoes every data-channel message, candidates trickling both ways as `media_candidate`, until `media_stopped` after `check_probe_secs` (20 s); a probe beyond `check_probes_per_ip` (2) per client address or `max_check_probes` (50) per node gets an `error` `rate_limited`; anything else gets an `error`. Closes with 1000 after 100 messages or 60 seconds, and the probe with it.",
    responses(
        (status = 101, description = "switching to the room protocol"),
        (status = 400, body = ErrorBody, description = "not_websocket, unsupported_subprotocol"),
        (status = 403, body = ErrorBody, description = "origin_not_allowed"),
        (status = 429, body = ErrorBody, description = "rate_limited"),
        (status = 503, body = ErrorBody, description = "draining, node_full"),
    ))]
pub(crate) async fn socket(
    State(check): State<Arc<Check>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    upgrade: Result<Upgrade, NotWebSocket>,
) -> Result<Response, UpgradeRefused> {
    let Admitted {
        upgrade,
        codec,
        permit,
    } = check.admission.admit(client, &headers, upgrade)?;
    let settings = check.admission.ws_settings();
    let tracker = check.admission.sessions.clone();
    Ok(
        upgrade.respond(codec.subprotocol(), settings, move |reader, writer| {
            tracker.track_future(async move {
                run(check, reader, writer, codec, client).await;
                drop(permit);
            })
        }),
    )
}

/// Runs one check connection to its end.
async fn run(
    check: Arc<Check>,
    mut reader: Reader,
    mut writer: Writer,
    codec: Codec,
    client: IpAddr,
) {
    check.metrics.check_connections_active.inc();
    let close = answer(&check, &mut writer, &mut reader, codec, client).await;
    if let Some(close) = close {
        crate::conn::ws::close(reader, writer, close).await;
    }
    check.metrics.check_connections_active.dec();
}

/// Answers messages until the check is over, then closes the probe if one was made. Returns
/// the close to send, or `None` when the client has gone.
async fn answer(
    check: &Check,
    sink: &mut Writer,
    stream: &mut Reader,
    codec: Codec,
    client: IpAddr,
) -> Option<Frame> {
    let mut probe = ProbeSlot::Never;
    let close = converse(check, sink, stream, codec, client, &mut probe).await;
    probe.end(check).await;
    close
}

/// The check connection's WebRTC probe (at most one per connection).
enum ProbeSlot<'a> {
    /// None asked for yet.
    Never,
    /// Open: the probe, its signals, when it must close, and its place in the node's caps.
    Live {
        probe: Probe,
        signals: mpsc::UnboundedReceiver<PeerSignal>,
        until: Instant,
        _lease: Lease<'a>,
    },
    /// Made and closed (failed, or its life is over): no other on this connection.
    Over,
}

impl ProbeSlot<'_> {
    /// The probe's next signal, or `None` when its life is over; never, without a live one.
    async fn next(&mut self) -> Option<PeerSignal> {
        match self {
            Self::Live { signals, until, .. } => {
                tokio::select! {
                    signal = signals.recv() => signal,
                    () = sleep_until(*until) => None,
                }
            }
            _ => std::future::pending().await,
        }
    }

    /// Closes a live probe and gives its place back.
    async fn end(&mut self, check: &Check) {
        if let Self::Live { probe, .. } = std::mem::replace(self, Self::Over) {
            probe.close().await;
            check.metrics.check_probes_active.dec();
        }
    }
}

/// Sends one reply, waiting at most until `deadline`; `false` when the client is gone.
async fn reply(sink: &mut Writer, codec: Codec, deadline: Instant, msg: &ServerMsg) -> bool {
    // Only a bug fails to encode (logged); nothing sensible is left to say then.
    let Some(frame) = encode(msg, codec) else {
        return false;
    };
    // A client that does not read holds the reply at most until the check is over.
    matches!(timeout_at(deadline, sink.send([&frame])).await, Ok(Ok(())))
}

fn check_error(code: ErrorCode, message: impl Into<String>, command: &str) -> ServerMsg {
    ServerMsg::Error {
        code,
        message: message.into(),
        command: Some(command.to_owned()),
        id: None,
    }
}

async fn converse<'a>(
    check: &'a Check,
    sink: &mut Writer,
    stream: &mut Reader,
    codec: Codec,
    client: IpAddr,
    probe: &mut ProbeSlot<'a>,
) -> Option<Frame> {
    let deadline = Instant::now() + LIFE;
    // First, what the page needs to build its RTCPeerConnection for the WebRTC probe: STUN
    // only, never a TURN credential (this socket is anyone's).
    let config = ServerMsg::MediaConfig {
        ice_servers: check.ice_servers.clone(),
    };
    if !reply(sink, codec, deadline, &config).await {
        return None;
    }
    let mut answered = 0;
    loop {
        let frame = tokio::select! {
            biased;
            () = check.admission.shutdown.cancelled() => return Some(close_frame(Some(CloseCode::ServerShutdown))),
            () = sleep_until(deadline) => return Some(normal_close("check over: 60 s elapsed")),
            signal = probe.next() => {
                let msg = match signal {
                    Some(PeerSignal::IceCandidate(candidate)) => {
                        ServerMsg::MediaCandidate { candidate }
                    }
                    Some(PeerSignal::EndOfCandidates | PeerSignal::Offer(_)) => continue,
                    Some(PeerSignal::Closed) | None => {
                        // The probe failed, closed, or lived its life: its place goes back.
                        probe.end(check).await;
                        ServerMsg::MediaStopped
                    }
                };
                if !reply(sink, codec, deadline, &msg).await {
                    return None;
                }
                continue;
            }
            () = sink.control_waiting() => {
                // A pong to the client's ping (tungstenite's own answer).
                if !matches!(timeout_at(deadline, sink.send_control()).await, Ok(Ok(()))) {
                    return None;
                }
                continue;
            }
            frame = stream.next() => frame,
        };
        let msg = match frame {
            None => return None,
            Some(Err(e)) => return read_failure(&e).map(|code| close_frame(Some(code))),
            Some(Ok(msg)) => msg,
        };
        let bytes = match data_of(&msg, codec) {
            Ok(Some(bytes)) => bytes,
            // The client closes; its close is answered on the way out.
            Ok(None) if matches!(msg, Message::Close(_)) => return Some(close_frame(None)),
            Ok(None) => continue,
            Err(code) => return Some(close_frame(Some(code))),
        };
        let reply_msg = match codec.decode_client(&bytes) {
            Ok(ClientMsg::Ping { t }) => Some(ServerMsg::Pong {
                t,
                server_time: check.clock.now(),
            }),
            Ok(ClientMsg::MediaOffer { sdp }) => {
                Some(offer(check, probe, client, sdp, deadline).await)
            }
            Ok(ClientMsg::MediaCandidate { candidate }) => match &*probe {
                ProbeSlot::Never => Some(check_error(
                    ErrorCode::NotAllowed,
                    "send `media_offer` first",
                    "media_candidate",
                )),
                // Trailing the probe's end: nowhere to go.
                ProbeSlot::Over => None,
                // Dropped without a word: a page's host candidates are private addresses
                // as a rule, and an error would fail its check for nothing.
                ProbeSlot::Live { .. } if !check.candidate_filter.admit(&candidate.candidate) => {
                    None
                }
                ProbeSlot::Live { probe: live, .. } => match live.add_candidate(candidate).await {
                    Ok(()) => None,
                    Err(e) => Some(check_error(
                        ErrorCode::InvalidArgument,
                        format!("the candidate was refused: {e}"),
                        "media_candidate",
                    )),
                },
            },
            Ok(other) => Some(check_error(
                ErrorCode::NotAllowed,
                "the connection check answers `ping`, `media_offer` and `media_candidate` only",
                other.kind(),
            )),
            Err(DecodeError::BadCommand { kind, detail, id }) => Some(ServerMsg::Error {
                code: ErrorCode::BadCommand,
                message: format!("bad `{kind}`: {detail}"),
                command: Some(kind),
                id,
            }),
            Err(DecodeError::Malformed(_)) => {
                return Some(close_frame(Some(CloseCode::ProtocolViolation)));
            }
        };
        if let Some(msg) = reply_msg
            && !reply(sink, codec, deadline, &msg).await
        {
            return None;
        }
        answered += 1;
        if answered >= MAX_MESSAGES {
            return Some(normal_close("check over: 100 messages answered"));
        }
    }
}

/// Takes the connection's `media_offer`: the first makes the probe and is answered with
/// `media_answer`; one after it gets an `error`, and so does an offer the node cannot take
/// (which leaves the connection free to offer again).
async fn offer<'a>(
    check: &'a Check,
    probe: &mut ProbeSlot<'a>,
    client: IpAddr,
    sdp: String,
    deadline: Instant,
) -> ServerMsg {
    if !matches!(probe, ProbeSlot::Never) {
        return check_error(
            ErrorCode::NotAllowed,
            "one WebRTC probe per connection check",
            "media_offer",
        );
    }
    let lease = match check.probes.lease(client) {
        Ok(lease) => lease,
        Err(refused) => {
            check.metrics.check_probes_refused_total.inc();
            return check_error(ErrorCode::RateLimited, refused.to_string(), "media_offer");
        }
    };
    let sdp = check.candidate_filter.strip_sdp(sdp);
    let probes = &check.probes;
    let made = match timeout_at(deadline, Probe::answer(&probes.prober, sdp)).await {
        Ok(made) => made,
        Err(_) => {
            return check_error(ErrorCode::InvalidArgument, "check over", "media_offer");
        }
    };
    match made {
        Ok((live, sdp, signals)) => {
            check.metrics.check_probes_total.inc();
            check.metrics.check_probes_active.inc();
            *probe = ProbeSlot::Live {
                probe: live,
                signals,
                until: Instant::now() + probes.life,
                _lease: lease,
            };
            ServerMsg::MediaAnswer { sdp }
        }
        Err(e) => check_error(
            ErrorCode::InvalidArgument,
            format!("the offer was refused: {e}"),
            "media_offer",
        ),
    }
}

/// How much to download.
#[derive(Debug, Deserialize)]
pub(crate) struct DownloadSize {
    bytes: Option<u64>,
}

#[utoipa::path(get, path = "/api/v1/check/download", tag = "check",
    description = "The connection check's download: `bytes` of random (incompressible) data, never cached. Limited per client address (behind `trusted_proxies`, the address they name).",
    params(("bytes" = Option<u64>, Query, minimum = 1, maximum = 8388608,
        description = "How many bytes, 1 to 8 MiB (8388608); 1 MiB (1048576) when left out.")),
    responses(
        (status = 200, body = Vec<u8>, content_type = "application/octet-stream", description = "the bytes"),
        (status = 400, body = ErrorBody, description = "bytes is 0, over 8 MiB or not a number"),
        (status = 429, body = ErrorBody, description = "too many downloads from this address; retry in a minute"),
    ))]
pub(crate) async fn download(
    State(check): State<Arc<Check>>,
    ClientAddr(client): ClientAddr,
    size: Result<Query<DownloadSize>, QueryRejection>,
) -> Result<Response, ApiError> {
    let wrong = || ApiError::BadRequest(format!("bytes must be a number from 1 to {MAX_DOWNLOAD}"));
    let Query(DownloadSize { bytes }) = size.map_err(|_| wrong())?;
    let n = match bytes {
        None => DEFAULT_DOWNLOAD,
        Some(n) => usize::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_DOWNLOAD).contains(n))
            .ok_or_else(wrong)?,
    };
    if check.download_limiter.check_key(&client).is_err() {
        return Err(ApiError::RateLimited);
    }
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        // A view of the node's random bytes: nothing is copied.
        check.payload.slice(..n),
    )
        .into_response())
}
