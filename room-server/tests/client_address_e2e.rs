//! Per-address limits behind a load balancer: the node believes `X-Forwarded-For` only from
//! its `trusted_proxies`, so learners behind the balancer each have their own bucket, and a
//! client talking to the node directly cannot pick one by writing the header itself.

#![allow(clippy::unwrap_used)]

use e2e as common;

use common::{Client, TestNode, http};
use protocol::Codec;
use room_server::client_addr::{ForwardedHeader, TrustedProxies};
use room_server::config::Config;
use tokio_tungstenite::tungstenite;

/// One of everything limited per address, at its smallest.
fn tight_limits(c: &mut Config) {
    c.demo = true;
    c.limits.connects_per_sec_per_ip = 1;
    c.limits.connect_burst_per_ip = 1;
    c.limits.downloads_per_min = 1;
    c.limits.sign_ins_per_min = 1;
}

fn trusting(proxies: &[&str]) -> TrustedProxies {
    let proxies: Vec<String> = proxies.iter().map(|p| (*p).to_owned()).collect();
    TrustedProxies::new(&proxies, ForwardedHeader::XForwardedFor).unwrap()
}

/// The status of each per-address-limited request, sent as `client` through the proxy.
async fn statuses_as(node: &TestNode, client: &str) -> [u16; 3] {
    let forwarded = [("x-forwarded-for", client)];
    let socket = match Client::connect_with(
        &format!("ws://{}/ws/check", node.addr),
        Codec::Json,
        &forwarded,
    )
    .await
    {
        Ok(_) => 101,
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("{e}"),
    };
    let (download, _) = http(
        node.addr,
        "GET",
        "/api/v1/check/download?bytes=1",
        &forwarded,
        None,
    )
    .await;
    let (sign_in, _) = http(
        node.addr,
        "POST",
        "/api/v1/demo/sign-in",
        &forwarded,
        Some(r#"{"user":"demo-taro"}"#),
    )
    .await;
    [socket, download, sign_in]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learners_behind_a_trusted_proxy_do_not_share_a_bucket() {
    let node = TestNode::start_with(|c| {
        tight_limits(c);
        // The test's loopback connections play the load balancer.
        c.trusted_proxies = trusting(&["10.0.0.0/8", "127.0.0.1"]);
    })
    .await;
    assert_eq!(statuses_as(&node, "198.51.100.1").await, [101, 200, 200]);
    assert_eq!(
        statuses_as(&node, "198.51.100.2").await,
        [101, 200, 200],
        "another learner behind the same balancer has a bucket of their own"
    );
    assert_eq!(
        statuses_as(&node, "198.51.100.1").await,
        [429, 429, 429],
        "the first learner's bucket is spent"
    );
    // What the learner wrote left of the balancer's entry is not believed.
    assert_eq!(
        statuses_as(&node, "203.0.113.50, 198.51.100.1").await,
        [429, 429, 429]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_for_from_an_untrusted_peer_is_ignored() {
    // A node with no trusted proxies, and one trusting only another network.
    for proxies in [vec![], vec!["10.0.0.0/8"]] {
        let node = TestNode::start_with(|c| {
            tight_limits(c);
            c.trusted_proxies = trusting(&proxies);
        })
        .await;
        assert_eq!(statuses_as(&node, "198.51.100.1").await, [101, 200, 200]);
        assert_eq!(
            statuses_as(&node, "198.51.100.2").await,
            [429, 429, 429],
            "a spoofed header does not buy a fresh bucket ({proxies:?})"
        );
    }
}
