//! The `[media]` table: how the node's WebRTC connections are reached, and what browsers
//! are told.

use super::ConfigError;
use crate::turn::TurnSecret;
use protocol::UnixMillis;
use serde::Deserialize;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;

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

    /// The SFU's configuration. A bad port range (refused by [`super::Config::resolve`]) counts as
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
