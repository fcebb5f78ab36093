use super::*;
use protocol::Codec;

// ----- what a large lecture costs on the wire -----

/// The hall the load generator seats 5,000 learners in (`BenchLecture::for_learners`).
const ROWS: u16 = 51;
const COLS: u16 = 100;
const LEARNERS: u16 = 5000;
/// The most a learner's welcome may weigh in a full hall, in MessagePack.
const WELCOME_BUDGET: usize = 16 * 1024;

fn hall() -> LectureInfo {
    LectureInfo {
        rows: ROWS,
        cols: COLS,
        ..spec()
    }
}

/// Everything `conn` is sent, in order; the rest of the room's outputs are dropped (a node
/// would deliver them to the others).
fn drain_for(room: &mut Room, conn: ConnId) -> Vec<ServerMsg> {
    let mut got = Vec::new();
    while let Some(output) = room.poll_output() {
        if let Output::Send { to, msg } = output {
            let mut mine = false;
            room.for_each_recipient(to, |c| mine |= c == conn);
            if mine {
                got.push(msg);
            }
        }
    }
    got
}

/// Learner number `i`, as a node names people: a pseudonym and a Japanese nickname.
fn learner(i: u16) -> Identity {
    Identity {
        user: format!("m-{i:016}").into(),
        account: format!("acct-{i}").into(),
        nickname: format!("受講者{i}").into(),
        role: Role::Learner,
        issued_at: START.minus_ms(30 * MIN),
    }
}

/// A hall during its lecture: `seated` learners in their seats (row by row), and `lines` chat
/// lines of a usual length said so far.
fn full_hall(seated: u16, lines: u16) -> (Room, UnixMillis) {
    let mut now = START.minus_ms(30 * MIN);
    let mut room = Room::new(hall(), RoomSettings::default(), now);
    for i in 0..seated {
        let conn = ConnId(u64::from(i) + 1);
        room.handle_join(now, conn, learner(i), None);
        let seat = Seat::new(i / COLS, i % COLS);
        room.handle_command(now, conn, ClientMsg::TakeSeat { seat }.into());
        drain_for(&mut room, ConnId(0));
    }
    for n in 0..lines {
        // Each line from another learner, as the chat limit spreads them; now and then a
        // question.
        now = now.plus_ms(1000);
        let text = format!("{n}: スライド12枚目の図について、もう一度説明をお願いします");
        let question = n % 5 == 0;
        let conn = ConnId(u64::from(n % seated.max(1)) + 1);
        room.handle_command(now, conn, ClientMsg::Chat { text, question }.into());
        drain_for(&mut room, ConnId(0));
    }
    room.handle_timeout(now.plus_ms(250));
    drain_for(&mut room, ConnId(0));
    (room, now.plus_ms(250))
}

fn msgpack(msg: &ServerMsg) -> usize {
    Codec::MsgPack.encode_server(msg).expect("encodes").len()
}

#[test]
fn a_learner_entering_a_full_hall_of_5000_gets_a_welcome_of_at_most_16_kib() {
    // More said than a welcome carries: it carries the newest `welcome_chat_len`.
    let lines = 200;
    let (mut room, now) = full_hall(LEARNERS, lines);
    assert_eq!(room.seated_count(), usize::from(LEARNERS));
    let newcomer = ConnId(99_999);
    room.handle_join(now, newcomer, learner(LEARNERS), None);
    let welcome = drain_for(&mut room, newcomer)
        .into_iter()
        .find(|m| matches!(m, ServerMsg::Welcome(_)))
        .expect("a welcome");
    let ServerMsg::Welcome(w) = &welcome else {
        unreachable!("found above")
    };
    let carried = crate::RoomSettings::default().welcome_chat_len;
    assert_eq!(
        w.chat.len(),
        carried,
        "the newest of the chat history is in it"
    );
    assert_eq!(w.occupancy.occupied.count(), usize::from(LEARNERS));
    let size = msgpack(&welcome);
    let mut bare = (**w).clone();
    bare.chat.clear();
    let without_chat = msgpack(&ServerMsg::Welcome(Box::new(bare)));

    // The staff still get every occupant.
    let sensei = ConnId(100_000);
    let mut instructor = learner(LEARNERS + 1);
    instructor.role = Role::Instructor;
    room.handle_join(now, sensei, instructor, None);
    let staff = drain_for(&mut room, sensei)
        .into_iter()
        .find(|m| matches!(m, ServerMsg::Welcome(_)))
        .map(|m| msgpack(&m))
        .expect("a welcome");
    eprintln!(
        "a learner's welcome in a hall of {LEARNERS}: {size} bytes with {carried} chat lines, \
         {without_chat} without; a staff member's: {staff} bytes"
    );
    assert!(
        size <= WELCOME_BUDGET,
        "a learner's welcome weighs {size} bytes ({without_chat} without the chat)"
    );
    assert!(
        without_chat < 2 * 1024,
        "the grid itself is {without_chat} bytes"
    );
}

#[test]
fn a_join_storm_costs_learners_a_few_bytes_per_seat() {
    let (mut room, now) = full_hall(0, 0);
    let observer = ConnId(99_999);
    room.handle_join(now, observer, learner(LEARNERS), None);
    let sensei = ConnId(100_000);
    let mut instructor = learner(LEARNERS + 1);
    instructor.role = Role::Instructor;
    room.handle_join(now, sensei, instructor, None);
    room.handle_timeout(now.plus_ms(250));
    drain_for(&mut room, observer);
    // Every learner enters and sits within one tick.
    let now = now.plus_ms(250);
    for i in 0..LEARNERS {
        let conn = ConnId(u64::from(i) + 1);
        room.handle_join(now, conn, learner(i), None);
        let seat = Seat::new(i / COLS, i % COLS);
        room.handle_command(now, conn, ClientMsg::TakeSeat { seat }.into());
        drain_for(&mut room, observer);
    }
    room.handle_timeout(now.plus_ms(250));
    let mut learner_update = None;
    let mut staff_update = None;
    while let Some(output) = room.poll_output() {
        if let Output::Send {
            to,
            msg: msg @ ServerMsg::Update(_),
        } = output
        {
            match to {
                Audience::Learners => learner_update = Some(msg),
                Audience::Staff => staff_update = Some(msg),
                _ => panic!("a seat change for {to:?}"),
            }
        }
    }
    let learner_update = learner_update.expect("the learners' update");
    let ServerMsg::Update(u) = &learner_update else {
        unreachable!("matched above")
    };
    assert_eq!(u.taken.len(), usize::from(LEARNERS));
    assert_eq!(u.present, Some(u32::from(LEARNERS) + 2));
    let size = msgpack(&learner_update);
    let staff = msgpack(&staff_update.expect("the staff's update"));
    let per_seat = size as f64 / f64::from(LEARNERS);
    eprintln!(
        "a tick of {LEARNERS} seats taken: {size} bytes for learners ({per_seat:.2} a seat), \
         {staff} bytes for the staff"
    );
    assert!(u.seats.is_empty(), "no occupants for learners");
    assert!(per_seat <= 3.5, "{per_seat:.2} bytes a seat");
}

#[test]
fn five_thousand_upvotes_in_a_tick_reach_a_learner_as_one_small_update() {
    let (mut room, mut now) = full_hall(LEARNERS, 100);
    // Question offsets of the hall's chat: every fifth line, from the first.
    let questions: Vec<ChatOffset> = (0..20).map(|n| ChatOffset(n * 5 + 1)).collect();
    let watcher = ConnId(1);
    now = now.plus_ms(1);
    for i in 0..LEARNERS {
        let conn = ConnId(u64::from(i) + 1);
        let offset = questions[usize::from(i) % questions.len()];
        room.handle_command(now, conn, ClientMsg::Upvote { offset }.into());
        room.handle_command(now, conn, ClientMsg::RaiseHand.into());
        drain_for(&mut room, ConnId(0));
    }
    room.handle_timeout(now.plus_ms(250));
    let got = drain_for(&mut room, watcher);
    let updates: Vec<&RoomUpdate> = got
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Update(u) => Some(u),
            _ => None,
        })
        .collect();
    assert_eq!(updates.len(), 1, "one update for the tick");
    let update = updates[0];
    // Every question's new count once (a learner's own question is refused, so some get one
    // vote fewer), the hand count, and no one's hand in a learner's update.
    assert_eq!(update.votes.len(), questions.len());
    assert!(update.votes.iter().all(|v| (249..=250).contains(&v.votes)));
    assert_eq!(update.hand_count, Some(u32::from(LEARNERS)));
    assert!(update.hands_raised.is_empty());
    let bytes = msgpack(&ServerMsg::Update(update.clone()));
    assert!(bytes < 512, "{bytes} bytes");
}
