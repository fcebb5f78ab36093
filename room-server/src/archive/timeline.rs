//! The archive's timeline: what the room showed during the lecture, on the recording's clock.
//!
//! The builder is fed, in log order, what the room broadcast to everyone (chat events, the
//! current call, the pinned announcement, reaction bursts) with the log's time of each. It
//! keeps the chat as everyone finally saw it: deleted messages are gone, answered questions
//! are marked, answers to a call are marked. Times become archive time: milliseconds since
//! the recording's media time 0 (`manifest.started_at_ms`), never negative, never going back.

use protocol::ServerMsg;
use protocol::server::{Announcement, CallInfo, ChatEvent};
use protocol::{EmotionKey, Nickname, Role, UnixMillis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The format name written in `timeline.json`.
pub(crate) const FORMAT: &str = "live-lecture-timeline/1";

/// The reaction tallies' interval unless configured otherwise.
pub(crate) const DEFAULT_BUCKET_MS: u64 = 5_000;

/// One thing the room broadcast to everyone.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Seen {
    /// A chat event (a message, a deletion, an answered mark).
    Chat(ChatEvent),
    /// The current call changed (none: cleared).
    Call(Option<CallInfo>),
    /// The pinned announcement changed (none: unpinned).
    Announcement(Option<Announcement>),
    /// Reaction presses counted in one batch.
    Reactions(BTreeMap<EmotionKey, u32>),
}

impl Seen {
    /// What the timeline keeps of a message the room sent: chat events, calls and
    /// announcements (sent to everyone) and the reaction presses of a tick (the staff's meter).
    pub(crate) fn of(msg: &ServerMsg) -> Option<Self> {
        match msg {
            ServerMsg::Chat { event } => Some(Self::Chat(event.clone())),
            ServerMsg::Call { current } => Some(Self::Call(current.clone())),
            ServerMsg::Announcement { current } => Some(Self::Announcement(current.clone())),
            ServerMsg::Meter(meter) if meter.tally.values().any(|&n| n > 0) => {
                Some(Self::Reactions(meter.tally.clone()))
            }
            _ => None,
        }
    }
}

/// Most events kept before the lecture goes live (chat while the doors are open): beyond it,
/// earlier talk is left out of the replay rather than held without bound.
const MAX_BEFORE_LIVE: usize = 20_000;

/// What a room task feeds during the lecture: events wait (a bounded number) until the
/// lecture goes live, whose moment is the recording's time 0; from then on they are built.
#[derive(Debug)]
pub(crate) struct Feed {
    bucket_ms: u64,
    waiting: Vec<(UnixMillis, Seen)>,
    builder: Option<Builder>,
}

impl Feed {
    /// A feed whose reaction tallies cover `bucket_ms` each.
    pub(crate) fn new(bucket_ms: u64) -> Self {
        Self {
            bucket_ms,
            waiting: Vec::new(),
            builder: None,
        }
    }

    /// Adds what the room broadcast at log time `at`.
    pub(crate) fn push(&mut self, at: UnixMillis, seen: Seen) {
        match &mut self.builder {
            Some(builder) => builder.push(at, seen),
            None if self.waiting.len() < MAX_BEFORE_LIVE => self.waiting.push((at, seen)),
            None => {}
        }
    }

    /// The lecture went live at `since` (the archive's time 0); later calls change nothing.
    pub(crate) fn went_live(&mut self, since: UnixMillis) {
        if self.builder.is_some() {
            return;
        }
        let mut builder = Builder::new(since, self.bucket_ms);
        for (at, seen) in self.waiting.drain(..) {
            builder.push(at, seen);
        }
        self.builder = Some(builder);
    }

    /// The timeline; none if the lecture never went live.
    pub(crate) fn finish(self) -> Option<Timeline> {
        self.builder.map(Builder::finish)
    }
}

/// A chat line as the replay shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Line {
    /// Archive time (ms since media time 0).
    pub(crate) t: u64,
    /// The line's offset in the lecture's chat (increasing).
    pub(crate) offset: u64,
    pub(crate) nickname: Nickname,
    pub(crate) role: Role,
    pub(crate) text: String,
    pub(crate) question: bool,
    pub(crate) answered: bool,
    pub(crate) call_answer: bool,
}

/// A learner called on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Call {
    pub(crate) t: u64,
    pub(crate) nickname: Nickname,
    pub(crate) by: Nickname,
    /// Offset of the learner's answer line, if they answered and it was not deleted.
    pub(crate) answer: Option<u64>,
}

/// The pinned announcement changing (`text` none: unpinned).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pin {
    pub(crate) t: u64,
    pub(crate) text: Option<String>,
    pub(crate) by: Option<Nickname>,
}

/// Reaction presses in one interval `[t, t + bucket_ms)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Tally {
    pub(crate) t: u64,
    pub(crate) counts: BTreeMap<EmotionKey, u64>,
}

/// `timeline.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Timeline {
    pub(crate) format: String,
    pub(crate) bucket_ms: u64,
    pub(crate) chat: Vec<Line>,
    pub(crate) calls: Vec<Call>,
    pub(crate) announcements: Vec<Pin>,
    pub(crate) reactions: Vec<Tally>,
}

/// Builds a [`Timeline`] from what the room broadcast, in log order.
#[derive(Debug)]
pub(crate) struct Builder {
    started_at: u64,
    bucket_ms: u64,
    /// The newest archive time handed out: times never go back.
    now: u64,
    /// Lines by chat offset (deleted ones removed).
    lines: BTreeMap<u64, Line>,
    calls: Vec<Call>,
    announcements: Vec<Pin>,
    buckets: BTreeMap<u64, BTreeMap<EmotionKey, u64>>,
}

impl Builder {
    /// A builder for a recording whose media time 0 is `started_at`.
    pub(crate) fn new(started_at: UnixMillis, bucket_ms: u64) -> Self {
        Self {
            started_at: started_at.0,
            bucket_ms: bucket_ms.max(1),
            now: 0,
            lines: BTreeMap::new(),
            calls: Vec::new(),
            announcements: Vec::new(),
            buckets: BTreeMap::new(),
        }
    }

    /// Archive time of `at`: clamped at 0 and never earlier than the previous one.
    fn time(&mut self, at: UnixMillis) -> u64 {
        self.now = self.now.max(at.0.saturating_sub(self.started_at));
        self.now
    }

    /// Adds what the room broadcast at log time `at`.
    pub(crate) fn push(&mut self, at: UnixMillis, seen: Seen) {
        let t = self.time(at);
        match seen {
            Seen::Chat(ChatEvent::Message(m)) => {
                if m.deleted {
                    return;
                }
                self.lines.insert(
                    m.offset.0,
                    Line {
                        t,
                        offset: m.offset.0,
                        nickname: m.nickname,
                        role: m.role,
                        text: m.text,
                        question: m.question,
                        answered: m.answered,
                        call_answer: m.call_answer,
                    },
                );
            }
            Seen::Chat(ChatEvent::Deleted { target, .. }) => {
                self.lines.remove(&target.0);
                for call in &mut self.calls {
                    if call.answer == Some(target.0) {
                        call.answer = None;
                    }
                }
            }
            Seen::Chat(ChatEvent::Answered { target, .. }) => {
                if let Some(line) = self.lines.get_mut(&target.0) {
                    line.answered = true;
                }
            }
            Seen::Call(Some(info)) => {
                let answer = info.answer.map(|o| o.0);
                let same = self
                    .calls
                    .last_mut()
                    .filter(|c| c.nickname == info.nickname && c.by == info.by);
                match same {
                    // The same call, now answered: keep its time.
                    Some(call) if answer.is_some() => {
                        call.answer = answer.filter(|o| self.lines.contains_key(o));
                        if let Some(line) = answer.and_then(|o| self.lines.get_mut(&o)) {
                            line.call_answer = true;
                        }
                    }
                    _ => self.calls.push(Call {
                        t,
                        nickname: info.nickname,
                        by: info.by,
                        answer: answer.filter(|o| self.lines.contains_key(o)),
                    }),
                }
            }
            Seen::Call(None) => {}
            Seen::Announcement(pin) => self.announcements.push(Pin {
                t,
                text: pin.as_ref().map(|p| p.text.clone()),
                by: pin.map(|p| p.by),
            }),
            Seen::Reactions(burst) => {
                let start = t - t % self.bucket_ms;
                let bucket = self.buckets.entry(start).or_default();
                for (key, n) in burst {
                    *bucket.entry(key).or_default() += u64::from(n);
                }
            }
        }
    }

    /// The timeline.
    pub(crate) fn finish(self) -> Timeline {
        Timeline {
            format: FORMAT.to_owned(),
            bucket_ms: self.bucket_ms,
            chat: self.lines.into_values().collect(),
            calls: self.calls,
            announcements: self.announcements,
            reactions: self
                .buckets
                .into_iter()
                .filter(|(_, counts)| counts.values().any(|&n| n > 0))
                .map(|(t, counts)| Tally { t, counts })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use protocol::server::ChatMessage;
    use protocol::{ChatOffset, UserId};

    const START: u64 = 1_700_000_000_000;

    fn message(offset: u64, at: u64, text: &str) -> ChatEvent {
        ChatEvent::Message(ChatMessage {
            offset: ChatOffset(offset),
            at: UnixMillis(at),
            user: UserId::from("u1"),
            nickname: Nickname::from("Aki"),
            role: Role::Learner,
            text: text.to_owned(),
            question: text.ends_with('?'),
            answered: false,
            call_answer: false,
            deleted: false,
        })
    }

    #[test]
    fn deleted_lines_are_gone_and_answers_marked() {
        let mut b = Builder::new(UnixMillis(START), DEFAULT_BUCKET_MS);
        b.push(
            UnixMillis(START + 1_000),
            Seen::Chat(message(1, START + 1_000, "hello")),
        );
        b.push(
            UnixMillis(START + 2_000),
            Seen::Chat(message(2, START + 2_000, "why?")),
        );
        b.push(
            UnixMillis(START + 3_000),
            Seen::Chat(message(3, START + 3_000, "spam")),
        );
        b.push(
            UnixMillis(START + 4_000),
            Seen::Chat(ChatEvent::Deleted {
                offset: ChatOffset(4),
                at: UnixMillis(START + 4_000),
                target: ChatOffset(3),
            }),
        );
        b.push(
            UnixMillis(START + 5_000),
            Seen::Chat(ChatEvent::Answered {
                offset: ChatOffset(5),
                at: UnixMillis(START + 5_000),
                target: ChatOffset(2),
            }),
        );
        let t = b.finish();
        let texts: Vec<_> = t
            .chat
            .iter()
            .map(|l| (l.t, l.text.as_str(), l.answered))
            .collect();
        assert_eq!(texts, vec![(1_000, "hello", false), (2_000, "why?", true)]);
    }

    #[test]
    fn calls_pins_and_tallies_on_the_recording_clock() {
        let mut b = Builder::new(UnixMillis(START), 5_000);
        // Before media time 0: clamped to 0.
        b.push(
            UnixMillis(START - 500),
            Seen::Announcement(Some(Announcement {
                text: "Page 12".into(),
                by: Nickname::from("Prof"),
                at: UnixMillis(START - 500),
            })),
        );
        let call = CallInfo {
            user: UserId::from("u1"),
            nickname: Nickname::from("Aki"),
            seat: None,
            by: Nickname::from("Prof"),
            at: UnixMillis(START + 6_000),
            answer: None,
        };
        b.push(UnixMillis(START + 6_000), Seen::Call(Some(call.clone())));
        b.push(
            UnixMillis(START + 7_000),
            Seen::Chat(message(1, START + 7_000, "42")),
        );
        b.push(
            UnixMillis(START + 7_000),
            Seen::Call(Some(CallInfo {
                answer: Some(ChatOffset(1)),
                ..call
            })),
        );
        let burst = |n| BTreeMap::from([(EmotionKey::from("good"), n)]);
        b.push(UnixMillis(START + 7_100), Seen::Reactions(burst(2)));
        b.push(UnixMillis(START + 9_900), Seen::Reactions(burst(3)));
        b.push(UnixMillis(START + 10_000), Seen::Reactions(burst(1)));
        let t = b.finish();
        assert_eq!(t.announcements[0].t, 0);
        assert_eq!(t.calls.len(), 1);
        assert_eq!((t.calls[0].t, t.calls[0].answer), (6_000, Some(1)));
        assert!(t.chat[0].call_answer);
        let tallies: Vec<_> = t
            .reactions
            .iter()
            .map(|r| (r.t, r.counts[&EmotionKey::from("good")]))
            .collect();
        assert_eq!(tallies, vec![(5_000, 5), (10_000, 1)]);
        let json = serde_json::to_value(&t).expect("a timeline is JSON");
        assert_eq!(json["format"], FORMAT);
    }

    #[test]
    fn a_feed_keeps_the_talk_before_the_start_at_time_zero() {
        let mut feed = Feed::new(DEFAULT_BUCKET_MS);
        let chat = |offset, at| ServerMsg::Chat {
            event: message(offset, at, "early"),
        };
        let seen = Seen::of(&chat(1, START - 60_000)).expect("chat is kept");
        feed.push(UnixMillis(START - 60_000), seen);
        assert!(Seen::of(&ServerMsg::YourSeat { seat: None }).is_none());
        feed.went_live(UnixMillis(START));
        feed.went_live(UnixMillis(START + 9_000));
        let seen = Seen::of(&chat(2, START + 3_000)).expect("chat is kept");
        feed.push(UnixMillis(START + 3_000), seen);
        let t = feed.finish().expect("it went live");
        let times: Vec<_> = t.chat.iter().map(|l| l.t).collect();
        assert_eq!(times, [0, 3_000]);
        assert!(Feed::new(DEFAULT_BUCKET_MS).finish().is_none());
    }

    proptest! {
        /// Random messages, deletions and reactions at random (in-order) log times: no deleted
        /// line survives, every kept line does, and times and offsets only go up.
        #[test]
        fn deleted_stay_deleted_and_times_monotonic(
            steps in proptest::collection::vec((0u64..3_000, 0u8..4, 0u64..40), 1..200),
            start_offset in 0u64..10_000,
        ) {
            let started = START + start_offset;
            let mut b = Builder::new(UnixMillis(started), DEFAULT_BUCKET_MS);
            let mut at = START;
            let mut next = 0u64;
            let mut deleted = std::collections::BTreeSet::new();
            for (gap, kind, pick) in steps {
                at += gap;
                match kind {
                    0 | 1 => {
                        next += 1;
                        b.push(UnixMillis(at), Seen::Chat(message(next, at, "x")));
                    }
                    2 if next > 0 => {
                        let target = 1 + pick % next;
                        deleted.insert(target);
                        next += 1;
                        b.push(UnixMillis(at), Seen::Chat(ChatEvent::Deleted {
                            offset: ChatOffset(next),
                            at: UnixMillis(at),
                            target: ChatOffset(target),
                        }));
                    }
                    _ => b.push(UnixMillis(at), Seen::Reactions(
                        BTreeMap::from([(EmotionKey::from("lost"), 1)]))),
                }
            }
            let t = b.finish();
            for line in &t.chat {
                prop_assert!(!deleted.contains(&line.offset));
            }
            prop_assert!(t.chat.windows(2).all(|w| w[0].offset < w[1].offset && w[0].t <= w[1].t));
            prop_assert!(t.reactions.windows(2).all(|w| w[0].t < w[1].t));
            prop_assert!(t.reactions.iter().all(|r| r.t % DEFAULT_BUCKET_MS == 0));
        }
    }
}
