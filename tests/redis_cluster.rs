//! Nodes on a Redis Cluster: lectures spread over its shards (each lecture's keys in one slot),
//! node-wide keys anywhere, and a shard whose master stalls or dies handing its lectures to its
//! replica with every word kept.

use e2e as common;

use common::{
    LECTURE, Learner, RedisCluster, WAIT, cluster_ticket, cluster_ticket_for, learners_on,
    lecture_table, processes_with, said_in, talk_round, until_everyone_heard_once,
};
use protocol::{ClientMsg, Role, Seat};

/// A second lecture; its id hashes to another shard than [`LECTURE`]'s (the test checks).
const LECTURE_B: &str = "lec-b";

fn ticket_b(user: &str, nickname: &str, role: Role) -> String {
    cluster_ticket_for(LECTURE_B, user, nickname, role)
}

fn log_key(lecture: &str) -> String {
    format!("lecture:{{{lecture}}}:log")
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("room-server-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    dir
}

/// Seats held a minute (everyone is back well within it), chat unthrottled.
const ROOM: &str = "[room]\nseat_grace_secs = 60\nchat_burst = 1000000\n";

/// Each learner takes seat `i` of the 5×5 grid.
async fn sit(learners: &mut [Learner]) {
    for (i, l) in learners.iter_mut().enumerate() {
        l.send(&ClientMsg::TakeSeat { seat: seat(i) }).await;
    }
}

fn seat(i: usize) -> Seat {
    Seat::new(
        u16::try_from(i / 5).expect("small"),
        u16::try_from(i % 5).expect("small"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_lectures_on_different_shards_run_on_two_nodes() {
    let cluster = RedisCluster::start(3, 0);
    let shard_a = cluster.master_of(&log_key(LECTURE)).expect("a master");
    let shard_b = cluster.master_of(&log_key(LECTURE_B)).expect("a master");
    assert_ne!(
        shard_a, shard_b,
        "the two lectures live on different shards"
    );
    let dir = temp_dir("redis-cluster-two");
    let nodes = processes_with(
        &cluster,
        &dir,
        2,
        &format!("{ROOM}{}", lecture_table(LECTURE_B)),
    );

    let mut a = learners_on(&nodes, 4).await;
    let mut b = Vec::new();
    for i in 0..4 {
        let urls = vec![
            nodes[i % 2].url(LECTURE_B),
            nodes[(i + 1) % 2].url(LECTURE_B),
        ];
        b.push(Learner::enter(&format!("b{i}"), &format!("nb{i}"), urls, ticket_b).await);
    }
    sit(&mut a).await;
    sit(&mut b).await;
    talk_round(&mut a, "lecture a").await;
    talk_round(&mut b, "lecture b").await;
    until_everyone_heard_once(&mut a, &said_in(&["lecture a"], 4), WAIT).await;
    until_everyone_heard_once(&mut b, &said_in(&["lecture b"], 4), WAIT).await;
    // Each lecture's chat stays in its lecture…
    for l in &a {
        assert!(said_in(&["lecture b"], 4).iter().all(|t| l.count(t) == 0));
    }
    for l in &b {
        assert!(said_in(&["lecture a"], 4).iter().all(|t| l.count(t) == 0));
    }
    // …and its log on its own shard.
    assert!(cluster.servers[shard_a].stream_len(&log_key(LECTURE)) > 0);
    assert!(cluster.servers[shard_b].stream_len(&log_key(LECTURE_B)) > 0);
    // The node-wide keys work in the cluster: both nodes' heartbeats are kept.
    let nodes_key = cluster.master_of("room:nodes").expect("a master");
    assert_eq!(
        cluster.servers[nodes_key].number(&["ZCARD", "room:nodes"]),
        2
    );
    // Every seat is shown on either node, each in its own lecture.
    for (lecture, ticket) in [
        (LECTURE, cluster_ticket as fn(&str, &str, Role) -> String),
        (LECTURE_B, ticket_b),
    ] {
        for node in &nodes {
            let (_, welcome) = common::hello_at(
                &node.url(lecture),
                ticket(&format!("t-{}", node.addr.port()), "先生", Role::Instructor),
                None,
            )
            .await;
            let seats: Vec<Seat> = welcome.seats.iter().flatten().map(|s| s.seat).collect();
            assert_eq!(seats.len(), 4, "{lecture}: {seats:?}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_whose_master_stalls_then_dies_keeps_its_lecture_through_its_replica() {
    let mut cluster = RedisCluster::start(3, 1);
    let key = log_key(LECTURE);
    let first = cluster.master_of(&key).expect("a master");
    assert_ne!(
        cluster.master_of("room:nodes"),
        Some(first),
        "the heartbeats live on another shard: the nodes stay joined (not degraded) throughout"
    );
    let dir = temp_dir("redis-cluster-failover");
    let nodes = processes_with(&cluster, &dir, 2, ROOM);
    let mut learners = learners_on(&nodes, 4).await;
    sit(&mut learners).await;
    talk_round(&mut learners, "before").await;
    until_everyone_heard_once(&mut learners, &said_in(&["before"], 4), WAIT).await;

    // The master freezes (SIGSTOP) for longer than the cluster's node timeout, while learners
    // talk: its replica is promoted, and what was said in the meantime reaches everyone once.
    cluster.servers[first].freeze();
    talk_round(&mut learners, "stalled").await;
    let second = cluster.wait_failover(&key, first);
    talk_round(&mut learners, "after failover").await;
    until_everyone_heard_once(
        &mut learners,
        &said_in(&["before", "stalled", "after failover"], 4),
        WAIT * 3,
    )
    .await;

    // The old master comes back (SIGCONT) as the new master's replica…
    cluster.servers[first].thaw();
    let deadline = std::time::Instant::now() + WAIT * 3;
    while !cluster.settled(3) {
        assert!(
            std::time::Instant::now() < deadline,
            "the old master did not rejoin"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // …and once it holds everything, the new master dies (kill -9): the old one takes over again.
    assert!(cluster.servers[second].number(&["WAIT", "1", "5000"]) >= 1);
    cluster.servers[second].kill();
    talk_round(&mut learners, "killed").await;
    let third = cluster.wait_failover(&key, second);
    assert_eq!(
        third, first,
        "the first master, now a replica, took over again"
    );
    talk_round(&mut learners, "after the kill").await;
    until_everyone_heard_once(
        &mut learners,
        &said_in(
            &[
                "before",
                "stalled",
                "after failover",
                "killed",
                "after the kill",
            ],
            4,
        ),
        WAIT * 3,
    )
    .await;

    // Nothing refused, nobody degraded, every seat kept.
    for (i, l) in learners.iter().enumerate() {
        assert!(l.refused.is_empty(), "{}: refused {:?}", l.user, l.refused);
        assert!(!l.saw_degraded, "{} was told the node was cut off", l.user);
        assert_eq!(l.seat, Some(seat(i)), "{} keeps its seat", l.user);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
