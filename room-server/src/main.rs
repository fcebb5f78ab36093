//! `room-server`: runs a live lecture room node, or mints a room ticket.

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use protocol::ticket::{TicketClaims, nickname_is_valid};
use protocol::{LectureId, Nickname, Role, UserId};
use room_server::clock::{Clock, SystemClock};
use room_server::config::{Config, FileConfig, Overrides};
use room_server::{Node, run};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(
    name = "room-server",
    version,
    about = "Live lecture room node",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print a signed room ticket (for operators and tests).
    MintTicket(MintArgs),
    /// Make (or make again) a lecture's archive from its recording folder, into the
    /// `[archive]` store of the config file or a local folder; prints the manifest.
    MakeArchive(MakeArchiveArgs),
}

#[derive(Args, Debug)]
struct MakeArchiveArgs {
    /// TOML configuration file (its `[archive]` table names the store).
    #[arg(long, env = "ROOM_CONFIG")]
    config: Option<PathBuf>,
    /// A local store folder instead of the config file's store.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The recording folder (`<recording_dir>/<lecture>`).
    #[arg(long)]
    recording: PathBuf,
    /// Lecture id.
    #[arg(long)]
    lecture: String,
    /// When the lecture went live (Unix ms): the archive's time 0.
    #[arg(long)]
    live_from_ms: u64,
    /// When it ended (Unix ms).
    #[arg(long)]
    live_until_ms: u64,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "ROOM_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "ROOM_LISTEN")]
    listen: Option<SocketAddr>,
    /// A second address serving only /metrics, /healthz and /readyz (for the operators'
    /// network); then /metrics is not served on the public address.
    #[arg(long, env = "ROOM_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Demo mode: a demo lecture with open doors, demo people, a demo sign-in, a random
    /// ticket secret.
    #[arg(long, env = "ROOM_DEMO")]
    demo: bool,
    /// Ticket secret, at least 32 bytes (e.g. `openssl rand -hex 32`).
    #[arg(long, env = "ROOM_TICKET_SECRET", hide_env_values = true)]
    ticket_secret: Option<String>,
    /// The ticket secret being rotated out: what it signed is still accepted.
    #[arg(long, env = "ROOM_TICKET_SECRET_PREVIOUS", hide_env_values = true)]
    ticket_secret_previous: Option<String>,
    /// What pseudonyms are derived from, so they outlive a ticket secret's rotation.
    #[arg(long, env = "ROOM_PSEUDONYM_SECRET", hide_env_values = true)]
    pseudonym_secret: Option<String>,
    /// Browser origin allowed to connect (repeat, or comma-separated in the environment).
    #[arg(
        long = "allowed-origin",
        env = "ROOM_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    allowed_origins: Vec<String>,
    /// The gate's database: `sqlite://path` [default: sqlite://room-server.db] or `postgres://…`.
    #[arg(long, env = "ROOM_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// The key the portal sends as X-Api-Key to the integration API (at least 32 bytes).
    #[arg(long, env = "ROOM_INTEGRATION_API_KEY", hide_env_values = true)]
    integration_api_key: Option<String>,
    /// Redis (`redis://host:port/db`) when several nodes share lectures.
    #[arg(long, env = "ROOM_REDIS_URL", hide_env_values = true)]
    redis_url: Option<String>,
    /// The web client's built files, served at `/` [default: web-client/dist].
    #[arg(long, env = "ROOM_WEB_ROOT")]
    web_root: Option<PathBuf>,
    /// `[media] udp_port_range` for this node (`50000-50499`).
    #[arg(long, env = "ROOM_MEDIA_UDP_PORT_RANGE")]
    media_udp_port_range: Option<String>,
    /// `[media] relay_url`: how the other nodes reach this one (`ws://node1:8080`).
    #[arg(long, env = "ROOM_MEDIA_RELAY_URL")]
    media_relay_url: Option<String>,
    /// `[media] turn_secret`: coturn's `static-auth-secret`.
    #[arg(long, env = "ROOM_TURN_SECRET", hide_env_values = true)]
    turn_secret: Option<String>,
}

#[derive(Args, Debug)]
struct MintArgs {
    /// TOML configuration file (for the ticket secret and lifetime).
    #[arg(long, env = "ROOM_CONFIG")]
    config: Option<PathBuf>,
    /// Ticket secret; overrides the file.
    #[arg(long, env = "ROOM_TICKET_SECRET", hide_env_values = true)]
    ticket_secret: Option<String>,
    /// Lecture id.
    #[arg(long)]
    lecture: String,
    /// Account id.
    #[arg(long)]
    user: String,
    /// Nickname shown in the room.
    #[arg(long)]
    nickname: String,
    /// Role in the lecture.
    #[arg(long, value_enum, default_value_t = RoleArg::Learner)]
    role: RoleArg,
    /// Lifetime in seconds [default: the file's ticket_ttl_secs, or 300].
    #[arg(long)]
    ttl_secs: Option<u64>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum RoleArg {
    Learner,
    Instructor,
    Moderator,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Learner => Role::Learner,
            RoleArg::Instructor => Role::Instructor,
            RoleArg::Moderator => Role::Moderator,
        }
    }
}

fn read_file(path: Option<&PathBuf>) -> anyhow::Result<FileConfig> {
    Ok(match path {
        Some(path) => FileConfig::read(path)?,
        None => FileConfig::default(),
    })
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::MintTicket(args)) => mint(args),
        Some(Command::MakeArchive(args)) => make_archive(args),
        None => serve(cli.serve),
    }
}

#[allow(clippy::print_stdout, reason = "the manifest is the command's output")]
fn make_archive(args: MakeArchiveArgs) -> anyhow::Result<()> {
    use room_server::archive::ArchiveStore;
    let store = match &args.out {
        Some(dir) => ArchiveStore::local(dir)?,
        None => {
            let file = read_file(args.config.as_ref())?;
            let config = Config::resolve(file, Overrides::default())?;
            ArchiveStore::from_settings(&config.archive, config.media.recording_dir.as_deref())?
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let manifest = runtime.block_on(room_server::archive::make_archive(
        &args.recording,
        &LectureId::from(args.lecture.as_str()),
        args.live_from_ms,
        args.live_until_ms,
        &store,
    ))?;
    println!("{}", serde_json::to_string_pretty(&manifest)?);
    Ok(())
}

#[allow(clippy::print_stdout, reason = "the ticket is the command's output")]
fn mint(args: MintArgs) -> anyhow::Result<()> {
    let file = read_file(args.config.as_ref())?;
    let over = Overrides {
        ticket_secret: args.ticket_secret,
        ..Overrides::default()
    };
    let config = Config::resolve(file, over)?;
    let nickname = Nickname::from(args.nickname);
    anyhow::ensure!(
        nickname_is_valid(&nickname),
        "the nickname must be 1 to 40 characters, without surrounding spaces or control characters"
    );
    let ttl = args.ttl_secs.unwrap_or(config.ticket_ttl_secs);
    anyhow::ensure!(
        (1..=protocol::ticket::TICKET_MAX_SECS).contains(&ttl),
        "the lifetime must be 1 to {} seconds: nodes refuse longer tickets",
        protocol::ticket::TICKET_MAX_SECS
    );
    let now = SystemClock.now().0 / 1000;
    let claims = TicketClaims {
        lec: LectureId::from(args.lecture),
        sub: UserId::from(args.user),
        nick: nickname,
        role: args.role.into(),
        iat: now,
        exp: now + ttl,
    };
    println!("{}", config.ticket_key.mint(&claims));
    Ok(())
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("ROOM_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let file = read_file(args.config.as_ref())?;
    let over = Overrides {
        listen: args.listen,
        metrics_listen: args.metrics_listen,
        demo: args.demo,
        ticket_secret: args.ticket_secret,
        ticket_secret_previous: args.ticket_secret_previous,
        pseudonym_secret: args.pseudonym_secret,
        allowed_origins: args.allowed_origins,
        database_url: args.database_url,
        integration_api_key: args.integration_api_key,
        redis_url: args.redis_url,
        web_root: args.web_root,
        udp_port_range: args.media_udp_port_range,
        relay_url: args.media_relay_url,
        turn_secret: args.turn_secret,
        // The environment only: a flag's value shows in the process list.
        mail_password: std::env::var("ROOM_MAIL_SMTP_PASSWORD").ok(),
    };
    let config = Config::resolve(file, over)?;
    // Every client socket is a descriptor: take all the system allows this process (the node
    // keeps its own reserve below that, `[limits] reserved_descriptors`).
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(error = %e, "could not raise the open-file limit");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let listener = room_server::node::listen(config.listen)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let node = Node::start(config, Arc::new(SystemClock))
            .await
            .context("starting the node")?;
        // The first SIGTERM or Ctrl-C drains; a second one stops at once. Both are listened
        // for from here on: a signal before a listener exists would be missed.
        let mut signals = StopSignals::new();
        let stopper = Arc::clone(&node);
        let shutdown = async move {
            signals.next().await;
            tracing::info!("draining; a second SIGTERM or Ctrl-C stops at once");
            tokio::spawn(async move {
                signals.next().await;
                tracing::info!("stopping now");
                stopper.stop_now();
            });
        };
        run(listener, node, shutdown).await.context("serving")
    })
}

/// SIGTERM (orchestrators) and Ctrl-C (a person), listened for from their creation on.
struct StopSignals {
    term: Option<Signal>,
    interrupt: Option<Signal>,
}

impl StopSignals {
    fn new() -> Self {
        let listen = |kind| match signal(kind) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for a stop signal");
                None
            }
        };
        Self {
            term: listen(SignalKind::terminate()),
            interrupt: listen(SignalKind::interrupt()),
        }
    }

    /// Resolves on the next SIGTERM or Ctrl-C.
    async fn next(&mut self) {
        async fn recv(signal: &mut Option<Signal>) {
            let received = match signal {
                Some(s) => s.recv().await.is_some(),
                None => false,
            };
            if !received {
                std::future::pending::<()>().await;
            }
        }
        tokio::select! {
            () = recv(&mut self.term) => {}
            () = recv(&mut self.interrupt) => {}
        }
    }
}
