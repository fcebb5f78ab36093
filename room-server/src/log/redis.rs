//! The lecture's log in Redis: one stream per lecture, appended by a Lua script that stamps
//! each entry with Redis's clock (never going back), read in order by every node that holds
//! the lecture. Nothing is lost when a reader falls behind: it reads on from the last id it saw.

use super::{RoomEntry, Sequenced};
use crate::backoff::Backoff;
use prometheus_client::metrics::histogram::Histogram;
use protocol::{Epoch, LectureId, UnixMillis};
use redis::AsyncCommands;
use redis::RedisFuture;
use redis::aio::ConnectionManager;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::streams::{StreamReadOptions, StreamReadReply};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

/// Entries kept per lecture stream at most (approximate trim): a safety cap. Each snapshot
/// trims the stream to the snapshot before it (see [`WRITE_SNAPSHOT`]), so with snapshots the
/// stream holds about two snapshot intervals of entries; this cap is reached only if no node
/// writes snapshots for hundreds of thousands of entries.
pub(crate) const STREAM_LEN: usize = 500_000;

/// Stamps an entry with Redis's time (kept monotonic per lecture) and appends it. An entry
/// numbered by its source (ARGV[3], ARGV[4]) is appended once however often it is retried:
/// a reply lost in a Redis restart must not repeat a chat message.
const APPEND: &str = r"
if ARGV[3] ~= '' then
  local last = tonumber(redis.call('HGET', KEYS[3], ARGV[3]) or '0')
  if tonumber(ARGV[4]) <= last then return 'duplicate' end
  redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if now < last then now = last end
redis.call('SET', KEYS[2], now)
local n = redis.call('INCR', KEYS[4])
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 't', now, 'n', n, 'e', ARGV[1])
";

/// Keeps a snapshot of the lecture's room (ARGV[3]) as the state after entry number ARGV[1],
/// stream id ARGV[2], unless a snapshot of a later entry is already kept. The stream is then
/// trimmed to the snapshot this one replaces, never further: a node still reading between the
/// two finds every entry it needs, and one that falls further behind starts again from this
/// snapshot.
const WRITE_SNAPSHOT: &str = r"
local kept = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
if tonumber(ARGV[1]) <= kept then return 0 end
local before = redis.call('HGET', KEYS[1], 'id')
redis.call('HSET', KEYS[1], 'n', ARGV[1], 'id', ARGV[2], 'data', ARGV[3])
if before then redis.call('XTRIM', KEYS[2], 'MINID', before) end
return 1
";

/// Stamps a node's heartbeat with Redis's time, and returns the nodes heard from within
/// ARGV[2] milliseconds (one clock for all nodes: their own clocks may disagree).
const HEARTBEAT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 3600000)
return redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[2]), '+inf')
";

/// How the node retries Redis: from 50 ms, doubling to 2 s (an outage is noticed within a
/// heartbeat or two, and a restart is caught up within seconds).
pub(crate) const REDIS_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(50), Duration::from_secs(2));

/// The sorted set of node heartbeats.
const NODES_KEY: &str = "room:nodes";

// Every key of one lecture carries the lecture's id as its hash tag (`{…}`): in a Redis Cluster
// they all live in one slot, so the scripts that touch several of them run on one shard, and
// different lectures spread over the shards.

fn log_key(lecture: &LectureId) -> String {
    format!("lecture:{{{lecture}}}:log")
}

fn clock_key(lecture: &LectureId) -> String {
    format!("lecture:{{{lecture}}}:clock")
}

fn count_key(lecture: &LectureId) -> String {
    format!("lecture:{{{lecture}}}:count")
}

fn sources_key(lecture: &LectureId) -> String {
    format!("lecture:{{{lecture}}}:sources")
}

fn epoch_key(lecture: &LectureId) -> String {
    format!("lecture:{{{lecture}}}:epoch")
}

/// The latest snapshot of the lecture's room (a hash: `n`, `id`, `data`). The format's
/// version is in the name, so a node never reads a snapshot it cannot decode.
fn snapshot_key(lecture: &LectureId) -> String {
    format!("lecture:{{{lecture}}}:snapshot:{SNAPSHOT_FORMAT}")
}

/// The version of the snapshots' encoding (`rooms::snapshot`): raised whenever the room's state
/// changes shape, so nodes of different versions keep to their own snapshots.
pub(crate) const SNAPSHOT_FORMAT: u32 = 1;

/// A place in the lecture's stream: an entry's number (1, 2, 3…) and its stream id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LogPos {
    pub(crate) n: u64,
    pub(crate) id: String,
}

/// What a node reads from the lecture's log: an entry, or the snapshot to start from (the
/// room as it was after `pos`; encoded, for the room to decode).
#[derive(Debug)]
pub(crate) enum LogItem {
    Entry(Sequenced, LogPos),
    Snapshot { pos: LogPos, bytes: Vec<u8> },
}

/// A connection to Redis: a single server (through a connection manager that reconnects, or a
/// plain multiplexed connection for a blocking reader), or a Redis Cluster (commands go to the
/// shard holding their keys; the client follows the cluster's slot map through failovers).
#[derive(Clone)]
pub(crate) enum Conn {
    Managed(ConnectionManager),
    Plain(redis::aio::MultiplexedConnection),
    Cluster(ClusterConn),
}

/// A Redis Cluster connection that starts again from the cluster's current slot map when a
/// shard stops answering. The client follows `MOVED` answers by itself, but a master that
/// freezes (a stalled process, a VM pause) answers nothing: its commands only time out, and
/// without a fresh map they would go on waiting for it after its replica took over.
#[derive(Clone)]
pub(crate) struct ClusterConn(Arc<ClusterConnInner>);

struct ClusterConnInner {
    client: ClusterClient,
    current: std::sync::Mutex<(u64, ClusterConnection)>,
    /// One rebuild at a time.
    rebuilding: tokio::sync::Mutex<()>,
}

impl ClusterConn {
    async fn connect(client: ClusterClient) -> redis::RedisResult<Self> {
        let conn = client.get_async_connection().await?;
        Ok(Self(Arc::new(ClusterConnInner {
            client,
            current: std::sync::Mutex::new((0, conn)),
            rebuilding: tokio::sync::Mutex::new(()),
        })))
    }

    fn current(&self) -> (u64, ClusterConnection) {
        self.0
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces connection `generation` with a fresh one (unless another caller already did).
    async fn rebuild(&self, generation: u64) {
        let _one = self.0.rebuilding.lock().await;
        if self.current().0 != generation {
            return;
        }
        match self.0.client.get_async_connection().await {
            Ok(conn) => {
                *self
                    .0
                    .current
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = (generation + 1, conn);
            }
            Err(e) => debug!(error = %e, "cannot reach the Redis Cluster yet"),
        }
    }

    /// Runs `call` on the current connection; after an error that a shard going away or the
    /// cluster changing gives, the next call starts from a fresh slot map.
    async fn run<T>(
        &self,
        call: impl AsyncFnOnce(&mut ClusterConnection) -> redis::RedisResult<T>,
    ) -> redis::RedisResult<T> {
        let (generation, mut conn) = self.current();
        let result = call(&mut conn).await;
        if let Err(e) = &result
            && (e.is_timeout()
                || e.is_io_error()
                || e.is_connection_dropped()
                || e.is_connection_refusal()
                || matches!(
                    e.kind(),
                    redis::ErrorKind::ClusterDown
                        | redis::ErrorKind::Moved
                        | redis::ErrorKind::MasterDown
                        | redis::ErrorKind::TryAgain
                        | redis::ErrorKind::ClusterConnectionNotFound
                ))
        {
            self.rebuild(generation).await;
        }
        result
    }
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, redis::Value> {
        match self {
            Self::Managed(c) => c.req_packed_command(cmd),
            Self::Plain(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => Box::pin(c.run(async |conn| conn.req_packed_command(cmd).await)),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Managed(c) => c.req_packed_commands(cmd, offset, count),
            Self::Plain(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => Box::pin(
                c.run(async move |conn| conn.req_packed_commands(cmd, offset, count).await),
            ),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Managed(c) => c.get_db(),
            Self::Plain(c) => c.get_db(),
            Self::Cluster(c) => c.current().1.get_db(),
        }
    }
}

/// Where the connections of a lecture's log come from. With one server, appends share the
/// node's connection manager; in a cluster each lecture's appends get a cluster connection of
/// their own, so a shard that stalls holds up only its own lectures (the client handles a
/// shard's faults inside one connection, holding every other request of it meanwhile). A
/// reader always has its own connection: its reads block for up to two seconds.
#[derive(Clone)]
enum Source {
    Single {
        client: redis::Client,
        manager: ConnectionManager,
    },
    Cluster {
        commands: Arc<ClusterClient>,
        reader: Arc<ClusterClient>,
    },
}

impl Source {
    async fn commands(&self) -> redis::RedisResult<Conn> {
        match self {
            Self::Single { manager, .. } => Ok(Conn::Managed(manager.clone())),
            Self::Cluster { commands, .. } => Ok(Conn::Cluster(
                ClusterConn::connect(ClusterClient::clone(commands)).await?,
            )),
        }
    }

    async fn reader(&self) -> redis::RedisResult<Conn> {
        match self {
            Self::Single { client, .. } => Ok(Conn::Plain(
                client.get_multiplexed_async_connection().await?,
            )),
            Self::Cluster { reader, .. } => Ok(Conn::Cluster(
                ClusterConn::connect(ClusterClient::clone(reader)).await?,
            )),
        }
    }
}

/// How long a command may wait for Redis before it counts as failed (callers retry on their
/// own terms), so an outage is noticed within a heartbeat or two.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a reader's blocking read waits for new entries (and how much longer its answer
/// may take before the connection counts as broken).
const READ_BLOCK: Duration = Duration::from_secs(2);

/// Entries a lecture's room handed its submitter and Redis has not yet appended: the room's
/// own count (bounded by `[room] appends_waiting_max`) and the node's gauge of every room's
/// (`room_log_appends_waiting`).
#[derive(Clone, Debug)]
pub(crate) struct Waiting {
    room: Arc<AtomicUsize>,
    node: prometheus_client::metrics::gauge::Gauge,
}

impl Waiting {
    /// A room's count, adding to the node's `gauge`.
    pub(crate) fn new(gauge: prometheus_client::metrics::gauge::Gauge) -> Self {
        Self {
            room: Arc::new(AtomicUsize::new(0)),
            node: gauge,
        }
    }

    /// One more entry handed to the submitter.
    pub(crate) fn add(&self) {
        self.room.fetch_add(1, Ordering::SeqCst);
        self.node.inc();
    }

    /// `n` entries appended (or dropped).
    fn done(&self, n: usize) {
        self.room.fetch_sub(n, Ordering::SeqCst);
        self.node.dec_by(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The room's entries waiting.
    pub(crate) fn count(&self) -> usize {
        self.room.load(Ordering::SeqCst)
    }
}

/// Entries a lecture's reader hands its room ahead of what the room applied, at most.
pub(crate) const READ_AHEAD: usize = 4096;

/// A node's connection to Redis (cheap to clone).
#[derive(Clone)]
pub(crate) struct Redis(Arc<Connections>);

struct Connections {
    source: Source,
    /// Node-wide keys (numbers, heartbeats): in a cluster a connection of their own, so a
    /// lecture's shard in trouble never makes the node look cut off.
    nodes: Conn,
    /// Lectures' keys outside their logs' submitters (epochs, snapshots, the gate's entries).
    lectures: Conn,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0.source {
            Source::Single { .. } => "Redis(..)",
            Source::Cluster { .. } => "Redis(cluster ..)",
        })
    }
}

impl Redis {
    /// Connects to `urls`: one `redis://host:port/db`, or the comma-separated addresses of some
    /// nodes of a Redis Cluster (`redis://a:7000,redis://b:7001`; one is enough, the others are
    /// tried when it is away). Whether the server is a cluster node is asked (`INFO cluster`),
    /// not configured.
    pub(crate) async fn connect(urls: &str) -> redis::RedisResult<Self> {
        let seeds: Vec<&str> = urls
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        let mut probe_error = None;
        let mut cluster = None;
        for seed in &seeds {
            match cluster_enabled(seed).await {
                Ok(enabled) => {
                    cluster = Some(enabled);
                    break;
                }
                Err(e) => probe_error = Some(e),
            }
        }
        let Some(cluster) = cluster else {
            return Err(probe_error.unwrap_or_else(|| {
                redis::RedisError::from((redis::ErrorKind::InvalidClientConfig, "no Redis URL"))
            }));
        };
        if cluster {
            let builder = |response_timeout| {
                ClusterClient::builder(seeds.iter().copied())
                    .connection_timeout(COMMAND_TIMEOUT)
                    .response_timeout(response_timeout)
                    // A failover takes seconds; the node's own loops retry with back-off.
                    .retries(2)
                    .build()
            };
            let source = Source::Cluster {
                commands: Arc::new(builder(COMMAND_TIMEOUT)?),
                reader: Arc::new(builder(READ_BLOCK + COMMAND_TIMEOUT * 3)?),
            };
            return Ok(Self(Arc::new(Connections {
                nodes: source.commands().await?,
                lectures: source.commands().await?,
                source,
            })));
        }
        if seeds.len() > 1 {
            return Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "several Redis URLs name the nodes of a Redis Cluster, but this server is not in cluster mode",
            )));
        }
        let client = redis::Client::open(seeds[0])?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(COMMAND_TIMEOUT)
            .set_connection_timeout(COMMAND_TIMEOUT)
            .set_number_of_retries(1)
            .set_max_delay(500);
        let manager = ConnectionManager::new_with_config(client.clone(), config).await?;
        Ok(Self(Arc::new(Connections {
            nodes: Conn::Managed(manager.clone()),
            lectures: Conn::Managed(manager.clone()),
            source: Source::Single { client, manager },
        })))
    }

    /// A number no other node got: the high bits of this node's connection ids.
    pub(crate) async fn node_number(&self) -> redis::RedisResult<u64> {
        self.0.nodes.clone().incr("room:nodes:seq", 1u64).await
    }

    /// Says this node is alive; returns the nodes heard from within `window_ms`.
    pub(crate) async fn heartbeat(
        &self,
        node: u64,
        window_ms: u64,
    ) -> redis::RedisResult<Vec<u64>> {
        redis::Script::new(HEARTBEAT)
            .key(NODES_KEY)
            .arg(node)
            .arg(window_ms)
            .invoke_async(&mut self.0.nodes.clone())
            .await
    }

    /// Takes this node out of the heartbeats (a clean shutdown: its people were closed).
    pub(crate) async fn leave(&self, node: u64) -> redis::RedisResult<()> {
        self.0.nodes.clone().zrem(NODES_KEY, node).await
    }

    /// The lecture's chat epoch, the same on every node (the first node to ask draws it).
    pub(crate) async fn epoch(
        &self,
        lecture: &LectureId,
        candidate: Epoch,
    ) -> redis::RedisResult<Epoch> {
        let mut conn = self.0.lectures.clone();
        let key = epoch_key(lecture);
        let _: bool = redis::cmd("SET")
            .arg(&key)
            .arg(candidate.0)
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map(|v: Option<String>| v.is_some())?;
        let epoch: u64 = conn.get(&key).await?;
        Ok(Epoch(epoch))
    }

    /// Appends one entry to the lecture's log (for events from outside any room on this node:
    /// revocations and cancellations from the entry gate).
    pub(crate) async fn append(
        &self,
        lecture: &LectureId,
        entry: &RoomEntry,
    ) -> redis::RedisResult<()> {
        let bytes = rmp_serde::to_vec_named(entry).map_err(|e| {
            redis::RedisError::from((redis::ErrorKind::TypeError, "encode", e.to_string()))
        })?;
        let _: String = redis::Script::new(APPEND)
            .key(log_key(lecture))
            .key(clock_key(lecture))
            .key(sources_key(lecture))
            .key(count_key(lecture))
            .arg(bytes)
            .arg(STREAM_LEN)
            .arg("")
            .arg(0)
            .invoke_async(&mut self.0.lectures.clone())
            .await?;
        Ok(())
    }

    /// Keeps `bytes` as the snapshot of the room after `pos`, unless a later one is kept;
    /// trims the stream behind the snapshot it replaces. Whether it was kept.
    pub(crate) async fn write_snapshot(
        &self,
        lecture: &LectureId,
        pos: &LogPos,
        bytes: &[u8],
    ) -> redis::RedisResult<bool> {
        let kept: i64 = redis::Script::new(WRITE_SNAPSHOT)
            .key(snapshot_key(lecture))
            .key(log_key(lecture))
            .arg(pos.n)
            .arg(&pos.id)
            .arg(bytes)
            .invoke_async(&mut self.0.lectures.clone())
            .await?;
        Ok(kept == 1)
    }

    /// Starts the lecture's log on this node: a submitter that appends entries in the order
    /// given (retrying while Redis is away; each append's time since its submission goes to
    /// `append_time`), and a reader that hands `out` the latest snapshot, if any, then every
    /// entry of the stream after it. Both stop with `stop`.
    pub(crate) fn open_log(
        &self,
        lecture: &LectureId,
        source: String,
        out: mpsc::Sender<LogItem>,
        stop: CancellationToken,
        pending: Waiting,
        append_time: Histogram,
    ) -> mpsc::UnboundedSender<(RoomEntry, Instant)> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(submit(
            self.0.source.clone(),
            lecture.clone(),
            source,
            rx,
            stop.clone(),
            pending,
            append_time,
        ));
        tokio::spawn(read(self.0.source.clone(), lecture.clone(), out, stop));
        tx
    }
}

/// Entries appended in one round trip at most: what queued while the previous round trip was
/// out goes together (a pipeline of the append script, applied in order by Redis).
const APPEND_BATCH: usize = 256;

/// Appends the entries `entries` gives, in order, each exactly once: whatever queued while the
/// previous round trip was out goes in the next one (one pipeline), so a lecture's appends are
/// not held to one entry per round trip. Each entry carries this node's `source` and a number;
/// a batch retried after an error Redis partly applied appends only what it lacks.
async fn submit(
    connections: Source,
    lecture: LectureId,
    source: String,
    mut entries: mpsc::UnboundedReceiver<(RoomEntry, Instant)>,
    stop: CancellationToken,
    pending: Waiting,
    append_time: Histogram,
) {
    let script = redis::Script::new(APPEND);
    let keys = [
        log_key(&lecture),
        clock_key(&lecture),
        sources_key(&lecture),
        count_key(&lecture),
    ];
    let mut number = 0u64;
    let mut conn: Option<Conn> = None;
    let mut batch: Vec<(Vec<u8>, u64, Instant)> = Vec::with_capacity(APPEND_BATCH);
    loop {
        let first = tokio::select! {
            e = entries.recv() => match e { Some(e) => e, None => return },
            () = stop.cancelled() => return,
        };
        batch.clear();
        let mut next = Some(first);
        while let Some((entry, submitted)) = next.take() {
            match rmp_serde::to_vec_named(&entry) {
                Ok(bytes) => {
                    number += 1;
                    batch.push((bytes, number, submitted));
                }
                Err(e) => {
                    warn!(error = %e, "a room entry failed to encode");
                    pending.done(1);
                }
            }
            if batch.len() < APPEND_BATCH {
                next = entries.try_recv().ok();
            }
        }
        if batch.is_empty() {
            continue;
        }
        let mut pipe = redis::pipe();
        for (bytes, number, _) in &batch {
            pipe.cmd("EVALSHA")
                .arg(script.get_hash())
                .arg(keys.len())
                .arg(&keys[..])
                .arg(bytes)
                .arg(STREAM_LEN)
                .arg(&source)
                .arg(*number);
        }
        let mut backoff = REDIS_BACKOFF;
        let mut loaded = false;
        loop {
            let appended: redis::RedisResult<()> = match &mut conn {
                Some(conn) => pipe.query_async(conn).await,
                None => match connections.commands().await {
                    Ok(c) => {
                        conn = Some(c);
                        continue;
                    }
                    Err(e) => Err(e),
                },
            };
            match appended {
                Ok(()) => {
                    pending.done(batch.len());
                    for (_, _, submitted) in &batch {
                        append_time.observe(submitted.elapsed().as_secs_f64());
                    }
                    break;
                }
                // A Redis that restarted, or a replica that took over, may not know the
                // script yet: loaded once, then the batch again (numbered: nothing doubles).
                Err(e) if e.kind() == redis::ErrorKind::NoScriptError && !loaded => {
                    loaded = true;
                    if let Some(conn) = &mut conn
                        && let Err(e) = script.load_async(conn).await
                    {
                        warn!(error = %e, "cannot load the append script; retrying");
                    }
                }
                Err(e) => {
                    loaded = false;
                    warn!(error = %e, "cannot append to the lecture's log; retrying");
                    tokio::select! {
                        () = backoff.wait() => {}
                        () = stop.cancelled() => return,
                    }
                }
            }
        }
    }
}

/// Whether the Redis server at `url` runs in cluster mode.
async fn cluster_enabled(url: &str) -> redis::RedisResult<bool> {
    let client = redis::Client::open(url)?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(COMMAND_TIMEOUT)
        .set_response_timeout(COMMAND_TIMEOUT);
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    let info: String = redis::cmd("INFO")
        .arg("cluster")
        .query_async(&mut conn)
        .await?;
    Ok(info.lines().any(|l| l.trim() == "cluster_enabled:1"))
}

/// The latest snapshot of the lecture's room, if one was written.
async fn load_snapshot(
    conn: &mut Conn,
    lecture: &LectureId,
) -> redis::RedisResult<Option<(LogPos, Vec<u8>)>> {
    let (n, id, data): (Option<u64>, Option<String>, Option<Vec<u8>>) = redis::cmd("HMGET")
        .arg(snapshot_key(lecture))
        .arg("n")
        .arg("id")
        .arg("data")
        .query_async(conn)
        .await?;
    Ok(match (n, id, data) {
        (Some(n), Some(id), Some(data)) => Some((LogPos { n, id }, data)),
        _ => None,
    })
}

async fn read(
    client: Source,
    lecture: LectureId,
    out: mpsc::Sender<LogItem>,
    stop: CancellationToken,
) {
    let key = log_key(&lecture);
    let mut last_id = "0".to_owned();
    let mut expected = 1u64;
    let block_ms = usize::try_from(READ_BLOCK.as_millis()).unwrap_or(2000);
    let options = StreamReadOptions::default().block(block_ms).count(1024);
    let mut backoff = REDIS_BACKOFF;
    // The snapshot is read first, and again whenever the stream was trimmed past this node
    // (`gap`); when no snapshot covers the gap, the reader goes on past it (`tolerate_gap`).
    let mut from_snapshot = true;
    let mut gap = false;
    let mut tolerate_gap = false;
    'connect: loop {
        let mut conn = tokio::select! {
            c = client.reader() => match c {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "cannot reach Redis to read the lecture's log; retrying");
                    tokio::select! {
                        () = backoff.wait() => {}
                        () = stop.cancelled() => return,
                    }
                    continue 'connect;
                }
            },
            () = stop.cancelled() => return,
        };
        backoff.reset();
        if from_snapshot {
            match load_snapshot(&mut conn, &lecture).await {
                // It covers everything this node has not applied yet (or more).
                Ok(Some((pos, bytes))) if pos.n + 1 >= expected => {
                    last_id.clone_from(&pos.id);
                    expected = pos.n + 1;
                    if out.send(LogItem::Snapshot { pos, bytes }).await.is_err() {
                        return;
                    }
                }
                Ok(_) if gap => {
                    error!(
                        lecture = %lecture,
                        expected,
                        "the lecture's log was trimmed past this node and no snapshot covers \
                         the gap: this node's copy of the room is incomplete"
                    );
                    tolerate_gap = true;
                }
                Ok(_) => {}
                Err(e) => {
                    warn!(error = %e, "cannot read the lecture's snapshot; retrying");
                    tokio::select! {
                        () = backoff.wait() => {}
                        () = stop.cancelled() => return,
                    }
                    continue 'connect;
                }
            }
            from_snapshot = false;
            gap = false;
        }
        loop {
            let keys = [key.as_str()];
            let ids = [last_id.as_str()];
            let reply: redis::RedisResult<Option<StreamReadReply>> = tokio::select! {
                r = conn.xread_options(&keys, &ids, &options) => r,
                () = stop.cancelled() => return,
            };
            let reply = match reply {
                Ok(reply) => reply,
                Err(e) => {
                    warn!(error = %e, "reading the lecture's log failed; reconnecting");
                    continue 'connect;
                }
            };
            for stream in reply.into_iter().flat_map(|r| r.keys) {
                for item in stream.ids {
                    // Entries are numbered 1, 2, 3…: a jump means the stream was trimmed past
                    // what this node has (it fell behind by more than a snapshot interval):
                    // it starts again from the latest snapshot.
                    let n = item.get::<u64>("n").unwrap_or(expected);
                    if n > expected && !tolerate_gap {
                        warn!(lecture = %lecture, expected, found = n,
                            "the lecture's log was trimmed past this node; starting again from its snapshot");
                        from_snapshot = true;
                        gap = true;
                        continue 'connect;
                    }
                    tolerate_gap = false;
                    last_id = item.id.clone();
                    expected = n + 1;
                    let at: Option<u64> = item.get("t");
                    let bytes: Option<Vec<u8>> = item.get("e");
                    let decoded = bytes.as_deref().map(rmp_serde::from_slice::<RoomEntry>);
                    match (at, decoded) {
                        (Some(at), Some(Ok(entry))) => {
                            let entry = Sequenced {
                                at: UnixMillis(at),
                                entry,
                            };
                            let pos = LogPos {
                                n,
                                id: item.id.clone(),
                            };
                            if out.send(LogItem::Entry(entry, pos)).await.is_err() {
                                return;
                            }
                        }
                        _ => debug!(id = %item.id, "skipping an unreadable log entry"),
                    }
                }
            }
        }
    }
}
