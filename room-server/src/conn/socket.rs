//! A client's TCP socket as the node holds it: writes that make no progress for too long fail
//! (the peer stopped reading), and room sockets get a bounded kernel send buffer.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// One accepted connection.
#[derive(Debug)]
pub(crate) struct Socket {
    tcp: TcpStream,
    /// How long a write may wait for the peer to take bytes before it fails: a client that
    /// keeps the socket open but never reads is let go within this time of its buffers filling.
    stall_limit: Duration,
    /// Running while a write waits for the peer (made only then: an idle socket has no timer).
    stalled: Option<Pin<Box<Sleep>>>,
}

impl Socket {
    pub(crate) fn new(tcp: TcpStream, stall_limit: Duration) -> Self {
        Self {
            tcp,
            stall_limit,
            stalled: None,
        }
    }

    /// The TCP stream and the stall limit, for the WebSocket's own halves (`super::ws`).
    pub(crate) fn into_parts(self) -> (TcpStream, Duration) {
        (self.tcp, self.stall_limit)
    }

    /// Caps the kernel's send buffer for this socket. Left alone, Linux grows it to several
    /// megabytes for a peer that does not read, which both hides a stalled reader for minutes
    /// and holds that much memory for it; a room connection's traffic needs far less.
    pub(crate) fn bound_send_buffer(&self, bytes: usize) {
        if let Err(e) = socket2::SockRef::from(&self.tcp).set_send_buffer_size(bytes) {
            tracing::debug!(error = %e, "could not bound a socket's send buffer");
        }
    }

    /// A write is waiting for the peer: fails once it has waited `stall_limit`.
    fn poll_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let limit = self.stall_limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer took no bytes within the write stall limit",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The outcome of a write: progress clears the stall timer, waiting runs it.
    fn progress(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Pending => self.poll_stall(cx),
            done => {
                self.stalled = None;
                done
            }
        }
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.tcp).poll_write(cx, buf);
        self.progress(cx, written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        self.progress(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_write_the_peer_never_takes_fails_after_the_stall_limit() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let addr = listener.local_addr().expect("an address");
        // The peer connects and never reads.
        let _peer = TcpStream::connect(addr).await.expect("connects");
        let (tcp, _) = listener.accept().await.expect("accepts");
        let mut socket = Socket::new(tcp, Duration::from_millis(300));
        socket.bound_send_buffer(16 * 1024);
        let chunk = vec![0u8; 64 * 1024];
        let started = tokio::time::Instant::now();
        let outcome = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Err(e) = socket.write_all(&chunk).await {
                    return e;
                }
            }
        })
        .await
        .expect("the write fails in time");
        assert_eq!(outcome.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(300));
    }
}
