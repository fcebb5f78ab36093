//! Which remote ICE candidates a client may hand the node. A candidate is an address the
//! node's ICE agent sends STUN connectivity checks to, so a client naming `127.0.0.1:6379`,
//! `10.0.0.5:22` or `169.254.169.254:80` would make the node probe its own machine, its
//! private network or the cloud's metadata service. The [`CandidateFilter`] drops such
//! candidates (trickled, or as `a=candidate` lines of an SDP) unless the operator allows
//! private addresses (tests on loopback, a node on the learners' own LAN).
//!
//! A learner on the public internet loses nothing: a public node cannot reach a private
//! address anyway, and the learner's own checks to the node's candidates still reach it
//! (the node answers where they came from, a peer-reflexive candidate).
//!
//! The SFU itself applies no filter: the node-to-node relay exchanges the nodes' private
//! addresses on purpose. The callers facing clients (room-server's connection check and
//! room media loop) apply it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Drops remote candidates at addresses a client has no business making the node contact.
/// Clones share the count of dropped candidates.
#[derive(Debug, Clone, Default)]
pub struct CandidateFilter {
    /// Let every candidate through, private addresses and host names included.
    allow_private: bool,
    /// Candidates dropped so far, by every holder of a clone: shown in `/metrics`, so an
    /// operator sees learners whose private candidates are refused.
    dropped: Arc<AtomicU64>,
}

impl CandidateFilter {
    /// A filter that drops private candidates unless `allow_private`.
    pub fn new(allow_private: bool) -> Self {
        Self {
            allow_private,
            dropped: Arc::default(),
        }
    }

    /// Whether private addresses are let through.
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// Candidates dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Whether a trickled candidate (`candidate:…`, as `RTCIceCandidate.candidate`) may go to
    /// the node's ICE agent; a dropped one is counted. An empty candidate (a browser's
    /// end-of-candidates) names no address and passes.
    pub fn admit(&self, candidate: &str) -> bool {
        let admitted = self.allow_private || names_no_private_address(candidate);
        if !admitted {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("a remote ICE candidate at a private address was dropped");
        }
        admitted
    }

    /// `sdp` without the `a=candidate` lines [`admit`](Self::admit) refuses (each counted).
    pub fn strip_sdp(&self, sdp: String) -> String {
        if self.allow_private {
            return sdp;
        }
        let mut dropped = 0;
        let kept = sdp
            .split_inclusive('\n')
            .filter(|line| {
                let refused =
                    line.starts_with("a=candidate:") && !names_no_private_address(line.trim_end());
                dropped += u64::from(refused);
                !refused
            })
            .collect();
        if dropped > 0 {
            self.dropped.fetch_add(dropped, Ordering::Relaxed);
            tracing::debug!(
                dropped,
                "remote ICE candidates at private addresses were dropped"
            );
        }
        kept
    }
}

/// Whether a candidate attribute names a public IP address (or none at all). The address is
/// the fifth field: `candidate:<foundation> <component> <transport> <priority> <address>
/// <port> typ …`. Host names (`….local` from a browser's mDNS, anything else needing a lookup)
/// count as private: they resolve on the node's side to whatever the name says.
fn names_no_private_address(candidate: &str) -> bool {
    let attr = candidate.strip_prefix("a=").unwrap_or(candidate).trim();
    if attr.is_empty() {
        return true;
    }
    let Some(address) = attr.split_ascii_whitespace().nth(4) else {
        // Not a candidate the ICE agent could use; nothing to keep it for.
        return false;
    };
    address.parse::<IpAddr>().is_ok_and(is_public)
}

/// Whether the node may send to `ip` on a client's word: not loopback, private (RFC 1918),
/// shared (RFC 6598), link-local, unique local (`fc00::/7`), unspecified, multicast or
/// broadcast; an IPv4-mapped IPv6 address is judged by its IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    let shared = a == 100 && (64..128).contains(&b);
    let this_network = a == 0;
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || shared
        || this_network)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        || ip.is_multicast())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(address: &str) -> String {
        format!("candidate:1 1 udp 2130706431 {address} 50000 typ host")
    }

    #[test]
    fn private_loopback_and_link_local_addresses_are_dropped_and_counted() {
        let filter = CandidateFilter::new(false);
        for address in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.10",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "3b8c1f2e-7a4d-4c55-9b1e-0c2d3e4f5a6b.local",
            "intranet.example.jp",
            "fe80::1%eth0",
        ] {
            assert!(!filter.admit(&host(address)), "{address} is dropped");
        }
        assert_eq!(filter.dropped(), 21);
        assert!(!filter.admit("candidate:garbage"), "no address: dropped");
    }

    #[test]
    fn public_addresses_and_the_end_of_candidates_pass() {
        let filter = CandidateFilter::new(false);
        for address in [
            "203.0.113.7",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2001:db8::1",
            "2400:cb00::1",
            "::ffff:203.0.113.7",
        ] {
            assert!(filter.admit(&host(address)), "{address} passes");
        }
        assert!(filter.admit(""), "the end-of-candidates marker");
        assert!(filter.admit(&format!("a={}", host("203.0.113.7"))));
        let relay =
            "candidate:3 1 udp 16777215 198.51.100.9 61000 typ relay raddr 10.0.0.2 rport 5000";
        assert!(filter.admit(relay), "the related address is not contacted");
        assert_eq!(filter.dropped(), 0);
    }

    #[test]
    fn allowing_private_addresses_lets_everything_through() {
        let filter = CandidateFilter::new(true);
        assert!(filter.admit(&host("127.0.0.1")));
        assert!(filter.admit(&host("printer.local")));
        let sdp = format!("v=0\r\na={}\r\n", host("10.0.0.1"));
        assert_eq!(filter.strip_sdp(sdp.clone()), sdp);
        assert_eq!(filter.dropped(), 0);
    }

    #[test]
    fn an_sdp_loses_its_private_candidate_lines_only() {
        let filter = CandidateFilter::new(false);
        let sdp = format!(
            "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n\
             a={}\r\na={}\r\na={}\r\na=end-of-candidates\r\n",
            host("192.168.0.2"),
            host("203.0.113.7"),
            host("abc.local"),
        );
        let stripped = filter.strip_sdp(sdp);
        assert_eq!(
            stripped,
            format!(
                "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:0\r\n\
                 a={}\r\na=end-of-candidates\r\n",
                host("203.0.113.7")
            )
        );
        assert_eq!(filter.dropped(), 2, "each dropped line counts once");
        let clone = filter.clone();
        clone.admit(&host("10.0.0.1"));
        assert_eq!(filter.dropped(), 3, "clones share the count");
    }
}
