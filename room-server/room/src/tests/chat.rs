use super::*;

// ----- chat -----

#[test]
fn chat_gets_increasing_offsets_and_the_authors_nickname() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    let hanako = sim.join("u2", "hanako", Role::Learner);
    sim.chat(taro, "  おはようございます  ");
    sim.chat(hanako, "hello");
    let events = chat_events(&sim.take(hanako));
    assert_eq!(
        events.iter().map(|e| e.offset().0).collect::<Vec<_>>(),
        vec![1, 2]
    );
    match &events[0] {
        ChatEvent::Message(m) => {
            assert_eq!(m.nickname.as_str(), "taro");
            assert_eq!(m.text, "おはようございます", "trimmed");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_chat_is_refused_and_takes_no_offset() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.chat(taro, "   ");
    sim.chat(taro, &"x".repeat(501));
    sim.chat(taro, "bell\u{7}");
    assert_eq!(
        sim.errors(taro),
        vec![
            ErrorCode::ChatEmpty,
            ErrorCode::TextTooLong,
            ErrorCode::InvalidCharacters
        ]
    );
    sim.chat(taro, "ok");
    assert_eq!(chat_events(&sim.take(taro))[0].offset(), ChatOffset(1));
}

#[test]
fn history_is_bounded_and_feeds_the_welcome() {
    let settings = RoomSettings {
        history_len: 10,
        ..RoomSettings::default()
    };
    let mut sim = Sim::with(spec(), settings, START);
    let taro = sim.join("u1", "taro", Role::Learner);
    for i in 0..25 {
        sim.chat(taro, &format!("m{i}"));
        // At a learner's pace (chat lines are rate-limited).
        sim.run_for(2_000);
    }
    let hanako = sim.join("u2", "hanako", Role::Learner);
    let w = sim.welcome(hanako);
    assert_eq!(w.replay, Replay::Snapshot);
    assert_eq!(
        texts(&w.chat),
        (15..25).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    assert_eq!(w.last_offset, ChatOffset(25));
}

#[test]
fn a_welcome_carries_the_newest_lines_and_a_resume_everything_it_missed() {
    let settings = RoomSettings {
        history_len: 20,
        welcome_chat_len: 5,
        epoch: Epoch(3),
        ..RoomSettings::default()
    };
    let mut sim = Sim::with(spec(), settings, START);
    let taro = sim.join("u1", "taro", Role::Learner);
    for i in 1..=15 {
        sim.chat(taro, &format!("m{i}"));
        sim.run_for(2_000);
    }
    let newcomer = sim.join("u2", "hanako", Role::Learner);
    let w = sim.welcome(newcomer);
    assert_eq!(w.replay, Replay::Snapshot);
    assert_eq!(texts(&w.chat), ["m11", "m12", "m13", "m14", "m15"]);
    assert_eq!(w.last_offset, ChatOffset(15));
    let resume = ResumeFrom {
        epoch: Epoch(3),
        offset: ChatOffset(2),
    };
    let back = sim.join_resuming("u3", "jiro", Role::Learner, Some(resume));
    let w = sim.welcome(back);
    assert_eq!(w.replay, Replay::Missed);
    assert_eq!(
        texts(&w.chat),
        (3..=15).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
}

#[test]
fn a_learner_cannot_flood_the_chat_but_staff_answer_freely() {
    let mut sim = doors_open_sim();
    let sensei = sim.join("t1", "先生", Role::Instructor);
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.take(taro);
    for i in 0..10 {
        sim.chat(taro, &format!("flood {i}"));
    }
    let got = sim.take(taro);
    assert_eq!(chat_texts(&got).len(), 5, "a burst of five");
    assert_eq!(
        got.iter()
            .filter(|m| matches!(
                m,
                ServerMsg::Error {
                    code: ErrorCode::RateLimited,
                    ..
                }
            ))
            .count(),
        5
    );
    // One more line every two seconds.
    sim.run_for(2_000);
    sim.chat(taro, "later");
    assert_eq!(chat_texts(&sim.take(taro)), ["later"]);
    // The instructor is not limited.
    for i in 0..20 {
        sim.chat(sensei, &format!("answer {i}"));
    }
    assert_eq!(chat_texts(&sim.take(taro)).len(), 20);
}

#[test]
fn a_returning_client_gets_exactly_what_it_missed() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    let hanako = sim.join("u2", "hanako", Role::Learner);
    let epoch = sim.welcome(hanako).epoch;
    sim.chat(taro, "one");
    sim.chat(taro, "two");
    let seen = chat_events(&sim.take(hanako))
        .last()
        .map(ChatEvent::offset)
        .expect("saw two");
    sim.drop_conn(hanako);
    sim.chat(taro, "three");
    sim.chat(taro, "four");
    let back = sim.join_resuming(
        "u2",
        "hanako",
        Role::Learner,
        Some(ResumeFrom {
            epoch,
            offset: seen,
        }),
    );
    let w = sim.welcome(back);
    assert_eq!(w.replay, Replay::Missed);
    assert_eq!(texts(&w.chat), vec!["three", "four"]);
}

#[test]
fn a_resume_that_history_cannot_serve_gets_a_snapshot() {
    let settings = RoomSettings {
        history_len: 3,
        epoch: Epoch(9),
        ..RoomSettings::default()
    };
    let mut sim = Sim::with(spec(), settings, START);
    let taro = sim.join("u1", "taro", Role::Learner);
    for i in 0..10 {
        sim.chat(taro, &format!("m{i}"));
        sim.run_for(2_000);
    }
    let too_old = ResumeFrom {
        epoch: Epoch(9),
        offset: ChatOffset(2),
    };
    let c = sim.join_resuming("u2", "hanako", Role::Learner, Some(too_old));
    assert_eq!(sim.welcome(c).replay, Replay::Snapshot);
    let other_epoch = ResumeFrom {
        epoch: Epoch(8),
        offset: ChatOffset(9),
    };
    let c = sim.join_resuming("u2", "hanako", Role::Learner, Some(other_epoch));
    assert_eq!(sim.welcome(c).replay, Replay::Snapshot);
    let from_the_future = ResumeFrom {
        epoch: Epoch(9),
        offset: ChatOffset(99),
    };
    let c = sim.join_resuming("u2", "hanako", Role::Learner, Some(from_the_future));
    assert_eq!(sim.welcome(c).replay, Replay::Snapshot);
    let just_in_reach = ResumeFrom {
        epoch: Epoch(9),
        offset: ChatOffset(7),
    };
    let c = sim.join_resuming("u2", "hanako", Role::Learner, Some(just_in_reach));
    let w = sim.welcome(c);
    assert_eq!(
        (w.replay, texts(&w.chat)),
        (
            Replay::Missed,
            vec!["m7".to_owned(), "m8".into(), "m9".into()]
        )
    );
}

#[test]
fn questions_are_answered_and_messages_deleted_for_everyone() {
    let mut sim = doors_open_sim();
    let sensei = sim.join("t1", "先生", Role::Instructor);
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.send(
        taro,
        ClientMsg::Chat {
            text: "質問です".into(),
            question: true,
        },
    );
    sim.chat(taro, "spam");
    sim.send(
        taro,
        ClientMsg::MarkAnswered {
            offset: ChatOffset(1),
        },
    );
    sim.send(
        taro,
        ClientMsg::DeleteChat {
            offset: ChatOffset(2),
        },
    );
    let errors = sim.errors(taro);
    assert_eq!(errors, vec![ErrorCode::NotAllowed, ErrorCode::NotAllowed]);
    sim.send(
        sensei,
        ClientMsg::MarkAnswered {
            offset: ChatOffset(2),
        },
    );
    assert_eq!(sim.errors(sensei), vec![ErrorCode::NotAQuestion]);
    sim.send(
        sensei,
        ClientMsg::MarkAnswered {
            offset: ChatOffset(1),
        },
    );
    sim.send(
        sensei,
        ClientMsg::DeleteChat {
            offset: ChatOffset(2),
        },
    );
    sim.send(
        sensei,
        ClientMsg::DeleteChat {
            offset: ChatOffset(77),
        },
    );
    assert_eq!(sim.errors(sensei), vec![ErrorCode::NotFound]);
    let events = chat_events(&sim.take(taro));
    assert!(
        matches!(
            events[..],
            [
                ChatEvent::Answered {
                    offset: ChatOffset(3),
                    target: ChatOffset(1),
                    ..
                },
                ChatEvent::Deleted {
                    offset: ChatOffset(4),
                    target: ChatOffset(2),
                    ..
                },
            ]
        ),
        "{events:?}"
    );
    let late = sim.join("u2", "hanako", Role::Learner);
    let w = sim.welcome(late);
    match &w.chat[..] {
        [ChatEvent::Message(q), ChatEvent::Message(spam), ..] => {
            assert!(q.question && q.answered);
            assert!(
                spam.deleted && spam.text.is_empty(),
                "a deleted text never reaches a newcomer"
            );
        }
        other => panic!("{other:?}"),
    }
}
