//! One client connection: reads the `hello`, checks the ticket, joins the room, then runs a
//! reader (client → room) and a writer (room → client) side by side until either ends.

use crate::gate::model::{Lecture, LectureStatus};
use crate::node::{Metrics, Node};
use crate::room::{ConnId, Identity};
use crate::room_task::{Kick, Outbox, Outgoing, RoomInput, encode};
use crate::ticket::TicketError;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use governor::{Quota, RateLimiter};
use protocol::{
    ClientMsg, CloseCode, Codec, DecodeError, ErrorCode, ResumeFrom, ServerMsg, UnixMillis,
};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout};
use tracing::{Instrument, debug, info, info_span};

pub(crate) type Sink = SplitSink<WebSocket, Message>;
pub(crate) type Stream = SplitStream<WebSocket>;

/// Most frames written before one flush.
const MAX_BATCH: usize = 64;
/// How long a closing connection waits for the client's close reply before dropping it.
pub(crate) const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Runs one room connection to its end.
pub(crate) async fn run(node: Arc<Node>, socket: WebSocket, codec: Codec, lecture: Lecture) {
    let conn = ConnId(node.next_conn_id());
    let span = info_span!("conn", id = conn.0, lecture = %lecture.id);
    Metrics::add(&node.metrics.connections_active, 1);
    Metrics::add(&node.metrics.connections_total, 1);
    session(&node, socket, codec, lecture, conn)
        .instrument(span)
        .await;
    Metrics::sub(&node.metrics.connections_active, 1);
}

async fn session(
    node: &Arc<Node>,
    socket: WebSocket,
    codec: Codec,
    lecture: Lecture,
    conn: ConnId,
) {
    let (sink, mut stream) = socket.split();
    let hello_timeout = Duration::from_millis(node.config.limits.hello_timeout_ms);
    let hello = tokio::select! {
        hello = timeout(hello_timeout, read_hello(&mut stream, codec)) => hello,
        () = node.shutdown.cancelled() => return close_early(sink, stream, CloseCode::ServerShutdown).await,
    };
    let (ticket, resume) = match hello {
        Ok(Ok(hello)) => hello,
        Ok(Err(None)) => return,
        Ok(Err(Some(code))) => return close_early(sink, stream, code).await,
        Err(_) => return close_early(sink, stream, CloseCode::HelloTimeout).await,
    };
    let claims = match node.config.ticket_key.verify(&ticket, node.clock.now()) {
        Ok(claims) if claims.lec.as_str() == lecture.id => claims,
        Ok(_) => return close_early(sink, stream, CloseCode::TicketWrongLecture).await,
        Err(TicketError::Expired) => {
            return close_early(sink, stream, CloseCode::TicketExpired).await;
        }
        Err(TicketError::Invalid) => {
            return close_early(sink, stream, CloseCode::TicketInvalid).await;
        }
    };
    info!(
        role = claims.role.as_str(),
        resume = resume.is_some(),
        "entering"
    );
    debug!(user = %claims.sub, nickname = %claims.nick, "ticket holder");
    if lecture.status == LectureStatus::Cancelled {
        return close_early(sink, stream, CloseCode::LectureCancelled).await;
    }
    if lecture.ended_at.is_some() {
        return close_early(sink, stream, CloseCode::LectureEnded).await;
    }
    if let Some(code) = node.gate.entry_refusal(&claims).await {
        return close_early(sink, stream, code).await;
    }
    let who = Identity {
        user: claims.sub,
        nickname: claims.nick,
        role: claims.role,
        issued_at: UnixMillis(claims.iat.saturating_mul(1000)),
    };
    let spec = lecture.spec();

    let (tx, rx) = mpsc::channel(node.config.limits.outbound_queue);
    let out = Outbox {
        tx,
        kick: Arc::new(Kick::default()),
        codec,
        welcomed: tokio_util::sync::CancellationToken::new(),
    };
    let role = who.role;
    let join = |out: Outbox| RoomInput::Join {
        conn,
        who: who.clone(),
        resume,
        out,
    };
    // A room that stopped between lookup and join is started afresh on the second try.
    let mut room = None;
    for _ in 0..2 {
        match node.room_inbox(&spec) {
            Ok((inbox, media)) if inbox.send(join(out.clone())).await.is_ok() => {
                room = Some((inbox, media));
                break;
            }
            Ok(_) => continue,
            Err(code) => return close_early(sink, stream, code).await,
        }
    }
    let Some((room, media)) = room else {
        return close_early(sink, stream, CloseCode::ServerShutdown).await;
    };

    let (media_tx, media_rx) = mpsc::channel(crate::media::MEDIA_QUEUE);
    let writer = write_loop(node, sink, rx, Arc::clone(&out.kick));
    let reader = read_loop(node, stream, conn, &out, &room, media_tx);
    let media = crate::media::run_session(&media, conn, role, &out, media_rx);
    tokio::join!(writer, reader, media);
    // The room may be gone already (lecture over); then there is nobody to tell.
    let _ = room.send(RoomInput::Disconnected { conn }).await;
    debug!(code = ?out.kick.code(), "connection closed");
}

/// Reads frames until the `hello`. `Err(None)`: the client went away; `Err(Some(code))`: it
/// must be closed with `code`.
async fn read_hello(
    stream: &mut Stream,
    codec: Codec,
) -> Result<(String, Option<ResumeFrom>), Option<CloseCode>> {
    loop {
        let bytes = match stream.next().await {
            None | Some(Err(_)) => return Err(None),
            Some(Ok(msg)) => match data_of(&msg, codec) {
                Ok(Some(bytes)) => bytes,
                Ok(None) if matches!(msg, Message::Close(_)) => return Err(None),
                Ok(None) => continue,
                Err(code) => return Err(Some(code)),
            },
        };
        return match codec.decode_client(&bytes) {
            Ok(ClientMsg::Hello { ticket, resume }) => Ok((ticket, resume)),
            _ => Err(Some(CloseCode::ProtocolViolation)),
        };
    }
}

/// The payload of a data frame of the codec's type; `None` for control frames; a protocol
/// violation for a data frame of the other type (text on the MessagePack subprotocol, …).
pub(crate) fn data_of(msg: &Message, codec: Codec) -> Result<Option<bytes::Bytes>, CloseCode> {
    match (msg, codec.is_binary()) {
        (Message::Binary(b), true) => Ok(Some(b.clone())),
        (Message::Text(t), false) => Ok(Some(bytes::Bytes::copy_from_slice(t.as_str().as_bytes()))),
        (Message::Binary(_) | Message::Text(_), _) => Err(CloseCode::ProtocolViolation),
        (Message::Ping(_) | Message::Pong(_) | Message::Close(_), _) => Ok(None),
    }
}

pub(crate) fn close_frame(code: Option<CloseCode>) -> Message {
    let frame = match code {
        Some(code) => CloseFrame {
            code: code.code(),
            reason: code.reason().into(),
        },
        None => CloseFrame {
            code: 1000,
            reason: "bye".into(),
        },
    };
    Message::Close(Some(frame))
}

/// Closes a connection that never joined a room.
async fn close_early(mut sink: Sink, stream: Stream, code: CloseCode) {
    info!(code = code.code(), reason = code.reason(), "refused");
    let _ = timeout(CLOSE_LINGER, sink.send(close_frame(Some(code)))).await;
    linger(stream).await;
}

/// Waits (briefly) for the client to answer our close, so the close frame is read before the
/// socket goes away.
pub(crate) async fn linger(mut stream: Stream) {
    let _ = timeout(CLOSE_LINGER, async {
        while let Some(Ok(msg)) = stream.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Room → client: writes what is queued, flushing once per batch; pings; closes when the room
/// says so, when kicked, or when the node shuts down.
async fn write_loop(
    node: &Node,
    mut sink: Sink,
    mut rx: mpsc::Receiver<Outgoing>,
    kick: Arc<Kick>,
) {
    let mut ping =
        tokio::time::interval(Duration::from_millis(node.config.limits.ping_interval_ms));
    ping.tick().await;
    let close: Option<Option<CloseCode>> = loop {
        tokio::select! {
            biased;
            () = kick.kicked() => break Some(kick.code()),
            () = node.shutdown.cancelled() => break Some(Some(CloseCode::ServerShutdown)),
            item = rx.recv() => match item {
                None => break Some(Some(CloseCode::ServerShutdown)),
                Some(Outgoing::Close(code)) => break Some(code),
                Some(Outgoing::Frame(first)) => {
                    let written = tokio::select! {
                        biased;
                        () = kick.kicked() => break Some(kick.code()),
                        r = write_batch(&mut sink, first, &mut rx) => r,
                    };
                    match written {
                        Ok(None) => {}
                        Ok(Some(code)) => break Some(code),
                        Err(()) => break None,
                    }
                }
            },
            _ = ping.tick() => {
                let pinged = tokio::select! {
                    () = kick.kicked() => break Some(kick.code()),
                    r = sink.send(Message::Ping(bytes::Bytes::new())) => r,
                };
                if pinged.is_err() {
                    break None;
                }
            }
        }
    };
    if let Some(code) = close {
        // A client that stopped reading may never take the close frame: bounded.
        let _ = timeout(CLOSE_LINGER, sink.send(close_frame(code))).await;
    }
    kick.kick(close.flatten());
}

/// Feeds `first` and whatever else is queued (up to a batch), then flushes once. Returns a
/// close found in the queue, or `Err` when the socket failed.
async fn write_batch(
    sink: &mut Sink,
    first: Message,
    rx: &mut mpsc::Receiver<Outgoing>,
) -> Result<Option<Option<CloseCode>>, ()> {
    sink.feed(first).await.map_err(drop)?;
    let mut close = None;
    for _ in 1..MAX_BATCH {
        match rx.try_recv() {
            Ok(Outgoing::Frame(msg)) => sink.feed(msg).await.map_err(drop)?,
            Ok(Outgoing::Close(code)) => {
                close = Some(code);
                break;
            }
            Err(_) => break,
        }
    }
    sink.flush().await.map_err(drop)?;
    Ok(close)
}

/// Client → room: decodes frames, applies the rate limit, forwards commands; watches for
/// silence and abuse.
async fn read_loop(
    node: &Node,
    mut stream: Stream,
    conn: ConnId,
    out: &Outbox,
    room: &mpsc::Sender<RoomInput>,
    media: mpsc::Sender<Box<ClientMsg>>,
) {
    let limits = &node.config.limits;
    let quota =
        Quota::per_second(NonZeroU32::new(limits.commands_per_sec).unwrap_or(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(limits.command_burst).unwrap_or(NonZeroU32::MIN));
    let limiter = RateLimiter::direct(quota);
    let idle = Duration::from_millis(limits.idle_timeout_ms);
    let mut last_heard = Instant::now();
    let mut strikes = Strikes::default();
    let kick = &out.kick;
    let mut read_failed = false;
    // The close this reader asked for through the queue, if any.
    let mut closing = None;
    loop {
        let frame = tokio::select! {
            () = kick.kicked() => break,
            () = sleep_until(last_heard + idle) => {
                kick.kick(Some(CloseCode::HeartbeatTimeout));
                break;
            }
            frame = stream.next() => frame,
        };
        let msg = match frame {
            None => {
                kick.kick(None);
                read_failed = true;
                break;
            }
            Some(Err(e)) => {
                read_failed = true;
                closing = is_too_big(e).then_some(CloseCode::MessageTooBig);
                close_after_queue(out, closing);
                break;
            }
            Some(Ok(msg)) => msg,
        };
        last_heard = Instant::now();
        let bytes = match data_of(&msg, out.codec) {
            Ok(Some(bytes)) => bytes,
            Ok(None) if matches!(msg, Message::Close(_)) => {
                // The client closes; the socket answers its close by itself.
                kick.kick(None);
                read_failed = true;
                break;
            }
            Ok(None) => continue,
            Err(code) => {
                closing = Some(code);
                close_after_queue(out, closing);
                break;
            }
        };
        let msg = match out.codec.decode_client(&bytes) {
            Ok(msg) => msg,
            Err(DecodeError::Malformed(detail)) => {
                debug!(%detail, "malformed frame");
                closing = Some(CloseCode::ProtocolViolation);
                close_after_queue(out, closing);
                break;
            }
            Err(DecodeError::BadCommand { kind, detail }) => {
                reply_error(
                    out,
                    ErrorCode::BadCommand,
                    format!("bad `{kind}`: {detail}"),
                    Some(kind),
                );
                continue;
            }
        };
        if limiter.check().is_err() {
            match strikes.strike(Instant::now(), limits.flood_strikes) {
                Strike::Warn => reply_error(
                    out,
                    ErrorCode::RateLimited,
                    format!(
                        "at most {} messages a second; this one was dropped",
                        limits.commands_per_sec
                    ),
                    Some(msg.kind().to_owned()),
                ),
                Strike::Quiet => {}
                Strike::Out => {
                    closing = Some(CloseCode::Flooding);
                    close_after_queue(out, closing);
                    break;
                }
            }
            continue;
        }
        Metrics::add(&node.metrics.commands_in_total, 1);
        if crate::media::is_media(&msg) {
            // SDP and candidates stay on this node: never through the room's log. Boxed, so
            // the channel every connection holds has small slots: few connections send media.
            if let Err(mpsc::error::TrySendError::Full(msg)) = media.try_send(Box::new(msg)) {
                reply_error(
                    out,
                    ErrorCode::RateLimited,
                    "too many media messages at once; this one was dropped".into(),
                    Some(msg.kind().to_owned()),
                );
            }
            continue;
        }
        if room.send(RoomInput::Command { conn, msg }).await.is_err() {
            kick.kick(Some(CloseCode::ServerShutdown));
            break;
        }
    }
    if !read_failed {
        linger(stream).await;
    }
    // A writer still stuck on a client that does not read stops now.
    kick.kick(closing);
}

/// Whether a read failed because the client sent more than the size limit.
pub(crate) fn is_too_big(e: axum::Error) -> bool {
    matches!(
        e.into_inner().downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Capacity(_))
    )
}

/// Closes with `code` once what is already queued (an error reply, say) has gone out; at once
/// if the queue is full.
fn close_after_queue(out: &Outbox, code: Option<CloseCode>) {
    if out.tx.try_send(Outgoing::Close(code)).is_err() {
        out.kick.kick(code);
    }
}

/// Sends an error to this connection only, through its own queue so it stays in order.
fn reply_error(out: &Outbox, code: ErrorCode, message: String, command: Option<String>) {
    if let Some(frame) = encode(
        &ServerMsg::Error {
            code,
            message,
            command,
        },
        out.codec,
    ) {
        // A full queue means the client is not reading; the room will kick it.
        let _ = out.tx.try_send(Outgoing::Frame(frame));
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
