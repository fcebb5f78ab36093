//! The one place wall-clock time enters the node, so that tests and tools can fix it.

use protocol::UnixMillis;
use std::fmt::Debug;
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: Send + Sync + Debug + 'static {
    /// Now, in milliseconds since the Unix epoch.
    fn now(&self) -> UnixMillis;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixMillis {
        // A clock set before 1970 reads as 1970: every deadline is then in the future, which
        // is the safe side.
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        UnixMillis(u64::try_from(ms).unwrap_or(u64::MAX))
    }
}

/// A clock that runs like the system's, shifted by an offset tests can set: they jump to the
/// edge of a window while rooms keep ticking.
#[derive(Debug, Default)]
pub struct ShiftedClock {
    /// Milliseconds added to the system clock (negative: earlier).
    offset_ms: std::sync::atomic::AtomicI64,
}

impl ShiftedClock {
    /// A clock that reads like the system's.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock so that it reads `now` at this moment.
    pub fn set(&self, now: UnixMillis) {
        let system = i128::from(SystemClock.now().0);
        let offset = i64::try_from(i128::from(now.0) - system).unwrap_or(0);
        self.offset_ms
            .store(offset, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> UnixMillis {
        let offset = self.offset_ms.load(std::sync::atomic::Ordering::SeqCst);
        UnixMillis(SystemClock.now().0.saturating_add_signed(offset))
    }
}
