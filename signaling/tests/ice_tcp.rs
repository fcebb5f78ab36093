//! ICE-TCP on one shared port: learners whose networks block UDP receive the broadcast over
//! TCP connections to the node's single ICE-TCP listener, which tells the connections apart by
//! their ICE username fragment.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::sync::Arc;

use rtc::shared::tcp_framing::frame_packet;
use rtc::stun::attributes::ATTR_USERNAME;
use rtc::stun::message::{BINDING_REQUEST, Message, TransactionId};
use rtc::stun::textattrs::Username;

use common::{Instructor, Learner, Network, WAIT, loopback_config, wait_until};
use signaling::{Broadcast, SignalingConfig, TcpMux};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learners_whose_networks_block_udp_receive_over_the_one_shared_tcp_port() {
    let mux = TcpMux::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let port = mux.local_addr().port().to_string();
    let broadcast = Arc::new(Broadcast::new(SignalingConfig {
        tcp_mux: Some(Arc::clone(&mux)),
        ..loopback_config()
    }));
    let instructor = Instructor::publish(&broadcast).await;
    let mut learners = Vec::new();
    for id in 1..=3 {
        learners.push(Learner::join_on(&broadcast, id, Network::UdpBlocked).await);
    }
    for learner in &mut learners {
        learner.connected().await;
    }
    wait_until(
        "every learner receives camera and microphone over TCP",
        || {
            learners.iter().all(|l| {
                let (video, audio, _) = l.counts();
                video >= 50 && audio >= 50
            })
        },
    )
    .await;
    for learner in &learners {
        let received = learner.peer.received();
        assert!(received.camera.contiguous(), "video without gaps");
        assert!(received.microphone.contiguous(), "audio without gaps");
    }

    // Whatever the node told the learners, its passive TCP candidates are on the one port.
    for learner in &learners {
        let seen = learner.peer.remote_candidates();
        let passive: Vec<&String> = seen
            .iter()
            .filter(|c| c.contains(" tcp ") && c.contains("tcptype passive"))
            .collect();
        assert!(!passive.is_empty(), "no TCP candidate offered: {seen:?}");
        for candidate in passive {
            let fields: Vec<&str> = candidate.split(' ').collect();
            assert_eq!(fields[5], port, "{candidate}");
        }
    }

    // Anything else on the port is closed and disturbs nobody: junk, and a binding request
    // for a connection that does not exist.
    let address = mux.local_addr();
    let probes = tokio::task::spawn_blocking(move || {
        let junk = frame_packet(&[0xAB; 32]);
        let mut unknown = Message::new();
        unknown
            .build(&[
                Box::new(BINDING_REQUEST),
                Box::new(TransactionId([7; 12])),
                Box::new(Username::new(ATTR_USERNAME, "nobody:x".to_owned())),
            ])
            .unwrap();
        [junk, frame_packet(&unknown.raw)].map(|bytes| {
            let mut stream = std::net::TcpStream::connect(address).unwrap();
            stream.set_read_timeout(Some(WAIT)).unwrap();
            stream.write_all(&bytes).unwrap();
            let mut rest = Vec::new();
            // Closed by the node: end of stream (or a reset), never a timeout.
            match stream.read_to_end(&mut rest) {
                Ok(_) => rest.is_empty(),
                Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
            }
        })
    });
    assert_eq!(
        probes.await.unwrap(),
        [true, true],
        "closed without an answer"
    );
    let before: Vec<usize> = learners.iter().map(|l| l.counts().0).collect();
    wait_until("the learners keep receiving", || {
        learners
            .iter()
            .zip(&before)
            .all(|(l, before)| l.counts().0 >= before + 20)
    })
    .await;

    // Every connection gives its place on the port back when it goes.
    assert_eq!(
        mux.peer_connections(),
        4,
        "the instructor and three learners"
    );
    for learner in &learners {
        broadcast.unsubscribe(learner.id).await.unwrap();
    }
    instructor.close().await;
    broadcast.close().await;
    wait_until("no connection holds the port", || {
        mux.peer_connections() == 0
    })
    .await;
}
