//! The node's HTTP server: the accept loop every request and WebSocket comes through.
//!
//! - **Open sockets are capped** below the process's open-file limit, leaving descriptors in
//!   reserve for what the node opens itself (database, Redis, media sockets, files): a flood of
//!   idle connections waits in the listen backlog instead of starving the node (once 1,100 idle
//!   sockets made `accept` fail with "too many open files"). A socket keeps its place as long
//!   as it is open, also once it became a WebSocket.
//! - **HTTP/1 with a header-read timeout**, which also ends keep-alive connections that stay
//!   idle: a client that never finishes its headers, or never sends the next request, is let go.
//! - **Writes that make no progress** for too long fail ([`Socket`]), whatever the protocol.
//! - On shutdown, idle connections close and busy ones finish their request.

use super::socket::Socket;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::{debug, warn};

/// How a listener serves its connections.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ServeLimits {
    /// Sockets open at once through this listener.
    pub(crate) open_sockets: usize,
    /// Time a client has to send a request's headers, counted from the connection's start or
    /// the end of the previous response.
    pub(crate) header_read: Duration,
    /// Time a write may wait for the client to take bytes.
    pub(crate) write_stall: Duration,
}

/// A connection's place among the open sockets: taken at accept, given back when the socket
/// closes. An upgrade takes it out (see `upgrade`) so that it lasts as long as the WebSocket.
#[derive(Clone, Debug)]
pub(crate) struct OpenSlot(Arc<Mutex<Option<OwnedSemaphorePermit>>>);

impl OpenSlot {
    /// The place, for whoever keeps the socket from now on.
    pub(crate) fn take(&self) -> Option<OwnedSemaphorePermit> {
        self.0.lock().ok()?.take()
    }
}

/// The most sockets a node may hold open with the process's open-file limit, keeping
/// `reserved` descriptors for everything else.
pub(crate) fn socket_cap(reserved: usize) -> usize {
    let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap_or((1024, 1024));
    usize::try_from(soft)
        .unwrap_or(usize::MAX)
        .saturating_sub(reserved)
        .max(16)
}

/// Serves `app` on `listener` until `shutdown` is cancelled; returns the tracker of the HTTP
/// connections still finishing (WebSocket sessions are the node's own to wait for).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    shutdown: CancellationToken,
) -> TaskTracker {
    let slots = Arc::new(Semaphore::new(limits.open_sockets));
    let connections = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed.
                Err(_) => break,
            },
            () = shutdown.cancelled() => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors despite the cap (the reserve ran out) or a connection
                    // aborted before it was taken: wait a moment rather than spin.
                    warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        // Small frames (chat lines, updates) go out at once.
        let _ = tcp.set_nodelay(true);
        let slot = OpenSlot(Arc::new(Mutex::new(Some(permit))));
        let io = TokioIo::new(Socket::new(tcp, limits.write_stall));
        let app = app.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let service =
                hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request.extensions_mut().insert(slot.clone());
                    app.clone().oneshot(request.map(axum::body::Body::new))
                });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read);
            let connection = builder.serve_connection(io, service).with_upgrades();
            tokio::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = served {
                debug!(error = %e, "an HTTP connection ended with an error");
            }
        });
    }
    connections.close();
    connections
}
