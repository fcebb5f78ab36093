//! A room's connections on this node, and how much of the room's own time goes to writing to
//! them.
//!
//! A room writes a frame straight to an idle connection's socket (see `conn::outbox`): one
//! `write`, no wake-up of the connection's task. That is the cheapest delivery, but it runs on
//! the room's task, one core: a room that spent all its time writing would answer its people
//! late and leave the node's other cores idle. So a room writes for at most half of its time
//! ([`BUDGET`] of each [`WINDOW`]); past that, the rest of the window's frames are queued for
//! the connections' own writers, which run on every core.

use crate::conn::outbox::{Full, Outbox, QueueTime, Sent};
use crate::conn::ws::Frame;
use room::ConnId;
use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The span over which a room's writing time is counted.
const WINDOW: Duration = Duration::from_millis(100);
/// How much of a window a room may spend writing to sockets itself.
const BUDGET: Duration = Duration::from_millis(50);
/// Recipients written to between two looks at the clock.
const CHECK_EVERY: u32 = 32;

/// The room's connections on this node, by connection number.
#[derive(Debug, Default)]
pub(crate) struct Conns {
    map: HashMap<ConnId, Outbox>,
    /// When the current window began (nanoseconds on the queues' clock).
    window: AtomicU64,
    /// Nanoseconds spent delivering in the current window.
    spent: AtomicU64,
}

impl Deref for Conns {
    type Target = HashMap<ConnId, Outbox>;

    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl DerefMut for Conns {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.map
    }
}

impl FromIterator<(ConnId, Outbox)> for Conns {
    fn from_iter<I: IntoIterator<Item = (ConnId, Outbox)>>(iter: I) -> Self {
        Self {
            map: iter.into_iter().collect(),
            ..Self::default()
        }
    }
}

impl Conns {
    /// Starts handing one message to its recipients.
    pub(crate) fn delivery(&self) -> Delivery<'_> {
        let now = QueueTime::now();
        let window = self.window.load(Ordering::Relaxed);
        if now.nanos().saturating_sub(window) >= nanos(WINDOW) {
            self.window.store(now.nanos(), Ordering::Relaxed);
            self.spent.store(0, Ordering::Relaxed);
        }
        let spent = self.spent.load(Ordering::Relaxed);
        Delivery {
            conns: self,
            started: now,
            spent,
            direct: spent < nanos(BUDGET),
            count: 0,
        }
    }
}

/// One message on its way to its recipients: written at once while the room's budget lasts.
pub(crate) struct Delivery<'a> {
    conns: &'a Conns,
    started: QueueTime,
    /// What the window had spent when this delivery began.
    spent: u64,
    direct: bool,
    count: u32,
}

impl Delivery<'_> {
    /// Hands `frame` (made at `at`) to `out`: written at once if the connection is idle and
    /// the room's budget allows, queued for its writer otherwise.
    pub(crate) fn send(
        &mut self,
        out: &Outbox,
        frame: &Frame,
        at: QueueTime,
    ) -> Result<Sent, Full> {
        self.count += 1;
        if self.direct && self.count % CHECK_EVERY == 0 {
            self.direct = self.spent + self.elapsed() < nanos(BUDGET);
        }
        if self.direct {
            out.queue(frame, at)
        } else {
            out.enqueue(frame, at)
        }
    }

    fn elapsed(&self) -> u64 {
        QueueTime::now()
            .nanos()
            .saturating_sub(self.started.nanos())
    }
}

impl Drop for Delivery<'_> {
    fn drop(&mut self) {
        self.conns
            .spent
            .fetch_add(self.elapsed(), Ordering::Relaxed);
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::ws::tests::pair_with;

    /// A room with one connection whose socket it may write to, queueing at most `capacity`
    /// frames; the third part keeps the connection's ends open.
    async fn room_with_one(capacity: usize) -> (Conns, Outbox, impl Sized) {
        let (reader, writer, client) = pair_with(None).await;
        let out = Outbox::for_test(capacity);
        out.queue.attach(writer.socket());
        let conns = [(ConnId(1), out.clone())].into_iter().collect();
        (conns, out, (reader, writer, client))
    }

    #[tokio::test]
    async fn a_room_writes_at_once_until_it_has_spent_its_budget_then_queues() {
        let (conns, out, _ends) = room_with_one(64).await;
        let frame = Frame::text("hello".into());
        let mut delivery = conns.delivery();
        assert_eq!(
            delivery.send(&out, &frame, QueueTime::now()),
            Ok(Sent::Written)
        );
        drop(delivery);
        // The room has written for its whole budget in this window: what comes is queued
        // for the connection's writer, whose task runs wherever a core is free.
        conns.spent.store(nanos(BUDGET), Ordering::Relaxed);
        let mut delivery = conns.delivery();
        assert_eq!(
            delivery.send(&out, &frame, QueueTime::now()),
            Ok(Sent::Queued)
        );
        drop(delivery);
        // A new window, a new budget (here: the window is made to have begun long ago).
        conns.window.store(0, Ordering::Relaxed);
        let _ = out.queue.take(64);
        out.queue.written();
        let mut delivery = conns.delivery();
        let at = QueueTime::now();
        // (Past the writer's coalescing moment, which is zero here.)
        assert_eq!(delivery.send(&out, &frame, at), Ok(Sent::Written));
    }

    #[tokio::test]
    async fn a_long_delivery_stops_writing_at_once_when_its_budget_runs_out() {
        let (conns, out, _ends) = room_with_one(1024).await;
        let frame = Frame::text("x".into());
        // Just under the budget spent: the delivery starts writing, and after its first
        // look at the clock it queues.
        conns
            .window
            .store(QueueTime::now().nanos(), Ordering::Relaxed);
        conns.spent.store(nanos(BUDGET) - 1, Ordering::Relaxed);
        let mut delivery = conns.delivery();
        let outcomes: Vec<Sent> = (0..CHECK_EVERY * 2)
            .map(|_| delivery.send(&out, &frame, QueueTime::now()).expect("room"))
            .collect();
        assert_eq!(outcomes[0], Sent::Written);
        assert_eq!(outcomes.last(), Some(&Sent::Queued));
    }
}
