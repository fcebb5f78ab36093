//! One lecture spread over several nodes sharing Redis: one chat order, one occupant per seat,
//! resume on another node, the gate's revocations reaching every node.

use e2e as common;

use common::{
    Door, Got, LECTURE, NodeProcess, RedisServer, WAIT, a_dropped_learner_returns, a_learner_drops,
    chat_of, everyone_sees_one_chat_order, learners_on, more_processes, processes, processes_with,
    race_for_seat, said_in, talk_round, texts, until_everyone_heard_once,
};
use futures_util::future::join_all;
use protocol::server::{ChatEvent, Replay};
use protocol::{ChatOffset, ClientMsg, CloseCode, ResumeFrom, Role, Seat, ServerMsg};

/// Three `room-server` processes on one Redis, sharing one database (as they would share
/// PostgreSQL), the lecture in their config.
async fn cluster(redis: &RedisServer) -> Vec<NodeProcess> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("room-server-cluster-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    processes(redis, &dir, 3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_order_is_identical_for_every_client_on_every_node() {
    let redis = RedisServer::start();
    let nodes = cluster(&redis).await;
    everyone_sees_one_chat_order(&nodes, 9, 10).await;
    // Every node timed its heartbeats to Redis and its appends to the lecture's stream.
    for node in &nodes {
        for family in ["room_redis_round_trip_seconds", "room_log_append_seconds"] {
            node.wait_observed(family).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learners_on_different_nodes_racing_for_a_seat_end_with_one_occupant() {
    let redis = RedisServer::start();
    let nodes = cluster(&redis).await;
    let mut learners = Vec::new();
    for i in 0..30 {
        let (client, welcome) = nodes[i % 3]
            .enter(&format!("u{i}"), &format!("n{i}"), Role::Learner)
            .await;
        learners.push((welcome.you.user, client));
    }
    let seat = Seat::new(0, 0);
    // Each learner learns the outcome: a seat_taken error, or its own seat.
    let won = race_for_seat(&mut learners, seat).await;
    assert_eq!(
        won.iter().filter(|w| **w).count(),
        1,
        "exactly one winner across the nodes"
    );
    for node in &nodes {
        let (_, welcome) = node
            .enter(
                &format!("observer-{}", node.addr.port()),
                "obs",
                Role::Learner,
            )
            .await;
        assert_eq!(
            welcome.occupancy.occupied.count(),
            1,
            "every node shows the one seat taken"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_resumes_on_another_node_with_the_seat_and_every_missed_message() {
    let redis = RedisServer::start();
    let nodes = cluster(&redis).await;
    let (first, back) =
        a_dropped_learner_returns(&nodes[0], &nodes[1], &nodes[2], Seat::new(2, 3), 4).await;
    assert_eq!(back.epoch, first.epoch, "one epoch across the nodes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_and_a_removal_reach_a_learner_on_another_node() {
    let redis = RedisServer::start();
    let nodes = cluster(&redis).await;
    let (mut sensei, _) = nodes[0].enter("t1", "先生", Role::Instructor).await;
    let (mut taro, taro_in) = nodes[1].enter("u1", "taro", Role::Learner).await;
    sensei
        .send(&ClientMsg::CallOn {
            nickname: Some("taro".into()),
            seat: None,
            user: None,
        })
        .await;
    taro.recv_until(|m| matches!(m, ServerMsg::CalledOnYou { .. }).then_some(()))
        .await;
    sensei
        .send(&ClientMsg::Remove {
            user: taro_in.you.user.clone(),
            allow_return: false,
        })
        .await;
    assert_eq!(taro.close_code().await, Some(CloseCode::Banned.code()));
    let mut again = nodes[2].connect(protocol::Codec::MsgPack).await;
    again
        .send(&ClientMsg::Hello {
            ticket: nodes[2].ticket("u1", "taro", Role::Learner),
            resume: None,
        })
        .await;
    assert_eq!(
        again.close_code().await,
        Some(CloseCode::Banned.code()),
        "banned on every node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_s_learners_come_back_through_the_others_with_their_seats_and_nothing_lost() {
    let redis = RedisServer::start();
    let dir = std::env::temp_dir().join(format!("room-server-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let mut nodes = processes(&redis, &dir, 3);
    let (mut taro, welcome) = nodes[0].enter("taro", "taro", Role::Learner).await;
    let (mut hanako, _) = nodes[0].enter("hanako", "hanako", Role::Learner).await;
    let (mut jiro, jiro_in) = nodes[1].enter("jiro", "jiro", Role::Learner).await;
    let number = |seat: Seat| seat.number(jiro_in.lecture.cols);
    taro.send(&ClientMsg::TakeSeat {
        seat: Seat::new(1, 1),
    })
    .await;
    hanako
        .send(&ClientMsg::TakeSeat {
            seat: Seat::new(2, 2),
        })
        .await;
    // Both seats are taken (in the shared log) before the node dies: what a node had not yet
    // handed to Redis dies with it, as with any server.
    let both = |m: &ServerMsg| match m {
        ServerMsg::Update(u) => Some(u.taken.len()),
        _ => None,
    };
    let mut taken = 0;
    while taken < 2 {
        taken += jiro.recv_until(both).await;
    }
    jiro.send(&ClientMsg::Chat {
        text: "before".into(),
        question: false,
    })
    .await;
    let seen = taro.recv_until(chat_of).await.offset();
    hanako.recv_until(chat_of).await;

    nodes[0].kill();
    assert!(
        matches!(taro.next().await, Got::Closed(_)),
        "the connection broke with its node"
    );
    for i in 0..3 {
        jiro.send(&ClientMsg::Chat {
            text: format!("while away {i}"),
            question: false,
        })
        .await;
    }
    // All three are in the shared log before taro comes back.
    let mut heard = 0;
    while heard < 3 {
        if let ChatEvent::Message(m) = jiro.recv_until(chat_of).await
            && m.text.starts_with("while away")
        {
            heard += 1;
        }
    }

    let resume = ResumeFrom {
        epoch: welcome.epoch,
        offset: seen,
    };
    let (mut back, w) = nodes[2]
        .enter_resuming("taro", "taro", Role::Learner, Some(resume))
        .await;
    assert_eq!(
        w.your_seat,
        Some(Seat::new(1, 1)),
        "the seat survived its node"
    );
    assert_eq!(w.replay, Replay::Missed);
    let offsets: Vec<u64> = w.chat.iter().map(|e| e.offset().0).collect();
    let expected: Vec<u64> = (seen.0 + 1..=w.last_offset.0).collect();
    assert_eq!(offsets, expected, "every missed event once, in order");
    let texts = texts(&w.chat);
    assert_eq!(
        texts,
        (0..3)
            .map(|i| format!("while away {i}"))
            .collect::<Vec<_>>()
    );
    jiro.send(&ClientMsg::Chat {
        text: "after".into(),
        question: false,
    })
    .await;
    assert_eq!(
        back.recv_until(chat_of).await.offset(),
        w.last_offset.next(),
        "no gap, no duplicate"
    );

    // Hanako never comes back: once her node is found dead and the grace passes, a survivor
    // frees her seat for everyone.
    let deadline = tokio::time::Instant::now() + WAIT * 3;
    let mut freed = false;
    while !freed && tokio::time::Instant::now() < deadline {
        if let Some(Got::Msg(ServerMsg::Update(u))) = jiro
            .next_within(deadline - tokio::time::Instant::now())
            .await
        {
            freed = u.freed.contains(&number(Seat::new(2, 2)));
        }
    }
    assert!(
        freed,
        "the seat of a learner who did not return was released"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_redis_restart_chat_goes_on_per_node_and_then_everything_is_shared_once() {
    let mut redis = RedisServer::start();
    let nodes = cluster(&redis).await;
    let (mut taro, _) = nodes[0].enter("u1", "taro", Role::Learner).await;
    let (mut kenji, _) = nodes[0].enter("u4", "kenji", Role::Learner).await;
    let (mut hanako, _) = nodes[1].enter("u2", "hanako", Role::Learner).await;
    hanako
        .send(&ClientMsg::Chat {
            text: "before".into(),
            question: false,
        })
        .await;
    assert_eq!(taro.recv_until(chat_of).await.offset(), ChatOffset(1));
    kenji.recv_until(chat_of).await;

    redis.kill();
    // The node notices, tells its people, gives them the room to go on with, and says so in
    // /readyz (still serving them).
    taro.recv_until(|m| matches!(m, ServerMsg::Service { degraded: true }).then_some(()))
        .await;
    let fork = taro
        .recv_until(|m| match m {
            ServerMsg::Welcome(w) => Some(w.clone()),
            _ => None,
        })
        .await;
    let (status, body) = nodes[0].get("/readyz").await;
    assert_eq!(status, 200);
    assert!(body.contains("degraded"), "{body}");
    let (_, metrics) = nodes[0].get("/metrics").await;
    assert!(metrics.contains("\nroom_node_degraded 1\n"), "{metrics}");
    hanako
        .recv_until(|m| matches!(m, ServerMsg::Service { degraded: true }).then_some(()))
        .await;

    // Chat goes on among the people of one node.
    taro.send(&ClientMsg::Chat {
        text: "local".into(),
        question: false,
    })
    .await;
    let heard = kenji
        .recv_until(|m| match chat_of(m) {
            Some(ChatEvent::Message(m)) if m.text == "local" => Some(()),
            _ => None,
        })
        .await;
    assert_eq!(heard, ());
    for i in 0..3 {
        hanako
            .send(&ClientMsg::Chat {
                text: format!("during {i}"),
                question: false,
            })
            .await;
    }
    taro.send(&ClientMsg::TakeSeat {
        seat: Seat::new(4, 4),
    })
    .await;

    redis.restart();
    // Back to the shared room: every node's people resynchronise.
    assert_eq!(
        taro.close_code().await,
        Some(CloseCode::ResyncRequired.code())
    );
    assert_eq!(
        hanako.close_code().await,
        Some(CloseCode::ResyncRequired.code())
    );
    let resume = ResumeFrom {
        epoch: fork.epoch,
        offset: fork.last_offset,
    };
    // A node asks its people to resync only once its queue is in the shared log, and a join is
    // applied after everything before it: the rejoin sees every word of the outage.
    let (_, w) = nodes[2]
        .enter_resuming("u1", "taro", Role::Learner, Some(resume))
        .await;
    assert_eq!(
        w.replay,
        Replay::Snapshot,
        "a resume from the local run gets the shared snapshot"
    );
    assert_eq!(
        w.your_seat,
        Some(Seat::new(4, 4)),
        "the seat taken meanwhile, once"
    );
    let mut texts = texts(&w.chat);
    texts.sort();
    assert_eq!(
        texts,
        ["before", "during 0", "during 1", "during 2", "local"],
        "each once"
    );
    let offsets: Vec<u64> = w.chat.iter().map(|e| e.offset().0).collect();
    assert_eq!(offsets, (1..=5).collect::<Vec<_>>(), "gapless");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactions_from_every_node_add_up_exactly_for_instructors_on_any_node() {
    let redis = RedisServer::start();
    let nodes = cluster(&redis).await;
    let (mut sensei, _) = nodes[0].enter("t1", "先生", Role::Instructor).await;
    let (mut assistant, _) = nodes[2].enter("m1", "助手", Role::Moderator).await;
    let mut learners = Vec::new();
    for i in 0..60 {
        learners.push(
            nodes[i % 3]
                .enter(&format!("u{i}"), &format!("n{i}"), Role::Learner)
                .await
                .0,
        );
    }
    join_all(learners.iter_mut().map(|c| async move {
        for _ in 0..3 {
            c.send(&ClientMsg::React {
                emotion: "good".into(),
            })
            .await;
        }
    }))
    .await;
    for staff in [&mut sensei, &mut assistant] {
        let mut total = 0;
        while total < 180 {
            if let ServerMsg::Meter(m) = staff.recv().await {
                total = m.totals.values().sum::<u64>();
            }
        }
        assert_eq!(total, 180, "exact, not more");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upvotes_and_raised_hands_from_every_node_are_exact_and_in_order_on_any_node() {
    let redis = RedisServer::start();
    let nodes = cluster(&redis).await;
    let (mut sensei, _) = nodes[0].enter("t1", "先生", Role::Instructor).await;
    let (mut asker, _) = nodes[1].enter("asker", "asker", Role::Learner).await;
    asker
        .send(&ClientMsg::Chat {
            text: "所有権とは?".into(),
            question: true,
        })
        .await;
    let question = asker
        .recv_until(|m| match chat_of(m) {
            Some(ChatEvent::Message(q)) if q.question => Some(q.offset),
            _ => None,
        })
        .await;
    let mut learners = Vec::new();
    for i in 0..12 {
        let (client, welcome) = nodes[i % 3]
            .enter(&format!("u{i}"), &format!("n{i}"), Role::Learner)
            .await;
        learners.push((welcome.you.user, client));
    }
    // Every learner votes twice, at once, from three nodes: one vote each counts.
    let refused = join_all(learners.iter_mut().map(|(_, c)| async move {
        for _ in 0..2 {
            c.send(&ClientMsg::Upvote { offset: question }).await;
        }
        c.recv_until(|m| match m {
            ServerMsg::Error { code, .. } => Some(*code),
            _ => None,
        })
        .await
    }))
    .await;
    assert!(
        refused
            .iter()
            .all(|c| *c == protocol::ErrorCode::AlreadyVoted)
    );
    for client in [&mut sensei, &mut asker] {
        client
            .recv_until(|m| match m {
                ServerMsg::Update(u) => u
                    .votes
                    .iter()
                    .any(|v| v.offset == question && v.votes == 12)
                    .then_some(()),
                _ => None,
            })
            .await;
    }
    // Hands go up one after another, on alternating nodes: the queue keeps that order.
    for (_, client) in learners.iter_mut().take(6) {
        client.send(&ClientMsg::RaiseHand).await;
        client
            .recv_until(|m| matches!(m, ServerMsg::YourHand { raised_at: Some(_) }).then_some(()))
            .await;
    }
    let order: Vec<_> = learners.iter().take(6).map(|(u, _)| u.clone()).collect();
    for node in &nodes {
        let (_, welcome) = node
            .enter(
                &format!("staff-{}", node.addr.port()),
                "助手",
                Role::Moderator,
            )
            .await;
        let queue: Vec<_> = welcome
            .hands
            .iter()
            .flatten()
            .map(|h| h.user.clone())
            .collect();
        assert_eq!(queue, order, "every node has the one queue");
        assert_eq!(
            welcome.votes.first().map(|v| v.votes),
            Some(12),
            "exact on every node"
        );
    }
}

/// Entries a quiet lecture adds to its log in `quiet` while its `learners` do nothing.
async fn quiet_entries(
    redis: &RedisServer,
    learners: &mut [common::Learner],
    quiet: std::time::Duration,
) -> u64 {
    let key = format!("lecture:{{{LECTURE}}}:log");
    let before = redis.stream_len(&key);
    join_all(learners.iter_mut().map(|l| l.pump(quiet))).await;
    redis.stream_len(&key) - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_lecture_costs_the_same_entries_on_one_three_or_six_nodes() {
    // The room's period is 250 ms: 16 ticks in 4 s from one time keeper, however many nodes
    // hold the lecture; were every node ticking, six nodes would add 96.
    let quiet = std::time::Duration::from_secs(4);
    let mut rates = Vec::new();
    for n in [1, 3, 6] {
        let redis = RedisServer::start();
        let dir =
            std::env::temp_dir().join(format!("room-server-quiet-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let nodes = processes(&redis, &dir, n);
        let mut learners = learners_on(&nodes, 2 * n).await;
        join_all(
            learners
                .iter_mut()
                .map(|l| l.pump(std::time::Duration::from_secs(1))),
        )
        .await;
        let added = quiet_entries(&redis, &mut learners, quiet).await;
        rates.push((n, added as f64 / quiet.as_secs_f64()));
        assert!(added <= 24, "{added} entries in a quiet 4 s on {n} nodes");
        assert!(
            added >= 8,
            "{added} entries in a quiet 4 s on {n} nodes: the lecture's time stopped"
        );
    }
    // The figures docs/many-nodes.md quotes.
    for (n, rate) in rates {
        eprintln!("quiet lecture on {n} node(s): {rate:.1} log entries/s");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_lecture_keeps_its_time_when_the_time_keeper_freezes() {
    let redis = RedisServer::start();
    let nodes = cluster(&redis).await;
    let key = format!("lecture:{{{LECTURE}}}:log");
    let quiet = std::time::Duration::from_secs(4);
    // Learners on every node, then nobody does anything.
    let mut learners = learners_on(&nodes, 6).await;
    join_all(
        learners
            .iter_mut()
            .map(|l| l.pump(std::time::Duration::from_secs(1))),
    )
    .await;
    // The keeper (the first node: the lowest number) freezes: another node keeps the time.
    nodes[0].signal("STOP");
    let before = redis.stream_len(&key);
    // The frozen node's learners (every third) are not read meanwhile.
    join_all(
        learners
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| i % 3 != 0)
            .map(|(_, l)| l.pump(quiet)),
    )
    .await;
    let added = redis.stream_len(&key) - before;
    nodes[0].signal("CONT");
    assert!(
        (5..=24).contains(&added),
        "{added} entries in 4 s with the keeper frozen: a tick every two periods or more"
    );
}

/// Waits (bounded) until `done` holds, checking every 50 ms.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_added_to_a_long_lecture_starts_from_its_snapshot_and_resumes_a_learner_exactly() {
    let redis = RedisServer::start();
    let dir = std::env::temp_dir().join(format!("room-server-snapshot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    // A snapshot every 100 entries: 300 lines make several, and the log is trimmed behind them.
    let nodes = processes_with(
        &redis,
        &dir,
        2,
        "[room]\nseat_grace_secs = 120\nchat_burst = 1000000\nsnapshot_every_entries = 100\nsnapshot_every_secs = 3600\n[limits]\ncommands_per_sec = 10000\ncommand_burst = 10000\ndrain_window_ms = 300\ndrain_spread_ms = 1000",
    );
    let missed = 300u64;
    let away = a_learner_drops(&nodes[0], &nodes[1], Seat::new(2, 3), missed).await;
    // Snapshots were written, and the log no longer holds the lecture's start.
    let log = format!("lecture:{{{LECTURE}}}:log");
    let count = format!("lecture:{{{LECTURE}}}:count");
    let snapshot = format!("lecture:{{{LECTURE}}}:snapshot:1");
    until("a snapshot of the last hundred entries", || {
        redis.number(&["HGET", &snapshot, "n"]) + 200 >= redis.number(&["GET", &count])
    })
    .await;
    let entries = redis.number(&["GET", &count]);
    let kept = redis.stream_len(&log);
    assert!(
        kept < entries - 100,
        "the log was trimmed behind the snapshots: {kept} of {entries} entries kept"
    );

    // A node added now starts from the snapshot; Taro comes back through it.
    let late = more_processes(&redis, &dir, 1).pop().expect("a node");
    away.returns(&late).await;
    // Someone new on the late node sees the room as the others do.
    let (_obs, fresh) = late.enter("u3", "obs", Role::Learner).await;
    assert_eq!(fresh.last_offset, ChatOffset(missed + 2));
    assert_eq!(fresh.occupancy.occupied.count(), 1, "the one seat taken");
    let (_, metrics) = late.get("/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("room_snapshot_restores_total ") && !l.ends_with(" 0")),
        "the late node started from a snapshot"
    );
}

/// A benchmark, run on demand (release build, quiet machine):
/// `cargo test --release -p e2e --test cluster -- --ignored --nocapture opening`.
/// A lecture's log grows to `entries` entries (the instructor chatting as fast as the node
/// appends); then a node added to it lets a learner in: the time from the learner's `hello` to
/// its welcome on the new node (which opens the lecture from the snapshot and the entries after
/// it), for a short and a long log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: minutes of appends; run on demand"]
async fn opening_a_lecture_costs_the_same_after_a_hundred_thousand_or_a_million_entries() {
    let mut figures = Vec::new();
    for entries in [100_000u64, 1_000_000] {
        let redis = RedisServer::start();
        let dir =
            std::env::temp_dir().join(format!("room-server-open-{}-{entries}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let first = processes_with(
            &redis,
            &dir,
            1,
            "[limits]\ncommands_per_sec = 1000000\ncommand_burst = 1000000\noutbound_queue = 1000000\ndrain_window_ms = 300\ndrain_spread_ms = 1000",
        );
        let (mut teacher, _) = first[0].enter("t", "先生", Role::Instructor).await;
        let count = format!("lecture:{{{LECTURE}}}:count");
        let started = std::time::Instant::now();
        let mut sent = 0u64;
        while redis.number(&["GET", &count]) < entries {
            for _ in 0..5_000 {
                teacher
                    .send(&ClientMsg::Chat {
                        text: format!("line {sent}"),
                        question: false,
                    })
                    .await;
                sent += 1;
            }
            // Keep reading, so the node never takes the instructor for a slow consumer.
            while let Some(Got::Msg(_)) = teacher
                .next_within(std::time::Duration::from_millis(1))
                .await
            {}
        }
        let filled = started.elapsed();
        let snapshot = format!("lecture:{{{LECTURE}}}:snapshot:1");
        let late = more_processes(&redis, &dir, 1).pop().expect("a node");
        let hello = std::time::Instant::now();
        let (_learner, welcome) = late.enter("u1", "taro", Role::Learner).await;
        let open = hello.elapsed();
        assert!(welcome.last_offset.0 > 0);
        let kept = redis.stream_len(&format!("lecture:{{{LECTURE}}}:log"));
        let snapshot_n = redis.number(&["HGET", &snapshot, "n"]);
        eprintln!(
            "{entries} entries (written in {filled:?}): the stream keeps {kept}, the snapshot is of entry {snapshot_n}; \
             a node added then welcomed its first learner in {open:?}"
        );
        figures.push(open);
    }
    assert!(figures.iter().all(|t| t.as_secs_f64() < 2.0), "{figures:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_added_drained_and_killed_mid_lecture_lose_no_word_no_seat_and_no_press() {
    let redis = RedisServer::start();
    let dir = std::env::temp_dir().join(format!("room-server-four-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    // Seats held a minute: every learner is back well within it.
    let mut nodes = processes_with(
        &redis,
        &dir,
        3,
        "[room]\nseat_grace_secs = 60\nchat_burst = 1000000\nreaction_burst = 1000\n[limits]\ndrain_window_ms = 300\ndrain_spread_ms = 1000",
    );
    // Nine learners, three on each node; each sits in a seat of its own and presses once.
    let mut learners = learners_on(&nodes, 9).await;
    for (i, l) in learners.iter_mut().enumerate() {
        let seat = Seat::new(
            u16::try_from(i / 5).expect("small"),
            u16::try_from(i % 5).expect("small"),
        );
        l.send(&ClientMsg::TakeSeat { seat }).await;
        l.send(&ClientMsg::React {
            emotion: "good".into(),
        })
        .await;
    }
    talk_round(&mut learners, "three nodes").await;

    // A fourth node joins; the load balancer moves node 0's learners to it.
    let fourth = more_processes(&redis, &dir, 1).pop().expect("a node");
    let d = fourth.url(LECTURE);
    for (i, l) in learners.iter_mut().enumerate() {
        let stay = [nodes[1].url(LECTURE), nodes[2].url(LECTURE)];
        l.come_back_through(match i % 3 {
            0 => vec![d.clone()],
            1 => vec![stay[0].clone(), d.clone()],
            _ => vec![stay[1].clone(), d.clone()],
        });
        if i % 3 == 0 {
            l.drop_connection();
        }
    }
    talk_round(&mut learners, "four nodes").await;

    // Node 1 drains (its learners come back through the fourth), then node 2 dies (kill -9),
    // while everyone goes on talking.
    nodes[1].signal("TERM");
    talk_round(&mut learners, "draining").await;
    nodes[2].kill();
    talk_round(&mut learners, "killed").await;
    // Until everything said is acknowledged and heard by everyone (bounded).
    let said = said_in(&["three nodes", "four nodes", "draining", "killed"], 9);
    until_everyone_heard_once(&mut learners, &said, WAIT * 3).await;
    // Everyone is connected again (they heard it all): each presses once more.
    for l in &mut learners {
        l.send(&ClientMsg::React {
            emotion: "good".into(),
        })
        .await;
    }
    // Nobody heard anything twice (each learner checks offsets as it goes: no gap, no repeat).
    for l in &learners {
        assert!(l.refused.is_empty(), "{}: refused {:?}", l.user, l.refused);
    }
    // Every seat kept, as an instructor entering now sees it; and every press counted once.
    let (mut teacher, welcome) = fourth.enter("t", "先生", Role::Instructor).await;
    let seats: std::collections::BTreeSet<Seat> =
        welcome.seats.iter().flatten().map(|s| s.seat).collect();
    for (i, l) in learners.iter().enumerate() {
        let seat = Seat::new(
            u16::try_from(i / 5).expect("small"),
            u16::try_from(i % 5).expect("small"),
        );
        assert_eq!(l.seat, Some(seat), "{} keeps its seat", l.user);
        assert!(seats.contains(&seat), "the room shows {}'s seat", l.user);
    }
    assert_eq!(seats.len(), 9);
    for l in &mut learners {
        l.send(&ClientMsg::React {
            emotion: "i_see".into(),
        })
        .await;
    }
    let totals = teacher
        .recv_until(|m| match m {
            ServerMsg::Meter(m) if m.totals.get(&"i_see".into()).copied() == Some(9) => {
                Some(m.totals.clone())
            }
            _ => None,
        })
        .await;
    assert_eq!(
        totals.get(&"good".into()).copied(),
        Some(18),
        "every press once: {totals:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
