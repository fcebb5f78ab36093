//! The node's counters, shown at `/metrics` in Prometheus text format.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters for `/metrics`. Relaxed atomics: each is an independent tally.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Room connections open now.
    pub connections_active: AtomicU64,
    /// Room connections accepted since start.
    pub connections_total: AtomicU64,
    /// Connection attempts refused before the upgrade (origin, rate, capacity, subprotocol).
    pub upgrades_refused_total: AtomicU64,
    /// Frames queued to clients.
    pub frames_out_total: AtomicU64,
    /// Commands received from clients.
    pub commands_in_total: AtomicU64,
    /// Clients disconnected because their queue was full.
    pub slow_consumers_total: AtomicU64,
    /// Rooms running now.
    pub rooms_active: AtomicU64,
    /// Connection-check sockets (`/ws/check`) open now.
    pub check_connections_active: AtomicU64,
    /// WebRTC probes (a connection check's `media_offer`) made since start.
    pub check_probes_total: AtomicU64,
    /// WebRTC probes open now.
    pub check_probes_active: AtomicU64,
    /// WebRTC probes refused for the per-address or per-node cap.
    pub check_probes_refused_total: AtomicU64,
    /// RTP packets forwarded by broadcasts already closed (the open ones count their own).
    pub media_forwarded_retired: AtomicU64,
    /// RTP packets dropped for slow viewers by broadcasts already closed.
    pub media_dropped_retired: AtomicU64,
}

impl Metrics {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sub(counter: &AtomicU64, n: u64) {
        counter.fetch_sub(n, Ordering::Relaxed);
    }

    /// The counters in Prometheus text format.
    pub fn render(&self) -> String {
        let rows: [(&str, &str, &str, &AtomicU64); 11] = [
            (
                "room_connections_active",
                "gauge",
                "Room connections open now.",
                &self.connections_active,
            ),
            (
                "room_connections_total",
                "counter",
                "Room connections accepted.",
                &self.connections_total,
            ),
            (
                "room_upgrades_refused_total",
                "counter",
                "Connection attempts refused before the upgrade.",
                &self.upgrades_refused_total,
            ),
            (
                "room_frames_out_total",
                "counter",
                "Frames queued to clients.",
                &self.frames_out_total,
            ),
            (
                "room_commands_in_total",
                "counter",
                "Commands received from clients.",
                &self.commands_in_total,
            ),
            (
                "room_slow_consumers_total",
                "counter",
                "Clients disconnected for not reading.",
                &self.slow_consumers_total,
            ),
            (
                "room_rooms_active",
                "gauge",
                "Lecture rooms running on this node.",
                &self.rooms_active,
            ),
            (
                "room_check_connections_active",
                "gauge",
                "Connection-check sockets open now.",
                &self.check_connections_active,
            ),
            (
                "room_check_probes_total",
                "counter",
                "Connection-check WebRTC probes made.",
                &self.check_probes_total,
            ),
            (
                "room_check_probes_active",
                "gauge",
                "Connection-check WebRTC probes open now.",
                &self.check_probes_active,
            ),
            (
                "room_check_probes_refused_total",
                "counter",
                "Connection-check WebRTC probes refused for the per-address or per-node cap.",
                &self.check_probes_refused_total,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in rows {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}\n",
                value.load(Ordering::Relaxed)
            ));
        }
        out
    }
}
