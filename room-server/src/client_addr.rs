//! The client's address, for every per-address limit (connections, connection-check downloads
//! and probes, demo sign-ins). Behind a load balancer the TCP peer is the balancer, the same
//! for every learner; the balancer names the real client in a header. That header is believed
//! only when the TCP peer is one of the operator's `trusted_proxies` (anyone else can write
//! it), and only as far as it was written by trusted proxies: reading from the right, the
//! first address that is not a trusted proxy is the client. Everything left of it was sent by
//! the client itself and could be anything.

use crate::refusal::refuse;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

/// Addresses read from the right of the header at most: a chain of proxies is a few hops,
/// and the header is the client's to make long.
const MAX_HOPS: usize = 16;

/// The header the trusted proxies write the client's address in.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (most load balancers).
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
}

impl ForwardedHeader {
    fn name(self) -> &'static str {
        match self {
            Self::XForwardedFor => "x-forwarded-for",
            Self::Forwarded => "forwarded",
        }
    }
}

/// One trusted proxy: an address, or a network in CIDR notation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

/// A `trusted_proxies` entry that is neither an address nor a CIDR network.
#[derive(Debug, thiserror::Error)]
#[error("trusted_proxies: `{0}` is not an IP address or a network (`10.0.0.0/8`, `fd00::/8`)")]
pub struct BadProxy(String);

impl FromStr for Cidr {
    type Err = BadProxy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadProxy(s.to_owned());
        let (net, prefix) = match s.split_once('/') {
            Some((net, prefix)) => (net, Some(prefix)),
            None => (s, None),
        };
        let net = net
            .trim()
            .parse::<IpAddr>()
            .map_err(|_| bad())?
            .to_canonical();
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Self { net, prefix })
    }
}

impl Cidr {
    fn contains(&self, ip: IpAddr) -> bool {
        let shift = |bits: u32, prefix: u8| bits.saturating_sub(u32::from(prefix));
        match (self.net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(shift(32, self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(shift(128, self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The proxies whose word about the client's address is taken, and the header they write.
/// Cheap to clone (the extractor takes one per request).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrustedProxies {
    proxies: Arc<[Cidr]>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    /// From the `trusted_proxies` setting (addresses or CIDR networks) and `forwarded_header`.
    pub fn new(proxies: &[String], header: ForwardedHeader) -> Result<Self, BadProxy> {
        Ok(Self {
            proxies: proxies
                .iter()
                .map(|p| p.parse())
                .collect::<Result<_, _>>()?,
            header,
        })
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.proxies.iter().any(|p| p.contains(ip))
    }

    /// The client's address for a request that came from `peer` with `headers`.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        // Right to left: each hop was added by the (trusted) proxy after it.
        let hops = headers
            .get_all(self.header.name())
            .iter()
            .rev()
            .flat_map(|value| {
                // A value that is not text is one nobody can read an address from.
                value.to_str().unwrap_or("\u{0}").rsplit(',')
            })
            .take(MAX_HOPS);
        for hop in hops {
            let parsed = match self.header {
                ForwardedHeader::XForwardedFor => parse_hop(hop),
                ForwardedHeader::Forwarded => forwarded_for(hop).and_then(parse_hop),
            };
            // Unreadable (`unknown`, an obfuscated name, garbage): the chain of trust ends
            // here, at the last proxy that spoke.
            let Some(ip) = parsed else { return client };
            client = ip.to_canonical();
            if !self.trusts(client) {
                return client;
            }
        }
        client
    }
}

/// The `for=` of one `Forwarded` element (`for=192.0.2.60;proto=http;by=203.0.113.43`).
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("for")
            .then(|| value.trim().trim_matches('"'))
    })
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]`, `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            hop.strip_prefix('[')?
                .strip_suffix(']')?
                .parse::<IpAddr>()
                .ok()
        })
}

/// The address a request counts against in every per-address limit: the TCP peer, or the
/// client a trusted proxy names (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClientAddr(pub(crate) IpAddr);

impl<S> FromRequestParts<S> for ClientAddr
where
    TrustedProxies: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            // Only a node served without connect info (a wiring mistake) gets here.
            return Err(refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the client's address is unknown",
            ));
        };
        let proxies = TrustedProxies::from_ref(state);
        Ok(Self(proxies.client_of(peer.ip(), &parts.headers)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    fn headers(name: &str, values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).expect("a name"),
                HeaderValue::from_str(v).expect("a value"),
            );
        }
        map
    }

    fn proxies(list: &[&str], header: ForwardedHeader) -> TrustedProxies {
        let list: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
        TrustedProxies::new(&list, header).expect("valid")
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let none = TrustedProxies::default();
        let spoof = headers("x-forwarded-for", &["198.51.100.1"]);
        assert_eq!(none.client_of(ip("203.0.113.9"), &spoof), ip("203.0.113.9"));
        let lb = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        assert_eq!(lb.client_of(ip("203.0.113.9"), &spoof), ip("203.0.113.9"));
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let lb = proxies(
            &["10.0.0.0/8", "192.0.2.10"],
            ForwardedHeader::XForwardedFor,
        );
        let peer = ip("10.1.2.3");
        // The client claims to be 1.1.1.1; the edge proxy (192.0.2.10) saw 198.51.100.7.
        let h = headers("x-forwarded-for", &["1.1.1.1, 198.51.100.7", "192.0.2.10"]);
        assert_eq!(lb.client_of(peer, &h), ip("198.51.100.7"));
        let h = headers("x-forwarded-for", &["198.51.100.7:5555"]);
        assert_eq!(lb.client_of(peer, &h), ip("198.51.100.7"));
        let h = headers("x-forwarded-for", &["[2001:db8::7]:5555"]);
        assert_eq!(lb.client_of(peer, &h), ip("2001:db8::7"));
        // No header: the proxy itself is all there is to go by.
        assert_eq!(lb.client_of(peer, &HeaderMap::new()), peer);
        // Garbage where a proxy should have written: trust stops at the last proxy.
        let h = headers("x-forwarded-for", &["unknown, 192.0.2.10"]);
        assert_eq!(lb.client_of(peer, &h), ip("192.0.2.10"));
        // A mapped IPv6 peer is its IPv4 address.
        assert_eq!(
            lb.client_of(
                ip("::ffff:10.1.2.3"),
                &headers("x-forwarded-for", &["198.51.100.8"])
            ),
            ip("198.51.100.8")
        );
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let fwd = proxies(&["10.0.0.1"], ForwardedHeader::Forwarded);
        let peer = ip("10.0.0.1");
        let h = headers(
            "forwarded",
            &["for=1.1.1.1;proto=https, for=\"[2001:db8:cafe::17]:4711\";by=10.0.0.1"],
        );
        assert_eq!(fwd.client_of(peer, &h), ip("2001:db8:cafe::17"));
        let h = headers("forwarded", &["For=198.51.100.3"]);
        assert_eq!(fwd.client_of(peer, &h), ip("198.51.100.3"));
        let h = headers("forwarded", &["for=_hidden"]);
        assert_eq!(fwd.client_of(peer, &h), peer);
        // A client's X-Forwarded-For passes a Forwarded-writing proxy untouched: ignored.
        let h = headers("x-forwarded-for", &["198.51.100.9"]);
        assert_eq!(fwd.client_of(peer, &h), peer);
    }

    #[test]
    fn a_long_header_is_read_a_bounded_way() {
        let lb = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let mut chain = vec!["198.51.100.1".to_owned()];
        chain.extend((0..100).map(|i| format!("10.0.0.{}", i % 250)));
        let h = headers("x-forwarded-for", &[&chain.join(",")]);
        // Only trusted hops within reach: the furthest one read stands for the client.
        assert!(
            lb.client_of(ip("10.9.9.9"), &h)
                .to_string()
                .starts_with("10.0.0.")
        );
    }

    #[test]
    fn networks_and_addresses_parse() {
        let c: Cidr = "10.0.0.0/8".parse().expect("valid");
        assert!(c.contains(ip("10.255.0.1")) && !c.contains(ip("11.0.0.1")));
        let c: Cidr = "fd00::/8".parse().expect("valid");
        assert!(c.contains(ip("fd12::1")) && !c.contains(ip("fe80::1")));
        let c: Cidr = "0.0.0.0/0".parse().expect("valid");
        assert!(c.contains(ip("203.0.113.1")) && !c.contains(ip("2001:db8::1")));
        let c: Cidr = "192.0.2.10".parse().expect("valid");
        assert!(c.contains(ip("192.0.2.10")) && !c.contains(ip("192.0.2.11")));
        for bad in ["10.0.0.0/33", "lb.internal", "10.0.0.0/x", "::/129", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }
}
