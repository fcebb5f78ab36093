//! What the web client needs from a node, end to end: its own files (with the security
//! headers, the right caching, its own routes).

mod common;

use common::{Answer, TestNode, http_answer};
use serde_json::Value;
use std::path::PathBuf;

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
