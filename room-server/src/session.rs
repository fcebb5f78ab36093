//! One client connection: reads the `hello`, checks the ticket, joins the room, then runs a
//! reader (client → room) and a writer (room → client) side by side until either ends, and
//! closes so that the close code arrives (`conn::ws::close`).

use crate::config::Limits;
use crate::conn::frames::{data_of, read_failure};
use crate::conn::outbox::{Ending, Kick, OutQueue, Outbox};
use crate::conn::ws::{Frame, Reader, Writer, close_frame};
use crate::gate::Gate;
use crate::gate::model::{Lecture, LectureStatus};
use crate::log::RoomEntry;
use crate::metrics::Metrics;
use crate::rooms::Rooms;
use crate::rooms::task::RoomInput;
use futures_util::StreamExt;
use governor::{Quota, RateLimiter};
use protocol::ticket::TicketError;
use protocol::ticket::TicketKey;
use protocol::{
    ClientMsg, CloseCode, Codec, Command, DecodeError, ErrorCode, ResumeFrom, Role, UnixMillis,
};
use room::ConnId;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;
use tracing::{Instrument, debug, info, info_span};

/// What a session needs of the node: its limits, the key tickets are signed with, the time,
/// the gate's last word on entry, rooms to join, and the node's counters and shutdown.
#[derive(Debug)]
pub(crate) struct SessionContext {
    pub(crate) limits: Limits,
    pub(crate) ticket_key: TicketKey,
    pub(crate) clock: Arc<dyn crate::clock::Clock>,
    pub(crate) gate: Arc<Gate>,
    pub(crate) metrics: Arc<Metrics>,
    /// Cancelled when the node starts shutting down: sessions tell their clients to reconnect.
    pub(crate) shutdown: tokio_util::sync::CancellationToken,
    /// The rooms of this node.
    pub(crate) rooms: Arc<Rooms>,
    /// Numbers new connections.
    pub(crate) conn_ids: Arc<crate::conn::ids::ConnIds>,
    /// The sessions in their rooms, which shutting down ends.
    pub(crate) live: Arc<LiveSessions>,
}

/// The node's sessions in their rooms, by connection number, so that shutting down can tell
/// each to close. Their writers do not each watch the node's shutdown switch: every poll of a
/// switch shared by all connections takes the same lock, and a writer is polled once per
/// delivery.
#[derive(Debug, Default)]
pub(crate) struct LiveSessions(dashmap::DashMap<u64, Arc<Kick>>);

impl LiveSessions {
    /// Closes every session with `4000` once `shutdown` is cancelled (a task that runs until
    /// then).
    pub(crate) fn kick_on(self: &Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        let live = Arc::downgrade(self);
        tokio::spawn(async move {
            shutdown.cancelled().await;
            if let Some(live) = live.upgrade() {
                for session in live.0.iter() {
                    session.value().kick(Some(CloseCode::ServerShutdown));
                }
            }
        });
    }

    /// How many sessions are in their rooms.
    pub(crate) fn count(&self) -> usize {
        self.0.len()
    }

    /// Closes every session now in a room with `4000`, each at a random moment within `over`
    /// (a ramp for the nodes they reconnect to, not a storm); returns once the last is told.
    pub(crate) async fn close_spread(&self, over: Duration) {
        let kicks: Vec<Arc<Kick>> = self.0.iter().map(|s| Arc::clone(s.value())).collect();
        let mut noise = vec![0u8; kicks.len() * 4];
        if getrandom::fill(&mut noise).is_err() {
            // Never seen on Linux; the zeros left close everyone at once.
            tracing::warn!("no randomness for the drain's ramp: closing everyone at once");
        }
        let mut moments: Vec<(Duration, Arc<Kick>)> = kicks
            .into_iter()
            .zip(noise.chunks_exact(4))
            .map(|(kick, bytes)| {
                let unit = f64::from(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
                    / f64::from(u32::MAX);
                (over.mul_f64(unit), kick)
            })
            .collect();
        moments.sort_by_key(|(at, _)| *at);
        let start = Instant::now();
        for (at, kick) in moments {
            sleep_until(start + at).await;
            kick.kick(Some(CloseCode::ServerShutdown));
        }
    }

    /// Counts a session in until the guard drops; one entering during shutdown is told at once.
    fn enter<'a>(&'a self, conn: ConnId, kick: &Arc<Kick>, node: &SessionContext) -> Living<'a> {
        self.0.insert(conn.0, Arc::clone(kick));
        // After the insert: a shutdown that began before it is seen here, one after it finds
        // the session in the map.
        if node.shutdown.is_cancelled() {
            kick.kick(Some(CloseCode::ServerShutdown));
        }
        Living { live: self, conn }
    }
}

/// A session counted among the live ones.
struct Living<'a> {
    live: &'a LiveSessions,
    conn: ConnId,
}

impl Drop for Living<'_> {
    fn drop(&mut self) {
        self.live.0.remove(&self.conn.0);
    }
}

/// Most frames one write takes (two slices each, under the 1,024 one `writev` takes).
const MAX_BATCH: usize = 256;

/// Runs one room connection to its end. `admitted` is its place under the node's
/// `max_connections`, taken before the upgrade and given back when it closes.
///
/// Not an `async fn`: one wrapping `session` would hold its arguments twice for the
/// connection's life (its own, and `session`'s).
pub(crate) fn run(
    node: Arc<SessionContext>,
    reader: Reader,
    writer: Writer,
    codec: Codec,
    lecture: Lecture,
    admitted: OwnedSemaphorePermit,
) -> impl Future<Output = ()> + Send {
    let conn = node.conn_ids.next();
    let span = info_span!("conn", id = conn.0, lecture = %lecture.id);
    node.metrics.connections_active.inc();
    node.metrics.connections_total.inc();
    let counted = Counted {
        node,
        _admitted: admitted,
    };
    session(counted, reader, writer, codec, lecture, conn).instrument(span)
}

/// A connection counted among the open ones, and its place under `max_connections`, until
/// it ends (however it ends).
struct Counted {
    node: Arc<SessionContext>,
    _admitted: OwnedSemaphorePermit,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.node.metrics.connections_active.dec();
    }
}

/// A connection's life: entering (boxed: its steps run once, and their futures, a store
/// query among them, would otherwise size the connection's task for as long as it lives),
/// then the room, then the close.
async fn session(
    counted: Counted,
    mut stream: Reader,
    mut sink: Writer,
    codec: Codec,
    lecture: Lecture,
    conn: ConnId,
) {
    let node = &*counted.node;
    let upgraded = Instant::now();
    let entered = Box::pin(enter(node, &mut stream, codec, lecture, conn)).await;
    let Entered {
        out,
        room,
        media,
        role,
    } = match entered {
        Ok(entered) => entered,
        Err(None) => return,
        Err(Some(code)) => return Box::pin(refuse(sink, stream, code)).await,
    };
    let living = node.live.enter(conn, &out.kick, node);
    // From here on a frame for an idle connection is written at once by whoever has it.
    out.queue.attach(sink.socket());
    let media_inbox = crate::media::MediaInbox::default();
    let pongs = AtomicU64::new(0);
    // Made inside the joins: a future first held in a variable would take its room twice in
    // this task (the variable's, and the join's own copy). The writer, woken for nearly every
    // frame, is polled apart from the rest (`join2`); the kick, which both sides wait for,
    // ends both.
    crate::conn::join::join2(
        write_loop(node, &mut sink, &out.queue, &out.kick, &pongs),
        async {
            tokio::join!(
                read_loop(node, &mut stream, conn, &out, &room, &media_inbox, &pongs),
                crate::media::run_session(&media, conn, role, &out, &media_inbox),
                // Boxed: done once the welcome is out, and given back then.
                Box::pin(Metrics::time_until(
                    &node.metrics.join,
                    upgraded,
                    out.welcomed.raised(),
                    out.kick.kicked()
                )),
            );
        },
        || out.kick.is_kicked(),
    )
    .await;
    // Nothing but the close frame is written from now on.
    out.queue.detach();
    drop(living);
    Box::pin(leave(sink, stream, &out, &room, conn)).await;
}

/// A connection in its room.
struct Entered {
    out: Outbox,
    room: mpsc::Sender<RoomInput>,
    media: Arc<crate::media::LectureMedia>,
    role: Role,
}

/// Reads the `hello`, checks the ticket and the gate, and joins the room. `Err(None)`: the
/// client went away; `Err(Some(code))`: it is refused with `code`.
async fn enter(
    node: &SessionContext,
    stream: &mut Reader,
    codec: Codec,
    lecture: Lecture,
    conn: ConnId,
) -> Result<Entered, Option<CloseCode>> {
    let hello_timeout = Duration::from_millis(node.limits.hello_timeout_ms);
    let hello = tokio::select! {
        hello = timeout(hello_timeout, read_hello(stream, codec)) => hello,
        () = node.shutdown.cancelled() => return Err(Some(CloseCode::ServerShutdown)),
    };
    let (ticket, resume) = match hello {
        Ok(hello) => hello?,
        Err(_) => return Err(Some(CloseCode::HelloTimeout)),
    };
    let claims = match node.ticket_key.verify(&ticket, node.clock.now()) {
        Ok(claims) if claims.lec.as_str() == lecture.id => claims,
        Ok(_) => return Err(Some(CloseCode::TicketWrongLecture)),
        Err(TicketError::Expired) => return Err(Some(CloseCode::TicketExpired)),
        Err(TicketError::Invalid) => return Err(Some(CloseCode::TicketInvalid)),
    };
    info!(
        role = claims.role.as_str(),
        resume = resume.is_some(),
        "entering"
    );
    debug!(user = %claims.sub, nickname = %claims.nick, "ticket holder");
    if lecture.status == LectureStatus::Cancelled {
        return Err(Some(CloseCode::LectureCancelled));
    }
    if lecture.ended_at.is_some() {
        return Err(Some(CloseCode::LectureEnded));
    }
    if let Some(code) = node.gate.entry_refusal(&claims).await {
        return Err(Some(code));
    }
    let role = claims.role;
    let entry = RoomEntry::Join {
        conn: conn.0,
        // The room knows people by a pseudonym; the account stays with the records.
        user: node.ticket_key.pseudonym(&claims.lec, &claims.sub),
        account: claims.sub,
        nickname: claims.nick,
        role,
        issued_at: UnixMillis(claims.iat.saturating_mul(1000)),
        resume,
    };
    let spec = lecture.info();

    let coalesce = Duration::from_micros(node.limits.write_coalesce_us);
    let out = Outbox::new(node.limits.outbound_queue, coalesce, codec);
    let join = |out: Outbox| RoomInput::join(entry.clone(), out);
    // A room that stopped between lookup and join is started afresh on the second try.
    for _ in 0..2 {
        match node.rooms.inbox(&spec) {
            Ok((room, media)) if room.send(join(out.clone())).await.is_ok() => {
                return Ok(Entered {
                    out,
                    room,
                    media,
                    role,
                });
            }
            Ok(_) => continue,
            Err(code) => return Err(Some(code)),
        }
    }
    Err(Some(CloseCode::ServerShutdown))
}

/// Tells the room the connection is gone and closes it as its ending says.
async fn leave(
    sink: Writer,
    stream: Reader,
    out: &Outbox,
    room: &mpsc::Sender<RoomInput>,
    conn: ConnId,
) {
    // The room may be gone already (lecture over); then there is nobody to tell.
    let _ = room
        .send(RoomInput::entry(RoomEntry::Disconnected { conn: conn.0 }))
        .await;
    let ending = out.kick.ending();
    debug!(?ending, "connection closed");
    if let Ending::Close(code) = ending {
        close(sink, stream, code).await;
    }
}

/// Reads frames until the `hello`. `Err(None)`: the client went away; `Err(Some(code))`: it
/// must be closed with `code`.
async fn read_hello(
    stream: &mut Reader,
    codec: Codec,
) -> Result<(String, Option<ResumeFrom>), Option<CloseCode>> {
    loop {
        let msg = match stream.next().await {
            None => return Err(None),
            Some(Err(e)) => return Err(read_failure(&e)),
            Some(Ok(msg)) => msg,
        };
        let bytes = match data_of(&msg, codec) {
            Ok(Some(bytes)) => bytes,
            Ok(None) if matches!(msg, Message::Close(_)) => return Err(None),
            Ok(None) => continue,
            Err(code) => return Err(Some(code)),
        };
        return match codec.decode_client(&bytes) {
            Ok(ClientMsg::Hello { ticket, resume }) => Ok((ticket, resume)),
            _ => Err(Some(CloseCode::ProtocolViolation)),
        };
    }
}

/// Closes a connection that never joined a room.
async fn refuse(sink: Writer, stream: Reader, code: CloseCode) {
    info!(code = code.code(), reason = code.reason(), "refused");
    close(sink, stream, Some(code)).await;
}

/// Closes the connection with `code` so that the code arrives (see `conn::ws::close`).
pub(crate) async fn close(sink: Writer, stream: Reader, code: Option<CloseCode>) {
    crate::conn::ws::close(stream, sink, close_frame(code)).await;
}

/// Room → client: writes what is queued, a batch per `write`; pings; stops when the room
/// says so, when kicked, or when the node shuts down. The close frame is sent after. (Most
/// frames never come here: whoever has one for an idle connection writes it at once, see
/// `OutQueue`.)
///
/// **Coalescing.** A connection that has been quiet is written to the moment a frame comes.
/// One written to less than `write_coalesce_us` ago queues what comes, and its writer waits
/// until that much time has passed since the last write, then sends everything queued
/// meanwhile in one `write`: under load, frames that arrive together leave together (fewer
/// system calls, fewer packets), at a cost of at most that moment; an idle or quiet
/// connection never waits.
///
/// Pings measure the client's progress: each carries its number, and a client that has not
/// answered one by the time of the next is not reading what the node sends (a socket held open
/// and never read, or a reader hopelessly behind). It is closed with 4001 however little the
/// room says: the kernel's buffers on both sides would otherwise hide it for minutes.
async fn write_loop(
    node: &SessionContext,
    sink: &mut Writer,
    queue: &OutQueue,
    kick: &Kick,
    pongs: &AtomicU64,
) {
    let mut ping = tokio::time::interval(Duration::from_millis(node.limits.ping_interval_ms));
    ping.tick().await;
    let mut pinged = 0u64;
    let failed = loop {
        let written = tokio::select! {
            biased;
            () = kick.kicked() => return,
            () = queue.ready() => {
                if let Some(wait) = queue.coalescing() {
                    // Boxed: only a busy connection waits, and the timer would otherwise
                    // size every connection's task.
                    let wait = Box::pin(tokio::time::sleep(wait));
                    tokio::select! {
                        biased;
                        () = kick.kicked() => return,
                        () = wait => {}
                    }
                }
                let batch = queue.take(MAX_BATCH);
                let oldest = batch.oldest;
                let close = batch.close;
                let writes = sink.writes();
                let written = tokio::select! {
                    biased;
                    () = kick.kicked() => return,
                    r = sink.send(&batch.frames) => r,
                };
                queue.written();
                if written.is_ok() {
                    let metrics = &node.metrics;
                    metrics.socket_writes_total.inc_by(sink.writes() - writes);
                    metrics.frames_written_total.inc_by(batch.frames.len() as u64);
                    if let Some(at) = oldest {
                        metrics.outbound_queue_wait.observe(at.elapsed().as_secs_f64());
                    }
                }
                drop(batch);
                if let (Ok(()), Some(code)) = (&written, close) {
                    return kick.kick(code);
                }
                written
            }
            () = sink.control_waiting() => {
                queue.claim();
                let written = tokio::select! {
                    // A pong to the client's ping (tungstenite's own answer).
                    biased;
                    () = kick.kicked() => return,
                    r = sink.send_control() => r,
                };
                queue.written();
                written
            }
            _ = ping.tick() => {
                if pongs.load(Ordering::Relaxed) < pinged {
                    debug!("the client did not answer the last ping");
                    node.metrics.slow_consumers_total.inc();
                    return kick.kick(Some(CloseCode::SlowConsumer));
                }
                pinged += 1;
                let ping = Frame::ping(pinged);
                queue.claim();
                let written = tokio::select! {
                    () = kick.kicked() => return,
                    r = sink.send([&ping]) => r,
                };
                queue.written();
                written
            }
        };
        if let Err(e) = written {
            break e;
        }
    };
    if failed.kind() == std::io::ErrorKind::TimedOut {
        debug!("the client stopped taking bytes");
        node.metrics.slow_consumers_total.inc();
    }
    kick.gone();
}

/// Client → room: decodes frames, applies the rate limit (every frame counts, whatever is in
/// it), forwards commands; watches for silence and abuse; notes the pings answered.
async fn read_loop(
    node: &SessionContext,
    stream: &mut Reader,
    conn: ConnId,
    out: &Outbox,
    room: &mpsc::Sender<RoomInput>,
    media: &crate::media::MediaInbox,
    pongs: &AtomicU64,
) {
    let limits = &node.limits;
    let quota =
        Quota::per_second(NonZeroU32::new(limits.commands_per_sec).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(limits.command_burst).unwrap_or(NonZeroU32::MIN));
    let limiter = RateLimiter::direct(quota);
    let idle = Duration::from_millis(limits.idle_timeout_ms);
    let mut last_heard = Instant::now();
    let mut strikes = Strikes::default();
    let kick = &out.kick;
    loop {
        let frame = tokio::select! {
            () = kick.kicked() => return,
            () = sleep_until(last_heard + idle) => return kick.kick(Some(CloseCode::HeartbeatTimeout)),
            frame = stream.next() => frame,
        };
        let msg = match frame {
            None => return kick.gone(),
            Some(Err(e)) => {
                return match read_failure(&e) {
                    Some(code) => kick.kick(Some(code)),
                    None => kick.gone(),
                };
            }
            Some(Ok(msg)) => msg,
        };
        last_heard = Instant::now();
        let decoded = match data_of(&msg, out.codec) {
            Ok(Some(bytes)) => out.codec.decode_command(&bytes),
            // The client closes; its close is answered on the way out.
            Ok(None) if matches!(msg, Message::Close(_)) => return kick.kick(None),
            // A ping costs an answer: it counts like a message. A pong answers ours.
            Ok(None) if matches!(msg, Message::Pong(_)) => {
                if let Message::Pong(payload) = &msg
                    && let Ok(number) = <[u8; 8]>::try_from(payload.as_ref())
                {
                    pongs.fetch_max(u64::from_be_bytes(number), Ordering::Relaxed);
                }
                continue;
            }
            Ok(None) if matches!(msg, Message::Ping(_)) => {
                if limiter.check().is_err()
                    && strikes.strike(Instant::now(), limits.flood_strikes) == Strike::Out
                {
                    return out.close_after_queue(Some(CloseCode::Flooding));
                }
                continue;
            }
            Ok(None) => continue,
            Err(code) => return out.close_after_queue(Some(code)),
        };
        let command = match decoded {
            Err(DecodeError::Malformed(detail)) => {
                debug!(%detail, "malformed frame");
                return out.close_after_queue(Some(CloseCode::ProtocolViolation));
            }
            decoded => decoded,
        };
        if limiter.check().is_err() {
            let (kind, id) = match &command {
                Ok(Command { id, msg }) => (msg.kind().to_owned(), *id),
                Err(DecodeError::BadCommand { kind, id, .. }) => (kind.clone(), *id),
                Err(DecodeError::Malformed(_)) => (String::new(), None),
            };
            match strikes.strike(Instant::now(), limits.flood_strikes) {
                Strike::Warn => out.error(
                    ErrorCode::RateLimited,
                    format!(
                        "at most {} messages a second; this one was dropped",
                        limits.commands_per_sec
                    ),
                    Some(kind),
                    id,
                ),
                Strike::Quiet => {}
                Strike::Out => return out.close_after_queue(Some(CloseCode::Flooding)),
            }
            continue;
        }
        let command = match command {
            Ok(command) => command,
            Err(DecodeError::BadCommand { kind, detail, id }) => {
                out.error(
                    ErrorCode::BadCommand,
                    format!("bad `{kind}`: {detail}"),
                    Some(kind),
                    id,
                );
                continue;
            }
            // Closed above.
            Err(DecodeError::Malformed(_)) => continue,
        };
        node.metrics.commands_in_total.inc();
        if crate::media::is_media(&command.msg) {
            // SDP and candidates stay on this node: never through the room's log. Boxed, so
            // the channel every connection holds has small slots: few connections send media.
            if let Err(msg) = media.offer(Box::new(command.msg)) {
                out.error(
                    ErrorCode::RateLimited,
                    "too many media messages at once; this one was dropped".into(),
                    Some(msg.kind().to_owned()),
                    None,
                );
            }
            continue;
        }
        let input = RoomInput::entry(RoomEntry::Command {
            conn: conn.0,
            id: command.id,
            msg: command.msg,
        });
        // Waiting for room in the room's inbox is rare: boxed, so that the wait's future does
        // not size every connection's task.
        let sent = match room.try_send(input) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(input)) => {
                Box::pin(room.send(input)).await.map_err(drop)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(()),
        };
        if sent.is_err() {
            return kick.kick(Some(CloseCode::ServerShutdown));
        }
    }
}

/// Counts commands refused for rate within a minute: one warning a second, and out past the
/// limit.
#[derive(Default)]
struct Strikes {
    window_start: Option<Instant>,
    count: u32,
    last_warning: Option<Instant>,
}

#[derive(Debug, PartialEq, Eq)]
enum Strike {
    Warn,
    Quiet,
    Out,
}

impl Strikes {
    fn strike(&mut self, now: Instant, limit: u32) -> Strike {
        if self
            .window_start
            .is_none_or(|t| now.duration_since(t) > Duration::from_secs(60))
        {
            self.window_start = Some(now);
            self.count = 0;
        }
        self.count += 1;
        if self.count > limit {
            return Strike::Out;
        }
        if self
            .last_warning
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            self.last_warning = Some(now);
            return Strike::Warn;
        }
        Strike::Quiet
    }
}
