use super::*;

// ----- calls, announcements, moderation -----

#[test]
fn a_called_learner_is_told_everyone_sees_it_and_the_next_message_is_the_answer() {
    let mut sim = doors_open_sim();
    let sensei = sim.join("t1", "先生", Role::Instructor);
    let taro = sim.join("u1", "taro", Role::Learner);
    let hanako = sim.join("u2", "hanako", Role::Learner);
    sim.take_seat(hanako, 3, 4);
    sim.take(taro);
    sim.take(hanako);
    sim.send(
        sensei,
        ClientMsg::CallOn {
            nickname: Some("taro".into()),
            seat: None,
            user: None,
        },
    );
    let to_taro = sim.take(taro);
    assert!(
        to_taro
            .iter()
            .any(|m| matches!(m, ServerMsg::CalledOnYou { by, .. } if by.as_str() == "先生"))
    );
    let seen = sim.take(hanako);
    assert!(
        matches!(&seen[..], [ServerMsg::Call { current: Some(c) }] if c.nickname.as_str() == "taro"),
        "{seen:?}"
    );

    sim.chat(taro, "はい、わかります");
    sim.chat(taro, "追加です");
    let events = chat_events(&sim.take(hanako));
    let answers: Vec<bool> = events
        .iter()
        .map(|e| matches!(e, ChatEvent::Message(m) if m.call_answer))
        .collect();
    assert_eq!(answers, vec![true, false]);

    sim.send(
        sensei,
        ClientMsg::CallOn {
            nickname: None,
            seat: Some(Seat::new(3, 4)),
            user: None,
        },
    );
    assert!(
        sim.take(hanako)
            .iter()
            .any(|m| matches!(m, ServerMsg::CalledOnYou { .. }))
    );
    sim.send(sensei, ClientMsg::ClearCall);
    assert!(sim.take(taro).contains(&ServerMsg::Call { current: None }));
}

#[test]
fn calling_on_an_unknown_or_ambiguous_nickname_is_refused() {
    let mut sim = doors_open_sim();
    let sensei = sim.join("t1", "先生", Role::Instructor);
    sim.join("u1", "sato", Role::Learner);
    sim.join("u2", "sato", Role::Learner);
    let learner = sim.join("u3", "kei", Role::Learner);
    sim.send(
        sensei,
        ClientMsg::CallOn {
            nickname: Some("sato".into()),
            seat: None,
            user: None,
        },
    );
    sim.send(
        sensei,
        ClientMsg::CallOn {
            nickname: Some("nobody".into()),
            seat: None,
            user: None,
        },
    );
    sim.send(
        sensei,
        ClientMsg::CallOn {
            nickname: None,
            seat: Some(Seat::new(0, 0)),
            user: None,
        },
    );
    sim.send(
        sensei,
        ClientMsg::CallOn {
            nickname: None,
            seat: None,
            user: None,
        },
    );
    assert_eq!(
        sim.errors(sensei),
        vec![
            ErrorCode::AmbiguousNickname,
            ErrorCode::NotFound,
            ErrorCode::NotFound,
            ErrorCode::InvalidArgument
        ]
    );
    sim.send(
        learner,
        ClientMsg::CallOn {
            nickname: Some("sato".into()),
            seat: None,
            user: None,
        },
    );
    assert_eq!(sim.errors(learner), vec![ErrorCode::NotAllowed]);
}

#[test]
fn the_announcement_is_pinned_and_in_every_welcome() {
    let mut sim = doors_open_sim();
    let sensei = sim.join("t1", "先生", Role::Instructor);
    sim.send(
        sensei,
        ClientMsg::Announce {
            text: "資料は p.12 から".into(),
        },
    );
    let taro = sim.join("u1", "taro", Role::Learner);
    let w = sim.welcome(taro);
    assert_eq!(
        w.announcement.map(|a| a.text),
        Some("資料は p.12 から".into())
    );
    sim.send(taro, ClientMsg::Announce { text: "me".into() });
    assert_eq!(sim.errors(taro), vec![ErrorCode::NotAllowed]);
    sim.send(sensei, ClientMsg::ClearAnnouncement);
    assert!(
        sim.take(taro)
            .contains(&ServerMsg::Announcement { current: None })
    );
}
