//! The load generator. It starts the servers under test itself (on loopback), drives real
//! WebSocket learners at them and reports latency percentiles, losses and the servers' CPU and
//! memory. See bench/README.md for the profiles and what each number means.

use bench::profiles::{self, HeavyArgs, IdleArgs, JoinArgs};
use bench::system::Servers;
use bench::wire::Dialect;
use bench::{chart, report};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "bench", about = "Load profiles for room-server and its peers")]
struct Cli {
    #[command(subcommand)]
    profile: Profile,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args, Debug)]
struct Common {
    /// The server under test.
    #[arg(long, global = true, value_enum, default_value_t = Server::Ours)]
    server: Server,
    /// The `room-server` binary [default: next to this program].
    #[arg(long, global = true)]
    room_server: Option<PathBuf>,
    /// The Socket.IO peer's folder, with its `node_modules` installed.
    #[arg(long, global = true, default_value = "bench/peers/socketio")]
    socketio_dir: PathBuf,
    /// The `nats-server` binary [default: `nats-server` on the PATH, else Debian's
    /// /usr/sbin/nats-server].
    #[arg(long, global = true)]
    nats_server: Option<PathBuf>,
    /// Loopback source addresses learners spread over (127.0.0.1 …): each has about 28,000
    /// ports.
    #[arg(long, global = true, default_value_t = 8)]
    sources: u8,
    /// Also write the result as JSON to this file.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Server {
    /// room-server.
    Ours,
    /// The Socket.IO peer (bench/peers/socketio).
    Socketio,
    /// nats-server over WebSocket: the chat alone, one subject (no seats, no reactions).
    Nats,
}

impl From<Server> for Dialect {
    fn from(s: Server) -> Self {
        match s {
            Server::Ours => Dialect::Ours,
            Server::Socketio => Dialect::SocketIo,
            Server::Nats => Dialect::Nats,
        }
    }
}

#[derive(Subcommand, Debug)]
enum Profile {
    /// N learners in one lecture chatting, reacting and moving: throughput, latency, losses.
    HeavyLecture(HeavyArgs),
    /// The heavy lecture spread over several nodes sharing Redis: cross-node latency.
    MultiNode {
        #[command(flatten)]
        load: HeavyArgs,
        /// Nodes.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
    },
    /// N learners entering within T seconds: time from ticket to seated; every seat right.
    JoinStorm(JoinArgs),
    /// N idle learners: the server's memory per connection.
    Idle(IdleArgs),
    /// The heavy lecture against room-server, the Socket.IO peer and nats-server (the chat
    /// alone): the ratios, and each one's highest chat rate held at p99 < 100 ms with no loss.
    Compare {
        #[command(flatten)]
        load: HeavyArgs,
        /// Chat rates (messages/s) to step through for the capacity search; empty skips it.
        #[arg(long, value_delimiter = ',', default_value = "20,50,100,200,400,800")]
        ramp: Vec<f64>,
        /// Seconds per capacity step.
        #[arg(long, default_value_t = 10)]
        step_duration: u64,
        /// Learners during the capacity search.
        #[arg(long, default_value_t = 2000)]
        ramp_learners: usize,
    },
    /// Latency against learners for room-server and the peer, as an SVG chart and JSON.
    Chart {
        /// Learner counts to measure.
        #[arg(long, value_delimiter = ',', default_value = "500,1000,2000,3000,5000")]
        learners: Vec<usize>,
        /// Seconds of load per point.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Where to write the chart.
        #[arg(long, default_value = "bench/results/latency-vs-learners.svg")]
        svg: PathBuf,
    },
    /// One publisher (VP8 + Opus), N WebRTC subscribers: room-server against Janus.
    SfuFanout(bench::sfu::SfuArgs),
}

/// Lets this process, and the servers it starts, hold tens of thousands of sockets.
fn raise_open_files() {
    use rlimit::Resource;
    let want = 262_144;
    if rlimit::setrlimit(Resource::NOFILE, want, want).is_err()
        && let Ok((_, hard)) = rlimit::getrlimit(Resource::NOFILE)
    {
        let _ = rlimit::setrlimit(Resource::NOFILE, hard, hard);
    }
}

fn servers(common: &Common) -> anyhow::Result<Servers> {
    let room_server = match &common.room_server {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .map(|d| d.join("room-server"))
            .ok_or_else(|| anyhow::anyhow!("no folder for this program"))?,
    };
    Ok(Servers {
        room_server,
        socketio_dir: common.socketio_dir.clone(),
        nats_server: common
            .nats_server
            .clone()
            .unwrap_or_else(nats_server_on_path),
        sources: common.sources,
    })
}

/// `nats-server` as the PATH finds it; Debian installs it in /usr/sbin, which a user's PATH
/// often leaves out.
fn nats_server_on_path() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("nats-server"))
        .find(|bin| bin.is_file())
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/nats-server"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    raise_open_files();
    let servers = servers(&cli.common)?;
    let dialect = Dialect::from(cli.common.server);
    let json = cli.common.json.as_deref();
    match cli.profile {
        Profile::HeavyLecture(args) => {
            report::emit(&profiles::heavy(&servers, dialect, 1, args).await?, json)
        }
        Profile::MultiNode { load, nodes } => report::emit(
            &profiles::heavy(&servers, dialect, nodes.max(2), load).await?,
            json,
        ),
        Profile::JoinStorm(args) => {
            report::emit(&profiles::join_storm(&servers, dialect, args).await?, json)
        }
        Profile::Idle(args) => report::emit(&profiles::idle(&servers, dialect, args).await?, json),
        Profile::Compare {
            load,
            ramp,
            step_duration,
            ramp_learners,
        } => {
            let result =
                chart::compare(&servers, load, &ramp, step_duration, ramp_learners).await?;
            report::emit(&result, json)
        }
        Profile::Chart {
            learners,
            duration,
            svg,
        } => {
            let result = chart::chart(&servers, &learners, duration, &svg).await?;
            report::emit(&result, json)
        }
        Profile::SfuFanout(args) => report::emit(&bench::sfu::run(&servers, args).await?, json),
    }
}
