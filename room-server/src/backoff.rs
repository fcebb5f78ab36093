//! Waits between retries of what failed: doubling from a first pause up to a longest one, and
//! back to the first after a success. One helper for every retry loop of the node (the log's
//! reader and writer, a room's epoch, the relay, the gate's hand-over).

use std::time::Duration;

/// Doubling waits (see the module documentation).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Backoff {
    first: Duration,
    most: Duration,
    next: Duration,
}

impl Backoff {
    /// Waits from `first`, doubling up to `most`.
    pub(crate) const fn new(first: Duration, most: Duration) -> Self {
        Self {
            first,
            most,
            next: first,
        }
    }

    /// The wait before the next try; the one after is twice as long (at most `most`).
    pub(crate) fn next(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.most);
        wait
    }

    /// Waits the next wait.
    pub(crate) async fn wait(&mut self) {
        tokio::time::sleep(self.next()).await;
    }

    /// Something worked: the next failure waits the first pause again.
    pub(crate) fn reset(&mut self) {
        self.next = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_longest_and_start_over_after_a_success() {
        let mut b = Backoff::new(Duration::from_millis(50), Duration::from_millis(300));
        let waits: Vec<u128> = (0..5).map(|_| b.next().as_millis()).collect();
        assert_eq!(waits, [50, 100, 200, 300, 300]);
        b.reset();
        assert_eq!(b.next(), Duration::from_millis(50));
    }
}
