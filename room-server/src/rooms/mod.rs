//! The rooms of this node: a registry with one task per lecture held here.
//!
//! - [`Rooms`]: which lectures have a room on this node, starting one when a session asks for
//!   a lecture that has none, and remembering a lecture that is over so late arrivals are told
//!   at once. Sessions join through it ([`Rooms::inbox`]); it is what a room's task
//!   ([`task::RoomHost`]) and the media relay ([`crate::media::relay::RelayHost`]) see of the node.
//! - `task`: one room's driver loop (inputs in, outputs out); `rules`: the node's rules it
//!   follows (a tick's presses as one entry, the burial of a dead node's connections).
//! - [`route_bus`]: the gate's events (revocations, cancellations, new times) into the rooms.

pub(crate) mod conns;
mod rules;
pub(crate) mod snapshot;
pub(crate) mod task;

use crate::bus::{Bus, BusEvent};
use crate::clock::Clock;
use crate::cluster::Cluster;
use crate::config::{MediaSettings, RoomTuning};
use crate::conn::ids::ConnIds;
use crate::log::{LocalLog, RoomEntry};
use crate::media::LectureMedia;
use crate::metrics::{MediaNow, Metrics};
use crate::records::Record;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use protocol::server::LectureInfo;
use protocol::ticket::TicketKey;
use protocol::{CloseCode, Epoch, LectureId, UnixMillis};
use room::ConnId;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;
use task::{Log, RoomInput};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info_span, warn};

/// A lecture's room on this node: running, or over (so late arrivals are told at once).
#[derive(Debug)]
enum RoomSlot {
    Open {
        tx: mpsc::Sender<RoomInput>,
        generation: u64,
        /// The lecture's broadcast on this node, made with the room and closed when it stops.
        media: Arc<LectureMedia>,
    },
    Over(CloseCode),
}

/// What the registry and its rooms need of the node, handed over once at its start.
#[derive(Debug)]
pub(crate) struct RoomsParts {
    pub(crate) clock: Arc<dyn Clock>,
    /// Redis, this node's number, who is alive, whether this node is cut off.
    pub(crate) cluster: Arc<Cluster>,
    /// The room tunables (`[room]`).
    pub(crate) room: RoomTuning,
    /// Capacity of a room's inbox.
    pub(crate) inbox: usize,
    /// How long a room with nobody of this node's in it is kept.
    pub(crate) idle: Duration,
    /// STUN/TURN servers and the relay address (`[media]`).
    pub(crate) media: MediaSettings,
    /// How this node's broadcasts build their peer connections.
    pub(crate) signaling: signaling::SignalingConfig,
    /// Signs relay tokens; derives the pseudonyms the rooms know people by.
    pub(crate) ticket_key: TicketKey,
    /// Where the rooms' reports go (the record writer's queue).
    pub(crate) records: mpsc::Sender<Record>,
    /// Where a recorded lecture's archive is stored when it ends; none: not recording.
    pub(crate) archive: Option<crate::archive::ArchiveStore>,
    pub(crate) metrics: Arc<Metrics>,
    /// Hands the gate's events to the other nodes (through the lecture's log).
    pub(crate) bus: Bus,
    /// Numbers new connections (relay sockets too).
    pub(crate) conn_ids: Arc<ConnIds>,
    /// Cancelled when the node starts shutting down.
    pub(crate) shutdown: CancellationToken,
    /// Every connection, so shutdown can wait for them (relay sockets too).
    pub(crate) sessions: TaskTracker,
}

/// The rooms of this node.
#[derive(Debug)]
pub(crate) struct Rooms {
    parts: RoomsParts,
    slots: DashMap<LectureId, RoomSlot>,
    next_generation: AtomicU64,
    /// The address the node's listener is bound to, once it is.
    bound: OnceLock<SocketAddr>,
    /// Itself, for the tasks it starts (weak: a task never keeps the registry alive).
    me: Weak<Rooms>,
}

impl Rooms {
    pub(crate) fn new(parts: RoomsParts) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            parts,
            slots: DashMap::new(),
            next_generation: AtomicU64::new(1),
            bound: OnceLock::new(),
            me: me.clone(),
        })
    }

    /// Tells the registry where the node listens (for the relay address other nodes use).
    pub(crate) fn bound_to(&self, addr: SocketAddr) {
        let _ = self.bound.set(addr);
    }

    /// How other nodes reach this one to pull its instructor's media: `[media] relay_url`,
    /// else `ws://` and the bound address unless that is a wildcard. None: unreachable.
    pub(crate) fn relay_url(&self) -> Option<String> {
        if let Some(url) = &self.parts.media.relay_url {
            return Some(url.clone());
        }
        let bound = self.bound.get()?;
        (!bound.ip().is_unspecified()).then(|| format!("ws://{bound}"))
    }

    /// Whether a connection id is one of this node's.
    pub(crate) fn is_local(&self, conn: ConnId) -> bool {
        ConnIds::node_of(conn) == self.parts.cluster.node_number
    }

    /// The lecture's broadcast if its room is open on this node (never opens one).
    pub(crate) fn open_media(&self, lecture: &LectureId) -> Option<Arc<LectureMedia>> {
        match self.slots.get(lecture)?.value() {
            RoomSlot::Open { tx, media, .. } if !tx.is_closed() => Some(Arc::clone(media)),
            _ => None,
        }
    }

    /// The inbox of the lecture's room, starting the room if it is not running; or the close
    /// code for a lecture whose room is over.
    pub(crate) fn inbox(
        &self,
        spec: &LectureInfo,
    ) -> Result<(mpsc::Sender<RoomInput>, Arc<LectureMedia>), CloseCode> {
        let Some(me) = self.me.upgrade() else {
            return Err(CloseCode::ServerShutdown);
        };
        match self.slots.entry(spec.id.clone()) {
            Entry::Occupied(mut slot) => match slot.get() {
                RoomSlot::Over(code) => Err(*code),
                RoomSlot::Open { tx, media, .. } if !tx.is_closed() => {
                    Ok((tx.clone(), Arc::clone(media)))
                }
                RoomSlot::Open { .. } => {
                    let (room, slot_value) = me.start(spec);
                    slot.insert(slot_value);
                    Ok(room)
                }
            },
            Entry::Vacant(slot) => {
                let (room, slot_value) = me.start(spec);
                slot.insert(slot_value);
                Ok(room)
            }
        }
    }

    fn start(
        self: Arc<Self>,
        spec: &LectureInfo,
    ) -> ((mpsc::Sender<RoomInput>, Arc<LectureMedia>), RoomSlot) {
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let now = self.parts.clock.now();
        // A new room starts a new chat stream: its epoch differs from any earlier room's on
        // this node (time) and from rooms started in the same millisecond (generation).
        let epoch = Epoch(now.0.wrapping_mul(1000).wrapping_add(generation % 1000));
        let (tx, rx) = mpsc::channel(self.parts.inbox);
        let span = info_span!("lecture", id = %spec.id);
        self.parts.metrics.rooms_active.inc();
        let media = Arc::new(LectureMedia::new(signaling::Broadcast::with_recording_id(
            self.parts.signaling.clone(),
            spec.id.as_str(),
        )));
        if self.parts.cluster.redis.is_some() {
            // Pulls the instructor's media from the node they publish on, while they do.
            let host: Weak<dyn crate::media::relay::RelayHost> = self.me.clone();
            tokio::spawn(
                crate::media::relay::pull(host, spec.id.clone(), Arc::clone(&media))
                    .instrument(info_span!("relay", lecture = %spec.id)),
            );
        }
        let task_media = Arc::clone(&media);
        tokio::spawn(
            open_room(self, spec.clone(), epoch, rx, generation, task_media).instrument(span),
        );
        (
            (tx.clone(), Arc::clone(&media)),
            RoomSlot::Open {
                tx,
                generation,
                media,
            },
        )
    }

    /// The inbox of a lecture's room if it runs on this node.
    fn running(&self, id: &LectureId) -> Option<mpsc::Sender<RoomInput>> {
        match self.slots.get(id)?.value() {
            RoomSlot::Open { tx, .. } => Some(tx.clone()),
            RoomSlot::Over(_) => None,
        }
    }

    /// What this node's open broadcasts come to now, for `/metrics`.
    pub(crate) fn media_now(&self) -> MediaNow {
        let mut now = MediaNow::default();
        for slot in &self.slots {
            if let RoomSlot::Open { media, .. } = slot.value() {
                let stats = media.broadcast.stats();
                let out = media.relays_out.load(Ordering::Relaxed);
                now.relays_out += out;
                now.subscribers += (stats.subscribers as u64).saturating_sub(out);
                match *media.publisher.borrow() {
                    Some(conn) if self.is_local(conn) => now.publishers += 1,
                    Some(_) => now.relays_in += 1,
                    None => {}
                }
                now.forwarded_packets += stats.forwarded_packets;
                now.dropped_packets += stats.dropped_packets;
            }
        }
        now.ice_candidates_dropped = self.parts.signaling.candidate_filter.dropped();
        now
    }

    /// Hands an entry from the gate to the lecture's room: into the lecture's log with Redis
    /// (every node holding the lecture applies it, now or when it next opens the room), else
    /// to the room if it runs here.
    async fn deliver(&self, lecture: &LectureId, entry: RoomEntry) {
        if let Some(redis) = &self.parts.cluster.redis {
            if let Err(e) = self
                .parts
                .bus
                .hand_over(|| redis.append(lecture, &entry))
                .await
            {
                tracing::error!(error = %e, %lecture, "could not hand a revocation or cancellation to the other nodes");
            }
        } else if let Some(room) = self.running(lecture) {
            let _ = room.send(RoomInput::entry(entry)).await;
        }
    }
}

/// What the node-to-node relay needs of this node.
impl crate::media::relay::RelayHost for Rooms {
    fn is_draining(&self) -> bool {
        self.parts.shutdown.is_cancelled()
    }

    fn shutdown(&self) -> &CancellationToken {
        &self.parts.shutdown
    }

    fn sessions(&self) -> &TaskTracker {
        &self.parts.sessions
    }

    fn now(&self) -> UnixMillis {
        self.parts.clock.now()
    }

    fn ticket_key(&self) -> &TicketKey {
        &self.parts.ticket_key
    }

    fn open_media(&self, lecture: &LectureId) -> Option<Arc<LectureMedia>> {
        Rooms::open_media(self, lecture)
    }

    fn next_conn_id(&self) -> ConnId {
        self.parts.conn_ids.next()
    }

    fn is_local(&self, conn: ConnId) -> bool {
        Rooms::is_local(self, conn)
    }
}

/// What a room's task needs of this node.
impl task::RoomHost for Rooms {
    fn now(&self) -> UnixMillis {
        self.parts.clock.now()
    }

    fn room_idle(&self) -> Duration {
        self.parts.idle
    }

    fn degraded(&self) -> tokio::sync::watch::Receiver<bool> {
        self.parts.cluster.degraded.subscribe()
    }

    fn is_degraded(&self) -> bool {
        self.parts.cluster.is_degraded()
    }

    fn node_of(&self, conn: ConnId) -> u64 {
        ConnIds::node_of(conn)
    }

    fn node_is_dead(&self, node: u64) -> bool {
        self.parts.cluster.node_is_dead(node)
    }

    fn is_local(&self, conn: ConnId) -> bool {
        Rooms::is_local(self, conn)
    }

    fn relay_url(&self) -> Option<String> {
        Rooms::relay_url(self)
    }

    /// An over lecture stays marked over; an idle room is forgotten and will start afresh.
    fn room_stopped(&self, id: &LectureId, generation: u64, over: Option<CloseCode>) {
        self.parts.metrics.rooms_active.dec();
        if let Entry::Occupied(mut slot) = self.slots.entry(id.clone())
            && matches!(slot.get(), RoomSlot::Open { generation: g, .. } if *g == generation)
        {
            match over {
                Some(code) => {
                    slot.insert(RoomSlot::Over(code));
                }
                None => {
                    slot.remove();
                }
            }
        }
    }

    /// Never waits: a full queue loses attendance (with a warning), not a start, end or ban.
    fn record(&self, record: Record) {
        crate::records::hand_over(&self.parts.records, record);
    }

    /// The same on every node that applies the room's log (so the records are written once
    /// however many nodes report them), different for another room.
    fn stay_id(&self, epoch: Epoch, conn: ConnId) -> String {
        format!("{:x}-{:x}", epoch.0, conn.0)
    }

    /// This node's own connections, and those of a node that died.
    fn records_stays_of(&self, conn: ConnId) -> bool {
        let owner = ConnIds::node_of(conn);
        owner == self.parts.cluster.node_number || self.parts.cluster.node_is_dead(owner)
    }

    fn metrics(&self) -> &Arc<Metrics> {
        &self.parts.metrics
    }

    fn archive_store(&self) -> Option<crate::archive::ArchiveStore> {
        self.parts.archive.clone()
    }

    fn ice_servers_for(&self, conn: ConnId) -> Vec<protocol::IceServer> {
        self.parts
            .media
            .room_ice_servers(self.parts.clock.now(), &format!("{:x}", conn.0))
    }
}

/// Prepares a room's log (with Redis: the lecture's shared epoch and stream) and runs it.
async fn open_room(
    rooms: Arc<Rooms>,
    spec: LectureInfo,
    epoch: Epoch,
    inbox: mpsc::Receiver<RoomInput>,
    generation: u64,
    media: Arc<LectureMedia>,
) {
    let parts = &rooms.parts;
    let (settings, log) = match &parts.cluster.redis {
        None => (
            parts.room.settings(epoch),
            Log::Local(LocalLog::new(
                Arc::clone(&parts.clock),
                parts.metrics.log_append.clone(),
            )),
        ),
        Some(redis) => {
            let mut backoff = crate::log::redis::REDIS_BACKOFF;
            let epoch = loop {
                match redis.epoch(&spec.id, epoch).await {
                    Ok(epoch) => break epoch,
                    Err(e) => {
                        warn!(error = %e, "cannot reach Redis for the lecture's epoch; retrying");
                        backoff.wait().await;
                    }
                }
            };
            // The reader waits for the room rather than reading far ahead of it: what the room
            // has not taken yet stays in Redis.
            let (out, entries) = mpsc::channel(crate::log::redis::READ_AHEAD);
            let stop = CancellationToken::new();
            // This room's entries are numbered under a source no other room on any node uses.
            let source = format!("{}:{generation}", parts.cluster.node_number);
            let pending =
                crate::log::redis::Waiting::new(parts.metrics.log_appends_waiting.clone());
            let append_time = parts.metrics.log_append.clone();
            let submit = redis.open_log(
                &spec.id,
                source,
                out,
                stop.clone(),
                pending.clone(),
                append_time,
            );
            (
                parts.room.settings(epoch),
                Log::Redis {
                    submit,
                    pending,
                    waiting_max: parts.room.appends_waiting_max,
                    entries,
                    stop,
                    snapshots: snapshot::Snapshots::new(
                        redis.clone(),
                        spec.id.clone(),
                        parts.room.snapshot_every_entries,
                        Duration::from_secs(parts.room.snapshot_every_secs),
                    ),
                },
            )
        }
    };
    task::run(rooms, spec, settings, inbox, generation, log, media).await;
}

/// Delivers the gate's events to the rooms they concern, on this node or (with Redis) on
/// every node holding the lecture.
pub(crate) async fn route_bus(rooms: Weak<Rooms>, mut events: broadcast::Receiver<BusEvent>) {
    loop {
        let BusEvent { lecture, entry } = match events.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warn!(missed = n, "the bus outran this node");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(rooms) = rooms.upgrade() else { return };
        rooms.deliver(&lecture, entry).await;
    }
}
