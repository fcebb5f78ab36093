//! The node's metrics: one registry of typed counters, gauges and histograms, shown at
//! `/metrics` in the OpenMetrics text format (`docs/metrics.md` lists them). The names, help
//! texts and histogram buckets live here alone; the other modules count, set and observe
//! through the handles of [`Metrics`].

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::time::Instant;
use tracing::error;

/// The content type of [`Metrics::encode`]'s text: Prometheus asks for it and reads the units
/// and the end marker it carries.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Histogram bounds in seconds, 100 µs to 10 s in 1–2.5–5 steps; each histogram takes the part
/// of the ladder its waits fall in.
const LADDER: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Frames in a healthy queue wait well under a millisecond; a client falling behind waits
/// seconds (and is cut off as a slow consumer by its unanswered ping, 15 s by default).
const QUEUE_WAIT_BUCKETS: &[f64] = &LADDER;
/// Redis appends in about a millisecond; while it is away, an entry waits out the retries.
const LOG_APPEND_BUCKETS: &[f64] = &LADDER;
/// A round trip past the node's 1 s response timeout is a failure, not a sample.
const REDIS_ROUND_TRIP_BUCKETS: &[f64] = LADDER.split_at(13).0;
/// A join reads the hello, asks the store, and goes through the room's log: milliseconds,
/// up to the 10 s hello timeout.
const JOIN_BUCKETS: &[f64] = LADDER.split_at(3).1;

/// The node's metrics. Counters and gauges are plain atomics under the hood (relaxed: each is
/// an independent tally); a histogram takes a short lock per observation, so each is observed
/// at most once per write batch, append, heartbeat or join, never per frame.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// 1 while `/readyz` answers 200 (ready or degraded), 0 while draining.
    pub node_ready: Gauge,
    /// 1 while the node is cut off from Redis (`/readyz` says `degraded`).
    pub node_degraded: Gauge,
    /// Room connections open now.
    pub connections_active: Gauge,
    /// Room connections accepted since start.
    pub connections_total: Counter,
    /// Connection attempts refused before the upgrade (origin, rate, capacity, subprotocol).
    pub upgrades_refused_total: Counter,
    /// Frames queued to clients.
    pub frames_out_total: Counter,
    /// Frames written to room sockets…
    pub frames_written_total: Counter,
    /// …in this many `write` system calls (frames per write: how much writes coalesce).
    pub socket_writes_total: Counter,
    /// Commands received from clients.
    pub commands_in_total: Counter,
    /// Clients disconnected because their queue was full or they stopped reading.
    pub slow_consumers_total: Counter,
    /// Rooms running now.
    pub rooms_active: Gauge,
    /// Lecture archives made (recording muxed and stored) since start.
    pub archives_made_total: Counter,
    /// Lecture archives that could not be made since start.
    pub archive_failures_total: Counter,
    /// Expired archives deleted since start.
    pub archives_expired_total: Counter,
    /// Track recordings stopped for low disk space (counted when the broadcast closes).
    pub recording_disk_stops_total: Counter,
    /// Learners' e-mails: sent, given up, and failed attempts tried again.
    pub mail: crate::mail::MailCounters,
    /// Connection-check sockets (`/ws/check`) open now.
    pub check_connections_active: Gauge,
    /// WebRTC probes (a connection check's `media_offer`) made since start.
    pub check_probes_total: Counter,
    /// WebRTC probes open now.
    pub check_probes_active: Gauge,
    /// WebRTC probes refused for the per-address or per-node cap.
    pub check_probes_refused_total: Counter,
    /// Seconds from the enqueue of the oldest frame of a write batch to the batch's flush.
    pub outbound_queue_wait: Histogram,
    /// Seconds from a room submitting an entry to its log to the append being confirmed.
    pub log_append: Histogram,
    /// Entries rooms handed to Redis and Redis has not yet appended (all rooms).
    pub log_appends_waiting: Gauge,
    /// Seconds of a heartbeat's round trip to Redis (answered ones only).
    pub redis_round_trip: Histogram,
    /// Seconds from a room socket's upgrade to its welcome being queued.
    pub join: Histogram,
    /// Snapshots of rooms this node wrote to Redis.
    pub snapshots_written_total: Counter,
    /// Size in bytes of the latest snapshot this node wrote.
    pub snapshot_bytes: Gauge,
    /// Rooms this node started from a snapshot (opening a running lecture, or after falling
    /// behind the trimmed log).
    pub snapshot_restores_total: Counter,
    /// The media figures, read from the open broadcasts when `/metrics` is asked for.
    media: MediaMetrics,
    /// RTP packets forwarded by broadcasts already closed (the open ones count their own).
    media_forwarded_retired: AtomicU64,
    /// RTP packets dropped for slow viewers by broadcasts already closed.
    media_dropped_retired: AtomicU64,
}

/// The media families: their values are the broadcasts' own, set just before encoding.
#[derive(Debug, Default)]
struct MediaMetrics {
    subscribers: Gauge,
    publishers: Gauge,
    relays_in: Gauge,
    relays_out: Gauge,
    forwarded_packets: Counter,
    dropped_packets: Counter,
    ice_candidates_dropped: Counter,
}

/// What this node's open broadcasts come to at the moment `/metrics` is asked for.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MediaNow {
    /// Viewers receiving media (relays to other nodes left out).
    pub(crate) subscribers: u64,
    /// Instructors publishing on this node.
    pub(crate) publishers: u64,
    /// Lectures whose instructor this node relays from another node.
    pub(crate) relays_in: u64,
    /// Other nodes relaying an instructor on this node.
    pub(crate) relays_out: u64,
    /// RTP packets the open broadcasts forwarded.
    pub(crate) forwarded_packets: u64,
    /// RTP packets the open broadcasts dropped for slow viewers.
    pub(crate) dropped_packets: u64,
    /// ICE candidates from clients dropped for naming a private address (since start).
    pub(crate) ice_candidates_dropped: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        let histogram = |buckets: &[f64]| Histogram::new(buckets.iter().copied());
        let mut metrics = Self {
            registry: Registry::default(),
            node_ready: Gauge::default(),
            node_degraded: Gauge::default(),
            connections_active: Gauge::default(),
            connections_total: Counter::default(),
            upgrades_refused_total: Counter::default(),
            frames_out_total: Counter::default(),
            frames_written_total: Counter::default(),
            socket_writes_total: Counter::default(),
            commands_in_total: Counter::default(),
            slow_consumers_total: Counter::default(),
            rooms_active: Gauge::default(),
            archives_made_total: Counter::default(),
            archive_failures_total: Counter::default(),
            archives_expired_total: Counter::default(),
            recording_disk_stops_total: Counter::default(),
            mail: crate::mail::MailCounters::default(),
            check_connections_active: Gauge::default(),
            check_probes_total: Counter::default(),
            check_probes_active: Gauge::default(),
            check_probes_refused_total: Counter::default(),
            outbound_queue_wait: histogram(QUEUE_WAIT_BUCKETS),
            log_append: histogram(LOG_APPEND_BUCKETS),
            log_appends_waiting: Gauge::default(),
            redis_round_trip: histogram(REDIS_ROUND_TRIP_BUCKETS),
            join: histogram(JOIN_BUCKETS),
            snapshots_written_total: Counter::default(),
            snapshot_bytes: Gauge::default(),
            snapshot_restores_total: Counter::default(),
            media: MediaMetrics::default(),
            media_forwarded_retired: AtomicU64::new(0),
            media_dropped_retired: AtomicU64::new(0),
        };
        metrics.register();
        metrics
    }
}

impl Metrics {
    /// Puts every family in the registry, in the order `/metrics` shows them. A counter's name
    /// is given without `_total` and a histogram's without `_seconds`: the encoder adds them.
    fn register(&mut self) {
        let r = &mut self.registry;
        r.register(
            "room_node_ready",
            "1 while /readyz answers 200, 0 while the node drains",
            self.node_ready.clone(),
        );
        r.register(
            "room_node_degraded",
            "1 while the node is cut off from Redis",
            self.node_degraded.clone(),
        );
        r.register(
            "room_connections_active",
            "Room connections open now",
            self.connections_active.clone(),
        );
        r.register(
            "room_connections",
            "Room connections accepted",
            self.connections_total.clone(),
        );
        r.register(
            "room_upgrades_refused",
            "Connection attempts refused before the upgrade",
            self.upgrades_refused_total.clone(),
        );
        r.register(
            "room_frames_out",
            "Frames queued to clients",
            self.frames_out_total.clone(),
        );
        r.register(
            "room_frames_written",
            "Frames written to room sockets",
            self.frames_written_total.clone(),
        );
        r.register(
            "room_socket_writes",
            "Write system calls on room sockets (frames written per write: how much writes coalesce)",
            self.socket_writes_total.clone(),
        );
        r.register(
            "room_commands_in",
            "Commands received from clients",
            self.commands_in_total.clone(),
        );
        r.register(
            "room_slow_consumers",
            "Clients disconnected for not reading",
            self.slow_consumers_total.clone(),
        );
        r.register(
            "room_snapshots_written",
            "Snapshots of rooms written to Redis",
            self.snapshots_written_total.clone(),
        );
        r.register_with_unit(
            "room_snapshot",
            "Size of the latest room snapshot written",
            Unit::Bytes,
            self.snapshot_bytes.clone(),
        );
        r.register(
            "room_snapshot_restores",
            "Rooms started from a snapshot",
            self.snapshot_restores_total.clone(),
        );
        r.register(
            "room_rooms_active",
            "Lecture rooms running on this node",
            self.rooms_active.clone(),
        );
        r.register(
            "room_archives_made",
            "Lecture archives made from this node's recordings",
            self.archives_made_total.clone(),
        );
        r.register(
            "room_archive_failures",
            "Lecture archives that could not be made",
            self.archive_failures_total.clone(),
        );
        r.register(
            "room_archives_expired",
            "Expired lecture archives deleted",
            self.archives_expired_total.clone(),
        );
        r.register(
            "room_recording_disk_stops",
            "Track recordings stopped for low disk space",
            self.recording_disk_stops_total.clone(),
        );
        r.register(
            "room_mail_sent",
            "Learners' e-mails the SMTP server took",
            self.mail.sent.clone(),
        );
        r.register(
            "room_mail_failed",
            "Learners' e-mails given up (refused for good, or the last attempt failed)",
            self.mail.failed.clone(),
        );
        r.register(
            "room_mail_retries",
            "Failed attempts to send a learner's e-mail that are tried again later",
            self.mail.retries.clone(),
        );
        r.register(
            "room_mail_rounds",
            "Rounds of the e-mail sender (queue what became due, send what is due)",
            self.mail.rounds.clone(),
        );
        r.register(
            "room_check_connections_active",
            "Connection-check sockets open now",
            self.check_connections_active.clone(),
        );
        r.register(
            "room_check_probes",
            "Connection-check WebRTC probes made",
            self.check_probes_total.clone(),
        );
        r.register(
            "room_check_probes_active",
            "Connection-check WebRTC probes open now",
            self.check_probes_active.clone(),
        );
        r.register(
            "room_check_probes_refused",
            "Connection-check WebRTC probes refused for the per-address or per-node cap",
            self.check_probes_refused_total.clone(),
        );
        r.register_with_unit(
            "room_outbound_queue_wait",
            "Time from the enqueue of the oldest frame of a write batch to the batch's flush \
             to the socket",
            Unit::Seconds,
            self.outbound_queue_wait.clone(),
        );
        r.register_with_unit(
            "room_log_append",
            "Time from a room submitting an entry to its log to the append being confirmed",
            Unit::Seconds,
            self.log_append.clone(),
        );
        r.register(
            "room_log_appends_waiting",
            "Entries rooms handed to Redis that Redis has not yet appended; a room takes no more commands from its people while 10,000 of its own wait",
            self.log_appends_waiting.clone(),
        );
        r.register_with_unit(
            "room_redis_round_trip",
            "Round trip of a heartbeat to Redis",
            Unit::Seconds,
            self.redis_round_trip.clone(),
        );
        r.register_with_unit(
            "room_join",
            "Time from a room socket's upgrade to its welcome being queued",
            Unit::Seconds,
            self.join.clone(),
        );
        let m = &self.media;
        r.register(
            "media_subscribers",
            "Viewers receiving media now",
            m.subscribers.clone(),
        );
        r.register(
            "media_publishers",
            "Instructors publishing now",
            m.publishers.clone(),
        );
        r.register(
            "media_relays_in",
            "Lectures whose instructor this node relays from another node now",
            m.relays_in.clone(),
        );
        r.register(
            "media_relays_out",
            "Other nodes relaying an instructor on this node now",
            m.relays_out.clone(),
        );
        r.register(
            "media_forwarded_packets",
            "RTP packets forwarded to viewers",
            m.forwarded_packets.clone(),
        );
        r.register(
            "media_dropped_packets",
            "RTP packets dropped for slow viewers",
            m.dropped_packets.clone(),
        );
        r.register(
            "media_ice_candidates_dropped",
            "ICE candidates from clients dropped for naming a private address",
            m.ice_candidates_dropped.clone(),
        );
    }

    /// Every family in the OpenMetrics text format ([`CONTENT_TYPE`]), the media figures taken
    /// from `media` (with what closed broadcasts counted added to its counters).
    pub(crate) fn encode(&self, media: &MediaNow) -> String {
        let m = &self.media;
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        m.subscribers.set(gauge(media.subscribers));
        m.publishers.set(gauge(media.publishers));
        m.relays_in.set(gauge(media.relays_in));
        m.relays_out.set(gauge(media.relays_out));
        // These counters are the broadcasts' own tallies, so they are set rather than added to;
        // never lowered, though: a broadcast being closed is briefly in neither tally.
        let retired = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let set = |counter: &Counter, v: u64| counter.inner().fetch_max(v, Ordering::Relaxed);
        set(
            &m.forwarded_packets,
            media.forwarded_packets + retired(&self.media_forwarded_retired),
        );
        set(
            &m.dropped_packets,
            media.dropped_packets + retired(&self.media_dropped_retired),
        );
        set(&m.ice_candidates_dropped, media.ice_candidates_dropped);
        let mut text = String::new();
        if let Err(e) = encode(&mut text, &self.registry) {
            error!(error = %e, "the metrics failed to encode");
        }
        text
    }

    /// Keeps what a closed broadcast counted in the media totals.
    pub(crate) fn retire_media(&self, forwarded_packets: u64, dropped_packets: u64) {
        self.media_forwarded_retired
            .fetch_add(forwarded_packets, Ordering::Relaxed);
        self.media_dropped_retired
            .fetch_add(dropped_packets, Ordering::Relaxed);
    }

    /// Observes into `histogram` the time from `since` until `done`, unless `abandoned` comes
    /// first (then nothing is observed).
    pub(crate) async fn time_until(
        histogram: &Histogram,
        since: Instant,
        done: impl Future<Output = ()>,
        abandoned: impl Future<Output = ()>,
    ) {
        tokio::select! {
            biased;
            () = done => histogram.observe(since.elapsed().as_secs_f64()),
            () = abandoned => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_keeps_its_name_and_type_and_histograms_show_buckets_sum_and_count() {
        let metrics = Metrics::default();
        metrics.connections_total.inc();
        metrics.connections_active.inc();
        metrics.outbound_queue_wait.observe(0.003);
        metrics.retire_media(5, 0);
        let text = metrics.encode(&MediaNow {
            forwarded_packets: 2,
            subscribers: 3,
            ..MediaNow::default()
        });
        for line in [
            "room_connections_total 1",
            "room_connections_active 1",
            "room_rooms_active 0",
            "media_forwarded_packets_total 7",
            "media_subscribers 3",
            "# TYPE room_connections counter",
            "# TYPE room_connections_active gauge",
            "# TYPE room_outbound_queue_wait_seconds histogram",
            "# UNIT room_outbound_queue_wait_seconds seconds",
            "room_outbound_queue_wait_seconds_bucket{le=\"0.0025\"} 0",
            "room_outbound_queue_wait_seconds_bucket{le=\"0.005\"} 1",
            "room_outbound_queue_wait_seconds_bucket{le=\"+Inf\"} 1",
            "room_outbound_queue_wait_seconds_count 1",
            "room_outbound_queue_wait_seconds_sum 0.003",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        for name in [
            "room_upgrades_refused_total",
            "room_frames_out_total",
            "room_frames_written_total",
            "room_socket_writes_total",
            "room_commands_in_total",
            "room_slow_consumers_total",
            "room_check_connections_active",
            "room_check_probes_total",
            "room_check_probes_active",
            "room_check_probes_refused_total",
            "room_log_append_seconds_count",
            "room_log_appends_waiting",
            "room_redis_round_trip_seconds_count",
            "room_join_seconds_count",
            "media_publishers",
            "media_relays_in",
            "media_relays_out",
            "media_dropped_packets_total",
            "media_ice_candidates_dropped_total",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{name} "))),
                "no {name} in:\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn a_media_counter_follows_the_broadcasts_and_never_goes_back_while_one_closes() {
        let metrics = Metrics::default();
        let at = |n| MediaNow {
            dropped_packets: n,
            ..MediaNow::default()
        };
        assert!(
            metrics
                .encode(&at(4))
                .contains("\nmedia_dropped_packets_total 4\n")
        );
        // Closing: in neither tally for a moment, then among the closed ones.
        assert!(
            metrics
                .encode(&at(0))
                .contains("\nmedia_dropped_packets_total 4\n")
        );
        metrics.retire_media(0, 4);
        assert!(
            metrics
                .encode(&at(1))
                .contains("\nmedia_dropped_packets_total 5\n")
        );
    }

    #[tokio::test]
    async fn a_wait_abandoned_before_it_is_done_is_not_observed() {
        let metrics = Metrics::default();
        let since = Instant::now();
        Metrics::time_until(&metrics.join, since, std::future::pending(), async {}).await;
        assert!(
            metrics
                .encode(&MediaNow::default())
                .contains("\nroom_join_seconds_count 0\n")
        );
        Metrics::time_until(&metrics.join, since, async {}, async {}).await;
        assert!(
            metrics
                .encode(&MediaNow::default())
                .contains("\nroom_join_seconds_count 1\n")
        );
    }
}
