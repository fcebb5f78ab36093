//! What the web client needs from a node, end to end: its own files (with the security
//! headers, the right caching, its own routes), and the connection check its learners run
//! before a lecture (a ping socket and a download).

use e2e as common;

use common::{Answer, Client, Got, TestNode, WAIT, http_answer};
use futures_util::StreamExt;
use protocol::{ClientMsg, CloseCode, Codec, ErrorCode, ServerMsg};
use serde_json::Value;
use std::path::PathBuf;
use tokio_tungstenite::tungstenite::{self, Message};

const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; media-src 'self' blob:; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";
const INDEX: &str = "<!doctype html><title>lecture room</title><div id=app></div>";
const APP_JS: &str = "console.log('the web client');";
const SECRET: &str = "a file next to web_root that must never be served";

/// A fresh folder holding a built web client (`dist/index.html`, `dist/assets/app.js`) and,
/// beside `dist/`, a file no request may reach. Returns the folder and its `dist/`.
fn built_client() -> (PathBuf, PathBuf) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let base = std::env::temp_dir().join(format!("room-server-web-{}-{n}", std::process::id()));
    let dist = base.join("dist");
    std::fs::create_dir_all(dist.join("assets")).expect("a temp dir");
    std::fs::write(dist.join("index.html"), INDEX).expect("writes");
    std::fs::write(dist.join("assets/app.js"), APP_JS).expect("writes");
    std::fs::write(base.join("secret.txt"), SECRET).expect("writes");
    (base, dist)
}

async fn get(node: &TestNode, path: &str) -> Answer {
    http_answer(node.addr, "GET", path, &[], None).await
}

fn assert_security_headers(answer: &Answer, path: &str) {
    assert_eq!(
        answer.header("content-security-policy"),
        Some(CSP),
        "{path}"
    );
    assert_eq!(
        answer.header("x-content-type-options"),
        Some("nosniff"),
        "{path}"
    );
    assert_eq!(
        answer.header("referrer-policy"),
        Some("no-referrer"),
        "{path}"
    );
}

fn json_error(answer: &Answer) -> String {
    let body: Value = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|_| panic!("a JSON body: {}", answer.text()));
    body["error"].as_str().expect("an error code").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_client_is_served_with_its_headers_and_its_own_routes() {
    let (base, dist) = built_client();
    let node = TestNode::start_with(|c| c.web_root = dist.clone()).await;

    for path in ["/", "/index.html"] {
        let index = get(&node, path).await;
        assert_eq!(index.status, 200, "{path}");
        assert_eq!(index.text(), INDEX, "{path}");
        assert!(
            index
                .header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "{path}: {:?}",
            index.header("content-type")
        );
        assert_eq!(index.header("cache-control"), Some("no-cache"), "{path}");
        assert_security_headers(&index, path);
    }

    let app = get(&node, "/assets/app.js").await;
    assert_eq!((app.status, app.text().as_str()), (200, APP_JS));
    assert_eq!(
        app.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert!(
        app.header("content-type")
            .is_some_and(|t| t.contains("javascript")),
        "{:?}",
        app.header("content-type")
    );
    assert_security_headers(&app, "/assets/app.js");
    // A missing hashed file is not the page: a browser would keep that as a script for a year.
    let missing = get(&node, "/assets/app-0000.js").await;
    assert_eq!(missing.status, 404);
    assert_ne!(missing.text(), INDEX);
    assert_eq!(missing.header("cache-control"), Some("no-cache"));

    // The client's own routes get the page, which routes them.
    for path in [
        "/room/demo",
        "/lectures",
        "/check",
        "/sign-in",
        "/room/rust.101",
    ] {
        let page = get(&node, path).await;
        assert_eq!((page.status, page.text().as_str()), (200, INDEX), "{path}");
        assert_eq!(page.header("cache-control"), Some("no-cache"), "{path}");
        assert_security_headers(&page, path);
    }

    // The node's own paths stay the node's: an unknown one is a JSON 404, not the page.
    for (method, path) in [
        ("GET", "/api/x"),
        ("GET", "/api/v1/no-such-thing"),
        ("POST", "/api/v1/no-such-thing"),
        ("GET", "/api"),
        ("GET", "/ws/no-such-socket"),
        ("GET", "/healthz/more"),
    ] {
        let answer = http_answer(node.addr, method, path, &[], None).await;
        assert_eq!(answer.status, 404, "{method} {path}: {}", answer.text());
        assert_eq!(json_error(&answer), "not_found", "{method} {path}");
    }
    let health = get(&node, "/healthz").await;
    assert_eq!((health.status, health.text().as_str()), (200, "ok"));

    // Nothing outside web_root, however the way out is spelt.
    for path in [
        "/../secret.txt",
        "/assets/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/assets/..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "/room/%2e%2e/%2e%2e/secret.txt",
    ] {
        let answer = get(&node, path).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.text());
        assert!(!answer.text().contains(SECRET), "{path}");
        assert_security_headers(&answer, path);
    }
    let _ = std::fs::remove_dir_all(base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_map_left_in_web_root_is_never_served() {
    let (base, dist) = built_client();
    // A map holds the client's source and the paths of the machine that built it.
    let map = r#"{"version":3,"sources":["/home/builder/live-lecture/web-client/src/app.tsx"]}"#;
    std::fs::write(dist.join("assets/app.js.map"), map).expect("writes");
    std::fs::write(dist.join("index.js.map"), map).expect("writes");
    let node = TestNode::start_with(|c| c.web_root = dist.clone()).await;
    for path in [
        "/assets/app.js.map",
        "/assets/app.js%2Emap",
        "/assets/app.js%2emap",
        "/index.js.map",
        "/assets/../index.js.map",
    ] {
        let answer = get(&node, path).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.text());
        assert!(!answer.text().contains("/home/builder"), "{path}");
        assert_security_headers(&answer, path);
    }
    // The script itself is served, and a page whose lecture id ends in `.map` is the page.
    assert_eq!(get(&node, "/assets/app.js").await.status, 200);
    let page = get(&node, "/room/geo.map").await;
    assert_eq!((page.status, page.text().as_str()), (200, INDEX));
    let _ = std::fs::remove_dir_all(base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compressed_copies_the_build_writes_are_served_to_browsers_that_accept_them() {
    let (base, dist) = built_client();
    // The build writes these beside each file; their bytes are whatever the compressor made.
    let gzip_js: &[u8] = b"\x1f\x8b gzip of app.js";
    let br_js: &[u8] = b"brotli of app.js";
    let gzip_index: &[u8] = b"\x1f\x8b gzip of index.html";
    std::fs::write(dist.join("assets/app.js.gz"), gzip_js).expect("writes");
    std::fs::write(dist.join("assets/app.js.br"), br_js).expect("writes");
    std::fs::write(dist.join("index.html.gz"), gzip_index).expect("writes");
    let node = TestNode::start_with(|c| c.web_root = dist.clone()).await;
    let with = |path: &'static str, encodings: &'static str| {
        let addr = node.addr;
        async move { http_answer(addr, "GET", path, &[("accept-encoding", encodings)], None).await }
    };

    let gzip = with("/assets/app.js", "gzip").await;
    assert_eq!(gzip.status, 200);
    assert_eq!(gzip.header("content-encoding"), Some("gzip"));
    assert_eq!(gzip.body.as_slice(), gzip_js);
    assert!(
        gzip.header("content-type")
            .is_some_and(|t| t.contains("javascript")),
        "the script's own type, not gzip's: {:?}",
        gzip.header("content-type")
    );
    assert_eq!(
        gzip.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(gzip.header("vary"), Some("accept-encoding"));
    assert_security_headers(&gzip, "/assets/app.js (gzip)");

    let brotli = with("/assets/app.js", "gzip, deflate, br").await;
    assert_eq!(brotli.header("content-encoding"), Some("br"));
    assert_eq!(brotli.body.as_slice(), br_js);

    // The page, at its own path and at a client route, compressed too.
    for path in ["/", "/room/demo"] {
        let page = with(path, "gzip").await;
        assert_eq!(page.status, 200, "{path}");
        assert_eq!(page.header("content-encoding"), Some("gzip"), "{path}");
        assert_eq!(page.body.as_slice(), gzip_index, "{path}");
        assert!(
            page.header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "{path}"
        );
    }

    // A browser that asks for nothing compressed gets the file itself.
    let plain = get(&node, "/assets/app.js").await;
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.text(), APP_JS);
    // And a source map is not there to be had, compressed or not.
    assert_eq!(with("/assets/app.js.map", "gzip").await.status, 404);
    let _ = std::fs::remove_dir_all(base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_built_web_client_the_pages_say_so_and_the_apis_work() {
    let (base, _) = built_client();
    let nowhere = base.join("not-built");
    let node = TestNode::start_with(|c| {
        c.demo = true;
        c.web_root = nowhere.clone();
    })
    .await;
    for path in ["/", "/room/demo", "/assets/app.js"] {
        let page = get(&node, path).await;
        assert_eq!(page.status, 503, "{path}");
        assert!(
            page.text().contains("npm ci && npm run build"),
            "{path}: {}",
            page.text()
        );
        assert_security_headers(&page, path);
    }
    let users = get(&node, "/api/v1/demo/users").await;
    assert_eq!(users.status, 200, "{}", users.text());
    let body: Value = serde_json::from_slice(&users.body).expect("JSON");
    assert!(body["users"].as_array().is_some_and(|u| !u.is_empty()));
    let _ = std::fs::remove_dir_all(base);
}

fn check_url(node: &TestNode) -> String {
    format!("ws://{}/ws/check", node.addr)
}

/// Opens a check socket and reads the `media_config` it starts with.
async fn open_check(node: &TestNode, codec: Codec) -> Client {
    let mut check = Client::connect(&check_url(node), codec)
        .await
        .expect("connects without a ticket");
    assert!(
        matches!(check.recv().await, ServerMsg::MediaConfig { .. }),
        "{codec:?}: the check starts with the media settings"
    );
    check
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_socket_answers_pings_in_either_encoding_and_refuses_the_rest() {
    let node = TestNode::start().await;
    for codec in Codec::ALL {
        let mut check = open_check(&node, codec).await;
        let before = common::now();
        check.send(&ClientMsg::Ping { t: 42 }).await;
        match check.recv().await {
            ServerMsg::Pong { t, server_time } => {
                assert_eq!(t, 42, "{codec:?}");
                assert!(server_time >= before, "{codec:?}");
            }
            other => panic!("{codec:?}: expected a pong, got {other:?}"),
        }
        // Anything else is refused, and the check goes on.
        check
            .send(&ClientMsg::Hello {
                ticket: "none".into(),
                resume: None,
            })
            .await;
        match check.recv().await {
            ServerMsg::Error { code, command, .. } => {
                assert_eq!(code, ErrorCode::NotAllowed, "{codec:?}");
                assert_eq!(command.as_deref(), Some("hello"), "{codec:?}");
            }
            other => panic!("{codec:?}: expected an error, got {other:?}"),
        }
        check.send(&ClientMsg::Ping { t: 43 }).await;
        assert!(
            matches!(check.recv().await, ServerMsg::Pong { t: 43, .. }),
            "{codec:?}: still open"
        );
    }
    assert_eq!(
        node.node.metrics.connections_active.get(),
        0,
        "checks are not room connections"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_socket_refuses_what_the_room_socket_refuses() {
    let node = TestNode::start().await;
    let refused = tokio_tungstenite::connect_async(check_url(&node))
        .await
        .expect_err("no subprotocol offered");
    match refused {
        tungstenite::Error::Http(response) => {
            assert_eq!(response.status().as_u16(), 400);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                .into_owned();
            assert!(body.contains("lecture-room.v2.msgpack"), "{body}");
            assert!(body.contains("unsupported_subprotocol"), "{body}");
        }
        other => panic!("expected an HTTP refusal, got {other}"),
    }

    let mut garbage = Client::connect(&check_url(&node), Codec::MsgPack)
        .await
        .expect("connects");
    garbage
        .send_raw(Message::Binary(vec![0xc1, 0xff, 0x00].into()))
        .await;
    assert_eq!(
        garbage.close_code().await,
        Some(CloseCode::ProtocolViolation.code())
    );
    let mut wrong_type = Client::connect(&check_url(&node), Codec::MsgPack)
        .await
        .expect("connects");
    wrong_type
        .send_raw(Message::Text(r#"{"type":"ping","t":1}"#.into()))
        .await;
    assert_eq!(
        wrong_type.close_code().await,
        Some(CloseCode::ProtocolViolation.code())
    );
    let mut too_big = Client::connect(&check_url(&node), Codec::Json)
        .await
        .expect("connects");
    too_big
        .send_raw(Message::Text("x".repeat(64 * 1024).into()))
        .await;
    assert_eq!(
        too_big.close_code().await,
        Some(CloseCode::MessageTooBig.code())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_socket_closes_normally_after_a_hundred_messages() {
    let node = TestNode::start().await;
    let mut check = open_check(&node, Codec::Json).await;
    for t in 0..100 {
        check.send(&ClientMsg::Ping { t }).await;
        match check.next().await {
            Got::Msg(ServerMsg::Pong { t: echoed, .. }) => assert_eq!(echoed, t),
            other => panic!("ping {t}: expected a pong, got {other:?}"),
        }
    }
    // Nothing else first: the close comes right after the hundredth pong.
    let close = match tokio::time::timeout(WAIT, check.ws.next()).await {
        Ok(Some(Ok(Message::Close(Some(frame))))) => frame,
        other => panic!("expected a close frame, got {other:?}"),
    };
    assert_eq!(u16::from(close.code), 1000);
    assert_eq!(close.reason.as_str(), "check over: 100 messages answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_download_sends_random_bytes_of_the_asked_size() {
    let node = TestNode::start().await;
    let default = get(&node, "/api/v1/check/download").await;
    assert_eq!(default.status, 200, "{}", default.text());
    assert_eq!(default.body.len(), 1024 * 1024);
    assert_eq!(
        default.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(default.header("cache-control"), Some("no-store"));
    let mut seen = [false; 256];
    for byte in &default.body {
        seen[usize::from(*byte)] = true;
    }
    assert!(seen.iter().all(|s| *s), "random bytes use every value");

    for n in [1, 12_345, 8 * 1024 * 1024] {
        let answer = get(&node, &format!("/api/v1/check/download?bytes={n}")).await;
        assert_eq!((answer.status, answer.body.len()), (200, n));
    }
    for wrong in [
        "0",
        "8388609",
        "-1",
        "abc",
        "",
        "1e3",
        "99999999999999999999999",
    ] {
        let answer = get(&node, &format!("/api/v1/check/download?bytes={wrong}")).await;
        assert_eq!(answer.status, 400, "bytes={wrong}: {}", answer.text());
        assert_eq!(json_error(&answer), "bad_request", "bytes={wrong}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_downloads_are_limited_per_address() {
    let node = TestNode::start_with(|c| c.limits.downloads_per_min = 3).await;
    for _ in 0..3 {
        let answer = get(&node, "/api/v1/check/download?bytes=10").await;
        assert_eq!(answer.status, 200);
    }
    let limited = get(&node, "/api/v1/check/download?bytes=10").await;
    assert_eq!(limited.status, 429);
    assert_eq!(json_error(&limited), "rate_limited");
}
