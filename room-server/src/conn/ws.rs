//! A WebSocket once upgraded, in two halves that never wait for each other.
//!
//! - **Reading** is tokio-tungstenite's: frame limits, masking, UTF-8, fragments and the
//!   control frames it answers itself (a pong to a client's ping, the answer to a client's
//!   close). What it writes on its own goes to a small shared buffer ([`Control`]) that the
//!   writer sends between its own frames, never inside one.
//! - **Writing** is the node's own: its frames are encoded once for every recipient
//!   ([`Frame`] shares its payload), and a writer sends a whole batch of them with one
//!   vectored `write`: a few header bytes of its own and the shared payloads themselves. No
//!   connection keeps a write buffer, so none keeps the size of the largest message it ever
//!   sent (a full room's welcome once left about 190 KB behind in every learner's socket),
//!   and a frame's bytes are never copied per recipient.
//!
//! The headers are tungstenite's own format ([`FrameHeader::format`]); a server's frames are
//! unmasked, so the payload goes out as encoded.

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use protocol::CloseCode;
use smallvec::SmallVec;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{
    Control as ControlCode, Data, OpCode,
};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::signal::Signal;
use super::socket::Socket;

/// The reading half: a stream of the client's messages.
pub(crate) type Reader = WebSocketStream<ReadSide>;

/// One frame the node sends, its payload shared by every connection it goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// `None`: the rest of a frame a room began writing ([`Frame::rest`]), header included.
    opcode: Option<OpCode>,
    payload: Bytes,
}

impl Frame {
    /// A binary data frame.
    pub fn binary(payload: Bytes) -> Self {
        Self {
            opcode: Some(OpCode::Data(Data::Binary)),
            payload,
        }
    }

    /// A text data frame (`payload` is UTF-8).
    pub(crate) fn text(payload: String) -> Self {
        Self {
            opcode: Some(OpCode::Data(Data::Text)),
            payload: Bytes::from(payload),
        }
    }

    /// A ping carrying `n`.
    pub(crate) fn ping(n: u64) -> Self {
        Self {
            opcode: Some(OpCode::Control(ControlCode::Ping)),
            payload: Bytes::copy_from_slice(&n.to_be_bytes()),
        }
    }

    /// A close frame: `code` and its reason, or a normal closure (1000) with `reason`.
    pub(crate) fn close(code: Option<CloseCode>, reason: &str) -> Self {
        let (code, reason) = match code {
            Some(code) => (code.code(), code.reason()),
            None => (1000, reason),
        };
        let mut payload = Vec::with_capacity(2 + reason.len());
        payload.extend_from_slice(&code.to_be_bytes());
        // A control frame's payload is at most 125 bytes; every reason the node gives is short.
        payload.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
        Self {
            opcode: Some(OpCode::Control(ControlCode::Close)),
            payload: Bytes::from(payload),
        }
    }

    /// The payload.
    #[cfg(test)]
    pub(crate) fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Appends this frame's header to `out` (nothing for the rest of a frame begun).
    fn head<const N: usize>(&self, out: &mut SmallVec<[u8; N]>)
    where
        [u8; N]: smallvec::Array<Item = u8>,
    {
        let Some(opcode) = self.opcode else { return };
        let header = FrameHeader {
            opcode,
            ..FrameHeader::default()
        };
        let len = u64::try_from(self.payload.len()).unwrap_or(u64::MAX);
        // A server's header (no mask) takes at most 10 bytes.
        let mut bytes = [0u8; 14];
        let mut rest = &mut bytes[..];
        // Writing into a slice of the longest header's size cannot fail.
        let _ = header.format(len, &mut rest);
        let written = 14 - rest.len();
        out.extend_from_slice(&bytes[..written]);
    }
}

/// Writes `frame` to `tcp` now, without waiting: the bytes the socket took (all of them,
/// part, or none when its buffer is full). For a room that hands a frame straight to an idle
/// connection's socket (`super::outbox`); what is left goes to the connection's writer as
/// [`Frame::rest`].
pub(crate) fn try_write_now(tcp: &TcpStream, frame: &Frame) -> io::Result<(usize, usize)> {
    let mut head = SmallVec::<[u8; 14]>::new();
    frame.head(&mut head);
    let total = head.len() + frame.payload.len();
    let slices = [IoSlice::new(&head), IoSlice::new(&frame.payload)];
    loop {
        match tcp.try_write_vectored(&slices) {
            Ok(n) => return Ok((n, total)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((0, total)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

impl Frame {
    /// What is left of this frame once its first `written` bytes (header included) are out:
    /// raw bytes the writer sends as they are.
    pub(crate) fn rest(&self, written: usize) -> Frame {
        let mut head = SmallVec::<[u8; 14]>::new();
        self.head(&mut head);
        let mut bytes =
            Vec::with_capacity((head.len() + self.payload.len()).saturating_sub(written));
        if written < head.len() {
            bytes.extend_from_slice(&head[written..]);
            bytes.extend_from_slice(&self.payload);
        } else {
            bytes
                .extend_from_slice(&self.payload[(written - head.len()).min(self.payload.len())..]);
        }
        Frame {
            opcode: None,
            payload: Bytes::from(bytes),
        }
    }
}

/// Splits an upgraded socket: tungstenite reads, the node writes. `read` holds the bytes the
/// client sent right behind its upgrade request.
pub(crate) async fn split(
    socket: Socket,
    read: Vec<u8>,
    config: WebSocketConfig,
) -> (Reader, Writer) {
    let (tcp, stall) = socket.into_parts();
    // One stream shared by both halves (and the connection's queue): every use is through
    // `&TcpStream`, so no half needs a handle of its own.
    let tcp = Arc::new(tcp);
    let control = Arc::new(Control::default());
    let side = ReadSide {
        tcp: Arc::clone(&tcp),
        control: Arc::clone(&control),
    };
    let reader = WebSocketStream::from_partially_read(side, read, Role::Server, Some(config)).await;
    let writer = Writer {
        tcp,
        stall,
        control,
        writes: 0,
    };
    (reader, writer)
}

/// The most bytes of control frames tungstenite may leave for the writer: a pong and a close
/// answer are at most 127 bytes each. A client whose pings come faster than the writer
/// sends their pongs is not read until they are sent.
const CONTROL_LIMIT: usize = 512;

/// What tungstenite writes on its own, waiting for the writer.
#[derive(Debug, Default)]
pub(crate) struct Control {
    bytes: Mutex<Vec<u8>>,
    /// Bytes are waiting (wakes the writer).
    waiting: Signal,
    /// The writer took the bytes (wakes a reader that found the buffer full).
    taken: AtomicWaker,
    /// Tungstenite answered the client's close: the node must not send a close of its own.
    answered_close: AtomicBool,
}

impl Control {
    /// Takes what is waiting.
    fn take(&self) -> Vec<u8> {
        let bytes = match self.bytes.lock() {
            Ok(mut bytes) => std::mem::take(&mut *bytes),
            Err(_) => Vec::new(),
        };
        self.taken.wake();
        bytes
    }
}

/// Whether `bytes` (whole frames, as tungstenite writes them) hold a close frame.
fn holds_close(mut bytes: &[u8]) -> bool {
    while let [first, second, rest @ ..] = bytes {
        if first & 0x0F == 0x8 {
            return true;
        }
        // Control frames carry at most 125 bytes: the length is in the second byte.
        let len = usize::from(second & 0x7F).min(rest.len());
        bytes = &rest[len..];
    }
    false
}

/// The socket as tungstenite sees it: reads from the client; its writes go to [`Control`].
#[derive(Debug)]
pub(crate) struct ReadSide {
    tcp: Arc<TcpStream>,
    control: Arc<Control>,
}

impl ReadSide {
    /// Reads raw bytes, below the WebSocket (to drain a closing connection).
    async fn read_raw(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read(buf).await
    }
}

impl AsyncRead for ReadSide {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            std::task::ready!(self.tcp.poll_read_ready(cx))?;
            // (A failed `try_read` clears the readiness: the next poll waits for more.)
            match self.tcp.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for ReadSide {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let control = &self.control;
        let Ok(mut bytes) = control.bytes.lock() else {
            return Poll::Ready(Err(io::Error::other("the control buffer is poisoned")));
        };
        if !bytes.is_empty() && bytes.len() + buf.len() > CONTROL_LIMIT {
            // Registered under the lock: the writer's `take` comes after, and wakes us.
            control.taken.register(cx.waker());
            return Poll::Pending;
        }
        if holds_close(buf) {
            control.answered_close.store(true, Ordering::Relaxed);
        }
        bytes.extend_from_slice(buf);
        drop(bytes);
        control.waiting.raise();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The writing half.
#[derive(Debug)]
pub struct Writer {
    /// Shared with the reading half, and with the connection's queue while its room may write
    /// to it directly.
    tcp: Arc<TcpStream>,
    /// How long a write may make no progress before it fails (the client stopped reading).
    stall: Duration,
    control: Arc<Control>,
    /// `write` system calls made so far.
    writes: u64,
}

impl Writer {
    /// Sends `frames` in order, as few `write` calls as the socket takes them in (one, unless
    /// the client's buffers are full). Fails with `TimedOut` if the client took no bytes for
    /// the stall limit.
    pub async fn send<'a>(
        &mut self,
        frames: impl IntoIterator<Item = &'a Frame>,
    ) -> io::Result<()> {
        // Control frames tungstenite left go first: never inside a frame of ours.
        let control = self.control.take();
        // Kept inline for the usual batch of a few frames: no allocation per write.
        let mut heads = SmallVec::<[u8; 64]>::new();
        let mut ends = SmallVec::<[usize; 8]>::new();
        let mut payloads = SmallVec::<[&[u8]; 8]>::new();
        for frame in frames {
            frame.head(&mut heads);
            ends.push(heads.len());
            payloads.push(&frame.payload[..]);
        }
        let mut slices = SmallVec::<[IoSlice<'_>; 17]>::new();
        if !control.is_empty() {
            slices.push(IoSlice::new(&control));
        }
        let mut start = 0;
        for (end, payload) in ends.iter().zip(&payloads) {
            slices.push(IoSlice::new(&heads[start..*end]));
            if !payload.is_empty() {
                slices.push(IoSlice::new(payload));
            }
            start = *end;
        }
        self.write_all(&mut slices).await
    }

    /// Sends the control frames tungstenite left (pongs, the answer to a client's close).
    pub(crate) async fn send_control(&mut self) -> io::Result<()> {
        self.send(std::iter::empty()).await
    }

    /// Waits until tungstenite left control frames to send.
    pub(crate) async fn control_waiting(&self) {
        self.control.waiting.take().await;
    }

    /// The socket, for the connection's queue: a room writes a frame straight to an idle
    /// connection (`super::outbox`).
    pub(crate) fn socket(&self) -> Arc<TcpStream> {
        Arc::clone(&self.tcp)
    }

    /// `write` system calls made so far.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// Writes every slice, advancing through partial writes; fails once the client has taken
    /// no bytes for the stall limit.
    async fn write_all(&mut self, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
        // The most slices one `writev` takes (Linux's IOV_MAX).
        const MAX_SLICES: usize = 1024;
        let mut stalled_until: Option<Instant> = None;
        while !slices.is_empty() {
            let upto = slices.len().min(MAX_SLICES);
            match self.tcp.try_write_vectored(&slices[..upto]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.writes += 1;
                    stalled_until = None;
                    IoSlice::advance_slices(&mut slices, n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let deadline =
                        *stalled_until.get_or_insert_with(|| Instant::now() + self.stall);
                    // Boxed: rare (the client's buffers are full), and its timer would
                    // otherwise size every connection's task.
                    match Box::pin(timeout_at(deadline, self.tcp.writable())).await {
                        Ok(ready) => ready?,
                        Err(_) => {
                            return Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                "the peer took no bytes within the write stall limit",
                            ));
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The close frame for `code`; `None` is a normal closure (1000) after the client's `leave`.
pub(crate) fn close_frame(code: Option<CloseCode>) -> Frame {
    Frame::close(code, "bye")
}

/// A normal closure (1000) with a reason.
pub(crate) fn normal_close(reason: &str) -> Frame {
    Frame::close(None, reason)
}

/// How long a closing connection may take to accept the close frame (behind what was already
/// on its way, for a slow reader) and then to close its side. A client that does not read
/// cannot take the frame: it is dropped after this.
pub(crate) const CLOSE_LINGER: Duration = Duration::from_secs(5);
/// The most a closing client may still send that the node reads and drops.
const DRAIN_LIMIT: usize = 1 << 20;

/// Closes the connection so that its close code arrives.
///
/// Sending a close frame and dropping the socket is not enough: if the client has sent bytes
/// the node has not read (the rest of an oversized frame, commands in flight), the kernel
/// answers the drop with a reset, and a reset can reach the client before it has read the
/// close frame — it then sees a network error instead of the code. So the node sends its close
/// frame (`code`; `None` is a normal closure with `reason`), closes its half of the connection
/// (FIN), and reads and drops what the client still sends until the client closes its half,
/// within a bounded time and amount. A client that closed first has had its own close
/// answered already (by tungstenite), as the protocol asks, and gets no second one.
pub(crate) async fn close(mut reader: Reader, mut writer: Writer, frame: Frame) {
    let deadline = Instant::now() + CLOSE_LINGER;
    let closed = async {
        writer.send_control().await?;
        if !writer.control.answered_close.load(Ordering::Relaxed) {
            writer.send([&frame]).await?;
        }
        // Only this side's writing ends: the client's last bytes are still read below.
        socket2::SockRef::from(&*writer.tcp).shutdown(std::net::Shutdown::Write)
    };
    // The client does not read, or the connection is gone: nothing more can reach it.
    if !matches!(timeout_at(deadline, closed).await, Ok(Ok(()))) {
        return;
    }
    let side = reader.get_mut();
    let mut buf = [0u8; 1024];
    let mut drained = 0;
    while drained < DRAIN_LIMIT {
        match timeout_at(deadline, side.read_raw(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => drained += n,
            // Closed by the client, failed, or out of time.
            _ => break,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use futures_util::StreamExt;
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::Message;

    /// A node-side connection and a tungstenite client on the other end.
    async fn pair() -> (Reader, Writer, WebSocketStream<TcpStream>) {
        pair_with(None).await
    }

    /// The same, the node's kernel send buffer bounded to `send_buffer` bytes if given.
    pub(crate) async fn pair_with(
        send_buffer: Option<usize>,
    ) -> (Reader, Writer, WebSocketStream<TcpStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = listener.local_addr().expect("an address");
        let client = TcpStream::connect(addr).await.expect("connects");
        let (tcp, _) = listener.accept().await.expect("accepts");
        let socket = Socket::new(tcp, Duration::from_secs(5));
        if let Some(bytes) = send_buffer {
            socket.bound_send_buffer(bytes);
        }
        let (reader, writer) = split(socket, Vec::new(), WebSocketConfig::default()).await;
        let client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        (reader, writer, client)
    }

    #[tokio::test]
    async fn a_batch_arrives_as_its_frames_in_order_with_one_write() {
        let (_reader, mut writer, mut client) = pair().await;
        let big = Bytes::from(vec![7u8; 70_000]);
        let frames = [
            Frame::text("first".into()),
            Frame::binary(big.clone()),
            Frame::binary(Bytes::new()),
            Frame::text("x".repeat(300)),
        ];
        writer.send(&frames).await.expect("written");
        assert_eq!(writer.writes(), 1, "one vectored write for the batch");
        let mut got = Vec::new();
        for _ in 0..frames.len() {
            got.push(client.next().await.expect("a frame").expect("readable"));
        }
        assert_eq!(
            got,
            [
                Message::text("first"),
                Message::Binary(big),
                Message::Binary(Bytes::new()),
                Message::text("x".repeat(300)),
            ]
        );
    }

    #[tokio::test]
    async fn a_clients_ping_is_answered_between_the_nodes_frames() {
        let (mut reader, mut writer, mut client) = pair().await;
        futures_util::SinkExt::send(&mut client, Message::Ping(Bytes::from_static(b"p")))
            .await
            .expect("pinged");
        // Tungstenite hands the ping over, and answers it when next read; the answer waits for
        // the writer.
        let ping = reader.next().await.expect("a frame").expect("readable");
        assert_eq!(ping, Message::Ping(Bytes::from_static(b"p")));
        let nothing_more = tokio::time::timeout(Duration::from_millis(100), reader.next()).await;
        assert!(nothing_more.is_err());
        tokio::time::timeout(Duration::from_secs(5), writer.control_waiting())
            .await
            .expect("the pong waits for the writer");
        writer
            .send([&Frame::text("after".into())])
            .await
            .expect("written");
        let first = client.next().await.expect("a frame").expect("readable");
        assert_eq!(first, Message::Pong(Bytes::from_static(b"p")));
        let second = client.next().await.expect("a frame").expect("readable");
        assert_eq!(second, Message::text("after"));
    }

    #[tokio::test]
    async fn the_close_code_arrives() {
        let (reader, writer, mut client) = pair().await;
        let closing = tokio::spawn(close(
            reader,
            writer,
            close_frame(Some(CloseCode::SlowConsumer)),
        ));
        let frame = client.next().await.expect("a frame").expect("readable");
        let Message::Close(Some(close)) = frame else {
            panic!("expected a close frame, got {frame:?}");
        };
        assert_eq!(u16::from(close.code), CloseCode::SlowConsumer.code());
        assert_eq!(close.reason.as_str(), CloseCode::SlowConsumer.reason());
        drop(client);
        closing.await.expect("closed");
    }

    #[test]
    fn a_close_is_found_among_control_frames() {
        assert!(holds_close(&[0x8A, 0x01, b'p', 0x88, 0x02, 0x03, 0xE8]));
        assert!(!holds_close(&[0x8A, 0x01, b'p']));
        assert!(!holds_close(&[]));
    }
}
