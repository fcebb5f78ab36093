use super::*;

// ----- acknowledgements and exactly-once -----

#[test]
fn a_numbered_command_is_acknowledged_after_what_it_caused() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    let hanako = sim.join("u2", "hanako", Role::Learner);
    sim.take(taro);
    sim.send_numbered(taro, 7, chat("hello"));
    let got = sim.take(taro);
    assert_eq!(chat_texts(&got), ["hello"]);
    assert_eq!(got.last(), Some(&ServerMsg::Ack { id: CommandId(7) }));
    // Others see the chat, never the acknowledgement.
    assert!(
        !sim.take(hanako)
            .iter()
            .any(|m| matches!(m, ServerMsg::Ack { .. }))
    );
    // An unnumbered command gets no acknowledgement.
    sim.send(taro, chat("plain"));
    assert!(
        !sim.take(taro)
            .iter()
            .any(|m| matches!(m, ServerMsg::Ack { .. }))
    );
}

#[test]
fn a_command_sent_again_after_a_reconnect_takes_effect_once() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    let hanako = sim.join("u2", "hanako", Role::Learner);
    // The chat is applied, but the connection drops before its acknowledgement arrives.
    sim.send_numbered(taro, 41, chat("did this arrive?"));
    sim.drop_conn(taro);
    sim.take(hanako);
    // The client comes back and sends what it has no acknowledgement for.
    let back = sim.join("u1", "taro", Role::Learner);
    sim.take(back);
    sim.send_numbered(back, 41, chat("did this arrive?"));
    assert_eq!(sim.take(back), vec![ServerMsg::Ack { id: CommandId(41) }]);
    assert!(chat_texts(&sim.take(hanako)).is_empty(), "not twice");
    // A refused command is refused again, with the same code, never applied.
    sim.send_numbered(back, 42, ClientMsg::StartLecture);
    sim.send_numbered(back, 42, ClientMsg::StartLecture);
    let refusals = refusals(sim.take(back));
    assert_eq!(
        refusals,
        vec![(ErrorCode::NotAllowed, Some(CommandId(42))); 2]
    );
}

#[test]
fn the_numbers_a_room_remembers_per_person_are_bounded() {
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    let total = RECENT_COMMANDS as u64 + 10;
    for id in 1..=total {
        sim.send_numbered(taro, id, ClientMsg::LeaveSeat);
    }
    let remembered = sim.room.attendees[&UserId::from("u1")].recent.0.len();
    assert_eq!(remembered, RECENT_COMMANDS);
    // The latest are still recognised.
    sim.take(taro);
    sim.send_numbered(taro, total, chat("late copy"));
    assert_eq!(
        sim.take(taro),
        vec![ServerMsg::Ack {
            id: CommandId(total)
        }]
    );
}

#[test]
fn a_connection_the_log_disconnects_while_its_node_holds_it_is_told_to_reconnect() {
    // Another node took this one for dead (it was only frozen) and its disconnect reached the
    // room: the node still holding the socket must close it, with a reconnect code.
    let mut sim = doors_open_sim();
    let taro = sim.join("u1", "taro", Role::Learner);
    sim.send(
        taro,
        ClientMsg::TakeSeat {
            seat: Seat::new(1, 1),
        },
    );
    sim.room.handle_disconnect(sim.now, taro);
    sim.drain();
    assert_eq!(sim.closed[&taro], Some(CloseCode::ResyncRequired));
    // It resumes with its seat, which was held for it.
    let back = sim.join("u1", "taro", Role::Learner);
    assert_eq!(sim.welcome(back).your_seat, Some(Seat::new(1, 1)));
}
