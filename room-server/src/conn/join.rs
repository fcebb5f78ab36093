//! Runs a connection's writer beside the rest of its session in one task, polling on each wake
//! only the side that was woken.
//!
//! `tokio::join!` polls every branch whenever the task wakes. A connection's task wakes for
//! almost every frame delivered to it (its writer's queue), and with one `join!` of all its
//! loops each of those wakes also polled the reader (its socket, its idle timer, its kick), the
//! media session and the join metric: about 15 % of the node's CPU at 2,000 learners and 20
//! chat lines a second went to polls that could not make progress (bench/README.md). Here each
//! side gets a waker of its own that marks it before waking the task.
//!
//! A signal both sides wait for holds only the waker of the side that registered last (see
//! [`Signal`](super::signal::Signal)), so the join is told which one is shared: once it is
//! raised (the session's kick), every wake polls both sides.

use futures_util::task::AtomicWaker;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, Wake, Waker};

/// What the sides' wakers share with the join.
#[derive(Debug)]
struct Shared {
    /// A bit per side woken since the join last polled it.
    woken: AtomicU8,
    /// The task's waker.
    task: AtomicWaker,
}

/// One side's waker: marks the side, then wakes the task.
#[derive(Debug)]
struct Side {
    shared: Arc<Shared>,
    bit: u8,
}

impl Wake for Side {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.shared.woken.fetch_or(self.bit, Ordering::AcqRel);
        self.shared.task.wake();
    }
}

const FIRST: u8 = 0b01;
const SECOND: u8 = 0b10;
const BOTH: u8 = FIRST | SECOND;

pin_project! {
    /// Two futures run to completion side by side (see the module documentation).
    #[must_use = "futures do nothing unless awaited"]
    pub(crate) struct Join2<A, B, F> {
        #[pin]
        first: A,
        #[pin]
        second: B,
        // Whether the signal both wait for is raised: then both are polled at every wake.
        shared_raised: F,
        // A bit per side that has finished.
        done: u8,
        shared: Arc<Shared>,
        wakers: [Waker; 2],
    }
}

impl<A, B, F> std::fmt::Debug for Join2<A, B, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Join2").field("done", &self.done).finish()
    }
}

/// Runs `first` and `second` to completion in the calling task, each polled when its own
/// wakers fire, and both at every wake once `shared_raised()` holds (the one signal both
/// wait for).
pub(crate) fn join2<A, B, F>(first: A, second: B, shared_raised: F) -> Join2<A, B, F>
where
    A: Future<Output = ()>,
    B: Future<Output = ()>,
    F: Fn() -> bool,
{
    let shared = Arc::new(Shared {
        // Both are polled the first time.
        woken: AtomicU8::new(BOTH),
        task: AtomicWaker::new(),
    });
    let side = |bit| {
        Waker::from(Arc::new(Side {
            shared: Arc::clone(&shared),
            bit,
        }))
    };
    let wakers = [side(FIRST), side(SECOND)];
    Join2 {
        first,
        second,
        shared_raised,
        done: 0,
        shared,
        wakers,
    }
}

/// Polls `fut` with `waker` if its side (`bit`) is in `woken` and has not finished.
fn poll_side<T: Future<Output = ()>>(
    fut: Pin<&mut T>,
    bit: u8,
    woken: u8,
    done: &mut u8,
    waker: &Waker,
) {
    if woken & bit == 0 || *done & bit != 0 {
        return;
    }
    if fut.poll(&mut Context::from_waker(waker)).is_ready() {
        *done |= bit;
    }
}

impl<A, B, F> Future for Join2<A, B, F>
where
    A: Future<Output = ()>,
    B: Future<Output = ()>,
    F: Fn() -> bool,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        // Registered before the marks are taken: a wake after the swap wakes the task again,
        // one before it is in the marks.
        this.shared.task.register(cx.waker());
        let mut woken = this.shared.woken.swap(0, Ordering::AcqRel);
        if (this.shared_raised)() {
            woken = BOTH;
        }
        poll_side(this.first, FIRST, woken, this.done, &this.wakers[0]);
        poll_side(this.second, SECOND, woken, this.done, &this.wakers[1]);
        if *this.done == BOTH {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::signal::Signal;
    use std::cell::Cell;

    /// Counts its polls; ends once `go` (or `shared`) is raised.
    async fn counted(polls: &Cell<usize>, go: &Signal, shared: &Signal) {
        std::future::poll_fn(|cx| {
            polls.set(polls.get() + 1);
            let mine = std::pin::pin!(go.raised());
            let theirs = std::pin::pin!(shared.raised());
            if mine.poll(cx).is_ready() || theirs.poll(cx).is_ready() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    #[tokio::test]
    async fn a_wake_polls_only_the_side_woken_and_a_shared_signal_reaches_both() {
        let (polls_a, polls_b) = (Cell::new(0), Cell::new(0));
        let (go_a, go_b, kick) = (Signal::default(), Signal::default(), Signal::default());
        let join = join2(
            counted(&polls_a, &go_a, &kick),
            counted(&polls_b, &go_b, &kick),
            || kick.is_raised(),
        );
        let mut join = std::pin::pin!(join);
        assert!(futures_util::poll!(join.as_mut()).is_pending());
        assert_eq!((polls_a.get(), polls_b.get()), (1, 1));
        // The first side's own signal: only it is polled.
        go_a.raise();
        assert!(futures_util::poll!(join.as_mut()).is_pending());
        assert_eq!((polls_a.get(), polls_b.get()), (2, 1));
        // Nothing woken: nothing polled (the first side has finished anyway).
        assert!(futures_util::poll!(join.as_mut()).is_pending());
        assert_eq!((polls_a.get(), polls_b.get()), (2, 1));
        // The shared signal holds only the waker registered last; both sides still see it
        // because the join is told it is shared (told nothing, the first side would wait on).
        let ends_both = |told: bool| {
            let (polls_c, polls_d) = (Cell::new(0), Cell::new(0));
            let (go_c, go_d, shared) = (Signal::default(), Signal::default(), Signal::default());
            let j = join2(
                counted(&polls_c, &go_c, &shared),
                counted(&polls_d, &go_d, &shared),
                || told && shared.is_raised(),
            );
            let mut j = std::pin::pin!(j);
            let waker = futures_util::task::noop_waker();
            let mut cx = Context::from_waker(&waker);
            assert!(j.as_mut().poll(&mut cx).is_pending());
            shared.raise();
            j.as_mut().poll(&mut cx).is_ready()
        };
        assert!(ends_both(true), "a shared signal ends both sides");
        assert!(!ends_both(false));
        go_b.raise();
        join.await;
        assert_eq!((polls_a.get(), polls_b.get()), (2, 2));
    }
}
