//! The `room-server` binary as an operator runs it: demo mode, the demo sign-in, SIGTERM,
//! `mint-ticket`, and a configuration mistake.

use e2e as common;

use common::{Client, WAIT, http, http_get, sqlite_url};
use protocol::ticket::TicketKey;
use protocol::{ClientMsg, CloseCode, Codec, Role, UnixMillis};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running `room-server` process, stopped by its id when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    /// Lines the server logged after "listening".
    log: mpsc::Receiver<String>,
    /// Lines the server logged before "listening" (while starting).
    starting: Vec<String>,
}

impl Server {
    fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(common::room_server_binary())
            .args(args)
            .envs(env.iter().copied())
            .env("ROOM_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().expect("piped");
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + WAIT;
        let mut starting = Vec::new();
        let addr = loop {
            let line = log
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("logs `listening`");
            if let Some(rest) = line.split("listening addr=").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .expect("an address")
                    .parse()
                    .expect("a socket address");
            }
            starting.push(line);
        };
        Self {
            child,
            addr,
            log,
            starting,
        }
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("waits") {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not exit in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn json_field(body: &str, field: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("no `{field}` in {body}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_node_lets_a_demo_learner_in_and_stops_cleanly_on_sigterm() {
    let database = sqlite_url();
    let mut server = Server::start(&[
        "--demo",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &database,
    ]);
    let (status, body) = http_get(server.addr, "/api/v1/demo/users").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("demo-taro"), "{body}");

    let (status, body) = http(
        server.addr,
        "POST",
        "/api/v1/demo/sign-in",
        &[],
        Some(r#"{"user":"demo-taro"}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let bearer = format!("Bearer {}", json_field(&body, "token"));
    let auth = [("Authorization", bearer.as_str())];
    let (status, body) = http(
        server.addr,
        "POST",
        "/api/v1/lectures/demo/ticket",
        &auth,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let ticket = json_field(&body, "ticket");
    let url = format!("ws://{}{}", server.addr, json_field(&body, "websocket"));
    let mut taro = Client::connect(&url, Codec::MsgPack)
        .await
        .expect("connects");
    taro.send(&ClientMsg::Hello {
        ticket,
        resume: None,
    })
    .await;
    let welcome = taro.welcome().await;
    assert_eq!(welcome.you.nickname.as_str(), "たろう");
    assert_eq!(welcome.you.role, Role::Learner);
    assert_eq!(
        welcome.phase,
        protocol::server::Phase::DoorsOpen,
        "the demo's doors are open now"
    );

    let (status, _) = http(
        server.addr,
        "POST",
        "/api/v1/demo/sign-in",
        &[],
        Some(r#"{"user":"nobody"}"#),
    )
    .await;
    assert_eq!(status, 404);

    // SIGTERM drains: the node is no longer ready, but the learner stays for the window
    // (5 s by default)…
    let (_, metrics) = http_get(server.addr, "/metrics").await;
    assert!(metrics.contains("\nroom_node_ready 1\n"), "{metrics}");
    server.terminate();
    let ready = async {
        loop {
            if http_get(server.addr, "/readyz").await.0 == 503 {
                break;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(WAIT, ready)
        .await
        .expect("not ready once draining");
    let (status, _) = http_get(server.addr, "/api/v1/demo/users").await;
    assert_eq!(status, 200, "still serving while draining");
    let (_, metrics) = http_get(server.addr, "/metrics").await;
    assert!(metrics.contains("\nroom_node_ready 0\n"), "{metrics}");
    // …and a second SIGTERM (an impatient operator's Ctrl-C) stops at once.
    server.terminate();
    assert_eq!(
        taro.close_code().await,
        Some(CloseCode::ServerShutdown.code())
    );
    let status = tokio::task::block_in_place(|| server.wait_exit());
    assert!(status.success(), "{status}");
    let log: Vec<String> = server.log.try_iter().collect();
    assert!(log.iter().any(|l| l.contains("stopped")), "{log:?}");
    assert!(
        !log.iter()
            .any(|l| l.contains("たろう") || l.contains("demo-taro")),
        "no personal data at info: {log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_serves_the_web_client_it_is_pointed_at_and_says_how_to_build_a_missing_one() {
    let dir = std::env::temp_dir().join(format!("room-server-web-root-{}", std::process::id()));
    let dist = dir.join("dist");
    std::fs::create_dir_all(&dist).expect("temp dir");
    std::fs::write(dist.join("index.html"), "<!doctype html>built").expect("writes");
    let dist = dist.to_str().expect("utf-8 path");
    let built = Server::start(&[
        "--demo",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &sqlite_url(),
        "--web-root",
        dist,
    ]);
    assert_eq!(
        http_get(built.addr, "/room/demo").await,
        (200, "<!doctype html>built".to_owned())
    );
    assert!(
        !built.starting.iter().any(|l| l.contains("web_root")),
        "{:?}",
        built.starting
    );

    let missing = dir.join("not-built");
    let missing = missing.to_str().expect("utf-8 path");
    let unbuilt = Server::start_with_env(
        &[
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &sqlite_url(),
        ],
        &[("ROOM_WEB_ROOT", missing)],
    );
    assert!(
        unbuilt
            .starting
            .iter()
            .any(|l| l.contains(missing) && l.contains("npm ci && npm run build")),
        "a warning names the folder and how to build it: {:?}",
        unbuilt.starting
    );
    let (status, body) = http_get(unbuilt.addr, "/").await;
    assert_eq!(status, 503, "{body}");
    let (status, body) = http_get(unbuilt.addr, "/api/v1/demo/users").await;
    assert_eq!(status, 200, "{body}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mint_ticket_prints_a_ticket_the_node_accepts() {
    let secret = "operator-secret-operator-secret-00";
    let output = Command::new(common::room_server_binary())
        .args([
            "mint-ticket",
            "--lecture",
            "rust-101",
            "--user",
            "u-1",
            "--nickname",
            "先生",
            "--role",
            "instructor",
        ])
        .env("ROOM_TICKET_SECRET", secret)
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let ticket = String::from_utf8(output.stdout).expect("utf-8");
    let key = TicketKey::new(secret.as_bytes().to_vec()).expect("long enough");
    let now = UnixMillis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as u64,
    );
    let claims = key.verify(ticket.trim(), now).expect("a valid ticket");
    assert_eq!(
        (claims.lec.as_str(), claims.nick.as_str(), claims.role),
        ("rust-101", "先生", Role::Instructor)
    );

    let refused = Command::new(common::room_server_binary())
        .args([
            "mint-ticket",
            "--lecture",
            "l",
            "--user",
            "u",
            "--nickname",
            "bad\u{7}name",
        ])
        .env("ROOM_TICKET_SECRET", secret)
        .output()
        .expect("runs");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("nickname"));
}

#[test]
fn a_mistyped_setting_stops_the_node_with_its_name() {
    let dir = std::env::temp_dir().join(format!("room-server-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("room.toml");
    std::fs::write(
        &path,
        "ticket_secret = \"0123456789abcdef0123456789abcdef\"\n[limits]\nmax_conections = 5\n",
    )
    .expect("writes");
    let output = Command::new(common::room_server_binary())
        .args(["--config", path.to_str().expect("utf-8 path")])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("max_conections"), "{stderr}");
    let no_secret = Command::new(common::room_server_binary())
        .env_remove("ROOM_TICKET_SECRET")
        .output()
        .expect("runs");
    assert!(!no_secret.status.success());
    assert!(String::from_utf8_lossy(&no_secret.stderr).contains("ticket secret"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs the binary with `args` until it exits (killed after [`WAIT`]); returns whether it
/// succeeded and what it logged.
fn run_to_exit(args: &[&str]) -> (bool, String) {
    let mut child = Command::new(common::room_server_binary())
        .args(args)
        .env("ROOM_LOG", "info")
        .env_remove("ROOM_TICKET_SECRET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the node did not stop by itself: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("piped"), &mut stderr)
        .expect("reads");
    (status.success(), stderr)
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("room-server-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_mode_refuses_the_portals_identity_and_a_real_nodes_records() {
    let dir = temp_dir("demo-refusals");
    let config = dir.join("room.toml");
    std::fs::write(
        &config,
        "[identity]\nalgorithm = \"HS256\"\nsecret = \"the-portal-and-the-rooms-share-this-secret\"\n\
         issuer = \"https://portal.example.jp\"\naudience = \"lecture-room\"\n",
    )
    .expect("writes");
    let listen = ["--listen", "127.0.0.1:0"];
    let config = config.to_str().expect("utf-8 path");
    let (ok, log) = tokio::task::block_in_place(|| {
        run_to_exit(&[&["--demo", "--config", config][..], &listen].concat())
    });
    assert!(!ok && log.contains("[identity]"), "{log}");
    assert!(
        !log.contains("share-this-secret"),
        "the secret is not echoed: {log}"
    );

    let shared = "postgres://room:hunter2-password@127.0.0.1:1/rooms";
    let (ok, log) = tokio::task::block_in_place(|| {
        run_to_exit(&[&["--demo", "--database-url", shared][..], &listen].concat())
    });
    assert!(!ok && log.contains("database_url"), "{log}");
    assert!(
        !log.contains("hunter2"),
        "the password is not echoed: {log}"
    );

    // A real node's SQLite file: it holds an account the portal sent.
    let real = sqlite_url();
    let store = room_server::gate::store::Store::connect(&real)
        .await
        .expect("connects");
    store
        .upsert_account(
            &room_server::gate::model::Account {
                id: "u-1001".into(),
                kind: room_server::gate::model::AccountKind::Individual,
                email: None,
                name: None,
            },
            UnixMillis(1),
        )
        .await
        .expect("writes");
    let (ok, log) = tokio::task::block_in_place(|| {
        run_to_exit(&[&["--demo", "--database-url", real.as_str()][..], &listen].concat())
    });
    assert!(!ok && log.contains("database_url"), "{log}");
    assert!(!log.contains("u-1001"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_malformed_config_file_is_told_by_line_without_its_secret() {
    let dir = temp_dir("config-secret");
    let path = dir.join("room.toml");
    let secret = "s3cr3t-0123456789abcdef0123456789abcdef";
    std::fs::write(
        &path,
        format!("listen = \"127.0.0.1:0\"\nticket_secret = \"{secret}\ndemo = false\n"),
    )
    .expect("writes");
    let (ok, log) = run_to_exit(&["--config", path.to_str().expect("utf-8 path")]);
    assert!(!ok, "{log}");
    assert!(log.contains("line 2"), "{log}");
    assert!(log.contains("ticket_secret"), "{log}");
    assert!(!log.contains("s3cr3t"), "the secret is not echoed: {log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_gate_requests_are_logged_without_tokens_keys_or_ids() {
    let database = sqlite_url();
    let key = "integration-key-integration-key-0123";
    let server = Server::start(&[
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &database,
        "--ticket-secret",
        "operator-secret-operator-secret-00",
        "--integration-api-key",
        key,
    ]);
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJrZW4tYWNjb3VudCJ9.c2lnbmF0dXJlLXZhbHVl";
    let bearer = format!("Bearer {token}");
    let (status, _) = http(
        server.addr,
        "GET",
        "/api/v1/me/lectures",
        &[("Authorization", &bearer)],
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = http(
        server.addr,
        "PUT",
        "/api/v1/integration/purchases/p-7731/allocations/ken-account",
        &[("X-Api-Key", "wrong-key-wrong-key-wrong-key-wrong")],
        None,
    )
    .await;
    assert_eq!(status, 403);
    let mut lines = Vec::new();
    let deadline = Instant::now() + WAIT;
    let seen = |lines: &[String], route: &str, level: &str, status: &str| {
        lines.iter().any(|l| {
            l.contains(level) && l.contains(route) && l.contains(status) && l.contains("127.0.0.1")
        })
    };
    while !(seen(&lines, "/api/v1/me/lectures", "INFO", "401")
        && seen(
            &lines,
            "/api/v1/integration/purchases/{purchase}/allocations/{individual}",
            "WARN",
            "403",
        ))
    {
        match server
            .log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(line) => lines.push(line),
            Err(_) => panic!("both refusals are logged: {lines:?}"),
        }
    }
    for secret in [
        token,
        "c2lnbmF0dXJl",
        "wrong-key",
        "ken-account",
        "p-7731",
        key,
    ] {
        assert!(
            !lines.iter().any(|l| l.contains(secret)),
            "{secret} is not logged: {lines:?}"
        );
    }
}
