//! ICE-TCP on one shared port, for learners whose networks block UDP (a firewall that lets
//! only TCP 443 out, say).
//!
//! webrtc 0.21 gives every peer connection its own TCP listener. Here one [`TcpMux`] listens
//! for all of them: every peer connection gets ICE credentials chosen by the node, and a
//! runtime whose "TCP listener" is a queue fed by the mux. A browser connecting to the shared
//! port first sends a STUN binding request (framed as RFC 4571: a 2-byte length, then the
//! message) whose `USERNAME` starts with the node's username fragment; the mux reads that
//! frame, finds the peer connection by the fragment, and hands it the stream with the frame
//! still to be read. The connection's own listener socket is closed at once, and its
//! candidates (trickled, and in its SDP) are advertised with the shared port instead.
//!
//! Limits: a stream must send its first frame within 5 s and it must be a STUN binding
//! request of at most 2 KiB; at most 1,024 streams may be waiting for their first frame. A
//! stream naming no live peer connection is closed.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use rtc::stun::attributes::ATTR_USERNAME;
use rtc::stun::message::{BINDING_REQUEST, Message};
use rtc::stun::textattrs::Username;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Semaphore, mpsc};
use webrtc::peer_connection::RTCIceCandidate;
use webrtc::runtime::{
    AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, Runtime,
    TokioRuntime,
};

/// How long a new stream has to send its first frame.
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest first frame (a binding request is a few hundred bytes).
const MAX_FIRST_FRAME: usize = 2048;
/// Streams waiting for their first frame at once; more are closed on arrival.
const MAX_PENDING: usize = 1024;
/// Streams accepted for one peer connection and not yet taken by it.
const ROUTE_QUEUE: usize = 16;

type Accepted = (Arc<dyn AsyncTcpStream>, SocketAddr);

/// One peer connection's listener, as the mux sees it.
struct Route {
    /// The address the connection's own (closed) listener had: what its ICE agent knows its
    /// TCP candidate by, so the streams handed to it say they arrived there.
    local: SocketAddr,
    tx: mpsc::Sender<Accepted>,
}

/// The shared ICE-TCP listener of a node. Put it in
/// [`SignalingConfig::tcp_mux`](crate::SignalingConfig::tcp_mux); every peer connection the
/// node builds then takes ICE-TCP on this one port. Closes when the last `Arc` goes.
pub struct TcpMux {
    local: SocketAddr,
    /// Username fragment → the listeners of its peer connection (one per local interface).
    routes: Mutex<HashMap<String, Vec<Route>>>,
    accept: tokio::task::AbortHandle,
}

impl std::fmt::Debug for TcpMux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpMux")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl Drop for TcpMux {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl TcpMux {
    /// Listens on `addr` (port 0: any free port; see [`local_addr`](Self::local_addr)).
    pub async fn bind(addr: SocketAddr) -> io::Result<Arc<Self>> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        Ok(Arc::new_cyclic(|weak: &Weak<Self>| {
            let accept = tokio::spawn(accept_loop(listener, weak.clone())).abort_handle();
            Self {
                local,
                routes: Mutex::new(HashMap::new()),
                accept,
            }
        }))
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Peer connections that can take streams now (a leak check: it returns to 0 when they
    /// are all closed).
    pub fn peer_connections(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Vec<Route>>> {
        // Every update is one insert or remove: a poisoned map is still consistent.
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(&self, ufrag: &str, local: SocketAddr) -> mpsc::Receiver<Accepted> {
        let (tx, rx) = mpsc::channel(ROUTE_QUEUE);
        self.lock()
            .entry(ufrag.to_owned())
            .or_default()
            .push(Route { local, tx });
        rx
    }

    fn unregister(&self, ufrag: &str, local: SocketAddr) {
        let mut routes = self.lock();
        if let Some(list) = routes.get_mut(ufrag) {
            list.retain(|r| r.local != local);
            if list.is_empty() {
                routes.remove(ufrag);
            }
        }
    }

    /// Hands a stream to the peer connection `ufrag` names, on the listener of the interface
    /// it arrived on.
    fn route(
        &self,
        ufrag: &str,
        arrived_on: IpAddr,
    ) -> Option<(SocketAddr, mpsc::Sender<Accepted>)> {
        let routes = self.lock();
        let list = routes.get(ufrag)?;
        let route = list
            .iter()
            .find(|r| r.local.ip() == arrived_on)
            .or_else(|| list.first())?;
        Some((route.local, route.tx.clone()))
    }

    /// A candidate as browsers must see it: a passive TCP host candidate carries the shared
    /// port (and a configured public address instead of the private one).
    pub(crate) fn advertise(&self, candidate: &mut RTCIceCandidate, public_ips: &[IpAddr]) {
        use rtc::peer_connection::transport::RTCIceTcpCandidateType;
        use webrtc::peer_connection::RTCIceProtocol;
        if candidate.protocol == RTCIceProtocol::Tcp
            && candidate.tcp_type == RTCIceTcpCandidateType::Passive
        {
            candidate.port = self.local.port();
            if let Some(ip) = public_for(&candidate.address, public_ips) {
                candidate.address = ip.to_string();
            }
        }
    }

    /// An SDP with its passive TCP candidates advertised as [`advertise`](Self::advertise)
    /// does.
    pub(crate) fn advertise_sdp(&self, sdp: &str, public_ips: &[IpAddr]) -> String {
        let mut out = String::with_capacity(sdp.len());
        for line in sdp.split_inclusive('\n') {
            match line.strip_prefix("a=") {
                Some(candidate) if candidate.starts_with("candidate:") => {
                    let body = candidate.trim_end_matches(['\r', '\n']);
                    out.push_str("a=");
                    out.push_str(&self.advertise_line(body, public_ips));
                    out.push_str(&candidate[body.len()..]);
                }
                _ => out.push_str(line),
            }
        }
        out
    }

    /// `candidate:<foundation> <component> <transport> <priority> <address> <port> typ …`
    fn advertise_line(&self, line: &str, public_ips: &[IpAddr]) -> String {
        let mut fields: Vec<String> = line.split(' ').map(str::to_owned).collect();
        let passive_tcp = fields.len() > 7
            && fields[2].eq_ignore_ascii_case("tcp")
            && fields
                .windows(2)
                .any(|w| w[0] == "tcptype" && w[1] == "passive");
        if !passive_tcp {
            return line.to_owned();
        }
        fields[5] = self.local.port().to_string();
        if let Some(ip) = public_for(&fields[4], public_ips) {
            fields[4] = ip.to_string();
        }
        fields.join(" ")
    }
}

/// The public address (same family) to advertise instead of `address`, if any is configured.
fn public_for(address: &str, public_ips: &[IpAddr]) -> Option<IpAddr> {
    let private: IpAddr = address.parse().ok()?;
    public_ips
        .iter()
        .copied()
        .find(|ip| ip.is_ipv4() == private.is_ipv4())
}

async fn accept_loop(listener: tokio::net::TcpListener, mux: Weak<TcpMux>) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of descriptors, say: wait a moment rather than spin.
                tracing::debug!(%err, "ICE-TCP accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&pending).try_acquire_owned() else {
            continue;
        };
        let mux = mux.clone();
        tokio::spawn(async move {
            let _permit = permit;
            hand_over(stream, peer, mux).await;
        });
    }
}

/// Reads a new stream's first frame and gives the stream to the peer connection it names.
async fn hand_over(mut stream: tokio::net::TcpStream, peer: SocketAddr, mux: Weak<TcpMux>) {
    let first = match tokio::time::timeout(FIRST_FRAME_TIMEOUT, first_frame(&mut stream)).await {
        Ok(Ok(frame)) => frame,
        _ => return,
    };
    let Some(ufrag) = local_ufrag(&first[2..]) else {
        tracing::debug!(%peer, "ICE-TCP stream without a binding request");
        return;
    };
    let Ok(arrived_on) = stream.local_addr() else {
        return;
    };
    let Some((local, tx)) = mux.upgrade().and_then(|m| m.route(&ufrag, arrived_on.ip())) else {
        tracing::debug!(%peer, "ICE-TCP stream for no live connection");
        return;
    };
    let (read, write) = stream.into_split();
    let stream = PrefixedStream {
        prefix: Mutex::new(first),
        read,
        write,
        local,
        peer,
    };
    let _ = tx.try_send((Arc::new(stream), peer));
}

/// One RFC 4571 frame: the 2-byte length and the message, as they came.
async fn first_frame(stream: &mut tokio::net::TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let n = usize::from(u16::from_be_bytes(len));
    if !(20..=MAX_FIRST_FRAME).contains(&n) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a STUN frame",
        ));
    }
    let mut frame = vec![0u8; 2 + n];
    frame[..2].copy_from_slice(&len);
    stream.read_exact(&mut frame[2..]).await?;
    Ok(frame)
}

/// The node's username fragment from a STUN binding request (`USERNAME` is
/// `<receiver's fragment>:<sender's fragment>`).
fn local_ufrag(message: &[u8]) -> Option<String> {
    // Every STUN message starts with two zero bits (RFC 8489 §5), which the parser leaves
    // unchecked: without them the frame is something else whose bits only look like a binding.
    if message.first()? & 0xC0 != 0 {
        return None;
    }
    let mut stun = Message::new();
    stun.write(message).ok()?;
    if stun.typ != BINDING_REQUEST {
        return None;
    }
    let username = Username::get_from_as(&stun, ATTR_USERNAME).ok()?;
    let (local, _) = username.text.split_once(':')?;
    (!local.is_empty()).then(|| local.to_owned())
}

/// A stream handed over with its first frame still to be read.
#[derive(Debug)]
struct PrefixedStream {
    prefix: Mutex<Vec<u8>>,
    read: OwnedReadHalf,
    write: OwnedWriteHalf,
    local: SocketAddr,
    peer: SocketAddr,
}

impl AsyncTcpStream for PrefixedStream {
    fn read<'a, 'b>(
        &'a self,
        buf: &'b mut [u8],
    ) -> Pin<Box<dyn Future<Output = io::Result<usize>> + Send + 'b>>
    where
        'a: 'b,
    {
        Box::pin(async move {
            {
                let mut prefix = self.prefix.lock().unwrap_or_else(|p| p.into_inner());
                if !prefix.is_empty() {
                    let n = prefix.len().min(buf.len());
                    buf[..n].copy_from_slice(&prefix[..n]);
                    prefix.drain(..n);
                    return Ok(n);
                }
            }
            loop {
                self.read.readable().await?;
                match self.read.try_read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    other => return other,
                }
            }
        })
    }

    fn write_all<'a, 'b>(
        &'a self,
        buf: &'b [u8],
    ) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send + 'b>>
    where
        'a: 'b,
    {
        Box::pin(async move {
            let mut rest = buf;
            while !rest.is_empty() {
                self.write.writable().await?;
                match self.write.try_write(rest) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => rest = &rest[n..],
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }
}

/// A peer connection's "TCP listener": the streams the mux hands it.
#[derive(Debug)]
struct MuxListener {
    streams: tokio::sync::Mutex<mpsc::Receiver<Accepted>>,
    local: SocketAddr,
    ufrag: String,
    mux: Arc<TcpMux>,
}

impl Drop for MuxListener {
    fn drop(&mut self) {
        self.mux.unregister(&self.ufrag, self.local);
    }
}

impl AsyncTcpListener for MuxListener {
    fn accept<'a>(
        &'a self,
    ) -> Pin<Box<dyn Future<Output = io::Result<(Arc<dyn AsyncTcpStream>, SocketAddr)>> + Send + 'a>>
    {
        Box::pin(async move {
            match self.streams.lock().await.recv().await {
                Some(accepted) => Ok(accepted),
                // The sender lives as long as this listener: never.
                None => std::future::pending().await,
            }
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// The tokio runtime, except that TCP listeners come from the mux: what a peer connection
/// with username fragment `ufrag` is built with.
#[derive(Debug)]
pub(crate) struct MuxRuntime {
    pub(crate) mux: Arc<TcpMux>,
    pub(crate) ufrag: String,
}

impl Runtime for MuxRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        TokioRuntime.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        TokioRuntime.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        TokioRuntime.wrap_udp_socket(socket)
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        // Its address names the connection's TCP candidate; the socket itself is not used.
        let local = listener.local_addr()?;
        drop(listener);
        let streams = self.mux.register(&self.ufrag, local);
        Ok(Arc::new(MuxListener {
            streams: tokio::sync::Mutex::new(streams),
            local,
            ufrag: self.ufrag.clone(),
            mux: Arc::clone(&self.mux),
        }))
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        TokioRuntime.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        TokioRuntime.resolve_host(host)
    }

    fn now(&self) -> Instant {
        TokioRuntime.now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        TokioRuntime.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        TokioRuntime.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        TokioRuntime.block_on(future);
    }

    fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        TokioRuntime.yield_now()
    }

    fn name(&self) -> &'static str {
        "tokio+ice-tcp-mux"
    }
}

/// ICE credentials chosen by the node for one connection: a 16-character username fragment
/// and a 32-character password, from the system's random source.
pub(crate) fn ice_credentials() -> (String, String) {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 48];
    // Without randomness there is no secure ICE; the system source does not fail on Linux.
    getrandom::fill(&mut bytes).expect("the system's random source");
    let text: String = bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect();
    (text[..16].to_owned(), text[16..].to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn binding_request(username: &str) -> Vec<u8> {
        use rtc::stun::attributes::{ATTR_PRIORITY, RawAttribute};
        use rtc::stun::message::TransactionId;
        let mut msg = Message::new();
        msg.build(&[
            Box::new(BINDING_REQUEST),
            Box::new(TransactionId([7; 12])),
            // A PRIORITY attribute first, as browsers send.
            Box::new(RawAttribute {
                typ: ATTR_PRIORITY,
                length: 4,
                value: vec![1, 2, 3, 4],
            }),
            Box::new(Username::new(ATTR_USERNAME, username.to_owned())),
        ])
        .unwrap();
        msg.raw
    }

    #[test]
    fn the_nodes_fragment_is_read_from_a_binding_request() {
        let msg = binding_request("nodeFrag:browserFrag");
        assert_eq!(local_ufrag(&msg).as_deref(), Some("nodeFrag"));
        for bad in [
            binding_request("nocolon"),
            binding_request(":x"),
            msg[..19].to_vec(),
            msg[..30].to_vec(),
            {
                let mut m = msg.clone();
                m[4] = 0;
                m
            },
            {
                let mut m = msg.clone();
                m[1] = 0x11; // an indication, not a request
                m
            },
            {
                let mut m = msg.clone();
                m[0] = 0xC0; // not STUN: its two leading bits are zero
                m
            },
        ] {
            assert_eq!(local_ufrag(&bad), None);
        }
    }

    #[tokio::test]
    async fn passive_tcp_candidates_are_advertised_on_the_shared_port() {
        let mux = TcpMux::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let port = mux.local_addr().port();
        let sdp = "v=0\r\na=candidate:1 1 tcp 1518280447 10.0.0.5 43211 typ host tcptype passive\r\na=candidate:2 1 tcp 1518280447 10.0.0.5 9 typ host tcptype active\r\na=candidate:3 1 udp 2130706431 10.0.0.5 50000 typ host\r\n";
        let public = ["203.0.113.7".parse().unwrap()];
        let out = mux.advertise_sdp(sdp, &public);
        assert_eq!(
            out,
            format!(
                "v=0\r\na=candidate:1 1 tcp 1518280447 203.0.113.7 {port} typ host tcptype passive\r\na=candidate:2 1 tcp 1518280447 10.0.0.5 9 typ host tcptype active\r\na=candidate:3 1 udp 2130706431 10.0.0.5 50000 typ host\r\n"
            )
        );
        assert_eq!(
            mux.advertise_sdp(sdp, &[])
                .matches(&format!(" {port} "))
                .count(),
            1
        );
    }
}
