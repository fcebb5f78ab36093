//! The archive room's API on the `room-server` binary: who may watch a finished lecture
//! (entitlement as for the live room, with its refusal codes), the archive's states as the
//! portal moves its dates or withdraws it, and the signed media URLs: byte ranges, tampering,
//! expiry, and a right taken away after the URL was given.

use e2e as common;

use common::{Answer, NodeProcess, http_answer};
use protocol::UnixMillis;
use room_server::gate::identity::{DEFAULT_MAX_TOKEN_LIFETIME_SECS, IdentitySettings, TokenIssuer};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const API_KEY: &str = "archive-room-integration-key-0123456789";
const IDENTITY_SECRET: &str = "archive-room-portal-identity-secret-0123";
const MIN: u64 = 60_000;
const HOUR: u64 = 60 * MIN;
/// The camera file's length: bytes `i % 251`, so any range's content is known.
const CAMERA_LEN: usize = 300_000;

fn identity() -> IdentitySettings {
    IdentitySettings {
        algorithm: "HS256".into(),
        secret: Some(IDENTITY_SECRET.into()),
        public_key_pem: None,
        issuer: "https://portal.example.jp".into(),
        audience: "lecture-room".into(),
        max_token_lifetime_secs: DEFAULT_MAX_TOKEN_LIFETIME_SECS,
    }
}

struct Portal {
    node: NodeProcess,
    issuer: TokenIssuer,
}

impl Portal {
    async fn portal(&self, method: &str, path: &str, body: Value) -> Answer {
        let answer = http_answer(
            self.node.addr,
            method,
            path,
            &[("x-api-key", API_KEY), ("content-type", "application/json")],
            Some(&body.to_string()),
        )
        .await;
        assert!(
            (200..300).contains(&answer.status),
            "{method} {path}: {} {}",
            answer.status,
            answer.text()
        );
        answer
    }

    async fn as_person(&self, user: &str, path: &str) -> Answer {
        let token = self.issuer.issue(user, common::now().0 / 1000, 3600);
        let bearer = format!("Bearer {token}");
        http_answer(
            self.node.addr,
            "GET",
            path,
            &[("authorization", &bearer)],
            None,
        )
        .await
    }

    async fn archive(&self, user: &str) -> (u16, Value) {
        let a = self.as_person(user, "/api/archive/L1").await;
        (
            a.status,
            serde_json::from_slice(&a.body).unwrap_or(Value::Null),
        )
    }

    async fn media(&self, url: &str, range: Option<&str>) -> Answer {
        let headers: Vec<(&str, &str)> = range.iter().map(|r| ("range", *r)).collect();
        http_answer(self.node.addr, "GET", url, &headers, None).await
    }

    async fn person(&self, id: &str, kind: &str) {
        let email = (kind != "individual").then(|| format!("admin@{id}.example.jp"));
        self.portal(
            "PUT",
            &format!("/api/v1/integration/accounts/{id}"),
            json!({"kind": kind, "email": email}),
        )
        .await;
    }

    async fn purchase(&self, id: &str, buyer: &str, method: &str, status: &str) {
        let body = json!({"buyer": buyer, "lecture": "L1", "quantity": 1, "modality": "online",
                          "payment_method": method, "status": status});
        self.portal("PUT", &format!("/api/v1/integration/purchases/{id}"), body)
            .await;
    }

    async fn set_archive(&self, body: Value) -> Value {
        let a = self
            .portal("PUT", "/api/v1/integration/lectures/L1/archive", body)
            .await;
        serde_json::from_slice(&a.body).expect("JSON")
    }
}

fn code(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

/// An archive as the origin node leaves it in the local store.
fn write_archive(dir: &std::path::Path, started_at: UnixMillis) {
    let lecture = dir.join("L1");
    std::fs::create_dir_all(&lecture).expect("a folder");
    let camera: Vec<u8> = (0..CAMERA_LEN).map(|i| (i % 251) as u8).collect();
    std::fs::write(lecture.join("camera.webm"), camera).expect("written");
    let timeline = json!({"format": "live-lecture-timeline/1", "bucket_ms": 5000,
        "chat": [{"t": 1000, "offset": 1, "nickname": "Aki", "role": "learner", "text": "hello",
                  "question": false, "answered": false, "call_answer": false}],
        "calls": [], "announcements": [], "reactions": []});
    std::fs::write(lecture.join("timeline.json"), timeline.to_string()).expect("written");
    let manifest = json!({"format": "live-lecture-archive/1", "lecture": "L1",
        "started_at_ms": started_at.0, "duration_ms": 60_000,
        "tracks": [{"kind": "camera", "name": "camera.webm", "start_ms": 0, "duration_ms": 60_000}]});
    std::fs::write(lecture.join("manifest.json"), manifest.to_string()).expect("written");
}

fn start() -> (Portal, tempdir::Dir) {
    let dir = tempdir::Dir::new("archive-room");
    let archive = dir.path().join("archive");
    let now = common::now();
    write_archive(&archive, now.minus_ms(3 * HOUR));
    let config = format!(
        r#"ticket_secret = "archive-room-ticket-secret-0123456789abcdef"
database_url = "{db}"
integration_api_key = "{API_KEY}"

[archive]
dir = "{archive}"
media_url_ttl_secs = 10

[identity]
algorithm = "HS256"
secret = "{IDENTITY_SECRET}"
issuer = "https://portal.example.jp"
audience = "lecture-room"
"#,
        db = common::sqlite_url(),
        archive = archive.display(),
    );
    let path = dir.path().join("room.toml");
    std::fs::write(&path, config).expect("written");
    let node = NodeProcess::start(&["--config", path.to_str().expect("utf-8")]);
    let issuer = TokenIssuer::new(&identity()).expect("HS256");
    (Portal { node, issuer }, dir)
}

mod tempdir {
    /// A folder under the system's temp dir, removed when dropped.
    pub(super) struct Dir(std::path::PathBuf);
    impl Dir {
        pub(super) fn new(name: &str) -> Self {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("{name}-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&path).expect("a temp dir");
            Self(path)
        }
        pub(super) fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[tokio::test]
async fn the_archive_is_for_the_entitled_through_signed_ranged_urls() {
    let (p, _dir) = start();
    let now = common::now();
    p.portal(
        "PUT",
        "/api/v1/integration/lectures/L1",
        json!({"title": "講座 L1", "starts_at": now.minus_ms(3 * HOUR).0,
               "ends_at": now.minus_ms(2 * HOUR).0, "rows": 5, "cols": 5,
               "archive_available_at": now.plus_ms(24 * HOUR).0,
               "staff": [{"account": "sensei", "role": "instructor"}]}),
    )
    .await;
    for (id, kind) in [
        ("taro", "individual"),
        ("ken", "individual"),
        ("mika", "individual"),
        ("yui", "individual"),
        ("sora", "individual"),
        ("sensei", "individual"),
        ("acme", "corporate"),
    ] {
        p.person(id, kind).await;
    }
    p.purchase("p-taro", "taro", "card", "paid").await;
    p.purchase("p-ken", "ken", "konbini", "awaiting_payment")
        .await;
    p.purchase("p-mika", "mika", "card", "refunded").await;
    p.purchase("p-acme", "acme", "card", "paid").await;
    p.portal(
        "PUT",
        "/api/v1/integration/links",
        json!({"individual": "yui", "company_email": "admin@acme.example.jp"}),
    )
    .await;

    // Before the portal's date: being prepared, with the date; no media.
    let (status, body) = p.archive("taro").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "preparing");
    assert_eq!(body["available_at"], now.plus_ms(24 * HOUR).0);
    assert!(body.get("media").is_none(), "{body}");
    let mine = p.as_person("taro", "/api/v1/me/archives").await;
    let mine: Value = serde_json::from_slice(&mine.body).expect("JSON");
    assert_eq!(mine["archives"][0]["state"], "preparing", "{mine}");
    // The instructor sees it ready as soon as it is made.
    let (_, staff) = p.archive("sensei").await;
    assert_eq!(staff["state"], "ready", "{staff}");
    assert_eq!(staff["role"], "instructor");
    let theirs = p.as_person("sensei", "/api/v1/me/archives").await;
    let theirs: Value = serde_json::from_slice(&theirs.body).expect("JSON");
    assert_eq!(theirs["archives"][0]["state"], "ready", "{theirs}");

    // The refused hear why, with the live room's codes, in both languages.
    for (who, want) in [
        ("ken", "payment_pending"),
        ("mika", "purchase_cancelled"),
        ("yui", "seat_not_allocated"),
        ("sora", "not_purchased"),
        ("acme", "corporate_account_cannot_enter"),
    ] {
        let (status, body) = p.archive(who).await;
        assert_eq!((status, code(&body)), (403, want), "{who}: {body}");
        assert!(body["message_ja"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let anonymous = http_answer(p.node.addr, "GET", "/api/archive/L1", &[], None).await;
    assert_eq!(anonymous.status, 401);

    // The portal moves the date to the past: ready, with the manifest, timeline and URLs.
    let dates = p
        .set_archive(json!({"available_at": now.minus_ms(MIN).0}))
        .await;
    assert_eq!(dates["available_at"], now.minus_ms(MIN).0);
    let (_, body) = p.archive("taro").await;
    assert_eq!(body["state"], "ready", "{body}");
    assert_eq!(body["manifest"]["tracks"][0]["name"], "camera.webm");
    assert_eq!(body["timeline"]["chat"][0]["text"], "hello");
    let url = body["media"]["camera.webm"]
        .as_str()
        .expect("a signed URL")
        .to_owned();
    // It carries the account sealed: nobody who sees the URL reads whose it is.
    assert!(!url.contains("taro"), "{url}");

    // The whole file, then ranges.
    let camera: Vec<u8> = (0..CAMERA_LEN).map(|i| (i % 251) as u8).collect();
    let whole = p.media(&url, None).await;
    assert_eq!(whole.status, 200);
    assert_eq!(whole.header("content-type"), Some("video/webm"));
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert_eq!(whole.body, camera);
    let part = p.media(&url, Some("bytes=1000-1999")).await;
    assert_eq!(part.status, 206);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 1000-1999/{CAMERA_LEN}").as_str())
    );
    assert_eq!(part.body, camera[1000..2000]);
    let tail = p.media(&url, Some("bytes=-10")).await;
    assert_eq!(tail.status, 206);
    assert_eq!(tail.body, camera[CAMERA_LEN - 10..]);
    let open = p.media(&url, Some("bytes=299990-")).await;
    assert_eq!((open.status, open.body.len()), (206, 10));
    let past = p.media(&url, Some("bytes=400000-")).await;
    assert_eq!(past.status, 416);
    assert_eq!(
        past.header("content-range"),
        Some(format!("bytes */{CAMERA_LEN}").as_str())
    );

    // Tampered URLs are refused: another signature, person, file or expiry; or none at all.
    let mut bad_sig = url.clone();
    let last = bad_sig.pop().expect("a signature");
    bad_sig.push(if last == 'A' { 'B' } else { 'A' });
    // Taro's URL with the instructor's sealed account in it, and with the account in clear.
    let u_of = |url: &str| {
        url.split("u=")
            .nth(1)
            .and_then(|s| s.split('&').next())
            .expect("an account")
            .to_owned()
    };
    let senseis = staff["media"]["camera.webm"]
        .as_str()
        .expect("a signed URL");
    let as_sensei = url.replace(&u_of(&url), &u_of(senseis));
    let as_ken = url.replace(&u_of(&url), "ken");
    let other_file = url.replace("camera%2Ewebm", "screen%2D1%2Ewebm");
    let exp: u64 = url
        .split("exp=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .and_then(|s| s.parse().ok())
        .expect("an expiry");
    let longer = url.replace(&format!("exp={exp}"), &format!("exp={}", exp + 3600));
    let unsigned = url.split('?').next().expect("a path").to_owned();
    for bad in [
        &bad_sig,
        &as_sensei,
        &as_ken,
        &other_file,
        &longer,
        &unsigned,
    ] {
        let a = p.media(bad, None).await;
        let body: Value = serde_json::from_slice(&a.body).expect("JSON");
        assert_eq!((a.status, code(&body)), (403, "media_url_invalid"), "{bad}");
        assert!(a.body.len() < 1000, "no media in a refusal");
    }

    // A right taken away after the URL was given: refused at the next request.
    p.portal(
        "POST",
        "/api/v1/integration/purchases/p-taro/status",
        json!({"status": "refunded"}),
    )
    .await;
    let a = p.media(&url, Some("bytes=0-99")).await;
    let body: Value = serde_json::from_slice(&a.body).expect("JSON");
    assert_eq!((a.status, code(&body)), (403, "purchase_cancelled"));
    p.portal(
        "POST",
        "/api/v1/integration/purchases/p-taro/status",
        json!({"status": "paid"}),
    )
    .await;
    assert_eq!(p.media(&url, Some("bytes=0-99")).await.status, 206);

    // Withdrawn: refused to everyone, the URL too; put back, it plays again.
    let dates = p.set_archive(json!({"withdrawn": true})).await;
    assert!(dates["withdrawn_at"].is_u64(), "{dates}");
    let (_, body) = p.archive("taro").await;
    assert_eq!(body["state"], "withdrawn");
    assert!(body.get("media").is_none());
    let a = p.media(&url, None).await;
    let body: Value = serde_json::from_slice(&a.body).expect("JSON");
    assert_eq!((a.status, code(&body)), (403, "archive_withdrawn"));
    p.set_archive(json!({"withdrawn": false})).await;
    assert_eq!(p.archive("taro").await.1["state"], "ready");

    // Past its end date: expired, and the URL refused.
    p.set_archive(json!({"expires_at": now.minus_ms(1).0}))
        .await;
    let (_, body) = p.archive("taro").await;
    assert_eq!(body["state"], "expired");
    let a = p.media(&url, None).await;
    let body: Value = serde_json::from_slice(&a.body).expect("JSON");
    assert_eq!((a.status, code(&body)), (403, "archive_expired"));
    p.set_archive(json!({"expires_at": null})).await;

    // The URL's own time runs out (10 s here): refused as expired.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let a = p.media(&url, Some("bytes=0-9")).await;
        if a.status == 403 {
            let body: Value = serde_json::from_slice(&a.body).expect("JSON");
            assert_eq!(code(&body), "media_url_expired");
            break;
        }
        assert_eq!(a.status, 206);
        assert!(Instant::now() < deadline, "the URL never expired");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
