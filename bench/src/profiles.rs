//! The lecture profiles: `heavy-lecture` (and `multi-node`, the same over several nodes),
//! `join-storm` and `idle`. Each returns a result that prints as a table and serialises as
//! JSON.

use crate::learner::{self, Handle, Plan, Report, Shared, chat_text};
use crate::nodes::BenchLecture;
use crate::proc::{Sampler, Usage};
use crate::system::{Servers, System};
use crate::wire::Dialect;
use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};

/// Handshakes in flight at once while a fleet connects as fast as it can (heavy-lecture, idle).
/// The join storm has its own arrival schedule and no such limit.
const CONNECTING_AT_ONCE: usize = 256;
/// Longest wait for a fleet to enter and sit.
const SETUP_WAIT: Duration = Duration::from_secs(300);
/// Longest wait for the last deliveries after the load stops.
const DRAIN_WAIT: Duration = Duration::from_secs(30);
/// A drain ends early when nothing arrives for this long.
const DRAIN_QUIET: Duration = Duration::from_secs(3);
/// How long before the end of the load seat moves stop (at most a quarter of the load).
const MOVES_STOP_BEFORE_END: Duration = Duration::from_secs(2);

const EMOTIONS: [&str; 5] = ["good", "i_see", "lost", "applause", "slower"];

/// Latency percentiles, milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Percentiles {
    /// From a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| (us as f64 / 1000.0 * 100.0).round() / 100.0;
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// Parameters of `heavy-lecture` and `multi-node`.
#[derive(Clone, Debug, Serialize, clap::Args)]
pub struct HeavyArgs {
    /// Learners in the lecture.
    #[arg(long, default_value_t = 5000)]
    pub learners: usize,
    /// Chat messages per second, from learners in turn.
    #[arg(long, default_value_t = 20.0)]
    pub chat_rate: f64,
    /// Emotion presses per second.
    #[arg(long, default_value_t = 200.0)]
    pub reaction_rate: f64,
    /// Seat moves per second.
    #[arg(long, default_value_t = 5.0)]
    pub move_rate: f64,
    /// Seconds of load.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
}

/// What `heavy-lecture` measured.
#[derive(Debug, Serialize)]
pub struct HeavyResult {
    /// The profile's name.
    pub profile: &'static str,
    /// The server.
    pub server: Dialect,
    /// Its nodes.
    pub nodes: usize,
    /// The load.
    pub args: HeavyArgs,
    /// Learners that entered and sat (entered, where the server has no seats).
    pub seated: u64,
    /// Learners whose connection failed or dropped.
    pub failed: u64,
    /// Frames the learners received per second during the load.
    pub deliveries_per_sec: f64,
    /// Of which benchmark chat messages.
    pub chat_deliveries_per_sec: f64,
    /// Payload bytes (WebSocket message bodies) one learner received per second during the
    /// load, all kinds: the egress a learner costs, before WebSocket, TCP and TLS headers.
    pub bytes_per_learner_per_sec: f64,
    /// Chat messages sent, and refused by the server.
    pub chats_sent: u64,
    /// Refused chat messages.
    pub chats_refused: u64,
    /// Chat latency, send to receipt, every learner.
    pub latency: Percentiles,
    /// The same for messages that crossed nodes (several nodes only).
    pub cross_node_latency: Option<Percentiles>,
    /// Accepted messages some learner never got (must be 0).
    pub lost: u64,
    /// Messages a learner got more than once (must be 0).
    pub duplicated: u64,
    /// Emotion presses sent.
    pub reactions_sent: u64,
    /// Presses the server refused (rate limits).
    pub reactions_refused: u64,
    /// Learners whose burst totals equal the presses accepted.
    pub reaction_totals_correct: u64,
    /// Learners checked.
    pub reaction_totals_checked: u64,
    /// Seat moves tried.
    pub moves_sent: u64,
    /// Moves refused (seat taken: expected sometimes).
    pub moves_refused: u64,
    /// Learners whose own seat disagrees with the observer's seat map (must be 0).
    pub seat_mismatches: u64,
    /// The server's CPU and memory during the load (nodes and Redis).
    pub usage: Usage,
    /// Frames room-server's nodes wrote per `write` system call during the load (from their
    /// `/metrics`); none for the peers.
    pub frames_per_write: Option<f64>,
    /// The server's resident memory before any learner connected.
    pub rss_before_bytes: u64,
    /// The load generator's own CPU during the load, in cores.
    pub generator_cores: f64,
    /// Redis alone during the load (several nodes only; also counted in `usage`).
    pub redis: Option<RedisLoad>,
}

/// What Redis did during the load: its CPU, memory and commands.
#[derive(Debug, Serialize)]
pub struct RedisLoad {
    /// Its CPU, in cores.
    pub cores: f64,
    /// Its resident memory at the end.
    pub rss_end_bytes: u64,
    /// Commands it processed per second (`INFO stats` `total_commands_processed`).
    pub commands_per_sec: f64,
}

/// Redis's `total_commands_processed`, through `redis-cli`.
fn redis_commands(redis: &crate::nodes::Proc) -> anyhow::Result<u64> {
    let out = std::process::Command::new("redis-cli")
        .args([
            "-h",
            &redis.addr.ip().to_string(),
            "-p",
            &redis.addr.port().to_string(),
        ])
        .args(["INFO", "stats"])
        .output()
        .context("running redis-cli")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("total_commands_processed:"))
        .and_then(|n| n.parse().ok())
        .context("redis-cli INFO stats: no total_commands_processed")
}

/// A connected fleet of learners.
struct Fleet {
    shared: Arc<Shared>,
    handles: Vec<Handle>,
    stop: watch::Sender<bool>,
}

impl Fleet {
    /// Connects `plans` and waits until `ready` says the fleet is in (bounded).
    async fn launch(
        system: &System,
        plans: Vec<Plan>,
        at_once: usize,
        ready: impl Fn(&Shared) -> bool,
    ) -> anyhow::Result<Self> {
        // The server and this generator each hold one socket per learner.
        if let Ok((soft, hard)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
            let need = plans.len() as u64 + 256;
            anyhow::ensure!(
                need <= soft,
                "{} learners need about {need} open files in this generator and in the server, \
                 but a process may open {soft} here (hard limit {hard}): use fewer learners, \
                 or raise the limit (`ulimit -Hn`, or LimitNOFILE in systemd) as an \
                 administrator",
                plans.len()
            );
        }
        let shared = Shared::new();
        let (stop, stop_rx) = watch::channel(false);
        let gate = Arc::new(Semaphore::new(at_once.max(1)));
        let lecture: Arc<str> = system.lecture.id.as_str().into();
        let handles = plans
            .into_iter()
            .map(|plan| {
                learner::spawn(
                    system.dialect,
                    lecture.clone(),
                    plan,
                    shared.clone(),
                    gate.clone(),
                    stop_rx.clone(),
                )
            })
            .collect::<Vec<_>>();
        let fleet = Self {
            shared,
            handles,
            stop,
        };
        let n = fleet.handles.len() as u64;
        wait_for(SETUP_WAIT, || {
            ready(&fleet.shared) || Shared::get(&fleet.shared.failed) > n / 100
        })
        .await;
        if ready(&fleet.shared) {
            return Ok(fleet);
        }
        let (entered, seated, failed) = (
            Shared::get(&fleet.shared.entered),
            Shared::get(&fleet.shared.seated),
            Shared::get(&fleet.shared.failed),
        );
        print_first_errors(&fleet.finish().await);
        anyhow::bail!(
            "the learners did not get in: {entered} entered, {seated} seated, {failed} failed"
        )
    }

    async fn finish(self) -> Vec<Report> {
        let _ = self.stop.send(true);
        let mut reports = Vec::with_capacity(self.handles.len());
        for h in self.handles {
            if let Ok(r) = h.task.await {
                reports.push(r);
            }
        }
        reports
    }
}

/// Polls `done` every 10 ms until it holds or `limit` passes.
async fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether a seat map shows `member` at `seat`: by name where the server names occupants to
/// learners (the Socket.IO peer), as taken where it does not (room-server, whose learners ask
/// for nicknames only of the seats they look at).
fn shows(map: &HashMap<(u16, u16), Option<String>>, seat: (u16, u16), member: &str) -> bool {
    match map.get(&seat) {
        Some(Some(who)) => who == member,
        Some(None) => true,
        None => false,
    }
}

fn print_first_errors(reports: &[Report]) {
    for r in reports.iter().filter(|r| r.error.is_some()).take(3) {
        eprintln!(
            "learner {}: {}",
            r.idx,
            r.error.as_deref().unwrap_or_default()
        );
    }
}

/// Learner `idx` of `system`: on its node, from its source address, sitting in its own seat,
/// starting at once.
fn plan(system: &System, idx: usize) -> anyhow::Result<Plan> {
    let node = system.node_of(idx);
    Ok(Plan {
        idx,
        node,
        person: system.person(idx)?,
        source: system.source(idx),
        target: system.target(node),
        sit: Some(system.seat_of(idx)),
        observe: false,
        start_after: Duration::ZERO,
    })
}

/// A tiny deterministic generator for picking learners and seats.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

/// `heavy-lecture` over `node_count` nodes (`multi-node` when more than one).
pub async fn heavy(
    servers: &Servers,
    dialect: Dialect,
    node_count: usize,
    args: HeavyArgs,
) -> anyhow::Result<HeavyResult> {
    let n = args.learners.max(1);
    let room = dialect.keeps_a_room();
    // Without a room there is nothing to react to or sit in: the result says what was sent.
    let args = if room {
        args
    } else {
        HeavyArgs {
            reaction_rate: 0.0,
            move_rate: 0.0,
            ..args
        }
    };
    let lecture = BenchLecture::for_learners(n);
    let system = System::start(servers, dialect, lecture.clone(), node_count, "").await?;
    eprintln!(
        "{}: {} node(s), {n} learners entering{}…",
        dialect.label(),
        system.nodes.len(),
        if room { " and sitting" } else { " (chat only)" }
    );
    let rss_before_bytes = system
        .pids()
        .iter()
        .map(|p| crate::proc::rss_bytes(*p))
        .sum::<anyhow::Result<u64>>()?;
    let plans = (0..n)
        .map(|idx| {
            let base = plan(&system, idx)?;
            Ok(Plan {
                observe: idx == 0,
                sit: base.sit.filter(|_| room),
                ..base
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let fleet = Fleet::launch(&system, plans, CONNECTING_AT_ONCE, |s| {
        let counted = if room { &s.seated } else { &s.entered };
        Shared::get(counted) >= n as u64
    })
    .await?;
    eprintln!(
        "all {}; {} s of load…",
        if room { "seated" } else { "in" },
        args.duration
    );

    let shared = fleet.shared.clone();
    let writes_before = system.writes().await;
    let sampler = Sampler::start(system.pids())?;
    let redis_before = match &system.redis {
        Some(redis) => Some((Sampler::start(vec![redis.pid])?, redis_commands(redis)?)),
        None => None,
    };
    let me = std::process::id();
    let my_cpu = crate::proc::cpu_seconds(me)?;
    let frames_before = Shared::get(&shared.frames);
    let bytes_before = Shared::get(&shared.bytes);
    let chats_before = Shared::get(&shared.chat_receipts);
    let load = Duration::from_secs(args.duration);
    let started = Instant::now();
    let (mut chats, mut presses, mut moves) = (0u64, 0u64, 0u64);
    let mut rng = Lcg(0x5eed);
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    let total_seats = usize::from(lecture.rows) * usize::from(lecture.cols);
    let cols = usize::from(lecture.cols);
    let move_until = load
        .saturating_sub(MOVES_STOP_BEFORE_END.min(load / 4))
        .as_secs_f64();
    while started.elapsed() < load {
        tick.tick().await;
        let t = started.elapsed().as_secs_f64();
        while (chats as f64) < args.chat_rate * t {
            let from = (chats as usize * 7919 + 1) % n;
            let text = chat_text(chats, system.node_of(from), shared.now_us());
            let _ = fleet.handles[from].tx.send(crate::wire::Cmd::Chat(text));
            chats += 1;
        }
        while (presses as f64) < args.reaction_rate * t {
            let from = (presses as usize * 104_729 + 3) % n;
            let key = EMOTIONS[presses as usize % EMOTIONS.len()];
            let _ = fleet.handles[from].tx.send(crate::wire::Cmd::React(key));
            presses += 1;
        }
        // Moves stop a little before the end: the last one's news has then reached the
        // observer when the run stops, so its seat map is the final one to compare with.
        while (moves as f64) < args.move_rate * t.min(move_until) {
            let who = rng.below(n);
            let seat = rng.below(total_seats);
            let cmd = crate::wire::Cmd::TakeSeat((seat / cols) as u16, (seat % cols) as u16);
            let _ = fleet.handles[who].tx.send(cmd);
            moves += 1;
        }
    }
    let load_secs = started.elapsed().as_secs_f64();
    let frames = Shared::get(&shared.frames) - frames_before;
    let bytes = Shared::get(&shared.bytes) - bytes_before;
    let chat_frames = Shared::get(&shared.chat_receipts) - chats_before;
    let usage = sampler.finish()?;
    let redis = match (redis_before, &system.redis) {
        (Some((sampler, before)), Some(proc)) => {
            let usage = sampler.finish()?;
            Some(RedisLoad {
                cores: usage.cores,
                rss_end_bytes: usage.rss_end_bytes,
                commands_per_sec: redis_commands(proc)?.saturating_sub(before) as f64 / load_secs,
            })
        }
        _ => None,
    };
    let generator_cores = (crate::proc::cpu_seconds(me)? - my_cpu) / load_secs;
    let frames_per_write = match (writes_before, system.writes().await) {
        (Some(before), Some(after)) => after.per_write_since(&before),
        _ => None,
    };

    // Let the last deliveries arrive: until every alive learner has every accepted message and
    // press, or nothing arrives for a while.
    let alive = || n as u64 - Shared::get(&shared.failed);
    let expected_chats = || (chats - Shared::get(&shared.chat_refused)) * alive();
    let expected_bursts = || (presses - Shared::get(&shared.react_refused)) * alive();
    let drain_until = Instant::now() + DRAIN_WAIT;
    let mut last = (0, 0);
    let mut quiet_since = Instant::now();
    loop {
        let now = (
            Shared::get(&shared.chat_receipts),
            Shared::get(&shared.burst_receipts),
        );
        if now.0 >= expected_chats() && now.1 >= expected_bursts() {
            break;
        }
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
        if quiet_since.elapsed() > DRAIN_QUIET || Instant::now() > drain_until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let reports = fleet.finish().await;
    print_first_errors(&reports);
    drop(system);

    let chats_refused = Shared::get(&shared.chat_refused);
    let reactions_refused = Shared::get(&shared.react_refused);
    let accepted_chats = chats - chats_refused;
    let accepted_presses = presses - reactions_refused;
    let mut latency = learner::histogram();
    let mut cross = learner::histogram();
    let (mut lost, mut duplicated, mut totals_ok, mut checked) = (0u64, 0u64, 0u64, 0u64);
    let observer = reports
        .iter()
        .find(|r| r.seat_map.is_some())
        .and_then(|r| r.seat_map.clone())
        .unwrap_or_default();
    let mut seat_mismatches = 0u64;
    let mut seats_claimed = 0u64;
    for r in &reports {
        latency.add(&r.latency).context("merging histograms")?;
        cross.add(&r.cross_node).context("merging histograms")?;
        if r.error.is_some() {
            continue;
        }
        let sent = usize::try_from(chats).unwrap_or(usize::MAX);
        let got = &r.received[..r.received.len().min(sent)];
        let distinct = got.iter().filter(|c| **c > 0).count() as u64;
        let all: u64 = got.iter().map(|c| u64::from(*c)).sum();
        lost += accepted_chats.saturating_sub(distinct);
        duplicated += all - distinct;
        checked += 1;
        if r.bursts == accepted_presses {
            totals_ok += 1;
        }
        if let Some(seat) = r.seat {
            seats_claimed += 1;
            if !shows(&observer, seat, &r.member) {
                seat_mismatches += 1;
            }
        }
    }
    // Seats the observer shows that no learner claims.
    seat_mismatches += (observer.len() as u64).saturating_sub(seats_claimed);
    Ok(HeavyResult {
        profile: if node_count > 1 {
            "multi-node"
        } else {
            "heavy-lecture"
        },
        server: dialect,
        nodes: node_count,
        seated: n as u64 - Shared::get(&shared.failed),
        failed: Shared::get(&shared.failed),
        deliveries_per_sec: frames as f64 / load_secs,
        chat_deliveries_per_sec: chat_frames as f64 / load_secs,
        bytes_per_learner_per_sec: bytes as f64 / load_secs / n as f64,
        chats_sent: chats,
        chats_refused,
        latency: Percentiles::of(&latency),
        cross_node_latency: (node_count > 1).then(|| Percentiles::of(&cross)),
        lost,
        duplicated,
        reactions_sent: presses,
        reactions_refused,
        reaction_totals_correct: totals_ok,
        reaction_totals_checked: checked,
        moves_sent: moves,
        moves_refused: Shared::get(&shared.seat_refused),
        seat_mismatches,
        usage,
        frames_per_write,
        rss_before_bytes,
        generator_cores,
        redis,
        args,
    })
}

/// Parameters of `join-storm`.
#[derive(Clone, Debug, Serialize, clap::Args)]
pub struct JoinArgs {
    /// Learners entering.
    #[arg(long, default_value_t = 5000)]
    pub learners: usize,
    /// Seconds over which they arrive, evenly spread.
    #[arg(long, default_value_t = 10.0)]
    pub within: f64,
}

/// What `join-storm` measured.
#[derive(Debug, Serialize)]
pub struct JoinResult {
    /// The profile's name.
    pub profile: &'static str,
    /// The server.
    pub server: Dialect,
    /// The load.
    pub args: JoinArgs,
    /// Learners seated.
    pub seated: u64,
    /// Learners that failed to enter or sit.
    pub failed: u64,
    /// From a learner's arrival (ticket in hand) to its welcome.
    pub time_to_welcome: Percentiles,
    /// From a learner's arrival to seeing itself in its seat.
    pub time_to_seated: Percentiles,
    /// Seats a newcomer's snapshot shows wrongly (must be 0).
    pub wrong_seats: u64,
    /// What the learners received after their welcomes until the last was seated (seat
    /// changes, presence, …), in bytes of payload: all of them, and per learner.
    pub storm_bytes: u64,
    /// `storm_bytes` ÷ learners.
    pub storm_bytes_per_learner: u64,
    /// The server's CPU and memory over the storm.
    pub usage: Usage,
    /// The load generator's own CPU over the storm, in cores.
    pub generator_cores: f64,
}

/// `join-storm`.
pub async fn join_storm(
    servers: &Servers,
    dialect: Dialect,
    args: JoinArgs,
) -> anyhow::Result<JoinResult> {
    anyhow::ensure!(
        dialect.keeps_a_room(),
        "{} keeps no seats: the join storm measures the time to be seated",
        dialect.label()
    );
    let n = args.learners.max(1);
    let system = System::start(servers, dialect, BenchLecture::for_learners(n), 1, "").await?;
    eprintln!(
        "{}: {n} learners arriving within {} s…",
        dialect.label(),
        args.within
    );
    let spacing = Duration::from_secs_f64(args.within.max(0.0) / n as f64);
    let plans = (0..n)
        .map(|idx| {
            Ok(Plan {
                start_after: spacing * u32::try_from(idx).unwrap_or(u32::MAX),
                ..plan(&system, idx)?
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sampler = Sampler::start(system.pids())?;
    let me = std::process::id();
    let my_cpu = crate::proc::cpu_seconds(me)?;
    let fleet = Fleet::launch(&system, plans, n, |s| {
        Shared::get(&s.seated) + Shared::get(&s.failed) >= n as u64
    })
    .await?;
    let storm_bytes = Shared::get(&fleet.shared.bytes);
    let usage = sampler.finish()?;
    let generator_cores = (crate::proc::cpu_seconds(me)? - my_cpu) / usage.wall_secs.max(1e-3);
    // A newcomer's snapshot must show every learner in the seat it took.
    let observer_idx = n;
    let observer = system.person(observer_idx)?;
    let (_ws, snapshot) = dialect
        .enter(
            system.source(0),
            system.target(0),
            &system.lecture.id,
            &observer,
        )
        .await
        .context("the observer's entry")?;
    let shown: HashMap<(u16, u16), Option<String>> = snapshot
        .seats
        .into_iter()
        .map(|(r, c, u)| ((r, c), u))
        .collect();
    let shared = fleet.shared.clone();
    let reports = fleet.finish().await;
    print_first_errors(&reports);
    let mut welcome = learner::histogram();
    let mut seated = learner::histogram();
    let mut wrong = 0u64;
    for r in &reports {
        if let Some(t) = r.entered_after {
            welcome.record(t.as_micros().max(1) as u64)?;
        }
        if let Some(t) = r.seated_after {
            seated.record(t.as_micros().max(1) as u64)?;
        }
        if r.seated_after.is_some() && !shows(&shown, system.seat_of(r.idx), &r.member) {
            wrong += 1;
        }
    }
    // Seats the snapshot shows that no learner took.
    wrong += (shown.len() as u64).saturating_sub(seated.len());
    Ok(JoinResult {
        profile: "join-storm",
        server: dialect,
        seated: seated.len(),
        failed: Shared::get(&shared.failed),
        time_to_welcome: Percentiles::of(&welcome),
        time_to_seated: Percentiles::of(&seated),
        wrong_seats: wrong,
        storm_bytes,
        storm_bytes_per_learner: storm_bytes / n as u64,
        usage,
        generator_cores,
        args,
    })
}

/// Parameters of `idle`.
#[derive(Clone, Debug, Serialize, clap::Args)]
pub struct IdleArgs {
    /// Idle learners.
    #[arg(long, default_value_t = 20_000)]
    pub learners: usize,
    /// Seconds to hold them connected before reading the server's memory.
    #[arg(long, default_value_t = 10)]
    pub hold: u64,
}

/// What `idle` measured.
#[derive(Debug, Serialize)]
pub struct IdleResult {
    /// The profile's name.
    pub profile: &'static str,
    /// The server.
    pub server: Dialect,
    /// The load.
    pub args: IdleArgs,
    /// Learners connected at the end.
    pub connected: u64,
    /// Learners that failed to connect or were cut off.
    pub failed: u64,
    /// The server's RSS before anyone connected.
    pub rss_before_bytes: u64,
    /// The server's RSS with everyone connected and idle.
    pub rss_after_bytes: u64,
    /// (after − before) / connected.
    pub rss_per_connection_bytes: u64,
    /// CPU the server used to keep them while idle, in cores.
    pub idle_cores: f64,
}

/// `idle`.
pub async fn idle(
    servers: &Servers,
    dialect: Dialect,
    args: IdleArgs,
) -> anyhow::Result<IdleResult> {
    let n = args.learners.max(1);
    let system = System::start(servers, dialect, BenchLecture::for_learners(n), 1, "").await?;
    let pids = system.node_pids();
    let rss_before: u64 = pids
        .iter()
        .map(|p| crate::proc::rss_bytes(*p))
        .sum::<anyhow::Result<u64>>()?;
    eprintln!("{}: {n} idle learners connecting…", dialect.label());
    let plans = (0..n)
        .map(|idx| {
            Ok(Plan {
                sit: None,
                ..plan(&system, idx)?
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let fleet = Fleet::launch(&system, plans, CONNECTING_AT_ONCE, |s| {
        Shared::get(&s.entered) >= n as u64
    })
    .await?;
    eprintln!("all connected; holding {} s…", args.hold);
    let sampler = Sampler::start(pids.clone())?;
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    let usage = sampler.finish()?;
    let shared = fleet.shared.clone();
    let failed = Shared::get(&shared.failed);
    let connected = n as u64 - failed;
    let reports = fleet.finish().await;
    print_first_errors(&reports);
    let grown = usage.rss_end_bytes.saturating_sub(rss_before);
    Ok(IdleResult {
        profile: "idle",
        server: dialect,
        connected,
        failed,
        rss_before_bytes: rss_before,
        rss_after_bytes: usage.rss_end_bytes,
        rss_per_connection_bytes: grown / connected.max(1),
        idle_cores: usage.cores,
        args,
    })
}
