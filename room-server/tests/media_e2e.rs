//! The instructor's broadcast through the room connection: a real node, room clients over
//! WebSocket, and real webrtc-crate peers (`signaling::test_peer`) playing the browsers.

#![allow(clippy::unwrap_used)]

use e2e as common;

use common::{Client, Door, TestNode, WAIT};
use futures_util::StreamExt;
use protocol::server::Phase;
use protocol::{ClientMsg, ErrorCode, IceCandidate, Role, ServerMsg};
use signaling::test_peer::{Feed, LocalTrack, Network, Pump, Synthetic, TestPeer};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A browser: one room connection and one peer connection, negotiated over it.
struct Browser {
    /// What the test sends on the room connection.
    send: mpsc::UnboundedSender<ClientMsg>,
    /// Everything the node sent (media messages included, after the browser acted on them).
    inbox: mpsc::UnboundedReceiver<ServerMsg>,
    peer: TestPeer,
    /// The camera, once this browser publishes.
    camera: Option<LocalTrack>,
}

impl Browser {
    /// Takes over `client` (welcomed already): answers the node's offers, applies its answers
    /// and candidates, trickles its own candidates.
    async fn new(client: Client) -> Self {
        let (peer, candidates) = TestPeer::new(LOOPBACK, Network::Open).await.unwrap();
        let (send, outgoing) = mpsc::unbounded_channel();
        let (inbox_tx, inbox) = mpsc::unbounded_channel();
        tokio::spawn(drive(client, peer.clone(), outgoing, candidates, inbox_tx));
        Self {
            send,
            inbox,
            peer,
            camera: None,
        }
    }

    fn send(&self, msg: ClientMsg) {
        self.send.send(msg).unwrap();
    }

    /// The next message the node sent that `pick` accepts, skipping others.
    async fn until<T>(&mut self, mut pick: impl FnMut(&ServerMsg) -> Option<T>) -> T {
        tokio::time::timeout(WAIT, async {
            loop {
                let msg = self.inbox.recv().await.expect("the connection is open");
                if let Some(t) = pick(&msg) {
                    return t;
                }
            }
        })
        .await
        .expect("the expected message arrives in time")
    }

    async fn connected(&mut self) {
        if let Err(e) = self.peer.connected(WAIT).await {
            panic!("the peer did not connect: {e}");
        }
    }

    /// Distinct camera and microphone packets received.
    fn counts(&self) -> (usize, usize) {
        let r = self.peer.received();
        (r.camera.count(), r.microphone.count())
    }

    /// Keyframe requests (PLI/FIR) that reached this browser's camera.
    fn keyframe_requests(&self) -> usize {
        self.camera
            .as_ref()
            .map_or(0, |camera| camera.keyframe_requests().len())
    }
}

/// The browser's side of the room connection: the page's media code.
async fn drive(
    mut client: Client,
    peer: TestPeer,
    mut outgoing: mpsc::UnboundedReceiver<ClientMsg>,
    mut candidates: mpsc::UnboundedReceiver<IceCandidate>,
    inbox: mpsc::UnboundedSender<ServerMsg>,
) {
    loop {
        tokio::select! {
            msg = outgoing.recv() => {
                let Some(msg) = msg else { break };
                client.send(&msg).await;
            }
            Some(candidate) = candidates.recv() => {
                client.send(&ClientMsg::MediaCandidate { candidate }).await;
            }
            frame = client.ws.next() => {
                let bytes = match frame {
                    Some(Ok(Message::Binary(b))) => b.to_vec(),
                    Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
                    Some(Ok(_)) => continue,
                    None | Some(Err(_)) => break,
                };
                let msg = client.codec.decode_server(&bytes).expect("valid frames");
                match &msg {
                    // None if this peer connection cannot take it (one that was closed after
                    // `media_stopped`, say: the test only looks at the offer then).
                    ServerMsg::MediaOffer { sdp } => {
                        if let Ok(sdp) = peer.answer(sdp.clone()).await {
                            client.send(&ClientMsg::MediaAnswer { sdp }).await;
                        }
                    }
                    ServerMsg::MediaAnswer { sdp } => peer.apply_answer(sdp.clone()).await.unwrap(),
                    ServerMsg::MediaCandidate { candidate } => {
                        let _ = peer.add_remote_candidate(candidate.clone()).await;
                    }
                    _ => {}
                }
                if inbox.send(msg).is_err() {
                    break;
                }
            }
        }
    }
    let _ = client.ws.close(None).await;
    let _ = peer.close().await;
}

/// Enters and reads the welcome and the media settings after it.
async fn enter(node: &TestNode, user: &str, role: Role) -> Client {
    let (mut client, _) = node.enter(user, user, role).await;
    assert_eq!(
        client.recv().await,
        ServerMsg::MediaConfig {
            ice_servers: vec![]
        },
        "the media settings follow the welcome"
    );
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learners_receive_the_instructor_only_while_the_lecture_is_live() {
    let node =
        TestNode::start_with(|c| c.media.bind_ip = Some(IpAddr::V4(Ipv4Addr::LOCALHOST))).await;
    let mut sensei = Browser::new(enter(&node, "t1", Role::Instructor).await).await;
    let mut learners = Vec::new();
    for user in ["u1", "u2"] {
        learners.push(Browser::new(enter(&node, user, Role::Learner).await).await);
    }

    // The instructor publishes camera and microphone before going live (a preview).
    let pumps = publish(&mut sensei).await;
    node.wait_metric("media_publishers", 1).await;

    // Doors open, not live: nobody is offered media.
    for (i, learner) in learners.iter_mut().enumerate() {
        learner.send(ClientMsg::Ping { t: i as u64 });
        let before_pong = learner
            .until(|m| match m {
                ServerMsg::Pong { .. } => Some(false),
                ServerMsg::MediaOffer { .. } => Some(true),
                _ => None,
            })
            .await;
        assert!(!before_pong, "no media offer before the lecture is live");
    }
    // The publisher is known to every session since the instructor's answer; a session that
    // wrongly offered would have done so by now. A bounded look for something that must not come.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for learner in &mut learners {
        while let Ok(msg) = learner.inbox.try_recv() {
            assert!(
                !matches!(msg, ServerMsg::MediaOffer { .. }),
                "no media offer before live"
            );
        }
    }
    assert_eq!(node.metric("media_subscribers").await, 0);

    // Live: each learner is offered the tracks, answers, and receives every packet.
    sensei.send(ClientMsg::StartLecture);
    for learner in &mut learners {
        learner
            .until(|m| matches!(m, ServerMsg::MediaOffer { .. }).then_some(()))
            .await;
        learner.connected().await;
    }
    node.wait_metric("media_subscribers", 2).await;
    for learner in &learners {
        receives(learner, 100, 100).await;
    }
    assert!(node.metric("media_forwarded_packets_total").await >= 400);

    // A learner may not publish.
    let second = &mut learners[1];
    second.send(ClientMsg::MediaOffer { sdp: "v=0".into() });
    let refusal = second
        .until(|m| match m {
            ServerMsg::Error { code, command, .. } => Some((*code, command.clone())),
            _ => None,
        })
        .await;
    assert_eq!(refusal, (ErrorCode::NotAllowed, Some("media_offer".into())));

    // A learner who leaves releases its subscriber.
    let first = learners.remove(0);
    first.send(ClientMsg::Leave);
    node.wait_metric("media_subscribers", 1).await;

    // The end stops media for everyone.
    sensei.send(ClientMsg::EndLecture);
    let second = &mut learners[0];
    second
        .until(|m| {
            matches!(
                m,
                ServerMsg::Phase {
                    phase: Phase::Ended { .. }
                }
            )
            .then_some(())
        })
        .await;
    node.wait_metric("media_subscribers", 0).await;
    node.wait_metric("media_publishers", 0).await;
    drop(pumps);
    drop(first);
}

/// Publishes camera and microphone over the room connection and starts sending on them.
async fn publish(sensei: &mut Browser) -> [Pump; 2] {
    let camera = sensei.peer.add_track(Feed::Camera).await.unwrap();
    let microphone = sensei.peer.add_track(Feed::Microphone).await.unwrap();
    offer(sensei).await;
    sensei.connected().await;
    let pumps = [
        Pump::start(Synthetic::keyframes(), camera.clone()),
        Pump::start(Synthetic::opus(), microphone),
    ];
    sensei.camera = Some(camera);
    pumps
}

/// Offers the instructor's current tracks over the room connection and applies the answer.
async fn offer(sensei: &mut Browser) {
    let sdp = sensei.peer.offer().await.unwrap();
    sensei.send(ClientMsg::MediaOffer { sdp });
    // The page's code has applied the answer by the time the test sees it.
    sensei
        .until(|m| matches!(m, ServerMsg::MediaAnswer { .. }).then_some(()))
        .await;
}

/// Starts a screen share as a browser does: a new send-only track, a new offer on the same
/// connection.
async fn share_screen(sensei: &mut Browser) -> (LocalTrack, Pump) {
    let screen = sensei.peer.add_track(Feed::Screen).await.unwrap();
    offer(sensei).await;
    let pump = Pump::start(Synthetic::keyframes(), screen.clone());
    (screen, pump)
}

/// Waits until `learner` has at least `video` camera and `audio` microphone packets, and
/// checks they came without gaps and unaltered.
async fn receives(learner: &Browser, video: usize, audio: usize) {
    let got = tokio::time::timeout(WAIT, async {
        while {
            let (v, a) = learner.counts();
            v < video || a < audio
        } {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(got.is_ok(), "a learner received {:?}", learner.counts());
    let r = learner.peer.received();
    assert!(r.camera.contiguous(), "video without gaps");
    assert!(r.microphone.contiguous(), "audio without gaps");
    assert_eq!(r.altered(), 0, "payloads forwarded unchanged");
}

/// Packets of the screen share a learner has received.
fn screen_count(learner: &Browser) -> usize {
    learner.peer.received().screen.count()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let reached = tokio::time::timeout(WAIT, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "{what}");
}

async fn two_nodes(redis: &common::RedisServer) -> (TestNode, TestNode) {
    let loopback = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let home = TestNode::start_with(|c| {
        c.redis_url = Some(redis.url());
        c.media.bind_ip = loopback;
    })
    .await;
    let database_url = home.node.config().database_url.clone();
    let other = TestNode::start_with(|c| {
        c.redis_url = Some(redis.url());
        c.database_url = database_url;
        c.media.bind_ip = loopback;
    })
    .await;
    (home, other)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_learners_on_another_node_receive_the_instructor_over_the_relay() {
    let redis = common::RedisServer::start();
    let (home, other) = two_nodes(&redis).await;
    let mut sensei = Browser::new(enter(&home, "t1", Role::Instructor).await).await;
    let mut near = Browser::new(enter(&home, "u1", Role::Learner).await).await;
    let mut far = Browser::new(enter(&other, "u2", Role::Learner).await).await;
    let pumps = publish(&mut sensei).await;
    sensei.send(ClientMsg::StartLecture);

    // On the instructor's node media flows as with one node; the other node pulls it over
    // one relay and offers it to its own learner.
    for learner in [&mut near, &mut far] {
        learner
            .until(|m| matches!(m, ServerMsg::MediaOffer { .. }).then_some(()))
            .await;
        learner.connected().await;
    }
    receives(&near, 100, 100).await;
    receives(&far, 100, 100).await;
    home.wait_metric("media_relays_out", 1).await;
    other.wait_metric("media_relays_in", 1).await;
    assert_eq!(
        home.metric("media_subscribers").await,
        1,
        "the relay is no viewer"
    );
    assert_eq!(other.metric("media_subscribers").await, 1);
    assert_eq!(
        other.metric("media_publishers").await,
        0,
        "a relay is no instructor"
    );

    // A second learner joining on the other node gets its keyframe from the instructor: the
    // request travels back over the relay (nothing on the instructor's node asks meanwhile).
    let asked = sensei.keyframe_requests();
    let mut late = Browser::new(enter(&other, "u3", Role::Learner).await).await;
    late.until(|m| matches!(m, ServerMsg::MediaOffer { .. }).then_some(()))
        .await;
    late.connected().await;
    receives(&late, 50, 50).await;
    wait_for("a keyframe request reaches the instructor", || {
        sensei.keyframe_requests() > asked
    })
    .await;
    other.wait_metric("media_subscribers", 2).await;
    assert_eq!(
        home.metric("media_relays_out").await,
        1,
        "one relay per node"
    );

    // The screen share starts: the instructor renegotiates over the room socket, and every
    // learner on both nodes is offered the new track and receives it.
    let (screen, screen_pump) = share_screen(&mut sensei).await;
    for learner in [&mut near, &mut far, &mut late] {
        learner
            .until(|m| matches!(m, ServerMsg::MediaOffer { .. }).then_some(()))
            .await;
    }
    for learner in [&near, &far, &late] {
        wait_for("every learner receives the screen share", || {
            screen_count(learner) >= 50
        })
        .await;
        assert!(
            learner.peer.received().screen.contiguous(),
            "screen without gaps"
        );
    }
    // And stops: the track is taken away everywhere (another renegotiation), the camera goes on.
    drop(screen_pump);
    sensei.peer.remove_track(&screen).await.unwrap();
    offer(&mut sensei).await;
    for learner in [&mut near, &mut far, &mut late] {
        learner
            .until(|m| match m {
                ServerMsg::MediaOffer { sdp } => Some(sdp.matches("m=video").count()),
                _ => None,
            })
            .await;
    }
    let before = far.counts().0;
    wait_for("the camera goes on after the screen share", || {
        far.counts().0 >= before + 20
    })
    .await;

    // The instructor stops: learners on both nodes are told, and the relay ends.
    sensei.send(ClientMsg::MediaStop);
    for learner in [&mut near, &mut far, &mut late] {
        learner
            .until(|m| matches!(m, ServerMsg::MediaStopped).then_some(()))
            .await;
    }
    other.wait_metric("media_relays_in", 0).await;
    home.wait_metric("media_relays_out", 0).await;
    other.wait_metric("media_subscribers", 0).await;
    drop(pumps);

    // Publishing again (from a fresh page) brings it back on both nodes; the end of the
    // lecture stops it all.
    drop(sensei);
    let mut sensei = Browser::new(enter(&home, "t1", Role::Instructor).await).await;
    let pumps = publish(&mut sensei).await;
    for learner in [&mut near, &mut far] {
        learner
            .until(|m| matches!(m, ServerMsg::MediaOffer { .. }).then_some(()))
            .await;
    }
    other.wait_metric("media_relays_in", 1).await;
    sensei.send(ClientMsg::EndLecture);
    for node in [&home, &other] {
        node.wait_metric("media_subscribers", 0).await;
        node.wait_metric("media_publishers", 0).await;
        node.wait_metric("media_relays_in", 0).await;
        node.wait_metric("media_relays_out", 0).await;
    }
    drop(pumps);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_endpoint_is_for_nodes_with_a_token_only() {
    let node = TestNode::start().await;
    let key = &node.node.config().ticket_key;
    let path = format!("/ws/relay/{}", common::LECTURE);
    let status = |headers: Vec<(&'static str, String)>| {
        let path = path.clone();
        let addr = node.addr;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            common::http(addr, "GET", &path, &headers, None).await
        }
    };
    let exp = common::now().0 / 1000 + 60;
    let valid = format!("Bearer {}", key.mint_relay(&common::LECTURE.into(), exp));
    let other_lecture = format!("Bearer {}", key.mint_relay(&"another".into(), exp));
    let expired = format!("Bearer {}", key.mint_relay(&common::LECTURE.into(), 1));
    let ticket = format!("Bearer {}", node.ticket("t1", "t1", Role::Instructor));
    for (auth, why) in [
        (None, "no token"),
        (Some(other_lecture), "another lecture's token"),
        (Some(expired), "an expired token"),
        (Some(ticket), "a room ticket"),
    ] {
        let headers = auth.map(|a| vec![("Authorization", a)]).unwrap_or_default();
        let (code, body) = status(headers).await;
        assert_eq!(code, 401, "{why}: {body}");
        assert!(body.contains("invalid_relay_token"), "{body}");
    }
    // A valid token, but the lecture's room is not open on this node.
    let (code, body) = status(vec![("Authorization", valid.clone())]).await;
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("not_here"), "{body}");
    // With the room open, only a WebSocket upgrade is taken.
    let _learner = enter(&node, "u1", Role::Learner).await;
    let (code, body) = status(vec![("Authorization", valid)]).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("not_websocket"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instructor_who_stops_or_leaves_stops_the_learners_media_until_the_next_offer() {
    let node =
        TestNode::start_with(|c| c.media.bind_ip = Some(IpAddr::V4(Ipv4Addr::LOCALHOST))).await;
    let mut sensei = Browser::new(enter(&node, "t1", Role::Instructor).await).await;
    let mut learner = Browser::new(enter(&node, "u1", Role::Learner).await).await;
    sensei.send(ClientMsg::StartLecture);
    learner
        .until(|m| {
            matches!(
                m,
                ServerMsg::Phase {
                    phase: Phase::Live { .. }
                }
            )
            .then_some(())
        })
        .await;
    // Live, but nobody publishes yet: nothing to offer.
    let pumps = publish(&mut sensei).await;
    learner
        .until(|m| matches!(m, ServerMsg::MediaOffer { .. }).then_some(()))
        .await;
    learner.connected().await;
    node.wait_metric("media_subscribers", 1).await;

    sensei.send(ClientMsg::MediaStop);
    learner
        .until(|m| matches!(m, ServerMsg::MediaStopped).then_some(()))
        .await;
    node.wait_metric("media_subscribers", 0).await;
    node.wait_metric("media_publishers", 0).await;
    drop(pumps);

    // The instructor comes back on a new connection and publishes again: a fresh offer.
    drop(sensei);
    let mut again = Browser::new(enter(&node, "t1", Role::Instructor).await).await;
    let pumps = publish(&mut again).await;
    learner
        .until(|m| matches!(m, ServerMsg::MediaOffer { .. }).then_some(()))
        .await;
    node.wait_metric("media_publishers", 1).await;

    // The instructor's connection closes: publishing ends with it.
    drop(again);
    learner
        .until(|m| matches!(m, ServerMsg::MediaStopped).then_some(()))
        .await;
    node.wait_metric("media_publishers", 0).await;
    node.wait_metric("media_subscribers", 0).await;
    drop(pumps);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_lecture_is_archived_by_its_node_when_it_ends() {
    let root = std::env::temp_dir().join(format!(
        "archive-made-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let archive_dir = root.join("archive");
    let node = TestNode::start_with(|c| {
        c.media.bind_ip = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        c.media.recording_dir = Some(root.join("recordings"));
        c.archive.dir = Some(archive_dir.clone());
    })
    .await;
    let mut sensei = Browser::new(enter(&node, "t1", Role::Instructor).await).await;
    let mut learner = Browser::new(enter(&node, "u1", Role::Learner).await).await;
    let pumps = publish(&mut sensei).await;
    node.wait_metric("media_publishers", 1).await;
    sensei.send(ClientMsg::StartLecture);
    learner
        .until(|m| matches!(m, ServerMsg::MediaOffer { .. }).then_some(()))
        .await;
    learner.connected().await;
    receives(&learner, 100, 100).await;
    sensei.send(ClientMsg::EndLecture);
    node.wait_metric("room_archives_made_total", 1).await;
    assert_eq!(node.metric("room_archive_failures_total").await, 0);

    let lectures: Vec<_> = std::fs::read_dir(&archive_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(lectures.len(), 1, "{lectures:?}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lectures[0].join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "live-lecture-archive/1");
    assert_eq!(manifest["tracks"][0]["name"], "camera.webm");
    assert!(
        manifest["duration_ms"].as_u64().unwrap() > 0,
        "{manifest:#}"
    );
    assert!(
        manifest["tracks"][0]["duration_ms"].as_u64().unwrap() > 0,
        "{manifest:#}"
    );
    assert!(lectures[0].join("camera.webm").exists());
    drop(pumps);
    let _ = std::fs::remove_dir_all(&root);
}
