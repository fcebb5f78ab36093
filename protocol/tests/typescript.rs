//! The web client's TypeScript types are generated from this crate's types, never typed again
//! by hand: `protocol/bindings/` holds them, and this test fails when they are stale.
//! `UPDATE_TS_BINDINGS=1 cargo test -p protocol --test typescript` regenerates them.

use protocol::{ClientMsg, CloseCode, ErrorCode, ServerMsg};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use ts_rs::{Config, TS};

fn generate(dir: &Path) -> BTreeMap<String, String> {
    // Every integer on the wire fits in 53 bits: plain numbers in JavaScript.
    let cfg = Config::new().with_large_int("number").with_out_dir(dir);
    ClientMsg::export_all(&cfg).expect("exports the client messages");
    ServerMsg::export_all(&cfg).expect("exports the server messages");
    ErrorCode::export_all(&cfg).expect("exports the error codes");
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
    std::fs::write(dir.join("CloseCodes.ts"), codes).expect("writes");
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
    let fresh_dir = std::env::temp_dir().join(format!("protocol-bindings-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&fresh_dir);
    std::fs::create_dir_all(&fresh_dir).expect("a temp dir");
    let fresh = generate(&fresh_dir);
    assert!(
        fresh.contains_key("ClientMsg.ts") && fresh.contains_key("ServerMsg.ts"),
        "{:?}",
        fresh.keys()
    );
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
            "protocol/bindings is out of date ({stale:?}): run UPDATE_TS_BINDINGS=1 cargo test -p protocol --test typescript"
        );
    }
    let _ = std::fs::remove_dir_all(&fresh_dir);
}
