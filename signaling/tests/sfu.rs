//! The broadcast with real webrtc-crate peers on loopback: an instructor sending synthetic VP8
//! and Opus RTP, learners receiving it.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Instructor, Learner, loopback_config, wait_until};
use signaling::{Broadcast, SignalingConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_learner_receives_every_packet_the_instructor_sends() {
    let broadcast = Arc::new(Broadcast::new(loopback_config()));
    let instructor = Instructor::publish(&broadcast).await;
    let mut learners = Vec::new();
    for id in 1..=3 {
        learners.push(Learner::join(&broadcast, id).await);
    }
    for learner in &mut learners {
        learner.connected().await;
    }
    wait_until("every learner has 100 video and 100 audio packets", || {
        learners.iter().all(|l| {
            let (video, audio, _) = l.counts();
            video >= 100 && audio >= 100
        })
    })
    .await;

    for learner in &learners {
        learner.received_intact();
    }
    let stats = broadcast.stats();
    assert_eq!(stats.subscribers, 3);
    assert_eq!(stats.published_tracks, 2);
    assert_eq!(stats.dropped_packets, 0);
    assert!(stats.forwarded_packets >= 600, "{stats:?}");

    instructor.close().await;
    broadcast.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learners_waiting_before_the_instructor_publishes_receive_everything() {
    // The waiting room: learners are in before the instructor starts sending.
    let broadcast = Arc::new(Broadcast::new(loopback_config()));
    let mut learners = Vec::new();
    for id in 1..=3 {
        learners.push(Learner::join(&broadcast, id).await);
    }
    for learner in &mut learners {
        learner.connected().await;
    }
    assert_eq!(broadcast.stats().published_tracks, 0);

    let instructor = Instructor::publish(&broadcast).await;
    wait_until(
        "every waiting learner has 100 video and 100 audio packets",
        || {
            learners.iter().all(|l| {
                let (video, audio, _) = l.counts();
                video >= 100 && audio >= 100
            })
        },
    )
    .await;
    for learner in &learners {
        learner.received_intact();
    }
    assert_eq!(broadcast.stats().dropped_packets, 0);

    instructor.close().await;
    broadcast.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_joining_mid_lecture_gets_the_instructor_asked_for_a_keyframe() {
    let broadcast = Arc::new(Broadcast::new(loopback_config()));
    let instructor = Instructor::publish(&broadcast).await;
    // Mid-stream: the instructor has been sending for a while, nobody asked for a keyframe.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(instructor.camera_requests().is_empty());

    let mut first = Learner::join(&broadcast, 1).await;
    first.connected().await;
    wait_until("the instructor sees a keyframe request", || {
        !instructor.camera_requests().is_empty()
    })
    .await;

    // Past the throttle window, the next learner gets its own keyframe request.
    let last = *instructor.camera_requests().last().unwrap();
    tokio::time::sleep_until((last + Duration::from_millis(1100)).into()).await;
    let before = instructor.camera_requests().len();
    let mut second = Learner::join(&broadcast, 2).await;
    second.connected().await;
    wait_until("a second keyframe request", || {
        instructor.camera_requests().len() > before
    })
    .await;
    assert!(broadcast.stats().keyframe_requests >= 2);

    instructor.close().await;
    broadcast.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learners_keyframe_requests_reach_the_instructor_throttled() {
    let broadcast = Arc::new(Broadcast::new(loopback_config()));
    let instructor = Instructor::publish(&broadcast).await;
    let mut learners = Vec::new();
    for id in 1..=3 {
        learners.push(Learner::join(&broadcast, id).await);
    }
    for learner in &mut learners {
        learner.connected().await;
    }
    wait_until("everyone receives the camera", || {
        learners.iter().all(|l| l.counts().0 >= 20)
    })
    .await;
    // Past the throttle window of the joins' own request.
    let last = *instructor.camera_requests().last().unwrap();
    tokio::time::sleep_until((last + Duration::from_millis(1100)).into()).await;
    let before = instructor.camera_requests().len();

    // Every learner's decoder loses the picture at once, some ask twice.
    for learner in learners.iter().chain(&learners) {
        learner.request_camera_keyframe().await;
    }
    wait_until("the learners' request reaches the instructor", || {
        instructor.camera_requests().len() > before
    })
    .await;
    let first = instructor.camera_requests()[before];
    // Anything folded into the throttle window goes out by its end.
    tokio::time::sleep_until((first + Duration::from_millis(1200)).into()).await;
    let requests = instructor.camera_requests();
    assert!(
        requests.len() - before <= 2,
        "{} requests for 6 learner requests",
        requests.len() - before
    );
    for pair in requests.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(950),
            "two requests {gap:?} apart"
        );
    }

    instructor.close().await;
    broadcast.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_joining_at_once_costs_at_most_one_keyframe_request_per_second() {
    let broadcast = Arc::new(Broadcast::new(loopback_config()));
    let instructor = Instructor::publish(&broadcast).await;
    let started = Instant::now();
    let mut crowd = Vec::new();
    for id in 1..=6 {
        crowd.push(Learner::join(&broadcast, id).await);
    }
    for learner in &mut crowd {
        learner.connected().await;
    }
    wait_until("everyone receives video", || {
        crowd.iter().all(|l| l.counts().0 >= 20)
    })
    .await;
    // Let any request folded into the throttle window go out before counting.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let elapsed = started.elapsed();

    let requests = instructor.camera_requests();
    assert!(!requests.is_empty(), "nobody asked for a keyframe");
    for pair in requests.windows(2) {
        let gap = pair[1] - pair[0];
        // 1 s on the node; loopback delivery may bunch two by a few milliseconds.
        assert!(
            gap >= Duration::from_millis(950),
            "two requests {gap:?} apart"
        );
    }
    let allowed = elapsed.as_secs() as usize + 1;
    assert!(
        requests.len() <= allowed,
        "{} requests in {elapsed:?} for {} joins",
        requests.len(),
        crowd.len()
    );
    assert_eq!(broadcast.stats().keyframe_requests as usize, requests.len());

    instructor.close().await;
    broadcast.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_who_leaves_releases_everything() {
    // Short timeouts: a vanished browser is noticed within seconds.
    let broadcast = Arc::new(Broadcast::new(SignalingConfig {
        ice_disconnected_timeout: Duration::from_secs(2),
        ice_failed_timeout: Duration::from_secs(2),
        ..loopback_config()
    }));
    let instructor = Instructor::publish(&broadcast).await;
    let mut learners = Vec::new();
    for id in 1..=3 {
        learners.push(Learner::join(&broadcast, id).await);
    }
    for learner in &mut learners {
        learner.connected().await;
    }
    wait_until("everyone receives", || {
        learners
            .iter()
            .all(|l| l.counts().0 >= 20 && l.counts().1 >= 20)
    })
    .await;
    // Two readers, one keyframe requester (video), two writers per learner.
    assert_eq!(broadcast.stats().tasks, 3 + 2 * 3);

    let leaving = learners.pop().unwrap();
    broadcast.unsubscribe(leaving.id).await.unwrap();
    wait_until("the leaver's writers are gone", || {
        broadcast.stats().tasks == 3 + 2 * 2
    })
    .await;
    assert_eq!(broadcast.stats().subscribers, 2);
    assert!(broadcast.unsubscribe(leaving.id).await.is_err());

    // The others keep receiving.
    let before: Vec<_> = learners.iter().map(|l| l.counts().0).collect();
    wait_until("the others still receive", || {
        learners
            .iter()
            .zip(&before)
            .all(|(l, before)| l.counts().0 >= before + 20)
    })
    .await;

    // A learner whose browser goes away is released by the node on its own.
    let gone = learners.pop().unwrap();
    gone.peer.close().await.unwrap();
    wait_until("the closed learner is released", || {
        broadcast.stats().subscribers == 1
    })
    .await;

    instructor.close().await;
    wait_until("the instructor's tracks are retired", || {
        broadcast.stats().published_tracks == 0
    })
    .await;
    broadcast.close().await;
    wait_until("every task has ended", || broadcast.stats().tasks == 0).await;
    assert_eq!(broadcast.stats().subscribers, 0);
}

async fn screen_share_on_and_off(check_camera_after: bool) {
    let broadcast = Arc::new(Broadcast::new(loopback_config()));
    let mut instructor = Instructor::publish(&broadcast).await;
    let mut learners = Vec::new();
    for id in 1..=2 {
        learners.push(Learner::join(&broadcast, id).await);
    }
    for learner in &mut learners {
        learner.connected().await;
    }

    instructor.share_screen(&broadcast).await;
    wait_until("every learner receives the screen share", || {
        learners.iter().all(|l| l.counts().2 >= 50)
    })
    .await;
    for learner in &learners {
        assert!(learner.peer.received().screen.contiguous());
    }
    assert_eq!(broadcast.stats().published_tracks, 3);

    instructor.stop_screen(&broadcast).await;
    wait_until("the screen track is retired", || {
        broadcast.stats().published_tracks == 2
    })
    .await;
    if check_camera_after {
        let before: Vec<_> = learners.iter().map(|l| l.counts().0).collect();
        wait_until("the camera still flows", || {
            learners
                .iter()
                .zip(&before)
                .all(|(l, before)| l.counts().0 >= before + 20)
        })
        .await;
    }

    instructor.close().await;
    broadcast.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_screen_share_reaches_learners_and_is_retired_when_stopped() {
    screen_share_on_and_off(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_camera_keeps_flowing_after_the_screen_share_stops() {
    screen_share_on_and_off(true).await;
}
