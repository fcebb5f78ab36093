//! A connection's way back from its room: the bounded queue of frames, the switch that ends
//! it at once, and frames encoded once for all their recipients.

use bytes::Bytes;
use protocol::{CloseCode, Codec, CommandId, ErrorCode, ServerMsg};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;
use tracing::error;

/// What a room hands a session's writer, in order.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A frame, encoded once and shared by every recipient.
    Frame(Message),
    /// Close with this code (`None`: normal closure) after the frames before it.
    Close(Option<CloseCode>),
}

/// Tells a session to end now, skipping its queue (slow client, protocol violation, …). The
/// first reason given wins.
#[derive(Debug, Default)]
pub(crate) struct Kick {
    token: CancellationToken,
    ending: OnceLock<Ending>,
}

/// How a session ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Close with this code (`None`: a normal closure, 1000, after the client's `leave` or its
    /// own close).
    Close(Option<CloseCode>),
    /// The connection is gone (closed by the network, or the client stopped taking bytes):
    /// nothing more can be said on it.
    Gone,
}

impl Kick {
    /// Ends the session with a close frame carrying `code`.
    pub(crate) fn kick(&self, code: Option<CloseCode>) {
        self.end(Ending::Close(code));
    }

    /// Ends the session without a word: its connection is gone.
    pub(crate) fn gone(&self) {
        self.end(Ending::Gone);
    }

    fn end(&self, ending: Ending) {
        let _first_reason_wins = self.ending.set(ending);
        self.token.cancel();
    }

    pub(crate) async fn kicked(&self) {
        self.token.cancelled().await;
    }

    pub(crate) fn is_kicked(&self) -> bool {
        self.token.is_cancelled()
    }

    /// How the session ends, once kicked (gone, if it never was).
    pub(crate) fn ending(&self) -> Ending {
        self.ending.get().copied().unwrap_or(Ending::Gone)
    }
}

/// A session's way back: its bounded queue, its kick switch and its encoding.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    pub(crate) tx: mpsc::Sender<Outgoing>,
    pub(crate) kick: Arc<Kick>,
    pub(crate) codec: Codec,
    /// Cancelled once the welcome (and the media settings after it) are queued: the session's
    /// media loop says nothing before.
    pub(crate) welcomed: CancellationToken,
    /// When the oldest frame the writer has not taken yet was queued: how long frames wait is
    /// measured per write batch, not per frame (no time kept in the queue's slots).
    pub(crate) queued: Arc<QueuedSince>,
}

impl Outbox {
    /// Queues a frame without waiting (a full queue gives it back), noting `at` as its time
    /// if the writer has taken everything queued before it.
    pub(crate) fn queue(
        &self,
        frame: Message,
        at: QueueTime,
    ) -> Result<(), TrySendError<Outgoing>> {
        // Noted before the frame is in the queue: the writer, once it holds the frame, finds it.
        self.queued.note(at);
        self.tx.try_send(Outgoing::Frame(frame))
    }

    /// Queues a message to this connection alone, in order with the rest of what it is sent.
    /// A full queue means the client does not read: it is cut off like any slow consumer.
    pub(crate) fn send(&self, msg: &ServerMsg) {
        // Only a bug fails to encode (logged by `encode`).
        let Some(frame) = encode(msg, self.codec) else {
            return;
        };
        if self.queue(frame, QueueTime::now()).is_err() && !self.kick.is_kicked() {
            self.kick.kick(Some(CloseCode::SlowConsumer));
        }
    }

    /// Queues an error to this connection alone: what went wrong (`code`, `message`), for
    /// which command (its kind and the client's number for it, when known).
    pub(crate) fn error(
        &self,
        code: ErrorCode,
        message: String,
        command: Option<String>,
        id: Option<CommandId>,
    ) {
        self.send(&ServerMsg::Error {
            code,
            message,
            command,
            id,
        });
    }

    /// A JSON connection's outbox, with the receiving end of its queue.
    #[cfg(test)]
    pub(crate) fn for_test(capacity: usize) -> (Self, mpsc::Receiver<Outgoing>) {
        let (tx, rx) = mpsc::channel(capacity);
        let out = Self {
            tx,
            kick: Arc::new(Kick::default()),
            codec: Codec::Json,
            welcomed: CancellationToken::new(),
            queued: Arc::default(),
        };
        (out, rx)
    }
}

/// A moment on the queues' clock (one reading serves every recipient of a frame).
#[derive(Clone, Copy, Debug)]
pub(crate) struct QueueTime(u64);

impl QueueTime {
    pub(crate) fn now() -> Self {
        static ORIGIN: LazyLock<Instant> = LazyLock::new(Instant::now);
        // Nanoseconds since the first reading, from 1: 0 is "nothing queued".
        let nanos = u64::try_from(ORIGIN.elapsed().as_nanos()).unwrap_or(u64::MAX);
        Self(nanos.max(1))
    }

    /// How long ago this was.
    pub(crate) fn elapsed(self) -> Duration {
        Duration::from_nanos(Self::now().0.saturating_sub(self.0))
    }
}

/// The queue time of the oldest frame a session's writer has not taken, shared by whoever
/// queues frames and the writer. Exact but for a frame queued in the instant between the
/// writer's last look into the queue and its [`take`](Self::take): that frame's batch is not
/// measured, or measured from a later frame.
#[derive(Debug, Default)]
pub(crate) struct QueuedSince(AtomicU64);

impl QueuedSince {
    fn note(&self, at: QueueTime) {
        if self.0.load(Ordering::Relaxed) == 0 {
            let _already_noted =
                self.0
                    .compare_exchange(0, at.0, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// When the oldest frame of the batch the writer has just taken was queued. With
    /// `emptied` (the batch took everything queued) the time is cleared for the frames after;
    /// otherwise it stays, and the frames left behind are measured from it too (an upper
    /// bound: they were queued no earlier).
    pub(crate) fn take(&self, emptied: bool) -> Option<QueueTime> {
        let at = if emptied {
            self.0.swap(0, Ordering::Relaxed)
        } else {
            self.0.load(Ordering::Relaxed)
        };
        (at != 0).then_some(QueueTime(at))
    }
}

/// A server message encoded at most once per codec, whatever the number of recipients.
pub(crate) struct Frames<'a> {
    msg: &'a ServerMsg,
    msgpack: Option<Message>,
    json: Option<Message>,
}

impl<'a> Frames<'a> {
    pub(crate) fn new(msg: &'a ServerMsg) -> Self {
        Self {
            msg,
            msgpack: None,
            json: None,
        }
    }

    pub(crate) fn get(&mut self, codec: Codec) -> Option<Message> {
        let slot = match codec {
            Codec::MsgPack => &mut self.msgpack,
            Codec::Json => &mut self.json,
        };
        if slot.is_none() {
            *slot = Some(encode(self.msg, codec)?);
        }
        slot.clone()
    }
}

/// Encodes a server message as a frame of its codec's type.
pub(crate) fn encode(msg: &ServerMsg, codec: Codec) -> Option<Message> {
    match codec.encode_server(msg) {
        Ok(bytes) if codec.is_binary() => Some(Message::Binary(Bytes::from(bytes))),
        // serde_json writes UTF-8 only.
        Ok(bytes) => String::from_utf8(bytes)
            .ok()
            .map(|s| Message::Text(Utf8Bytes::from(s))),
        Err(e) => {
            error!(error = %e, "a server message failed to encode");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(out: &Outbox) -> QueueTime {
        let at = QueueTime::now();
        out.queue(Message::text("hi"), at)
            .expect("room in the queue");
        at
    }

    fn taken(out: &Outbox, emptied: bool) -> Option<u64> {
        out.queued.take(emptied).map(|at| at.0)
    }

    #[test]
    fn a_batch_is_timed_from_its_oldest_frame_and_the_next_from_its_own() {
        let (out, mut rx) = Outbox::for_test(8);
        let oldest = queue(&out);
        queue(&out);
        while rx.try_recv().is_ok() {}
        assert_eq!(taken(&out, true), Some(oldest.0));
        // Nothing queued since: nothing to time.
        assert_eq!(taken(&out, true), None);
        let next = queue(&out);
        assert!(next.0 >= oldest.0);
        assert_eq!(taken(&out, true), Some(next.0));
    }

    #[test]
    fn frames_left_behind_by_a_full_batch_are_timed_from_the_same_oldest_frame() {
        let (out, mut rx) = Outbox::for_test(8);
        let oldest = queue(&out);
        queue(&out);
        let _ = rx.try_recv();
        assert_eq!(taken(&out, false), Some(oldest.0));
        let _ = rx.try_recv();
        assert_eq!(taken(&out, true), Some(oldest.0));
        assert_eq!(taken(&out, true), None);
    }

    #[test]
    fn a_wait_is_measured_on_a_clock_that_does_not_go_back() {
        let at = QueueTime::now();
        assert!(at.0 >= 1);
        assert!(QueueTime::now().0 >= at.0);
        assert!(at.elapsed() < Duration::from_secs(60));
    }
}
