use super::*;

// ----- phases -----

#[test]
fn a_lecture_goes_from_scheduled_to_doors_open_to_live_to_ended_by_the_clock() {
    let mut sim = Sim::new(START.minus_ms(3 * 60 * MIN));
    assert_eq!(sim.room.phase(), &Phase::Scheduled);
    let sensei = sim.join("t1", "先生", Role::Instructor);
    assert_eq!(
        sim.welcome(sensei).phase,
        Phase::Scheduled,
        "instructors may enter early to prepare"
    );
    let early = sim.join("u1", "taro", Role::Learner);
    assert_eq!(sim.closed[&early], Some(CloseCode::DoorsNotOpen));

    sim.run_until(START.minus_ms(60 * MIN));
    assert_eq!(sim.room.phase(), &Phase::DoorsOpen);
    let taro = sim.join("u1", "taro", Role::Learner);
    assert_eq!(sim.welcome(taro).phase, Phase::DoorsOpen);

    sim.run_until(START);
    assert_eq!(sim.room.phase(), &Phase::Live { since: START });
    let phases: Vec<Phase> = sim
        .take(taro)
        .into_iter()
        .filter_map(|m| match m {
            ServerMsg::Phase { phase } => Some(phase),
            _ => None,
        })
        .collect();
    assert_eq!(phases, vec![Phase::Live { since: START }]);

    // Nobody ends it: the room ends itself after the end time plus the grace.
    let end = START.plus_ms(90 * MIN + 30 * MIN);
    sim.run_until(end);
    assert_eq!(sim.room.phase(), &Phase::Ended { at: end });
    assert_eq!(sim.closed[&taro], Some(CloseCode::LectureEnded));
    assert_eq!(sim.closed[&sensei], Some(CloseCode::LectureEnded));
    assert_eq!(sim.room.connection_count(), 0);
    assert_eq!(sim.room.poll_timeout(), None);
    let late = sim.join("u2", "hanako", Role::Learner);
    assert_eq!(sim.closed[&late], Some(CloseCode::LectureEnded));
}

#[test]
fn learners_may_enter_exactly_when_the_doors_open_and_not_a_millisecond_before() {
    let doors = START.minus_ms(60 * MIN);
    let mut sim = Sim::new(doors.minus_ms(1));
    let early = sim.join("u1", "taro", Role::Learner);
    assert_eq!(sim.closed[&early], Some(CloseCode::DoorsNotOpen));
    sim.run_until(doors);
    let on_time = sim.join("u1", "taro", Role::Learner);
    assert!(!sim.closed.contains_key(&on_time));
    assert_eq!(sim.welcome(on_time).phase, Phase::DoorsOpen);
}

#[test]
fn the_instructor_starts_early_and_ends_the_lecture_for_everyone() {
    let mut sim = doors_open_sim();
    let sensei = sim.join("t1", "先生", Role::Instructor);
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.send(taro, ClientMsg::StartLecture);
    assert_eq!(sim.errors(taro), vec![ErrorCode::NotAllowed]);
    sim.send(sensei, ClientMsg::StartLecture);
    assert!(matches!(sim.room.phase(), Phase::Live { .. }));
    sim.send(sensei, ClientMsg::StartLecture);
    assert_eq!(sim.errors(sensei), vec![ErrorCode::WrongPhase]);
    sim.take(taro);
    sim.send(sensei, ClientMsg::EndLecture);
    let last = sim.take(taro);
    assert!(
        matches!(
            last.last(),
            Some(ServerMsg::Phase {
                phase: Phase::Ended { .. }
            })
        ),
        "{last:?}"
    );
    assert_eq!(sim.closed[&taro], Some(CloseCode::LectureEnded));
}

#[test]
fn a_cancelled_lecture_tells_everyone_why_and_closes() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.take(taro);
    sim.room.handle_cancel(sim.now, "講師急病のため".into());
    sim.drain();
    assert_eq!(
        sim.take(taro),
        vec![ServerMsg::Phase {
            phase: Phase::Cancelled {
                reason: "講師急病のため".into()
            }
        }]
    );
    assert_eq!(sim.closed[&taro], Some(CloseCode::LectureCancelled));
    let again = sim.join("u1", "taro", Role::Learner);
    assert_eq!(sim.closed[&again], Some(CloseCode::LectureCancelled));
}

#[test]
fn an_hour_of_lecture_runs_in_virtual_time() {
    let mut sim = doors_open_sim();
    let sensei = sim.join("t1", "先生", Role::Instructor);
    let learners: Vec<ConnId> = (0..20)
        .map(|i| sim.join(&format!("u{i}"), &format!("n{i}"), Role::Learner))
        .collect();
    for (i, c) in learners.iter().enumerate() {
        let i = u16::try_from(i).expect("few learners");
        sim.take_seat(*c, i / 5, i % 5);
    }
    sim.run_until(START);
    for minute in 0..60 {
        for c in learners.iter().take(5) {
            sim.chat(*c, &format!("minute {minute}"));
            sim.send(
                *c,
                ClientMsg::React {
                    emotion: "good".into(),
                },
            );
        }
        sim.run_for(MIN);
    }
    sim.send(sensei, ClientMsg::EndLecture);
    assert_eq!(sim.room.chat.last(), ChatOffset(300));
    assert_eq!(sim.room.reactions.total(&"good".into()), 300);
    let seen = chat_events(&sim.take(learners[19]));
    assert_eq!(seen.len(), 300);
    assert!(
        seen.windows(2)
            .all(|w| w[1].offset() == w[0].offset().next())
    );
}

#[test]
fn a_rescheduled_lecture_goes_live_at_its_new_time_and_everyone_is_told() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.take(taro);
    let later = START.plus_ms(15 * MIN);
    sim.room.handle_reschedule(
        sim.now,
        "Rust 入門(延長)".into(),
        later,
        later.plus_ms(90 * MIN),
    );
    sim.drain();
    let told = sim.take(taro);
    assert!(
        matches!(&told[..], [ServerMsg::Lecture { lecture }] if lecture.starts_at == later && lecture.title.contains("延長")),
        "{told:?}"
    );
    sim.run_until(START);
    assert_eq!(
        sim.room.phase(),
        &Phase::DoorsOpen,
        "not live at the old start"
    );
    sim.run_until(later);
    assert_eq!(sim.room.phase(), &Phase::Live { since: later });
}
