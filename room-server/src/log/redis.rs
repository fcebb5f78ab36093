//! The lecture's log in Redis: one stream per lecture, appended by a Lua script that stamps
//! each entry with Redis's clock (never going back), read in order by every node that holds
//! the lecture. Nothing is lost when a reader falls behind: it reads on from the last id it saw.

use super::{RoomEntry, Sequenced};
use crate::backoff::Backoff;
use prometheus_client::metrics::histogram::Histogram;
use protocol::{Epoch, LectureId, UnixMillis};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use redis::streams::{StreamReadOptions, StreamReadReply};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

/// Entries kept per lecture stream (approximate trim). A node that starts holding a lecture
/// replays the stream from its start, so this bounds how long a lecture can run.
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

fn log_key(lecture: &LectureId) -> String {
    format!("lecture:{lecture}:log")
}

fn clock_key(lecture: &LectureId) -> String {
    format!("lecture:{lecture}:clock")
}

fn count_key(lecture: &LectureId) -> String {
    format!("lecture:{lecture}:count")
}

fn sources_key(lecture: &LectureId) -> String {
    format!("lecture:{lecture}:sources")
}

fn epoch_key(lecture: &LectureId) -> String {
    format!("lecture:{lecture}:epoch")
}

/// A node's connection to Redis.
#[derive(Clone)]
pub(crate) struct Redis {
    client: redis::Client,
    manager: ConnectionManager,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redis(..)")
    }
}

impl Redis {
    /// Connects to `url` (`redis://host:port/db`).
    pub(crate) async fn connect(url: &str) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        // Fail fast while Redis is away (callers retry on their own terms), so an outage is
        // noticed within a heartbeat or two.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Duration::from_secs(1))
            .set_connection_timeout(Duration::from_secs(1))
            .set_number_of_retries(1)
            .set_max_delay(500);
        let manager = ConnectionManager::new_with_config(client.clone(), config).await?;
        Ok(Self { client, manager })
    }

    /// A number no other node got: the high bits of this node's connection ids.
    pub(crate) async fn node_number(&self) -> redis::RedisResult<u64> {
        self.manager.clone().incr("room:nodes:seq", 1u64).await
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
            .invoke_async(&mut self.manager.clone())
            .await
    }

    /// Takes this node out of the heartbeats (a clean shutdown: its people were closed).
    pub(crate) async fn leave(&self, node: u64) -> redis::RedisResult<()> {
        self.manager.clone().zrem(NODES_KEY, node).await
    }

    /// The lecture's chat epoch, the same on every node (the first node to ask draws it).
    pub(crate) async fn epoch(
        &self,
        lecture: &LectureId,
        candidate: Epoch,
    ) -> redis::RedisResult<Epoch> {
        let mut conn = self.manager.clone();
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
            .invoke_async(&mut self.manager.clone())
            .await?;
        Ok(())
    }

    /// Starts the lecture's log on this node: a submitter that appends entries in the order
    /// given (retrying while Redis is away; each append's time since its submission goes to
    /// `append_time`), and a reader that hands every entry of the stream, from its start, to
    /// `out`. Both stop with `stop`.
    pub(crate) fn open_log(
        &self,
        lecture: &LectureId,
        source: String,
        out: mpsc::UnboundedSender<Sequenced>,
        stop: CancellationToken,
        pending: Arc<AtomicUsize>,
        append_time: Histogram,
    ) -> mpsc::UnboundedSender<(RoomEntry, Instant)> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(submit(
            self.manager.clone(),
            lecture.clone(),
            source,
            rx,
            stop.clone(),
            pending,
            append_time,
        ));
        tokio::spawn(read(self.client.clone(), lecture.clone(), out, stop));
        tx
    }
}

async fn submit(
    mut conn: ConnectionManager,
    lecture: LectureId,
    source: String,
    mut entries: mpsc::UnboundedReceiver<(RoomEntry, Instant)>,
    stop: CancellationToken,
    pending: Arc<AtomicUsize>,
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
    loop {
        let (entry, submitted) = tokio::select! {
            e = entries.recv() => match e { Some(e) => e, None => return },
            () = stop.cancelled() => return,
        };
        let bytes = match rmp_serde::to_vec_named(&entry) {
            Ok(bytes) => bytes,
            Err(e) => {
                warn!(error = %e, "a room entry failed to encode");
                pending.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
        };
        number += 1;
        let mut backoff = REDIS_BACKOFF;
        loop {
            let appended: redis::RedisResult<String> = script
                .key(&keys[0])
                .key(&keys[1])
                .key(&keys[2])
                .key(&keys[3])
                .arg(&bytes)
                .arg(STREAM_LEN)
                .arg(&source)
                .arg(number)
                .invoke_async(&mut conn)
                .await;
            match appended {
                Ok(_) => {
                    pending.fetch_sub(1, Ordering::SeqCst);
                    append_time.observe(submitted.elapsed().as_secs_f64());
                    break;
                }
                Err(e) => {
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

async fn read(
    client: redis::Client,
    lecture: LectureId,
    out: mpsc::UnboundedSender<Sequenced>,
    stop: CancellationToken,
) {
    let key = log_key(&lecture);
    let mut last_id = "0".to_owned();
    let mut expected = 1u64;
    let options = StreamReadOptions::default().block(2000).count(1024);
    let mut backoff = REDIS_BACKOFF;
    'connect: loop {
        let mut conn = tokio::select! {
            c = client.get_multiplexed_async_connection() => match c {
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
                    last_id = item.id.clone();
                    // Entries are numbered 1, 2, 3…: a jump means the stream was trimmed past
                    // what this node has, and its copy of the room would be built on a gap.
                    if let Some(n) = item.get::<u64>("n") {
                        if n != expected {
                            error!(
                                lecture = %lecture,
                                expected,
                                found = n,
                                "the lecture's log has a gap (trimmed before this node read it): \
                                 this node's copy of the room is incomplete"
                            );
                        }
                        expected = n + 1;
                    }
                    let at: Option<u64> = item.get("t");
                    let bytes: Option<Vec<u8>> = item.get("e");
                    let decoded = bytes.as_deref().map(rmp_serde::from_slice::<RoomEntry>);
                    match (at, decoded) {
                        (Some(at), Some(Ok(entry))) => {
                            if out
                                .send(Sequenced {
                                    at: UnixMillis(at),
                                    entry,
                                })
                                .is_err()
                            {
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
