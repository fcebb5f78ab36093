//! Raised hands, question upvotes and the staff's list of muted learners.

use super::*;
use protocol::server::{MutedLearner, QuestionVotes, RaisedHand};

fn question(text: &str) -> ClientMsg {
    ClientMsg::Chat {
        text: text.into(),
        question: true,
    }
}

/// The hand queue as a staff connection drew it from its welcome and updates.
fn queue_seen(msgs: &[ServerMsg]) -> Vec<UserId> {
    let mut queue: Vec<UserId> = Vec::new();
    for msg in msgs {
        match msg {
            ServerMsg::Welcome(w) => {
                queue = w.hands.iter().flatten().map(|h| h.user.clone()).collect();
            }
            ServerMsg::Update(u) => {
                queue.retain(|user| !u.hands_lowered.contains(user));
                queue.extend(u.hands_raised.iter().map(|h| h.user.clone()));
            }
            _ => {}
        }
    }
    queue
}

/// The hand count and, for a learner, its own hand, as a connection drew them.
fn hand_seen(msgs: &[ServerMsg]) -> (u32, Option<UnixMillis>) {
    let (mut count, mut yours) = (0, None);
    for msg in msgs {
        match msg {
            ServerMsg::Welcome(w) => (count, yours) = (w.hand_count, w.your_hand),
            ServerMsg::Update(u) => count = u.hand_count.unwrap_or(count),
            ServerMsg::YourHand { raised_at } => yours = *raised_at,
            _ => {}
        }
    }
    (count, yours)
}

/// The upvote counts as a connection drew them: questions with votes, by offset.
fn votes_seen(msgs: &[ServerMsg]) -> BTreeMap<ChatOffset, u32> {
    let mut votes = BTreeMap::new();
    let set = |votes: &mut BTreeMap<ChatOffset, u32>, v: &QuestionVotes| {
        if v.votes == 0 {
            votes.remove(&v.offset);
        } else {
            votes.insert(v.offset, v.votes);
        }
    };
    for msg in msgs {
        match msg {
            ServerMsg::Welcome(w) => {
                votes.clear();
                w.votes.iter().for_each(|v| set(&mut votes, v));
            }
            ServerMsg::Update(u) => u.votes.iter().for_each(|v| set(&mut votes, v)),
            _ => {}
        }
    }
    votes
}

/// The muted learners as a staff connection drew them.
fn muted_seen(msgs: &[ServerMsg]) -> Vec<MutedLearner> {
    let mut muted = Vec::new();
    for msg in msgs {
        match msg {
            ServerMsg::Welcome(w) => muted = w.muted.clone().unwrap_or_default(),
            ServerMsg::MutedLearners { muted: m } => muted = m.clone(),
            _ => {}
        }
    }
    muted
}

fn users(names: &[&str]) -> Vec<UserId> {
    names.iter().map(|n| UserId::from(*n)).collect()
}

#[test]
fn staff_see_raised_hands_first_raised_first_and_calling_on_one_lowers_it() {
    let mut sim = doors_open_sim();
    let teacher = sim.join("t", "先生", Role::Instructor);
    let a = sim.join("a", "あい", Role::Learner);
    let b = sim.join("b", "べん", Role::Learner);
    let c = sim.join("c", "ちか", Role::Learner);
    sim.take_seat(b, 1, 1);
    sim.send(b, ClientMsg::RaiseHand);
    sim.send(a, ClientMsg::RaiseHand);
    sim.send(c, ClientMsg::RaiseHand);
    // A second raise keeps the place.
    sim.send(b, ClientMsg::RaiseHand);
    sim.run_for(300);
    let log = sim.log[&teacher].clone();
    assert_eq!(queue_seen(&log), users(&["b", "a", "c"]));
    let raised: Vec<RaisedHand> = updates(&log)
        .into_iter()
        .flat_map(|u| u.hands_raised)
        .collect();
    assert_eq!(raised[0].nickname.as_str(), "べん");
    assert_eq!(raised[0].seat, Some(Seat::new(1, 1)));
    assert_eq!(
        hand_seen(&sim.log[&a].clone()),
        (3, Some(sim.now.minus_ms(300)))
    );

    // The console calls on the first of the queue by their id.
    sim.send(
        teacher,
        ClientMsg::CallOn {
            nickname: None,
            seat: None,
            user: Some("b".into()),
        },
    );
    sim.run_for(300);
    assert_eq!(queue_seen(&sim.log[&teacher].clone()), users(&["a", "c"]));
    assert_eq!(
        hand_seen(&sim.log[&b].clone()),
        (2, None),
        "b's hand is down"
    );
    assert_eq!(sim.room.call_info().map(|c| c.user), Some("b".into()));

    // c lowers their own; staff dismiss a's.
    sim.send(c, ClientMsg::LowerHand { user: None });
    sim.send(
        teacher,
        ClientMsg::LowerHand {
            user: Some("a".into()),
        },
    );
    sim.run_for(300);
    assert!(queue_seen(&sim.log[&teacher].clone()).is_empty());
    assert_eq!(hand_seen(&sim.log[&a].clone()), (0, None));
}

#[test]
fn a_learner_may_lower_only_their_own_hand_and_staff_raise_none() {
    let mut sim = doors_open_sim();
    let teacher = sim.join("t", "先生", Role::Instructor);
    let a = sim.join("a", "あい", Role::Learner);
    let b = sim.join("b", "べん", Role::Learner);
    sim.send(a, ClientMsg::RaiseHand);
    sim.take(b);
    sim.send(
        b,
        ClientMsg::LowerHand {
            user: Some("a".into()),
        },
    );
    assert_eq!(sim.errors(b), vec![ErrorCode::NotAllowed]);
    sim.take(teacher);
    sim.send(teacher, ClientMsg::RaiseHand);
    sim.send(teacher, ClientMsg::LowerHand { user: None });
    assert_eq!(
        sim.errors(teacher),
        vec![ErrorCode::NotAllowed, ErrorCode::InvalidArgument]
    );
    assert_eq!(sim.room.hands.count(), 1);
}

#[test]
fn a_hand_survives_a_drop_and_is_lowered_when_its_learner_leaves_or_never_returns() {
    let mut sim = doors_open_sim();
    let teacher = sim.join("t", "先生", Role::Instructor);
    let a = sim.join("a", "あい", Role::Learner);
    let b = sim.join("b", "べん", Role::Learner);
    let c = sim.join("c", "ちか", Role::Learner);
    for conn in [a, b, c] {
        sim.send(conn, ClientMsg::RaiseHand);
    }
    // a drops and comes back: the hand kept its place, and the welcome says so.
    sim.drop_conn(a);
    sim.run_for(10_000);
    let a2 = sim.join("a", "あい", Role::Learner);
    let w = sim.welcome(a2);
    assert!(w.your_hand.is_some());
    assert_eq!(w.hand_count, 3);
    // b leaves with the 退室 button; c drops and never returns.
    sim.send(b, ClientMsg::Leave);
    sim.drop_conn(c);
    sim.run_for(RoomSettings::default().seat_grace_ms + 1_000);
    assert_eq!(queue_seen(&sim.log[&teacher].clone()), users(&["a"]));
    let staff_again = sim.join("t", "先生", Role::Instructor);
    let w = sim.welcome(staff_again);
    assert_eq!(
        w.hands
            .map(|h| h.into_iter().map(|h| h.user).collect::<Vec<_>>()),
        Some(users(&["a"]))
    );
    assert_eq!(sim.room.held_seat_count(), 0, "a hand holds no seat");
}

#[test]
fn learners_upvote_a_question_once_and_everyone_gets_the_count_once_a_tick() {
    let mut sim = doors_open_sim();
    let teacher = sim.join("t", "先生", Role::Instructor);
    let asker = sim.join("a", "あい", Role::Learner);
    let voters: Vec<ConnId> = (0..5)
        .map(|i| sim.join(&format!("v{i}"), &format!("v{i}"), Role::Learner))
        .collect();
    sim.send(asker, question("所有権とは?"));
    sim.send(asker, chat("ありがとう"));
    let q = ChatOffset(1);
    sim.run_for(300);
    for conn in sim.room.connections().collect::<Vec<_>>() {
        sim.take(conn);
    }
    for v in &voters {
        sim.send(*v, ClientMsg::Upvote { offset: q });
    }
    sim.send(voters[0], ClientMsg::Upvote { offset: q });
    assert_eq!(sim.errors(voters[0]), vec![ErrorCode::AlreadyVoted]);
    sim.send(asker, ClientMsg::Upvote { offset: q });
    assert_eq!(
        sim.errors(asker),
        vec![ErrorCode::NotAllowed],
        "not your own"
    );
    sim.send(
        voters[1],
        ClientMsg::Upvote {
            offset: ChatOffset(2),
        },
    );
    assert_eq!(sim.errors(voters[1]), vec![ErrorCode::NotAQuestion]);
    sim.send(
        voters[1],
        ClientMsg::Upvote {
            offset: ChatOffset(99),
        },
    );
    assert_eq!(sim.errors(voters[1]), vec![ErrorCode::NotFound]);
    sim.send(teacher, ClientMsg::Upvote { offset: q });
    assert_eq!(sim.errors(teacher), vec![ErrorCode::NotAllowed]);
    sim.send(voters[4], ClientMsg::Unvote { offset: q });
    sim.run_for(300);
    // Five votes, one taken back: one count in one update, whatever the number of votes.
    let want = vec![QuestionVotes {
        offset: q,
        votes: 4,
    }];
    for conn in sim.room.connections().collect::<Vec<_>>() {
        let got: Vec<Vec<QuestionVotes>> = updates(&sim.take(conn))
            .into_iter()
            .map(|u| u.votes)
            .filter(|v| !v.is_empty())
            .collect();
        assert_eq!(got, vec![want.clone()], "{conn:?}");
    }
    // A learner who returns is told the count and their own vote.
    let v0 = sim.join("v0", "v0", Role::Learner);
    let w = sim.welcome(v0);
    assert_eq!(w.votes, want);
    assert_eq!(w.your_votes, vec![q]);
    let v4 = sim.join("v4", "v4", Role::Learner);
    assert!(sim.welcome(v4).your_votes.is_empty());
    // A deleted question loses its votes for everyone.
    sim.send(teacher, ClientMsg::DeleteChat { offset: q });
    sim.run_for(300);
    assert!(votes_seen(&sim.log[&v0].clone()).is_empty());
    assert!(votes_seen(&sim.log[&teacher].clone()).is_empty());
}

#[test]
fn a_snapshot_carries_the_votes_of_the_questions_it_shows_and_a_resume_all_of_them() {
    let settings = RoomSettings {
        welcome_chat_len: 2,
        ..RoomSettings::default()
    };
    let mut sim = Sim::with(spec(), settings, START.minus_ms(30 * MIN));
    let asker = sim.join("a", "あい", Role::Learner);
    let voter = sim.join("v", "ぶい", Role::Learner);
    sim.send(asker, question("古い質問"));
    sim.send(
        voter,
        ClientMsg::Upvote {
            offset: ChatOffset(1),
        },
    );
    let w = sim.welcome(voter);
    for text in ["二つ目", "三つ目"] {
        sim.send(asker, chat(text));
    }
    // A fresh entry shows the last two lines only: the old question's votes stay home.
    let fresh = sim.join("v", "ぶい", Role::Learner);
    let snapshot = sim.welcome(fresh);
    assert!(snapshot.votes.is_empty() && snapshot.your_votes.is_empty());
    // A resume from before the question's vote gets them: the client still shows it.
    let resume = ResumeFrom {
        epoch: w.epoch,
        offset: ChatOffset(1),
    };
    let back = sim.join_resuming("v", "ぶい", Role::Learner, Some(resume));
    let missed = sim.welcome(back);
    assert_eq!(missed.replay, Replay::Missed);
    assert_eq!(missed.your_votes, vec![ChatOffset(1)]);
    assert_eq!(missed.votes.len(), 1);
}

#[test]
fn staff_see_who_is_muted_until_the_mute_ends_or_is_lifted() {
    let mut sim = doors_open_sim();
    let teacher = sim.join("t", "先生", Role::Instructor);
    let a = sim.join("a", "あい", Role::Learner);
    let b = sim.join("b", "べん", Role::Learner);
    sim.send(
        teacher,
        ClientMsg::Mute {
            user: "a".into(),
            seconds: 60,
        },
    );
    sim.send(
        teacher,
        ClientMsg::Mute {
            user: "b".into(),
            seconds: 30,
        },
    );
    let seen: Vec<(String, UnixMillis)> = muted_seen(&sim.log[&teacher].clone())
        .into_iter()
        .map(|m| (m.nickname.as_str().to_owned(), m.until))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("べん".to_owned(), sim.now.plus_ms(30_000)),
            ("あい".to_owned(), sim.now.plus_ms(60_000)),
        ],
        "soonest end first"
    );
    assert!(
        !sim.log[&a]
            .iter()
            .any(|m| matches!(m, ServerMsg::MutedLearners { .. })),
        "learners do not get the list"
    );
    // A moderator who enters now sees the list in the welcome.
    let moderator = sim.join("m", "助手", Role::Moderator);
    assert_eq!(sim.welcome(moderator).muted.map(|m| m.len()), Some(2));
    // b's mute runs out: staff and b are told.
    sim.run_for(31_000);
    assert_eq!(muted_seen(&sim.log[&teacher].clone()).len(), 1);
    assert_eq!(sim.log[&b].last(), Some(&ServerMsg::Muted { until: None }));
    sim.send(b, chat("話せます"));
    assert!(sim.errors(b).is_empty());
    // Unmute lifts a's.
    sim.send(teacher, ClientMsg::Unmute { user: "a".into() });
    assert!(muted_seen(&sim.log[&teacher].clone()).is_empty());
    assert!(muted_seen(&sim.log[&moderator].clone()).is_empty());
}

// ----- properties -----

#[derive(Clone, Debug)]
enum Step {
    Join(usize),
    Drop(usize),
    Leave(usize),
    Raise(usize),
    Lower(usize),
    CallFirst,
    Dismiss(usize),
    Ask(usize),
    Upvote(usize, usize),
    Unvote(usize, usize),
    Delete(usize),
    Mute(usize, u32),
    Unmute(usize),
    Wait(u64),
}

const LEARNERS: usize = 5;

fn step() -> impl Strategy<Value = Step> {
    let who = 0..LEARNERS;
    prop_oneof![
        3 => who.clone().prop_map(Step::Join),
        1 => who.clone().prop_map(Step::Drop),
        1 => who.clone().prop_map(Step::Leave),
        4 => who.clone().prop_map(Step::Raise),
        2 => who.clone().prop_map(Step::Lower),
        1 => Just(Step::CallFirst),
        1 => who.clone().prop_map(Step::Dismiss),
        2 => who.clone().prop_map(Step::Ask),
        5 => (who.clone(), 0..8usize).prop_map(|(w, q)| Step::Upvote(w, q)),
        2 => (who.clone(), 0..8usize).prop_map(|(w, q)| Step::Unvote(w, q)),
        1 => (0..8usize).prop_map(Step::Delete),
        1 => (who.clone(), 1..90u32).prop_map(|(w, s)| Step::Mute(w, s)),
        1 => who.clone().prop_map(Step::Unmute),
        2 => (1..150_000u64).prop_map(Step::Wait),
    ]
}

fn learner(w: usize) -> UserId {
    UserId::from(format!("l{w}"))
}

/// What the room should hold, kept by the test from what it sent.
#[derive(Default)]
struct Model {
    /// Raised hands, first raised first.
    queue: Vec<UserId>,
    /// When each learner's connection dropped, while they have not come back.
    dropped: HashMap<UserId, UnixMillis>,
    /// Questions asked, in order: offset, author, deleted.
    questions: Vec<(ChatOffset, UserId, bool)>,
    /// Voters by question.
    votes: BTreeMap<ChatOffset, BTreeSet<UserId>>,
}

impl Model {
    /// Hands of learners gone longer than the grace period are lowered.
    fn expire(&mut self, now: UnixMillis, grace: u64) {
        let gone: Vec<UserId> = self
            .dropped
            .iter()
            .filter(|(_, at)| at.plus_ms(grace) <= now)
            .map(|(u, _)| u.clone())
            .collect();
        for user in gone {
            self.dropped.remove(&user);
            self.queue.retain(|u| *u != user);
        }
    }

    fn counts(&self) -> BTreeMap<ChatOffset, u32> {
        self.votes
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(o, v)| (*o, v.len() as u32))
            .collect()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// The queue keeps the order hands went up, each learner votes once per question and the
    /// counts are exact, and once a tick has passed every connection drew what the room holds.
    #[test]
    fn hands_votes_and_mutes_are_exact_for_everyone(steps in prop::collection::vec(step(), 1..100)) {
        let settings = RoomSettings { chat_burst: 1_000, ..RoomSettings::default() };
        let grace = settings.seat_grace_ms;
        let mut sim = Sim::with(spec(), settings, START.minus_ms(30 * MIN));
        let teacher = sim.join("t", "先生", Role::Instructor);
        let mut conns: Vec<Option<ConnId>> = vec![None; LEARNERS];
        let mut model = Model::default();
        for step in steps {
            let live = |c: &Option<ConnId>, sim: &Sim| c.filter(|c| !sim.closed.contains_key(c));
            model.expire(sim.now, grace);
            match step {
                Step::Join(w) => {
                    conns[w] = Some(sim.join(&learner(w).to_string(), &format!("n{w}"), Role::Learner));
                    model.dropped.remove(&learner(w));
                }
                Step::Drop(w) => if let Some(c) = live(&conns[w], &sim) {
                    sim.drop_conn(c);
                    if model.queue.contains(&learner(w)) {
                        model.dropped.insert(learner(w), sim.now);
                    }
                },
                Step::Leave(w) => if let Some(c) = live(&conns[w], &sim) {
                    sim.send(c, ClientMsg::Leave);
                    model.queue.retain(|u| *u != learner(w));
                },
                Step::Raise(w) => if let Some(c) = live(&conns[w], &sim) {
                    sim.send(c, ClientMsg::RaiseHand);
                    if !model.queue.contains(&learner(w)) {
                        model.queue.push(learner(w));
                    }
                },
                Step::Lower(w) => if let Some(c) = live(&conns[w], &sim) {
                    sim.send(c, ClientMsg::LowerHand { user: None });
                    model.queue.retain(|u| *u != learner(w));
                },
                Step::CallFirst => if let Some(first) = model.queue.first().cloned() {
                    sim.take(teacher);
                    sim.send(teacher, ClientMsg::CallOn { nickname: None, seat: None, user: Some(first.clone()) });
                    prop_assert_eq!(sim.errors(teacher), vec![], "the first hand can be called on");
                    model.queue.remove(0);
                },
                Step::Dismiss(w) => {
                    sim.send(teacher, ClientMsg::LowerHand { user: Some(learner(w)) });
                    model.queue.retain(|u| *u != learner(w));
                },
                Step::Ask(w) => if let Some(c) = live(&conns[w], &sim) {
                    let before = sim.room.chat.last();
                    sim.send(c, question(&format!("q from {w}")));
                    // A muted learner asks nothing.
                    if sim.room.chat.last() == before.next() {
                        model.questions.push((before.next(), learner(w), false));
                    }
                },
                Step::Upvote(w, q) => if let (Some(c), Some(&(offset, ref author, deleted))) =
                    (live(&conns[w], &sim), model.questions.get(q)) {
                    sim.take(c);
                    sim.send(c, ClientMsg::Upvote { offset });
                    let voters = model.votes.entry(offset).or_default();
                    let want = if deleted {
                        vec![ErrorCode::NotFound]
                    } else if *author == learner(w) {
                        vec![ErrorCode::NotAllowed]
                    } else if !voters.insert(learner(w)) {
                        vec![ErrorCode::AlreadyVoted]
                    } else {
                        vec![]
                    };
                    prop_assert_eq!(sim.errors(c), want);
                },
                Step::Unvote(w, q) => if let (Some(c), Some(&(offset, ..))) =
                    (live(&conns[w], &sim), model.questions.get(q)) {
                    sim.take(c);
                    sim.send(c, ClientMsg::Unvote { offset });
                    prop_assert_eq!(sim.errors(c), vec![]);
                    model.votes.entry(offset).or_default().remove(&learner(w));
                },
                Step::Delete(q) => if let Some(question) = model.questions.get_mut(q) {
                    sim.send(teacher, ClientMsg::DeleteChat { offset: question.0 });
                    question.2 = true;
                    model.votes.remove(&question.0);
                },
                Step::Mute(w, seconds) => {
                    sim.send(teacher, ClientMsg::Mute { user: learner(w), seconds });
                },
                Step::Unmute(w) => sim.send(teacher, ClientMsg::Unmute { user: learner(w) }),
                Step::Wait(ms) => sim.run_for(ms),
            }
            model.expire(sim.now, grace);
            let queue: Vec<UserId> = sim.room.hands.queue().map(|(u, _)| u.clone()).collect();
            prop_assert_eq!(&queue, &model.queue, "the queue keeps the order hands went up");
            prop_assert_eq!(sim.room.votes.counts().into_iter().map(|v| (v.offset, v.votes)).collect::<BTreeMap<_, _>>(), model.counts(), "counts are exact");
            // Muted lists reach the staff at once, not with the tick.
            prop_assert_eq!(muted_seen(&sim.log[&teacher].clone()), sim.room.muted_learners(sim.now));
        }
        // One more tick: every connection drew what the room holds.
        sim.run_for(300);
        let queue: Vec<UserId> = sim.room.hands.queue().map(|(u, _)| u.clone()).collect();
        prop_assert_eq!(queue_seen(&sim.log[&teacher].clone()), queue.clone());
        for (conn, user) in sim.room.conns.clone() {
            let log = sim.log[&conn].clone();
            prop_assert_eq!(votes_seen(&log), model.counts(), "{:?} sees the counts", conn);
            let (count, yours) = hand_seen(&log);
            prop_assert_eq!(count as usize, queue.len());
            if user.as_str() != "t" {
                prop_assert_eq!(yours, sim.room.hands.raised_at(&user), "{:?} sees its own hand", conn);
            }
        }
    }
}
