//! The node: composition root of one room-server process.
//!
//! - `routes`: the node's HTTP endpoints, composed of the parts' routers.
//! - `openapi`: the contract of all of them.
//!
//! Holds the configuration, the clock, the entry gate, the registry of live rooms
//! (one task per lecture) and the counters `/metrics` shows; [`run`] serves it until shutdown.

mod openapi;
pub mod routes;

use crate::clock::Clock;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::conn::serve::{ServeLimits, serve, socket_cap};
use crate::gate::Gate;
use crate::log::redis::Redis;
pub use crate::metrics::Metrics;
use crate::records;
use crate::rooms::{Rooms, RoomsParts, route_bus};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The entry gate could not start (its database, identity settings, demo records).
    #[error(transparent)]
    Gate(#[from] crate::gate::GateError),
    /// The `[mail]` SMTP server cannot be used (a TLS mode without a usable host name).
    #[error("[mail]: {0}")]
    Mail(#[from] crate::mail::SmtpError),
    /// The `[archive]` store cannot be used.
    #[error("archive store: {0}")]
    Archive(#[from] crate::archive::ArchiveError),
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
    /// The entry gate: records, identity, the bus, its APIs' limits.
    pub gate: Arc<Gate>,
    /// The rooms of this node, one task per lecture.
    pub(crate) rooms: Arc<Rooms>,
    /// This node among the others: Redis, its number, who is alive, whether it is cut off.
    pub(crate) cluster: Arc<Cluster>,
    records_stop: CancellationToken,
    records_done: Mutex<Option<JoinHandle<()>>>,
    /// The connection check: its socket, probes and download.
    pub(crate) check: Arc<crate::check::Check>,
    /// The archive room's API and media.
    pub(crate) archive: Arc<crate::archive::ArchiveRoom>,
    /// The web client's files.
    pub(crate) web: Arc<crate::web::WebClient>,
    /// What every session needs of the node.
    pub(crate) session: Arc<crate::session::SessionContext>,
    /// Cancelled when the node starts draining: `/readyz` answers 503 from then on.
    draining: CancellationToken,
    /// Cancelled once the drain has closed the node's people: no new connections, sessions
    /// tell their clients to reconnect, the process stops.
    pub(crate) shutdown: CancellationToken,
    /// Every session, so shutdown can wait for them to close.
    pub(crate) sessions: TaskTracker,
    /// The door every WebSocket passes (origins, connect limits, `max_connections`).
    pub(crate) admission: Arc<crate::conn::admission::Admission>,
    /// The metrics `/metrics` shows.
    pub metrics: Arc<Metrics>,
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
        signaling.recording_min_free_bytes = config.archive.min_free_mb.saturating_mul(1 << 20);
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
        let archive = archive_store(&config, &gate.store, &metrics, &clock)?;
        // A node that does not record still serves the archives of a store it can read.
        let served = match &archive {
            Some(store) => Some(store.clone()),
            None if config.archive.store == crate::config::StoreKind::S3
                || config.archive.dir.is_some() =>
            {
                Some(crate::archive::ArchiveStore::from_settings(
                    &config.archive,
                    None,
                )?)
            }
            // The demo has an archived lecture that plays: in a folder of its own unless the
            // configuration names a store.
            None if config.demo => Some(crate::archive::ArchiveStore::local(
                &std::env::temp_dir().join("room-server-demo-archive"),
            )?),
            None => None,
        };
        if config.demo
            && let Some(store) = &served
            && let Ok(Some(lecture)) = gate.store.lecture(crate::gate::demo::DEMO_ARCHIVE).await
        {
            let id = protocol::LectureId::from(lecture.id.as_str());
            if let Err(e) = crate::archive::demo::write(store, &id, lecture.starts_at).await {
                warn!(error = %e, "the demo archive could not be written");
            }
        }
        let archive_room = Arc::new(crate::archive::ArchiveRoom {
            gate: Arc::clone(&gate),
            store: served,
            key: crate::archive::http::MediaKey::new(&config.ticket_key),
            url_ttl_secs: config.archive.media_url_ttl_secs,
            retention_days: config.archive.retention_days,
        });
        let rooms = Rooms::new(RoomsParts {
            clock: Arc::clone(&clock),
            cluster: Arc::clone(&cluster),
            room: config.room.clone(),
            inbox: limits.room_inbox,
            idle: Duration::from_millis(limits.room_idle_ms),
            media: config.media.clone(),
            signaling: signaling.clone(),
            ticket_key: config.ticket_key.clone(),
            records: records_tx,
            archive: archive.clone(),
            metrics: Arc::clone(&metrics),
            bus: gate.bus.clone(),
            conn_ids: Arc::clone(&conn_ids),
            shutdown: shutdown.clone(),
            sessions: sessions.clone(),
        });
        tokio::spawn(route_bus(Arc::downgrade(&rooms), bus));
        let node = Arc::new(Self {
            session: Arc::new(crate::session::SessionContext {
                limits: config.limits.clone(),
                ticket_key: config.ticket_key.clone(),
                clock: Arc::clone(&clock),
                gate: Arc::clone(&gate),
                metrics: Arc::clone(&metrics),
                shutdown: shutdown.clone(),
                rooms: Arc::clone(&rooms),
                conn_ids: Arc::clone(&conn_ids),
                live: {
                    let live = Arc::default();
                    crate::session::LiveSessions::kick_on(&live, shutdown.clone());
                    live
                },
            }),
            gate,
            cluster,
            records_stop,
            records_done: Mutex::new(Some(writer)),
            check: Arc::new(check),
            archive: archive_room,
            web: Arc::new(crate::web::WebClient::new(&config.web_root)),
            rooms,
            draining: CancellationToken::new(),
            shutdown,
            sessions,
            admission,
            metrics,
            bound_metrics: std::sync::OnceLock::new(),
            config,
        });
        if let Some(settings) = &node.config.mail {
            crate::mail::start(
                crate::mail::MailParts {
                    gate: Arc::clone(&node.gate),
                    clock: Arc::clone(&clock),
                    settings: settings.clone(),
                    counters: node.metrics.mail.clone(),
                },
                node.shutdown.clone(),
            )?;
        }
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

    /// Where `/metrics` is served apart from the public address, if it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.bound_metrics.get().copied()
    }

    /// Whether the node is draining or shutting down (and so not ready for new connections).
    pub fn is_draining(&self) -> bool {
        self.draining.is_cancelled() || self.shutdown.is_cancelled()
    }

    /// Starts draining, as SIGTERM does (see [`run`]); a second call changes nothing.
    pub fn drain(&self) {
        self.draining.cancel();
    }

    /// Skips what is left of a drain: every client is told to reconnect now, and the node
    /// stops within its grace (a second SIGTERM or Ctrl-C).
    pub fn stop_now(&self) {
        self.draining.cancel();
        self.shutdown.cancel();
    }

    /// The drain: `/readyz` answers 503 at once; the node goes on serving for `drain_window_ms`
    /// (when anyone is connected) so the load balancer stops sending it people, closes them
    /// with `4000` spread over `drain_spread_ms`, then shuts down.
    async fn drain_then_shut_down(&self) {
        self.draining.cancel();
        let limits = &self.config.limits;
        let connected = self.session.live.count();
        info!(
            connected,
            window_ms = limits.drain_window_ms,
            spread_ms = limits.drain_spread_ms,
            "draining: /readyz answers 503; connections are closed with 4000 after the window"
        );
        let drain = async {
            if connected > 0 {
                tokio::time::sleep(Duration::from_millis(limits.drain_window_ms)).await;
            }
            self.session
                .live
                .close_spread(Duration::from_millis(limits.drain_spread_ms))
                .await;
        };
        // `stop_now` cuts it short.
        tokio::select! {
            () = drain => {}
            () = self.shutdown.cancelled() => {}
        }
        info!("shutting down: no new connections; the last clients are told to reconnect");
        self.shutdown.cancel();
    }

    /// How other nodes reach this one to pull its instructor's media.
    pub(crate) fn relay_url(&self) -> Option<String> {
        self.rooms.relay_url()
    }

    /// Whether Redis is unreachable.
    pub fn is_degraded(&self) -> bool {
        self.cluster.is_degraded()
    }
}

/// The listen backlog asked for: connections the kernel completes while the node has not yet
/// accepted them. A join storm (thousands entering within seconds) overflows Linux's usual
/// 1,024 and the client's retried SYN comes a whole second later; the kernel caps this at
/// `net.core.somaxconn` (4,096 on current kernels).
const LISTEN_BACKLOG: u32 = 8192;

/// A listening socket for the node's HTTP and WebSocket port, with a deep backlog.
pub fn listen(at: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if at.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(at)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `node` on `listener` until `shutdown` resolves (or an operator drains it), then
/// drains (see [`Node::drain`]: not ready, a window, every client told to reconnect elsewhere
/// with close code 4000 over an interval) and waits for the connections to close, at most the
/// configured grace. With `metrics_listen` set, `/metrics` (with the health checks) is served there.
pub async fn run(
    listener: TcpListener,
    node: Arc<Node>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    node.rooms.bound_to(addr);
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
    let draining = Arc::clone(&node);
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown => {}
            () = draining.draining.cancelled() => {}
        }
        draining.drain_then_shut_down().await;
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

/// The archive store when this node records (`[media] recording_dir`), with its expiry sweep
/// running.
fn archive_store(
    config: &Config,
    records: &crate::gate::store::Store,
    metrics: &Arc<Metrics>,
    clock: &Arc<dyn Clock>,
) -> Result<Option<crate::archive::ArchiveStore>, StartError> {
    let Some(recording_dir) = &config.media.recording_dir else {
        return Ok(None);
    };
    let settings = &config.archive;
    let store = crate::archive::ArchiveStore::from_settings(settings, Some(recording_dir))?;
    let expired = metrics.archives_expired_total.clone();
    let clock = Arc::clone(clock);
    tokio::spawn(crate::archive::sweep_loop(
        store.clone(),
        records.clone(),
        settings.retention_days,
        Duration::from_secs(settings.sweep_interval_secs),
        move || clock.now(),
        move |n| {
            expired.inc_by(n);
        },
    ));
    Ok(Some(store))
}
