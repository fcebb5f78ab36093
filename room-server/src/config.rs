//! The node's configuration: command-line flags and environment variables over an optional
//! TOML file over defaults.

use crate::client_addr::{BadProxy, ForwardedHeader, TrustedProxies};
use crate::gate::identity::IdentitySettings;
use crate::gate::model::{Lecture, LectureStatus, StaffMember, validate_lecture};
use crate::ticket::{TicketKey, WeakSecret};
use crate::turn::TurnSecret;
use protocol::UnixMillis;
use protocol::server::Emotion;
use room::RoomSettings;
use serde::Deserialize;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

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

/// Limits that keep one node healthy under load and abuse.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Concurrent room connections; more are refused with 503.
    pub max_connections: usize,
    /// Largest WebSocket message (and frame) a client may send, in bytes.
    pub max_message_bytes: usize,
    /// Messages waiting for a slow client before it is disconnected with 4001.
    pub outbound_queue: usize,
    /// Commands a connection may send per second, sustained…
    pub commands_per_sec: u32,
    /// …and in a burst.
    pub command_burst: u32,
    /// Commands refused for rate within one minute before the connection is closed (4110).
    pub flood_strikes: u32,
    /// New room connections per second from one IP address, sustained…
    pub connects_per_sec_per_ip: u32,
    /// …and in a burst.
    pub connect_burst_per_ip: u32,
    /// Time a new connection has to send `hello`.
    pub hello_timeout_ms: u64,
    /// How often the node pings each connection.
    pub ping_interval_ms: u64,
    /// Silence after which a connection is closed (4002).
    pub idle_timeout_ms: u64,
    /// Longest wait for connections to close on shutdown.
    pub shutdown_grace_ms: u64,
    /// How long an empty room with no held seats is kept before it is dropped.
    pub room_idle_ms: u64,
    /// Inputs waiting for one room's task before senders wait.
    pub room_inbox: usize,
    /// Ticket requests per minute per person (the Enter button), sustained…
    pub tickets_per_min: u32,
    /// …and in a burst.
    pub ticket_burst: u32,
    /// Sign-in attempts (demo sign-in) per minute per client address.
    pub sign_ins_per_min: u32,
    /// Connection-check downloads (`/api/v1/check/download`) per minute per client address:
    /// each sends up to 8 MiB, so a page cannot be used to pull the node's bandwidth.
    pub downloads_per_min: u32,
    /// Time a client has to send an HTTP request's headers, from the connection's start or the
    /// end of the previous response: slow headers and idle keep-alive connections end here.
    pub header_read_timeout_ms: u64,
    /// Time an HTTP request may take until its response starts (reading its body included).
    pub request_timeout_ms: u64,
    /// Time a write may wait for a client to take bytes before the connection is dropped: a
    /// client that keeps its socket open but stops reading is let go within this.
    pub write_stall_ms: u64,
    /// The kernel send buffer of each room connection (the kernel doubles it for its own
    /// bookkeeping). Bounded so that a client that stops reading fills it, and is cut off
    /// (4001, or the stall limit above), within seconds instead of minutes, and costs the node
    /// little memory meanwhile.
    pub socket_send_buffer_bytes: usize,
    /// Open-file descriptors kept out of reach of client sockets, for the node's own needs
    /// (database, Redis, media sockets, files): the node holds at most the open-file limit
    /// minus this many client sockets at once; more wait in the listen backlog.
    pub reserved_descriptors: usize,
    /// Connection-check WebRTC probes open at once on this node: each is a peer connection
    /// (a UDP port, a few file descriptors, some 200 KiB), made for anyone who asks, so their
    /// number is bounded whatever the number of askers. 0: no probes.
    pub max_check_probes: u32,
    /// …and from one client address: one page's check needs one.
    pub check_probes_per_ip: u32,
    /// How long a probe lives before the node closes it (a check's echo takes a second or
    /// two; the check socket itself lives 60 s).
    pub check_probe_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 50_000,
            max_message_bytes: 16 * 1024,
            outbound_queue: 512,
            commands_per_sec: 20,
            command_burst: 40,
            flood_strikes: 200,
            connects_per_sec_per_ip: 50,
            connect_burst_per_ip: 500,
            hello_timeout_ms: 10_000,
            ping_interval_ms: 15_000,
            idle_timeout_ms: 45_000,
            shutdown_grace_ms: 10_000,
            room_idle_ms: 30 * 60 * 1000,
            room_inbox: 4096,
            tickets_per_min: 30,
            ticket_burst: 10,
            sign_ins_per_min: 30,
            downloads_per_min: 20,
            header_read_timeout_ms: 20_000,
            request_timeout_ms: 30_000,
            write_stall_ms: 15_000,
            socket_send_buffer_bytes: 128 * 1024,
            reserved_descriptors: 1024,
            max_check_probes: 50,
            check_probes_per_ip: 2,
            check_probe_secs: 20,
        }
    }
}

/// Room settings an operator may tune (the `[room]` table).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RoomTuning {
    /// How long a dropped learner's seat is held.
    pub seat_grace_secs: u64,
    /// Longest chat message, in characters.
    pub chat_max_chars: u32,
    /// Chat events kept for snapshots and resume.
    pub history_len: usize,
    /// Batching period of seats, presence and reactions.
    pub tick_ms: u64,
    /// How long after the scheduled end a room ends by itself.
    pub end_grace_secs: u64,
    /// One emotion press per this many milliseconds per learner…
    pub reaction_interval_ms: u64,
    /// …and this many in a burst.
    pub reaction_burst: u32,
    /// One chat line per this many milliseconds per learner…
    pub chat_interval_ms: u64,
    /// …and this many in a burst.
    pub chat_burst: u32,
}

impl Default for RoomTuning {
    fn default() -> Self {
        let s = RoomSettings::default();
        Self {
            seat_grace_secs: s.seat_grace_ms / 1000,
            chat_max_chars: s.chat_max_chars,
            history_len: s.history_len,
            tick_ms: s.tick_ms,
            end_grace_secs: s.end_grace_ms / 1000,
            reaction_interval_ms: s.reaction_interval_ms,
            reaction_burst: s.reaction_burst,
            chat_interval_ms: s.chat_interval_ms,
            chat_burst: s.chat_burst,
        }
    }
}

impl RoomTuning {
    /// The room settings these make, for a room of chat generation `epoch`.
    pub fn settings(&self, epoch: protocol::Epoch) -> RoomSettings {
        RoomSettings {
            epoch,
            seat_grace_ms: self.seat_grace_secs * 1000,
            chat_max_chars: self.chat_max_chars,
            history_len: self.history_len,
            tick_ms: self.tick_ms,
            end_grace_ms: self.end_grace_secs * 1000,
            reaction_interval_ms: self.reaction_interval_ms,
            reaction_burst: self.reaction_burst,
            chat_interval_ms: self.chat_interval_ms,
            chat_burst: self.chat_burst,
            ..RoomSettings::default()
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(format!("[room] {m}")));
        if !(10..=5000).contains(&self.tick_ms) {
            return bad("tick_ms must be 10 to 5000");
        }
        if !(1..=100_000).contains(&self.history_len) {
            return bad("history_len must be 1 to 100000");
        }
        if !(1..=10_000).contains(&self.chat_max_chars) {
            return bad("chat_max_chars must be 1 to 10000");
        }
        if self.reaction_burst == 0 || self.chat_burst == 0 {
            return bad("reaction_burst and chat_burst must be at least 1");
        }
        Ok(())
    }
}

/// The media path (the `[media]` table): how the node's WebRTC connections are reached, and
/// what browsers are told.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MediaSettings {
    /// Address the peer connections bind; none: every interface but loopback.
    pub bind_ip: Option<IpAddr>,
    /// UDP ports for peer connections, one each (`"50000-50199"`), so a firewall can open
    /// exactly these; none: any port the system picks.
    pub udp_port_range: Option<String>,
    /// Public addresses of a node behind a 1:1 NAT, advertised instead of the private one.
    pub public_ips: Vec<IpAddr>,
    /// Also offer passive ICE-TCP candidates for networks that block UDP, one TCP port per
    /// peer connection (the UDP one's number). See `ice_tcp_port` for one shared port.
    pub ice_tcp: bool,
    /// ICE-TCP for every peer connection on this one TCP port (443, say, which firewalls that
    /// block UDP usually let out): open just this port. Takes precedence over `ice_tcp`.
    pub ice_tcp_port: Option<u16>,
    /// STUN/TURN servers handed to browsers in the room's `media_config`. The connection
    /// check (anonymous) gets only their `stun:` URLs, never a user name or credential.
    pub ice_servers: Vec<protocol::IceServer>,
    /// TURN servers (`turn:…`, `turns:…`) for which each admitted person gets a credential of
    /// their own, valid `turn_ttl_secs` (the TURN REST scheme; coturn's `use-auth-secret`).
    pub turn_urls: Vec<String>,
    /// The secret shared with those TURN servers (coturn's `static-auth-secret`).
    pub turn_secret: Option<TurnSecret>,
    /// How long a TURN credential handed out in `media_config` works: it must outlast the
    /// lecture (the TURN server refuses refreshes with an expired one); a reconnect gets a
    /// fresh one.
    pub turn_ttl_secs: u64,
    /// UDP ports for the connection check's WebRTC probes (`"50200-50209"`), never the
    /// lecture's `udp_port_range`: anonymous probes must not take the ports the instructor and
    /// learners need. None: ephemeral ports. Behind a firewall that opens only the lecture's
    /// ports, set this and open it too, or the check fails where the lecture would not.
    pub check_udp_port_range: Option<String>,
    /// Use the ICE candidates clients name at loopback, private (RFC 1918, `fc00::/7`),
    /// link-local and other non-public addresses, and `.local` host names. Off: they are
    /// dropped (counted in `/metrics`), so nobody makes the node send STUN into its own
    /// machine or network. Turn on for a node on the learners' own LAN, and for tests.
    pub allow_private_candidates: bool,
    /// Where the instructor's tracks are recorded, a folder per lecture; none: no recording.
    pub recording_dir: Option<PathBuf>,
    /// How the other nodes reach this one to pull the instructor's media when the instructor
    /// is on this node (`ws://10.0.0.5:8080`): the base of its `/ws/relay/{lecture}`
    /// endpoint, on the nodes' own network (only `ws://`: the relay socket carries signalling
    /// and a signed token, the media itself is DTLS-SRTP encrypted). None: `ws://` and the address the node listens on,
    /// unless that is a wildcard (`0.0.0.0`, `::`) — then set this, or learners on other
    /// nodes get no video. Only used with Redis (one node alone relays nothing).
    pub relay_url: Option<String>,
}

impl Default for MediaSettings {
    fn default() -> Self {
        Self {
            bind_ip: None,
            udp_port_range: None,
            public_ips: Vec::new(),
            ice_tcp: false,
            ice_tcp_port: None,
            ice_servers: Vec::new(),
            turn_urls: Vec::new(),
            turn_secret: None,
            turn_ttl_secs: 4 * 3600,
            check_udp_port_range: None,
            allow_private_candidates: false,
            recording_dir: None,
            relay_url: None,
        }
    }
}

/// A `first-last` port range setting, checked.
fn parse_port_range(
    name: &str,
    range: Option<&String>,
) -> Result<Option<RangeInclusive<u16>>, ConfigError> {
    let Some(range) = range else {
        return Ok(None);
    };
    let bad = || {
        ConfigError::Invalid(format!(
            "[media] {name} `{range}` must be `first-last` with 1 <= first <= last <= 65535"
        ))
    };
    let (first, last) = range.split_once('-').ok_or_else(bad)?;
    let first: u16 = first.trim().parse().map_err(|_| bad())?;
    let last: u16 = last.trim().parse().map_err(|_| bad())?;
    if first == 0 || first > last {
        return Err(bad());
    }
    Ok(Some(first..=last))
}

impl MediaSettings {
    /// The UDP port range, checked.
    pub fn port_range(&self) -> Result<Option<RangeInclusive<u16>>, ConfigError> {
        parse_port_range("udp_port_range", self.udp_port_range.as_ref())
    }

    /// The connection check's UDP port range, checked (apart from the lecture's).
    pub fn check_port_range(&self) -> Result<Option<RangeInclusive<u16>>, ConfigError> {
        let check = parse_port_range("check_udp_port_range", self.check_udp_port_range.as_ref())?;
        if let (Some(check), Some(lecture)) = (&check, self.port_range()?)
            && check.start() <= lecture.end()
            && lecture.start() <= check.end()
        {
            return Err(ConfigError::Invalid(
                "[media] check_udp_port_range must not overlap udp_port_range: probes are \
                 anonymous and must leave the lecture's ports alone"
                    .into(),
            ));
        }
        Ok(check)
    }

    /// The TURN settings, checked: URLs and secret together, `turn:`/`turns:` URLs, a secret
    /// of at least 16 bytes, a lifetime from a minute to two days.
    pub fn check_turn(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(format!("[media] {m}")));
        match (&self.turn_secret, self.turn_urls.is_empty()) {
            (None, true) => return Ok(()),
            (None, false) => return bad("turn_urls needs turn_secret"),
            (Some(_), true) => return bad("turn_secret needs turn_urls"),
            (Some(secret), false) if secret.len() < 16 => {
                return bad("turn_secret must be at least 16 bytes (openssl rand -hex 32)");
            }
            (Some(_), false) => {}
        }
        if let Some(url) = self
            .turn_urls
            .iter()
            .find(|u| !(u.starts_with("turn:") || u.starts_with("turns:")))
        {
            return bad(&format!("turn_urls: `{url}` is not a turn: or turns: URL"));
        }
        if !(60..=2 * 24 * 3600).contains(&self.turn_ttl_secs) {
            return bad("turn_ttl_secs must be 60 to 172800");
        }
        Ok(())
    }

    /// What the anonymous connection check is told: the `stun:` URLs of `ice_servers`, with
    /// no user name or credential (and no TURN: a browser refuses a TURN server without a
    /// credential, and the check's credential would be anyone's). The check thus tests host
    /// and STUN connectivity only.
    pub fn check_ice_servers(&self) -> Vec<protocol::IceServer> {
        self.ice_servers
            .iter()
            .filter_map(|s| {
                let urls: Vec<String> = s
                    .urls
                    .iter()
                    .filter(|u| u.starts_with("stun:") || u.starts_with("stuns:"))
                    .cloned()
                    .collect();
                (!urls.is_empty()).then_some(protocol::IceServer {
                    urls,
                    username: None,
                    credential: None,
                })
            })
            .collect()
    }

    /// What an admitted person's connection is told after its `welcome`: `ice_servers` as
    /// configured, and the TURN servers with a credential for `id` (an opaque name, the
    /// connection's) valid `turn_ttl_secs` from `now`.
    pub fn room_ice_servers(&self, now: UnixMillis, id: &str) -> Vec<protocol::IceServer> {
        let mut servers = self.ice_servers.clone();
        if let Some(secret) = &self.turn_secret
            && !self.turn_urls.is_empty()
        {
            let expires_at = (now.0 / 1000).saturating_add(self.turn_ttl_secs);
            let c = crate::turn::credential(secret, id, expires_at);
            servers.push(protocol::IceServer {
                urls: self.turn_urls.clone(),
                username: Some(c.username),
                credential: Some(c.credential),
            });
        }
        servers
    }

    /// The connection check's probes' configuration: the node's `node`, on their own ports.
    pub fn probe_signaling(&self, node: &signaling::SignalingConfig) -> signaling::SignalingConfig {
        signaling::SignalingConfig {
            udp_port_range: self.check_port_range().ok().flatten(),
            ..node.clone()
        }
    }

    /// The relay URL, checked: `ws://`, a host, no path or query.
    pub fn check_relay_url(&self) -> Result<(), ConfigError> {
        let Some(url) = &self.relay_url else {
            return Ok(());
        };
        match url.strip_prefix("ws://") {
            Some(rest) if !rest.is_empty() && !rest.contains(['/', '?', '#', ' ']) => Ok(()),
            _ => Err(ConfigError::Invalid(format!(
                "[media] relay_url `{url}` must be ws://host[:port] (how other nodes reach this one)"
            ))),
        }
    }

    /// The SFU's configuration. A bad port range (refused by [`Config::resolve`]) counts as
    /// none.
    pub fn signaling(&self) -> signaling::SignalingConfig {
        let defaults = signaling::SignalingConfig::default();
        signaling::SignalingConfig {
            bind_ip: self.bind_ip.unwrap_or(defaults.bind_ip),
            udp_port_range: self.port_range().ok().flatten(),
            public_ips: self.public_ips.clone(),
            ice_tcp: self.ice_tcp,
            ice_servers: self
                .ice_servers
                .iter()
                .map(|s| signaling::IceServer {
                    urls: s.urls.clone(),
                    username: s.username.clone().unwrap_or_default(),
                    credential: s.credential.clone().unwrap_or_default(),
                })
                .collect(),
            recording_dir: self.recording_dir.clone(),
            candidate_filter: signaling::CandidateFilter::new(self.allow_private_candidates),
            ..defaults
        }
    }
}

/// A lecture as written in the config file (`[[lectures]]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LectureEntry {
    /// Lecture id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Start, RFC 3339 (`2026-12-01T19:00:00+09:00`).
    pub starts_at: String,
    /// End, RFC 3339.
    pub ends_at: String,
    /// Seat grid rows.
    pub rows: u16,
    /// Seat grid columns.
    pub cols: u16,
    /// Emotion buttons; the default five when left out.
    #[serde(default)]
    pub emotions: Vec<Emotion>,
    /// Instructors and moderators (`{ account = "…", role = "instructor" }`).
    #[serde(default)]
    pub staff: Vec<StaffMember>,
}

fn parse_time(id: &str, field: &str, value: &str) -> Result<UnixMillis, ConfigError> {
    let t = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map_err(|e| ConfigError::Lecture {
            id: id.to_owned(),
            message: format!("{field} `{value}` is not an RFC 3339 time: {e}"),
        })?;
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    u64::try_from(ms)
        .map(UnixMillis)
        .map_err(|_| ConfigError::Lecture {
            id: id.to_owned(),
            message: format!("{field} is before 1970"),
        })
}

impl LectureEntry {
    /// The lecture this entry describes, checked.
    pub fn to_lecture(&self) -> Result<Lecture, ConfigError> {
        let lecture = Lecture {
            id: self.id.clone(),
            title: self.title.clone(),
            starts_at: parse_time(&self.id, "starts_at", &self.starts_at)?,
            ends_at: parse_time(&self.id, "ends_at", &self.ends_at)?,
            rows: self.rows,
            cols: self.cols,
            emotions: self.emotions.clone(),
            archive_available_at: None,
            status: LectureStatus::Scheduled,
            cancel_reason: None,
            ended_at: None,
            staff: self.staff.clone(),
        };
        validate_lecture(&lecture.info()).map_err(|e| ConfigError::Lecture {
            id: lecture.id.to_string(),
            message: e.to_string(),
        })?;
        Ok(lecture)
    }
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
    /// Load balancers and proxies (addresses or CIDR networks) whose `forwarded_header` names
    /// the client; empty: the TCP peer is the client.
    pub trusted_proxies: Vec<String>,
    /// The header those proxies write the client's address in.
    pub forwarded_header: ForwardedHeader,
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
    /// The key that signs and verifies tickets.
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
    /// Whose word about the client's address is taken (for every per-address limit).
    pub trusted_proxies: TrustedProxies,
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
            trusted_proxies: TrustedProxies::default(),
        }
    }

    /// Resolves flags and environment over the file over defaults.
    pub fn resolve(file: FileConfig, over: Overrides) -> Result<Self, ConfigError> {
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
        let ticket_key = match over.ticket_secret.or(file.ticket_secret) {
            Some(secret) => TicketKey::new(secret.into_bytes())?,
            None if demo => TicketKey::random().map_err(|e| ConfigError::Random(e.to_string()))?,
            None => return Err(ConfigError::NoTicketSecret),
        };
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
            ticket_ttl_secs: file.ticket_ttl_secs.unwrap_or(300).clamp(10, 24 * 3600),
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
            trusted_proxies,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses_and_flags_win() {
        let file: FileConfig = toml::from_str(
            r#"
            listen = "0.0.0.0:9000"
            ticket_secret = "0123456789abcdef0123456789abcdef"
            allowed_origins = ["https://lectures.example.jp"]
            [limits]
            outbound_queue = 64
            [room]
            seat_grace_secs = 30
            [[lectures]]
            id = "rust-101"
            title = "Rust 入門"
            starts_at = "2026-12-01T19:00:00+09:00"
            ends_at = "2026-12-01T20:30:00+09:00"
            rows = 10
            cols = 20
            "#,
        )
        .expect("parses");
        let over = Overrides {
            listen: Some("127.0.0.1:1".parse().expect("addr")),
            ..Overrides::default()
        };
        let config = Config::resolve(file, over).expect("valid");
        assert_eq!(config.listen.port(), 1);
        assert_eq!(config.limits.outbound_queue, 64);
        assert_eq!(
            config.limits.max_connections,
            Limits::default().max_connections
        );
        assert_eq!(
            config.room.settings(protocol::Epoch(1)).seat_grace_ms,
            30_000
        );
        assert_eq!(config.lectures[0].starts_at, UnixMillis(1_796_119_200_000));
    }

    #[test]
    fn the_example_file_parses_and_shows_the_defaults() {
        let file: FileConfig = toml::from_str(include_str!("../../docs/room.example.toml"))
            .expect("the example parses");
        assert_eq!(
            file.limits,
            Limits::default(),
            "the example's [limits] are the defaults"
        );
        assert_eq!(
            file.room,
            RoomTuning::default(),
            "the example's [room] values are the defaults"
        );
        assert_eq!(
            file.media,
            MediaSettings::default(),
            "the example's [media] values are the defaults"
        );
        assert_eq!(
            file.identity.as_ref().map(|i| i.max_token_lifetime_secs),
            Some(crate::gate::identity::DEFAULT_MAX_TOKEN_LIFETIME_SECS),
            "the example's [identity] max_token_lifetime_secs is the default"
        );
        assert!(
            file.trusted_proxies.is_empty(),
            "no trusted proxies by default"
        );
        assert_eq!(file.forwarded_header, ForwardedHeader::default());
        let config = Config::resolve(file, Overrides::default()).expect("the example is valid");
        assert_eq!(config.lectures[0].emotions.len(), 2);
        assert_eq!(
            config.web_root,
            PathBuf::from(DEFAULT_WEB_ROOT),
            "the example's web_root is the default"
        );
    }

    #[test]
    fn the_portal_sign_in_address_must_be_one_to_send_browsers_to() {
        let with = |url: &str| {
            let file = FileConfig::parse(&format!("demo = true\nportal_sign_in_url = \"{url}\"\n"))
                .expect("parses");
            Config::resolve(file, Overrides::default())
        };
        for good in [
            "https://portal.example.jp/rooms/sign-in",
            "https://portal.example.jp/sign-in?site=rooms",
            "http://127.0.0.1:9000/sign-in",
        ] {
            let config = with(good).expect(good);
            assert_eq!(config.portal_sign_in_url.as_deref(), Some(good));
        }
        for bad in [
            "javascript:alert(1)",
            "/sign-in",
            "https://",
            "https://user:pass@portal.example.jp/",
            "https://portal.example.jp/sign-in#x",
            "https://portal.example.jp/ sign-in",
        ] {
            let refused = with(bad).expect_err(bad);
            assert!(
                refused.to_string().contains("portal_sign_in_url"),
                "{refused}"
            );
        }
    }

    #[test]
    fn mistakes_are_named() {
        let typo =
            toml::from_str::<FileConfig>("listn = \"0.0.0.0:1\"").expect_err("unknown field");
        assert!(typo.to_string().contains("listn"), "{typo}");
        let no_secret = Config::resolve(FileConfig::default(), Overrides::default())
            .expect_err("needs a secret");
        assert!(matches!(no_secret, ConfigError::NoTicketSecret));
        let demo = Config::resolve(
            FileConfig::default(),
            Overrides {
                demo: true,
                ..Overrides::default()
            },
        );
        assert!(demo.is_ok(), "demo mode draws its own secret");
        let weak = Overrides {
            ticket_secret: Some("short".into()),
            ..Overrides::default()
        };
        assert!(matches!(
            Config::resolve(FileConfig::default(), weak),
            Err(ConfigError::WeakSecret(_))
        ));
    }

    #[test]
    fn demo_mode_refuses_the_portals_identity_and_a_shared_database() {
        let demo = || Overrides {
            demo: true,
            ..Overrides::default()
        };
        let with_identity = FileConfig::parse(
            "[identity]\nalgorithm = \"HS256\"\nsecret = \"the-portal-and-the-rooms-share-this-secret\"\n\
             issuer = \"https://portal.example.jp\"\naudience = \"lecture-room\"\n",
        )
        .expect("parses");
        let refused = Config::resolve(with_identity, demo()).expect_err("refused");
        assert!(matches!(refused, ConfigError::DemoWithIdentity));
        assert!(refused.to_string().contains("[identity]"), "{refused}");
        let shared = Overrides {
            database_url: Some("postgres://room:secret@db.internal/rooms".into()),
            ..demo()
        };
        let refused = Config::resolve(FileConfig::default(), shared).expect_err("refused");
        assert!(matches!(refused, ConfigError::DemoWithSharedDatabase));
        assert!(refused.to_string().contains("database_url"), "{refused}");
        assert!(
            !refused.to_string().contains("secret@"),
            "the URL's password is not echoed: {refused}"
        );
        let own_file = Overrides {
            database_url: Some("sqlite:///tmp/demo.db".into()),
            ..demo()
        };
        assert!(Config::resolve(FileConfig::default(), own_file).is_ok());
        assert!(
            Config::resolve(FileConfig::default(), demo()).is_ok(),
            "the default SQLite file"
        );
    }

    #[test]
    fn a_malformed_file_is_told_by_line_and_key_without_its_secret() {
        let secret = "s3cr3t-0123456789abcdef0123456789abcdef";
        for text in [
            // An unterminated string.
            format!("listen = \"127.0.0.1:1\"\nticket_secret = \"{secret}\n"),
            // A missing `=`.
            format!("listen = \"127.0.0.1:1\"\nticket_secret \"{secret}\"\n"),
            // The wrong type: serde's message would quote the value.
            format!("listen = \"127.0.0.1:1\"\n[limits]\nmax_connections = \"{secret}\"\n"),
            format!("listen = \"127.0.0.1:1\"\n[identity]\nsecret = [\"{secret}\"]\n"),
        ] {
            let message = FileConfig::parse(&text).expect_err("malformed");
            assert!(!message.contains(secret), "{message}");
            assert!(!message.contains("s3cr3t"), "{message}");
            assert!(
                message.contains("line 2") || message.contains("line 3"),
                "{message}"
            );
        }
        let message = FileConfig::parse(&format!(
            "listen = \"127.0.0.1:1\"\n[limits]\nmax_connections = \"{secret}\"\n"
        ))
        .expect_err("malformed");
        assert!(message.contains("key `max_connections`"), "{message}");
        let message = FileConfig::parse("[limits]\nmax_conections = 5\n").expect_err("typo");
        assert!(message.contains("max_conections"), "{message}");
    }

    #[test]
    fn the_media_table_maps_to_the_sfu() {
        let file: FileConfig = toml::from_str(
            r#"
            ticket_secret = "0123456789abcdef0123456789abcdef"
            [media]
            udp_port_range = "50000-50199"
            public_ips = ["203.0.113.7"]
            ice_tcp = true
            ice_tcp_port = 443
            ice_servers = [{ urls = ["turn:turn.example.jp:3478"], username = "u", credential = "c" }]
            recording_dir = "/var/lib/room/recordings"
            "#,
        )
        .expect("parses");
        let config = Config::resolve(file, Overrides::default()).expect("valid");
        let sfu = config.media.signaling();
        assert_eq!(sfu.udp_port_range, Some(50000..=50199));
        assert_eq!(sfu.public_ips.len(), 1);
        assert!(sfu.ice_tcp);
        assert_eq!(config.media.ice_tcp_port, Some(443));
        assert_eq!(sfu.ice_servers[0].username, "u");
        assert!(sfu.recording_dir.is_some());
        let bad: FileConfig = toml::from_str(
            "ticket_secret = \"0123456789abcdef0123456789abcdef\"\n[media]\nudp_port_range = \"9-1\"",
        )
        .expect("parses");
        assert!(Config::resolve(bad, Overrides::default()).is_err());
    }

    fn with_media(media: &str) -> Result<Config, ConfigError> {
        let file: FileConfig = toml::from_str(&format!(
            "ticket_secret = \"0123456789abcdef0123456789abcdef\"\n[media]\n{media}"
        ))
        .expect("parses");
        Config::resolve(file, Overrides::default())
    }

    #[test]
    fn turn_settings_go_together_and_the_check_gets_no_credential() {
        let config = with_media(
            r#"
            ice_servers = [{ urls = ["stun:stun.example.jp:3478", "turn:old.example.jp"], username = "u", credential = "static" }]
            turn_urls = ["turn:turn.example.jp:3478?transport=udp", "turns:turn.example.jp:5349"]
            turn_secret = "0123456789abcdef"
            turn_ttl_secs = 600
            "#,
        )
        .expect("valid");
        let check = config.media.check_ice_servers();
        assert_eq!(
            check,
            vec![protocol::IceServer {
                urls: vec!["stun:stun.example.jp:3478".into()],
                username: None,
                credential: None,
            }],
            "STUN only, no name or credential"
        );
        let room = config
            .media
            .room_ice_servers(UnixMillis(1_700_000_000_500), "2a");
        assert_eq!(room.len(), 2);
        assert_eq!(room[1].username.as_deref(), Some("1700000600:2a"));
        assert!(!format!("{:?}", config.media).contains("0123456789abcdef"));
        for bad in [
            "turn_urls = [\"turn:t\"]",
            "turn_secret = \"0123456789abcdef\"",
            "turn_urls = [\"turn:t\"]\nturn_secret = \"short\"",
            "turn_urls = [\"stun:t\"]\nturn_secret = \"0123456789abcdef\"",
            "turn_urls = [\"turn:t\"]\nturn_secret = \"0123456789abcdef\"\nturn_ttl_secs = 5",
        ] {
            assert!(with_media(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_check_has_ports_apart_from_the_lecture() {
        let config =
            with_media("udp_port_range = \"50000-50199\"\ncheck_udp_port_range = \"50200-50209\"")
                .expect("valid");
        let node = config.media.signaling();
        let probes = config.media.probe_signaling(&node);
        assert_eq!(probes.udp_port_range, Some(50200..=50209));
        assert_eq!(node.udp_port_range, Some(50000..=50199));
        let ephemeral = with_media("udp_port_range = \"50000-50199\"").expect("valid");
        let node = ephemeral.media.signaling();
        assert_eq!(ephemeral.media.probe_signaling(&node).udp_port_range, None);
        assert!(
            with_media("udp_port_range = \"50000-50199\"\ncheck_udp_port_range = \"50199-50209\"")
                .is_err(),
            "overlapping ranges"
        );
        assert!(!config.media.signaling().candidate_filter.allows_private());
        let lan = with_media("allow_private_candidates = true").expect("valid");
        assert!(lan.media.signaling().candidate_filter.allows_private());
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let file: FileConfig = toml::from_str(
            "ticket_secret = \"0123456789abcdef0123456789abcdef\"\n\
             trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.10\"]\nforwarded_header = \"forwarded\"",
        )
        .expect("parses");
        assert!(Config::resolve(file, Overrides::default()).is_ok());
        let file: FileConfig = toml::from_str(
            "ticket_secret = \"0123456789abcdef0123456789abcdef\"\ntrusted_proxies = [\"lb.internal\"]",
        )
        .expect("parses");
        assert!(matches!(
            Config::resolve(file, Overrides::default()),
            Err(ConfigError::Proxy(_))
        ));
        assert!(toml::from_str::<FileConfig>("forwarded_header = \"x-real-ip\"").is_err());
    }

    #[test]
    fn the_relay_url_must_be_a_websocket_base() {
        let with = |url: &str| {
            let file: FileConfig = toml::from_str(&format!(
                "ticket_secret = \"0123456789abcdef0123456789abcdef\"\n[media]\nrelay_url = \"{url}\""
            ))
            .expect("parses");
            Config::resolve(file, Overrides::default()).map(|c| c.media.relay_url)
        };
        for good in [
            "ws://10.0.0.5:8080",
            "ws://node-3.internal",
            "ws://[fd00::5]:8080",
        ] {
            assert_eq!(with(good).expect("valid"), Some(good.to_owned()));
        }
        for bad in [
            "http://10.0.0.5",
            "ws://",
            "ws:///x",
            "ws://h/x",
            "10.0.0.5:8080",
            "ws://h?x=1",
            "wss://h",
        ] {
            assert!(with(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_lectures_are_refused() {
        let entry = |rows, start: &str| LectureEntry {
            id: "l1".into(),
            title: "t".into(),
            starts_at: start.into(),
            ends_at: "2026-12-01T20:00:00Z".into(),
            rows,
            cols: 10,
            emotions: vec![],
            staff: vec![],
        };
        assert!(entry(10, "2026-12-01T19:00:00Z").to_lecture().is_ok());
        assert!(entry(0, "2026-12-01T19:00:00Z").to_lecture().is_err());
        assert!(entry(10, "2026-12-01T21:00:00Z").to_lecture().is_err());
        assert!(entry(10, "tomorrow").to_lecture().is_err());
    }
}
