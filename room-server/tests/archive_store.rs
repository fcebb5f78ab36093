//! The archive store on both kinds: a local folder, and an S3-compatible server running here
//! (moto's server mode, started on a free loopback port and stopped by its pid): objects in,
//! range reads out (as a browser's `Range` asks), listing, deletion, JSON; and the retention
//! sweep deleting what expired (the portal's date, or the default after the lecture).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use protocol::{LectureId, UnixMillis};
use room_server::archive::{ArchiveError, ArchiveStore, Manifest, sweep};
use room_server::config::{ArchiveSettings, StoreKind};
use room_server::gate::model::{Lecture, LectureStatus};
use room_server::gate::store::Store;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn tempdir() -> PathBuf {
    let mut n = [0u8; 8];
    getrandom::fill(&mut n).unwrap();
    let dir = std::env::temp_dir().join(format!("archive-store-{:016x}", u64::from_le_bytes(n)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Bytes whose every position is recognisable.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

async fn exercise(store: &ArchiveStore, scratch: &std::path::Path) {
    let l1 = LectureId::from("lecture-1");
    let l2 = LectureId::from("lecture-2");
    // A file bigger than one upload part (multipart on S3).
    let big = pattern(12 * 1024 * 1024 + 123);
    let file = scratch.join("camera.webm");
    std::fs::write(&file, &big).unwrap();
    store.put(&l1, "camera.webm", file.as_path()).await.unwrap();
    store
        .put(&l2, "screen-1.webm", b"tiny".to_vec())
        .await
        .unwrap();
    assert_eq!(
        store.head(&l1, "camera.webm").await.unwrap(),
        Some(big.len() as u64)
    );
    assert_eq!(store.head(&l1, "nothing.webm").await.unwrap(), None);

    // Whole, a middle range, a range running past the end (clipped), one past it (refused).
    let whole = store.get_range(&l1, "camera.webm", None).await.unwrap();
    assert_eq!(whole.total_len, big.len() as u64);
    assert_eq!(whole.bytes().await.unwrap().as_ref(), big.as_slice());
    let mid = store
        .get_range(&l1, "camera.webm", Some(1_000_000..1_000_100))
        .await
        .unwrap();
    assert_eq!(
        (mid.total_len, mid.range.clone()),
        (big.len() as u64, 1_000_000..1_000_100)
    );
    assert_eq!(
        mid.bytes().await.unwrap().as_ref(),
        &big[1_000_000..1_000_100]
    );
    let end = big.len() as u64;
    let tail = store
        .get_range(&l1, "camera.webm", Some(end - 10..end + 1000))
        .await
        .unwrap();
    assert_eq!(tail.range, end - 10..end);
    assert_eq!(tail.bytes().await.unwrap().as_ref(), &big[big.len() - 10..]);
    assert!(matches!(
        store.get_range(&l1, "camera.webm", Some(end..end + 5)).await,
        Err(ArchiveError::RangeNotSatisfiable { total_len }) if total_len == end
    ));
    assert!(matches!(
        store.get_range(&l1, "missing.webm", None).await,
        Err(ArchiveError::NotFound)
    ));
    // Names that are not one path segment are refused before reaching the store.
    for bad in ["../x", "a/b", "", ".hidden"] {
        assert!(matches!(
            store.put(&l1, bad, b"x".to_vec()).await,
            Err(ArchiveError::BadName(_))
        ));
    }
    assert!(matches!(
        store.head(&LectureId::from(".."), "camera.webm").await,
        Err(ArchiveError::BadName(_))
    ));

    let manifest = Manifest {
        format: "live-lecture-archive/1".into(),
        lecture: "lecture-1".into(),
        started_at_ms: 1,
        duration_ms: 2,
        tracks: vec![],
    };
    store
        .put_json(&l1, "manifest.json", &manifest)
        .await
        .unwrap();
    let back: Option<Manifest> = store.get_json(&l1, "manifest.json").await.unwrap();
    assert_eq!(back, Some(manifest));
    let none: Option<Manifest> = store.get_json(&l2, "manifest.json").await.unwrap();
    assert_eq!(none, None);

    assert_eq!(
        store.list_lectures().await.unwrap(),
        [l1.clone(), l2.clone()]
    );
    store.delete_lecture(&l1).await.unwrap();
    assert_eq!(
        store.list_lectures().await.unwrap(),
        std::slice::from_ref(&l2)
    );
    assert_eq!(store.head(&l1, "camera.webm").await.unwrap(), None);
    store.delete_lecture(&l1).await.unwrap(); // again: nothing to do
}

#[tokio::test]
async fn local_store() {
    let dir = tempdir();
    let store = ArchiveStore::local(&dir.join("archive")).unwrap();
    exercise(&store, &dir).await;
}

/// moto's S3 server on a free loopback port, stopped (by its pid) when dropped.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto() -> Moto {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server (pip install 'moto[server]'; scripts/test installs it)");
    let moto = Moto { child, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "moto_server did not start listening"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    moto
}

/// Creates a bucket (moto takes an unsigned `PUT /bucket`).
fn create_bucket(port: u16, bucket: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

fn s3_settings(port: u16) -> ArchiveSettings {
    ArchiveSettings {
        store: StoreKind::S3,
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        bucket: Some("archives".into()),
        region: Some("us-east-1".into()),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
        allow_http: true,
        ..ArchiveSettings::default()
    }
}

#[tokio::test]
async fn s3_compatible_store() {
    let moto = moto();
    create_bucket(moto.port, "archives");
    let store = ArchiveStore::from_settings(&s3_settings(moto.port), None).unwrap();
    assert_eq!(store.kind(), StoreKind::S3);
    exercise(&store, &tempdir()).await;
    // A second handle (another node) reads what the first wrote.
    let other = ArchiveStore::from_settings(&s3_settings(moto.port), None).unwrap();
    let l = LectureId::from("shared");
    store
        .put(&l, "camera.webm", b"0123456789".to_vec())
        .await
        .unwrap();
    let got = other
        .get_range(&l, "camera.webm", Some(2..5))
        .await
        .unwrap();
    assert_eq!(got.total_len, 10);
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"234");
}

fn lecture(id: &str) -> Lecture {
    Lecture {
        id: id.into(),
        title: "t".into(),
        starts_at: UnixMillis(0),
        ends_at: UnixMillis(3_600_000),
        rows: 2,
        cols: 2,
        emotions: vec![],
        archive_available_at: None,
        status: LectureStatus::Scheduled,
        cancel_reason: None,
        started_at: None,
        ended_at: None,
        staff: vec![],
    }
}

#[tokio::test]
async fn expired_archives_are_swept() {
    const DAY: u64 = 24 * 3600 * 1000;
    let dir = tempdir();
    let records = Store::connect(&format!("sqlite://{}/gate.db", dir.display()))
        .await
        .unwrap();
    let store = ArchiveStore::local(&dir.join("archive")).unwrap();
    let now = UnixMillis(100 * DAY);
    // a: the portal's end date passed. b: the portal's date is later (kept although the
    // default would have expired it). c: no date, ended 31 days ago (default 30: expired).
    // d: no date, ended 29 days ago (kept). e: no manifest yet (being made: kept).
    for (id, end_date) in [
        ("a", Some(now.0 - 1)),
        ("b", Some(now.0 + DAY)),
        ("c", None),
        ("d", None),
    ] {
        records
            .upsert_lecture(&lecture(id), UnixMillis(0))
            .await
            .unwrap();
        assert!(
            records
                .set_archive_expires_at(id, end_date.map(UnixMillis))
                .await
                .unwrap()
        );
    }
    let ended = |days_ago: u64| Manifest {
        format: "live-lecture-archive/1".into(),
        lecture: String::new(),
        started_at_ms: now.0 - days_ago * DAY - 3_600_000,
        duration_ms: 3_600_000,
        tracks: vec![],
    };
    for (id, days_ago) in [("a", 1), ("b", 40), ("c", 31), ("d", 29)] {
        store
            .put_json(&LectureId::from(id), "manifest.json", &ended(days_ago))
            .await
            .unwrap();
    }
    store
        .put(&LectureId::from("e"), "camera.webm", b"x".to_vec())
        .await
        .unwrap();
    let mut gone = sweep(&store, &records, 30, now).await.unwrap();
    gone.sort_by(|x, y| x.as_str().cmp(y.as_str()));
    assert_eq!(gone, [LectureId::from("a"), LectureId::from("c")]);
    let left: Vec<String> = store
        .list_lectures()
        .await
        .unwrap()
        .iter()
        .map(|l| l.as_str().to_owned())
        .collect();
    assert_eq!(left, ["b", "d", "e"]);
}
