//! Janus (Debian's `janus` package) as the SFU: a child process with a generated config folder
//! (bench/janus/*.in: only the streaming plugin and the WebSocket transport, loopback), an RTP
//! mountpoint the publisher feeds with plain RTP, and subscribers that `watch` it over the
//! WebSocket API (`janus-protocol`).

use super::{Joined, Target};
use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use rtc::shared::marshal::Marshal;
use serde_json::{Value, json};
use signaling::test_peer::{
    AUDIO_PT, AUDIO_SSRC, Network, Outgoing, Pump, RtpSink, Sent, Synthetic, TestPeer, VIDEO_PT,
    VIDEO_SSRC,
};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const JANUS_CFG: &str = include_str!("../../janus/janus.jcfg.in");
const WS_CFG: &str = include_str!("../../janus/janus.transport.websockets.jcfg.in");
const STREAMING_CFG: &str = include_str!("../../janus/janus.plugin.streaming.jcfg.in");
/// The mountpoint's id in the streaming config.
const MOUNTPOINT: u64 = 1;
/// Where Debian puts Janus's plugins and transports.
const LIBDIR: &str = "/usr/lib/x86_64-linux-gnu/janus";
/// Janus drops a session after `session_timeout` (60 s in our config) without a request.
const KEEPALIVE: Duration = Duration::from_secs(25);
/// Longest wait for one API answer.
const STEP: Duration = Duration::from_secs(30);

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A running Janus with its publisher feeding the mountpoint.
pub struct Janus {
    child: Child,
    pid: u32,
    dir: PathBuf,
    ws_url: String,
    transaction: AtomicU64,
    /// The publisher's video and audio, plain RTP to the mountpoint.
    pumps: [Pump; 2],
}

/// One of the mountpoint's RTP ports, fed from a socket of the bench's.
struct MountpointPort {
    socket: Arc<tokio::net::UdpSocket>,
    to: SocketAddr,
    ssrc: u32,
    payload_type: u8,
}

impl RtpSink for MountpointPort {
    fn send(&self, packet: &Outgoing) -> impl Future<Output = bool> + Send {
        let bytes = packet.to_packet(self.ssrc, self.payload_type).marshal();
        async move {
            match bytes {
                Ok(bytes) => self.socket.send_to(&bytes, self.to).await.is_ok(),
                Err(_) => false,
            }
        }
    }
}

impl std::fmt::Debug for Janus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Janus")
            .field("pid", &self.pid)
            .field("dir", &self.dir)
            .field("ws_url", &self.ws_url)
            .finish_non_exhaustive()
    }
}

fn free_udp_port() -> anyhow::Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The IPv4 address of Janus's first host candidate in `offer`. Janus never gathers on
/// loopback, so its candidates carry the machine's own interface address; subscribers bind
/// that address (still a local one: the kernel delivers the packets without a wire) so their
/// candidates pair with Janus's. Loopback if the offer names none.
fn host_ip(offer: &str) -> IpAddr {
    offer
        .lines()
        .filter_map(|l| l.strip_prefix("a=candidate:"))
        .filter(|c| c.contains(" typ host"))
        .filter_map(|c| c.split_whitespace().nth(4)?.parse::<Ipv4Addr>().ok())
        .map(IpAddr::V4)
        .next()
        .unwrap_or(LOOPBACK)
}

/// Where the last run's Janus log is kept.
pub fn last_log() -> PathBuf {
    std::env::temp_dir().join("lecture-bench-janus-last.log")
}

/// The last lines of Janus's log, for an error message.
fn log_tail(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("janus.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl Janus {
    /// Starts `bin` with a generated config and the publisher's RTP going to its mountpoint.
    pub async fn start(bin: &Path, event_loops: usize) -> anyhow::Result<Self> {
        let dir = crate::nodes::scratch_dir("janus")?;
        let ws_port = crate::nodes::free_port()?;
        let video_port = free_udp_port()?;
        let audio_port = free_udp_port()?;
        let fill = |template: &str| {
            template
                .replace("@DIR@", &dir.display().to_string())
                .replace("@LIBDIR@", LIBDIR)
                .replace("@RTP_PORTS@", "20000-40000")
                .replace("@WS_PORT@", &ws_port.to_string())
                .replace("@EVENT_LOOPS@", &event_loops.to_string())
                .replace("@VIDEO_PORT@", &video_port.to_string())
                .replace("@AUDIO_PORT@", &audio_port.to_string())
        };
        std::fs::write(dir.join("janus.jcfg"), fill(JANUS_CFG))?;
        std::fs::write(dir.join("janus.transport.websockets.jcfg"), fill(WS_CFG))?;
        std::fs::write(dir.join("janus.plugin.streaming.jcfg"), fill(STREAMING_CFG))?;
        let log = std::fs::File::create(dir.join("janus.log"))?;
        let mut cmd = Command::new(bin);
        cmd.arg("-C")
            .arg(dir.join("janus.jcfg"))
            .arg("-F")
            .arg(&dir)
            // No colours in the log file.
            .arg("-o")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "`{}` not found: install Janus with `apt-get install janus` (or pass --janus)",
                bin.display()
            ),
            Err(e) => return Err(e).context("starting janus"),
        };
        let pid = child.id().context("janus's pid")?;
        // Ready when the WebSocket port answers.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", ws_port))
                .await
                .is_ok()
            {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                bail!("janus exited ({status}):\n{}", log_tail(&dir));
            }
            if Instant::now() > deadline {
                bail!("janus did not listen within 30 s:\n{}", log_tail(&dir));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let socket = Arc::new(tokio::net::UdpSocket::bind(SocketAddr::new(LOOPBACK, 0)).await?);
        let port = |port, ssrc, payload_type| MountpointPort {
            socket: Arc::clone(&socket),
            to: SocketAddr::new(LOOPBACK, port),
            ssrc,
            payload_type,
        };
        let pumps = [
            Pump::start(
                Synthetic::load_video(),
                port(video_port, VIDEO_SSRC, VIDEO_PT),
            ),
            Pump::start(
                Synthetic::load_audio(),
                port(audio_port, AUDIO_SSRC, AUDIO_PT),
            ),
        ];
        Ok(Self {
            child,
            pid,
            dir,
            ws_url: format!("ws://127.0.0.1:{ws_port}/"),
            transaction: AtomicU64::new(1),
            pumps,
        })
    }

    /// Stops the media and Janus (SIGKILL by its pid), and removes its folder.
    pub async fn stop(mut self) {
        drop(self.pumps);
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        // Its log outlives the run, for a look after a failure.
        let _ = std::fs::copy(self.dir.join("janus.log"), last_log());
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    fn tx(&self) -> String {
        format!("t{}", self.transaction.fetch_add(1, Ordering::Relaxed))
    }
}

async fn send(ws: &mut Ws, v: &Value) -> anyhow::Result<()> {
    ws.send(Message::text(v.to_string())).await?;
    Ok(())
}

/// The next message `pick` accepts; an `error` answer to `transaction` fails.
async fn until(
    ws: &mut Ws,
    transaction: &str,
    pick: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    tokio::time::timeout(STEP, async {
        loop {
            let frame = ws.next().await.context("janus closed the WebSocket")??;
            let Message::Text(text) = frame else { continue };
            let v: Value = serde_json::from_str(&text)?;
            if v["janus"] == "error" && v["transaction"] == transaction {
                bail!("janus: {}", v["error"]);
            }
            if let Some(err) = v["plugindata"]["data"].get("error") {
                bail!("streaming plugin: {err}");
            }
            if pick(&v) {
                return Ok(v);
            }
        }
    })
    .await
    .context("no answer from janus in time")?
}

impl Target for Janus {
    fn pid(&self) -> u32 {
        self.pid
    }

    fn publisher_state(&self) -> String {
        "plain RTP".to_owned()
    }

    fn sent(&self) -> Sent {
        self.pumps.iter().map(Pump::sent).sum()
    }

    async fn join(&self, _idx: usize) -> anyhow::Result<Joined> {
        let started = Instant::now();
        let mut request = self.ws_url.as_str().into_client_request()?;
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("janus-protocol"),
        );
        let (mut ws, _) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(request))
            .await
            .context("janus WebSocket handshake timed out")??;
        // Session, handle, watch.
        let t = self.tx();
        send(&mut ws, &json!({"janus": "create", "transaction": t})).await?;
        let v = until(&mut ws, &t, |v| v["janus"] == "success").await?;
        let session = v["data"]["id"].as_u64().context("a session id")?;
        let t = self.tx();
        send(
            &mut ws,
            &json!({"janus": "attach", "session_id": session,
                    "plugin": "janus.plugin.streaming", "transaction": t}),
        )
        .await?;
        let v = until(&mut ws, &t, |v| v["janus"] == "success").await?;
        let handle = v["data"]["id"].as_u64().context("a handle id")?;
        let t = self.tx();
        send(
            &mut ws,
            &json!({"janus": "message", "session_id": session, "handle_id": handle,
                    "transaction": t, "body": {"request": "watch", "id": MOUNTPOINT}}),
        )
        .await?;
        let v = until(&mut ws, &t, |v| v["jsep"]["type"] == "offer").await?;
        let offer: String = v["jsep"]["sdp"]
            .as_str()
            .context("an offer sdp")?
            .to_owned();

        let (peer, mut candidates) = TestPeer::new(host_ip(&offer), Network::Open).await?;
        let sdp = peer.answer(offer.clone()).await?;
        let t = self.tx();
        if std::env::var_os("SFU_DEBUG").is_some() {
            eprintln!("janus offer:\n{offer}\nour answer:\n{sdp}");
        }
        send(
            &mut ws,
            &json!({"janus": "message", "session_id": session, "handle_id": handle,
                    "transaction": t, "body": {"request": "start"},
                    "jsep": {"type": "answer", "sdp": sdp}}),
        )
        .await?;
        // Trickle, keep the session alive, drain events.
        let first_tx = self.transaction.fetch_add(1_000_000, Ordering::Relaxed);
        let task = tokio::spawn(async move {
            let mut n = first_tx;
            let mut keepalive = tokio::time::interval(KEEPALIVE);
            keepalive.tick().await;
            loop {
                n += 1;
                let msg = tokio::select! {
                    Some(c) = candidates.recv() => {
                        let candidate = if c.candidate.is_empty() {
                            json!({"completed": true})
                        } else {
                            json!({"candidate": c.candidate, "sdpMid": c.sdp_mid,
                                   "sdpMLineIndex": c.sdp_mline_index})
                        };
                        json!({"janus": "trickle", "session_id": session,
                               "handle_id": handle, "transaction": format!("k{n}"),
                               "candidate": candidate})
                    }
                    _ = keepalive.tick() => json!({"janus": "keepalive",
                        "session_id": session, "transaction": format!("k{n}")}),
                    frame = ws.next() => match frame {
                        Some(Ok(_)) => continue,
                        None | Some(Err(_)) => break,
                    },
                };
                if send(&mut ws, &msg).await.is_err() {
                    break;
                }
            }
        });
        let joined = Joined {
            started,
            peer: peer.clone(),
            task,
        };
        match peer.connected(STEP).await {
            Ok(()) => Ok(joined),
            Err(e) => {
                joined.close().await;
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_where_janus_gathered() {
        let offer = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
                     a=candidate:2 1 udp 2015363583 fd00::2 26778 typ host\r\n\
                     a=candidate:1 1 udp 2015363327 192.0.2.2 31800 typ host\r\n";
        assert_eq!(host_ip(offer), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));
        assert_eq!(host_ip("v=0"), LOOPBACK);
    }
}
