//! TURN credentials: the anonymous connection check gets none (not even the static ones an
//! operator configured); a person admitted to the room gets one of their own in the TURN
//! REST scheme (coturn's `use-auth-secret`), checked here with the shared secret the way a
//! TURN server checks it.

#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine;
use common::{Client, TestNode};
use hmac::{Hmac, Mac};
use protocol::{Codec, IceServer, Role, ServerMsg};
use room_server::turn::TurnSecret;

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
