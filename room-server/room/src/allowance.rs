//! A person's allowance for something rate-limited in the room (emotion presses, chat lines):
//! a GCRA limiter (one per `interval`, `burst` at once), kept as the theoretical arrival time
//! so it needs one number and no clock of its own — time is passed in, as everywhere in the
//! room.

use protocol::UnixMillis;
use serde::{Deserialize, Serialize};

/// One allowance (see the module documentation).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Allowance {
    tat: u64,
}

impl Allowance {
    /// Takes one at `now` if the allowance has room.
    pub(crate) fn try_take(&mut self, now: UnixMillis, interval_ms: u64, burst: u32) -> bool {
        let tat = self.tat.max(now.0);
        let limit = now.0 + interval_ms.saturating_mul(u64::from(burst.max(1)) - 1);
        if tat > limit {
            return false;
        }
        self.tat = tat + interval_ms;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowance_gives_a_burst_then_one_per_interval() {
        let mut a = Allowance::default();
        let t = UnixMillis(1_000_000);
        let taken = (0..20).filter(|_| a.try_take(t, 200, 10)).count();
        assert_eq!(taken, 10);
        assert!(!a.try_take(t.plus_ms(100), 200, 10));
        assert!(a.try_take(t.plus_ms(200), 200, 10));
        // A long pause refills the whole burst, no more.
        let later = t.plus_ms(60_000);
        assert_eq!((0..20).filter(|_| a.try_take(later, 200, 10)).count(), 10);
    }
}
