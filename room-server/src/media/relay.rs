//! The node-to-node media relay (a cascading SFU): the instructor's tracks enter the node they
//! publish on (the **origin**); every other node holding the lecture **pulls** them from there
//! and forwards them to its own viewers, so one lecture spans nodes.
//!
//! - Which connection publishes, and how its node is reached, travel in the lecture's log
//!   (`MediaPublished` / `MediaUnpublished`, see [`MediaSource`]), so every node agrees.
//! - A node pulls while it holds the lecture, the lecture is live, the source is another node's
//!   connection, and no instructor publishes on this node itself (a local instructor wins here).
//!   It opens a WebSocket to `<relay_url>/ws/relay/{lecture}` with a short-lived relay token
//!   signed with the nodes' shared ticket secret (`Authorization: Bearer r1.…`).
//! - The origin subscribes that socket to the lecture's broadcast like a viewer. Its offers, the
//!   puller's answers and both sides' ICE candidates travel on the socket as JSON text frames
//!   ([`RelayMsg`]). The puller publishes what it receives into its own broadcast
//!   ([`signaling::Broadcast::publish_relayed`]: forwarded, never recorded), and its viewers
//!   subscribe to that as to a local instructor. A screen share starting or stopping reaches
//!   them through the origin's renegotiation of the relay.
//! - Keyframes: a viewer joining on the pulling node makes that node ask its relay track for
//!   one; the request reaches the origin's writer for the relay, which hands it to the origin's
//!   throttled requester. The instructor still sees at most one request per second per track,
//!   however many nodes and viewers ask.
//! - Media flows node to node over WebRTC (DTLS-SRTP) on the ports and addresses `[media]`
//!   configures, one relay per lecture per pulling node whatever its number of viewers.
//! - The relay ends when the source changes or stops, the lecture leaves live, or the room
//!   stops on either node. A failed attempt is retried while the relay is still wanted, after
//!   0.5 s, doubling to 5 s.

use crate::backoff::Backoff;
use crate::media::{LectureMedia, MediaSource};
use crate::refusal::refuse;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use protocol::{IceCandidate, LectureId};
use serde::{Deserialize, Serialize};
use signaling::{PeerSignal, SignalingError, SubscriberId};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite;
use tracing::{debug, info, warn};

/// Largest relay message: an SDP of a few tracks is a few KiB.
const MAX_MESSAGE: usize = 256 * 1024;
/// How long a relay token is good for: it only opens the socket. Within
/// [`protocol::ticket::RELAY_TOKEN_MAX_SECS`], which the origin enforces.
const TOKEN_SECS: u64 = 60;
/// Connecting to the origin, upgrade included.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Retry pauses after a failed relay.
const FIRST_RETRY: Duration = Duration::from_millis(500);
const LAST_RETRY: Duration = Duration::from_secs(5);

/// A message on the relay socket, both ways (JSON text frames, `{"type": "offer", …}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum RelayMsg {
    /// The origin's offer (the first, and each renegotiation).
    Offer { sdp: String },
    /// The puller's answer to the latest offer.
    Answer { sdp: String },
    /// A trickled ICE candidate, either way.
    Candidate { candidate: IceCandidate },
}

#[utoipa::path(get, path = "/ws/relay/{lecture}", tag = "node",
    description = "The node-to-node media relay, for other nodes only: `Authorization: Bearer <relay token>` (signed with the nodes' ticket secret). The node offers the lecture's media as to a viewer; JSON text frames `{\"type\": \"offer\"|\"answer\"|\"candidate\", …}` carry the negotiation.",
    params(("lecture" = String, Path, description = "lecture id")),
    responses(
        (status = 101, description = "relaying"),
        (status = 400, body = crate::gate::http::ErrorBody, description = "not_websocket"),
        (status = 401, body = crate::gate::http::ErrorBody, description = "invalid_relay_token"),
        (status = 404, body = crate::gate::http::ErrorBody, description = "not_here: the lecture's room is not open on this node"),
        (status = 503, body = crate::gate::http::ErrorBody, description = "draining"),
    ))]
pub(crate) async fn socket(
    State(node): State<Arc<dyn RelayHost>>,
    Path(lecture): Path<String>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if node.is_draining() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "the node is shutting down",
        );
    }
    let lecture = LectureId::from(lecture);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let verified = token.map(|t| node.ticket_key().verify_relay(t, &lecture, node.now()));
    if !matches!(verified, Some(Ok(()))) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_relay_token",
            "a valid relay token for this lecture is required",
        );
    }
    let Some(media) = node.open_media(&lecture) else {
        return refuse(
            StatusCode::NOT_FOUND,
            "not_here",
            "the lecture's room is not open on this node",
        );
    };
    let Ok(upgrade) = upgrade else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "not_websocket",
            "a WebSocket upgrade is required",
        );
    };
    let tracker = node.sessions().clone();
    upgrade
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |ws| tracker.track_future(serve(node, media, ws)))
        .into_response()
}

/// What the relay needs of the node: the time and the shared key (relay tokens), the lecture's
/// broadcast if its room is open here, whose connections are local, and the node's shutdown.
pub(crate) trait RelayHost: Send + Sync + std::fmt::Debug {
    /// Whether the node is shutting down.
    fn is_draining(&self) -> bool;
    /// Cancelled when the node starts shutting down.
    fn shutdown(&self) -> &tokio_util::sync::CancellationToken;
    /// Every socket's task, so shutdown can wait for them.
    fn sessions(&self) -> &tokio_util::task::TaskTracker;
    /// The time now.
    fn now(&self) -> protocol::UnixMillis;
    /// Signs and checks relay tokens (the key every node shares).
    fn ticket_key(&self) -> &protocol::ticket::TicketKey;
    /// The lecture's broadcast if its room is open on this node (never opens one).
    fn open_media(&self, lecture: &LectureId) -> Option<Arc<LectureMedia>>;
    /// A number for a new connection.
    fn next_conn_id(&self) -> room::ConnId;
    /// Whether a connection is one of this node's.
    fn is_local(&self, conn: room::ConnId) -> bool;
}

/// The relay's route (its own state: the node as a relay host).
pub(crate) fn router() -> axum::Router<Arc<dyn RelayHost>> {
    axum::Router::new().route("/ws/relay/{lecture}", axum::routing::get(socket))
}

/// The origin's side: the socket's node is one more viewer of the broadcast.
async fn serve(node: Arc<dyn RelayHost>, media: Arc<LectureMedia>, mut ws: WebSocket) {
    let id = SubscriberId(node.next_conn_id().0);
    let mut start = match media.broadcast.subscribe(id).await {
        Ok(start) => start,
        Err(e) => {
            debug!(error = %e, "cannot relay");
            return;
        }
    };
    media.relays_out.fetch_add(1, Ordering::Relaxed);
    info!("relaying to another node");
    let mut outgoing = Some(RelayMsg::Offer { sdp: start.sdp });
    loop {
        if let Some(msg) = outgoing.take()
            && ws.send(Message::Text(encode(&msg).into())).await.is_err()
        {
            break;
        }
        tokio::select! {
            () = media.closed.cancelled() => break,
            () = node.shutdown().cancelled() => break,
            frame = ws.recv() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    _ => break,
                };
                let result = match serde_json::from_str::<RelayMsg>(text.as_str()) {
                    Ok(RelayMsg::Answer { sdp }) => media.broadcast.subscriber_answer(id, sdp).await,
                    Ok(RelayMsg::Candidate { candidate }) => {
                        media.broadcast.add_subscriber_candidate(id, candidate).await
                    }
                    Ok(RelayMsg::Offer { .. }) | Err(_) => {
                        warn!("the pulling node sent something other than an answer or a candidate");
                        break;
                    }
                };
                if let Err(e) = result {
                    debug!(error = %e, "a relay message was refused");
                }
            }
            signal = start.signals.recv() => match signal {
                Some(PeerSignal::IceCandidate(candidate)) => {
                    outgoing = Some(RelayMsg::Candidate { candidate });
                }
                Some(PeerSignal::Offer(sdp)) => outgoing = Some(RelayMsg::Offer { sdp }),
                Some(PeerSignal::EndOfCandidates) => {}
                Some(PeerSignal::Closed) | None => break,
            },
        }
    }
    let _ = media.broadcast.unsubscribe(id).await;
    media.relays_out.fetch_sub(1, Ordering::Relaxed);
    let _ = ws.send(Message::Close(None)).await;
    info!("relay to another node ended");
}

fn encode(msg: &RelayMsg) -> String {
    // A tagged enum of strings always serialises.
    serde_json::to_string(msg).expect("relay messages serialise")
}

/// What the puller waits on: the room's state as it changes.
struct Watches {
    live: watch::Receiver<bool>,
    source: watch::Receiver<Option<MediaSource>>,
    publisher: watch::Receiver<Option<room::ConnId>>,
}

impl Watches {
    /// The source to pull from now, if any.
    fn wanted(&mut self, node: &dyn RelayHost) -> Option<MediaSource> {
        let live = *self.live.borrow_and_update();
        let source = self.source.borrow_and_update().clone();
        let local = self
            .publisher
            .borrow_and_update()
            .is_some_and(|c| node.is_local(c));
        source.filter(|s| live && !local && !node.is_local(s.conn))
    }

    /// Until something changes (`false`: the room is gone).
    async fn changed(&mut self) -> bool {
        tokio::select! {
            r = self.live.changed() => r.is_ok(),
            r = self.source.changed() => r.is_ok(),
            r = self.publisher.changed() => r.is_ok(),
        }
    }
}

/// The pulling side, one task per room on a node with Redis: relays the lecture's instructor
/// from their node whenever [`Watches::wanted`] says so, until the room stops.
pub(crate) async fn pull(node: Weak<dyn RelayHost>, lecture: LectureId, media: Arc<LectureMedia>) {
    let mut watches = Watches {
        live: media.live.subscribe(),
        source: media.source.subscribe(),
        publisher: media.publisher.subscribe(),
    };
    let mut retry = Backoff::new(FIRST_RETRY, LAST_RETRY);
    // The source last warned about for having no relay URL (once each).
    let mut warned = None;
    loop {
        let wanted = match node.upgrade() {
            Some(node) => watches.wanted(&*node),
            None => return,
        };
        // The source to pull from and its node's relay address, if there is one to pull.
        let target = wanted.and_then(|source| {
            let url = source.relay.clone();
            if url.is_none() && warned.as_ref() != Some(&source) {
                warn!(
                    "the instructor publishes on a node with no reachable relay address \
                     (set [media] relay_url there): no video for this node's learners"
                );
                warned = Some(source.clone());
            }
            url.map(|url| (source, url))
        });
        let Some((source, url)) = target else {
            retry.reset();
            tokio::select! {
                () = media.closed.cancelled() => return,
                alive = watches.changed() => if !alive { return },
            }
            continue;
        };
        let outcome = tokio::select! {
            () = media.closed.cancelled() => Ok(Ended::Closed),
            outcome = relay(&node, &lecture, &media, &source, &url, &mut watches) => outcome,
        };
        // Whatever happened, the relayed publisher goes (an instructor who published here
        // meanwhile stays), and this node's viewers are told.
        if media.broadcast.unpublish_relayed().await {
            debug!("relay publisher released");
        }
        media.release_publisher(source.conn);
        match outcome {
            Ok(Ended::Closed) => return,
            Ok(Ended::NotWanted) => retry.reset(),
            Err(e) => {
                warn!(error = %e, "relaying the instructor failed; retrying");
                tokio::select! {
                    () = media.closed.cancelled() => return,
                    () = retry.wait() => {}
                }
            }
        }
    }
}

/// Why a relay ended without an error.
enum Ended {
    /// The room stopped.
    Closed,
    /// The source changed or stopped, the lecture left live, or an instructor published here.
    NotWanted,
}

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("connecting: {0}")]
    Connect(#[from] tungstenite::Error),
    #[error("connecting: no answer within {CONNECT_TIMEOUT:?}")]
    ConnectTimeout,
    #[error("the origin node closed the relay")]
    Closed,
    #[error("the origin node sent an unreadable message")]
    Unreadable,
    #[error("webrtc: {0}")]
    Signaling(#[from] SignalingError),
    #[error("the relay's peer connection closed")]
    PeerClosed,
}

/// One relay: connects to the origin and keeps the broadcast fed until it is no longer wanted
/// or something fails.
async fn relay(
    node: &Weak<dyn RelayHost>,
    lecture: &LectureId,
    media: &LectureMedia,
    source: &MediaSource,
    url: &str,
    watches: &mut Watches,
) -> Result<Ended, RelayError> {
    let (address, token) = {
        let Some(node) = node.upgrade() else {
            return Ok(Ended::Closed);
        };
        let address = format!(
            "{url}/ws/relay/{}",
            percent_encoding::utf8_percent_encode(
                lecture.as_str(),
                percent_encoding::NON_ALPHANUMERIC
            )
        );
        let exp = node.now().0 / 1000 + TOKEN_SECS;
        (address, node.ticket_key().mint_relay(lecture, exp))
    };
    let mut request =
        tungstenite::client::IntoClientRequest::into_client_request(address.as_str())?;
    let bearer = format!("Bearer {token}")
        .parse()
        .map_err(|_| RelayError::Unreadable)?;
    request.headers_mut().insert(header::AUTHORIZATION, bearer);
    let config = tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let connect = tokio_tungstenite::connect_async_with_config(request, Some(config), false);
    let (mut ws, _) = tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| RelayError::ConnectTimeout)??;
    debug!("relay connected");
    let broadcast = &media.broadcast;
    // The relayed publisher's signals, once the first offer is answered.
    let mut signals: Option<mpsc::UnboundedReceiver<PeerSignal>> = None;
    let mut outgoing: Option<RelayMsg> = None;
    let ended = loop {
        if let Some(msg) = outgoing.take() {
            ws.send(tungstenite::Message::text(encode(&msg))).await?;
        }
        tokio::select! {
            alive = watches.changed() => {
                let still = node.upgrade().and_then(|n| watches.wanted(&*n));
                if !alive {
                    break Ok(Ended::Closed);
                }
                if still.as_ref() != Some(source) {
                    break Ok(Ended::NotWanted);
                }
            }
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(tungstenite::Message::Text(text))) => text,
                    Some(Ok(tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_))) => continue,
                    Some(Err(e)) => break Err(e.into()),
                    _ => break Err(RelayError::Closed),
                };
                match serde_json::from_str::<RelayMsg>(text.as_str()) {
                    Ok(RelayMsg::Offer { sdp }) if signals.is_none() => {
                        let start = broadcast.publish_relayed(sdp).await?;
                        signals = Some(start.signals);
                        // This node's viewers now subscribe to the relayed instructor.
                        media.publisher.send_replace(Some(source.conn));
                        outgoing = Some(RelayMsg::Answer { sdp: start.sdp });
                        info!("relaying the instructor from another node");
                    }
                    Ok(RelayMsg::Offer { sdp }) => {
                        let sdp = broadcast.publisher_offer(sdp).await?;
                        outgoing = Some(RelayMsg::Answer { sdp });
                    }
                    Ok(RelayMsg::Candidate { candidate }) => {
                        if let Err(e) = broadcast.add_publisher_candidate(candidate).await {
                            debug!(error = %e, "a relay candidate was refused");
                        }
                    }
                    Ok(RelayMsg::Answer { .. }) | Err(_) => break Err(RelayError::Unreadable),
                }
            }
            signal = next(&mut signals), if signals.is_some() => match signal {
                Some(PeerSignal::IceCandidate(candidate)) => {
                    outgoing = Some(RelayMsg::Candidate { candidate });
                }
                Some(PeerSignal::EndOfCandidates | PeerSignal::Offer(_)) => {}
                Some(PeerSignal::Closed) | None => {
                    // Replaced by an instructor publishing here is no failure.
                    let replaced = media.publisher.borrow().is_some_and(|c| c != source.conn);
                    break if replaced { Ok(Ended::NotWanted) } else { Err(RelayError::PeerClosed) };
                }
            },
        }
    };
    let _ = ws.close(None).await;
    ended
}

async fn next(signals: &mut Option<mpsc::UnboundedReceiver<PeerSignal>>) -> Option<PeerSignal> {
    match signals {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
