//! The web client's TypeScript types are generated from the Rust types, never typed again by
//! hand: `protocol/bindings/` holds the room protocol's (messages, error and close codes) and
//! `room-server/bindings/` the gate's HTTP API's (the bodies its handlers answer with). These
//! tests fail when either is stale; `UPDATE_TS_BINDINGS=1 cargo test -p room-server --test
//! typescript` regenerates both.

use protocol::{ClientMsg, CloseCode, ErrorCode, ServerMsg};
use room_server::web_types::{
    DemoPeople, DemoPerson, Entry, ErrorBody, LectureState, MyLecture, MyLectures, Profile,
    RefusalBody, SignInOptions, SignedIn, TicketResponse,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use ts_rs::{Config, TS};

/// Generates a set of bindings into a fresh folder with `generate`, checks the files the web
/// client imports are among them, and compares them with the committed folder `committed`
/// (relative to the workspace) — or, with `UPDATE_TS_BINDINGS` set, replaces it.
fn check_bindings(committed: &str, imported: &[&str], generate: impl FnOnce(&Path, &Config)) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let committed_dir = root.join(committed);
    let fresh_dir = std::env::temp_dir().join(format!(
        "bindings-{}-{}",
        committed.replace('/', "-"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&fresh_dir);
    std::fs::create_dir_all(&fresh_dir).expect("a temp dir");
    // Every integer on the wire fits in 53 bits: plain numbers in JavaScript.
    let cfg = Config::new()
        .with_large_int("number")
        .with_out_dir(&fresh_dir);
    generate(&fresh_dir, &cfg);
    let fresh = read_dir(&fresh_dir);
    for name in imported {
        assert!(
            fresh.contains_key(&format!("{name}.ts")),
            "{name}.ts, which the web client imports, is generated: {:?}",
            fresh.keys()
        );
    }
    if std::env::var_os("UPDATE_TS_BINDINGS").is_some() {
        let _ = std::fs::remove_dir_all(&committed_dir);
        std::fs::create_dir_all(&committed_dir).expect("creates the bindings folder");
        for (name, text) in &fresh {
            std::fs::write(committed_dir.join(name), text).expect("writes");
        }
    } else {
        let committed_files = read_dir(&committed_dir);
        let stale: Vec<&String> = fresh
            .keys()
            .chain(committed_files.keys())
            .filter(|name| fresh.get(*name) != committed_files.get(*name))
            .collect();
        assert!(
            stale.is_empty(),
            "{committed} is out of date ({stale:?}): run UPDATE_TS_BINDINGS=1 cargo test -p room-server --test typescript"
        );
    }
    let _ = std::fs::remove_dir_all(&fresh_dir);
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
fn the_protocols_typescript_types_match_the_rust_types() {
    check_bindings(
        "protocol/bindings",
        &["ClientMsg", "ServerMsg", "ErrorCode", "CloseCodes"],
        |dir, cfg| {
            ClientMsg::export_all(cfg).expect("exports the client messages");
            ServerMsg::export_all(cfg).expect("exports the server messages");
            ErrorCode::export_all(cfg).expect("exports the error codes");
            let mut codes = String::from(
                "// Generated from protocol/src/close.rs: the room's WebSocket close codes.\n\
                 // 4000-4099: reconnect and resume. 4100-4199: terminal, show the reason.\n\
                 export const CloseCodes = {\n",
            );
            for code in CloseCode::ALL {
                let name = serde_json::to_value(code).expect("a name");
                let name = name.as_str().expect("a unit variant");
                codes.push_str(&format!("  {name}: {},\n", code.code()));
            }
            codes.push_str("} as const;\n");
            std::fs::write(PathBuf::from(dir).join("CloseCodes.ts"), codes).expect("writes");
        },
    );
}

#[test]
fn the_gate_apis_typescript_types_match_the_rust_types() {
    check_bindings(
        "room-server/bindings",
        &[
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
        ],
        |_, cfg| {
            // Each with what it refers to (a lecture's role and times, …).
            MyLectures::export_all(cfg).expect("exports My page");
            MyLecture::export_all(cfg).expect("exports a lecture");
            LectureState::export_all(cfg).expect("exports a lecture's state");
            Entry::export_all(cfg).expect("exports the Enter button's answer");
            RefusalBody::export_all(cfg).expect("exports a refusal");
            TicketResponse::export_all(cfg).expect("exports a ticket");
            DemoPeople::export_all(cfg).expect("exports the demo people");
            DemoPerson::export_all(cfg).expect("exports a demo person");
            SignedIn::export_all(cfg).expect("exports a demo sign-in");
            SignInOptions::export_all(cfg).expect("exports the sign-in options");
            ErrorBody::export_all(cfg).expect("exports the error body");
            Profile::export_all(cfg).expect("exports the profile");
        },
    );
}
