//! Wake-ups inside one connection's task, without a lock.
//!
//! A connection's session is one task: its reader, its writer and its media loop are joined in
//! it, so every wait on the connection's own signals comes from the same task. A signal holds
//! one waker, the last registered: the writer and the rest of the session have wakers of their
//! own (`conn::join`), and the one signal both sides wait for, the kick, is named to the join,
//! which then polls both. That is what makes these cheaper than `tokio::sync::Notify` or a
//! `CancellationToken`, whose every poll takes a mutex (and, for a node-wide token, the same
//! mutex from every connection): a room's delivery wakes the writer with one atomic swap, and
//! each wake-up of the task polls its waits with atomic loads alone.
//!
//! **Only the task that owns the connection may wait** on these (anyone may raise them): a
//! second task waiting would take the waker from the first.

use futures_util::task::AtomicWaker;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

/// A flag raised from anywhere and awaited by the connection's task.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    raised: AtomicBool,
    waker: AtomicWaker,
}

impl Signal {
    /// Raises the flag and wakes the waiting task.
    pub(crate) fn raise(&self) {
        self.raised.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Whether the flag is up.
    pub(crate) fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Acquire)
    }

    /// Waits until the flag is up; it stays up (a latch).
    pub(crate) async fn raised(&self) {
        poll_fn(|cx| self.poll(cx, false)).await;
    }

    /// Waits until the flag is up and lowers it (one wake-up per raise, however many raises
    /// came meanwhile; a raise before the wait is kept for it).
    pub(crate) async fn take(&self) {
        poll_fn(|cx| self.poll(cx, true)).await;
    }

    fn poll(&self, cx: &mut Context<'_>, lower: bool) -> Poll<()> {
        if self.check(lower) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // A raise between the check and the registration would have found no waker.
        if self.check(lower) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    fn check(&self, lower: bool) -> bool {
        if lower {
            // Only a raised flag is written: the common case stays a load.
            self.is_raised() && self.raised.swap(false, Ordering::AcqRel)
        } else {
            self.is_raised()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_latch_stays_up_and_a_taken_signal_comes_down() {
        let signal = Signal::default();
        assert!(signal.raised().now_or_never().is_none());
        assert!(signal.take().now_or_never().is_none());
        signal.raise();
        assert!(signal.raised().now_or_never().is_some());
        assert!(signal.raised().now_or_never().is_some());
        assert!(signal.take().now_or_never().is_some());
        assert!(signal.take().now_or_never().is_none());
        // Two raises before a wait: one wake-up.
        signal.raise();
        signal.raise();
        assert!(signal.take().now_or_never().is_some());
        assert!(!signal.is_raised());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_raise_from_another_thread_wakes_the_waiting_task() {
        for _ in 0..1_000 {
            let signal = Arc::new(Signal::default());
            let raiser = Arc::clone(&signal);
            let raise = tokio::spawn(async move { raiser.raise() });
            tokio::time::timeout(Duration::from_secs(5), signal.take())
                .await
                .expect("woken");
            raise.await.expect("raised");
        }
    }
}
