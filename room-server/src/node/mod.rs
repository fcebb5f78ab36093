//! The node: composition root of one room-server process.
//!
//! - `routes`: the node's HTTP endpoints, composed of the parts' routers.
//! - `openapi`: the contract of all of them.
//!
//! Holds the configuration, the clock, the entry gate, the registry of live rooms
//! (one task per lecture) and the metrics `/metrics` shows; [`run`] serves it until shutdown.

mod openapi;
pub mod routes;

use crate::bus::BusEvent;
use crate::clock::Clock;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::conn::serve::{ServeLimits, serve, socket_cap};
use crate::gate::Gate;
use crate::log::redis::Redis;
use crate::log::{LocalLog, RoomEntry};
use crate::media::LectureMedia;
use crate::metrics::MediaNow;
pub use crate::metrics::Metrics;
use crate::records::{self, Record};
use crate::room_task::{self, Log, RoomInput};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use protocol::{CloseCode, Epoch, LectureId};
use room::LectureSpec;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info, info_span, warn};

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

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The entry gate could not start (its database, identity settings, demo records).
    #[error(transparent)]
    Gate(#[from] crate::gate::GateError),
    /// Redis is configured but unreachable at start.
    #[error("cannot reach Redis")]
    Redis(#[source] redis::RedisError),
    /// The system's random source failed (the connection check's bytes).
    #[error("the system's random source failed")]
    Random(#[from] getrandom::Error),
    /// The shared ICE-TCP port (`[media] ice_tcp_port`) cannot be listened on.
    #[error("cannot listen for ICE-TCP on {addr}")]
    IceTcp {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        error: std::io::Error,
    },
}

/// One room-server process.
#[derive(Debug)]
pub struct Node {
    pub(crate) config: Config,
    pub(crate) clock: Arc<dyn Clock>,
    /// The entry gate: records, identity, the bus, its APIs' limits.
    pub gate: Arc<Gate>,
    rooms: DashMap<LectureId, RoomSlot>,
    /// This node among the others: Redis, its number, who is alive, whether it is cut off.
    pub(crate) cluster: Arc<Cluster>,
    records: mpsc::Sender<Record>,
    records_stop: CancellationToken,
    records_done: Mutex<Option<JoinHandle<()>>>,
    /// The connection check: its socket, probes and download.
    pub(crate) check: Arc<crate::check::Check>,
    /// The web client's files.
    pub(crate) web: Arc<crate::web::WebClient>,
    /// Numbers new connections (sessions, relays).
    pub(crate) conn_ids: Arc<crate::conn::ids::ConnIds>,
    /// What every session needs of the node.
    pub(crate) session: Arc<crate::session::SessionContext>,
    next_generation: AtomicU64,
    /// Cancelled when the node starts shutting down: sessions tell their clients to reconnect.
    pub(crate) shutdown: CancellationToken,
    /// Every session, so shutdown can wait for them to close.
    pub(crate) sessions: TaskTracker,
    /// The door every WebSocket passes (origins, connect limits, `max_connections`).
    pub(crate) admission: Arc<crate::conn::admission::Admission>,
    /// The metrics `/metrics` shows.
    pub metrics: Arc<Metrics>,
    /// How this node's broadcasts build their peer connections (from `[media]`).
    pub(crate) signaling: signaling::SignalingConfig,
    /// The address the node's listener is bound to, once [`run`] has it.
    bound: std::sync::OnceLock<SocketAddr>,
    /// The address `/metrics` is served at apart from the public one, once [`run`] has it.
    bound_metrics: std::sync::OnceLock<SocketAddr>,
}

/// The client-address extractor's sub-state: whose forwarding headers are believed.
impl axum::extract::FromRef<Arc<Node>> for crate::client_addr::TrustedProxies {
    fn from_ref(node: &Arc<Node>) -> Self {
        node.config.trusted_proxies.clone()
    }
}

impl Node {
    /// Connects the store (migrating it), puts the configured lectures and, in demo mode, the
    /// demo records in it, and starts the node's background work.
    pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<Arc<Self>, StartError> {
        let gate = Arc::new(Gate::start(config.gate_settings(), Arc::clone(&clock)).await?);
        let redis = match &config.redis_url {
            Some(url) => Some(Redis::connect(url).await.map_err(StartError::Redis)?),
            None => None,
        };
        let metrics = Arc::<Metrics>::default();
        let round_trip = metrics.redis_round_trip.clone();
        let cluster = Arc::new(
            Cluster::join(redis, round_trip)
                .await
                .map_err(StartError::Redis)?,
        );
        let (records_tx, records_rx) = mpsc::channel(64 * 1024);
        let records_stop = CancellationToken::new();
        let writer = tokio::spawn(records::write(
            gate.store.clone(),
            records_rx,
            records_stop.clone(),
        ));
        let bus = gate.bus.subscribe();
        let limits = &config.limits;
        let shutdown = CancellationToken::new();
        let sessions = TaskTracker::new();
        crate::web::warn_if_missing(&config.web_root);
        let mut signaling = config.media.signaling();
        if let Some(port) = config.media.ice_tcp_port {
            let addr = SocketAddr::new(signaling.bind_ip, port);
            let mux = signaling::TcpMux::bind(addr)
                .await
                .map_err(|error| StartError::IceTcp { addr, error })?;
            info!(addr = %mux.local_addr(), "ICE-TCP on one shared port");
            signaling.tcp_mux = Some(mux);
        }
        let admission = Arc::new(crate::conn::admission::Admission::new(
            &config.limits,
            config.allowed_origins.clone(),
            shutdown.clone(),
            sessions.clone(),
            Arc::clone(&metrics),
        ));
        let check = crate::check::Check::new(crate::check::CheckParts {
            admission: Arc::clone(&admission),
            probes: crate::check::Probes::new(
                signaling::probe::Prober::new(config.media.probe_signaling(&signaling)),
                &config.limits,
            ),
            candidate_filter: signaling.candidate_filter.clone(),
            ice_servers: config.media.check_ice_servers(),
            clock: Arc::clone(&clock),
            downloads_per_min: limits.downloads_per_min,
            metrics: Arc::clone(&metrics),
            trusted_proxies: config.trusted_proxies.clone(),
        })?;
        let conn_ids = Arc::new(crate::conn::ids::ConnIds::new(cluster.node_number));
        let node = Arc::new_cyclic(|me: &Weak<Node>| Self {
            session: Arc::new(crate::session::SessionContext {
                limits: config.limits.clone(),
                ticket_key: config.ticket_key.clone(),
                clock: Arc::clone(&clock),
                gate: Arc::clone(&gate),
                metrics: Arc::clone(&metrics),
                shutdown: shutdown.clone(),
                rooms: Arc::new(NodeRooms(me.clone())),
                conn_ids: Arc::clone(&conn_ids),
            }),
            conn_ids,
            gate,
            cluster,
            records: records_tx,
            records_stop,
            records_done: Mutex::new(Some(writer)),
            check: Arc::new(check),
            web: Arc::new(crate::web::WebClient::new(&config.web_root)),
            rooms: DashMap::new(),
            next_generation: AtomicU64::new(1),
            shutdown,
            sessions,
            admission,
            metrics,
            signaling,
            bound: std::sync::OnceLock::new(),
            bound_metrics: std::sync::OnceLock::new(),
            clock,
            config,
        });
        tokio::spawn(route_bus(Arc::downgrade(&node), bus));
        if node.cluster.redis.is_some() {
            node.cluster.beat().await;
            tokio::spawn(crate::cluster::heartbeats(
                Arc::downgrade(&node.cluster),
                node.shutdown.clone(),
            ));
        }
        Ok(node)
    }

    /// The node's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Hands a room's report to the record writer; a full queue loses the record (with a
    /// warning) rather than slowing the room.
    pub(crate) fn record(&self, record: Record) {
        if self.records.try_send(record).is_err() {
            warn!("attendance queue full; a record was dropped");
        }
    }

    /// The id of a stay: the same on every node that applies the room's log (so the records
    /// are written once however many nodes report them), different for another room.
    pub(crate) fn stay_id(&self, epoch: Epoch, conn: room::ConnId) -> String {
        format!("{:x}-{:x}", epoch.0, conn.0)
    }

    /// Where `/metrics` is served apart from the public address, if it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.bound_metrics.get().copied()
    }

    /// Whether the node is shutting down (and so not ready for new connections).
    pub fn is_draining(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// How other nodes reach this one to pull its instructor's media: `[media] relay_url`,
    /// else `ws://` and the bound address unless that is a wildcard. None: unreachable.
    pub(crate) fn relay_url(&self) -> Option<String> {
        if let Some(url) = &self.config.media.relay_url {
            return Some(url.clone());
        }
        let bound = self.bound.get()?;
        (!bound.ip().is_unspecified()).then(|| format!("ws://{bound}"))
    }

    /// Whether a connection id is one of this node's.
    pub(crate) fn is_local(&self, conn: room::ConnId) -> bool {
        Self::node_of(conn) == self.cluster.node_number
    }

    /// The lecture's broadcast if its room is open on this node (never opens one).
    pub(crate) fn open_media(&self, lecture: &LectureId) -> Option<Arc<LectureMedia>> {
        match self.rooms.get(lecture)?.value() {
            RoomSlot::Open { tx, media, .. } if !tx.is_closed() => Some(Arc::clone(media)),
            _ => None,
        }
    }

    /// The inbox of the lecture's room, starting the room if it is not running; or the close
    /// code for a lecture whose room is over.
    pub(crate) fn room_inbox(
        self: &Arc<Self>,
        spec: &LectureSpec,
    ) -> Result<(mpsc::Sender<RoomInput>, Arc<LectureMedia>), CloseCode> {
        match self.rooms.entry(spec.id.clone()) {
            Entry::Occupied(mut slot) => match slot.get() {
                RoomSlot::Over(code) => Err(*code),
                RoomSlot::Open { tx, media, .. } if !tx.is_closed() => {
                    Ok((tx.clone(), Arc::clone(media)))
                }
                RoomSlot::Open { .. } => {
                    let (room, slot_value) = self.start_room(spec);
                    slot.insert(slot_value);
                    Ok(room)
                }
            },
            Entry::Vacant(slot) => {
                let (room, slot_value) = self.start_room(spec);
                slot.insert(slot_value);
                Ok(room)
            }
        }
    }

    fn start_room(
        self: &Arc<Self>,
        spec: &LectureSpec,
    ) -> ((mpsc::Sender<RoomInput>, Arc<LectureMedia>), RoomSlot) {
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.now();
        // A new room starts a new chat stream: its epoch differs from any earlier room's on
        // this node (time) and from rooms started in the same millisecond (generation).
        let epoch = Epoch(now.0.wrapping_mul(1000).wrapping_add(generation % 1000));
        let (tx, rx) = mpsc::channel(self.config.limits.room_inbox);
        let span = info_span!("lecture", id = %spec.id);
        let node = Arc::clone(self);
        self.metrics.rooms_active.inc();
        let media = Arc::new(LectureMedia::new(signaling::Broadcast::with_recording_id(
            self.signaling.clone(),
            spec.id.as_str(),
        )));
        if self.cluster.redis.is_some() {
            // Pulls the instructor's media from the node they publish on, while they do.
            tokio::spawn(
                crate::relay::pull(self.relay_host(), spec.id.clone(), Arc::clone(&media))
                    .instrument(info_span!("relay", lecture = %spec.id)),
            );
        }
        let task_media = Arc::clone(&media);
        tokio::spawn(
            open_room(node, spec.clone(), epoch, rx, generation, task_media).instrument(span),
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

    /// What this node's open broadcasts come to now, for `/metrics`.
    pub(crate) fn media_now(&self) -> MediaNow {
        let mut now = MediaNow::default();
        for slot in &self.rooms {
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
        now.ice_candidates_dropped = self.signaling.candidate_filter.dropped();
        now
    }

    /// The node a connection id belongs to.
    pub(crate) fn node_of(conn: room::ConnId) -> u64 {
        crate::conn::ids::ConnIds::node_of(conn)
    }

    /// Whether this node writes the attendance of `conn`: its own connections, and those of a
    /// node that died.
    pub(crate) fn records_stays_of(&self, conn: room::ConnId) -> bool {
        let owner = Self::node_of(conn);
        owner == self.cluster.node_number || self.node_is_dead(owner)
    }

    /// Whether Redis is unreachable.
    pub fn is_degraded(&self) -> bool {
        self.cluster.is_degraded()
    }

    /// Whether another node has stopped beating.
    pub(crate) fn node_is_dead(&self, node: u64) -> bool {
        self.cluster.node_is_dead(node)
    }

    /// The inbox of a lecture's room if it runs on this node.
    fn open_room(&self, id: &LectureId) -> Option<mpsc::Sender<RoomInput>> {
        match self.rooms.get(id)?.value() {
            RoomSlot::Open { tx, .. } => Some(tx.clone()),
            RoomSlot::Over(_) => None,
        }
    }

    /// Called by a room's task as it stops: an over lecture stays marked over; an idle room
    /// is forgotten and will start afresh.
    pub(crate) fn room_stopped(&self, id: &LectureId, generation: u64, over: Option<CloseCode>) {
        self.metrics.rooms_active.dec();
        if let Entry::Occupied(mut slot) = self.rooms.entry(id.clone())
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
}

/// The node's rooms as its sessions see them (weak: a session outliving the node finds no
/// room rather than keeping the node alive).
#[derive(Debug)]
struct NodeRooms(Weak<Node>);

impl crate::session::Rooms for NodeRooms {
    fn room_inbox(
        &self,
        spec: &LectureSpec,
    ) -> Result<(mpsc::Sender<RoomInput>, Arc<LectureMedia>), CloseCode> {
        match self.0.upgrade() {
            Some(node) => node.room_inbox(spec),
            None => Err(CloseCode::ServerShutdown),
        }
    }
}

/// What the node-to-node relay needs of this node.
impl crate::relay::RelayHost for Node {
    fn is_draining(&self) -> bool {
        Node::is_draining(self)
    }

    fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    fn sessions(&self) -> &TaskTracker {
        &self.sessions
    }

    fn now(&self) -> protocol::UnixMillis {
        self.clock.now()
    }

    fn ticket_key(&self) -> &crate::ticket::TicketKey {
        &self.config.ticket_key
    }

    fn open_media(&self, lecture: &LectureId) -> Option<Arc<LectureMedia>> {
        Node::open_media(self, lecture)
    }

    fn next_conn_id(&self) -> room::ConnId {
        self.conn_ids.next()
    }

    fn is_local(&self, conn: room::ConnId) -> bool {
        Node::is_local(self, conn)
    }
}

impl Node {
    /// This node as the relay sees it (weak: a relay never keeps the node alive).
    fn relay_host(self: &Arc<Self>) -> Weak<dyn crate::relay::RelayHost> {
        let weak: Weak<Node> = Arc::downgrade(self);
        weak
    }
}

/// What a room's task needs of this node.
impl room_task::RoomHost for Node {
    fn now(&self) -> protocol::UnixMillis {
        self.clock.now()
    }

    fn room_idle(&self) -> Duration {
        Duration::from_millis(self.config.limits.room_idle_ms)
    }

    fn degraded(&self) -> tokio::sync::watch::Receiver<bool> {
        self.cluster.degraded.subscribe()
    }

    fn is_degraded(&self) -> bool {
        Node::is_degraded(self)
    }

    fn node_of(&self, conn: room::ConnId) -> u64 {
        Node::node_of(conn)
    }

    fn node_is_dead(&self, node: u64) -> bool {
        Node::node_is_dead(self, node)
    }

    fn is_local(&self, conn: room::ConnId) -> bool {
        Node::is_local(self, conn)
    }

    fn relay_url(&self) -> Option<String> {
        Node::relay_url(self)
    }

    fn room_stopped(&self, lecture: &LectureId, generation: u64, over: Option<CloseCode>) {
        Node::room_stopped(self, lecture, generation, over);
    }

    fn record(&self, record: Record) {
        Node::record(self, record);
    }

    fn stay_id(&self, epoch: Epoch, conn: room::ConnId) -> String {
        Node::stay_id(self, epoch, conn)
    }

    fn records_stays_of(&self, conn: room::ConnId) -> bool {
        Node::records_stays_of(self, conn)
    }

    fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    fn ice_servers_for(&self, conn: room::ConnId) -> Vec<protocol::IceServer> {
        self.config
            .media
            .room_ice_servers(self.clock.now(), &format!("{:x}", conn.0))
    }
}

/// Prepares a room's log (with Redis: the lecture's shared epoch and stream) and runs it.
async fn open_room(
    node: Arc<Node>,
    spec: LectureSpec,
    epoch: Epoch,
    inbox: mpsc::Receiver<RoomInput>,
    generation: u64,
    media: Arc<LectureMedia>,
) {
    let (settings, log) = match &node.cluster.redis {
        None => (
            node.config.room.settings(epoch),
            Log::Local(LocalLog::new(
                Arc::clone(&node.clock),
                node.metrics.log_append.clone(),
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
            let (out, entries) = mpsc::unbounded_channel();
            let stop = CancellationToken::new();
            // This room's entries are numbered under a source no other room on any node uses.
            let source = format!("{}:{generation}", node.cluster.node_number);
            let pending = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let append_time = node.metrics.log_append.clone();
            let submit = redis.open_log(
                &spec.id,
                source,
                out,
                stop.clone(),
                Arc::clone(&pending),
                append_time,
            );
            (
                node.config.room.settings(epoch),
                Log::Redis {
                    submit,
                    pending,
                    entries,
                    stop,
                },
            )
        }
    };
    room_task::run(node, spec, settings, inbox, generation, log, media).await;
}

/// Delivers bus events to the rooms of this node they concern.
async fn route_bus(node: Weak<Node>, mut events: broadcast::Receiver<BusEvent>) {
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warn!(missed = n, "the bus outran this node");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(node) = node.upgrade() else { return };
        let (lecture, input) = match event {
            BusEvent::Revoke { lecture, user, at } => {
                // The gate speaks of accounts; the room knows people by their pseudonym.
                let user = node.config.ticket_key.pseudonym(&lecture, &user);
                (lecture, RoomInput::Revoke { user, at })
            }
            BusEvent::Cancel { lecture, reason } => (lecture, RoomInput::Cancel { reason }),
            BusEvent::Reschedule {
                lecture,
                title,
                starts_at,
                ends_at,
            } => (
                lecture,
                RoomInput::Reschedule {
                    title,
                    starts_at,
                    ends_at,
                },
            ),
        };
        if let Some(redis) = &node.cluster.redis {
            // Into the lecture's log: every node holding the lecture applies it, now or when
            // it next opens the room.
            let entry = match input {
                RoomInput::Revoke { user, at } => RoomEntry::Revoke { user, at },
                RoomInput::Cancel { reason } => RoomEntry::Cancel { reason },
                RoomInput::Reschedule {
                    title,
                    starts_at,
                    ends_at,
                } => RoomEntry::Reschedule {
                    title,
                    starts_at,
                    ends_at,
                },
                _ => continue,
            };
            if let Err(e) = node
                .gate
                .bus
                .hand_over(|| redis.append(&lecture, &entry))
                .await
            {
                tracing::error!(error = %e, %lecture, "could not hand a revocation or cancellation to the other nodes");
            }
        } else if let Some(room) = node.open_room(&lecture) {
            let _ = room.send(input).await;
        }
    }
}

/// Serves `node` on `listener` until `shutdown` resolves, then tells every client to reconnect
/// elsewhere (close code 4000) and waits for the connections to close, at most the configured
/// grace. With `metrics_listen` set, `/metrics` (with the health checks) is served there.
pub async fn run(
    listener: TcpListener,
    node: Arc<Node>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let _ = node.bound.set(addr);
    let admin = match node.config.metrics_listen {
        Some(at) => Some(TcpListener::bind(at).await?),
        None => None,
    };
    info!(%addr, demo = node.config.demo, "listening");
    if node.cluster.redis.is_some() && node.relay_url().is_none() {
        warn!(
            "this node listens on a wildcard address and has no [media] relay_url: learners on \
             other nodes get no video from an instructor on this one"
        );
    }
    let token = node.shutdown.clone();
    tokio::spawn(async move {
        shutdown.await;
        info!("shutting down: no new connections; clients are told to reconnect");
        token.cancel();
    });
    let limits = &node.config.limits;
    let serve_limits = ServeLimits {
        open_sockets: socket_cap(limits.reserved_descriptors),
        header_read: Duration::from_millis(limits.header_read_timeout_ms),
        write_stall: Duration::from_millis(limits.write_stall_ms),
    };
    info!(
        open_sockets = serve_limits.open_sockets,
        "client sockets held open at most"
    );
    let admin = admin.map(|listener| {
        let app = routes::admin(Arc::clone(&node));
        let limits = ServeLimits {
            // Scrapers and probes: a few at a time.
            open_sockets: 64,
            ..serve_limits
        };
        if let Ok(at) = listener.local_addr() {
            info!(addr = %at, "metrics listening");
            let _ = node.bound_metrics.set(at);
        }
        tokio::spawn(serve(listener, app, limits, node.shutdown.clone()))
    });
    let limiter_node = Arc::clone(&node);
    let sweeper = tokio::spawn(async move {
        // Forget idle per-address counters so the limiter's memory stays bounded.
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            limiter_node.admission.forget_idle_limits();
            limiter_node.gate.forget_idle_limits();
            limiter_node.check.forget_idle_limits();
        }
    });
    let app = routes::app(Arc::clone(&node));
    let requests = serve(listener, app, serve_limits, node.shutdown.clone()).await;
    sweeper.abort();
    let grace = Duration::from_millis(node.config.limits.shutdown_grace_ms);
    node.sessions.close();
    let finishing = async {
        requests.wait().await;
        node.sessions.wait().await;
    };
    if tokio::time::timeout(grace, finishing).await.is_err() {
        warn!(
            open = node.sessions.len(),
            "connections still open after the shutdown grace; closing anyway"
        );
    }
    if let Some(admin) = admin {
        admin.abort();
    }
    // What the rooms reported last (the stays that just ended) goes to the store.
    node.records_stop.cancel();
    let writer = node
        .records_done
        .lock()
        .map(|mut w| w.take())
        .unwrap_or_default();
    if let Some(writer) = writer
        && tokio::time::timeout(grace, writer).await.is_err()
    {
        warn!("the record writer did not finish in time");
    }
    info!("stopped");
    Ok(())
}
