//! The room node end to end: a real server on a loopback port, real WebSocket clients.

use e2e as common;

use common::{
    Client, Door, Got, LECTURE, TestNode, WAIT, a_dropped_learner_returns, chat_of,
    everyone_sees_one_chat_order, race_for_seat,
};
use futures_util::future::join_all;
use protocol::server::{ChatEvent, Phase, Replay};
use protocol::{ClientMsg, CloseCode, Codec, ErrorCode, Role, Seat, ServerMsg};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{self, Message};

fn error_of(msg: &ServerMsg) -> Option<ErrorCode> {
    match msg {
        ServerMsg::Error { code, .. } => Some(*code),
        _ => None,
    }
}

async fn expect_refused(node: &TestNode, ticket: String, code: CloseCode) {
    let mut client = node.connect(Codec::MsgPack).await;
    client
        .send(&ClientMsg::Hello {
            ticket,
            resume: None,
        })
        .await;
    assert_eq!(client.close_code().await, Some(code.code()), "{code:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_with_a_valid_ticket_enters_and_gets_the_snapshot_in_either_encoding() {
    let node = TestNode::start().await;
    let (mut sensei, _) = node.enter("t1", "先生", Role::Instructor).await;
    sensei
        .send(&ClientMsg::Announce {
            text: "ようこそ".into(),
        })
        .await;
    sensei
        .send(&ClientMsg::Chat {
            text: "はじめます".into(),
            question: false,
        })
        .await;
    sensei.recv_until(chat_of).await;

    let (_taro, welcome) = node.enter("u1", "taro", Role::Learner).await;
    assert_eq!(welcome.lecture.id.as_str(), LECTURE);
    assert_eq!(welcome.phase, Phase::DoorsOpen);
    assert_eq!(welcome.you.nickname.as_str(), "taro");
    assert_eq!(welcome.replay, Replay::Snapshot);
    assert_eq!(welcome.chat.len(), 1);
    assert_eq!(
        welcome.announcement.map(|a| a.text),
        Some("ようこそ".into())
    );
    assert_eq!(welcome.lecture.emotions.len(), 5);

    let mut json = node.connect(Codec::Json).await;
    json.send(&ClientMsg::Hello {
        ticket: node.ticket("u2", "hanako", Role::Learner),
        resume: None,
    })
    .await;
    let w = json.welcome().await;
    assert_eq!((w.you.nickname.as_str(), w.present), ("hanako", 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_expired_and_other_lecture_tickets_are_refused_with_terminal_codes() {
    let node = TestNode::start().await;
    let good = node.ticket("u1", "taro", Role::Learner);
    let (signed, _) = good.rsplit_once('.').expect("signed");
    expect_refused(&node, format!("{signed}.AAAA"), CloseCode::TicketInvalid).await;
    expect_refused(&node, "not a ticket".into(), CloseCode::TicketInvalid).await;

    let mut expired = node.claims("u1", "taro", Role::Learner);
    expired.exp = expired.iat - 1;
    expect_refused(&node, node.key.mint(&expired), CloseCode::TicketExpired).await;

    let mut elsewhere = node.claims("u1", "taro", Role::Learner);
    elsewhere.lec = "another-lecture".into();
    expect_refused(
        &node,
        node.key.mint(&elsewhere),
        CloseCode::TicketWrongLecture,
    )
    .await;

    for code in [
        CloseCode::TicketInvalid,
        CloseCode::TicketExpired,
        CloseCode::TicketWrongLecture,
    ] {
        assert!(!code.is_reconnect());
    }
    // The node is unharmed.
    node.enter("u1", "taro", Role::Learner).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_before_hello_or_no_hello_at_all_is_refused() {
    let node = TestNode::start_with(|c| c.limits.hello_timeout_ms = 300).await;
    let mut early = node.connect(Codec::MsgPack).await;
    early
        .send(&ClientMsg::Chat {
            text: "hi".into(),
            question: false,
        })
        .await;
    assert_eq!(
        early.close_code().await,
        Some(CloseCode::ProtocolViolation.code())
    );
    let mut silent = node.connect(Codec::MsgPack).await;
    assert_eq!(
        silent.close_code().await,
        Some(CloseCode::HelloTimeout.code())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_refused_with_a_clear_answer_before_the_upgrade() {
    let node =
        TestNode::start_with(|c| c.allowed_origins = vec!["https://lectures.example.jp".into()])
            .await;
    let status_and_body = |e: tungstenite::Error| match e {
        tungstenite::Error::Http(response) => {
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            (response.status().as_u16(), body)
        }
        other => panic!("expected an HTTP refusal, got {other}"),
    };

    let no_protocol = tokio_tungstenite::connect_async(node.url(LECTURE))
        .await
        .expect_err("refused");
    let (status, body) = status_and_body(no_protocol);
    assert_eq!(status, 400);
    assert!(
        body.contains("lecture-room.v2.msgpack") && body.contains("lecture-room.v2.json"),
        "{body}"
    );
    // A client of version 1 (every occupant to every learner) is told the names of version 2.
    let mut v1 = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        node.url(LECTURE),
    )
    .expect("request");
    v1.headers_mut().insert(
        "sec-websocket-protocol",
        "lecture-room.v1.msgpack, lecture-room.v1.json"
            .parse()
            .expect("header"),
    );
    let (status, body) = status_and_body(
        tokio_tungstenite::connect_async(v1)
            .await
            .expect_err("refused"),
    );
    assert_eq!(status, 400);
    assert!(
        body.contains("unsupported_subprotocol") && body.contains("lecture-room.v2.msgpack"),
        "{body}"
    );

    let unknown = Client::connect(&node.url("no-such-lecture"), Codec::MsgPack)
        .await
        .expect_err("refused");
    assert_eq!(status_and_body(unknown).0, 404);

    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = node.url(LECTURE).into_client_request().expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        Codec::Json.subprotocol().parse().expect("header"),
    );
    request
        .headers_mut()
        .insert("origin", "https://evil.example".parse().expect("header"));
    let foreign = tokio_tungstenite::connect_async(request.clone())
        .await
        .expect_err("refused");
    assert_eq!(status_and_body(foreign).0, 403);
    request.headers_mut().insert(
        "origin",
        "https://lectures.example.jp".parse().expect("header"),
    );
    assert!(
        tokio_tungstenite::connect_async(request).await.is_ok(),
        "a configured origin connects"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_learners_racing_for_one_seat_end_with_exactly_one_winner() {
    let node = TestNode::start().await;
    let mut learners = Vec::new();
    for i in 0..40 {
        let (client, welcome) = node
            .enter(&format!("u{i}"), &format!("n{i}"), Role::Learner)
            .await;
        learners.push((welcome.you.user, client));
    }
    let seat = Seat::new(0, 0);
    // Each learner learns the outcome: a seat_taken error, or its own seat.
    let won = race_for_seat(&mut learners, seat).await;
    let winners: Vec<&protocol::UserId> = learners
        .iter()
        .zip(&won)
        .filter(|(_, w)| **w)
        .map(|((u, _), _)| u)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one winner; the other 39 were told the seat is taken"
    );
    let (_, welcome) = node.enter("observer", "obs", Role::Moderator).await;
    let seats = welcome.seats.expect("staff see who sits where");
    let occupants: Vec<_> = seats.iter().filter(|s| s.seat == seat).collect();
    assert_eq!(occupants.len(), 1);
    assert_eq!(&occupants[0].occupant.user, winners[0]);
    assert_eq!(seats.len(), 1, "the losers sit nowhere");
    // A learner's grid shows the one seat taken.
    let (_, welcome) = node.enter("observer-2", "obs", Role::Learner).await;
    let occupied = &welcome.occupancy.occupied;
    assert_eq!(occupied.count(), 1);
    assert!(occupied.get(seat.number(welcome.lecture.cols).0 as usize));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_order_is_identical_for_every_client() {
    let node = TestNode::start().await;
    everyone_sees_one_chat_order(&[node], 10, 15).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactions_from_a_hundred_clients_tally_exactly() {
    let node = TestNode::start().await;
    let (mut sensei, _) = node.enter("t1", "先生", Role::Instructor).await;
    let mut learners = Vec::new();
    for i in 0..100 {
        learners.push(
            node.enter(&format!("u{i}"), &format!("n{i}"), Role::Learner)
                .await
                .0,
        );
    }
    let presses = 3u64;
    join_all(learners.iter_mut().enumerate().map(|(i, c)| async move {
        let emotion = if i % 4 == 0 { "lost" } else { "good" };
        for _ in 0..presses {
            c.send(&ClientMsg::React {
                emotion: emotion.into(),
            })
            .await;
        }
    }))
    .await;
    let mut totals = BTreeMap::new();
    while totals.values().sum::<u64>() < 100 * presses {
        if let ServerMsg::Meter(m) = sensei.recv().await {
            totals = m
                .totals
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        }
    }
    assert_eq!(
        totals,
        BTreeMap::from([
            ("good".to_owned(), 75 * presses),
            ("lost".to_owned(), 25 * presses)
        ])
    );
    // A learner's view adds up to the same, from batched bursts.
    let watcher = &mut learners[1];
    let mut burst_sum = 0u64;
    while burst_sum < 100 * presses {
        if let ServerMsg::Update(u) = watcher.recv().await {
            burst_sum += u.burst.values().map(|v| u64::from(*v)).sum::<u64>();
        }
    }
    assert_eq!(burst_sum, 100 * presses);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_reaches_the_called_learner_and_everyone_sees_it() {
    let node = TestNode::start().await;
    let (mut sensei, _) = node.enter("t1", "先生", Role::Instructor).await;
    let (mut taro, _) = node.enter("u1", "taro", Role::Learner).await;
    let (mut hanako, _) = node.enter("u2", "hanako", Role::Learner).await;
    sensei
        .send(&ClientMsg::CallOn {
            nickname: Some("taro".into()),
            seat: None,
        })
        .await;
    let by = taro
        .recv_until(|m| match m {
            ServerMsg::CalledOnYou { by, .. } => Some(by.clone()),
            _ => None,
        })
        .await;
    assert_eq!(by.as_str(), "先生");
    let called = hanako
        .recv_until(|m| match m {
            ServerMsg::Call { current } => Some(current.clone()),
            _ => None,
        })
        .await;
    assert_eq!(
        called.map(|c| c.nickname.to_string()),
        Some("taro".to_owned())
    );
    taro.send(&ClientMsg::Chat {
        text: "はい!".into(),
        question: false,
    })
    .await;
    let answer = sensei.recv_until(chat_of).await;
    assert!(matches!(answer, ChatEvent::Message(m) if m.call_answer && m.text == "はい!"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_trying_an_instructor_action_is_refused_and_stays_connected() {
    let node = TestNode::start().await;
    let (mut taro, _) = node.enter("u1", "taro", Role::Learner).await;
    taro.send(&ClientMsg::EndLecture).await;
    assert_eq!(taro.recv_until(error_of).await, ErrorCode::NotAllowed);
    taro.send(&ClientMsg::Remove {
        user: "u2".into(),
        allow_return: false,
    })
    .await;
    assert_eq!(taro.recv_until(error_of).await, ErrorCode::NotAllowed);
    taro.send(&ClientMsg::Ping { t: 7 }).await;
    let t = taro
        .recv_until(|m| match m {
            ServerMsg::Pong { t, .. } => Some(*t),
            _ => None,
        })
        .await;
    assert_eq!(t, 7, "still connected and served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_frames_close_only_the_broken_connection() {
    let node = TestNode::start_with(|c| c.limits.max_message_bytes = 4096).await;
    let (mut bystander, _) = node.enter("u0", "bystander", Role::Learner).await;

    let (mut garbage, _) = node.enter("u1", "g", Role::Learner).await;
    garbage
        .send_raw(Message::Binary(vec![0xc1, 0xff, 0x00].into()))
        .await;
    assert_eq!(
        garbage.close_code().await,
        Some(CloseCode::ProtocolViolation.code())
    );

    let (mut texter, _) = node.enter("u2", "t", Role::Learner).await;
    texter
        .send_raw(Message::Text(r#"{"type":"ping","t":1}"#.into()))
        .await;
    assert_eq!(
        texter.close_code().await,
        Some(CloseCode::ProtocolViolation.code())
    );

    let (mut big, _) = node.enter("u3", "b", Role::Learner).await;
    big.send_raw(Message::Binary(vec![0x90; 64 * 1024].into()))
        .await;
    assert_eq!(
        big.close_code().await,
        Some(CloseCode::MessageTooBig.code())
    );

    // A well-formed message of an unknown type is refused without closing.
    let (mut newer, _) = node.enter("u4", "n", Role::Learner).await;
    let unknown = rmp_like_unknown();
    newer.send_raw(Message::Binary(unknown.into())).await;
    assert_eq!(newer.recv_until(error_of).await, ErrorCode::BadCommand);

    bystander
        .send(&ClientMsg::Chat {
            text: "still here".into(),
            question: false,
        })
        .await;
    let event = bystander.recv_until(chat_of).await;
    assert!(matches!(event, ChatEvent::Message(m) if m.text == "still here"));
}

/// `{"type": "teleport"}` in MessagePack.
fn rmp_like_unknown() -> Vec<u8> {
    let mut v = vec![0x81, 0xa4];
    v.extend_from_slice(b"type");
    v.push(0xa8);
    v.extend_from_slice(b"teleport");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_does_not_hold_up_the_others() {
    let node = TestNode::start_with(|c| {
        c.limits.outbound_queue = 32;
        c.limits.commands_per_sec = 10_000;
        c.limits.command_burst = 10_000;
    })
    .await;
    // The stalled client: a tiny receive buffer, and it never reads after its welcome.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("buffer size");
    let stream = socket.connect(node.addr).await.expect("connects");
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = node.url(LECTURE).into_client_request().expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        Codec::MsgPack.subprotocol().parse().expect("header"),
    );
    let (ws, _) =
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .expect("upgrades");
    let mut stalled = Client {
        ws,
        codec: Codec::MsgPack,
    };
    stalled
        .send(&ClientMsg::Hello {
            ticket: node.ticket("slow", "slow", Role::Learner),
            resume: None,
        })
        .await;

    let (mut talker, _) = node.enter("u1", "talker", Role::Learner).await;
    let (mut listener, _) = node.enter("u2", "listener", Role::Learner).await;
    let text = "あ".repeat(500);
    let mut worst = Duration::ZERO;
    let started = Instant::now();
    let batch = 10;
    while node.node.metrics.slow_consumers_total.get() == 0 {
        assert!(
            started.elapsed() < WAIT,
            "the stalled client was never cut off"
        );
        let t0 = Instant::now();
        for _ in 0..batch {
            talker
                .send(&ClientMsg::Chat {
                    text: text.clone(),
                    question: false,
                })
                .await;
        }
        for reader in [&mut talker, &mut listener] {
            let mut got = 0;
            while got < batch {
                if chat_of(&reader.recv().await).is_some() {
                    got += 1;
                }
            }
        }
        worst = worst.max(t0.elapsed());
    }
    assert!(
        worst < Duration::from_secs(2),
        "a batch took {worst:?} to reach readers while one client was stalled"
    );
    // Once the stalled client reads again, it finds it was told to reconnect.
    let code = stalled.close_code().await;
    assert!(
        code.is_none() || code == Some(CloseCode::SlowConsumer.code()),
        "{code:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_learner_gets_the_same_seat_and_every_missed_message_once() {
    let node = TestNode::start().await;
    a_dropped_learner_returns(&node, &node, &node, Seat::new(3, 7), 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_silent_is_closed_with_a_reconnect_code() {
    let node = TestNode::start_with(|c| {
        c.limits.idle_timeout_ms = 300;
        c.limits.ping_interval_ms = 60_000;
    })
    .await;
    let (mut quiet, _) = node.enter("u1", "taro", Role::Learner).await;
    let code = quiet.close_code().await;
    assert_eq!(code, Some(CloseCode::HeartbeatTimeout.code()));
    assert!(CloseCode::HeartbeatTimeout.is_reconnect());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_is_warned_then_cut_off() {
    let node = TestNode::start_with(|c| {
        c.limits.commands_per_sec = 5;
        c.limits.command_burst = 5;
        c.limits.flood_strikes = 50;
    })
    .await;
    let (mut flood, _) = node.enter("u1", "taro", Role::Learner).await;
    for t in 0..200 {
        flood
            .send_raw(Message::Binary(
                Codec::MsgPack
                    .encode_client(&ClientMsg::Ping { t })
                    .expect("encodes")
                    .into(),
            ))
            .await;
    }
    let mut warned = false;
    let code = loop {
        match flood.next().await {
            Got::Msg(ServerMsg::Error {
                code: ErrorCode::RateLimited,
                ..
            }) => warned = true,
            Got::Msg(_) => {}
            Got::Closed(code) => break code,
        }
    };
    assert!(warned, "warned before being cut off");
    assert_eq!(code, Some(CloseCode::Flooding.code()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_learner_is_closed_and_a_banned_one_cannot_return() {
    let node = TestNode::start().await;
    let (mut sensei, _) = node.enter("t1", "先生", Role::Instructor).await;
    let (mut taro, taro_in) = node.enter("u1", "taro", Role::Learner).await;
    sensei
        .send(&ClientMsg::Remove {
            user: taro_in.you.user.clone(),
            allow_return: false,
        })
        .await;
    assert_eq!(taro.close_code().await, Some(CloseCode::Banned.code()));
    let mut again = node.connect(Codec::MsgPack).await;
    again
        .send(&ClientMsg::Hello {
            ticket: node.ticket("u1", "taro", Role::Learner),
            resume: None,
        })
        .await;
    assert_eq!(again.close_code().await, Some(CloseCode::Banned.code()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_the_lecture_closes_everyone_and_keeps_the_doors_shut() {
    let node = TestNode::start().await;
    let (mut sensei, _) = node.enter("t1", "先生", Role::Instructor).await;
    let (mut taro, _) = node.enter("u1", "taro", Role::Learner).await;
    sensei.send(&ClientMsg::EndLecture).await;
    let phase = taro
        .recv_until(|m| match m {
            ServerMsg::Phase { phase } => Some(phase.clone()),
            _ => None,
        })
        .await;
    assert!(matches!(phase, Phase::Ended { .. }));
    assert_eq!(
        taro.close_code().await,
        Some(CloseCode::LectureEnded.code())
    );
    let mut late = node.connect(Codec::MsgPack).await;
    late.send(&ClientMsg::Hello {
        ticket: node.ticket("u2", "hanako", Role::Learner),
        resume: None,
    })
    .await;
    assert_eq!(
        late.close_code().await,
        Some(CloseCode::LectureEnded.code())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_answer() {
    let node = TestNode::start().await;
    assert_eq!(node.get("/healthz").await, (200, "ok".to_owned()));
    let (status, body) = node.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    let (_client, _) = node.enter("u1", "taro", Role::Learner).await;
    let (status, body) = node.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("room_connections_active 1"), "{body}");
    assert!(body.contains("room_rooms_active 1"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_learner_joins_and_chats_metrics_show_the_latency_histograms() {
    let node = TestNode::start().await;
    let (mut taro, _) = node.enter("u1", "taro", Role::Learner).await;
    taro.send(&ClientMsg::Chat {
        text: "hello".into(),
        question: false,
    })
    .await;
    // Once the chat is back, its session has timed the join and the welcome's batch, and the
    // room its log's appends.
    taro.recv_until(chat_of).await;
    let answer = common::http_answer(node.addr, "GET", "/metrics", &[], None).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let body = answer.text();
    let lines: Vec<&str> = body.lines().collect();
    for (family, observed) in [
        ("room_join_seconds", true),
        ("room_outbound_queue_wait_seconds", true),
        ("room_log_append_seconds", true),
        // No Redis here: the family is shown, with nothing in it.
        ("room_redis_round_trip_seconds", false),
    ] {
        for line in [
            format!("# TYPE {family} histogram"),
            format!("# UNIT {family} seconds"),
        ] {
            assert!(lines.contains(&line.as_str()), "no `{line}`: {body}");
        }
        let count = sample(&body, &format!("{family}_count"));
        assert_eq!(count >= 1.0, observed, "{family}: {body}");
        assert!(sample(&body, &format!("{family}_sum")) >= 0.0, "{body}");
        let buckets = format!("{family}_bucket{{le=");
        assert_eq!(sample(&body, &format!("{buckets}\"+Inf\"}}")), count);
        let bounded = lines.iter().filter(|l| l.starts_with(&buckets)).count();
        assert!(bounded > 2, "{family} has its buckets: {body}");
    }
    // The counters and gauges keep their names.
    for line in [
        "room_connections_total 1",
        "room_commands_in_total 1",
        "room_connections_active 1",
    ] {
        assert!(lines.contains(&line), "no `{line}`: {body}");
    }
    assert_eq!(lines.last(), Some(&"# EOF"));
}

/// The value of one series (name and labels, as written) in a `/metrics` text.
fn sample(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{series} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {series}: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_tells_every_client_to_reconnect_and_stops_in_time() {
    let mut node = TestNode::start().await;
    let (mut a, _) = node.enter("u1", "taro", Role::Learner).await;
    let (mut b, _) = node.enter("u2", "hanako", Role::Learner).await;
    node.shut_down();
    assert_eq!(a.close_code().await, Some(CloseCode::ServerShutdown.code()));
    assert_eq!(b.close_code().await, Some(CloseCode::ServerShutdown.code()));
    assert!(CloseCode::ServerShutdown.is_reconnect());
    let served = node.served.take().expect("running");
    let result = tokio::time::timeout(WAIT, served)
        .await
        .expect("stops within the bound");
    assert!(result.expect("joins").is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_node_stops_being_ready_serves_on_then_closes_everyone_over_a_ramp() {
    let window = Duration::from_millis(800);
    let spread = Duration::from_millis(1_500);
    let node = TestNode::start_with(|config| {
        config.metrics_listen = Some("127.0.0.1:0".parse().expect("an address"));
        config.limits.drain_window_ms = window.as_millis() as u64;
        config.limits.drain_spread_ms = spread.as_millis() as u64;
    })
    .await;
    let admin = node.metrics_addr().await;
    let mut learners = Vec::new();
    for i in 0..12 {
        let (client, _) = node
            .enter(&format!("u{i}"), &format!("learner{i}"), Role::Learner)
            .await;
        learners.push(client);
    }
    // The operator drains the node from its own address; the public one has no such door.
    let (status, _) = common::http(node.addr, "POST", "/drain", &[], None).await;
    assert_ne!(status, 202);
    assert_eq!(node.get("/readyz").await.0, 200);
    let drained = Instant::now();
    let (status, body) = common::http(admin, "POST", "/drain", &[], None).await;
    assert_eq!(status, 202, "{body}");
    // Not ready at once, for the load balancer…
    assert_eq!(node.get("/readyz").await.0, 503);
    assert_eq!(common::http_get(admin, "/readyz").await.0, 503);
    // …while it still serves: a learner the balancer sent meanwhile gets in.
    let (late, _) = node.enter("late", "late", Role::Learner).await;
    learners.push(late);
    // Then everyone is told to reconnect elsewhere, each at their own moment.
    let closes = join_all(learners.iter_mut().map(|client| async {
        let code = client.close_code().await;
        (code, drained.elapsed())
    }))
    .await;
    for (code, _) in &closes {
        assert_eq!(*code, Some(CloseCode::ServerShutdown.code()));
    }
    let first = closes.iter().map(|(_, at)| *at).min().expect("closes");
    let last = closes.iter().map(|(_, at)| *at).max().expect("closes");
    assert!(
        first >= window,
        "nobody is closed within the window: {first:?}"
    );
    // 13 moments drawn over 1.5 s: all within 0.3 s of each other would be a storm.
    assert!(
        last - first >= Duration::from_millis(300),
        "the closes are spread: {first:?}..{last:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_members_see_each_other_by_pseudonym_never_by_account_id() {
    let node = TestNode::start().await;
    let (mut sensei, _) = node
        .enter("acct-sensei-0042", "先生", Role::Instructor)
        .await;
    let (mut taro, taro_in) = node.enter("acct-taro-7731", "taro", Role::Learner).await;
    assert!(
        !taro_in.you.user.as_str().contains("acct"),
        "{:?}",
        taro_in.you.user
    );
    taro.send(&ClientMsg::TakeSeat {
        seat: protocol::Seat::new(0, 0),
    })
    .await;
    taro.send(&ClientMsg::Chat {
        text: "hello".into(),
        question: false,
    })
    .await;
    // Everything another member receives, as raw frames: no account id anywhere in them.
    let (mut hanako, hanako_in) = node
        .enter("acct-hanako-5150", "hanako", Role::Learner)
        .await;
    let mut raw = Vec::new();
    raw.extend(
        protocol::Codec::Json
            .encode_server(&ServerMsg::Welcome(Box::new(hanako_in.clone())))
            .expect("encodes"),
    );
    // Until taro's line has reached hanako (in her welcome's history, or after it).
    let mut said = !hanako_in.chat.is_empty();
    while !said {
        let msg = hanako.recv_until(|m| Some(m.clone())).await;
        said = matches!(msg, ServerMsg::Chat { .. });
        raw.extend(protocol::Codec::Json.encode_server(&msg).expect("encodes"));
    }
    let seen = String::from_utf8_lossy(&raw);
    assert!(seen.contains(taro_in.you.user.as_str()), "{seen}");
    for account in ["acct-taro-7731", "acct-sensei-0042"] {
        assert!(!seen.contains(account), "{account} on the wire: {seen}");
    }
    // The pseudonym is the same after a reconnect, so staff can act on what they see.
    drop(taro);
    let (mut back, back_in) = node.enter("acct-taro-7731", "taro", Role::Learner).await;
    assert_eq!(back_in.you.user, taro_in.you.user);
    sensei
        .send(&ClientMsg::Mute {
            user: back_in.you.user.clone(),
            seconds: 60,
        })
        .await;
    back.recv_until(|m| matches!(m, ServerMsg::Muted { until: Some(_) }).then_some(()))
        .await;
}
