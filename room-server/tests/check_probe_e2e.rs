//! The connection check's WebRTC probe: a real webrtc-crate peer plays the browser's check
//! page over `/ws/check`, offers a data channel, and expects its message echoed back; probes
//! are capped per address and per node, live briefly, use no lecture port, and the node
//! contacts no private address a client names unless allowed to.

#![allow(clippy::unwrap_used)]

use e2e as common;

use common::{Client, Door, TestNode, WAIT};
use protocol::{ClientMsg, Codec, ErrorCode, IceCandidate, Role, ServerMsg};
use room_server::client_addr::{ForwardedHeader, TrustedProxies};
use signaling::test_peer::{Feed, Network, TestPeer};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn check_url(node: &TestNode) -> String {
    format!("ws://{}/ws/check", node.addr)
}

async fn start_node() -> TestNode {
    TestNode::start_with(|c| c.media.bind_ip = Some(IpAddr::V4(Ipv4Addr::LOCALHOST))).await
}

/// Opens a check socket and reads the `media_config` it starts with.
async fn open_check(node: &TestNode) -> Client {
    let mut check = Client::connect(&check_url(node), Codec::Json)
        .await
        .expect("connects");
    assert!(
        matches!(check.recv().await, ServerMsg::MediaConfig { .. }),
        "the check starts with the media settings"
    );
    check
}

/// The browser's peer connection with one data channel, its candidates, and its offer.
async fn browser() -> (
    TestPeer,
    Arc<dyn DataChannel>,
    mpsc::UnboundedReceiver<IceCandidate>,
    String,
) {
    let (peer, candidates) = TestPeer::new(LOOPBACK, Network::Open).await.unwrap();
    let channel = peer
        .connection()
        .create_data_channel("check", None)
        .await
        .unwrap();
    let sdp = peer.offer().await.unwrap();
    (peer, channel, candidates, sdp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_channel_offered_over_the_check_socket_opens_and_echoes() {
    let node = start_node().await;
    let mut check = open_check(&node).await;
    let (peer, channel, mut candidates, offer) = browser().await;
    assert!(!offer.contains("m=audio") && !offer.contains("m=video"));
    check.send(&ClientMsg::MediaOffer { sdp: offer }).await;

    let (events_tx, mut events) = mpsc::unbounded_channel();
    {
        let channel = Arc::clone(&channel);
        tokio::spawn(async move {
            while let Some(event) = channel.poll().await {
                if events_tx.send(event).is_err() {
                    break;
                }
            }
        });
    }

    let mut answered = false;
    let mut node_candidates = 0;
    let mut opened = false;
    let echoed = tokio::time::timeout(WAIT, async {
        loop {
            tokio::select! {
                Some(candidate) = candidates.recv() => {
                    check.send(&ClientMsg::MediaCandidate { candidate }).await;
                }
                msg = check.recv() => match msg {
                    ServerMsg::MediaAnswer { sdp } => {
                        assert!(!answered, "one answer");
                        answered = true;
                        peer.apply_answer(sdp).await.unwrap();
                    }
                    ServerMsg::MediaCandidate { candidate } => {
                        node_candidates += 1;
                        peer.add_remote_candidate(candidate).await.unwrap();
                    }
                    other => panic!("unexpected {other:?}"),
                },
                Some(event) = events.recv() => match event {
                    DataChannelEvent::OnOpen => {
                        opened = true;
                        channel.send_text("are you there?").await.unwrap();
                    }
                    DataChannelEvent::OnMessage(msg) => {
                        break String::from_utf8(msg.data.to_vec()).unwrap();
                    }
                    _ => {}
                },
            }
        }
    })
    .await
    .expect("the data channel opens and echoes in time");
    assert!(answered && opened);
    assert!(node_candidates > 0, "the node trickles its candidates");
    assert_eq!(echoed, "are you there?");
    assert_eq!(node.node.metrics.check_probes_total.get(), 1);
    assert_eq!(node.node.metrics.check_probes_active.get(), 1);

    // One probe per check.
    let (_, _, _, again) = browser().await;
    check.send(&ClientMsg::MediaOffer { sdp: again }).await;
    let code = check
        .recv_until(|m| match m {
            ServerMsg::Error { code, command, .. } => {
                assert_eq!(command.as_deref(), Some("media_offer"));
                Some(*code)
            }
            _ => None,
        })
        .await;
    assert_eq!(code, ErrorCode::NotAllowed);

    // Closing the socket closes the probe.
    drop(check);
    tokio::time::timeout(WAIT, async {
        while node.node.metrics.check_probes_active.get() != 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the probe is closed with its socket");
    let _ = peer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_offer_gets_an_error_and_the_check_goes_on() {
    let node = start_node().await;
    let mut check = open_check(&node).await;
    let audio = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
                 m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n";
    for sdp in ["not an sdp at all", "", audio] {
        check
            .send(&ClientMsg::MediaOffer {
                sdp: sdp.to_owned(),
            })
            .await;
        match check.recv().await {
            ServerMsg::Error { code, command, .. } => {
                assert_eq!(code, ErrorCode::InvalidArgument, "{sdp:?}");
                assert_eq!(command.as_deref(), Some("media_offer"));
            }
            other => panic!("{sdp:?}: expected an error, got {other:?}"),
        }
    }
    // A candidate without an offer is refused too.
    check
        .send(&ClientMsg::MediaCandidate {
            candidate: IceCandidate {
                candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host".into(),
                sdp_mid: Some("0".into()),
                sdp_mline_index: Some(0),
                username_fragment: None,
            },
        })
        .await;
    assert!(matches!(
        check.recv().await,
        ServerMsg::Error {
            code: ErrorCode::NotAllowed,
            ..
        }
    ));
    check.send(&ClientMsg::Ping { t: 7 }).await;
    assert!(
        matches!(check.recv().await, ServerMsg::Pong { t: 7, .. }),
        "the socket stays open"
    );
    assert_eq!(node.node.metrics.check_probes_total.get(), 0);
}

/// Opens a check socket as the client a trusted proxy names (`X-Forwarded-For`), and reads
/// its `media_config`.
async fn open_check_from(node: &TestNode, client: &str) -> Client {
    let mut check = Client::connect_with(
        &check_url(node),
        Codec::Json,
        &[("x-forwarded-for", client)],
    )
    .await
    .expect("connects");
    assert!(matches!(check.recv().await, ServerMsg::MediaConfig { .. }));
    check
}

/// Offers a probe on `check`; returns the node's answer, or the error's code and message.
async fn offer_probe(check: &mut Client) -> Result<(), (ErrorCode, String)> {
    let (peer, _, _, sdp) = browser().await;
    check.send(&ClientMsg::MediaOffer { sdp }).await;
    let reply = check
        .recv_until(|m| match m {
            ServerMsg::MediaAnswer { .. } => Some(Ok(())),
            ServerMsg::Error {
                code,
                message,
                command,
                ..
            } => {
                assert_eq!(command.as_deref(), Some("media_offer"));
                Some(Err((*code, message.clone())))
            }
            _ => None,
        })
        .await;
    let _ = peer.close().await;
    reply
}

/// `n` consecutive UDP ports free on loopback now, for a node's small port range.
fn free_udp_ports(n: u16) -> u16 {
    for _ in 0..100 {
        let first = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let base = first.local_addr().unwrap().port();
        if base > u16::MAX - n {
            continue;
        }
        let rest: Result<Vec<_>, _> = (1..n)
            .map(|i| std::net::UdpSocket::bind(("127.0.0.1", base + i)))
            .collect();
        if rest.is_ok() {
            return base;
        }
    }
    panic!("no {n} consecutive free UDP ports");
}

/// An instructor's offer of a camera track, as the console's browser makes it.
async fn instructor_offer() -> (TestPeer, String) {
    let (peer, _) = TestPeer::new(LOOPBACK, Network::Open).await.unwrap();
    peer.add_track(Feed::Camera).await.unwrap();
    let sdp = peer.offer().await.unwrap();
    (peer, sdp)
}

/// The instructor enters and offers; the node's answer or error.
async fn instructor_publishes(node: &TestNode) -> (Client, Result<(), String>) {
    let (mut sensei, _) = node.enter("t1", "sensei", Role::Instructor).await;
    assert!(matches!(sensei.recv().await, ServerMsg::MediaConfig { .. }));
    let (peer, sdp) = instructor_offer().await;
    sensei.send(&ClientMsg::MediaOffer { sdp }).await;
    let reply = sensei
        .recv_until(|m| match m {
            ServerMsg::MediaAnswer { .. } => Some(Ok(())),
            ServerMsg::Error { message, .. } => Some(Err(message.clone())),
            _ => None,
        })
        .await;
    let _ = peer.close().await;
    (sensei, reply)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_beyond_the_caps_are_refused_and_the_instructor_still_publishes() {
    // Two UDP ports for the lecture: before the caps and the probes' own ports, two probes
    // took both and the instructor's offer failed.
    let first = free_udp_ports(2);
    let node = TestNode::start_with(|c| {
        c.media.bind_ip = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        c.media.udp_port_range = Some(format!("{first}-{}", first + 1));
        c.limits.max_check_probes = 3;
        c.limits.check_probes_per_ip = 2;
        // The test plays a load balancer on loopback naming each page's address.
        c.trusted_proxies =
            TrustedProxies::new(&["127.0.0.1".to_owned()], ForwardedHeader::XForwardedFor).unwrap();
    })
    .await;
    let (a, b, c) = ("198.51.100.1", "198.51.100.2", "198.51.100.3");

    // Two probes from one address; the third is refused for the address…
    let mut a1 = open_check_from(&node, a).await;
    let mut a2 = open_check_from(&node, a).await;
    let mut a3 = open_check_from(&node, a).await;
    assert_eq!(offer_probe(&mut a1).await, Ok(()));
    assert_eq!(offer_probe(&mut a2).await, Ok(()));
    let (code, message) = offer_probe(&mut a3).await.unwrap_err();
    assert_eq!(code, ErrorCode::RateLimited);
    assert!(message.contains("your address"), "{message}");
    // …another address gets one, up to the node's cap; then everyone is refused.
    let mut b1 = open_check_from(&node, b).await;
    let mut b2 = open_check_from(&node, b).await;
    let mut c1 = open_check_from(&node, c).await;
    assert_eq!(offer_probe(&mut b1).await, Ok(()));
    for refused in [&mut b2, &mut c1] {
        let (code, message) = offer_probe(refused).await.unwrap_err();
        assert_eq!(code, ErrorCode::RateLimited);
        assert!(message.contains("this server"), "{message}");
    }
    assert_eq!(node.metric("room_check_probes_active").await, 3);
    assert_eq!(node.metric("room_check_probes_refused_total").await, 3);

    // The lecture's ports are the lecture's: the instructor publishes.
    let (_sensei, published) = instructor_publishes(&node).await;
    assert_eq!(published, Ok(()), "the instructor's offer is answered");

    // A probe's place comes back when its check closes.
    drop(a1);
    node.wait_metric("room_check_probes_active", 2).await;
    let mut a4 = open_check_from(&node, a).await;
    assert_eq!(offer_probe(&mut a4).await, Ok(()));
    drop((a2, a3, b1, b2, c1, a4));
    node.wait_metric("room_check_probes_active", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_is_closed_when_its_life_is_over_and_the_check_goes_on() {
    let node = TestNode::start_with(|c| {
        c.media.bind_ip = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        c.limits.check_probe_secs = 1;
    })
    .await;
    let mut check = open_check(&node).await;
    assert_eq!(offer_probe(&mut check).await, Ok(()));
    assert_eq!(node.metric("room_check_probes_active").await, 1);
    // Well before the socket's 60 s: the probe's own second.
    check
        .recv_until(|m| matches!(m, ServerMsg::MediaStopped).then_some(()))
        .await;
    assert_eq!(node.metric("room_check_probes_active").await, 0);
    check.send(&ClientMsg::Ping { t: 3 }).await;
    check
        .recv_until(|m| matches!(m, ServerMsg::Pong { t: 3, .. }).then_some(()))
        .await;
    let (code, _) = offer_probe(&mut check).await.unwrap_err();
    assert_eq!(code, ErrorCode::NotAllowed, "still one probe per check");
}

/// A candidate naming `port` on loopback, where the test listens for the node's STUN.
fn loopback_candidate(port: u16) -> IceCandidate {
    IceCandidate {
        candidate: format!("candidate:1 1 udp 2130706431 127.0.0.1 {port} typ host"),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        username_fragment: None,
    }
}

/// Whether a STUN binding request reaches `socket` within `wait`.
async fn stun_arrives(socket: &tokio::net::UdpSocket, wait: Duration) -> bool {
    let mut buf = [0u8; 1500];
    tokio::time::timeout(wait, async {
        loop {
            let (n, _) = socket.recv_from(&mut buf).await.unwrap();
            // A STUN message starts with type 0x0001 (binding request) and the magic cookie.
            if n >= 20 && buf[..2] == [0x00, 0x01] && buf[4..8] == [0x21, 0x12, 0xa4, 0x42] {
                return;
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_candidate_is_dropped_unless_private_candidates_are_allowed() {
    // Where each node is told to send its checks: one listener each, so nothing one node
    // sent is taken for the other's.
    let lan_target = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = target.local_addr().unwrap().port();

    // Allowed (a node on the learners' LAN): the node checks the address it was given.
    let lan = start_node().await;
    let mut check = open_check(&lan).await;
    assert_eq!(offer_probe(&mut check).await, Ok(()));
    check
        .send(&ClientMsg::MediaCandidate {
            candidate: loopback_candidate(lan_target.local_addr().unwrap().port()),
        })
        .await;
    assert!(
        stun_arrives(&lan_target, WAIT).await,
        "the node sends STUN to an allowed candidate"
    );
    assert_eq!(lan.metric("media_ice_candidates_dropped_total").await, 0);
    drop((check, lan));

    // Not allowed (the default): dropped without a word, counted, and never contacted, on
    // the check socket and on the room's own connections alike.
    let public = TestNode::start_with(|c| {
        c.media.bind_ip = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        c.media.allow_private_candidates = false;
    })
    .await;
    let mut check = open_check(&public).await;
    assert_eq!(offer_probe(&mut check).await, Ok(()));
    // The offer's own loopback candidates, if it carried any, were dropped already.
    let dropped = public.metric("media_ice_candidates_dropped_total").await;
    check
        .send(&ClientMsg::MediaCandidate {
            candidate: loopback_candidate(port),
        })
        .await;
    check.send(&ClientMsg::Ping { t: 1 }).await;
    check
        .recv_until(|m| match m {
            ServerMsg::Pong { t: 1, .. } => Some(()),
            ServerMsg::Error { .. } => panic!("a dropped candidate gets no error: {m:?}"),
            _ => None,
        })
        .await;
    public
        .wait_metric("media_ice_candidates_dropped_total", dropped + 1)
        .await;
    let (mut sensei, published) = instructor_publishes(&public).await;
    assert_eq!(published, Ok(()));
    let dropped = public.metric("media_ice_candidates_dropped_total").await;
    sensei
        .send(&ClientMsg::MediaCandidate {
            candidate: loopback_candidate(port),
        })
        .await;
    public
        .wait_metric("media_ice_candidates_dropped_total", dropped + 1)
        .await;
    // The allowed node's first check came within milliseconds; two seconds of silence
    // here is the difference.
    assert!(
        !stun_arrives(&target, Duration::from_secs(2)).await,
        "the node sent STUN to a dropped candidate"
    );
}
