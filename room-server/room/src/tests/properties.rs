use super::*;

// ----- invariants under random use -----

#[derive(Clone, Debug)]
enum Step {
    Join(usize),
    Drop(usize),
    Leave(usize),
    Sit(usize, u16, u16),
    Stand(usize),
    Chat(usize, bool),
    React(usize, usize),
    Staff(usize, usize),
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
        3 => (who.clone(), any::<bool>()).prop_map(|(w, q)| Step::Chat(w, q)),
        3 => (who.clone(), 0..6usize).prop_map(|(w, e)| Step::React(w, e)),
        2 => (who.clone(), 0..9usize).prop_map(|(w, a)| Step::Staff(w, a)),
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

impl Room {
    /// Every invariant of ARCHITECTURE.md that the room's own state can show.
    fn assert_invariants(&self) {
        self.grid.assert_consistent();
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
            let live = |c: &Option<ConnId>, sim: &Sim| c.filter(|c| !sim.closed.contains_key(c));
            match step {
                Step::Join(w) => {
                    let c = sim.join(&format!("u{w}"), &format!("n{w}"), role_of(w));
                    if let Some(ServerMsg::Welcome(welcome)) = sim.inbox.get(&c).and_then(|m| m.first()) {
                        first_offset.insert(c, welcome.last_offset);
                    }
                    conns[w] = Some(c);
                }
                Step::Drop(w) => if let Some(c) = live(&conns[w], &sim) { sim.drop_conn(c) },
                Step::Leave(w) => if let Some(c) = live(&conns[w], &sim) { sim.send(c, ClientMsg::Leave) },
                Step::Sit(w, r, col) => if let Some(c) = live(&conns[w], &sim) { sim.take_seat(c, r, col) },
                Step::Stand(w) => if let Some(c) = live(&conns[w], &sim) { sim.send(c, ClientMsg::LeaveSeat) },
                Step::Chat(w, q) => if let Some(c) = live(&conns[w], &sim) {
                    sim.send(c, ClientMsg::Chat { text: format!("from {w}"), question: q });
                },
                Step::React(w, e) => if let Some(c) = live(&conns[w], &sim) {
                    let keys = ["good", "i_see", "lost", "applause", "slower", "nope"];
                    let valid = role_of(w) == Role::Learner && e < 5 && !sim.room.is_over();
                    sim.send(c, ClientMsg::React { emotion: keys[e].into() });
                    expected_presses += u64::from(valid);
                },
                Step::Staff(w, a) => if let Some(c) = live(&conns[w], &sim) {
                    sim.take(c);
                    let before = (sim.room.banned.len(), sim.room.connection_count(), sim.room.chat.last());
                    sim.send(c, staff_action(a, (w + a) % PEOPLE));
                    if !role_of(w).is_staff() {
                        let errors = sim.errors(c);
                        prop_assert_eq!(errors, vec![ErrorCode::NotAllowed]);
                        let after = (sim.room.banned.len(), sim.room.connection_count(), sim.room.chat.last());
                        prop_assert_eq!(before, after, "a refused command changes nothing");
                    }
                },
                Step::Wait(ms) => sim.run_for(ms),
            }
            sim.room.assert_invariants();
        }
        sim.run_for(250);
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
}
