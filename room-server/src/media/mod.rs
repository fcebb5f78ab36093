//! The instructor's broadcast on this node: one [`Broadcast`] per lecture room, what sessions
//! need to know to use it (is the lecture live, who publishes), and each session's media loop.
//!
//! SDP and candidates are per node: they go between a session and its room's broadcast and
//! never through the room's log (nor Redis). Only *which* connection publishes travels in the
//! log ([`MediaSource`]), so that the other nodes holding the lecture pull the instructor's
//! tracks over the node-to-node relay ([`relay`]) and their viewers receive them too.

pub(crate) mod relay;

use crate::conn::outbox::Outbox;
use crate::metrics::Metrics;
use protocol::{ClientMsg, ErrorCode, Role, ServerMsg};
use room::ConnId;
use signaling::{Broadcast, PeerSignal, SignalingError, SubscriberId};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// Media messages a session's reader hands its media loop before it must refuse more.
pub(crate) const MEDIA_QUEUE: usize = 64;

/// A connection's media messages on their way to its media loop, at most [`MEDIA_QUEUE`].
/// It holds no memory while empty: most connections send a handful in their life.
#[derive(Debug, Default)]
pub(crate) struct MediaInbox {
    queue: std::sync::Mutex<std::collections::VecDeque<Box<ClientMsg>>>,
    /// Something is queued: the session's media loop (the only waiter) looks.
    ready: crate::conn::signal::Signal,
}

impl MediaInbox {
    /// Queues `msg`, or gives it back when the queue is full.
    pub(crate) fn offer(&self, msg: Box<ClientMsg>) -> Result<(), Box<ClientMsg>> {
        let Ok(mut queue) = self.queue.lock() else {
            return Err(msg);
        };
        if queue.len() >= MEDIA_QUEUE {
            return Err(msg);
        }
        queue.push_back(msg);
        drop(queue);
        self.ready.raise();
        Ok(())
    }

    /// The next message, in order. Waiting costs no lock: the queue is looked at once raised.
    async fn next(&self) -> Box<ClientMsg> {
        loop {
            self.ready.take().await;
            if let Ok(mut queue) = self.queue.lock()
                && let Some(msg) = queue.pop_front()
            {
                if queue.is_empty() {
                    *queue = std::collections::VecDeque::new();
                } else {
                    // The rest is for the next call.
                    self.ready.raise();
                }
                return msg;
            }
        }
    }
}

/// One lecture room's broadcast, shared by the room's task and its sessions on this node.
#[derive(Debug)]
pub(crate) struct LectureMedia {
    /// The SFU of the lecture; closed when the room stops.
    pub(crate) broadcast: Arc<Broadcast>,
    /// True while the lecture's phase is live: the room task sets it after every entry it
    /// applies, so viewers' sessions subscribe and unsubscribe as the phase moves.
    pub(crate) live: watch::Sender<bool>,
    /// The connection publishing on this node now, if any: viewers subscribe only while
    /// there is one, and only its session may renegotiate or stop.
    ///
    /// When another node's instructor is relayed here, it is that instructor's connection
    /// (never one of this node's, so every local session views it).
    pub(crate) publisher: watch::Sender<Option<ConnId>>,
    /// Who publishes the lecture's media on any node, as the lecture's log says: the room
    /// task sets it after every entry it applies; the relay puller follows it.
    pub(crate) source: watch::Sender<Option<MediaSource>>,
    /// Other nodes relaying this node's instructor now.
    pub(crate) relays_out: AtomicU64,
    /// Cancelled when the room stops: the relay's tasks end with it.
    pub(crate) closed: CancellationToken,
}

/// The lecture's publishing connection as every node holding it agrees (from the log), and
/// how its node is reached for the relay.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct MediaSource {
    /// The instructor's connection (its high bits name its node).
    pub(crate) conn: ConnId,
    /// The relay base URL of its node; none when that node cannot be reached.
    pub(crate) relay: Option<String>,
}

impl LectureMedia {
    pub(crate) fn new(broadcast: Broadcast) -> Self {
        Self {
            broadcast: Arc::new(broadcast),
            live: watch::Sender::new(false),
            publisher: watch::Sender::new(None),
            source: watch::Sender::new(None),
            relays_out: AtomicU64::new(0),
            closed: CancellationToken::new(),
        }
    }

    /// Tells the relay who publishes now (only when it changed).
    pub(crate) fn set_source(&self, source: Option<&MediaSource>) {
        self.source.send_if_modified(|s| {
            let changed = s.as_ref() != source;
            if changed {
                *s = source.cloned();
            }
            changed
        });
    }

    /// Tells sessions whether the lecture is live (only when it changed).
    pub(crate) fn set_live(&self, live: bool) {
        self.live
            .send_if_modified(|l| std::mem::replace(l, live) != live);
    }

    /// Forgets `conn` as the publisher, if it still is.
    pub(crate) fn release_publisher(&self, conn: ConnId) {
        self.publisher.send_if_modified(|p| {
            let mine = *p == Some(conn);
            if mine {
                *p = None;
            }
            mine
        });
    }
}

/// Whether a client message is one of the media messages this module handles.
pub(crate) fn is_media(msg: &ClientMsg) -> bool {
    matches!(
        msg,
        ClientMsg::MediaOffer { .. }
            | ClientMsg::MediaAnswer { .. }
            | ClientMsg::MediaCandidate { .. }
            | ClientMsg::MediaStop
    )
}

async fn next_signal(
    signals: &mut Option<mpsc::UnboundedReceiver<PeerSignal>>,
) -> Option<PeerSignal> {
    match signals {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// One connection's media: publishes for an instructor who offers, and receives as a viewer
/// while the lecture is live and someone else publishes (on this node, or relayed from
/// another). Runs until the connection closes, then releases what it holds. Every step that
/// talks to the broadcast is boxed: those steps are rare, and their futures would otherwise
/// size every connection's task, also a learner's who never gets that far.
pub(crate) async fn run_session(
    media: &LectureMedia,
    conn: ConnId,
    role: Role,
    out: &Outbox,
    commands: &MediaInbox,
) {
    // Nothing about media before the welcome: a client draws the room first.
    tokio::select! {
        () = out.welcomed.raised() => {}
        () = out.kick.kicked() => return,
    }
    let broadcast = &media.broadcast;
    // What a client names as its addresses (trickled, or in an SDP) goes through the node's
    // candidate filter: see `[media] allow_private_candidates`.
    let filter = broadcast.candidate_filter();
    let id = SubscriberId(conn.0);
    let mut live = media.live.subscribe();
    let mut publisher = media.publisher.subscribe();
    // The publisher connection's signals while this connection publishes.
    let mut publishing: Option<mpsc::UnboundedReceiver<PeerSignal>> = None;
    // The subscriber's signals while this connection views.
    let mut viewing: Option<mpsc::UnboundedReceiver<PeerSignal>> = None;
    // The node's side of the view failed: no new attempt until the publisher or phase changes.
    let mut gave_up = false;
    let mut last_publisher = None;
    loop {
        let is_live = *live.borrow_and_update();
        let current = *publisher.borrow_and_update();
        if current != last_publisher || !is_live {
            gave_up = false;
        }
        last_publisher = current;
        let want = is_live && current.is_some_and(|p| p != conn);
        if want && viewing.is_none() && !gave_up {
            match Box::pin(broadcast.subscribe(id)).await {
                Ok(start) => {
                    debug!("viewing");
                    out.send(&ServerMsg::MediaOffer { sdp: start.sdp });
                    viewing = Some(start.signals);
                }
                Err(e) => {
                    debug!(error = %e, "could not subscribe");
                    gave_up = true;
                }
            }
        } else if !want && viewing.take().is_some() {
            let _ = Box::pin(broadcast.unsubscribe(id)).await;
            out.send(&ServerMsg::MediaStopped);
        }
        tokio::select! {
            () = out.kick.kicked() => break,
            command = commands.next() => {
                let kind = command.kind();
                match *command {
                    ClientMsg::MediaOffer { .. } | ClientMsg::MediaStop if role != Role::Instructor => {
                        out.error(ErrorCode::NotAllowed, "only the instructor can publish".into(), Some(kind.to_owned()), None);
                    }
                    ClientMsg::MediaOffer { sdp } if publishing.is_some() && *media.publisher.borrow() == Some(conn) => {
                        match Box::pin(broadcast.publisher_offer(filter.strip_sdp(sdp))).await {
                            Ok(sdp) => out.send(&ServerMsg::MediaAnswer { sdp }),
                            Err(e) => out.error(ErrorCode::InvalidArgument, format!("the offer was refused: {e}"), Some(kind.to_owned()), None),
                        }
                    }
                    ClientMsg::MediaOffer { sdp } => match Box::pin(broadcast.publish(filter.strip_sdp(sdp))).await {
                        Ok(start) => {
                            debug!("publishing");
                            publishing = Some(start.signals);
                            media.publisher.send_replace(Some(conn));
                            out.send(&ServerMsg::MediaAnswer { sdp: start.sdp });
                        }
                        Err(e) => out.error(ErrorCode::InvalidArgument, format!("the offer was refused: {e}"), Some(kind.to_owned()), None),
                    },
                    ClientMsg::MediaStop => {
                        if publishing.take().is_some() && *media.publisher.borrow() == Some(conn) {
                            let _ = Box::pin(broadcast.unpublish()).await;
                        }
                        media.release_publisher(conn);
                    }
                    ClientMsg::MediaAnswer { sdp } => {
                        if viewing.is_none() {
                            out.error(ErrorCode::NotFound, "no media offer to answer".into(), Some(kind.to_owned()), None);
                        } else if let Err(e) = Box::pin(broadcast.subscriber_answer(id, filter.strip_sdp(sdp))).await {
                            let code = match e {
                                SignalingError::NoOfferOutstanding(_) => ErrorCode::NotFound,
                                _ => ErrorCode::InvalidArgument,
                            };
                            out.error(code, format!("the answer was refused: {e}"), Some(kind.to_owned()), None);
                        }
                    }
                    ClientMsg::MediaCandidate { candidate } => {
                        // A candidate trailing a stop has nowhere to go, one at a private
                        // address is not the node's to contact: dropped quietly.
                        let result = if !filter.admit(&candidate.candidate) {
                            Ok(())
                        } else if publishing.is_some() {
                            Box::pin(broadcast.add_publisher_candidate(candidate)).await
                        } else if viewing.is_some() {
                            Box::pin(broadcast.add_subscriber_candidate(id, candidate)).await
                        } else {
                            Ok(())
                        };
                        if let Err(e) = result {
                            debug!(error = %e, "a candidate was refused");
                        }
                    }
                    _ => {}
                }
            }
            Ok(()) = live.changed() => {}
            Ok(()) = publisher.changed() => {}
            signal = next_signal(&mut publishing), if publishing.is_some() => match signal {
                Some(PeerSignal::IceCandidate(candidate)) => {
                    out.send(&ServerMsg::MediaCandidate { candidate });
                }
                Some(PeerSignal::EndOfCandidates | PeerSignal::Offer(_)) => {}
                Some(PeerSignal::Closed) | None => {
                    // Failed, replaced by another connection, or unpublished.
                    publishing = None;
                    media.release_publisher(conn);
                }
            },
            signal = next_signal(&mut viewing), if viewing.is_some() => match signal {
                Some(PeerSignal::IceCandidate(candidate)) => {
                    out.send(&ServerMsg::MediaCandidate { candidate });
                }
                Some(PeerSignal::Offer(sdp)) => out.send(&ServerMsg::MediaOffer { sdp }),
                Some(PeerSignal::EndOfCandidates) => {}
                Some(PeerSignal::Closed) | None => {
                    viewing = None;
                    gave_up = true;
                    let _ = Box::pin(broadcast.unsubscribe(id)).await;
                    out.send(&ServerMsg::MediaStopped);
                }
            },
        }
    }
    if viewing.is_some() {
        let _ = Box::pin(broadcast.unsubscribe(id)).await;
    }
    if publishing.is_some() && *media.publisher.borrow() == Some(conn) {
        let _ = Box::pin(broadcast.unpublish()).await;
    }
    media.release_publisher(conn);
}

/// Closes a stopped room's broadcast in the background, keeping its forwarded packets in the
/// node's totals.
pub(crate) fn retire(metrics: &Arc<Metrics>, media: Arc<LectureMedia>) {
    media.set_live(false);
    media.closed.cancel();
    let metrics = Arc::clone(metrics);
    tokio::spawn(async move {
        media.broadcast.close().await;
        let stats = media.broadcast.stats();
        metrics.retire_media(stats.forwarded_packets, stats.dropped_packets);
        metrics
            .recording_disk_stops_total
            .inc_by(stats.recording_disk_stops);
    });
}
