//! The connection check a learner's page runs before a lecture: a WebSocket that answers
//! pings (does a WebSocket get through this network, and how long is the round trip) and
//! runs one WebRTC probe (does the lecture's media get through: a data channel to a peer
//! connection built like the broadcast's, echoing what it receives), and a download of
//! random bytes (how fast). Public: no ticket, no sign-in — it says nothing about
//! anyone — and bounded like everything public: the room socket's origin check, connect
//! limit, capacity and sizes; a download limit per address.

use crate::conn::close::{close_frame, finish, normal_close};
use crate::conn::upgrade::{NotWebSocket, Upgrade, WsStream};
use crate::gate::http::{ApiError, ErrorBody};
use crate::node::{Metrics, Node};
use crate::room_task::encode;
use crate::routes::{Admitted, UpgradeRefused, admit_socket};
use crate::session::{Sink, Stream, data_of, read_failure};
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use protocol::{ClientMsg, CloseCode, Codec, DecodeError, ErrorCode, IceCandidate, ServerMsg};
use serde::Deserialize;
use signaling::PeerSignal;
use signaling::probe::Probe;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout_at};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// Messages one check connection answers before it closes (pings or not).
pub(crate) const MAX_MESSAGES: u32 = 100;
/// How long one check connection lives.
pub(crate) const LIFE: Duration = Duration::from_secs(60);
/// Largest download, and the size of the random bytes a node draws at start.
pub(crate) const MAX_DOWNLOAD: usize = 8 * 1024 * 1024;
/// The download's size when none is asked for.
const DEFAULT_DOWNLOAD: usize = 1024 * 1024;

#[utoipa::path(get, path = "/ws/check", tag = "check",
    description = "The connection check's WebSocket (docs/protocol.md, \"Connection check\"). Same subprotocols, origin rule and limits as the room socket; no ticket and no `hello`. The node first sends `media_config`; every `ping` gets a `pong`; one `media_offer` of a data channel (no audio or video) gets a `media_answer` and opens a WebRTC probe that echoes every data-channel message, candidates trickling both ways as `media_candidate`; anything else gets an `error`. Closes with 1000 after 100 messages or 60 seconds, and the probe with it.",
    responses(
        (status = 101, description = "switching to the room protocol"),
        (status = 400, body = ErrorBody, description = "not_websocket, unsupported_subprotocol"),
        (status = 403, body = ErrorBody, description = "origin_not_allowed"),
        (status = 429, body = ErrorBody, description = "rate_limited"),
        (status = 503, body = ErrorBody, description = "draining, node_full"),
    ))]
pub(crate) async fn socket(
    State(node): State<Arc<Node>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: Result<Upgrade, NotWebSocket>,
) -> Result<Response, UpgradeRefused> {
    let Admitted {
        upgrade,
        codec,
        permit,
    } = admit_socket(&node, peer, &headers, upgrade)?;
    // Replies are small and sent one at a time.
    let settings = node.ws_settings(64 * 1024);
    let tracker = node.sessions.clone();
    Ok(upgrade.respond(codec.subprotocol(), settings, move |ws| {
        tracker.track_future(async move {
            run(node, ws, codec).await;
            drop(permit);
        })
    }))
}

/// Runs one check connection to its end.
async fn run(node: Arc<Node>, ws: WsStream, codec: Codec) {
    Metrics::add(&node.metrics.check_connections_active, 1);
    let (mut sink, mut stream) = ws.split();
    let close = answer(&node, &mut sink, &mut stream, codec).await;
    if let (Some(close), Ok(ws)) = (close, stream.reunite(sink)) {
        finish(ws, close).await;
    }
    Metrics::sub(&node.metrics.check_connections_active, 1);
}

/// Answers messages until the check is over, then closes the probe if one was made. Returns
/// the close to send, or `None` when the client has gone.
async fn answer(
    node: &Node,
    sink: &mut Sink,
    stream: &mut Stream,
    codec: Codec,
) -> Option<CloseFrame> {
    let mut probe = ProbeSlot::default();
    let close = converse(node, sink, stream, codec, &mut probe).await;
    if let Some((probe, _)) = probe.live.take() {
        probe.close().await;
        Metrics::sub(&node.metrics.check_probes_active, 1);
    }
    close
}

/// The check connection's WebRTC probe (at most one per connection).
#[derive(Default)]
struct ProbeSlot {
    /// The probe and its signals; the signals are `None` once the connection closed.
    live: Option<(Probe, Option<mpsc::UnboundedReceiver<PeerSignal>>)>,
}

impl ProbeSlot {
    /// The probe's next signal; never, without a live one.
    async fn next(&mut self) -> Option<PeerSignal> {
        match &mut self.live {
            Some((_, Some(signals))) => signals.recv().await,
            _ => std::future::pending().await,
        }
    }
}

/// Sends one reply, waiting at most until `deadline`; `false` when the client is gone.
async fn reply(sink: &mut Sink, codec: Codec, deadline: Instant, msg: &ServerMsg) -> bool {
    // Only a bug fails to encode (logged); nothing sensible is left to say then.
    let Some(frame) = encode(msg, codec) else {
        return false;
    };
    // A client that does not read holds the reply at most until the check is over.
    matches!(timeout_at(deadline, sink.send(frame)).await, Ok(Ok(())))
}

fn check_error(code: ErrorCode, message: impl Into<String>, command: &str) -> ServerMsg {
    ServerMsg::Error {
        code,
        message: message.into(),
        command: Some(command.to_owned()),
        id: None,
    }
}

async fn converse(
    node: &Node,
    sink: &mut Sink,
    stream: &mut Stream,
    codec: Codec,
    probe: &mut ProbeSlot,
) -> Option<CloseFrame> {
    let deadline = Instant::now() + LIFE;
    // First, what the page needs to build its RTCPeerConnection for the WebRTC probe.
    let config = ServerMsg::MediaConfig {
        ice_servers: node.config.media.ice_servers.clone(),
    };
    if !reply(sink, codec, deadline, &config).await {
        return None;
    }
    let mut answered = 0;
    loop {
        let frame = tokio::select! {
            biased;
            () = node.shutdown.cancelled() => return Some(close_frame(Some(CloseCode::ServerShutdown))),
            () = sleep_until(deadline) => return Some(normal_close("check over: 60 s elapsed")),
            signal = probe.next() => {
                let msg = match signal {
                    Some(PeerSignal::IceCandidate(c)) => ServerMsg::MediaCandidate {
                        candidate: IceCandidate {
                            candidate: c.candidate,
                            sdp_mid: c.sdp_mid,
                            sdp_mline_index: c.sdp_mline_index,
                            username_fragment: c.username_fragment,
                        },
                    },
                    Some(PeerSignal::EndOfCandidates | PeerSignal::Offer(_)) => continue,
                    Some(PeerSignal::Closed) | None => {
                        // The probe failed or closed: nothing more comes from it.
                        if let Some((_, signals)) = &mut probe.live {
                            *signals = None;
                        }
                        ServerMsg::MediaStopped
                    }
                };
                if !reply(sink, codec, deadline, &msg).await {
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
                server_time: node.clock.now(),
            }),
            Ok(ClientMsg::MediaOffer { sdp }) => Some(offer(node, probe, sdp, deadline).await),
            Ok(ClientMsg::MediaCandidate { candidate }) => match &probe.live {
                None => Some(check_error(
                    ErrorCode::NotAllowed,
                    "send `media_offer` first",
                    "media_candidate",
                )),
                Some((live, _)) => {
                    let candidate = signaling::IceCandidate {
                        candidate: candidate.candidate,
                        sdp_mid: candidate.sdp_mid,
                        sdp_mline_index: candidate.sdp_mline_index,
                        username_fragment: candidate.username_fragment,
                    };
                    match live.add_candidate(candidate).await {
                        Ok(()) => None,
                        Err(e) => Some(check_error(
                            ErrorCode::InvalidArgument,
                            format!("the candidate was refused: {e}"),
                            "media_candidate",
                        )),
                    }
                }
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
async fn offer(node: &Node, probe: &mut ProbeSlot, sdp: String, deadline: Instant) -> ServerMsg {
    if probe.live.is_some() {
        return check_error(
            ErrorCode::NotAllowed,
            "one WebRTC probe per connection check",
            "media_offer",
        );
    }
    let made = match timeout_at(deadline, Probe::answer(&node.signaling, sdp)).await {
        Ok(made) => made,
        Err(_) => {
            return check_error(ErrorCode::InvalidArgument, "check over", "media_offer");
        }
    };
    match made {
        Ok((live, sdp, signals)) => {
            Metrics::add(&node.metrics.check_probes_total, 1);
            Metrics::add(&node.metrics.check_probes_active, 1);
            probe.live = Some((live, Some(signals)));
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
    description = "The connection check's download: `bytes` of random (incompressible) data, never cached. Limited per client address.",
    params(("bytes" = Option<u64>, Query, minimum = 1, maximum = 8388608,
        description = "How many bytes, 1 to 8 MiB (8388608); 1 MiB (1048576) when left out.")),
    responses(
        (status = 200, body = Vec<u8>, content_type = "application/octet-stream", description = "the bytes"),
        (status = 400, body = ErrorBody, description = "bytes is 0, over 8 MiB or not a number"),
        (status = 429, body = ErrorBody, description = "too many downloads from this address; retry in a minute"),
    ))]
pub(crate) async fn download(
    State(node): State<Arc<Node>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
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
    if node.download_limiter.check_key(&peer.ip()).is_err() {
        return Err(ApiError::RateLimited);
    }
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        // A view of the node's random bytes: nothing is copied.
        node.check_payload.slice(..n),
    )
        .into_response())
}
