//! The connection check's WebRTC probe: a real webrtc-crate peer plays the browser's check
//! page over `/ws/check`, offers a data channel, and expects its message echoed back.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, TestNode, WAIT};
use protocol::{ClientMsg, Codec, ErrorCode, IceCandidate, ServerMsg};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceCandidateInit, RTCPeerConnectionIceEvent, RTCSessionDescription,
};

struct Events {
    candidates: mpsc::UnboundedSender<RTCIceCandidateInit>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let _ = self.candidates.send(init);
        }
    }
}

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

/// The browser's peer connection with one data channel, and its offer.
async fn browser() -> (
    Arc<dyn PeerConnection>,
    Arc<dyn DataChannel>,
    mpsc::UnboundedReceiver<RTCIceCandidateInit>,
    String,
) {
    let (candidates_tx, candidates) = mpsc::unbounded_channel();
    let pc: Arc<dyn PeerConnection> = Arc::new(
        Box::pin(
            PeerConnectionBuilder::new()
                .with_media_engine(MediaEngine::default())
                .with_handler(Arc::new(Events {
                    candidates: candidates_tx,
                }))
                .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
                .build(),
        )
        .await
        .unwrap(),
    );
    let channel = pc.create_data_channel("check", None).await.unwrap();
    let offer = pc.create_offer(None).await.unwrap();
    pc.set_local_description(offer).await.unwrap();
    let sdp = pc.local_description().await.unwrap().sdp;
    (pc, channel, candidates, sdp)
}

fn to_protocol(init: RTCIceCandidateInit) -> IceCandidate {
    IceCandidate {
        candidate: init.candidate,
        sdp_mid: init.sdp_mid,
        sdp_mline_index: init.sdp_mline_index,
        username_fragment: init.username_fragment,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_channel_offered_over_the_check_socket_opens_and_echoes() {
    let node = start_node().await;
    let mut check = open_check(&node).await;
    let (pc, channel, mut candidates, offer) = browser().await;
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
                Some(init) = candidates.recv() => {
                    check.send(&ClientMsg::MediaCandidate { candidate: to_protocol(init) }).await;
                }
                msg = check.recv() => match msg {
                    ServerMsg::MediaAnswer { sdp } => {
                        assert!(!answered, "one answer");
                        answered = true;
                        pc.set_remote_description(RTCSessionDescription::answer(sdp).unwrap())
                            .await
                            .unwrap();
                    }
                    ServerMsg::MediaCandidate { candidate } => {
                        node_candidates += 1;
                        pc.add_ice_candidate(RTCIceCandidateInit {
                            candidate: candidate.candidate,
                            sdp_mid: candidate.sdp_mid,
                            sdp_mline_index: candidate.sdp_mline_index,
                            username_fragment: candidate.username_fragment,
                            ..Default::default()
                        })
                        .await
                        .unwrap();
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
    assert_eq!(
        node.node.metrics.check_probes_total.load(Ordering::Relaxed),
        1
    );
    assert_eq!(
        node.node
            .metrics
            .check_probes_active
            .load(Ordering::Relaxed),
        1
    );

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
        while node
            .node
            .metrics
            .check_probes_active
            .load(Ordering::Relaxed)
            != 0
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the probe is closed with its socket");
    let _ = pc.close().await;
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
    assert_eq!(
        node.node.metrics.check_probes_total.load(Ordering::Relaxed),
        0
    );
}
