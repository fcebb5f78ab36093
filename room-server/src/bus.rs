//! The node's bus: events from the entry gate that must reach a lecture's room on whichever node
//! it runs. On one node they go to the room's task; with Redis they are appended to the lecture's
//! log, which every node holding the lecture applies.

use crate::backoff::Backoff;
use crate::log::RoomEntry;
use protocol::LectureId;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::broadcast;
use tracing::warn;

/// Something every node holding a lecture's room must act on: an entry of the lecture's log
/// (a revocation, a cancellation, new times), in the words the rooms apply it in.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BusEvent {
    /// The lecture.
    pub(crate) lecture: LectureId,
    /// What its room must apply.
    pub(crate) entry: RoomEntry,
}

/// The in-process bus.
#[derive(Debug, Clone)]
pub struct Bus {
    tx: broadcast::Sender<BusEvent>,
    /// Set when handing an event to the other nodes failed through every retry, until one is
    /// handed over again: while Redis stays away, each later event gets one attempt instead of
    /// holding the ones behind it for the whole back-off.
    handover_failing: Arc<AtomicBool>,
}

impl Default for Bus {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
            handover_failing: Arc::default(),
        }
    }
}

impl Bus {
    /// Publishes to every subscriber (none listening is fine: no room to act on it).
    pub(crate) fn publish(&self, event: BusEvent) {
        let _ = self.tx.send(event);
    }

    /// A new subscription.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<BusEvent> {
        self.tx.subscribe()
    }

    /// Hands an event to the other nodes with `attempt` (an append to the lecture's log in
    /// Redis), retrying with back-off: up to [`ATTEMPTS`] times, or once while the previous
    /// event already failed through all of its (Redis is still away; events wait in order
    /// behind this one, and each is in the store already, so entry refuses what it revokes).
    /// Returns the last error when every attempt failed.
    pub(crate) async fn hand_over<T, E, F, Fut>(&self, attempt: F) -> Result<T, E>
    where
        E: std::fmt::Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let attempts = match self.handover_failing.load(Ordering::Relaxed) {
            true => 1,
            false => ATTEMPTS,
        };
        let result = retrying(attempts, attempt).await;
        self.handover_failing
            .store(result.is_err(), Ordering::Relaxed);
        result
    }
}

/// Pause before the first retry of handing an event to the other nodes; doubled after each
/// failure up to [`LAST_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// Longest pause between two attempts.
const LAST_RETRY: Duration = Duration::from_secs(5);
/// Attempts in all for one event: about half a minute of Redis being away (each attempt also
/// waits up to Redis's one-second timeouts), longer than a restart or a failover takes.
pub(crate) const ATTEMPTS: u32 = 8;

/// Runs `attempt` until it succeeds, at most `attempts` times, pausing with back-off between
/// failures; returns the last error when every attempt failed.
async fn retrying<T, E, F, Fut>(attempts: u32, mut attempt: F) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut pause = Backoff::new(FIRST_RETRY, LAST_RETRY);
    let mut tries = 1;
    loop {
        match attempt().await {
            Ok(done) => return Ok(done),
            Err(e) if tries >= attempts => return Err(e),
            Err(e) => {
                warn!(error = %e, attempt = tries, "handing an event to the other nodes failed; retrying");
                pause.wait().await;
                tries += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[tokio::test(start_paused = true)]
    async fn a_failing_hand_over_is_retried_with_back_off_until_it_succeeds() {
        let bus = Bus::default();
        let calls = Cell::new(0);
        let start = tokio::time::Instant::now();
        let result = bus
            .hand_over(|| {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move { if n < 4 { Err("redis is away") } else { Ok(n) } }
            })
            .await;
        assert_eq!(result, Ok(4));
        // 100 + 200 + 400 ms of pauses (the paused clock jumps through them).
        assert_eq!(start.elapsed(), Duration::from_millis(700));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_are_bounded_and_later_events_do_not_wait_for_a_redis_still_away() {
        let bus = Bus::default();
        let calls = Cell::new(0);
        let failing = || {
            calls.set(calls.get() + 1);
            async { Err::<(), _>("redis is away") }
        };
        let start = tokio::time::Instant::now();
        assert_eq!(bus.hand_over(failing).await, Err("redis is away"));
        assert_eq!(calls.get(), ATTEMPTS);
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{:?}",
            start.elapsed()
        );
        // Still away: the next event is tried once, at once.
        let next = tokio::time::Instant::now();
        assert_eq!(bus.hand_over(failing).await, Err("redis is away"));
        assert_eq!(calls.get(), ATTEMPTS + 1);
        assert_eq!(next.elapsed(), Duration::ZERO);
        // Back: handed over, and the next failure is retried in full again.
        assert_eq!(bus.hand_over(|| async { Ok::<_, &str>(()) }).await, Ok(()));
        calls.set(0);
        assert_eq!(bus.hand_over(failing).await, Err("redis is away"));
        assert_eq!(calls.get(), ATTEMPTS);
    }
}
