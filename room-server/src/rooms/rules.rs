//! Rules the room task follows that are not the room core's (they concern this node and the
//! shared log, not the lecture): small units, each with its tests, so the driver loop only
//! moves inputs in and outputs out.

use crate::log::{Press, RoomEntry};
use room::{ConnId, Room};
use std::collections::{HashMap, HashSet};

/// This node's emotion presses of the current tick, handed to the shared log as one entry:
/// one entry a tick from each node instead of one per press.
#[derive(Debug, Default)]
pub(crate) struct PressBatch(Vec<Press>);

impl PressBatch {
    /// Adds a press to the tick's batch.
    pub(crate) fn press(&mut self, press: Press) {
        self.0.push(press);
    }

    /// The tick's presses as one entry, if there were any; the batch starts afresh.
    pub(crate) fn take(&mut self) -> Option<RoomEntry> {
        (!self.0.is_empty()).then(|| RoomEntry::Reactions {
            presses: std::mem::take(&mut self.0),
        })
    }
}

/// The connections of nodes found dead, disconnected once each through the shared log (their
/// seats are then held for the grace period, as after any drop).
#[derive(Debug, Default)]
pub(crate) struct Burial {
    buried: HashSet<ConnId>,
}

impl Burial {
    /// The room's connections whose node is dead and which were not reported before. Each
    /// node is judged once per call, not once per connection.
    pub(crate) fn newly_dead(
        &mut self,
        room: &Room,
        node_of: impl Fn(ConnId) -> u64,
        node_is_dead: impl Fn(u64) -> bool,
    ) -> Vec<ConnId> {
        let mut verdicts: HashMap<u64, bool> = HashMap::new();
        let dead: Vec<ConnId> = room
            .connections()
            .filter(|c| {
                !self.buried.contains(c)
                    && *verdicts
                        .entry(node_of(*c))
                        .or_insert_with(|| node_is_dead(node_of(*c)))
            })
            .collect();
        self.buried.extend(dead.iter().copied());
        dead
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::server::LectureInfo;
    use protocol::{Role, UnixMillis};
    use room::{Identity, RoomSettings};
    use std::cell::Cell;

    #[test]
    fn presses_of_a_tick_leave_as_one_entry_and_the_next_tick_starts_empty() {
        let mut batch = PressBatch::default();
        assert_eq!(batch.take(), None);
        batch.press((1, "good".into(), None));
        batch.press((2, "lost".into(), None));
        match batch.take() {
            Some(RoomEntry::Reactions { presses }) => assert_eq!(presses.len(), 2),
            other => panic!("expected one reactions entry, got {other:?}"),
        }
        assert_eq!(batch.take(), None);
    }

    fn room_with(conns: &[u64]) -> Room {
        let start = UnixMillis(1_800_000_000_000);
        let spec = LectureInfo {
            id: "l".into(),
            title: "t".into(),
            starts_at: start,
            ends_at: start.plus_ms(3_600_000),
            rows: 5,
            cols: 5,
            emotions: vec![],
            chat_max_chars: 0,
        };
        let now = start.minus_ms(60_000);
        let mut room = Room::new(spec, RoomSettings::default(), now);
        for (i, conn) in conns.iter().enumerate() {
            let who = Identity {
                user: format!("u{i}").into(),
                account: format!("a{i}").into(),
                nickname: format!("n{i}").into(),
                role: Role::Learner,
                issued_at: now,
            };
            room.handle_join(now, ConnId(*conn), who, None);
        }
        room
    }

    #[test]
    fn a_dead_node_s_connections_are_reported_once_and_each_node_judged_once() {
        // Node 1 holds connections 10 and 11, node 2 holds 20.
        let room = room_with(&[10, 11, 20]);
        let mut burial = Burial::default();
        let judged = Cell::new(0);
        let node_of = |c: ConnId| c.0 / 10;
        let dead = burial.newly_dead(&room, node_of, |n| {
            judged.set(judged.get() + 1);
            n == 1
        });
        let mut dead: Vec<u64> = dead.into_iter().map(|c| c.0).collect();
        dead.sort();
        assert_eq!(dead, [10, 11]);
        assert_eq!(judged.get(), 2, "one verdict per node");
        // The room still lists them until their disconnect comes back through the log.
        assert!(burial.newly_dead(&room, node_of, |n| n == 1).is_empty());
    }
}
