//! The systems under test, started as child processes on loopback and stopped by their id:
//! `room-server` nodes (with a generated config), `redis-server`, the Socket.IO peer, and
//! `nats-server` (with a generated config).

use anyhow::{Context, bail};
use protocol::ticket::TicketKey;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a process may take to start listening.
const START_WAIT: Duration = Duration::from_secs(30);

/// A child process killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// A folder of its own, removed when dropped.
    dir: Option<PathBuf>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Spawns `cmd`, and waits until one of its output lines (stdout or stderr, as `from_stderr`
/// says) yields an address through `parse`. The other lines are dropped.
async fn spawn_until(
    mut cmd: Command,
    what: &str,
    from_stderr: bool,
    parse: impl Fn(&str) -> Option<SocketAddr>,
    dir: Option<PathBuf>,
) -> anyhow::Result<Proc> {
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    if from_stderr {
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    } else {
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    }
    let mut child = cmd.spawn().with_context(|| format!("starting {what}"))?;
    let pid = child.id().context("a child id")?;
    let out: Box<dyn tokio::io::AsyncRead + Unpin + Send> = if from_stderr {
        Box::new(child.stderr.take().context("piped stderr")?)
    } else {
        Box::new(child.stdout.take().context("piped stdout")?)
    };
    let mut lines = BufReader::new(out).lines();
    let found = tokio::time::timeout(START_WAIT, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(addr) = parse(&line) {
                return Ok(Some(addr));
            }
            // room-server and Node, then nats-server's error and fatal lines.
            if ["ERROR", "Error:", "[ERR]", "[FTL]"]
                .iter()
                .any(|mark| line.contains(mark))
            {
                eprintln!("{what}: {line}");
            }
        }
        anyhow::Ok(None)
    })
    .await;
    let addr = match found {
        Ok(Ok(Some(addr))) => addr,
        Ok(Ok(None)) => bail!("{what} exited before listening"),
        Ok(Err(e)) => return Err(e),
        Err(_) => bail!("{what} did not listen within {START_WAIT:?}"),
    };
    // Keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Proc {
        child,
        pid,
        addr,
        dir,
    })
}

/// A free TCP port on loopback (for servers that cannot report the one they picked).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A fresh scratch folder under the system's temp folder.
pub fn scratch_dir(tag: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "lecture-bench-{tag}-{}-{}",
        std::process::id(),
        free_port()?
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The lecture every profile uses: doors open, starting in ten minutes.
#[derive(Clone, Debug)]
pub struct BenchLecture {
    /// Its id.
    pub id: String,
    /// Seat grid rows.
    pub rows: u16,
    /// Seat grid columns.
    pub cols: u16,
}

impl BenchLecture {
    /// A grid with room for `learners`, 100 columns wide.
    pub fn for_learners(learners: usize) -> Self {
        let cols: u16 = 100;
        let rows = u16::try_from(learners.div_ceil(usize::from(cols)).max(1) + 1).unwrap_or(999);
        Self {
            id: "bench".into(),
            rows,
            cols,
        }
    }
}

/// The secret every node of a run shares (fresh per run).
pub fn ticket_key() -> anyhow::Result<(TicketKey, String)> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok((TicketKey::new(hex.clone().into_bytes())?, hex))
}

fn rfc3339(at: std::time::SystemTime) -> anyhow::Result<String> {
    Ok(time::OffsetDateTime::from(at).format(&time::format_description::well_known::Rfc3339)?)
}

/// How to start `room-server` nodes for a run.
#[derive(Clone, Debug)]
pub struct RoomNodeSetup {
    /// The `room-server` binary.
    pub bin: PathBuf,
    /// The shared ticket secret.
    pub secret: String,
    /// The lecture in every node's config.
    pub lecture: BenchLecture,
    /// Redis, for several nodes.
    pub redis_url: Option<String>,
    /// Extra TOML appended to the generated config (e.g. a `[media]` table).
    pub extra_toml: String,
}

impl RoomNodeSetup {
    /// Starts one node on a free loopback port with its own SQLite file.
    pub async fn spawn(&self, name: &str) -> anyhow::Result<Proc> {
        let dir = scratch_dir(name)?;
        let now = std::time::SystemTime::now();
        let starts = rfc3339(now + Duration::from_secs(600))?;
        let ends = rfc3339(now + Duration::from_secs(600 + 3 * 3600))?;
        let db = dir.join("room.db");
        let redis = self
            .redis_url
            .as_ref()
            .map(|u| format!("redis_url = \"{u}\"\n"))
            .unwrap_or_default();
        let BenchLecture { id, rows, cols } = &self.lecture;
        // Limits are raised where a benchmark is not an attack: thousands of learners arrive
        // from a handful of loopback addresses, and the load generator is not a flood.
        let config = format!(
            r#"ticket_secret = "{secret}"
database_url = "sqlite://{db}"
{redis}
[limits]
max_connections = 100000
connects_per_sec_per_ip = 100000
connect_burst_per_ip = 100000
outbound_queue = 4096
[room]
# The generator's learners chat faster than people do: the per-learner chat rate is not what
# is measured.
chat_interval_ms = 1
chat_burst = 1000000
[[lectures]]
id = "{id}"
title = "Benchmark lecture"
starts_at = "{starts}"
ends_at = "{ends}"
rows = {rows}
cols = {cols}
staff = [{{ account = "bench-instructor", role = "instructor" }}]
{extra}
"#,
            secret = self.secret,
            db = db.display(),
            extra = self.extra_toml,
        );
        let path = dir.join("room.toml");
        std::fs::write(&path, config)?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--config")
            .arg(&path)
            .args(["--listen", "127.0.0.1:0"])
            .env("ROOM_LOG", "info")
            .env_remove("ROOM_CONFIG");
        spawn_until(
            cmd,
            "room-server",
            true,
            |line| {
                line.split("listening addr=")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|a| a.parse().ok())
            },
            Some(dir),
        )
        .await
    }
}

/// Starts a throwaway `redis-server` on a free loopback port (no persistence).
pub async fn spawn_redis() -> anyhow::Result<Proc> {
    let port = free_port()?;
    let mut cmd = Command::new("redis-server");
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]);
    spawn_until(
        cmd,
        "redis-server",
        false,
        |line| {
            line.contains("Ready to accept connections")
                .then(|| SocketAddr::from(([127, 0, 0, 1], port)))
        },
        None,
    )
    .await
}

/// Starts the Socket.IO peer (`bench/peers/socketio/server.js`).
pub async fn spawn_socketio(
    peer_dir: &Path,
    lecture: &BenchLecture,
    redis_url: Option<&str>,
    node_id: &str,
) -> anyhow::Result<Proc> {
    let mut cmd = Command::new("node");
    cmd.current_dir(peer_dir)
        .arg("server.js")
        .args(["--port", "0", "--host", "127.0.0.1"])
        .args(["--lecture", &lecture.id])
        .args(["--rows", &lecture.rows.to_string()])
        .args(["--cols", &lecture.cols.to_string()])
        .args(["--node-id", node_id]);
    if let Some(url) = redis_url {
        cmd.args(["--redis", url]);
    }
    spawn_until(
        cmd,
        "the Socket.IO peer",
        false,
        |line| {
            line.strip_prefix("listening ")
                .and_then(|p| p.trim().parse::<u16>().ok())
                .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
        },
        None,
    )
    .await
}

/// What `nats-server --version` says (`nats-server: v2.9.10`): also whether it is there.
pub async fn nats_version(bin: &Path) -> anyhow::Result<String> {
    let out = Command::new(bin)
        .arg("--version")
        .output()
        .await
        .with_context(|| {
            format!(
                "running {} (Debian's package nats-server; `--nats-server PATH` names another)",
                bin.display()
            )
        })?;
    anyhow::ensure!(
        out.status.success(),
        "{} --version: {}",
        bin.display(),
        out.status
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Starts `nats-server` with a generated config: its WebSocket listener (plain, no TLS, no
/// compression) on a free loopback port, which is the address learners connect to, and a
/// client port on another that nobody uses but the server needs.
pub async fn spawn_nats(bin: &Path) -> anyhow::Result<Proc> {
    let dir = scratch_dir("nats")?;
    let (client_port, ws_port) = (free_port()?, free_port()?);
    // Limits are raised where a benchmark is not an attack, as for room-server: connections
    // (default 65,536). The rest are nats-server's defaults, which a team would start from: a
    // connection may have 64 MiB queued (max_pending) and a write may block 10 s
    // (write_deadline) before it is cut off as a slow consumer.
    let config = format!(
        r#"# Written by the load generator for one run.
listen: "127.0.0.1:{client_port}"
max_connections: 1000000
websocket {{
  listen: "127.0.0.1:{ws_port}"
  no_tls: true
  compression: false
}}
"#
    );
    let path = dir.join("nats.conf");
    std::fs::write(&path, config)?;
    let mut cmd = Command::new(bin);
    cmd.arg("--config").arg(&path);
    let ws = SocketAddr::from(([127, 0, 0, 1], ws_port));
    spawn_until(
        cmd,
        "nats-server",
        true,
        |line| line.contains("Server is ready").then_some(ws),
        Some(dir),
    )
    .await
    .with_context(|| format!("nats-server ({})", bin.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_fits_learners() {
        let l = BenchLecture::for_learners(5000);
        assert!(usize::from(l.rows) * usize::from(l.cols) >= 5000);
    }
}
