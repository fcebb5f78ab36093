use super::*;

// ----- seats -----

#[test]
fn a_learner_sits_moves_and_everyone_sees_it_in_one_batch_per_tick() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    let hanako = sim.join("u2", "hanako", Role::Learner);
    sim.run_for(250);
    sim.take(hanako);
    sim.take_seat(taro, 0, 0);
    sim.take_seat(taro, 1, 2);
    sim.take_seat(taro, 1, 3);
    assert!(
        sim.take(hanako).is_empty(),
        "seat changes wait for the tick"
    );
    sim.run_for(250);
    let changes = seat_updates(&sim.take(hanako));
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
    assert_eq!(sim.occupant(Seat::new(1, 3)), Some("u1"));
    assert_eq!(sim.occupant(Seat::new(0, 0)), None);
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
    sim.take_seat(taro, 2, 2);
    sim.drop_conn(taro);
    sim.run_for(250);
    let away = seat_updates(&sim.take(hanako));
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
