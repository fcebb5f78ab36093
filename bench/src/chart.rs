//! Side by side with the peers: `compare` (ratios at one load, and each server's capacity,
//! against the Socket.IO peer and against nats-server) and `chart` (latency against learners,
//! room-server and the Socket.IO peer, drawn with plotters).

use crate::profiles::{self, HeavyArgs, HeavyResult};
use crate::system::Servers;
use crate::wire::Dialect;
use plotters::prelude::*;
use serde::Serialize;
use std::path::Path;

/// A sustained step: p99 under this, nothing lost, every learner in.
const P99_LIMIT_MS: f64 = 100.0;

/// One server's figures at one load.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Frames delivered to learners per second.
    pub deliveries_per_sec: f64,
    /// Chat latency median.
    pub p50_ms: f64,
    /// Chat latency 99th percentile.
    pub p99_ms: f64,
    /// Chat latency 99.9th percentile.
    pub p999_ms: f64,
    /// Messages lost plus duplicated (must be 0).
    pub lost_or_duplicated: u64,
    /// Learners whose connection failed.
    pub failed: u64,
    /// Server CPU, in cores.
    pub server_cores: f64,
    /// Server CPU per delivered frame, microseconds.
    pub cpu_us_per_delivery: f64,
    /// Peak server memory.
    pub rss_peak_bytes: u64,
    /// (Peak server memory − before anyone connected) / learners.
    pub rss_per_learner_bytes: u64,
}

impl From<&HeavyResult> for Summary {
    fn from(r: &HeavyResult) -> Self {
        let deliveries = r.deliveries_per_sec * r.usage.wall_secs;
        Self {
            deliveries_per_sec: r.deliveries_per_sec,
            p50_ms: r.latency.p50_ms,
            p99_ms: r.latency.p99_ms,
            p999_ms: r.latency.p999_ms,
            lost_or_duplicated: r.lost + r.duplicated,
            failed: r.failed,
            server_cores: r.usage.cores,
            cpu_us_per_delivery: if deliveries > 0.0 {
                r.usage.cpu_secs * 1e6 / deliveries
            } else {
                0.0
            },
            rss_peak_bytes: r.usage.rss_peak_bytes,
            rss_per_learner_bytes: r.usage.rss_peak_bytes.saturating_sub(r.rss_before_bytes)
                / (r.args.learners.max(1) as u64),
        }
    }
}

impl Summary {
    /// Whether the server kept up with `offered` chat messages per second to `learners`.
    fn sustained(&self, r: &HeavyResult) -> bool {
        let offered = r.args.chat_rate * r.args.learners as f64;
        self.p99_ms < P99_LIMIT_MS
            && self.lost_or_duplicated == 0
            && self.failed == 0
            && r.chat_deliveries_per_sec >= 0.95 * offered
    }
}

/// A step of the capacity search.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// Chat messages per second offered.
    pub chat_rate: f64,
    /// What the server did with it.
    pub result: Summary,
    /// Held at p99 < 100 ms with nothing lost.
    pub sustained: bool,
}

/// What `compare` measured.
#[derive(Debug, Serialize)]
pub struct CompareResult {
    /// The profile's name.
    pub profile: &'static str,
    /// Learners in the capacity search.
    pub ramp_learners: usize,
    /// room-server against the Socket.IO peer, at the heavy lecture's load.
    pub socketio: Versus,
    /// room-server against nats-server, at the same load without reactions and seat moves:
    /// the chat, which is all NATS relays.
    pub nats: Versus,
    /// `nats-server --version`.
    pub nats_server_version: String,
}

/// room-server against one peer: both at one load, then each one's capacity.
#[derive(Debug, Serialize)]
pub struct Versus {
    /// The load both ran.
    pub load: HeavyArgs,
    /// room-server.
    pub ours: Summary,
    /// The peer.
    pub peer: Summary,
    /// ours / peer.
    pub ratio_deliveries: f64,
    /// peer p99 / ours p99 (above 1: ours is faster).
    pub ratio_p99: f64,
    /// peer CPU per delivery / ours (above 1: ours is cheaper).
    pub ratio_cpu_per_delivery: f64,
    /// peer memory per learner / ours (above 1: ours is leaner).
    pub ratio_rss_per_learner: f64,
    /// Highest sustained deliveries per second, room-server.
    pub capacity_ours: Option<f64>,
    /// Highest sustained deliveries per second, the peer.
    pub capacity_peer: Option<f64>,
    /// ours / peer capacity.
    pub ratio_capacity: Option<f64>,
    /// Every step of the search, room-server.
    pub steps_ours: Vec<Step>,
    /// Every step of the search, the peer.
    pub steps_peer: Vec<Step>,
}

/// A capacity search's outcome: the highest sustained deliveries per second, and every step.
type Capacity = (Option<f64>, Vec<Step>);

impl Versus {
    fn new(load: HeavyArgs, ours: Summary, peer: Summary, ramps: (Capacity, Capacity)) -> Self {
        let ((capacity_ours, steps_ours), (capacity_peer, steps_peer)) = ramps;
        Self {
            ratio_deliveries: ratio(ours.deliveries_per_sec, peer.deliveries_per_sec),
            ratio_p99: ratio(peer.p99_ms, ours.p99_ms),
            ratio_cpu_per_delivery: ratio(peer.cpu_us_per_delivery, ours.cpu_us_per_delivery),
            ratio_rss_per_learner: ratio(
                peer.rss_per_learner_bytes as f64,
                ours.rss_per_learner_bytes as f64,
            ),
            ratio_capacity: match (capacity_ours, capacity_peer) {
                (Some(a), Some(b)) => Some(ratio(a, b)),
                _ => None,
            },
            load,
            ours,
            peer,
            capacity_ours,
            capacity_peer,
            steps_ours,
            steps_peer,
        }
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        ((a / b) * 100.0).round() / 100.0
    } else {
        0.0
    }
}

async fn ramp(
    servers: &Servers,
    dialect: Dialect,
    base: &HeavyArgs,
    rates: &[f64],
    learners: usize,
    seconds: u64,
) -> anyhow::Result<(Option<f64>, Vec<Step>)> {
    let mut best = None;
    let mut steps = Vec::new();
    for &rate in rates {
        let args = HeavyArgs {
            learners,
            chat_rate: rate,
            duration: seconds,
            ..base.clone()
        };
        let (summary, sustained) = match profiles::heavy(servers, dialect, 1, args).await {
            Ok(r) => {
                let s = Summary::from(&r);
                let ok = s.sustained(&r);
                (s, ok)
            }
            Err(e) => {
                eprintln!("{} at {rate}/s: {e:#}", dialect.label());
                break;
            }
        };
        eprintln!(
            "{} at {rate} chat/s: {:.0} deliveries/s, p99 {} ms → {}",
            dialect.label(),
            summary.deliveries_per_sec,
            summary.p99_ms,
            if sustained { "held" } else { "not held" }
        );
        if sustained {
            best = Some(summary.deliveries_per_sec);
        }
        steps.push(Step {
            chat_rate: rate,
            result: summary,
            sustained,
        });
        if !sustained {
            break;
        }
    }
    Ok((best, steps))
}

/// `compare`: the heavy lecture against room-server and the Socket.IO peer, its chat alone
/// against room-server and nats-server; then each one's capacity.
pub async fn compare(
    servers: &Servers,
    load: HeavyArgs,
    rates: &[f64],
    step_seconds: u64,
    ramp_learners: usize,
) -> anyhow::Result<CompareResult> {
    // Before the first run, not after half an hour of them.
    let nats_server_version = crate::nodes::nats_version(&servers.nats_server).await?;
    let chat_only = HeavyArgs {
        reaction_rate: 0.0,
        move_rate: 0.0,
        ..load.clone()
    };
    // When the load is the chat alone already, room-server's runs serve both comparisons.
    let chat_only_already = load.reaction_rate <= 0.0 && load.move_rate <= 0.0;
    let once = |dialect, args| async move {
        anyhow::Ok(Summary::from(
            &profiles::heavy(servers, dialect, 1, args).await?,
        ))
    };
    let capacity = |dialect, base: HeavyArgs| async move {
        ramp(servers, dialect, &base, rates, ramp_learners, step_seconds).await
    };
    let ours = once(Dialect::Ours, load.clone()).await?;
    let socketio = once(Dialect::SocketIo, load.clone()).await?;
    let ours_chat = if chat_only_already {
        ours.clone()
    } else {
        once(Dialect::Ours, chat_only.clone()).await?
    };
    let nats = once(Dialect::Nats, chat_only.clone()).await?;
    let ramp_ours = capacity(Dialect::Ours, load.clone()).await?;
    let ramp_socketio = capacity(Dialect::SocketIo, load.clone()).await?;
    let ramp_ours_chat = if chat_only_already {
        ramp_ours.clone()
    } else {
        capacity(Dialect::Ours, chat_only.clone()).await?
    };
    let ramp_nats = capacity(Dialect::Nats, chat_only.clone()).await?;
    Ok(CompareResult {
        profile: "compare",
        ramp_learners,
        socketio: Versus::new(load, ours, socketio, (ramp_ours, ramp_socketio)),
        nats: Versus::new(chat_only, ours_chat, nats, (ramp_ours_chat, ramp_nats)),
        nats_server_version,
    })
}

/// One point of the chart.
#[derive(Debug, Serialize)]
pub struct Point {
    /// The server.
    pub server: Dialect,
    /// Learners.
    pub learners: usize,
    /// Its figures.
    pub result: Summary,
}

/// What `chart` measured.
#[derive(Debug, Serialize)]
pub struct ChartResult {
    /// The profile's name.
    pub profile: &'static str,
    /// Seconds of load per point.
    pub duration: u64,
    /// Every point.
    pub points: Vec<Point>,
    /// The chart.
    pub svg: String,
}

/// `chart`: heavy lectures of growing size against both servers, drawn as p50 and p99 lines.
pub async fn chart(
    servers: &Servers,
    learners: &[usize],
    duration: u64,
    svg: &Path,
) -> anyhow::Result<ChartResult> {
    let mut points = Vec::new();
    for dialect in [Dialect::Ours, Dialect::SocketIo] {
        for &n in learners {
            let args = HeavyArgs {
                learners: n,
                chat_rate: 20.0,
                reaction_rate: 200.0,
                move_rate: 5.0,
                duration,
            };
            match profiles::heavy(servers, dialect, 1, args).await {
                Ok(r) => points.push(Point {
                    server: dialect,
                    learners: n,
                    result: Summary::from(&r),
                }),
                Err(e) => eprintln!("{} with {n} learners: {e:#}", dialect.label()),
            }
        }
    }
    draw(&points, svg)?;
    Ok(ChartResult {
        profile: "chart",
        duration,
        points,
        svg: svg.display().to_string(),
    })
}

fn draw(points: &[Point], path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let max_x = points.iter().map(|p| p.learners).max().unwrap_or(1) as f64;
    let max_y = points
        .iter()
        .map(|p| p.result.p99_ms)
        .fold(1.0_f64, f64::max)
        * 1.15;
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Chat latency against learners (20 messages/s, 200 reactions/s)",
            ("sans-serif", 18),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..max_x * 1.05, 0.0..max_y)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("learners in the lecture")
        .y_desc("latency, ms")
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let series = [
        (Dialect::Ours, true, BLUE, "room-server p99"),
        (Dialect::Ours, false, CYAN, "room-server p50"),
        (Dialect::SocketIo, true, RED, "socket.io p99"),
        (Dialect::SocketIo, false, MAGENTA, "socket.io p50"),
    ];
    for (dialect, p99, color, label) in series {
        let line: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.server == dialect)
            .map(|p| {
                let y = if p99 {
                    p.result.p99_ms
                } else {
                    p.result.p50_ms
                };
                (p.learners as f64, y)
            })
            .collect();
        chart
            .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
        chart
            .draw_series(
                line.into_iter()
                    .map(|xy| Circle::new(xy, 3, color.filled())),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(p50: f64, p99: f64) -> Summary {
        Summary {
            deliveries_per_sec: 1.0,
            p50_ms: p50,
            p99_ms: p99,
            p999_ms: p99,
            lost_or_duplicated: 0,
            failed: 0,
            server_cores: 0.1,
            cpu_us_per_delivery: 1.0,
            rss_peak_bytes: 1,
            rss_per_learner_bytes: 1,
        }
    }

    #[test]
    fn draws_an_svg_with_both_servers() {
        let dir = std::env::temp_dir().join(format!("bench-chart-{}", std::process::id()));
        let path = dir.join("chart.svg");
        let points = vec![
            Point {
                server: Dialect::Ours,
                learners: 100,
                result: summary(1.0, 2.0),
            },
            Point {
                server: Dialect::Ours,
                learners: 1000,
                result: summary(2.0, 5.0),
            },
            Point {
                server: Dialect::SocketIo,
                learners: 100,
                result: summary(3.0, 9.0),
            },
            Point {
                server: Dialect::SocketIo,
                learners: 1000,
                result: summary(8.0, 40.0),
            },
        ];
        draw(&points, &path).expect("draws");
        let svg = std::fs::read_to_string(&path).expect("written");
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.contains("room-server p99") && svg.contains("socket.io p99"));
        assert!(svg.contains("<polyline"), "the lines are drawn");
        let _ = std::fs::remove_dir_all(dir);
    }
}
