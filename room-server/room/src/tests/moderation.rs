use super::*;

#[test]
fn a_muted_learner_cannot_chat_until_the_mute_ends() {
    let mut sim = doors_open_sim();
    let moderator = sim.join("m1", "assist", Role::Moderator);
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.send(
        moderator,
        ClientMsg::Mute {
            user: "u1".into(),
            seconds: 60,
        },
    );
    assert!(matches!(
        sim.take(taro)[..],
        [.., ServerMsg::Muted { until: Some(_) }]
    ));
    sim.chat(taro, "hello?");
    assert_eq!(sim.errors(taro), vec![ErrorCode::Muted]);
    // A reconnect does not lift it.
    sim.drop_conn(taro);
    let taro = sim.join("u1", "taro", Role::Learner);
    assert!(sim.welcome(taro).muted_until.is_some());
    sim.run_for(60_000);
    sim.chat(taro, "back");
    assert!(sim.errors(taro).is_empty());
    sim.send(
        moderator,
        ClientMsg::Mute {
            user: "t9".into(),
            seconds: 60,
        },
    );
    sim.send(
        moderator,
        ClientMsg::Mute {
            user: "u1".into(),
            seconds: 0,
        },
    );
    assert_eq!(
        sim.errors(moderator),
        vec![ErrorCode::NotFound, ErrorCode::InvalidArgument]
    );
}

#[test]
fn a_removed_learner_loses_the_seat_and_may_or_may_not_return() {
    let mut sim = doors_open_sim();
    let sensei = sim.join("t1", "先生", Role::Instructor);
    let moderator = sim.join("m1", "assist", Role::Moderator);
    let taro = sim.join("u1", "taro", Role::Learner);
    let jiro = sim.join("u2", "jiro", Role::Learner);
    sim.take_seat(taro, 0, 0);
    sim.send(
        moderator,
        ClientMsg::Remove {
            user: "u1".into(),
            allow_return: true,
        },
    );
    assert_eq!(sim.closed[&taro], Some(CloseCode::Removed));
    assert_eq!(sim.occupant(Seat::new(0, 0)), None);
    let taro = sim.join("u1", "taro", Role::Learner);
    assert!(!sim.closed.contains_key(&taro));

    sim.send(
        sensei,
        ClientMsg::Remove {
            user: "u2".into(),
            allow_return: false,
        },
    );
    assert_eq!(sim.closed[&jiro], Some(CloseCode::Banned));
    let again = sim.join("u2", "jiro", Role::Learner);
    assert_eq!(sim.closed[&again], Some(CloseCode::Banned));
    assert_eq!(
        sim.bans,
        vec![("acct-u2".into(), sim.now)],
        "the ban is reported once, for the records; a removal with return is not a ban"
    );

    sim.send(
        moderator,
        ClientMsg::Remove {
            user: "t1".into(),
            allow_return: true,
        },
    );
    assert_eq!(
        sim.errors(moderator),
        vec![ErrorCode::NotAllowed],
        "staff are not moderated"
    );
    sim.send(
        taro,
        ClientMsg::Remove {
            user: "m1".into(),
            allow_return: false,
        },
    );
    assert_eq!(sim.errors(taro), vec![ErrorCode::NotAllowed]);
}

#[test]
fn a_learner_is_refused_every_instructor_action_and_the_room_is_unchanged() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.join("u2", "hanako", Role::Learner);
    let staff_only = vec![
        ClientMsg::DeleteChat {
            offset: ChatOffset(1),
        },
        ClientMsg::MarkAnswered {
            offset: ChatOffset(1),
        },
        ClientMsg::CallOn {
            nickname: Some("hanako".into()),
            seat: None,
            user: None,
        },
        ClientMsg::ClearCall,
        ClientMsg::Announce { text: "hi".into() },
        ClientMsg::ClearAnnouncement,
        ClientMsg::Mute {
            user: "u2".into(),
            seconds: 10,
        },
        ClientMsg::Unmute { user: "u2".into() },
        ClientMsg::Remove {
            user: "u2".into(),
            allow_return: false,
        },
        ClientMsg::StartLecture,
        ClientMsg::EndLecture,
    ];
    let n = staff_only.len();
    for msg in staff_only {
        sim.send(taro, msg);
    }
    assert_eq!(sim.errors(taro), vec![ErrorCode::NotAllowed; n]);
    assert_eq!(sim.room.phase(), &Phase::DoorsOpen);
    assert_eq!(sim.room.connection_count(), 2);
    assert!(
        sim.room.announcement.is_none() && sim.room.call.is_none() && sim.room.banned.is_empty()
    );
}

#[test]
fn a_revoked_learner_is_removed_and_older_tickets_are_refused() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.take_seat(taro, 2, 2);
    let revoked_at = sim.now;
    sim.room.handle_revoke(sim.now, "u1".into(), revoked_at);
    sim.drain();
    assert_eq!(sim.closed[&taro], Some(CloseCode::Revoked));
    assert_eq!(
        sim.occupant(Seat::new(2, 2)),
        None,
        "the seat is freed, not held"
    );
    // A ticket issued at or before the revocation is refused…
    let old = sim.join("u1", "taro", Role::Learner);
    assert_eq!(sim.closed[&old], Some(CloseCode::Revoked));
    // …a ticket issued after it (entitlement given back) is let in.
    sim.run_for(1000);
    let fresh = sim.join("u1", "taro", Role::Learner);
    assert!(!sim.closed.contains_key(&fresh));
}
