//! An operator's worst day on real processes and a real Redis: a node frozen (SIGSTOP) and
//! thawed, a node shut down while its learners are typing. Every learner is a careful client
//! (`common::Learner`): it numbers what it says and sends again what was not acknowledged.
//! Nothing anyone said may be lost or doubled, and nobody may be left connected and deaf.

use e2e as common;

use common::{Learner, RedisServer, learners_on, processes};
use futures_util::future::join_all;
use protocol::CloseCode;
use std::time::Duration;
use tokio::time::Instant;

fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("room-server-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}

/// Lets every learner handle what arrives, all at once, for `wait`.
async fn pump_all(learners: &mut [Learner], wait: Duration) {
    join_all(learners.iter_mut().map(|l| l.pump(wait))).await;
}

/// Pumps until every learner has every text of `said` exactly once and nothing left
/// unacknowledged, at most `within`; then asserts it.
async fn everyone_has_everything_once(learners: &mut [Learner], said: &[String], within: Duration) {
    let deadline = Instant::now() + within;
    let done = |learners: &[Learner]| {
        learners
            .iter()
            .all(|l| l.pending.is_empty() && said.iter().all(|t| l.count(t) == 1))
    };
    while !done(learners) && Instant::now() < deadline {
        pump_all(learners, Duration::from_millis(300)).await;
    }
    for l in learners.iter() {
        assert!(
            l.pending.is_empty(),
            "{}: {} never acknowledged",
            l.user,
            l.pending.len()
        );
        for text in said {
            assert_eq!(
                l.count(text),
                1,
                "{}: `{text}` not exactly once; closes {:?}; heard {:?}",
                l.user,
                l.closes,
                l.heard
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_frozen_for_ten_seconds_deafens_nobody_and_loses_no_word() {
    let redis = RedisServer::start();
    let dir = scratch_dir("frozen");
    let nodes = processes(&redis, &dir, 3);
    let mut learners = learners_on(&nodes, 12).await;
    let mut said = Vec::new();
    for (i, learner) in learners.iter_mut().enumerate() {
        let text = format!("before {i}");
        learner.say(&text).await;
        said.push(text);
    }
    everyone_has_everything_once(&mut learners, &said, Duration::from_secs(20)).await;

    // Node 0 freezes for ten seconds: longer than the others wait before taking it for dead.
    nodes[0].signal("STOP");
    let frozen_at = Instant::now();
    for round in 0..3 {
        // The others go on; node 0's learners type into sockets nobody reads.
        for (i, learner) in learners.iter_mut().enumerate() {
            let text = format!("frozen {round} {i}");
            learner.say(&text).await;
            said.push(text);
        }
        pump_all(&mut learners, Duration::from_secs(2)).await;
    }
    let left = Duration::from_secs(10).saturating_sub(frozen_at.elapsed());
    pump_all(&mut learners, left).await;
    nodes[0].signal("CONT");

    for (i, learner) in learners.iter_mut().enumerate() {
        let text = format!("after {i}");
        learner.say(&text).await;
        said.push(text);
    }
    everyone_has_everything_once(&mut learners, &said, Duration::from_secs(45)).await;

    let mut wrong = Vec::new();
    for (i, learner) in learners.iter().enumerate() {
        let resynced = learner
            .closes
            .contains(&Some(CloseCode::ResyncRequired.code()));
        // Node 0's learners: the others took node 0 for dead and disconnected them in the log;
        // when it woke it closed them with a reconnect code instead of keeping them open and
        // deaf. Everyone else: nobody on a node that did not stall was judged gone by the one
        // that did.
        let right = if i % 3 == 0 {
            resynced
        } else {
            learner.closes.is_empty()
        };
        if !right {
            wrong.push(format!(
                "{} (node {}): {:?}",
                learner.user,
                i % 3,
                learner.closes
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}");
    for node in &nodes {
        let (status, body) = common::http_get(node.addr, "/readyz").await;
        assert_eq!((status, body.contains("\"ready\"")), (200, true), "{body}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_learners_type_while_their_node_shuts_down_arrives_once_through_another() {
    let redis = RedisServer::start();
    let dir = scratch_dir("sigterm");
    let mut nodes = processes(&redis, &dir, 2);
    let mut learners = learners_on(&nodes, 8).await;
    let mut said = Vec::new();
    // A burst from everyone, and node 0 told to stop in the middle of it.
    for k in 0..5 {
        for (i, learner) in learners.iter_mut().enumerate() {
            let text = format!("burst {k} {i}");
            learner.say(&text).await;
            said.push(text);
        }
        if k == 2 {
            nodes[0].signal("TERM");
        }
    }
    everyone_has_everything_once(&mut learners, &said, Duration::from_secs(30)).await;
    for (i, learner) in learners.iter().enumerate() {
        if i % 2 == 0 {
            assert!(
                learner
                    .closes
                    .iter()
                    .all(|c| c.is_none() || *c == Some(CloseCode::ServerShutdown.code())),
                "{}: {:?}",
                learner.user,
                learner.closes
            );
        }
    }
    assert!(
        nodes[0].wait_exit(Duration::from_secs(15)).is_some(),
        "node 0 stopped"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_learners_type_through_a_redis_outage_and_resync_arrives_once() {
    let mut redis = RedisServer::start();
    let dir = scratch_dir("resync");
    let nodes = processes(&redis, &dir, 2);
    let mut learners = learners_on(&nodes, 6).await;
    let mut said = Vec::new();
    let mut say = |learners: &mut Vec<Learner>, round: &str| {
        let texts: Vec<String> = (0..learners.len())
            .map(|i| format!("{round} {i}"))
            .collect();
        said.extend(texts.clone());
        texts
    };
    let before = say(&mut learners, "before");
    for (learner, text) in learners.iter_mut().zip(&before) {
        learner.say(text).await;
    }
    pump_all(&mut learners, Duration::from_millis(300)).await;
    redis.kill();
    // Each node notices and runs its room on alone: its learners keep talking among themselves.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !learners.iter().all(|l| l.saw_degraded) {
        assert!(
            Instant::now() < deadline,
            "the nodes noticed Redis was gone"
        );
        pump_all(&mut learners, Duration::from_millis(200)).await;
    }
    let during = say(&mut learners, "outage");
    for (learner, text) in learners.iter_mut().zip(&during) {
        learner.say(text).await;
    }
    pump_all(&mut learners, Duration::from_millis(300)).await;
    redis.restart();
    // Typed while the nodes return to the shared room and close everyone for the resync: in
    // flight, not lost.
    let back = say(&mut learners, "back");
    for (learner, text) in learners.iter_mut().zip(&back) {
        learner.say(text).await;
    }
    everyone_has_everything_once(&mut learners, &said, Duration::from_secs(40)).await;
    // Everyone went through the resync (each node returned to the shared room).
    for learner in &learners {
        assert!(
            learner
                .closes
                .contains(&Some(CloseCode::ResyncRequired.code())),
            "{}: {:?}",
            learner.user,
            learner.closes
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
