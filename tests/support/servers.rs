//! Real Redis and coturn servers, each on a free loopback port in a folder of its own.

use super::*;

/// A real `redis-server` on a free loopback port, stopped by its id when dropped.
#[derive(Debug)]
pub struct RedisServer {
    pub port: u16,
    child: Option<std::process::Child>,
    dir: std::path::PathBuf,
    /// Arguments added to every start (cluster mode).
    extra: Vec<String>,
    /// Stopped by SIGSTOP.
    frozen: bool,
}

/// What a node is given to reach Redis (`--redis-url`): one server's URL, or a cluster's.
pub trait RedisUrl {
    fn url(&self) -> String;
}

impl RedisUrl for RedisServer {
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl RedisServer {
    /// Starts a Redis that keeps its data in an append-only file, so a restart keeps the logs.
    pub fn start() -> Self {
        let (port, dir) = port_and_folder("redis");
        let mut server = Self {
            port,
            child: None,
            dir,
            extra: Vec::new(),
            frozen: false,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        RedisUrl::url(self)
    }

    /// Freezes the server (SIGSTOP): it holds its connections and answers nothing.
    pub fn freeze(&mut self) {
        self.signal("STOP");
        self.frozen = true;
    }

    /// Lets a frozen server go on (SIGCONT).
    pub fn thaw(&mut self) {
        self.signal("CONT");
        self.frozen = false;
    }

    /// Whether it runs and answers (not killed, not frozen).
    pub fn answers(&self) -> bool {
        self.child.is_some() && !self.frozen
    }

    /// Sends the server a signal by name (`STOP`, `CONT`) with the system's `kill`.
    fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name}");
    }

    /// The number of entries in the stream `key` (`XLEN`, through `redis-cli`).
    pub fn stream_len(&self, key: &str) -> u64 {
        self.number(&["XLEN", key])
    }

    /// What `redis-cli` prints for `args`, trimmed.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The number a command answers (0 for nothing: a missing key or field).
    pub fn number(&self, args: &[&str]) -> u64 {
        let text = self.cli(args);
        if text.is_empty() {
            return 0;
        }
        text.parse().unwrap_or_else(|_| panic!("{args:?}: {text}"))
    }

    /// Stops the server (as a crash would: SIGKILL).
    pub fn kill(&mut self) {
        self.frozen = false;
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
            .args(&self.extra)
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

/// A real Redis Cluster on loopback: masters (each with its replicas) joined by `redis-cli
/// --cluster create`, every server stopped by its id when dropped.
#[derive(Debug)]
pub struct RedisCluster {
    /// Masters first (in the order their slot ranges were given: 0…), then replicas.
    pub servers: Vec<RedisServer>,
}

impl RedisUrl for RedisCluster {
    /// Every server's address, comma-separated (a node needs one that answers).
    fn url(&self) -> String {
        self.servers
            .iter()
            .map(|s| format!("redis://127.0.0.1:{}", s.port))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl RedisCluster {
    /// `masters` masters with `replicas` replicas each; a replica takes over within about two
    /// seconds of its master going silent (`cluster-node-timeout` 1500 ms).
    pub fn start(masters: usize, replicas: usize) -> Self {
        let servers: Vec<RedisServer> = (0..masters * (1 + replicas))
            .map(|_| {
                let (port, dir) = cluster_port_and_folder();
                let mut server = RedisServer {
                    port,
                    child: None,
                    dir,
                    extra: [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "1500",
                        // As docs/many-nodes.md advises: the other shards serve on while one
                        // fails over.
                        "--cluster-require-full-coverage",
                        "no",
                    ]
                    .map(String::from)
                    .to_vec(),
                    frozen: false,
                };
                server.restart();
                server
            })
            .collect();
        let out = std::process::Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(servers.iter().map(|s| format!("127.0.0.1:{}", s.port)))
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("redis-cli runs");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = Self { servers };
        let deadline = std::time::Instant::now() + WAIT * 3;
        while !cluster.settled(masters) {
            assert!(
                std::time::Instant::now() < deadline,
                "the Redis Cluster did not settle"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster
    }

    /// Whether every live server sees the cluster whole (`cluster_state:ok`) with `masters`
    /// masters serving slots, and every replica is in step with its master.
    pub fn settled(&self, masters: usize) -> bool {
        let field = |text: &str, name: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(name).map(str::to_owned))
        };
        self.live().all(|s| {
            let info = s.cli(&["CLUSTER", "INFO"]);
            let replication = s.cli(&["INFO", "replication"]);
            field(&info, "cluster_state:").as_deref() == Some("ok")
                && field(&info, "cluster_size:") == Some(masters.to_string())
                && (field(&replication, "role:").as_deref() == Some("master")
                    || field(&replication, "master_link_status:").as_deref() == Some("up"))
        })
    }

    fn live(&self) -> impl Iterator<Item = &RedisServer> {
        self.servers.iter().filter(|s| s.answers())
    }

    /// The server that is now the master of `key`'s slot, as that server itself says.
    pub fn master_of(&self, key: &str) -> Option<usize> {
        let slot: u16 = self
            .live()
            .next()?
            .cli(&["CLUSTER", "KEYSLOT", key])
            .parse()
            .ok()?;
        self.servers.iter().position(|s| {
            s.answers()
                && s.cli(&["CLUSTER", "NODES"]).lines().any(|line| {
                    let fields: Vec<&str> = line.split(' ').collect();
                    fields.len() > 8
                        && fields[2].contains("myself")
                        && fields[2].contains("master")
                        && fields[8..].iter().any(|range| {
                            let mut ends = range.split('-').map(str::parse::<u16>);
                            match (ends.next(), ends.next()) {
                                (Some(Ok(a)), Some(Ok(b))) => (a..=b).contains(&slot),
                                (Some(Ok(a)), None) => a == slot,
                                _ => false,
                            }
                        })
                })
        })
    }

    /// Waits (bounded) until a master other than server `not` serves `key`'s slot; which.
    pub fn wait_failover(&self, key: &str, not: usize) -> usize {
        let deadline = std::time::Instant::now() + WAIT * 2;
        loop {
            if let Some(master) = self.master_of(key).filter(|m| *m != not) {
                return master;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no replica took over {key}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A free loopback port whose cluster bus port (10000 above) is free too, and a folder.
fn cluster_port_and_folder() -> (u16, std::path::PathBuf) {
    loop {
        let (port, dir) = port_and_folder("redis-cluster");
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return (port, dir);
        }
        let _ = std::fs::remove_dir_all(&dir);
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
        let (port, dir) = port_and_folder("turn");
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

/// A free loopback port for a server of `kind`, and a folder of its own named after both.
pub(crate) fn port_and_folder(kind: &str) -> (u16, std::path::PathBuf) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("addr")
        .port();
    let dir =
        std::env::temp_dir().join(format!("room-server-{kind}-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a data dir");
    (port, dir)
}
