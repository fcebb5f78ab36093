use super::*;

// ----- invariants under random use -----

#[derive(Clone, Debug)]
enum Step {
    Join(usize),
    Drop(usize),
    Leave(usize),
    Sit(usize, u16, u16),
    Stand(usize),
    Names(usize),
    Chat(usize, bool),
    React(usize, usize),
    Staff(usize, usize),
    Hand(usize, bool),
    Vote(usize, u64),
    Wait(u64),
}

const PEOPLE: usize = 6;

fn step() -> impl Strategy<Value = Step> {
    let who = 0..PEOPLE;
    prop_oneof![
        3 => who.clone().prop_map(Step::Join),
        1 => who.clone().prop_map(Step::Drop),
        1 => who.clone().prop_map(Step::Leave),
        4 => (who.clone(), 0..4u16, 0..5u16).prop_map(|(w, r, c)| Step::Sit(w, r, c)),
        1 => who.clone().prop_map(Step::Stand),
        2 => who.clone().prop_map(Step::Names),
        3 => (who.clone(), any::<bool>()).prop_map(|(w, q)| Step::Chat(w, q)),
        3 => (who.clone(), 0..6usize).prop_map(|(w, e)| Step::React(w, e)),
        2 => (who.clone(), 0..9usize).prop_map(|(w, a)| Step::Staff(w, a)),
        2 => (who.clone(), any::<bool>()).prop_map(|(w, up)| Step::Hand(w, up)),
        2 => (who.clone(), 1..12u64).prop_map(|(w, o)| Step::Vote(w, o)),
        2 => (1..200_000u64).prop_map(Step::Wait),
    ]
}

/// Person 0 is the instructor, person 1 a moderator, the rest learners.
fn role_of(who: usize) -> Role {
    match who {
        0 => Role::Instructor,
        1 => Role::Moderator,
        _ => Role::Learner,
    }
}

fn staff_action(action: usize, target: usize) -> ClientMsg {
    let user = UserId::from(format!("u{target}"));
    match action {
        0 => ClientMsg::DeleteChat {
            offset: ChatOffset(target as u64 + 1),
        },
        1 => ClientMsg::MarkAnswered {
            offset: ChatOffset(target as u64 + 1),
        },
        2 => ClientMsg::CallOn {
            nickname: Some(format!("n{target}").into()),
            seat: None,
            user: None,
        },
        3 => ClientMsg::ClearCall,
        4 => ClientMsg::Announce {
            text: format!("notice {target}"),
        },
        5 => ClientMsg::Mute { user, seconds: 30 },
        6 => ClientMsg::Unmute { user },
        7 => ClientMsg::Remove {
            user,
            allow_return: true,
        },
        _ => ClientMsg::Remove {
            user,
            allow_return: false,
        },
    }
}

/// The connection of person `who`, if it is still open.
fn live(sim: &Sim, conns: &[Option<ConnId>], who: Option<usize>) -> Option<ConnId> {
    who.and_then(|w| conns[w])
        .filter(|c| !sim.closed.contains_key(c))
}

/// Plays one step: person `w` (by index in `conns`) joins, acts or waits.
fn play(sim: &mut Sim, conns: &mut [Option<ConnId>], step: &Step) {
    let msg = match *step {
        Step::Join(w) => {
            conns[w] = Some(sim.join(&format!("u{w}"), &format!("n{w}"), role_of(w)));
            return;
        }
        Step::Wait(ms) => return sim.run_for(ms),
        Step::Drop(w) => {
            if let Some(c) = live(sim, conns, Some(w)) {
                sim.drop_conn(c);
            }
            return;
        }
        Step::Leave(_) => ClientMsg::Leave,
        Step::Sit(_, row, col) => ClientMsg::TakeSeat {
            seat: Seat::new(row, col),
        },
        Step::Stand(_) => ClientMsg::LeaveSeat,
        Step::Names(_) => ClientMsg::SeatNames {
            seats: (0..20).map(SeatNumber).collect(),
        },
        Step::Chat(w, question) => ClientMsg::Chat {
            text: format!("from {w}"),
            question,
        },
        Step::React(_, e) => ClientMsg::React {
            emotion: ["good", "i_see", "lost", "applause", "slower", "nope"][e].into(),
        },
        Step::Staff(w, a) => staff_action(a, (w + a) % PEOPLE),
        Step::Hand(_, up) => match up {
            true => ClientMsg::RaiseHand,
            false => ClientMsg::LowerHand { user: None },
        },
        Step::Vote(_, o) => ClientMsg::Upvote {
            offset: ChatOffset(o),
        },
    };
    if let Some(c) = live(sim, conns, step.who()) {
        sim.send(c, msg);
    }
}

impl Step {
    /// The person who takes the step (none for waiting).
    fn who(&self) -> Option<usize> {
        match *self {
            Step::Join(w)
            | Step::Drop(w)
            | Step::Leave(w)
            | Step::Sit(w, ..)
            | Step::Stand(w)
            | Step::Names(w)
            | Step::Chat(w, _)
            | Step::React(w, _)
            | Step::Staff(w, _)
            | Step::Hand(w, _)
            | Step::Vote(w, _) => Some(w),
            Step::Wait(_) => None,
        }
    }
}

impl Room {
    /// Every invariant of ARCHITECTURE.md that the room's own state can show.
    fn assert_invariants(&self) {
        self.grid
            .assert_consistent(|u| self.attendees[u].conn.is_none());
        for (user, _) in self.grid.occupied() {
            let a = &self.attendees[user];
            assert_eq!(a.role, Role::Learner, "only learners sit");
            assert!(
                !self.banned.contains(user),
                "a banned learner keeps no seat"
            );
        }
        for (conn, user) in &self.conns {
            assert_eq!(
                self.attendees[user].conn,
                Some(*conn),
                "a person has one connection"
            );
            assert!(
                !self.banned.contains(user),
                "a banned learner is not in the room"
            );
        }
        let staff: BTreeSet<ConnId> = self
            .conns
            .iter()
            .filter(|(_, user)| self.attendees[*user].role.is_staff())
            .map(|(conn, _)| *conn)
            .collect();
        assert_eq!(
            self.staff_conns, staff,
            "the staff index holds exactly the staff's connections"
        );
        let history = self.chat.history();
        assert!(
            history
                .iter()
                .zip(history.iter().skip(1))
                .all(|(a, b)| b.offset() == a.offset().next())
        );
        assert_eq!(
            history.back().map_or(self.chat.last(), ChatEvent::offset),
            self.chat.last()
        );
        for (user, _) in self.hands.queue() {
            let a = &self.attendees[user];
            assert_eq!(a.role, Role::Learner, "only learners raise a hand");
            assert!(
                !self.banned.contains(user),
                "a banned learner's hand is down"
            );
            assert!(
                a.conn.is_some() || a.held_until.is_some(),
                "a hand waits for its learner only while their return is awaited"
            );
        }
        for question in self.votes.counts() {
            let voted = self.chat.history().iter().any(|e| {
                matches!(e, ChatEvent::Message(m) if m.offset == question.offset && m.question && !m.deleted)
            });
            assert!(voted, "votes are for questions still shown");
        }
    }
}

/// The grid as one connection's messages drew it, from its last welcome on: the learners'
/// bitmaps, the staff's occupants (user and away, by seat), and the seat it was told is its own.
#[derive(Debug, Default)]
struct Seen {
    occupied: Vec<bool>,
    away: Vec<bool>,
    occupants: BTreeMap<Seat, (UserId, bool)>,
    yours: Option<Seat>,
    /// Nicknames a learner was told, by seat number, and not told to forget since.
    names: BTreeMap<u32, Nickname>,
}

fn seen(msgs: &[ServerMsg], size: usize) -> Seen {
    let mut seen = Seen::default();
    for msg in msgs {
        match msg {
            ServerMsg::Welcome(w) => {
                seen.occupied = (0..size).map(|i| w.occupancy.occupied.get(i)).collect();
                seen.away = (0..size).map(|i| w.occupancy.away.get(i)).collect();
                seen.occupants = w
                    .seats
                    .iter()
                    .flatten()
                    .map(|s| (s.seat, (s.occupant.user.clone(), s.occupant.away)))
                    .collect();
                seen.yours = w.your_seat;
                seen.names.clear();
            }
            ServerMsg::Update(u) => {
                // Each list says a seat's whole state at the tick's end.
                let mut set = |numbers: &[SeatNumber], occupied: bool, away: bool, forget: bool| {
                    for n in numbers {
                        let i = n.0 as usize;
                        seen.occupied[i] = occupied;
                        seen.away[i] = away;
                        if forget {
                            seen.names.remove(&n.0);
                        }
                    }
                };
                set(&u.freed, false, false, true);
                set(&u.taken, true, false, true);
                set(&u.away, true, true, false);
                set(&u.back, true, false, false);
                for change in &u.seats {
                    match &change.occupant {
                        Some(o) => seen.occupants.insert(change.seat, (o.user.clone(), o.away)),
                        None => seen.occupants.remove(&change.seat),
                    };
                }
            }
            ServerMsg::YourSeat { seat } => seen.yours = *seat,
            ServerMsg::SeatNames { seats } => {
                for s in seats {
                    seen.names.insert(s.seat.0, s.nickname.clone());
                }
            }
            _ => {}
        }
    }
    seen
}

impl Sim {
    /// Every connection still open drew the grid as it is: a learner's bitmaps, a staff
    /// member's occupants, and each learner's own seat.
    fn assert_everyone_sees_the_grid(&self) {
        let occupancy = self.room.grid.occupancy();
        let size = usize::from(spec().rows) * usize::from(spec().cols);
        for (conn, user) in &self.room.conns {
            let seen = seen(self.log.get(conn).map_or(&[][..], Vec::as_slice), size);
            if self.room.attendees[user].role.is_staff() {
                let actual: BTreeMap<Seat, (UserId, bool)> = self
                    .room
                    .grid
                    .occupied()
                    .map(|(u, s)| (s, (u.clone(), self.room.grid.is_away(s))))
                    .collect();
                assert_eq!(seen.occupants, actual, "staff {conn:?} sees every occupant");
            } else {
                let bits = |b: &protocol::SeatBits| (0..size).map(|i| b.get(i)).collect::<Vec<_>>();
                assert_eq!(
                    seen.occupied,
                    bits(&occupancy.occupied),
                    "learner {conn:?}: taken"
                );
                assert_eq!(seen.away, bits(&occupancy.away), "learner {conn:?}: away");
                assert_eq!(
                    seen.yours,
                    self.room.grid.seat_of(user),
                    "learner {conn:?}: its seat"
                );
                for (n, nickname) in &seen.names {
                    let seat = Seat::from_number(SeatNumber(*n), spec().rows, spec().cols);
                    let sits = seat.and_then(|s| self.room.grid.occupant(s));
                    assert_eq!(
                        sits.map(|u| &self.room.attendees[u].nickname),
                        Some(nickname),
                        "learner {conn:?} keeps a nickname for seat {n}"
                    );
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_after_every_step(steps in prop::collection::vec(step(), 1..120)) {
        // A huge burst lets every valid press through, so totals must equal presses sent.
        let settings = RoomSettings { reaction_burst: 1_000_000, ..RoomSettings::default() };
        let mut sim = Sim::with(spec(), settings, START.minus_ms(30 * MIN));
        let observer = sim.join("observer", "obs", Role::Instructor);
        let mut conns: Vec<Option<ConnId>> = vec![None; PEOPLE];
        let mut expected_presses = 0u64;
        let mut first_offset: HashMap<ConnId, ChatOffset> = HashMap::new();
        for step in steps {
            let acting = live(&sim, &conns, step.who());
            let mut refusable = None;
            match step {
                Step::React(w, e) if acting.is_some() => {
                    let valid = role_of(w) == Role::Learner && e < 5 && !sim.room.is_over();
                    expected_presses += u64::from(valid);
                }
                Step::Staff(w, _) if !role_of(w).is_staff() => if let Some(c) = acting {
                    sim.take(c);
                    refusable = Some((c, (sim.room.banned.len(), sim.room.connection_count(), sim.room.chat.last())));
                },
                _ => {}
            }
            play(&mut sim, &mut conns, &step);
            match step {
                Step::Join(w) => if let Some(c) = conns[w] {
                    if let Some(ServerMsg::Welcome(welcome)) = sim.inbox.get(&c).and_then(|m| m.first()) {
                        first_offset.insert(c, welcome.last_offset);
                    }
                },
                Step::Staff(..) => if let Some((c, before)) = refusable {
                    prop_assert_eq!(sim.errors(c), vec![ErrorCode::NotAllowed]);
                    let after = (sim.room.banned.len(), sim.room.connection_count(), sim.room.chat.last());
                    prop_assert_eq!(before, after, "a refused command changes nothing");
                },
                // Once a tick sent every change, what everyone drew agrees with the room.
                Step::Wait(_) if !sim.room.grid.has_changes() => sim.assert_everyone_sees_the_grid(),
                _ => {}
            }
            sim.room.assert_invariants();
        }
        sim.run_for(250);
        // A held seat may expire after the last tick: one more sends it.
        if sim.room.grid.has_changes() {
            sim.run_for(250);
        }
        sim.assert_everyone_sees_the_grid();
        let totals: u64 = sim.room.reactions.grand_total();
        prop_assert_eq!(totals, expected_presses);
        if !sim.closed.contains_key(&observer) {
            let metered: u64 = sim.take(observer).iter().filter_map(|m| match m {
                ServerMsg::Meter(m) => Some(m.tally.values().map(|v| u64::from(*v)).sum::<u64>()),
                _ => None,
            }).sum();
            prop_assert_eq!(metered, expected_presses, "the instructor's tallies add up to every accepted press");
        }
        // Every client saw the chat stream in order with no gaps, from where its welcome left off.
        for (conn, msgs) in &sim.log {
            let mut last = first_offset.get(conn).copied().unwrap_or_default();
            for event in chat_events(msgs) {
                prop_assert_eq!(event.offset(), last.next());
                last = event.offset();
            }
        }
    }

    #[test]
    fn a_room_restored_from_a_snapshot_is_the_room_that_replayed_everything(
        steps in prop::collection::vec(step(), 1..120),
        cut in 0..120usize,
    ) {
        let settings = RoomSettings { reaction_burst: 1_000_000, ..RoomSettings::default() };
        let open = START.minus_ms(30 * MIN);
        let mut whole = Sim::with(spec(), settings.clone(), open);
        let mut restored = Sim::with(spec(), settings, open);
        let (mut whole_conns, mut restored_conns) = (vec![None; PEOPLE], vec![None; PEOPLE]);
        let cut = cut.min(steps.len());
        for (i, step) in steps.iter().enumerate() {
            if i == cut {
                // What a node writes to Redis and a late node reads back.
                let bytes = rmp_serde::to_vec_named(&restored.room).expect("a room encodes");
                restored.room = rmp_serde::from_slice(&bytes).expect("a room decodes");
                prop_assert_eq!(&restored.room, &whole.room, "the snapshot is the room");
            }
            play(&mut whole, &mut whole_conns, step);
            play(&mut restored, &mut restored_conns, step);
        }
        whole.run_for(500);
        restored.run_for(500);
        prop_assert_eq!(&restored.room, &whole.room, "the same state after the rest");
        // And everyone got the same messages, in the same order, from either.
        for (conn, msgs) in &whole.log {
            let theirs = restored.log.get(conn).map_or(&[][..], Vec::as_slice);
            let first = msgs.iter().zip(theirs).position(|(a, b)| a != b);
            prop_assert!(
                first.is_none() && msgs.len() == theirs.len(),
                "{conn:?} got {:?} after the restore where the replay gave {:?}",
                first.map(|i| &theirs[i]), first.map(|i| &msgs[i])
            );
        }
        prop_assert_eq!(&restored.closed, &whole.closed);
    }
}
