use super::*;

// ----- seats -----

#[test]
fn a_learner_sits_moves_and_everyone_sees_it_in_one_batch_per_tick() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    let hanako = sim.join("u2", "hanako", Role::Learner);
    let sensei = sim.join("t1", "先生", Role::Instructor);
    sim.run_for(250);
    sim.take(hanako);
    sim.take(sensei);
    sim.take_seat(taro, 0, 0);
    sim.take_seat(taro, 1, 2);
    sim.take_seat(taro, 1, 3);
    let told: Vec<ServerMsg> = sim.take(taro);
    assert!(
        told.iter().any(|m| *m
            == ServerMsg::YourSeat {
                seat: Some(Seat::new(1, 3))
            }),
        "the learner hears where it sits at once: {told:?}"
    );
    assert!(
        sim.take(hanako).is_empty(),
        "seat changes wait for the tick"
    );
    sim.run_for(250);

    // The staff see who sits where.
    let changes = seat_updates(&sim.take(sensei));
    let occupied: Vec<Seat> = changes
        .iter()
        .filter(|c| c.occupant.is_some())
        .map(|c| c.seat)
        .collect();
    assert_eq!(
        occupied,
        vec![Seat::new(1, 3)],
        "only the final seat is occupied: {changes:?}"
    );
    assert_eq!(changes.len(), 3, "each touched seat once");

    // A learner sees the grid change, by seat number, and no one's name or id.
    let got = updates(&sim.take(hanako));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].seats.is_empty(), "no occupants for learners");
    assert_eq!(got[0].taken, numbers(&[(1, 3)]));
    assert_eq!(got[0].freed, numbers(&[(0, 0), (1, 2)]));
    assert!(got[0].away.is_empty() && got[0].back.is_empty());
    assert_eq!(sim.occupant(Seat::new(1, 3)), Some("u1"));
    assert_eq!(sim.occupant(Seat::new(0, 0)), None);
}

#[test]
fn a_learner_s_welcome_shows_the_grid_as_bitmaps_and_no_one_s_name() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    let hanako = sim.join("u2", "hanako", Role::Learner);
    sim.take_seat(taro, 0, 1);
    sim.take_seat(hanako, 3, 4);
    sim.drop_conn(hanako);
    let jiro = sim.join("u3", "jiro", Role::Learner);
    let w = sim.welcome(jiro);
    assert_eq!(w.seats, None, "occupants are for the staff");
    assert_eq!(w.occupancy.occupied.iter_set().collect::<Vec<_>>(), [1, 19]);
    assert_eq!(w.occupancy.away.iter_set().collect::<Vec<_>>(), [19]);
    assert_eq!(w.occupancy.occupied.0.len(), 3, "20 seats in 3 bytes");

    let sensei = sim.join("t1", "先生", Role::Instructor);
    let w = sim.welcome(sensei);
    let mut seats: Vec<(Seat, String, bool)> = w
        .seats
        .expect("the staff see who sits where")
        .into_iter()
        .map(|s| (s.seat, s.occupant.nickname.to_string(), s.occupant.away))
        .collect();
    seats.sort();
    assert_eq!(
        seats,
        [
            (Seat::new(0, 1), "taro".to_owned(), false),
            (Seat::new(3, 4), "hanako".to_owned(), true),
        ]
    );
    assert_eq!(w.occupancy.occupied.iter_set().collect::<Vec<_>>(), [1, 19]);
}

#[test]
fn a_learner_asks_who_sits_where_and_only_it_is_told() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    let hanako = sim.join("u2", "hanako", Role::Learner);
    sim.take_seat(taro, 0, 1);
    sim.take_seat(hanako, 2, 2);
    sim.take(hanako);
    // Names go with the grid the learner has: a seat taken since the last tick is not named
    // before the tick tells everyone it is taken.
    sim.send(
        hanako,
        ClientMsg::SeatNames {
            seats: numbers(&[(0, 1)]),
        },
    );
    assert_eq!(sim.take(hanako), [ServerMsg::SeatNames { seats: vec![] }]);
    sim.run_for(250);
    sim.take(taro);
    sim.take(hanako);
    let asked = numbers(&[(2, 2), (0, 0), (0, 1), (2, 2)]);
    sim.send_numbered(hanako, 7, ClientMsg::SeatNames { seats: asked });
    let got = sim.take(hanako);
    assert_eq!(
        got,
        [ServerMsg::SeatNames {
            seats: vec![
                SeatName {
                    seat: Seat::new(0, 1).number(5),
                    nickname: "taro".into()
                },
                SeatName {
                    seat: Seat::new(2, 2).number(5),
                    nickname: "hanako".into()
                },
            ]
        }],
        "occupied seats once each, in order; a question is not acknowledged"
    );
    assert!(sim.take(taro).is_empty(), "nobody else hears it");

    // Bounded, and only seats of the grid.
    let too_many = vec![SeatNumber(0); MAX_SEAT_NAMES + 1];
    sim.send_numbered(hanako, 8, ClientMsg::SeatNames { seats: too_many });
    sim.send(
        hanako,
        ClientMsg::SeatNames {
            seats: vec![SeatNumber(20)],
        },
    );
    let refusals = refusals(sim.take(hanako));
    assert_eq!(
        refusals,
        [
            (ErrorCode::InvalidArgument, Some(CommandId(8))),
            (ErrorCode::SeatOutOfRange, None)
        ]
    );
    // The question changed nothing: the same number is a fresh question next time.
    sim.send_numbered(
        hanako,
        7,
        ClientMsg::SeatNames {
            seats: numbers(&[(0, 1)]),
        },
    );
    assert!(matches!(&sim.take(hanako)[..], [ServerMsg::SeatNames { seats }] if seats.len() == 1));
}

#[test]
fn learners_see_a_seat_go_away_and_come_back_and_a_new_occupant_as_taken() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    let hanako = sim.join("u2", "hanako", Role::Learner);
    sim.take_seat(taro, 2, 2);
    sim.run_for(250);
    sim.take(hanako);

    sim.drop_conn(taro);
    sim.run_for(250);
    let got = updates(&sim.take(hanako));
    assert_eq!(got[0].away, numbers(&[(2, 2)]));
    assert!(got[0].taken.is_empty(), "the same occupant: keep the name");

    let back = sim.join("u1", "taro", Role::Learner);
    sim.run_for(250);
    let got = updates(&sim.take(hanako));
    assert_eq!(got[0].back, numbers(&[(2, 2)]));
    assert!(got[0].taken.is_empty());

    // Back under another nickname: learners must forget the old one.
    sim.drop_conn(back);
    sim.join("u1", "taro2", Role::Learner);
    sim.run_for(250);
    let got = updates(&sim.take(hanako));
    assert_eq!(got[0].taken, numbers(&[(2, 2)]));
    assert!(got[0].back.is_empty() && got[0].away.is_empty());

    // Someone sits down and drops within one tick: taken, and away.
    let jiro = sim.join("u3", "jiro", Role::Learner);
    sim.take_seat(jiro, 0, 0);
    sim.drop_conn(jiro);
    sim.run_for(250);
    let got = updates(&sim.take(hanako));
    assert_eq!(got[0].taken, numbers(&[(0, 0)]));
    assert_eq!(got[0].away, numbers(&[(0, 0)]));
}

#[test]
fn a_taken_or_missing_seat_is_refused_with_a_clear_error() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    let hanako = sim.join("u2", "hanako", Role::Learner);
    sim.take_seat(taro, 0, 0);
    sim.take_seat(hanako, 0, 0);
    assert_eq!(sim.errors(hanako), vec![ErrorCode::SeatTaken]);
    sim.take_seat(hanako, 4, 0);
    assert_eq!(sim.errors(hanako), vec![ErrorCode::SeatOutOfRange]);
    let sensei = sim.join("t1", "先生", Role::Instructor);
    sim.take_seat(sensei, 2, 2);
    assert_eq!(
        sim.errors(sensei),
        vec![ErrorCode::NotAllowed],
        "the grid is for learners"
    );
}

#[test]
fn a_dropped_learner_gets_the_same_seat_back_within_the_grace_period() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    let hanako = sim.join("u2", "hanako", Role::Learner);
    let sensei = sim.join("t1", "先生", Role::Instructor);
    sim.take_seat(taro, 2, 2);
    sim.drop_conn(taro);
    sim.run_for(250);
    let away = seat_updates(&sim.take(sensei));
    assert_eq!(
        away.last()
            .and_then(|c| c.occupant.as_ref())
            .map(|o| o.away),
        Some(true)
    );
    sim.take_seat(hanako, 2, 2);
    assert_eq!(
        sim.errors(hanako),
        vec![ErrorCode::SeatTaken],
        "a held seat is not free"
    );

    sim.run_for(2 * MIN - 1000);
    let back = sim.join("u1", "taro", Role::Learner);
    assert_eq!(sim.welcome(back).your_seat, Some(Seat::new(2, 2)));
    sim.run_for(10 * MIN);
    assert_eq!(
        sim.occupant(Seat::new(2, 2)),
        Some("u1"),
        "back in time: the hold is over"
    );
}

#[test]
fn a_seat_not_returned_to_is_freed_after_the_grace_period() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.take_seat(taro, 2, 2);
    sim.drop_conn(taro);
    sim.run_for(2 * MIN - 1);
    assert_eq!(sim.occupant(Seat::new(2, 2)), Some("u1"));
    sim.run_for(1);
    assert_eq!(sim.occupant(Seat::new(2, 2)), None);
    let back = sim.join("u1", "taro", Role::Learner);
    assert_eq!(sim.welcome(back).your_seat, None);
}

#[test]
fn leaving_frees_the_seat_at_once_and_closes_normally() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.take_seat(taro, 1, 1);
    sim.send(taro, ClientMsg::Leave);
    assert_eq!(sim.closed[&taro], None);
    assert_eq!(sim.occupant(Seat::new(1, 1)), None);
    assert_eq!(sim.room.connection_count(), 0);
}

#[test]
fn a_second_connection_of_the_same_learner_replaces_the_first() {
    let mut sim = doors_open_sim();
    let tab1 = sim.join("u1", "taro", Role::Learner);
    sim.take_seat(tab1, 0, 1);
    let tab2 = sim.join("u1", "taro", Role::Learner);
    assert_eq!(sim.closed[&tab1], Some(CloseCode::Replaced));
    assert_eq!(sim.welcome(tab2).your_seat, Some(Seat::new(0, 1)));
    assert_eq!(sim.room.connection_count(), 1);
    assert_eq!(
        sim.room.held_seat_count(),
        0,
        "the old connection's end does not hold the seat"
    );
}

#[test]
fn every_stay_is_reported_with_the_seat_it_ended_in() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.take_seat(taro, 1, 3);
    sim.drop_conn(taro);
    let back = sim.join("u1", "taro", Role::Learner);
    sim.send(back, ClientMsg::Leave);
    let stays: Vec<(ConnId, bool, Option<Seat>)> = sim
        .attendance
        .iter()
        .map(|a| match a {
            Attendance::Entered { conn, .. } => (*conn, true, None),
            Attendance::Left { conn, seat, .. } => (*conn, false, *seat),
        })
        .collect();
    assert_eq!(
        stays,
        vec![
            (taro, true, None),
            (taro, false, Some(Seat::new(1, 3))),
            (back, true, None),
            (back, false, Some(Seat::new(1, 3))),
        ]
    );
    let sensei = sim.join("t1", "先生", Role::Instructor);
    sim.send(sensei, ClientMsg::EndLecture);
    assert!(
        sim.ended_at.is_some(),
        "the end is reported for the records"
    );
}
