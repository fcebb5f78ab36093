//! The order in which a lecture's room applies its inputs.
//!
//! Every input to a room — a join, a command, a disconnect, a tick, a revocation — is an entry
//! of the lecture's **log**, stamped with the log's time. Every node holding the lecture applies
//! the same entries in the same order to its own copy of the room core (which is deterministic),
//! so chat offsets, seats, calls and reaction totals agree on every node without locks.
//!
//! - [`LocalLog`]: one node, no Redis — entries are stamped with the node's clock and applied
//!   at once.
//! - [`redis::RedisLog`]: many nodes — a Lua script stamps each entry with Redis's time and
//!   appends it to the lecture's stream; each node reads the stream in order.

pub(crate) mod redis;

use crate::clock::Clock;
use prometheus_client::metrics::histogram::Histogram;
use protocol::{ClientMsg, CommandId, Nickname, ResumeFrom, Role, UnixMillis, UserId};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;

/// An input to a lecture's room, as every node applies it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum RoomEntry {
    /// A connection with a verified ticket wants in.
    Join {
        conn: u64,
        /// The person's pseudonym in the room.
        user: UserId,
        /// Their account, for the records only.
        account: UserId,
        nickname: Nickname,
        role: Role,
        issued_at: UnixMillis,
        resume: Option<ResumeFrom>,
    },
    /// A client's message, with the number the client gave it.
    Command {
        conn: u64,
        id: Option<CommandId>,
        msg: ClientMsg,
    },
    /// A connection is gone.
    Disconnected { conn: u64 },
    /// A person's right to attend was taken away.
    Revoke { user: UserId, at: UnixMillis },
    /// The lecture was cancelled.
    Cancel { reason: String },
    /// The lecture's times or title changed.
    Reschedule {
        title: String,
        starts_at: UnixMillis,
        ends_at: UnixMillis,
    },
    /// Emotion presses a node gathered during one tick, applied one by one: one entry a tick
    /// from each node instead of one per press.
    Reactions { presses: Vec<Press> },
    /// Time passed (batches go out, holds expire, phases move).
    Tick,
    /// A connection started publishing the instructor's media; the other nodes pull it from
    /// `relay` (its node's relay base URL; none: that node cannot be reached). Not an input
    /// of the room core: the nodes' media follows it.
    MediaPublished { conn: u64, relay: Option<String> },
    /// That connection stopped publishing.
    MediaUnpublished { conn: u64 },
}

/// One emotion press: the connection, the button, and the client's number for it.
pub(crate) type Press = (u64, protocol::EmotionKey, Option<CommandId>);

/// An entry with its time in the log.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Sequenced {
    /// The log's time for this entry: never earlier than the entry before.
    pub(crate) at: UnixMillis,
    /// The entry.
    pub(crate) entry: RoomEntry,
}

/// The log of one node alone: entries are stamped with the node's clock (never going back)
/// and ready at once.
#[derive(Debug)]
pub(crate) struct LocalLog {
    clock: Arc<dyn Clock>,
    last: UnixMillis,
    ready: VecDeque<Sequenced>,
    /// Each append's time (here, the stamping and queueing itself: microseconds).
    append_time: Histogram,
}

impl LocalLog {
    pub(crate) fn new(clock: Arc<dyn Clock>, append_time: Histogram) -> Self {
        Self {
            clock,
            last: UnixMillis(0),
            ready: VecDeque::new(),
            append_time,
        }
    }

    pub(crate) fn submit(&mut self, entry: RoomEntry) {
        let submitted = std::time::Instant::now();
        self.last = self.last.max(self.clock.now());
        self.ready.push_back(Sequenced {
            at: self.last,
            entry,
        });
        self.append_time.observe(submitted.elapsed().as_secs_f64());
    }

    pub(crate) fn pop(&mut self) -> Option<Sequenced> {
        self.ready.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A clock a test sets by hand (it may go back, as a system clock corrected by NTP does).
    #[derive(Debug, Default)]
    struct HandClock(AtomicU64);

    impl Clock for HandClock {
        fn now(&self) -> UnixMillis {
            UnixMillis(self.0.load(Ordering::SeqCst))
        }
    }

    fn histogram() -> Histogram {
        Histogram::new([0.001])
    }

    #[test]
    fn a_local_log_keeps_the_order_given_and_its_times_never_go_back() {
        let clock = Arc::new(HandClock::default());
        let mut log = LocalLog::new(Arc::clone(&clock) as Arc<dyn Clock>, histogram());
        assert_eq!(log.pop(), None, "nothing before the first entry");
        clock.0.store(1_000, Ordering::SeqCst);
        log.submit(RoomEntry::Tick);
        clock.0.store(400, Ordering::SeqCst);
        log.submit(RoomEntry::Disconnected { conn: 7 });
        clock.0.store(1_500, Ordering::SeqCst);
        log.submit(RoomEntry::Cancel {
            reason: "weather".into(),
        });
        let got: Vec<Sequenced> = std::iter::from_fn(|| log.pop()).collect();
        let at: Vec<u64> = got.iter().map(|s| s.at.0).collect();
        assert_eq!(
            at,
            [1_000, 1_000, 1_500],
            "the clock went back; the log did not"
        );
        assert_eq!(got[1].entry, RoomEntry::Disconnected { conn: 7 });
        assert!(matches!(got[2].entry, RoomEntry::Cancel { .. }));
    }

    #[test]
    fn an_entry_crosses_nodes_unchanged() {
        // What the Redis log stores: every node decodes the entry another encoded.
        let entry = RoomEntry::Command {
            conn: 42,
            id: Some(CommandId(9)),
            msg: ClientMsg::Chat {
                text: "こんにちは".into(),
                question: true,
            },
        };
        let bytes = rmp_serde::to_vec_named(&entry).expect("encodes");
        let back: RoomEntry = rmp_serde::from_slice(&bytes).expect("decodes");
        assert_eq!(back, entry);
    }
}
