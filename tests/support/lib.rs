//! The harness of the end-to-end tests: real nodes (in this process, or `room-server`
//! processes), real Redis and coturn servers, real WebSocket clients (a careful [`Learner`]
//! among them) and an HTTP client. The black-box tests next to it (`tests/*.rs`) and
//! room-server's own end-to-end tests use it.

use futures_util::{SinkExt, StreamExt};
use protocol::server::Welcome;
use protocol::ticket::{TicketClaims, TicketKey};
use protocol::{
    ClientMsg, Codec, LectureId, Nickname, ResumeFrom, Role, ServerMsg, UnixMillis, UserId,
};
use room_server::clock::{Clock, SystemClock};
use room_server::config::Config;
use room_server::gate::model::{Lecture, LectureStatus, StaffMember};
use room_server::{Node, run};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The lecture every test node serves: doors open, starting in 30 minutes.
pub const LECTURE: &str = "lec-e2e";
/// Bound on waiting for anything a test expects to happen.
pub const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct TestNode {
    pub addr: SocketAddr,
    pub node: Arc<Node>,
    pub key: TicketKey,
    stop: Option<oneshot::Sender<()>>,
    pub served: Option<JoinHandle<std::io::Result<()>>>,
}

/// A fresh SQLite file for one node.
pub fn sqlite_url() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("room-server-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    format!("sqlite://{}/node-{n}.db", dir.display())
}

/// A lecture starting `starts_in_ms` from now, 90 minutes long, with `staff`.
pub fn lecture(id: &str, starts_in_ms: i64, staff: Vec<StaffMember>) -> Lecture {
    let now = SystemClock.now();
    let starts_at = UnixMillis(now.0.saturating_add_signed(starts_in_ms));
    Lecture {
        id: id.into(),
        title: "E2E".into(),
        starts_at,
        ends_at: starts_at.plus_ms(90 * 60 * 1000),
        rows: 10,
        cols: 10,
        emotions: vec![],
        archive_available_at: None,
        status: LectureStatus::Scheduled,
        cancel_reason: None,
        ended_at: None,
        staff,
    }
}

pub fn test_config() -> Config {
    let key = TicketKey::new(b"end-to-end-test-secret-0123456789".to_vec()).expect("long enough");
    let mut config = Config::new(key);
    config.database_url = sqlite_url();
    // Test clients chat faster than people; the per-learner chat rate has its own tests.
    config.room.chat_burst = 1_000_000;
    // Every test peer is on loopback, which a node otherwise refuses to contact.
    config.media.allow_private_candidates = true;
    config
        .lectures
        .push(lecture(LECTURE, 30 * 60 * 1000, vec![]));
    config
}

impl TestNode {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = test_config();
        tweak(&mut config);
        let key = config.ticket_key.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let node = Node::start(config, Arc::new(SystemClock))
            .await
            .expect("the node starts");
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(run(listener, Arc::clone(&node), async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            node,
            key,
            stop: Some(stop),
            served: Some(served),
        }
    }

    /// Starts the node's shutdown, as SIGTERM does.
    pub fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub fn claims(&self, user: &str, nickname: &str, role: Role) -> TicketClaims {
        let now = SystemClock.now().0 / 1000;
        TicketClaims {
            lec: LectureId::from(LECTURE),
            sub: UserId::from(user),
            nick: Nickname::from(nickname),
            role,
            iat: now,
            exp: now + 300,
        }
    }

    pub fn ticket(&self, user: &str, nickname: &str, role: Role) -> String {
        self.key.mint(&self.claims(user, nickname, role))
    }

    pub fn url(&self, lecture: &str) -> String {
        format!("ws://{}/ws/lectures/{lecture}", self.addr)
    }

    pub async fn connect(&self, codec: Codec) -> Client {
        Client::connect(&self.url(LECTURE), codec)
            .await
            .expect("connects")
    }

    /// Connects and enters with a fresh ticket; returns the client and its welcome.
    pub async fn enter(&self, user: &str, nickname: &str, role: Role) -> (Client, Welcome) {
        self.enter_resuming(user, nickname, role, None).await
    }

    pub async fn enter_resuming(
        &self,
        user: &str,
        nickname: &str,
        role: Role,
        resume: Option<ResumeFrom>,
    ) -> (Client, Welcome) {
        hello_at(
            &self.url(LECTURE),
            self.ticket(user, nickname, role),
            resume,
        )
        .await
    }

    /// GET `path` on the node; returns the status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path).await
    }

    /// A value of the node's `/metrics` (on its own address when it has one).
    pub async fn metric(&self, name: &str) -> u64 {
        let at = self.node.metrics_addr().unwrap_or(self.addr);
        let (_, body) = http_get(at, "/metrics").await;
        body.lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("/metrics has no {name}"))
    }

    /// Waits (at most [`WAIT`]) until `/metrics` shows `name` at `want`.
    pub async fn wait_metric(&self, name: &str, want: u64) {
        let reached = tokio::time::timeout(WAIT, async {
            while self.metric(name).await != want {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(reached.is_ok(), "{name} did not reach {want}");
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// A GET, enough for health and metrics endpoints: the status and the body as text.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http(addr, "GET", path, &[], None).await
}

/// A request with extra headers and an optional JSON body: the status and the body as text.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    json: Option<&str>,
) -> (u16, String) {
    let answer = http_answer(addr, method, path, headers, json).await;
    let body = String::from_utf8_lossy(&answer.body).into_owned();
    (answer.status, body)
}

/// An HTTP answer as it came: status, headers (names in lower case) and the body's bytes.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The value of header `name` (lower case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request on a connection of its own (hyper's client), the path sent as given
/// (unnormalised, so tests can try `..` however it is spelt); the whole answer.
pub async fn http_answer(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    json: Option<&str>,
) -> Answer {
    use http_body_util::{BodyExt, Full};
    let exchange = async {
        let stream = TcpStream::connect(addr).await.expect("connects");
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("an HTTP/1.1 connection");
        tokio::spawn(connection);
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string())
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = Full::new(bytes::Bytes::from(json.unwrap_or("").to_owned()));
        let response = sender
            .send_request(request.body(body).expect("a request"))
            .await
            .expect("an answer");
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (n.as_str().to_owned(), value)
            })
            .collect();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("the whole body")
            .to_bytes()
            .to_vec();
        Answer {
            status,
            headers,
            body,
        }
    };
    tokio::time::timeout(WAIT, exchange)
        .await
        .expect("answers in time")
}

/// What a client saw next.
#[derive(Debug)]
pub enum Got {
    Msg(ServerMsg),
    /// The node closed the connection with this code (none: no close frame, just gone).
    Closed(Option<u16>),
}

#[derive(Debug)]
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub codec: Codec,
}

impl Client {
    pub async fn connect(url: &str, codec: Codec) -> Result<Self, tungstenite::Error> {
        Self::connect_with(url, codec, &[]).await
    }

    /// Connects with extra request headers (`X-Forwarded-For`, as a load balancer adds).
    pub async fn connect_with(
        url: &str,
        codec: Codec,
        headers: &[(&'static str, &str)],
    ) -> Result<Self, tungstenite::Error> {
        let mut request = url.into_client_request()?;
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(codec.subprotocol()),
        );
        for (name, value) in headers {
            request
                .headers_mut()
                .append(*name, HeaderValue::from_str(value).expect("a header value"));
        }
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Self { ws, codec })
    }

    pub async fn send(&mut self, msg: &ClientMsg) {
        let bytes = self.codec.encode_client(msg).expect("encodes");
        let frame = if self.codec.is_binary() {
            Message::Binary(bytes.into())
        } else {
            Message::Text(String::from_utf8(bytes).expect("json is utf-8").into())
        };
        self.ws.send(frame).await.expect("sends");
    }

    pub async fn send_raw(&mut self, frame: Message) {
        // The node may close while a large frame is still being written; that is fine here.
        let _ = self.ws.send(frame).await;
    }

    /// The next message or close, waiting at most [`WAIT`].
    pub async fn next(&mut self) -> Got {
        tokio::time::timeout(WAIT, self.next_unbounded())
            .await
            .expect("something arrives in time")
    }

    async fn next_unbounded(&mut self) -> Got {
        loop {
            match self.ws.next().await {
                None => return Got::Closed(None),
                Some(Err(_)) => return Got::Closed(None),
                Some(Ok(Message::Binary(b))) => {
                    return Got::Msg(
                        self.codec
                            .decode_server(&b)
                            .expect("the node sends valid frames"),
                    );
                }
                Some(Ok(Message::Text(t))) => {
                    return Got::Msg(
                        self.codec
                            .decode_server(t.as_bytes())
                            .expect("the node sends valid frames"),
                    );
                }
                Some(Ok(Message::Close(frame))) => {
                    return Got::Closed(frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next message or close within `wait`, or `None` if nothing came.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Got> {
        tokio::time::timeout(wait, self.next_unbounded()).await.ok()
    }

    pub async fn recv(&mut self) -> ServerMsg {
        match self.next().await {
            Got::Msg(m) => m,
            Got::Closed(code) => panic!("closed with {code:?} while a message was expected"),
        }
    }

    /// Reads until `pick` returns something, skipping other messages.
    pub async fn recv_until<T>(&mut self, mut pick: impl FnMut(&ServerMsg) -> Option<T>) -> T {
        tokio::time::timeout(WAIT, async {
            loop {
                match self.next_unbounded().await {
                    Got::Msg(m) => {
                        if let Some(t) = pick(&m) {
                            return t;
                        }
                    }
                    Got::Closed(code) => panic!("closed with {code:?} while waiting"),
                }
            }
        })
        .await
        .expect("the expected message arrives in time")
    }

    pub async fn welcome(&mut self) -> Welcome {
        match self.next().await {
            Got::Msg(ServerMsg::Welcome(w)) => *w,
            other => panic!("expected a welcome, got {other:?}"),
        }
    }

    /// Reads until the node closes; returns the close code.
    pub async fn close_code(&mut self) -> Option<u16> {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Got::Closed(code) = self.next_unbounded().await {
                    return code;
                }
            }
        })
        .await
        .expect("closed in time")
    }
}

pub fn now() -> UnixMillis {
    SystemClock.now()
}

/// A real `redis-server` on a free loopback port, stopped by its id when dropped.
#[derive(Debug)]
pub struct RedisServer {
    pub port: u16,
    child: Option<std::process::Child>,
    dir: std::path::PathBuf,
}

impl RedisServer {
    /// Starts a Redis that keeps its data in an append-only file, so a restart keeps the logs.
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("addr")
            .port();
        let dir =
            std::env::temp_dir().join(format!("room-server-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a data dir");
        let mut server = Self {
            port,
            child: None,
            dir,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Stops the server (as a crash would: SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&mut self) {
        self.kill();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
            ])
            .arg("--appendfsync")
            .arg("always")
            .arg("--dir")
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/test installs it)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A real coturn (`turnserver`) on a free loopback port taking TURN REST credentials made with
/// `secret` (`use-auth-secret`), stopped by its id when dropped.
#[derive(Debug)]
pub struct TurnServer {
    pub port: u16,
    child: std::process::Child,
    dir: std::path::PathBuf,
}

impl TurnServer {
    pub fn start(secret: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("addr")
            .port();
        let dir =
            std::env::temp_dir().join(format!("room-server-turn-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a data dir");
        let child = std::process::Command::new("turnserver")
            .arg("-n")
            .args(["--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1"])
            .args(["--listening-port", &port.to_string()])
            .args(["--use-auth-secret", "--static-auth-secret", secret])
            .args([
                "--realm",
                "lecture.test",
                "--no-tls",
                "--no-dtls",
                "--no-cli",
            ])
            .arg("--db")
            .arg(dir.join("turndb"))
            .args(["--log-file", "stdout", "--simple-log"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("turnserver runs (scripts/test installs coturn)");
        let server = Self { port, child, dir };
        // It listens on TCP and UDP alike: TCP shows when it is up.
        let deadline = std::time::Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "turnserver did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("turn:127.0.0.1:{}?transport=udp", self.port)
    }
}

impl Drop for TurnServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `room-server` binary of this build, built first (once per test process, by the cargo
/// running the tests) so that a test never runs a stale one.
pub fn room_server_binary() -> std::path::PathBuf {
    static BINARY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BINARY
        .get_or_init(|| {
            // A test runs as <target>/<profile>/deps/<test>; binaries are in <target>/<profile>.
            let exe = std::env::current_exe().expect("the test's own path");
            let profile = exe
                .parent()
                .and_then(std::path::Path::parent)
                .expect("a test under <target>/<profile>/deps");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut build = std::process::Command::new(cargo);
            build
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "room-server",
                    "--bin",
                    "room-server",
                ])
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            if profile.file_name().is_some_and(|name| name == "release") {
                build.arg("--release");
            }
            let status = build.status().expect("cargo runs");
            assert!(status.success(), "cargo could not build room-server");
            profile.join("room-server")
        })
        .clone()
}

/// A `room-server` process, killed by its id when dropped.
#[derive(Debug)]
pub struct NodeProcess {
    pub addr: SocketAddr,
    child: std::process::Child,
}

impl NodeProcess {
    /// Starts the binary with `args` on a free loopback port and waits until it listens.
    pub fn start(args: &[&str]) -> Self {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(room_server_binary())
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .env(
                "ROOM_LOG",
                std::env::var("NODE_LOG_LEVEL").unwrap_or_else(|_| "info".into()),
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // NODE_LOG=1 shows what the nodes log, to debug a failing test.
            let show = std::env::var_os("NODE_LOG").is_some();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if show {
                    eprintln!("[node] {line}");
                }
                if let Some(rest) = line.split("listening addr=").nth(1) {
                    let _ = tx.send(
                        rest.split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_owned(),
                    );
                }
            }
        });
        let addr = rx
            .recv_timeout(WAIT)
            .expect("the node logs `listening`")
            .parse()
            .expect("an address");
        Self { addr, child }
    }

    /// SIGKILL: the node dies without a word to anyone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn url(&self, lecture: &str) -> String {
        format!("ws://{}/ws/lectures/{lecture}", self.addr)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The same conveniences as an in-process test node, for a node process of the cluster.
impl NodeProcess {
    pub fn ticket(&self, user: &str, nickname: &str, role: Role) -> String {
        cluster_ticket(user, nickname, role)
    }

    pub async fn connect(&self, codec: Codec) -> Client {
        Client::connect(&self.url(LECTURE), codec)
            .await
            .expect("connects")
    }

    pub async fn enter(
        &self,
        user: &str,
        nickname: &str,
        role: Role,
    ) -> (Client, protocol::server::Welcome) {
        self.enter_resuming(user, nickname, role, None).await
    }

    pub async fn enter_resuming(
        &self,
        user: &str,
        nickname: &str,
        role: Role,
        resume: Option<ResumeFrom>,
    ) -> (Client, protocol::server::Welcome) {
        hello_at(
            &self.url(LECTURE),
            self.ticket(user, nickname, role),
            resume,
        )
        .await
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path).await
    }
}

/// The chat event in a message, if it is one.
pub fn chat_of(msg: &ServerMsg) -> Option<protocol::server::ChatEvent> {
    match msg {
        ServerMsg::Chat { event } => Some(event.clone()),
        _ => None,
    }
}

/// The texts of the chat messages among `events`, in order.
pub fn texts(events: &[protocol::server::ChatEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            protocol::server::ChatEvent::Message(m) => Some(m.text.clone()),
            _ => None,
        })
        .collect()
}

/// Every client sends `per_client` messages at once (`"{i}:{k}"`); returns what each client
/// then received, as (offset, text), until it has all of them.
pub async fn chat_storm(
    clients: &mut [Client],
    per_client: usize,
) -> Vec<Vec<(protocol::ChatOffset, String)>> {
    use futures_util::future::join_all;
    join_all(clients.iter_mut().enumerate().map(|(i, c)| async move {
        for k in 0..per_client {
            c.send(&ClientMsg::Chat {
                text: format!("{i}:{k}"),
                question: false,
            })
            .await;
        }
    }))
    .await;
    let total = clients.len() * per_client;
    join_all(clients.iter_mut().map(|c| async move {
        let mut got = Vec::new();
        while got.len() < total {
            if let Some(protocol::server::ChatEvent::Message(m)) = chat_of(&c.recv().await) {
                got.push((m.offset, m.text));
            }
        }
        got
    }))
    .await
}

/// Every learner (its id in the room, from its welcome; client) asks for `seat` at once;
/// returns, for each, whether it won (the seat update names it) or was told the seat is taken.
pub async fn race_for_seat(learners: &mut [(UserId, Client)], seat: protocol::Seat) -> Vec<bool> {
    use futures_util::future::join_all;
    join_all(
        learners
            .iter_mut()
            .map(|(_, c)| async move { c.send(&ClientMsg::TakeSeat { seat }).await }),
    )
    .await;
    join_all(learners.iter_mut().map(|(user, c)| async move {
        c.recv_until(|m| match m {
            ServerMsg::Error {
                code: protocol::ErrorCode::SeatTaken,
                ..
            } => Some(false),
            ServerMsg::Update(u) => u
                .seats
                .iter()
                .any(|s| s.seat == seat && s.occupant.as_ref().is_some_and(|o| &o.user == user))
                .then_some(true),
            _ => None,
        })
        .await
    }))
    .await
}

/// Connects to a room URL (MessagePack), presents `ticket` and returns the client and its
/// welcome.
pub async fn hello_at(url: &str, ticket: String, resume: Option<ResumeFrom>) -> (Client, Welcome) {
    let mut client = Client::connect(url, Codec::MsgPack)
        .await
        .expect("connects");
    client.send(&ClientMsg::Hello { ticket, resume }).await;
    let welcome = client.welcome().await;
    (client, welcome)
}

/// The ticket secret of the node processes [`processes`] starts.
pub const CLUSTER_SECRET: &str = "cluster-ticket-secret-cluster-ticket-secret";

/// A ticket for [`LECTURE`] signed with [`CLUSTER_SECRET`], valid ten minutes.
pub fn cluster_ticket(user: &str, nickname: &str, role: Role) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let claims = TicketClaims {
        lec: LECTURE.into(),
        sub: user.into(),
        nick: nickname.into(),
        role,
        iat: now,
        exp: now + 600,
    };
    TicketKey::new(CLUSTER_SECRET.as_bytes().to_vec())
        .expect("long enough")
        .mint(&claims)
}

/// A node config in `dir` for [`LECTURE`] (doors open) signed with [`CLUSTER_SECRET`], with
/// `tables` (TOML tables such as `[limits]`) added; its path.
pub fn cluster_config(dir: &std::path::Path, tables: &str) -> String {
    let starts = time::OffsetDateTime::now_utc() + time::Duration::minutes(30);
    let ends = starts + time::Duration::minutes(90);
    let rfc = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .expect("formats")
    };
    let config = dir.join("room.toml");
    std::fs::write(
        &config,
        format!(
            "ticket_secret = \"{CLUSTER_SECRET}\"\n{tables}\n[[lectures]]\nid = \"{LECTURE}\"\ntitle = \"cluster\"\nstarts_at = \"{}\"\nends_at = \"{}\"\nrows = 5\ncols = 5\n",
            rfc(starts),
            rfc(ends)
        ),
    )
    .expect("writes the config");
    config.to_str().expect("a utf-8 path").to_owned()
}

/// `n` `room-server` processes on one Redis and one database (in `dir`), the lecture in their
/// config (doors open, seats held 3 seconds).
pub fn processes(redis: &RedisServer, dir: &std::path::Path, n: usize) -> Vec<NodeProcess> {
    let config = cluster_config(dir, "[room]\nseat_grace_secs = 3\nchat_burst = 1000000");
    let database = format!("sqlite://{}/shared.db", dir.display());
    (0..n)
        .map(|_| {
            NodeProcess::start(&[
                "--config",
                &config,
                "--database-url",
                &database,
                "--redis-url",
                &redis.url(),
            ])
        })
        .collect()
}

impl NodeProcess {
    /// Sends the process a signal by name (`STOP`, `CONT`, `TERM`) with the system's `kill`.
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name}");
    }

    /// Waits (bounded) for the process to exit; its status.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Client {
    /// Sends a numbered command.
    pub async fn send_command(
        &mut self,
        command: &protocol::Command,
    ) -> Result<(), tungstenite::Error> {
        let bytes = self.codec.encode_command(command).expect("encodes");
        let frame = if self.codec.is_binary() {
            Message::Binary(bytes.into())
        } else {
            Message::Text(String::from_utf8(bytes).expect("json is utf-8").into())
        };
        self.ws.send(frame).await
    }
}

/// A learner as a careful client is written (docs/protocol.md, "Acknowledgements"): it numbers
/// what it says, keeps each until acknowledged, reconnects after a reconnect code or a dropped
/// connection (resuming where its chat left off, through any node), and then sends again what
/// was not acknowledged. It checks the chat stream as it goes: offsets without gaps.
#[derive(Debug)]
pub struct Learner {
    pub user: String,
    nickname: String,
    /// Room URLs to enter through, tried in turn on each reconnect.
    urls: Vec<String>,
    ticket: fn(&str, &str, Role) -> String,
    client: Option<Client>,
    resume: Option<ResumeFrom>,
    next_id: u64,
    /// What was said and not yet acknowledged, by number.
    pub pending: std::collections::BTreeMap<u64, String>,
    /// Every chat message of the lecture this learner has, as (offset, text), in order.
    pub heard: Vec<(u64, String)>,
    /// The close codes that made it reconnect (`None`: the connection just broke).
    pub closes: Vec<Option<u16>>,
    /// Refusals of numbered commands.
    pub refused: Vec<protocol::ErrorCode>,
    /// Whether its node said it lost the other nodes (`service` degraded) at some point.
    pub saw_degraded: bool,
}

impl Learner {
    /// Enters through `urls[0]`.
    pub async fn enter(
        user: &str,
        nickname: &str,
        urls: Vec<String>,
        ticket: fn(&str, &str, Role) -> String,
    ) -> Self {
        let mut learner = Self {
            user: user.to_owned(),
            nickname: nickname.to_owned(),
            urls,
            ticket,
            client: None,
            resume: None,
            // Any start does; a distinct one per learner shows the numbers are per person.
            next_id: 1_000 * (1 + user.len() as u64),
            pending: std::collections::BTreeMap::new(),
            heard: Vec::new(),
            closes: Vec::new(),
            refused: Vec::new(),
            saw_degraded: false,
        };
        learner.connect(0).await;
        learner
    }

    async fn connect(&mut self, attempt: usize) {
        let url = self.urls[attempt % self.urls.len()].clone();
        let ticket = (self.ticket)(&self.user, &self.nickname, Role::Learner);
        let Ok(mut client) = Client::connect(&url, Codec::MsgPack).await else {
            return;
        };
        if client
            .send_command(
                &ClientMsg::Hello {
                    ticket,
                    resume: self.resume,
                }
                .into(),
            )
            .await
            .is_err()
        {
            return;
        }
        let welcome = match client.next_within(WAIT).await {
            Some(Got::Msg(ServerMsg::Welcome(w))) => *w,
            _ => return,
        };
        self.welcomed(&welcome);
        // What was not acknowledged goes again, in order: the room applies each number once.
        for (id, text) in self.pending.clone() {
            let command = protocol::Command {
                id: Some(protocol::CommandId(id)),
                msg: ClientMsg::Chat {
                    text,
                    question: false,
                },
            };
            if client.send_command(&command).await.is_err() {
                return;
            }
        }
        self.client = Some(client);
    }

    /// Applies a welcome: on entering, or a fresh one on an open connection (a node running its
    /// room on alone while Redis is away starts a new chat generation).
    fn welcomed(&mut self, welcome: &Welcome) {
        let events = welcome.chat.iter().filter_map(|e| match e {
            protocol::server::ChatEvent::Message(m) => Some((m.offset.0, m.text.clone())),
            _ => None,
        });
        match welcome.replay {
            protocol::server::Replay::Missed => self.heard.extend(events),
            protocol::server::Replay::Snapshot => self.heard = events.collect(),
        }
        self.resume = Some(ResumeFrom {
            epoch: welcome.epoch,
            offset: welcome.last_offset,
        });
    }

    /// Says `text` in the chat (kept until acknowledged).
    pub async fn say(&mut self, text: &str) {
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(id, text.to_owned());
        let command = protocol::Command {
            id: Some(protocol::CommandId(id)),
            msg: ClientMsg::Chat {
                text: text.to_owned(),
                question: false,
            },
        };
        if let Some(client) = &mut self.client
            && client.send_command(&command).await.is_err()
        {
            // Broken: the next read notices and reconnects; the text waits in `pending`.
        }
    }

    /// Handles what arrives for at most `wait`, reconnecting (through the next node, with
    /// back-off) as often as needed.
    pub async fn pump(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        let mut attempt = 0;
        while tokio::time::Instant::now() < deadline {
            let Some(client) = &mut self.client else {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                self.connect(attempt).await;
                continue;
            };
            let left = deadline - tokio::time::Instant::now();
            match client.next_within(left).await {
                None => return,
                Some(Got::Closed(code)) => {
                    assert!(
                        code.is_none_or(|c| protocol::CloseCode::from_code(c)
                            .is_some_and(protocol::CloseCode::is_reconnect)),
                        "{}: closed with a terminal code {code:?}",
                        self.user
                    );
                    self.closes.push(code);
                    self.client = None;
                }
                Some(Got::Msg(msg)) => self.take(msg),
            }
        }
    }

    fn take(&mut self, msg: ServerMsg) {
        match msg {
            ServerMsg::Chat { event } => {
                let offset = event.offset().0;
                if let Some(r) = &self.resume {
                    assert_eq!(offset, r.offset.0 + 1, "{}: a gap or a repeat", self.user);
                }
                if let protocol::server::ChatEvent::Message(m) = event {
                    self.heard.push((offset, m.text));
                } else {
                    self.heard.push((offset, String::new()));
                }
                if let Some(r) = &mut self.resume {
                    r.offset = protocol::ChatOffset(offset);
                }
            }
            ServerMsg::Ack { id } => {
                self.pending.remove(&id.0);
            }
            ServerMsg::Service { degraded: true } => self.saw_degraded = true,
            ServerMsg::Welcome(welcome) => self.welcomed(&welcome),
            ServerMsg::Error {
                code, id: Some(id), ..
            } => {
                self.pending.remove(&id.0);
                self.refused.push(code);
            }
            _ => {}
        }
    }

    /// How many times `text` is in this learner's chat.
    pub fn count(&self, text: &str) -> usize {
        self.heard.iter().filter(|(_, t)| t == text).count()
    }
}
