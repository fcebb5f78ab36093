//! The web client's types for the gate's HTTP API are generated from the Rust types the
//! handlers answer with, never typed again by hand: `room-server/bindings/` holds them, and
//! this test fails when they are stale.
//! `UPDATE_TS_BINDINGS=1 cargo test -p room-server --test typescript` regenerates them.

use room_server::web_types::{
    DemoPeople, DemoPerson, Entry, ErrorBody, LectureState, MyLecture, MyLectures, Profile,
    RefusalBody, SignInOptions, SignedIn, TicketResponse,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use ts_rs::{Config, TS};

fn generate(dir: &Path) -> BTreeMap<String, String> {
    // Every integer the gate sends fits in 53 bits: plain numbers in JavaScript.
    let cfg = Config::new().with_large_int("number").with_out_dir(dir);
    // Each with what it refers to (a lecture's role and times, …).
    MyLectures::export_all(&cfg).expect("exports My page");
    MyLecture::export_all(&cfg).expect("exports a lecture");
    LectureState::export_all(&cfg).expect("exports a lecture's state");
    Entry::export_all(&cfg).expect("exports the Enter button's answer");
    RefusalBody::export_all(&cfg).expect("exports a refusal");
    TicketResponse::export_all(&cfg).expect("exports a ticket");
    DemoPeople::export_all(&cfg).expect("exports the demo people");
    DemoPerson::export_all(&cfg).expect("exports a demo person");
    SignedIn::export_all(&cfg).expect("exports a demo sign-in");
    SignInOptions::export_all(&cfg).expect("exports the sign-in options");
    ErrorBody::export_all(&cfg).expect("exports the error body");
    Profile::export_all(&cfg).expect("exports the profile");
    read_dir(dir)
}

fn read_dir(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "ts"))
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    (name, std::fs::read_to_string(e.path()).expect("reads"))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn typescript_bindings_match_the_rust_types() {
    let committed_dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/bindings"));
    let fresh_dir =
        std::env::temp_dir().join(format!("room-server-bindings-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&fresh_dir);
    std::fs::create_dir_all(&fresh_dir).expect("a temp dir");
    let fresh = generate(&fresh_dir);
    for name in [
        "MyLectures",
        "MyLecture",
        "LectureState",
        "Entry",
        "RefusalBody",
        "TicketResponse",
        "DemoPeople",
        "DemoPerson",
        "SignedIn",
        "SignInOptions",
        "ErrorBody",
        "Profile",
    ] {
        assert!(
            fresh.contains_key(&format!("{name}.ts")),
            "{name}.ts, which the web client imports, is generated: {:?}",
            fresh.keys()
        );
    }
    if std::env::var_os("UPDATE_TS_BINDINGS").is_some() {
        let _ = std::fs::remove_dir_all(&committed_dir);
        std::fs::create_dir_all(&committed_dir).expect("creates bindings/");
        for (name, text) in &fresh {
            std::fs::write(committed_dir.join(name), text).expect("writes");
        }
    } else {
        let committed = read_dir(&committed_dir);
        let stale: Vec<&String> = fresh
            .keys()
            .chain(committed.keys())
            .filter(|name| fresh.get(*name) != committed.get(*name))
            .collect();
        assert!(
            stale.is_empty(),
            "room-server/bindings is out of date ({stale:?}): run UPDATE_TS_BINDINGS=1 cargo test -p room-server --test typescript"
        );
    }
    let _ = std::fs::remove_dir_all(&fresh_dir);
}
