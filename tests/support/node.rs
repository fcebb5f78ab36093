//! A node in this test process on a loopback port, with the lecture and tickets of a test.

use super::*;

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
        started_at: None,
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
    // A short drain: the tests that stop a node do not wait the production window.
    config.limits.drain_window_ms = 200;
    config.limits.drain_spread_ms = 300;
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

    /// The operators' address (`metrics_listen`), once the node has bound it.
    pub async fn metrics_addr(&self) -> SocketAddr {
        let deadline = std::time::Instant::now() + crate::WAIT;
        loop {
            if let Some(addr) = self.node.metrics_addr() {
                return addr;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the metrics address is bound"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
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

impl Door for TestNode {
    fn url(&self, lecture: &str) -> String {
        Self::url(self, lecture)
    }

    fn ticket(&self, user: &str, nickname: &str, role: Role) -> String {
        Self::ticket(self, user, nickname, role)
    }
}
