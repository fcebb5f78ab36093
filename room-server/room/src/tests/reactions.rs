use super::*;

// ----- reactions -----

#[test]
fn reactions_are_batched_per_tick_and_the_instructor_gets_the_meter() {
    let mut sim = doors_open_sim();
    let sensei = sim.join("t1", "先生", Role::Instructor);
    let learners: Vec<ConnId> = (0..8)
        .map(|i| sim.join(&format!("u{i}"), &format!("n{i}"), Role::Learner))
        .collect();
    sim.take_seat(learners[0], 0, 0);
    sim.run_for(250);
    sim.take(learners[1]);
    sim.take(sensei);
    for (i, c) in learners.iter().enumerate() {
        let emotion = if i % 2 == 0 { "good" } else { "lost" };
        sim.send(
            *c,
            ClientMsg::React {
                emotion: EmotionKey::from(emotion),
            },
        );
    }
    assert!(
        sim.take(learners[1]).is_empty(),
        "never one message per press"
    );
    sim.run_for(250);
    let got = sim.take(learners[1]);
    assert_eq!(got.len(), 1);
    let ServerMsg::Update(update) = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(
        update.burst,
        BTreeMap::from([(EmotionKey::from("good"), 4), (EmotionKey::from("lost"), 4)])
    );
    let meter = sim
        .take(sensei)
        .into_iter()
        .find_map(|m| match m {
            ServerMsg::Meter(m) => Some(m),
            _ => None,
        })
        .expect("the instructor gets a meter");
    assert_eq!(meter.totals.values().sum::<u64>(), 8);
    assert_eq!(
        meter.seats,
        vec![protocol::server::SeatReaction {
            seat: Seat::new(0, 0),
            emotion: "good".into()
        }]
    );
    assert!(
        sim.take(learners[1])
            .iter()
            .all(|m| !matches!(m, ServerMsg::Meter(_))),
        "learners get no meter"
    );
}

#[test]
fn a_learner_pressing_too_fast_is_limited_and_told_once_per_tick() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    for _ in 0..30 {
        sim.send(
            taro,
            ClientMsg::React {
                emotion: "applause".into(),
            },
        );
    }
    assert_eq!(sim.errors(taro), vec![ErrorCode::RateLimited]);
    assert_eq!(sim.room.reactions.total(&"applause".into()), 10);
    sim.send(
        taro,
        ClientMsg::React {
            emotion: "dance".into(),
        },
    );
    assert_eq!(sim.errors(taro), vec![ErrorCode::UnknownEmotion]);
}

#[test]
fn a_lecture_may_bring_its_own_emotion_buttons() {
    let mut own = spec();
    own.emotions = vec![protocol::server::Emotion {
        key: "wow".into(),
        label_ja: "すごい".into(),
        label_en: "Wow".into(),
    }];
    let mut sim = Sim::with(own, RoomSettings::default(), START);
    let taro = sim.join("u1", "taro", Role::Learner);
    assert_eq!(sim.welcome(taro).lecture.emotions.len(), 1);
    sim.send(
        taro,
        ClientMsg::React {
            emotion: "good".into(),
        },
    );
    assert_eq!(sim.errors(taro), vec![ErrorCode::UnknownEmotion]);
}
