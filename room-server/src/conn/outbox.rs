//! A connection's way back from its room: the bounded queue of frames, the switch that ends
//! it at once, and frames encoded once for all their recipients.

use super::signal::Signal;
use super::ws::{Frame, try_write_now};
use bytes::Bytes;
use protocol::{CloseCode, Codec, CommandId, ErrorCode, ServerMsg};
use smallvec::SmallVec;
use std::num::NonZeroU64;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tracing::error;

/// The queue is full: the client does not read what it is sent.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Full;

/// What became of a frame handed to a connection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Written to its socket there and then (one `write`).
    Written,
    /// Queued for the connection's writer (or dropped after a close already queued).
    Queued,
}

/// Tells a session to end now, skipping its queue (slow client, protocol violation, …). The
/// first reason given wins. Anyone may kick; only the session's own task waits for it (see
/// [`Signal`]).
#[derive(Debug, Default)]
pub(crate) struct Kick {
    signal: Signal,
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
        self.signal.raise();
    }

    pub(crate) async fn kicked(&self) {
        self.signal.raised().await;
    }

    pub(crate) fn is_kicked(&self) -> bool {
        self.signal.is_raised()
    }

    /// How the session ends, once kicked (gone, if it never was).
    pub(crate) fn ending(&self) -> Ending {
        self.ending.get().copied().unwrap_or(Ending::Gone)
    }
}

/// A session's way back: its bounded queue, its kick switch and its encoding.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    pub(crate) queue: Arc<OutQueue>,
    pub(crate) kick: Arc<Kick>,
    pub(crate) codec: Codec,
    /// Raised once the welcome (and the media settings after it) are queued: the session's
    /// media loop says nothing before.
    pub(crate) welcomed: Arc<Signal>,
}

impl Outbox {
    /// A new connection's outbox, queueing at most `capacity` frames; a connection written to
    /// less than `coalesce` ago queues what comes, for its writer to send in one batch.
    pub(crate) fn new(capacity: usize, coalesce: Duration, codec: Codec) -> Self {
        Self {
            queue: Arc::new(OutQueue::new(capacity, coalesce)),
            kick: Arc::new(Kick::default()),
            codec,
            welcomed: Arc::default(),
        }
    }

    /// Sends a frame without waiting, `at` being when it was made (and now enough for the
    /// coalescing): straight to the socket if the connection is idle and its socket takes it,
    /// otherwise queued for its writer (a full queue refuses it).
    pub(crate) fn queue(&self, frame: &Frame, at: QueueTime) -> Result<Sent, Full> {
        self.queue.push(frame, at, true)
    }

    /// Queues a frame for the connection's writer, never writing it here (a full queue
    /// refuses it).
    pub(crate) fn enqueue(&self, frame: &Frame, at: QueueTime) -> Result<Sent, Full> {
        self.queue.push(frame, at, false)
    }

    /// Queues a message to this connection alone, in order with the rest of what it is sent.
    /// A full queue means the client does not read: it is cut off like any slow consumer.
    pub(crate) fn send(&self, msg: &ServerMsg) {
        // Only a bug fails to encode (logged by `encode`).
        let Some(frame) = encode(msg, self.codec) else {
            return;
        };
        if self.queue(&frame, QueueTime::now()).is_err() && !self.kick.is_kicked() {
            self.kick.kick(Some(CloseCode::SlowConsumer));
        }
    }

    /// Asks the writer to close with `code` after what is queued; at once if the queue is full.
    pub(crate) fn close_after_queue(&self, code: Option<CloseCode>) {
        if self.queue.close(code).is_err() {
            self.kick.kick(code);
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

    /// A JSON connection's outbox.
    #[cfg(test)]
    pub(crate) fn for_test(capacity: usize) -> Self {
        Self::new(capacity, Duration::ZERO, Codec::Json)
    }
}

/// A connection's queue of frames from its room (and its own session), bounded, taken by its
/// writer in batches. It holds no memory of its own while it holds at most one frame, and a
/// burst's memory is given back once it is written.
///
/// **Written at once.** Most frames never wait in it. A connection gets a frame now and then;
/// when nothing is queued, its writer is not writing, and its last write is older than the
/// coalescing moment, whoever hands it a frame (its room, mostly) writes the frame to the
/// socket there and then, without waiting: one `write`, and no wake-up of the connection's
/// task, which was most of a delivery's cost in user space. A socket that takes only part of
/// the frame, or none (its buffer is full), leaves the rest queued for the writer, which
/// waits for the client as always (and gives up on one that stopped reading). Frames are
/// written whole and in order: only one side writes at a time, each under this queue's lock
/// or its `writing` mark.
#[derive(Debug)]
pub(crate) struct OutQueue {
    state: Mutex<QueueState>,
    /// Something was queued into an empty queue (the writer waits for it).
    ready: Signal,
    capacity: usize,
    /// Nanoseconds after a write during which frames wait to leave together.
    coalesce: u64,
}

/// The frames one write takes without an allocation of their own.
type Queued = SmallVec<[Frame; 1]>;

#[derive(Debug, Default)]
struct QueueState {
    frames: Queued,
    /// A close after the frames (`Some(None)`: a normal closure). Frames queued after it are
    /// never sent.
    close: Option<Option<CloseCode>>,
    /// When the oldest frame still queued was queued.
    oldest: Option<QueueTime>,
    /// The socket, while frames may be written to it at once (from the session's start to
    /// its end).
    socket: Option<Arc<TcpStream>>,
    /// The writer is writing (a batch, a ping): nobody else writes.
    writing: bool,
    /// When the socket was last written to (a [`QueueTime`]; 0: never).
    last_write: u64,
}

impl QueueState {
    fn is_empty(&self) -> bool {
        self.frames.is_empty() && self.close.is_none()
    }
}

/// What a writer takes from its queue at once.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// The frames, in order.
    pub(crate) frames: Queued,
    /// A close after them (`Some(None)`: a normal closure).
    pub(crate) close: Option<Option<CloseCode>>,
    /// When the oldest frame of the batch was queued.
    pub(crate) oldest: Option<QueueTime>,
}

impl OutQueue {
    fn new(capacity: usize, coalesce: Duration) -> Self {
        Self {
            state: Mutex::default(),
            ready: Signal::default(),
            capacity,
            coalesce: u64::try_from(coalesce.as_nanos()).unwrap_or(u64::MAX),
        }
    }

    fn push(&self, frame: &Frame, at: QueueTime, direct: bool) -> Result<Sent, Full> {
        let Ok(mut state) = self.state.lock() else {
            return Err(Full);
        };
        if state.close.is_some() {
            // The connection closes after what came before: this would never be sent.
            return Ok(Sent::Queued);
        }
        let mut rest = None;
        if direct
            && state.is_empty()
            && !state.writing
            && at.nanos().saturating_sub(state.last_write) >= self.coalesce
            && let Some(socket) = &state.socket
        {
            match try_write_now(socket, frame) {
                Ok((written, total)) if written == total => {
                    state.last_write = at.nanos();
                    return Ok(Sent::Written);
                }
                // The socket's buffer is full: the writer waits for the client.
                Ok((0, _)) => {}
                Ok((written, _)) => {
                    state.last_write = at.nanos();
                    rest = Some(frame.rest(written));
                }
                // The writer meets the failure too, and ends the session.
                Err(_) => state.socket = None,
            }
        }
        if state.frames.len() >= self.capacity {
            return Err(Full);
        }
        let was_empty = state.is_empty();
        if was_empty {
            state.oldest = Some(at);
        }
        state.frames.push(rest.unwrap_or_else(|| frame.clone()));
        drop(state);
        if was_empty {
            self.ready.raise();
        }
        Ok(Sent::Queued)
    }

    /// Lets frames be written straight to `socket` while nothing is queued (from the start
    /// of the session's writer).
    pub(crate) fn attach(&self, socket: Arc<TcpStream>) {
        if let Ok(mut state) = self.state.lock() {
            state.socket = Some(socket);
        }
    }

    /// Stops every write but the writer's own: from now on frames only queue. Once this
    /// returns, no write of another's is under way (the session's close frame comes next).
    pub(crate) fn detach(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.socket = None;
            state.writing = true;
        }
    }

    /// The writer is about to write something of its own (a ping, a pong): nobody else writes
    /// until [`OutQueue::written`].
    pub(crate) fn claim(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.writing = true;
        }
    }

    /// The writer has written what it took (or claimed): others may write again.
    pub(crate) fn written(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.writing = false;
            state.last_write = QueueTime::now().nanos();
        }
    }

    /// How long the writer waits before taking a batch: what is left of the coalescing moment
    /// since the last write (none for a connection quiet for longer).
    pub(crate) fn coalescing(&self) -> Option<Duration> {
        let last = self.state.lock().ok()?.last_write;
        let since = QueueTime::now().nanos().saturating_sub(last);
        (last > 0 && since < self.coalesce).then(|| Duration::from_nanos(self.coalesce - since))
    }

    /// Queues a close after the frames queued; refused when the queue is full.
    fn close(&self, code: Option<CloseCode>) -> Result<(), Full> {
        let Ok(mut state) = self.state.lock() else {
            return Err(Full);
        };
        if state.frames.len() >= self.capacity {
            return Err(Full);
        }
        let was_empty = state.is_empty();
        if state.close.is_none() {
            state.close = Some(code);
        }
        drop(state);
        if was_empty {
            self.ready.raise();
        }
        Ok(())
    }

    /// Waits until something is queued (at once if something is).
    pub(crate) async fn ready(&self) {
        self.ready.take().await;
    }

    /// Takes up to `max` frames, and the close once every frame before it is taken. Whatever
    /// is left for the next batch keeps the queue ready.
    pub(crate) fn take(&self, max: usize) -> Batch {
        let Ok(mut state) = self.state.lock() else {
            return Batch::default();
        };
        // Until `written`: the batch is the writer's to write.
        state.writing = true;
        let mut batch = Batch {
            oldest: state.oldest,
            ..Batch::default()
        };
        if state.frames.len() <= max {
            // The queue's memory, if it needed any, goes with the batch and is given back
            // once written.
            batch.frames = std::mem::take(&mut state.frames);
            batch.close = state.close.take();
            state.oldest = None;
        } else {
            batch.frames = state.frames.drain(..max).collect();
            // The frames left behind are timed from the same moment (an upper bound: they
            // were queued no earlier), and the writer comes back for them.
            drop(state);
            self.ready.raise();
        }
        batch
    }
}

/// A moment on the queues' clock (one reading serves every recipient of a frame). Never zero,
/// so that `Option<QueueTime>` takes no more room than the time itself.
#[derive(Clone, Copy, Debug)]
pub(crate) struct QueueTime(NonZeroU64);

impl QueueTime {
    pub(crate) fn now() -> Self {
        static ORIGIN: LazyLock<Instant> = LazyLock::new(Instant::now);
        // Nanoseconds since the first reading, from 1.
        let nanos = u64::try_from(ORIGIN.elapsed().as_nanos()).unwrap_or(u64::MAX);
        Self(NonZeroU64::new(nanos).unwrap_or(NonZeroU64::MIN))
    }

    /// Nanoseconds since the clock's origin.
    pub(crate) fn nanos(self) -> u64 {
        self.0.get()
    }

    /// How long ago this was.
    pub(crate) fn elapsed(self) -> Duration {
        Duration::from_nanos(Self::now().nanos().saturating_sub(self.nanos()))
    }
}

/// A server message encoded at most once per codec, whatever the number of recipients.
pub(crate) struct Frames<'a> {
    msg: &'a ServerMsg,
    msgpack: Option<Frame>,
    json: Option<Frame>,
}

impl<'a> Frames<'a> {
    pub(crate) fn new(msg: &'a ServerMsg) -> Self {
        Self {
            msg,
            msgpack: None,
            json: None,
        }
    }

    pub(crate) fn get(&mut self, codec: Codec) -> Option<&Frame> {
        let slot = match codec {
            Codec::MsgPack => &mut self.msgpack,
            Codec::Json => &mut self.json,
        };
        if slot.is_none() {
            *slot = Some(encode(self.msg, codec)?);
        }
        slot.as_ref()
    }
}

/// Encodes a server message as a frame of its codec's type.
pub(crate) fn encode(msg: &ServerMsg, codec: Codec) -> Option<Frame> {
    match codec.encode_server(msg) {
        Ok(bytes) if codec.is_binary() => Some(Frame::binary(Bytes::from(bytes))),
        // serde_json writes UTF-8 only.
        Ok(bytes) => String::from_utf8(bytes).ok().map(Frame::text),
        Err(e) => {
            error!(error = %e, "a server message failed to encode");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> Frame {
        Frame::text(text.into())
    }

    fn texts(batch: &Batch) -> Vec<String> {
        batch
            .frames
            .iter()
            .map(|f| String::from_utf8_lossy(f.payload()).into_owned())
            .collect()
    }

    #[test]
    fn a_batch_is_timed_from_its_oldest_frame_and_the_next_from_its_own() {
        let out = Outbox::for_test(8);
        let oldest = QueueTime::now();
        out.queue(&frame("a"), oldest).expect("room");
        out.queue(&frame("b"), QueueTime::now()).expect("room");
        let batch = out.queue.take(64);
        assert_eq!(texts(&batch), ["a", "b"]);
        assert_eq!(batch.oldest.map(QueueTime::nanos), Some(oldest.nanos()));
        // The queue's memory went with the batch: an idle connection holds none.
        let spilled = out.queue.state.lock().map(|s| s.frames.spilled());
        assert_eq!(spilled.ok(), Some(false));
        // Nothing queued since: nothing to time.
        assert!(out.queue.take(64).oldest.is_none());
        let next = QueueTime::now();
        out.queue(&frame("c"), next).expect("room");
        assert_eq!(
            out.queue.take(64).oldest.map(QueueTime::nanos),
            Some(next.nanos())
        );
    }

    #[test]
    fn frames_left_behind_by_a_full_batch_are_timed_from_the_same_oldest_frame() {
        let out = Outbox::for_test(8);
        let oldest = QueueTime::now();
        for text in ["a", "b", "c"] {
            out.queue(&frame(text), oldest).expect("room");
        }
        let first = out.queue.take(2);
        assert_eq!(texts(&first), ["a", "b"]);
        let rest = out.queue.take(2);
        assert_eq!(texts(&rest), ["c"]);
        assert_eq!(rest.oldest.map(QueueTime::nanos), Some(oldest.nanos()));
    }

    #[test]
    fn a_full_queue_refuses_and_a_close_ends_a_batch() {
        let out = Outbox::for_test(2);
        out.queue(&frame("a"), QueueTime::now()).expect("room");
        out.close_after_queue(Some(CloseCode::ResyncRequired));
        // What comes after the close is never sent (and is no reason to cut the client off).
        assert_eq!(out.queue(&frame("b"), QueueTime::now()), Ok(Sent::Queued));
        let batch = out.queue.take(64);
        assert_eq!(texts(&batch), ["a"]);
        assert_eq!(batch.close, Some(Some(CloseCode::ResyncRequired)));
        assert!(!out.kick.is_kicked());
        // A close that finds the queue full ends the connection at once.
        let full = Outbox::for_test(1);
        full.queue(&frame("a"), QueueTime::now()).expect("room");
        full.close_after_queue(Some(CloseCode::ResyncRequired));
        assert!(full.kick.is_kicked());
    }

    #[tokio::test]
    async fn the_writer_is_woken_once_per_batch_and_comes_back_for_what_is_left() {
        let out = Outbox::for_test(8);
        for text in ["a", "b", "c"] {
            out.queue(&frame(text), QueueTime::now()).expect("room");
        }
        let ready = |q: &OutQueue| futures_util::FutureExt::now_or_never(q.ready()).is_some();
        assert!(ready(&out.queue));
        assert_eq!(out.queue.take(2).frames.len(), 2);
        assert!(ready(&out.queue), "one frame is left");
        assert_eq!(out.queue.take(2).frames.len(), 1);
        assert!(!ready(&out.queue), "nothing is left");
    }

    #[tokio::test]
    async fn an_idle_connection_is_written_to_at_once_and_a_full_one_gets_the_rest_whole_and_in_order()
     {
        use futures_util::StreamExt;
        let (_reader, mut writer, mut client) =
            super::super::ws::tests::pair_with(Some(16 * 1024)).await;
        let out = Outbox::for_test(4096);
        // Before the session attaches its socket, everything queues.
        assert_eq!(
            out.queue(&frame("queued"), QueueTime::now()),
            Ok(Sent::Queued)
        );
        out.queue.ready().await;
        let batch = out.queue.take(64);
        writer.send(&batch.frames).await.expect("written");
        out.queue.written();
        out.queue.attach(writer.socket());
        assert_eq!(
            out.queue(&frame("at once"), QueueTime::now()),
            Ok(Sent::Written)
        );
        // … and its writer is not woken.
        assert!(futures_util::FutureExt::now_or_never(out.queue.ready()).is_none());
        // While the writer writes (a ping, say), nobody else does.
        out.queue.claim();
        assert_eq!(
            out.queue(&frame("behind"), QueueTime::now()),
            Ok(Sent::Queued)
        );
        let batch = out.queue.take(64);
        writer.send(&batch.frames).await.expect("written");
        out.queue.written();
        // A client that does not read: its socket takes part of a frame, then nothing; the
        // rest waits for the writer.
        let big: Vec<String> = (0..40).map(|i| format!("{i:03}").repeat(10_000)).collect();
        let mut at_once = 0;
        for text in &big {
            if out.queue(&frame(text), QueueTime::now()) == Ok(Sent::Written) {
                at_once += 1;
            }
        }
        assert!(at_once < big.len(), "the socket's buffer filled");
        let reading = tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < 3 + 40 {
                match client.next().await {
                    Some(Ok(msg)) => got.push(msg.into_text().expect("text").to_string()),
                    other => panic!("the client read {other:?}"),
                }
            }
            got
        });
        let drained = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                out.queue.ready().await;
                let batch = out.queue.take(64);
                writer.send(&batch.frames).await.expect("written");
                out.queue.written();
                if out.queue.state.lock().map(|s| s.is_empty()).unwrap_or(true) {
                    break;
                }
            }
        });
        drained.await.expect("the writer sends the rest");
        let got = tokio::time::timeout(Duration::from_secs(10), reading)
            .await
            .expect("in time")
            .expect("read");
        let mut want = vec!["queued".to_string(), "at once".into(), "behind".into()];
        want.extend(big);
        assert_eq!(got, want);
        // Once detached, nothing is written but by the writer.
        out.queue.detach();
        assert_eq!(
            out.queue(&frame("late"), QueueTime::now()),
            Ok(Sent::Queued)
        );
    }

    #[test]
    fn a_wait_is_measured_on_a_clock_that_does_not_go_back() {
        let at = QueueTime::now();
        assert!(QueueTime::now().nanos() >= at.nanos());
        assert_eq!(size_of::<Option<QueueTime>>(), size_of::<u64>());
        assert!(at.elapsed() < Duration::from_secs(60));
    }
}
