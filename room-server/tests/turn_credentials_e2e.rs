//! TURN credentials: the anonymous connection check gets none (not even the static ones an
//! operator configured); a person admitted to the room gets one of their own in the TURN
//! REST scheme (coturn's `use-auth-secret`), checked here with the shared secret the way a
//! TURN server checks it, and by a real coturn.

#![allow(clippy::unwrap_used)]

use e2e as common;

use base64::Engine;
use common::{Client, Door, TestNode, TurnServer, WAIT};
use hmac::{Hmac, Mac};
use protocol::{Codec, IceServer, Role, ServerMsg};
use room_server::turn::TurnSecret;
use std::sync::Arc;
use tokio::sync::mpsc;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceGatheringState, RTCIceServer, RTCIceTransportPolicy,
    RTCPeerConnectionIceEvent,
};

const SECRET: &str = "shared-with-coturn-0123456789";
const TTL: u64 = 600;

async fn node_with_turn() -> TestNode {
    TestNode::start_with(|c| {
        c.media.ice_servers = vec![IceServer {
            urls: vec![
                "stun:stun.example.jp:3478".into(),
                "turn:static.example.jp:3478".into(),
            ],
            username: Some("static-user".into()),
            credential: Some("static-password".into()),
        }];
        c.media.turn_urls = vec!["turn:turn.example.jp:3478?transport=udp".into()];
        c.media.turn_secret = Some(TurnSecret::new(SECRET));
        c.media.turn_ttl_secs = TTL;
    })
    .await
}

/// What a TURN server computes from the user name: base64(HMAC-SHA1(secret, user name)).
fn expected_password(username: &str) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_socket_gets_stun_only_and_no_credential() {
    let node = node_with_turn().await;
    let mut check = Client::connect(&format!("ws://{}/ws/check", node.addr), Codec::Json)
        .await
        .unwrap();
    let ServerMsg::MediaConfig { ice_servers } = check.recv().await else {
        panic!("the check starts with media_config");
    };
    assert_eq!(
        ice_servers,
        vec![IceServer {
            urls: vec!["stun:stun.example.jp:3478".into()],
            username: None,
            credential: None,
        }]
    );
    let json = serde_json::to_string(&ice_servers).unwrap();
    for secret in ["static-password", "static-user", SECRET, "turn:"] {
        assert!(!json.contains(secret), "{secret} reached the check: {json}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_connection_gets_its_own_turn_credential_that_expires_as_configured() {
    let node = node_with_turn().await;
    let mut names = Vec::new();
    for user in ["u1", "u2"] {
        let (mut learner, _) = node.enter(user, user, Role::Learner).await;
        let before = common::now().0 / 1000;
        let ServerMsg::MediaConfig { ice_servers } = learner.recv().await else {
            panic!("media_config follows the welcome");
        };
        assert_eq!(ice_servers.len(), 2, "{ice_servers:?}");
        assert_eq!(
            ice_servers[0].credential.as_deref(),
            Some("static-password"),
            "admitted people get the configured servers"
        );
        let turn = &ice_servers[1];
        assert_eq!(turn.urls, vec!["turn:turn.example.jp:3478?transport=udp"]);
        let username = turn.username.clone().unwrap();
        let (expiry, id) = username.split_once(':').unwrap();
        let expiry: u64 = expiry.parse().unwrap();
        assert!(
            !id.is_empty() && !id.contains(user),
            "an opaque id: {username}"
        );
        // Issued at the welcome: the node's clock and the test's agree within a few seconds.
        assert!(
            (before + TTL - 5..=before + TTL + 5).contains(&expiry),
            "expires {expiry}, about {TTL} s after {before}"
        );
        assert_eq!(
            turn.credential.as_deref(),
            Some(expected_password(&username).as_str()),
            "the credential verifies with the shared secret"
        );
        names.push(username);
    }
    assert_ne!(names[0], names[1], "one credential per connection");
}

/// What a peer's gathering with only a TURN server (relay policy) produced: whether a relay
/// candidate came before gathering ended.
async fn relay_candidate_with(url: &str, username: &str, credential: &str) -> bool {
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let config = RTCConfigurationBuilder::new()
        .with_ice_servers(vec![RTCIceServer {
            urls: vec![url.to_owned()],
            username: username.to_owned(),
            credential: credential.to_owned(),
        }])
        .with_ice_transport_policy(RTCIceTransportPolicy::Relay)
        .build();
    let pc: Arc<dyn PeerConnection> = Arc::new(
        Box::pin(
            PeerConnectionBuilder::new()
                .with_configuration(config)
                .with_media_engine(MediaEngine::default())
                .with_handler(Arc::new(Gathering { events: events_tx }))
                .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
                .build(),
        )
        .await
        .unwrap(),
    );
    let _channel = pc.create_data_channel("turn", None).await.unwrap();
    let offer = pc.create_offer(None).await.unwrap();
    pc.set_local_description(offer).await.unwrap();
    let relayed = tokio::time::timeout(WAIT, async {
        while let Some(event) = events.recv().await {
            match event {
                Gathered::Candidate(c) if c.contains(" typ relay") => return true,
                Gathered::Candidate(_) => {}
                Gathered::Complete => return false,
            }
        }
        false
    })
    .await
    .expect("gathering ends in time");
    let _ = pc.close().await;
    relayed
}

enum Gathered {
    Candidate(String),
    Complete,
}

struct Gathering {
    events: mpsc::UnboundedSender<Gathered>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Gathering {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let _ = self.events.send(Gathered::Candidate(init.candidate));
        }
    }
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.events.send(Gathered::Complete);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_coturn_relays_for_the_rooms_credential_and_not_for_a_forged_or_expired_one() {
    let turn = TurnServer::start(SECRET);
    let node = TestNode::start_with(|c| {
        c.media.turn_urls = vec![turn.url()];
        c.media.turn_secret = Some(TurnSecret::new(SECRET));
        c.media.turn_ttl_secs = TTL;
    })
    .await;
    let (mut learner, _) = node.enter("u1", "u1", Role::Learner).await;
    let ServerMsg::MediaConfig { ice_servers } = learner.recv().await else {
        panic!("media_config follows the welcome");
    };
    let [server] = ice_servers.as_slice() else {
        panic!("one TURN server: {ice_servers:?}");
    };
    let (username, credential) = (
        server.username.clone().unwrap(),
        server.credential.clone().unwrap(),
    );
    assert!(
        relay_candidate_with(&server.urls[0], &username, &credential).await,
        "coturn allocates a relay for the room's credential"
    );
    assert!(
        !relay_candidate_with(&server.urls[0], &username, "Zm9yZ2Vk").await,
        "a forged credential gets no relay"
    );
    // Signed with the right secret, but its time is up.
    let expired = format!("{}:{}", common::now().0 / 1000 - 60, "1");
    assert!(
        !relay_candidate_with(&server.urls[0], &expired, &expected_password(&expired)).await,
        "an expired credential gets no relay"
    );
}
