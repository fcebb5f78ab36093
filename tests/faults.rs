//! An operator's worst day on real processes and a real Redis: a node frozen (SIGSTOP) and
//! thawed, a node shut down while its learners are typing. Every learner is a careful client
//! (`common::Learner`): it numbers what it says and sends again what was not acknowledged.
//! Nothing anyone said may be lost or doubled, and nobody may be left connected and deaf.

use e2e as common;

use common::{Learner, RedisServer, learners_on, processes, processes_with};
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
    // More than a welcome's snapshot carries (`welcome_chat_len`, 50): the learners on the other
    // node get every line, not the newest 50.
    for round in 0..10 {
        let during = say(&mut learners, &format!("outage {round}"));
        for (learner, text) in learners.iter_mut().zip(&during) {
            learner.say(text).await;
        }
        pump_all(&mut learners, Duration::from_millis(50)).await;
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

/// The node's `room_log_appends_waiting`.
async fn appends_waiting(node: &common::NodeProcess) -> usize {
    let (_, metrics) = node.get("/metrics").await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("room_log_appends_waiting "))
        .and_then(|n| n.trim().parse().ok())
        .expect("the node exports room_log_appends_waiting")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_redis_stalls_holds_a_bounded_queue_and_loses_no_word() {
    // At most 300 entries wait for Redis; every line fits the welcome a resync gives.
    const MAX: usize = 300;
    let mut redis = RedisServer::start();
    let dir = scratch_dir("bounded");
    let nodes = processes_with(
        &redis,
        &dir,
        2,
        &format!(
            "[room]\nseat_grace_secs = 60\nchat_burst = 1000000\nhistory_len = 1000\nwelcome_chat_len = 1000\nappends_waiting_max = {MAX}\n[limits]\ncommands_per_sec = 100000\ncommand_burst = 100000\ndrain_window_ms = 300\ndrain_spread_ms = 1000"
        ),
    );
    // The speaker on the first node, a listener on the second.
    let mut learners = learners_on(&nodes, 2).await;
    redis.freeze();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !learners[0].saw_degraded {
        assert!(Instant::now() < deadline, "the node noticed Redis stalled");
        pump_all(&mut learners, Duration::from_millis(200)).await;
    }
    // Running on alone, the node acknowledges what its people say and queues it for Redis. The
    // speaker talks as a client does (at most 32 lines unacknowledged) until the node stops
    // taking its lines: MAX entries wait, and the speaker's next 32 lines wait unanswered.
    let mut said: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the node's queue filled");
        let speaker = &mut learners[0];
        while speaker.pending.len() < 32 {
            let text = format!("stalled {}", said.len());
            speaker.say(&text).await;
            said.push(text);
        }
        speaker.pump(Duration::from_millis(50)).await;
        let waiting = appends_waiting(&nodes[0]).await;
        // One input may make two entries (a disconnect after its presses): a little slack.
        assert!(waiting <= MAX + 2, "{waiting} entries wait for Redis");
        assert!(
            said.len() <= MAX + 100,
            "the node took {} lines with Redis stalled",
            said.len()
        );
        if waiting >= MAX && learners[0].pending.len() == 32 {
            break;
        }
    }
    redis.thaw();
    // The queue drains, the node returns to the shared room, and both learners have every
    // line exactly once, the speaker's 32 waiting lines too.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        pump_all(&mut learners, Duration::from_millis(300)).await;
        let done = learners.iter().all(|l| {
            let mut heard = std::collections::HashMap::<&str, usize>::new();
            for (_, text) in &l.heard {
                *heard.entry(text.as_str()).or_default() += 1;
            }
            l.pending.is_empty() && said.iter().all(|t| heard.get(t.as_str()) == Some(&1))
        });
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "every line reached everyone once: pending {:?}, heard {} and {} of {}",
            learners.iter().map(|l| l.pending.len()).collect::<Vec<_>>(),
            learners[0].heard.len(),
            learners[1].heard.len(),
            said.len()
        );
    }
    // The queue emptied (a tick may be on its way at any moment: waited for, bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    while appends_waiting(&nodes[0]).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the node's queue for Redis emptied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
