//! The node's configuration: command-line flags and environment variables over an optional
//! TOML file over defaults.

use crate::client_addr::{BadProxy, ForwardedHeader, TrustedProxies};
use crate::gate::identity::IdentitySettings;
use crate::gate::model::Lecture;
use protocol::ticket::{TicketKey, WeakSecret};
use serde::Deserialize;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

mod archive;
mod lectures;
mod limits;
mod mail;
mod media;
mod tuning;

pub use archive::{ArchiveSettings, StoreKind};
pub use lectures::LectureEntry;
pub use limits::Limits;
pub use mail::{MailSettings, SmtpTls};
pub use media::MediaSettings;
pub use tuning::RoomTuning;

/// Where the node listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The database unless told otherwise: a SQLite file in the working folder.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://room-server.db";
/// The web client's built files unless told otherwise (`npm run build` in `web-client/`),
/// relative to the working folder.
pub const DEFAULT_WEB_ROOT: &str = "web-client/dist";

/// Why the configuration cannot be used. Each names the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped settings.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its line.
        message: String,
    },
    /// No ticket secret outside demo mode.
    #[error(
        "no ticket secret: set `ticket_secret` in the config file, --ticket-secret or ROOM_TICKET_SECRET (or run with --demo)"
    )]
    NoTicketSecret,
    /// The ticket secret is too short.
    #[error("ticket secret: {0}")]
    WeakSecret(#[from] WeakSecret),
    /// The system's random source failed (demo key).
    #[error("cannot draw a random ticket secret: {0}")]
    Random(String),
    /// A lecture in the file is not usable.
    #[error("lecture `{id}`: {message}")]
    Lecture {
        /// The lecture's id.
        id: String,
        /// What is wrong.
        message: String,
    },
    /// A limit is out of range.
    #[error("{0}")]
    Invalid(String),
    /// The `[archive]` table is incomplete.
    #[error("[archive]: {0}")]
    Archive(&'static str),
    /// Demo mode with the portal's identity settings: it would sign demo tokens with the
    /// portal's secret, good on every node that trusts the portal.
    #[error(
        "demo mode signs its own sign-in tokens: remove the [identity] table from the config \
         file (or run without --demo)"
    )]
    DemoWithIdentity,
    /// Demo mode on a shared database: it would seed demo records into the real ones.
    #[error(
        "demo mode puts demo records in its database: `database_url` (--database-url) must be a \
         SQLite file of its own, not a shared database (or run without --demo)"
    )]
    DemoWithSharedDatabase,
    /// A trusted proxy is not an address or a network.
    #[error(transparent)]
    Proxy(#[from] BadProxy),
}

/// The settings of the TOML file. Every field is optional; unknown fields are an error so a
/// misspelt setting does not silently fall back to its default.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// Address to listen on.
    pub listen: Option<SocketAddr>,
    /// A second address serving only `/metrics`, `/healthz` and `/readyz` (then `/metrics` is
    /// not on the public one).
    pub metrics_listen: Option<SocketAddr>,
    /// Demo mode.
    pub demo: Option<bool>,
    /// Ticket secret (at least 32 bytes; `openssl rand -hex 32`).
    pub ticket_secret: Option<String>,
    /// The ticket secret being rotated out: tickets and relay tokens it signed are still
    /// accepted, none is signed with it (docs/operations.md, "Rotating secrets").
    pub ticket_secret_previous: Option<String>,
    /// What pseudonyms are derived from (at least 32 bytes), so they outlive a rotation of
    /// the ticket secret; none: the ticket secret.
    pub pseudonym_secret: Option<String>,
    /// Lifetime of tickets minted by this node (demo sign-in, `mint-ticket`).
    pub ticket_ttl_secs: Option<u64>,
    /// Browser origins allowed to open room connections.
    pub allowed_origins: Option<Vec<String>>,
    /// Limits.
    pub limits: Limits,
    /// Room tuning.
    pub room: RoomTuning,
    /// Lectures to put in the store at start (besides those the portal sends).
    pub lectures: Vec<LectureEntry>,
    /// `sqlite://path` (default `sqlite://room-server.db`) or `postgres://…`.
    pub database_url: Option<String>,
    /// How the portal signs identity tokens.
    pub identity: Option<IdentitySettings>,
    /// The key the portal sends in `X-Api-Key` to the integration API (at least 32 bytes).
    pub integration_api_key: Option<String>,
    /// The portal's sign-in page the web client sends people to (`https://…`); it answers
    /// with an identity token and the client's `state` (see docs/portal-sign-in.md).
    pub portal_sign_in_url: Option<String>,
    /// `redis://host:port/db` when several nodes share lectures.
    pub redis_url: Option<String>,
    /// The folder of the web client's built files.
    pub web_root: Option<PathBuf>,
    /// The media path.
    pub media: MediaSettings,
    /// Where finished lectures' archives are kept.
    pub archive: ArchiveSettings,
    /// Load balancers and proxies (addresses or CIDR networks) whose `forwarded_header` names
    /// the client; empty: the TCP peer is the client.
    pub trusted_proxies: Vec<String>,
    /// The header those proxies write the client's address in.
    pub forwarded_header: ForwardedHeader,
    /// The SMTP server learners' e-mails go through; none: no e-mails.
    pub mail: Option<MailSettings>,
}

impl FileConfig {
    /// Reads and parses a config file.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses a config file's text. A mistake is told by its line and key, never with the
    /// line's value: toml's own message quotes the offending line, which may hold a secret.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| parse_error(text, &e))
    }
}

/// Where a TOML mistake is and what it is, without the values of the file.
fn parse_error(text: &str, e: &toml::de::Error) -> String {
    let mut message = e.message().lines().next().unwrap_or_default().to_owned();
    // serde's "invalid type: string \"…\", expected …" and "invalid value: …" quote the
    // value: keep what was expected.
    for kind in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(rest) = message.strip_prefix(kind)
            && let Some((_, expected)) = rest.split_once(", expected ")
        {
            message = format!("{}, expected {expected}", kind.trim_end_matches([':', ' ']));
        }
    }
    let Some(span) = e.span() else {
        return message;
    };
    let start = span.start.min(text.len());
    let line_no = text
        .get(..start)
        .map_or(0, |before| before.matches('\n').count())
        + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or_default();
    let (key, value) = match line.split_once('=') {
        Some((key, value)) => (key.trim(), value.trim()),
        None => ("", line.trim()),
    };
    // Whatever the message says, never the value written on the line.
    if value.chars().count() >= 3 {
        message = message.replace(value, "…");
        let unquoted = value.trim_matches(['"', '\'']);
        if unquoted.chars().count() >= 3 {
            message = message.replace(unquoted, "…");
        }
    }
    let key_is_plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.\"' ".contains(c));
    if key_is_plain {
        format!("line {line_no}, key `{key}`: {message}")
    } else {
        format!("line {line_no}: {message}")
    }
}

/// Longest portal sign-in address accepted: the client adds its `state` and return address.
const MAX_SIGN_IN_URL_BYTES: usize = 2048;

/// Checks the portal's sign-in address: an absolute `https://` (or `http://`, for a portal on
/// a private network or in a test) address with a host, without credentials or a fragment.
/// Browsers are sent there, so anything else (`javascript:`, a relative path) is refused at
/// start rather than found by a learner.
fn check_sign_in_url(url: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| {
        Err(ConfigError::Invalid(format!(
            "portal_sign_in_url {why} (e.g. \"https://portal.example.jp/rooms/sign-in\")"
        )))
    };
    if url.len() > MAX_SIGN_IN_URL_BYTES || url.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return bad("must be a single address without spaces");
    }
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return bad("must start with https:// or http://");
    };
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        return bad("must name a host (and no user or password)");
    }
    if url.contains('#') {
        return bad("must not have a fragment (#…): the portal's answer comes back in one");
    }
    Ok(())
}

/// Settings given on the command line or in the environment; they win over the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--listen` / `ROOM_LISTEN`.
    pub listen: Option<SocketAddr>,
    /// `--metrics-listen` / `ROOM_METRICS_LISTEN`.
    pub metrics_listen: Option<SocketAddr>,
    /// `--demo` / `ROOM_DEMO`.
    pub demo: bool,
    /// `--ticket-secret` / `ROOM_TICKET_SECRET`.
    pub ticket_secret: Option<String>,
    /// `--ticket-secret-previous` / `ROOM_TICKET_SECRET_PREVIOUS`.
    pub ticket_secret_previous: Option<String>,
    /// `--pseudonym-secret` / `ROOM_PSEUDONYM_SECRET`.
    pub pseudonym_secret: Option<String>,
    /// `--allowed-origin` / `ROOM_ALLOWED_ORIGINS`.
    pub allowed_origins: Vec<String>,
    /// `--database-url` / `ROOM_DATABASE_URL`.
    pub database_url: Option<String>,
    /// `--integration-api-key` / `ROOM_INTEGRATION_API_KEY`.
    pub integration_api_key: Option<String>,
    /// `--redis-url` / `ROOM_REDIS_URL`.
    pub redis_url: Option<String>,
    /// `--web-root` / `ROOM_WEB_ROOT`.
    pub web_root: Option<PathBuf>,
    /// `ROOM_MEDIA_UDP_PORT_RANGE`: `[media] udp_port_range` (one file for every node).
    pub udp_port_range: Option<String>,
    /// `ROOM_MEDIA_RELAY_URL`: `[media] relay_url`.
    pub relay_url: Option<String>,
    /// `ROOM_TURN_SECRET`: `[media] turn_secret`.
    pub turn_secret: Option<String>,
    /// `ROOM_MAIL_SMTP_PASSWORD`: `[mail] password`.
    pub mail_password: Option<String>,
}

/// The node's resolved configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where `/metrics` (with `/healthz` and `/readyz`) is served apart from the public
    /// address, for the operators' network only; none: `/metrics` is on the public address.
    pub metrics_listen: Option<SocketAddr>,
    /// Demo mode: a demo lecture with open doors, demo users and a demo sign-in.
    pub demo: bool,
    /// The keys that sign and verify tickets and relay tokens (the current one signs; a
    /// previous one is still accepted during a rotation).
    pub ticket_key: TicketKey,
    /// Lifetime of tickets this node mints.
    pub ticket_ttl_secs: u64,
    /// Browser origins allowed to connect, exactly as browsers send them
    /// (`https://lectures.example.jp`). When empty, only pages served by this node itself
    /// (same host) may connect. Clients that send no Origin (not browsers) are not affected.
    pub allowed_origins: Vec<String>,
    /// Limits.
    pub limits: Limits,
    /// Room tuning.
    pub room: RoomTuning,
    /// Lectures put in the store at start.
    pub lectures: Vec<Lecture>,
    /// The database.
    pub database_url: String,
    /// How portal identity tokens are checked; none: only demo sign-in (demo mode) identifies
    /// people.
    pub identity: Option<IdentitySettings>,
    /// The integration API's key; none: the integration API is off.
    pub integration_api_key: Option<String>,
    /// The portal's sign-in page, which the web client offers as "sign in through the
    /// portal"; none: no such button. Kept apart from `[identity]` so a demo node (which
    /// refuses `[identity]`) can show the hand-off against a test portal.
    pub portal_sign_in_url: Option<String>,
    /// Redis, when several nodes share lectures; none: this node alone.
    pub redis_url: Option<String>,
    /// The web client's built files, served at `/` (relative paths: to the working folder).
    /// When missing the APIs still work and the pages answer 503 saying how to build them.
    pub web_root: PathBuf,
    /// The media path (WebRTC ports, addresses, STUN/TURN for browsers, recording).
    pub media: MediaSettings,
    /// Where finished lectures' archives are kept, and for how long.
    pub archive: ArchiveSettings,
    /// Whose word about the client's address is taken (for every per-address limit).
    pub trusted_proxies: TrustedProxies,
    /// Learners' e-mails (reminders, archive ready, cancellations); none: off.
    pub mail: Option<MailSettings>,
}

impl Config {
    /// What the entry gate is made from.
    pub fn gate_settings(&self) -> crate::gate::GateSettings {
        let room = self.room.settings(protocol::Epoch(0));
        crate::gate::GateSettings {
            database_url: self.database_url.clone(),
            lectures: self.lectures.clone(),
            demo: self.demo,
            identity: self.identity.clone(),
            ticket_key: self.ticket_key.clone(),
            ticket_ttl_secs: self.ticket_ttl_secs,
            integration_api_key: self.integration_api_key.clone(),
            portal_sign_in_url: self.portal_sign_in_url.clone(),
            trusted_proxies: self.trusted_proxies.clone(),
            timing: crate::gate::entitlement::Timing {
                doors_open_before_ms: room.doors_open_before_ms,
                end_grace_ms: room.end_grace_ms,
            },
            tickets_per_min: self.limits.tickets_per_min,
            ticket_burst: self.limits.ticket_burst,
            sign_ins_per_min: self.limits.sign_ins_per_min,
            mail_notices: self.mail.is_some(),
        }
    }

    /// Defaults around a ticket key.
    pub fn new(ticket_key: TicketKey) -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("the default address parses"),
            metrics_listen: None,
            demo: false,
            ticket_key,
            ticket_ttl_secs: 300,
            allowed_origins: Vec::new(),
            limits: Limits::default(),
            room: RoomTuning::default(),
            lectures: Vec::new(),
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            identity: None,
            integration_api_key: None,
            portal_sign_in_url: None,
            redis_url: None,
            web_root: PathBuf::from(DEFAULT_WEB_ROOT),
            media: MediaSettings::default(),
            archive: ArchiveSettings::default(),
            trusted_proxies: TrustedProxies::default(),
            mail: None,
        }
    }

    /// Resolves flags and environment over the file over defaults.
    pub fn resolve(mut file: FileConfig, over: Overrides) -> Result<Self, ConfigError> {
        let demo = over.demo || file.demo.unwrap_or(false);
        let database_url = over
            .database_url
            .or(file.database_url)
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        if demo && file.identity.is_some() {
            return Err(ConfigError::DemoWithIdentity);
        }
        if demo && !database_url.starts_with("sqlite:") {
            return Err(ConfigError::DemoWithSharedDatabase);
        }
        let mut ticket_key = match over.ticket_secret.or(file.ticket_secret) {
            Some(secret) => TicketKey::new(secret.into_bytes())?,
            None if demo => random_key().map_err(|e| ConfigError::Random(e.to_string()))?,
            None => return Err(ConfigError::NoTicketSecret),
        };
        if let Some(previous) = over
            .ticket_secret_previous
            .or(file.ticket_secret_previous)
            .filter(|s| !s.is_empty())
        {
            ticket_key = ticket_key
                .with_previous(previous.into_bytes())
                .map_err(|e| {
                    ConfigError::Invalid(format!(
                        "ticket_secret_previous (ROOM_TICKET_SECRET_PREVIOUS): {e}"
                    ))
                })?;
        }
        if let Some(secret) = over
            .pseudonym_secret
            .or(file.pseudonym_secret)
            .filter(|s| !s.is_empty())
        {
            ticket_key = ticket_key
                .with_pseudonym_secret(secret.into_bytes())
                .map_err(|e| {
                    ConfigError::Invalid(format!("pseudonym_secret (ROOM_PSEUDONYM_SECRET): {e}"))
                })?;
        }
        let lectures = file
            .lectures
            .iter()
            .map(LectureEntry::to_lecture)
            .collect::<Result<Vec<_>, _>>()?;
        let mut ids = HashSet::new();
        if let Some(dup) = lectures.iter().find(|l| !ids.insert(&l.id)) {
            return Err(ConfigError::Lecture {
                id: dup.id.to_string(),
                message: "listed twice".into(),
            });
        }
        file.room.validate()?;
        if let Some(range) = over.udp_port_range.clone() {
            file.media.udp_port_range = Some(range);
        }
        if let Some(url) = over.relay_url.clone() {
            file.media.relay_url = Some(url);
        }
        if let Some(secret) = over.turn_secret.clone() {
            file.media.turn_secret = Some(crate::turn::TurnSecret::new(secret));
        }
        file.media.port_range()?;
        file.media.check_port_range()?;
        file.media.check_turn()?;
        file.media.check_relay_url()?;
        let trusted_proxies = TrustedProxies::new(&file.trusted_proxies, file.forwarded_header)?;
        let limits = file.limits;
        if limits.max_message_bytes < 1024
            || limits.outbound_queue == 0
            || limits.commands_per_sec == 0
        {
            return Err(ConfigError::Invalid(
                "[limits] max_message_bytes must be at least 1024; outbound_queue and commands_per_sec at least 1"
                    .into(),
            ));
        }
        if limits.header_read_timeout_ms == 0
            || limits.request_timeout_ms == 0
            || limits.write_stall_ms == 0
            || limits.socket_send_buffer_bytes < 4096
        {
            return Err(ConfigError::Invalid(
                "[limits] header_read_timeout_ms, request_timeout_ms and write_stall_ms must be at least 1; socket_send_buffer_bytes at least 4096"
                    .into(),
            ));
        }
        if limits.write_coalesce_us > 5_000 {
            return Err(ConfigError::Invalid(
                "[limits] write_coalesce_us must be at most 5000 (5 ms)".into(),
            ));
        }
        if limits.drain_window_ms > 600_000 || limits.drain_spread_ms > 600_000 {
            return Err(ConfigError::Invalid(
                "[limits] drain_window_ms and drain_spread_ms must be at most 600000 (10 minutes)"
                    .into(),
            ));
        }
        if !(1..=60).contains(&limits.check_probe_secs) {
            return Err(ConfigError::Invalid(
                "[limits] check_probe_secs must be 1 to 60 (the check socket's life)".into(),
            ));
        }
        if let Some(identity) = &file.identity {
            crate::gate::identity::PortalIdentity::new(identity)
                .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        }
        let integration_api_key = over.integration_api_key.or(file.integration_api_key);
        if integration_api_key.as_ref().is_some_and(|k| k.len() < 32) {
            return Err(ConfigError::Invalid(
                "integration_api_key must be at least 32 bytes".into(),
            ));
        }
        if let Some(url) = &file.portal_sign_in_url {
            check_sign_in_url(url)?;
        }
        let mut allowed_origins = over.allowed_origins;
        if allowed_origins.is_empty() {
            allowed_origins = file.allowed_origins.unwrap_or_default();
        }
        Ok(Self {
            listen: over
                .listen
                .or(file.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("parses")),
            metrics_listen: over.metrics_listen.or(file.metrics_listen),
            demo,
            ticket_key,
            ticket_ttl_secs: file
                .ticket_ttl_secs
                .unwrap_or(300)
                .clamp(10, protocol::ticket::TICKET_MAX_SECS),
            allowed_origins,
            limits,
            room: file.room,
            lectures,
            database_url,
            identity: file.identity,
            integration_api_key,
            portal_sign_in_url: file.portal_sign_in_url,
            redis_url: over.redis_url.or(file.redis_url),
            web_root: over
                .web_root
                .or(file.web_root)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_WEB_ROOT)),
            media: file.media,
            archive: file.archive.resolve()?,
            trusted_proxies,
            mail: file
                .mail
                .map(|mail| mail.resolve(over.mail_password))
                .transpose()?,
        })
    }
}

/// A fresh random ticket key (demo mode: tickets die with the process).
fn random_key() -> Result<TicketKey, getrandom::Error> {
    let mut secret = vec![0u8; 32];
    getrandom::fill(&mut secret)?;
    Ok(TicketKey::new(secret).expect("32 bytes is long enough"))
}

#[cfg(test)]
mod tests;
