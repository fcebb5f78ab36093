//! Real Redis and coturn servers, each on a free loopback port in a folder of its own.

use super::*;

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
        let (port, dir) = port_and_folder("redis");
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
