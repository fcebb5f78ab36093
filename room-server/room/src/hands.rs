//! The raised-hand queue: learners raise and lower a hand; staff see them first raised first
//! and call on them from it. Changes go to the staff once a tick, as what left the queue and
//! what joined its end.

use super::Room;
use protocol::server::RaisedHand;
use protocol::{ServerMsg, UnixMillis, UserId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Raised hands in the order they went up, and what changed since the last tick.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HandQueue {
    /// Number of the next hand raised: the queue's order. Never reused, so a hand lowered and
    /// raised again goes to the end.
    next: u64,
    /// Raised hands by their number: the queue, first raised first.
    order: BTreeMap<u64, UserId>,
    /// Each raised hand's number and when it went up.
    by_user: HashMap<UserId, (u64, UnixMillis)>,
    /// The hand's number when the tick began, for every learner whose hand moved during it.
    touched: HashMap<UserId, Option<u64>>,
    /// Whether the count may have changed during the tick.
    count_dirty: bool,
}

/// What changed in the queue during a tick.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct HandChanges {
    /// Hands that left the queue (or left to rejoin its end), in user order.
    pub(crate) lowered: Vec<UserId>,
    /// Hands that joined the end of the queue, first raised first, with when.
    pub(crate) raised: Vec<(UserId, UnixMillis)>,
    /// The count, when it changed.
    pub(crate) count: Option<u32>,
}

impl HandQueue {
    /// Raises `user`'s hand at `now`; false if it was already up (it keeps its place).
    pub(crate) fn raise(&mut self, user: &UserId, now: UnixMillis) -> bool {
        if self.by_user.contains_key(user) {
            return false;
        }
        self.touch(user);
        let number = self.next;
        self.next += 1;
        self.order.insert(number, user.clone());
        self.by_user.insert(user.clone(), (number, now));
        self.count_dirty = true;
        true
    }

    /// Lowers `user`'s hand; false if it was not up.
    pub(crate) fn lower(&mut self, user: &UserId) -> bool {
        if !self.by_user.contains_key(user) {
            return false;
        }
        self.touch(user);
        if let Some((number, _)) = self.by_user.remove(user) {
            self.order.remove(&number);
        }
        self.count_dirty = true;
        true
    }

    /// When `user`'s hand went up, if it is up.
    pub(crate) fn raised_at(&self, user: &UserId) -> Option<UnixMillis> {
        self.by_user.get(user).map(|(_, at)| *at)
    }

    /// How many hands are up.
    pub(crate) fn count(&self) -> u32 {
        u32::try_from(self.order.len()).unwrap_or(u32::MAX)
    }

    /// The raised hands, first raised first, with when each went up.
    pub(crate) fn queue(&self) -> impl Iterator<Item = (&UserId, UnixMillis)> + '_ {
        self.order
            .values()
            .filter_map(|user| self.by_user.get(user).map(|(_, at)| (user, *at)))
    }

    /// The tick's changes, and a fresh start for the next tick.
    pub(crate) fn take_changes(&mut self) -> HandChanges {
        let mut changes = HandChanges::default();
        let mut raised = Vec::new();
        for (user, before) in std::mem::take(&mut self.touched) {
            let now = self.by_user.get(&user).map(|(number, _)| *number);
            if before == now {
                continue;
            }
            if before.is_some() {
                changes.lowered.push(user.clone());
            }
            if let Some(number) = now {
                raised.push((number, user));
            }
        }
        // Applied in the same order on every node and every client, whatever the map's order.
        changes.lowered.sort();
        raised.sort();
        changes.raised = raised
            .into_iter()
            .filter_map(|(_, user)| self.raised_at(&user).map(|at| (user, at)))
            .collect();
        if std::mem::take(&mut self.count_dirty) {
            changes.count = Some(self.count());
        }
        changes
    }

    /// Whether the next tick has something to say.
    pub(crate) fn has_changes(&self) -> bool {
        self.count_dirty || !self.touched.is_empty()
    }

    /// Notes `user`'s hand as it was when the tick began, the first time it moves in the tick.
    fn touch(&mut self, user: &UserId) {
        let now = self.by_user.get(user).map(|(number, _)| *number);
        self.touched.entry(user.clone()).or_insert(now);
    }
}

impl Room {
    /// A hand of the queue as the staff see it.
    pub(crate) fn raised_hand(&self, user: UserId, at: UnixMillis) -> Option<RaisedHand> {
        let nickname = self.attendees.get(&user)?.nickname.clone();
        let seat = self.grid.seat_of(&user);
        Some(RaisedHand {
            user,
            nickname,
            seat,
            at,
        })
    }

    /// Lowers `user`'s hand, if it is up, and tells them.
    pub(crate) fn lower_hand(&mut self, user: &UserId) {
        if self.hands.lower(user)
            && let Some(conn) = self.attendees.get(user).and_then(|a| a.conn)
        {
            self.send_to(conn, ServerMsg::YourHand { raised_at: None });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(name: &str) -> UserId {
        UserId::from(name)
    }

    #[test]
    fn a_hand_lowered_and_raised_again_within_a_tick_moves_to_the_end() {
        let mut q = HandQueue::default();
        let t = UnixMillis(1);
        q.raise(&u("a"), t);
        q.raise(&u("b"), t);
        q.take_changes();
        q.lower(&u("a"));
        q.raise(&u("a"), t);
        let changes = q.take_changes();
        assert_eq!(changes.lowered, vec![u("a")]);
        assert_eq!(changes.raised, vec![(u("a"), t)]);
        assert_eq!(changes.count, Some(2));
        let order: Vec<_> = q.queue().map(|(user, _)| user.clone()).collect();
        assert_eq!(order, vec![u("b"), u("a")]);
    }

    #[test]
    fn a_hand_raised_and_lowered_within_a_tick_is_not_news() {
        let mut q = HandQueue::default();
        q.raise(&u("a"), UnixMillis(1));
        q.lower(&u("a"));
        let changes = q.take_changes();
        assert!(changes.lowered.is_empty() && changes.raised.is_empty());
        assert!(!q.has_changes());
    }
}
