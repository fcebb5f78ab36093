//! Cluster membership: this node's number among the nodes sharing Redis, its heartbeats, its
//! view of which other nodes are alive, and whether it is cut off from Redis (degraded).

use crate::log::redis::Redis;
use prometheus_client::metrics::histogram::Histogram;
use std::sync::{Mutex, Weak};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// This node among the others.
#[derive(Debug)]
pub(crate) struct Cluster {
    /// Redis, when nodes share lectures; none: this node alone.
    pub(crate) redis: Option<Redis>,
    /// The high bits of this node's connection ids: unique among the nodes sharing Redis.
    pub(crate) node_number: u64,
    /// Which other nodes Redis last heard from, and how current that news is.
    liveness: Mutex<Liveness>,
    /// True while Redis is unreachable (rooms run on alone; clients are told; `/readyz` says
    /// so).
    pub(crate) degraded: tokio::sync::watch::Sender<bool>,
    /// Where each answered heartbeat's round trip is observed.
    round_trip: Histogram,
}

impl Cluster {
    /// Joins the nodes sharing `redis` (draws this node's number); alone without Redis. Each
    /// heartbeat's round trip goes to `round_trip`.
    pub(crate) async fn join(
        redis: Option<Redis>,
        round_trip: Histogram,
    ) -> Result<Self, redis::RedisError> {
        let node_number = match &redis {
            Some(redis) => redis.node_number().await? & 0xff_ffff,
            None => 0,
        };
        Ok(Self {
            redis,
            node_number,
            liveness: Mutex::new(Liveness::new(Instant::now())),
            degraded: tokio::sync::watch::Sender::new(false),
            round_trip,
        })
    }

    /// Whether Redis is unreachable.
    pub(crate) fn is_degraded(&self) -> bool {
        *self.degraded.borrow()
    }

    fn set_degraded(&self, degraded: bool) {
        self.degraded
            .send_if_modified(|d| std::mem::replace(d, degraded) != degraded);
    }

    /// Whether another node has stopped beating: its connections are gone, and the rooms it
    /// shared close them (their seats are then held for the grace period, as after any drop).
    pub(crate) fn node_is_dead(&self, node: u64) -> bool {
        if node == self.node_number || self.redis.is_none() || self.is_degraded() {
            return false;
        }
        self.liveness
            .lock()
            .is_ok_and(|liveness| liveness.judges_dead(node, Instant::now()))
    }

    /// One heartbeat: says this node is alive and notes which others are.
    pub(crate) async fn beat(&self) {
        let Some(redis) = &self.redis else { return };
        let sent = Instant::now();
        match redis
            .heartbeat(self.node_number, NODE_SILENCE.as_millis() as u64)
            .await
        {
            Ok(alive) => {
                self.round_trip.observe(sent.elapsed().as_secs_f64());
                self.set_degraded(false);
                if let Ok(mut liveness) = self.liveness.lock() {
                    liveness.heard(alive, Instant::now());
                }
            }
            Err(e) => {
                self.set_degraded(true);
                warn!(error = %e, "heartbeat to Redis failed");
            }
        }
    }
}

/// Beats every [`BEAT_EVERY`] while the node runs; on `draining`, leaves the heartbeats (a
/// clean shutdown: its people were closed) and stops.
pub(crate) async fn heartbeats(cluster: Weak<Cluster>, draining: CancellationToken) {
    let mut every = tokio::time::interval(BEAT_EVERY);
    // After a stall, one beat now, not a burst of the missed ones.
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        if draining.is_cancelled() {
            if let Some(redis) = &cluster.redis {
                let _ = redis.leave(cluster.node_number).await;
            }
            return;
        }
        cluster.beat().await;
    }
}

/// A node Redis has not heard from for this long is taken for dead. With a heartbeat a second
/// and rooms looking once a second, its connections are released within about 8 seconds of its
/// last heartbeat.
pub(crate) const NODE_SILENCE: Duration = Duration::from_secs(6);
/// How often a node beats.
const BEAT_EVERY: Duration = Duration::from_secs(1);
/// What this node heard from Redis is current for this long; after that (its heartbeat late,
/// because Redis or this very process stalled) it judges nobody until it hears again.
const HEARD_FRESH: Duration = Duration::from_secs(2);

/// What this node knows of the others, as Redis last told it.
#[derive(Debug)]
struct Liveness {
    /// The nodes Redis had heard from within [`NODE_SILENCE`] (by Redis's own clock) at this
    /// node's latest heartbeat.
    alive: std::collections::HashSet<u64>,
    /// When that heartbeat was answered; none before the first.
    heard_at: Option<Instant>,
    /// Since when this node has heard from Redis at every beat without a gap. After a gap — this
    /// process frozen (SIGSTOP, a VM pause), Redis away or stalled — everyone's last heartbeat
    /// may be old for reasons that prove nothing, so verdicts wait a full window.
    unbroken_since: Instant,
}

impl Liveness {
    fn new(now: Instant) -> Self {
        Self {
            alive: std::collections::HashSet::new(),
            heard_at: None,
            unbroken_since: now,
        }
    }

    /// A heartbeat was answered at `now` with the nodes Redis heard from recently.
    fn heard(&mut self, alive: Vec<u64>, now: Instant) {
        let gap = self
            .heard_at
            .is_none_or(|last| now.duration_since(last) > HEARD_FRESH);
        if gap {
            self.unbroken_since = now;
        }
        self.heard_at = Some(now);
        self.alive = alive.into_iter().collect();
    }

    /// Whether `node` is dead as of `now`: only on current news, heard without a break for a
    /// whole silence window, and only if Redis has not heard from it within that window.
    fn judges_dead(&self, node: u64, now: Instant) -> bool {
        let Some(heard_at) = self.heard_at else {
            return false;
        };
        now.duration_since(heard_at) <= HEARD_FRESH
            && now.duration_since(self.unbroken_since) >= NODE_SILENCE
            && !self.alive.contains(&node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_missing_from_current_news_after_a_full_window_is_dead() {
        let t0 = Instant::now();
        let mut liveness = Liveness::new(t0);
        for s in 0..=6 {
            liveness.heard(vec![1], t0 + Duration::from_secs(s));
        }
        let now = t0 + Duration::from_millis(6_500);
        assert!(liveness.judges_dead(2, now));
        assert!(!liveness.judges_dead(1, now));
    }

    #[test]
    fn a_node_that_was_frozen_judges_nobody_until_it_has_heard_for_a_whole_window() {
        let t0 = Instant::now();
        let mut liveness = Liveness::new(t0);
        for s in 0..=7 {
            liveness.heard(vec![1], t0 + Duration::from_secs(s));
        }
        // Frozen for 8 s: on waking, its news is stale, so nobody is judged…
        let woke = t0 + Duration::from_secs(15);
        assert!(!liveness.judges_dead(2, woke));
        // …and when Redis answers (without the nodes it missed while Redis itself was away,
        // say), not before a whole window of fresh news has passed.
        liveness.heard(vec![1], woke);
        assert!(!liveness.judges_dead(2, woke));
        for s in 1..=6 {
            liveness.heard(vec![1], woke + Duration::from_secs(s));
        }
        assert!(liveness.judges_dead(2, woke + Duration::from_secs(6)));
    }

    #[test]
    fn nobody_is_judged_before_the_first_heartbeat_or_within_the_first_window() {
        let t0 = Instant::now();
        let mut liveness = Liveness::new(t0);
        assert!(!liveness.judges_dead(2, t0 + Duration::from_secs(10)));
        liveness.heard(vec![1], t0);
        assert!(!liveness.judges_dead(2, t0 + Duration::from_secs(1)));
    }
}
