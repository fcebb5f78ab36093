//! The load generator against real servers at a small scale: every profile runs end to end,
//! and what it reports holds up (nothing lost or duplicated, totals and seats right). These
//! check the generator and the servers' correctness under load, never their speed. The peers
//! must be installed (`./scripts/test` installs them): the Socket.IO peer's packages and
//! Debian's nats-server.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `bench <args> --json <file>` and returns the JSON it wrote.
fn bench(args: &[&str]) -> Value {
    let out = std::env::temp_dir().join(format!(
        "bench-smoke-{}-{}.json",
        std::process::id(),
        args.join("-").replace(['/', ' '], "_")
    ));
    let status = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(args)
        .arg("--json")
        .arg(&out)
        // The generator finds room-server next to itself, as cargo built both.
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .status()
        .expect("the bench binary runs");
    assert!(status.success(), "bench {args:?} failed: {status}");
    let text = std::fs::read_to_string(&out).expect("the JSON result");
    let _ = std::fs::remove_file(&out);
    serde_json::from_str(&text).expect("valid JSON")
}

fn n(v: &Value, path: &str) -> f64 {
    path.split('.')
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {path} in {v:#}"))
}

/// The checks every heavy lecture must pass, whatever the server.
fn assert_heavy_is_exact(r: &Value, learners: f64) {
    assert_eq!(n(r, "failed"), 0.0, "{r:#}");
    assert_eq!(n(r, "seated"), learners, "{r:#}");
    assert_eq!(n(r, "lost"), 0.0, "{r:#}");
    assert_eq!(n(r, "duplicated"), 0.0, "{r:#}");
    assert_eq!(n(r, "seat_mismatches"), 0.0, "{r:#}");
    assert_eq!(n(r, "reaction_totals_checked"), learners, "{r:#}");
    assert_eq!(
        n(r, "reaction_totals_correct"),
        learners,
        "every learner's bursts add up to the presses accepted: {r:#}"
    );
    let accepted = n(r, "chats_sent") - n(r, "chats_refused");
    assert!(accepted > 0.0, "{r:#}");
    assert_eq!(n(r, "latency.count"), accepted * learners, "{r:#}");
    assert!(
        n(r, "usage.cpu_secs") > 0.0,
        "the server's CPU is read: {r:#}"
    );
    assert!(n(r, "usage.rss_peak_bytes") > 1e6, "{r:#}");
}

#[test]
fn heavy_lecture_on_room_server() {
    let r = bench(&[
        "heavy-lecture",
        "--learners",
        "120",
        "--duration",
        "2",
        "--chat-rate",
        "10",
        "--reaction-rate",
        "50",
    ]);
    assert_eq!(r["server"], "ours");
    assert_heavy_is_exact(&r, 120.0);
}

#[test]
fn multi_node_over_redis() {
    let r = bench(&[
        "multi-node",
        "--nodes",
        "2",
        "--learners",
        "60",
        "--duration",
        "2",
        "--chat-rate",
        "10",
        "--reaction-rate",
        "30",
    ]);
    assert_eq!(r["nodes"], 2);
    assert_heavy_is_exact(&r, 60.0);
    assert!(
        n(&r, "cross_node_latency.count") > 0.0,
        "half the messages cross nodes: {r:#}"
    );
}

#[test]
fn join_storm_seats_everyone_where_they_sat() {
    let r = bench(&["join-storm", "--learners", "150", "--within", "1"]);
    assert_eq!(n(&r, "seated"), 150.0, "{r:#}");
    assert_eq!(n(&r, "failed"), 0.0, "{r:#}");
    assert_eq!(n(&r, "wrong_seats"), 0.0, "{r:#}");
    assert_eq!(n(&r, "time_to_seated.count"), 150.0, "{r:#}");
}

#[test]
fn idle_learners_are_counted_and_weighed() {
    let r = bench(&["idle", "--learners", "300", "--hold", "1"]);
    assert_eq!(n(&r, "connected"), 300.0, "{r:#}");
    assert!(
        n(&r, "rss_after_bytes") >= n(&r, "rss_before_bytes"),
        "{r:#}"
    );
}

#[test]
fn heavy_lecture_on_the_socketio_peer() {
    let peer: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/socketio");
    assert!(
        peer.join("node_modules/socket.io").is_dir(),
        "the Socket.IO peer is not installed: run `npm ci` in {}",
        peer.display()
    );
    let r = bench(&[
        "heavy-lecture",
        "--server",
        "socketio",
        "--socketio-dir",
        "peers/socketio",
        "--learners",
        "120",
        "--duration",
        "2",
        "--chat-rate",
        "10",
        "--reaction-rate",
        "50",
    ]);
    assert_eq!(r["server"], "socket-io");
    assert_heavy_is_exact(&r, 120.0);
}

/// Debian's nats-server, which `./scripts/test` installs. The generator finds it on the PATH or
/// in /usr/sbin, as here.
fn assert_nats_server_installed() {
    let on_path = Command::new("nats-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        on_path || Path::new("/usr/sbin/nats-server").is_file(),
        "nats-server is not installed: `./scripts/test` installs it (apt-get install nats-server)"
    );
}

#[test]
fn chat_fan_out_on_nats_server() {
    assert_nats_server_installed();
    let r = bench(&[
        "heavy-lecture",
        "--server",
        "nats",
        "--learners",
        "120",
        "--duration",
        "2",
        "--chat-rate",
        "10",
    ]);
    assert_eq!(r["server"], "nats");
    assert_eq!(n(&r, "reactions_sent"), 0.0, "NATS has no reactions: {r:#}");
    assert_eq!(n(&r, "moves_sent"), 0.0, "nor seats: {r:#}");
    assert_heavy_is_exact(&r, 120.0);
    assert!(
        n(&r, "chat_deliveries_per_sec") > 0.0 && n(&r, "rss_before_bytes") > 0.0,
        "{r:#}"
    );
}

#[test]
fn idle_websockets_on_nats_server() {
    assert_nats_server_installed();
    let r = bench(&[
        "idle",
        "--server",
        "nats",
        "--learners",
        "300",
        "--hold",
        "1",
    ]);
    assert_eq!(n(&r, "connected"), 300.0, "{r:#}");
    assert_eq!(n(&r, "failed"), 0.0, "{r:#}");
    assert!(
        n(&r, "rss_after_bytes") > n(&r, "rss_before_bytes"),
        "300 connections weigh something: {r:#}"
    );
}
