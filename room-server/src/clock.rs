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
