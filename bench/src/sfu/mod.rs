//! `sfu-fanout`: one publisher sending about 1.5 Mbit/s of VP8 video and Opus audio
//! (synthetic payloads), N receive-only WebRTC subscribers (webrtc-crate peers in this
//! process), against room-server and then Janus's streaming plugin with the same load.
//!
//! Measured over `--duration` seconds of steady state once every subscriber is connected: the
//! server's CPU (cores, and per subscriber), its resident memory with N connected minus before
//! they came, loss per subscriber from RTP sequence numbers, packets and Mbit/s delivered in
//! total, time from a subscriber's first request to its first keyframe, and this generator's
//! own CPU (on a small machine the generator, decrypting N SRTP streams, is the limit).

pub mod janus;
pub mod ours;

use crate::proc::{self, Sampler};
use crate::system::Servers;
use futures_util::StreamExt;
use serde::Serialize;
use signaling::test_peer::{Received, Sent, TestPeer, load_description};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Which servers to run.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Against {
    /// room-server, then Janus, and the ratios.
    Both,
    /// room-server only.
    Ours,
    /// Janus only.
    Janus,
}

/// The `sfu-fanout` options.
#[derive(clap::Args, Debug, Clone)]
pub struct SfuArgs {
    /// Receive-only subscribers.
    #[arg(long, default_value_t = 100)]
    pub subscribers: usize,
    /// Seconds of steady state measured once all are connected.
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
    /// The SFUs to run, one after the other (`--server` belongs to the other profiles).
    #[arg(long, value_enum, default_value_t = Against::Both)]
    pub against: Against,
    /// The Janus binary.
    #[arg(long, default_value = "janus")]
    pub janus: PathBuf,
    /// Subscribers joining at the same time.
    #[arg(long, default_value_t = 10)]
    pub join_concurrency: usize,
    /// Janus's `event_loops`: 0 (its default) runs a thread per handle; N > 0 a pool of N
    /// threads for every handle (on 2 cores that joined far slower and lost as much).
    #[arg(long, default_value_t = 0)]
    pub janus_event_loops: usize,
    /// Seconds to wait after the last subscriber connected before measuring.
    #[arg(long, default_value_t = 3)]
    pub settle: u64,
}

/// One subscriber that connected.
#[derive(Debug)]
pub struct Joined {
    /// When it started joining (room connection or Janus session).
    pub started: Instant,
    /// Its peer connection, counting what it receives.
    pub peer: TestPeer,
    /// Its signalling task.
    pub task: tokio::task::JoinHandle<()>,
}

impl Joined {
    /// Ends its signalling and closes its peer connection.
    pub async fn close(self) {
        self.task.abort();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.peer.close()).await;
    }
}

/// A server under test that subscribers join.
pub(crate) trait Target {
    /// The server's process id.
    fn pid(&self) -> u32;
    /// How the publisher's side stands at the end of the window.
    fn publisher_state(&self) -> String;
    /// What the publisher sent so far.
    fn sent(&self) -> Sent;
    /// Subscriber `idx` joins; done when its peer connection is connected.
    async fn join(&self, idx: usize) -> anyhow::Result<Joined>;
}

/// Percentiles in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Millis {
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// Highest.
    pub max: Option<f64>,
}

fn percentiles(mut v: Vec<f64>) -> Millis {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| -> Option<f64> {
        if v.is_empty() {
            return None;
        }
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        v.get(i).map(|x| (x * 10.0).round() / 10.0)
    };
    Millis {
        p50: at(0.5),
        p95: at(0.95),
        max: at(1.0),
    }
}

/// One server's numbers.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Side {
    /// `room-server` or `janus`.
    pub server: String,
    /// Subscribers asked for.
    pub subscribers: usize,
    /// The publisher's peer connection state at the end of the window (room-server); a
    /// publisher that dropped explains a window where nothing was delivered.
    pub publisher_state: String,
    /// Subscribers whose peer connection connected.
    pub connected: usize,
    /// Joins that failed (the first error is in `first_error`).
    pub join_failures: usize,
    /// The first join error, if any.
    pub first_error: Option<String>,
    /// Seconds from the first join to the last connection.
    pub join_secs: f64,
    /// Length of the measured window.
    pub window_secs: f64,
    /// What the publisher sent in the window, packets per second.
    pub published_pps: f64,
    /// And Mbit/s (RTP header + payload).
    pub published_mbps: f64,
    /// Server CPU during the window, in cores (1.0: one core busy).
    pub server_cores: f64,
    /// Server CPU per connected subscriber, in millicores.
    pub server_millicores_per_subscriber: f64,
    /// Server CPU per packet delivered, in microseconds: fairer than per subscriber when one
    /// server delivers less than it should.
    pub server_us_per_delivered_packet: Option<f64>,
    /// Connected subscribers one server core carries at this rate (connected / cores).
    pub subscribers_per_server_core: Option<f64>,
    /// Server RSS with the publisher alone, MiB.
    pub rss_before_mib: f64,
    /// Server RSS at the end of the window, MiB.
    pub rss_after_mib: f64,
    /// (after − before) / connected, KiB.
    pub rss_per_subscriber_kib: f64,
    /// Mean over subscribers of lost / expected in the window, percent.
    pub loss_pct_mean: f64,
    /// The worst subscriber's loss in the window, percent.
    pub loss_pct_max: f64,
    /// Subscribers above 1 % loss in the window.
    pub subscribers_over_1pct: usize,
    /// Subscribers that received nothing in the window.
    pub subscribers_silent: usize,
    /// Packets delivered per second, all subscribers together.
    pub delivered_pps: f64,
    /// Mbit/s delivered (RTP header + payload), all together.
    pub delivered_mbps: f64,
    /// From a subscriber's first request to its first keyframe packet.
    pub first_keyframe_ms: Millis,
    /// This load generator's CPU during the window, in cores (of 2 on the reference machine).
    pub generator_cores: f64,
    /// Datagrams the kernel dropped for full receive buffers during the window, machine-wide
    /// (`/proc/net/snmp` `Udp: RcvbufErrors`): loss that happened in a socket queue (the
    /// server's or a subscriber's) rather than in the server's own code.
    pub udp_rcvbuf_drops: Option<u64>,
}

/// `Udp: RcvbufErrors` from `/proc/net/snmp`.
fn udp_rcvbuf_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let at = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// Ours divided by Janus's (below 1: room-server uses less).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Ratio {
    /// CPU per subscriber.
    pub cpu_per_subscriber: Option<f64>,
    /// CPU per packet delivered.
    pub cpu_per_delivered_packet: Option<f64>,
    /// Memory per subscriber.
    pub rss_per_subscriber: Option<f64>,
    /// Mean loss (None when Janus lost nothing).
    pub loss_mean: Option<f64>,
    /// Median time to the first keyframe.
    pub first_keyframe_p50: Option<f64>,
}

/// The `sfu-fanout` result.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SfuResult {
    /// Profile name.
    pub profile: &'static str,
    /// Subscribers asked for.
    pub subscribers: usize,
    /// The publisher's nominal load.
    pub load: String,
    /// room-server.
    pub ours: Option<Side>,
    /// Janus.
    pub janus: Option<Side>,
    /// ours / janus.
    pub ratio: Option<Ratio>,
}

/// Runs the scenario against the servers `args.against` names.
pub async fn run(servers: &Servers, args: SfuArgs) -> anyhow::Result<SfuResult> {
    let mut result = SfuResult {
        profile: "sfu-fanout",
        subscribers: args.subscribers,
        load: load_description(),
        ..Default::default()
    };
    if args.against != Against::Janus {
        eprintln!("sfu-fanout: room-server, {} subscribers", args.subscribers);
        let target = ours::Ours::start(servers, args.subscribers).await?;
        let side = measure(&target, "room-server", &args).await;
        target.stop().await;
        result.ours = Some(side?);
    }
    if args.against != Against::Ours {
        eprintln!("sfu-fanout: janus, {} subscribers", args.subscribers);
        let target = janus::Janus::start(&args.janus, args.janus_event_loops).await?;
        let side = measure(&target, "janus", &args).await;
        target.stop().await;
        result.janus = Some(side?);
    }
    if let (Some(o), Some(j)) = (&result.ours, &result.janus) {
        let div = |a: f64, b: f64| (b > 0.0).then(|| (a / b * 100.0).round() / 100.0);
        result.ratio = Some(Ratio {
            cpu_per_subscriber: div(
                o.server_millicores_per_subscriber,
                j.server_millicores_per_subscriber,
            ),
            cpu_per_delivered_packet: o
                .server_us_per_delivered_packet
                .zip(j.server_us_per_delivered_packet)
                .and_then(|(a, b)| div(a, b)),
            rss_per_subscriber: div(o.rss_per_subscriber_kib, j.rss_per_subscriber_kib),
            loss_mean: div(o.loss_pct_mean, j.loss_pct_mean),
            first_keyframe_p50: o
                .first_keyframe_ms
                .p50
                .zip(j.first_keyframe_ms.p50)
                .and_then(|(a, b)| div(a, b)),
        });
    }
    Ok(result)
}

fn mib(b: u64) -> f64 {
    (b as f64 / (1024.0 * 1024.0) * 10.0).round() / 10.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Joins every subscriber, waits `settle`, measures `duration`, closes them.
async fn measure(target: &impl Target, name: &str, args: &SfuArgs) -> anyhow::Result<Side> {
    let pid = target.pid();
    // The publisher alone, its media flowing.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = proc::rss_bytes(pid)?;
    let mut side = Side {
        server: name.to_owned(),
        subscribers: args.subscribers,
        ..Default::default()
    };

    let join_start = Instant::now();
    let outcomes: Vec<anyhow::Result<Joined>> = futures_util::stream::iter(0..args.subscribers)
        .map(|i| target.join(i))
        .buffer_unordered(args.join_concurrency.max(1))
        .collect()
        .await;
    side.join_secs = round2(join_start.elapsed().as_secs_f64());
    let mut joined = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        match o {
            Ok(j) => joined.push(j),
            Err(e) => {
                side.join_failures += 1;
                side.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    side.connected = joined.len();
    eprintln!(
        "  {} of {} connected in {:.1} s; measuring {} s",
        side.connected, args.subscribers, side.join_secs, args.duration
    );
    tokio::time::sleep(Duration::from_secs(args.settle)).await;

    // The window.
    let snapshot = |joined: &[Joined]| -> Vec<Received> {
        joined.iter().map(|j| j.peer.received().clone()).collect()
    };
    let sent_now = || {
        let s = target.sent();
        (s.packets, s.bytes)
    };
    let me = std::process::id();
    let gen_start = proc::cpu_seconds(me)?;
    let sent_start = sent_now();
    let before = snapshot(&joined);
    let drops_start = udp_rcvbuf_errors();
    let sampler = Sampler::start(vec![pid])?;
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    let usage = sampler.finish()?;
    side.udp_rcvbuf_drops = udp_rcvbuf_errors()
        .zip(drops_start)
        .map(|(end, start)| end.saturating_sub(start));
    let after = snapshot(&joined);
    side.publisher_state = target.publisher_state();
    let sent_end = sent_now();
    let gen_cpu = proc::cpu_seconds(me)? - gen_start;
    let secs = usage.wall_secs.max(1e-9);

    side.window_secs = round2(secs);
    side.published_pps = round2((sent_end.0 - sent_start.0) as f64 / secs);
    side.published_mbps = round2((sent_end.1 - sent_start.1) as f64 * 8.0 / secs / 1e6);
    side.server_cores = round2(usage.cores);
    let n = side.connected.max(1) as f64;
    side.server_millicores_per_subscriber = round2(usage.cores * 1000.0 / n);
    side.subscribers_per_server_core = (usage.cores > 0.0 && side.connected > 0)
        .then(|| (side.connected as f64 / usage.cores).round());
    side.rss_before_mib = mib(rss_before);
    side.rss_after_mib = mib(usage.rss_end_bytes);
    side.rss_per_subscriber_kib =
        round2(usage.rss_end_bytes.saturating_sub(rss_before) as f64 / 1024.0 / n);
    side.generator_cores = round2(gen_cpu / secs);

    let (mut packets, mut bytes, mut loss_sum) = (0u64, 0u64, 0.0);
    for (b, a) in before.iter().zip(&after) {
        let got = a.packets() - b.packets();
        let expected = a.expected() - b.expected();
        packets += got;
        bytes += a.bytes() - b.bytes();
        let loss = if expected == 0 {
            100.0
        } else {
            expected.saturating_sub(got) as f64 * 100.0 / expected as f64
        };
        if got == 0 {
            side.subscribers_silent += 1;
        }
        if loss > 1.0 {
            side.subscribers_over_1pct += 1;
        }
        side.loss_pct_max = side.loss_pct_max.max(loss);
        loss_sum += loss;
    }
    side.loss_pct_mean = if after.is_empty() {
        0.0
    } else {
        (loss_sum / after.len() as f64 * 1000.0).round() / 1000.0
    };
    side.loss_pct_max = (side.loss_pct_max * 1000.0).round() / 1000.0;
    side.delivered_pps = round2(packets as f64 / secs);
    side.delivered_mbps = round2(bytes as f64 * 8.0 / secs / 1e6);
    side.server_us_per_delivered_packet =
        (packets > 0).then(|| round2(usage.cpu_secs * 1e6 / packets as f64));
    side.first_keyframe_ms = percentiles(
        joined
            .iter()
            .zip(&after)
            .filter_map(|(j, t)| {
                t.first_keyframe()
                    .map(|k| k.duration_since(j.started).as_secs_f64() * 1000.0)
            })
            .collect(),
    );

    // Close every subscriber before the next server is measured.
    futures_util::stream::iter(joined)
        .for_each_concurrent(64, Joined::close)
        .await;
    Ok(side)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_few() {
        let m = percentiles(vec![3.0, 1.0, 2.0, 4.0, 5.0]);
        assert_eq!((m.p50, m.max), (Some(3.0), Some(5.0)));
        assert!(percentiles(vec![]).p50.is_none());
        assert!(udp_rcvbuf_errors().is_some(), "Linux has /proc/net/snmp");
    }
}
