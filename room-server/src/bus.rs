//! The node's bus: events from the entry gate that must reach a lecture's room on whichever node
//! it runs. On one node they go to the room's task; with Redis they are appended to the lecture's
//! log, which every node holding the lecture applies.

use protocol::{LectureId, UnixMillis, UserId};
use tokio::sync::broadcast;

/// Something every node holding a lecture's room must act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BusEvent {
    /// A person no longer may be in the lecture (purchase cancelled or refunded, seat taken
    /// back): remove them, and refuse tickets issued before `at`.
    Revoke {
        /// The lecture.
        lecture: LectureId,
        /// The person.
        user: UserId,
        /// When the right was taken away.
        at: UnixMillis,
    },
    /// The lecture's times or title changed.
    Reschedule {
        /// The lecture.
        lecture: LectureId,
        /// New title.
        title: String,
        /// New start.
        starts_at: UnixMillis,
        /// New end.
        ends_at: UnixMillis,
    },
    /// The lecture was cancelled.
    Cancel {
        /// The lecture.
        lecture: LectureId,
        /// Why.
        reason: String,
    },
}

/// The in-process bus.
#[derive(Debug, Clone)]
pub struct Bus {
    tx: broadcast::Sender<BusEvent>,
}

impl Default for Bus {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl Bus {
    /// Publishes to every subscriber (none listening is fine: no room to act on it).
    pub fn publish(&self, event: BusEvent) {
        let _ = self.tx.send(event);
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<BusEvent> {
        self.tx.subscribe()
    }
}
