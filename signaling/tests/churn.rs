//! Learners coming and going in cycles against one publisher: every one of them releases its
//! tasks and its place, and the process's resident memory is printed (not asserted) before
//! and after. Run with `--nocapture` to see the figures.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{Instructor, Learner, loopback_config, wait_until};
use signaling::Broadcast;

/// Cycles measured; `CHURN_CYCLES` overrides it to watch memory over a longer run.
const CYCLES: u64 = 10;
const PER_CYCLE: u64 = 10;

fn cycles() -> u64 {
    std::env::var("CHURN_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CYCLES)
}

/// The process's resident set size in KiB (Linux), if it can be read.
fn vm_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_learners_coming_and_going_release_everything() {
    let broadcast = Arc::new(Broadcast::new(loopback_config()));
    let instructor = Instructor::publish(&broadcast).await;
    // Two readers and the camera's keyframe requester.
    let baseline = broadcast.stats();
    assert_eq!(baseline.tasks, 3, "{baseline:?}");

    // One cycle first, so what the first connection ever allocates once (runtime pools,
    // lazily built tables) is in the baseline rather than counted as growth.
    let mut next_id = 1;
    let cycle = async |first_id: u64| {
        let mut learners = Vec::new();
        for id in first_id..first_id + PER_CYCLE {
            learners.push(Learner::join(&broadcast, id).await);
        }
        for learner in &mut learners {
            learner.connected().await;
        }
        wait_until("every learner of the cycle receives", || {
            learners
                .iter()
                .all(|l| l.counts().0 >= 5 && l.counts().1 >= 5)
        })
        .await;
        assert_eq!(broadcast.stats().subscribers, PER_CYCLE as usize);
        assert_eq!(broadcast.stats().tasks, 3 + 2 * PER_CYCLE as usize);
        for learner in &learners {
            broadcast.unsubscribe(learner.id).await.unwrap();
        }
        for learner in learners {
            let _ = learner.peer.close().await;
        }
        wait_until("the cycle's learners are released", || {
            let stats = broadcast.stats();
            stats.subscribers == 0 && stats.tasks == baseline.tasks
        })
        .await;
    };
    cycle(next_id).await;
    next_id += PER_CYCLE;
    let rss_before = vm_rss_kib();

    let cycles = cycles();
    let started = Instant::now();
    let mut rss_samples = Vec::new();
    for _ in 0..cycles {
        cycle(next_id).await;
        next_id += PER_CYCLE;
        rss_samples.push(vm_rss_kib().unwrap_or(0));
    }
    let elapsed = started.elapsed();
    let rss_after = vm_rss_kib();

    let stats = broadcast.stats();
    assert_eq!(stats.subscribers, 0);
    assert_eq!(stats.tasks, baseline.tasks);
    assert_eq!(stats.published_tracks, 2);
    eprintln!(
        "{} learners in {cycles} cycles of {PER_CYCLE} in {elapsed:?}: VmRSS before {} KiB, \
         after {} KiB (after each cycle: {rss_samples:?}); {stats:?}",
        cycles * PER_CYCLE,
        rss_before.map_or("?".to_owned(), |v| v.to_string()),
        rss_after.map_or("?".to_owned(), |v| v.to_string()),
    );

    instructor.close().await;
    broadcast.close().await;
}
