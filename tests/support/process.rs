//! `room-server` processes: the binary as operators run it, alone or several on one Redis.

use super::*;

/// The `room-server` binary to test: `ROOM_SERVER_BIN` when set (the test command sets it to
/// the binary it has just built with the tests), else this build's, built first (once per test
/// process, by the cargo running the tests) so that a test never runs a stale one.
pub fn room_server_binary() -> std::path::PathBuf {
    static BINARY: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Some(given) = std::env::var_os("ROOM_SERVER_BIN").filter(|b| !b.is_empty()) {
                return given.into();
            }
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

    pub async fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path).await
    }

    /// Waits (at most [`WAIT`]) until `/metrics` shows an observation in histogram `family`.
    pub async fn wait_observed(&self, family: &str) {
        let count = format!("{family}_count ");
        let observed = tokio::time::timeout(WAIT, async {
            loop {
                let (_, body) = self.get("/metrics").await;
                let n = body.lines().find_map(|l| l.strip_prefix(&count));
                if n.and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n > 0) {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(observed.is_ok(), "{family} has no observation");
    }
}

/// The ticket secret of the node processes [`processes`] starts.
pub const CLUSTER_SECRET: &str = "cluster-ticket-secret-cluster-ticket-secret";

/// A ticket for [`LECTURE`] signed with [`CLUSTER_SECRET`], valid ten minutes.
pub fn cluster_ticket(user: &str, nickname: &str, role: Role) -> String {
    cluster_ticket_for(LECTURE, user, nickname, role)
}

/// A ticket for `lecture` signed with [`CLUSTER_SECRET`], valid ten minutes.
pub fn cluster_ticket_for(lecture: &str, user: &str, nickname: &str, role: Role) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let claims = TicketClaims {
        lec: lecture.into(),
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

/// A node config's `[[lectures]]` entry for `id`: doors open (it starts in 30 minutes), a
/// 5×5 grid.
pub fn lecture_table(id: &str) -> String {
    let starts = time::OffsetDateTime::now_utc() + time::Duration::minutes(30);
    let ends = starts + time::Duration::minutes(90);
    let rfc = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .expect("formats")
    };
    format!(
        "[[lectures]]\nid = \"{id}\"\ntitle = \"cluster\"\nstarts_at = \"{}\"\nends_at = \"{}\"\nrows = 5\ncols = 5\n",
        rfc(starts),
        rfc(ends)
    )
}

/// A node config in `dir` for [`LECTURE`] (doors open) signed with [`CLUSTER_SECRET`], with
/// `tables` (TOML tables such as `[limits]`, or more `[[lectures]]`) added; its path.
pub fn cluster_config(dir: &std::path::Path, tables: &str) -> String {
    let config = dir.join("room.toml");
    std::fs::write(
        &config,
        format!(
            "ticket_secret = \"{CLUSTER_SECRET}\"\n{tables}\n{}",
            lecture_table(LECTURE)
        ),
    )
    .expect("writes the config");
    config.to_str().expect("a utf-8 path").to_owned()
}

/// `n` `room-server` processes on one Redis and one database (in `dir`), the lecture in their
/// config (doors open, seats held 3 seconds).
pub fn processes(redis: &impl RedisUrl, dir: &std::path::Path, n: usize) -> Vec<NodeProcess> {
    processes_with(
        redis,
        dir,
        n,
        "[room]\nseat_grace_secs = 3\nchat_burst = 1000000\n[limits]\ndrain_window_ms = 300\ndrain_spread_ms = 1000",
    )
}

/// [`processes`] with the config's `tables` given.
pub fn processes_with(
    redis: &impl RedisUrl,
    dir: &std::path::Path,
    n: usize,
    tables: &str,
) -> Vec<NodeProcess> {
    cluster_config(dir, tables);
    more_processes(redis, dir, n)
}

/// `n` more nodes with the config and database of the nodes started in `dir`: nodes added to
/// a running lecture.
pub fn more_processes(redis: &impl RedisUrl, dir: &std::path::Path, n: usize) -> Vec<NodeProcess> {
    let config = dir.join("room.toml");
    let config = config.to_str().expect("a utf-8 path");
    let database = format!("sqlite://{}/shared.db", dir.display());
    (0..n)
        .map(|_| {
            NodeProcess::start(&[
                "--config",
                config,
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

impl Door for NodeProcess {
    fn url(&self, lecture: &str) -> String {
        Self::url(self, lecture)
    }

    fn ticket(&self, user: &str, nickname: &str, role: Role) -> String {
        Self::ticket(self, user, nickname, role)
    }
}
