//! Closing a WebSocket so that its close code arrives.
//!
//! Sending a close frame and dropping the socket is not enough: if the client has sent bytes
//! the node has not read (the rest of an oversized frame, commands in flight), the kernel
//! answers the drop with a reset, and a reset can reach the client before it has read the close
//! frame — it then sees a network error instead of the code. So the node sends its close frame,
//! closes its half of the connection (FIN), and reads and drops what the client still sends
//! until the client closes its half, within a bounded time and amount.

use super::upgrade::WsStream;
use futures_util::SinkExt;
use protocol::CloseCode;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WireCode;

/// How long a closing connection may take to accept the close frame (behind what was already
/// on its way, for a slow reader) and then to close its side. A client that does not read
/// cannot take the frame: it is dropped after this.
pub(crate) const CLOSE_LINGER: Duration = Duration::from_secs(5);
/// The most a closing client may still send that the node reads and drops.
const DRAIN_LIMIT: usize = 1 << 20;

/// The close frame for `code`; `None` is a normal closure (1000) after the client's `leave`.
pub(crate) fn close_frame(code: Option<CloseCode>) -> CloseFrame {
    match code {
        Some(code) => CloseFrame {
            code: WireCode::from(code.code()),
            reason: code.reason().into(),
        },
        None => normal_close("bye"),
    }
}

/// A normal closure (1000) with a reason.
pub(crate) fn normal_close(reason: &'static str) -> CloseFrame {
    CloseFrame {
        code: WireCode::Normal,
        reason: reason.into(),
    }
}

/// Ends `ws` with `frame` (see the module documentation). A client that closed first gets its
/// own close answered instead, as the protocol asks.
pub(crate) async fn finish(mut ws: WsStream, frame: CloseFrame) {
    let deadline = Instant::now() + CLOSE_LINGER;
    match timeout_at(deadline, ws.send(Message::Close(Some(frame)))).await {
        // Sent (or the client's close answered), or the connection is already closed.
        Ok(_) => {}
        // The client does not read: nothing more can reach it.
        Err(_) => return,
    }
    let socket = ws.get_mut();
    if !matches!(timeout_at(deadline, socket.shutdown()).await, Ok(Ok(()))) {
        return;
    }
    let mut buf = [0u8; 4096];
    let mut drained = 0;
    while drained < DRAIN_LIMIT {
        match timeout_at(deadline, socket.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => drained += n,
            // Closed by the client, failed, or out of time.
            _ => break,
        }
    }
}
