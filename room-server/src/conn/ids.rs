//! Connection numbers: unique among every node sharing Redis, so the rooms (which apply one log
//! on every node) can tell whose a connection is.

use room::ConnId;
use std::sync::atomic::{AtomicU64, Ordering};

/// Hands out this node's connection numbers: the node's number in the high bits, a counter
/// below.
#[derive(Debug)]
pub(crate) struct ConnIds {
    node_number: u64,
    next: AtomicU64,
}

impl ConnIds {
    pub(crate) fn new(node_number: u64) -> Self {
        Self {
            node_number,
            next: AtomicU64::new(1),
        }
    }

    /// A new connection's number.
    pub(crate) fn next(&self) -> ConnId {
        ConnId(
            (self.node_number << 40)
                | (self.next.fetch_add(1, Ordering::Relaxed) & ((1 << 40) - 1)),
        )
    }

    /// The node a connection belongs to.
    pub(crate) fn node_of(conn: ConnId) -> u64 {
        conn.0 >> 40
    }
}
