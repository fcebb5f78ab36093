//! The configuration's tests: files, flags and environment resolved together.
use super::*;
use protocol::UnixMillis;

#[test]
fn a_full_file_parses_and_flags_win() {
    let file: FileConfig = toml::from_str(
        r#"
        listen = "0.0.0.0:9000"
        ticket_secret = "0123456789abcdef0123456789abcdef"
        allowed_origins = ["https://lectures.example.jp"]
        [limits]
        outbound_queue = 64
        [room]
        seat_grace_secs = 30
        [[lectures]]
        id = "rust-101"
        title = "Rust 入門"
        starts_at = "2026-12-01T19:00:00+09:00"
        ends_at = "2026-12-01T20:30:00+09:00"
        rows = 10
        cols = 20
        "#,
    )
    .expect("parses");
    let over = Overrides {
        listen: Some("127.0.0.1:1".parse().expect("addr")),
        ..Overrides::default()
    };
    let config = Config::resolve(file, over).expect("valid");
    assert_eq!(config.listen.port(), 1);
    assert_eq!(config.limits.outbound_queue, 64);
    assert_eq!(
        config.limits.max_connections,
        Limits::default().max_connections
    );
    assert_eq!(
        config.room.settings(protocol::Epoch(1)).seat_grace_ms,
        30_000
    );
    assert_eq!(config.lectures[0].starts_at, UnixMillis(1_796_119_200_000));
}

#[test]
fn the_example_file_parses_and_shows_the_defaults() {
    let file: FileConfig = toml::from_str(include_str!("../../../docs/room.example.toml"))
        .expect("the example parses");
    assert_eq!(
        file.limits,
        Limits::default(),
        "the example's [limits] are the defaults"
    );
    assert_eq!(
        file.room,
        RoomTuning::default(),
        "the example's [room] values are the defaults"
    );
    assert_eq!(
        file.media,
        MediaSettings::default(),
        "the example's [media] values are the defaults"
    );
    assert_eq!(
        file.identity.as_ref().map(|i| i.max_token_lifetime_secs),
        Some(crate::gate::identity::DEFAULT_MAX_TOKEN_LIFETIME_SECS),
        "the example's [identity] max_token_lifetime_secs is the default"
    );
    assert!(
        file.trusted_proxies.is_empty(),
        "no trusted proxies by default"
    );
    assert_eq!(file.forwarded_header, ForwardedHeader::default());
    let config = Config::resolve(file, Overrides::default()).expect("the example is valid");
    assert_eq!(config.lectures[0].emotions.len(), 2);
    assert_eq!(
        config.web_root,
        PathBuf::from(DEFAULT_WEB_ROOT),
        "the example's web_root is the default"
    );
}

#[test]
fn the_portal_sign_in_address_must_be_one_to_send_browsers_to() {
    let with = |url: &str| {
        let file = FileConfig::parse(&format!("demo = true\nportal_sign_in_url = \"{url}\"\n"))
            .expect("parses");
        Config::resolve(file, Overrides::default())
    };
    for good in [
        "https://portal.example.jp/rooms/sign-in",
        "https://portal.example.jp/sign-in?site=rooms",
        "http://127.0.0.1:9000/sign-in",
    ] {
        let config = with(good).expect(good);
        assert_eq!(config.portal_sign_in_url.as_deref(), Some(good));
    }
    for bad in [
        "javascript:alert(1)",
        "/sign-in",
        "https://",
        "https://user:pass@portal.example.jp/",
        "https://portal.example.jp/sign-in#x",
        "https://portal.example.jp/ sign-in",
    ] {
        let refused = with(bad).expect_err(bad);
        assert!(
            refused.to_string().contains("portal_sign_in_url"),
            "{refused}"
        );
    }
}

#[test]
fn mistakes_are_named() {
    let typo = toml::from_str::<FileConfig>("listn = \"0.0.0.0:1\"").expect_err("unknown field");
    assert!(typo.to_string().contains("listn"), "{typo}");
    let no_secret =
        Config::resolve(FileConfig::default(), Overrides::default()).expect_err("needs a secret");
    assert!(matches!(no_secret, ConfigError::NoTicketSecret));
    let demo = Config::resolve(
        FileConfig::default(),
        Overrides {
            demo: true,
            ..Overrides::default()
        },
    );
    assert!(demo.is_ok(), "demo mode draws its own secret");
    let weak = Overrides {
        ticket_secret: Some("short".into()),
        ..Overrides::default()
    };
    assert!(matches!(
        Config::resolve(FileConfig::default(), weak),
        Err(ConfigError::WeakSecret(_))
    ));
}

#[test]
fn a_previous_ticket_secret_is_accepted_and_the_current_one_signs() {
    let current = "0123456789abcdef0123456789abcdef";
    let previous = "fedcba9876543210fedcba9876543210";
    let file = FileConfig::parse(&format!(
        "ticket_secret = \"{current}\"\nticket_secret_previous = \"{previous}\"\n"
    ))
    .expect("parses");
    let config = Config::resolve(file, Overrides::default()).expect("valid");
    let key = |s: &str| TicketKey::new(s.as_bytes().to_vec()).expect("long enough");
    assert_eq!(config.ticket_key.id(), key(current).id());
    assert_eq!(config.ticket_key.previous_id(), Some(key(previous).id()));
    // The environment's (or a flag's) wins over the file's; empty means none.
    let over = Overrides {
        ticket_secret_previous: Some(String::new()),
        ..Overrides::default()
    };
    let file = FileConfig::parse(&format!("ticket_secret = \"{current}\"\n")).expect("parses");
    assert_eq!(
        Config::resolve(file, over)
            .expect("valid")
            .ticket_key
            .previous_id(),
        None
    );
    let weak = Overrides {
        ticket_secret: Some(current.into()),
        ticket_secret_previous: Some("short-previous".into()),
        ..Overrides::default()
    };
    let refused = Config::resolve(FileConfig::default(), weak).expect_err("too short");
    assert!(
        refused.to_string().contains("ticket_secret_previous"),
        "{refused}"
    );
    assert!(!refused.to_string().contains("short-previous"), "{refused}");
    // A pseudonym secret keeps pseudonyms when the ticket secret changes.
    let with_pseudonyms = |ticket: &str| {
        let over = Overrides {
            ticket_secret: Some(ticket.into()),
            pseudonym_secret: Some(current.into()),
            ..Overrides::default()
        };
        let key = Config::resolve(FileConfig::default(), over)
            .expect("valid")
            .ticket_key;
        key.pseudonym(&"l".into(), &"acct".into())
    };
    assert_eq!(
        with_pseudonyms(previous),
        key(current).pseudonym(&"l".into(), &"acct".into())
    );
}

#[test]
fn demo_mode_refuses_the_portals_identity_and_a_shared_database() {
    let demo = || Overrides {
        demo: true,
        ..Overrides::default()
    };
    let with_identity = FileConfig::parse(
        "[identity]\nalgorithm = \"HS256\"\nsecret = \"the-portal-and-the-rooms-share-this-secret\"\n\
         issuer = \"https://portal.example.jp\"\naudience = \"lecture-room\"\n",
    )
    .expect("parses");
    let refused = Config::resolve(with_identity, demo()).expect_err("refused");
    assert!(matches!(refused, ConfigError::DemoWithIdentity));
    assert!(refused.to_string().contains("[identity]"), "{refused}");
    let shared = Overrides {
        database_url: Some("postgres://room:secret@db.internal/rooms".into()),
        ..demo()
    };
    let refused = Config::resolve(FileConfig::default(), shared).expect_err("refused");
    assert!(matches!(refused, ConfigError::DemoWithSharedDatabase));
    assert!(refused.to_string().contains("database_url"), "{refused}");
    assert!(
        !refused.to_string().contains("secret@"),
        "the URL's password is not echoed: {refused}"
    );
    let own_file = Overrides {
        database_url: Some("sqlite:///tmp/demo.db".into()),
        ..demo()
    };
    assert!(Config::resolve(FileConfig::default(), own_file).is_ok());
    assert!(
        Config::resolve(FileConfig::default(), demo()).is_ok(),
        "the default SQLite file"
    );
}

#[test]
fn a_malformed_file_is_told_by_line_and_key_without_its_secret() {
    let secret = "s3cr3t-0123456789abcdef0123456789abcdef";
    for text in [
        // An unterminated string.
        format!("listen = \"127.0.0.1:1\"\nticket_secret = \"{secret}\n"),
        // A missing `=`.
        format!("listen = \"127.0.0.1:1\"\nticket_secret \"{secret}\"\n"),
        // The wrong type: serde's message would quote the value.
        format!("listen = \"127.0.0.1:1\"\n[limits]\nmax_connections = \"{secret}\"\n"),
        format!("listen = \"127.0.0.1:1\"\n[identity]\nsecret = [\"{secret}\"]\n"),
    ] {
        let message = FileConfig::parse(&text).expect_err("malformed");
        assert!(!message.contains(secret), "{message}");
        assert!(!message.contains("s3cr3t"), "{message}");
        assert!(
            message.contains("line 2") || message.contains("line 3"),
            "{message}"
        );
    }
    let message = FileConfig::parse(&format!(
        "listen = \"127.0.0.1:1\"\n[limits]\nmax_connections = \"{secret}\"\n"
    ))
    .expect_err("malformed");
    assert!(message.contains("key `max_connections`"), "{message}");
    let message = FileConfig::parse("[limits]\nmax_conections = 5\n").expect_err("typo");
    assert!(message.contains("max_conections"), "{message}");
}

#[test]
fn the_media_table_maps_to_the_sfu() {
    let file: FileConfig = toml::from_str(
        r#"
        ticket_secret = "0123456789abcdef0123456789abcdef"
        [media]
        udp_port_range = "50000-50199"
        public_ips = ["203.0.113.7"]
        ice_tcp = true
        ice_tcp_port = 443
        ice_servers = [{ urls = ["turn:turn.example.jp:3478"], username = "u", credential = "c" }]
        recording_dir = "/var/lib/room/recordings"
        "#,
    )
    .expect("parses");
    let config = Config::resolve(file, Overrides::default()).expect("valid");
    let sfu = config.media.signaling();
    assert_eq!(sfu.udp_port_range, Some(50000..=50199));
    assert_eq!(sfu.public_ips.len(), 1);
    assert!(sfu.ice_tcp);
    assert_eq!(config.media.ice_tcp_port, Some(443));
    assert_eq!(sfu.ice_servers[0].username, "u");
    assert!(sfu.recording_dir.is_some());
    let bad: FileConfig = toml::from_str(
        "ticket_secret = \"0123456789abcdef0123456789abcdef\"\n[media]\nudp_port_range = \"9-1\"",
    )
    .expect("parses");
    assert!(Config::resolve(bad, Overrides::default()).is_err());
}

fn with_media(media: &str) -> Result<Config, ConfigError> {
    let file: FileConfig = toml::from_str(&format!(
        "ticket_secret = \"0123456789abcdef0123456789abcdef\"\n[media]\n{media}"
    ))
    .expect("parses");
    Config::resolve(file, Overrides::default())
}

#[test]
fn turn_settings_go_together_and_the_check_gets_no_credential() {
    let config = with_media(
        r#"
        ice_servers = [{ urls = ["stun:stun.example.jp:3478", "turn:old.example.jp"], username = "u", credential = "static" }]
        turn_urls = ["turn:turn.example.jp:3478?transport=udp", "turns:turn.example.jp:5349"]
        turn_secret = "0123456789abcdef"
        turn_ttl_secs = 600
        "#,
    )
    .expect("valid");
    let check = config.media.check_ice_servers();
    assert_eq!(
        check,
        vec![protocol::IceServer {
            urls: vec!["stun:stun.example.jp:3478".into()],
            username: None,
            credential: None,
        }],
        "STUN only, no name or credential"
    );
    let room = config
        .media
        .room_ice_servers(UnixMillis(1_700_000_000_500), "2a");
    assert_eq!(room.len(), 2);
    assert_eq!(room[1].username.as_deref(), Some("1700000600:2a"));
    assert!(!format!("{:?}", config.media).contains("0123456789abcdef"));
    for bad in [
        "turn_urls = [\"turn:t\"]",
        "turn_secret = \"0123456789abcdef\"",
        "turn_urls = [\"turn:t\"]\nturn_secret = \"short\"",
        "turn_urls = [\"stun:t\"]\nturn_secret = \"0123456789abcdef\"",
        "turn_urls = [\"turn:t\"]\nturn_secret = \"0123456789abcdef\"\nturn_ttl_secs = 5",
    ] {
        assert!(with_media(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_check_has_ports_apart_from_the_lecture() {
    let config =
        with_media("udp_port_range = \"50000-50199\"\ncheck_udp_port_range = \"50200-50209\"")
            .expect("valid");
    let node = config.media.signaling();
    let probes = config.media.probe_signaling(&node);
    assert_eq!(probes.udp_port_range, Some(50200..=50209));
    assert_eq!(node.udp_port_range, Some(50000..=50199));
    let ephemeral = with_media("udp_port_range = \"50000-50199\"").expect("valid");
    let node = ephemeral.media.signaling();
    assert_eq!(ephemeral.media.probe_signaling(&node).udp_port_range, None);
    assert!(
        with_media("udp_port_range = \"50000-50199\"\ncheck_udp_port_range = \"50199-50209\"")
            .is_err(),
        "overlapping ranges"
    );
    assert!(!config.media.signaling().candidate_filter.allows_private());
    let lan = with_media("allow_private_candidates = true").expect("valid");
    assert!(lan.media.signaling().candidate_filter.allows_private());
}

#[test]
fn trusted_proxies_are_addresses_or_networks() {
    let file: FileConfig = toml::from_str(
        "ticket_secret = \"0123456789abcdef0123456789abcdef\"\n\
         trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.10\"]\nforwarded_header = \"forwarded\"",
    )
    .expect("parses");
    assert!(Config::resolve(file, Overrides::default()).is_ok());
    let file: FileConfig = toml::from_str(
        "ticket_secret = \"0123456789abcdef0123456789abcdef\"\ntrusted_proxies = [\"lb.internal\"]",
    )
    .expect("parses");
    assert!(matches!(
        Config::resolve(file, Overrides::default()),
        Err(ConfigError::Proxy(_))
    ));
    assert!(toml::from_str::<FileConfig>("forwarded_header = \"x-real-ip\"").is_err());
}

#[test]
fn the_relay_url_must_be_a_websocket_base() {
    let with = |url: &str| {
        let file: FileConfig = toml::from_str(&format!(
            "ticket_secret = \"0123456789abcdef0123456789abcdef\"\n[media]\nrelay_url = \"{url}\""
        ))
        .expect("parses");
        Config::resolve(file, Overrides::default()).map(|c| c.media.relay_url)
    };
    for good in [
        "ws://10.0.0.5:8080",
        "ws://node-3.internal",
        "ws://[fd00::5]:8080",
    ] {
        assert_eq!(with(good).expect("valid"), Some(good.to_owned()));
    }
    for bad in [
        "http://10.0.0.5",
        "ws://",
        "ws:///x",
        "ws://h/x",
        "10.0.0.5:8080",
        "ws://h?x=1",
        "wss://h",
    ] {
        assert!(with(bad).is_err(), "{bad}");
    }
}

#[test]
fn bad_lectures_are_refused() {
    let entry = |rows, start: &str| LectureEntry {
        id: "l1".into(),
        title: "t".into(),
        starts_at: start.into(),
        ends_at: "2026-12-01T20:00:00Z".into(),
        rows,
        cols: 10,
        emotions: vec![],
        staff: vec![],
    };
    assert!(entry(10, "2026-12-01T19:00:00Z").to_lecture().is_ok());
    assert!(entry(0, "2026-12-01T19:00:00Z").to_lecture().is_err());
    assert!(entry(10, "2026-12-01T21:00:00Z").to_lecture().is_err());
    assert!(entry(10, "tomorrow").to_lecture().is_err());
}

#[test]
fn the_environment_sets_each_nodes_media_settings_over_one_shared_file() {
    let file: FileConfig = toml::from_str(
        r#"
        ticket_secret = "0123456789abcdef0123456789abcdef"
        [media]
        udp_port_range = "50000-50499"
        turn_urls = ["turn:turn.example.jp:3478"]
        "#,
    )
    .expect("parses");
    let over = Overrides {
        udp_port_range: Some("50500-50999".into()),
        relay_url: Some("ws://node2:8080".into()),
        turn_secret: Some("a-turn-secret-of-enough-bytes".into()),
        ..Overrides::default()
    };
    let config = Config::resolve(file, over).expect("valid");
    assert_eq!(config.media.udp_port_range.as_deref(), Some("50500-50999"));
    assert_eq!(config.media.relay_url.as_deref(), Some("ws://node2:8080"));
    assert!(config.media.turn_secret.is_some());
}

/// The example's `[mail]` table (commented out: e-mails are off by default), uncommented.
fn example_mail_table() -> String {
    let example = include_str!("../../../docs/room.example.toml");
    let mut out = String::new();
    let mut inside = false;
    for line in example.lines() {
        if line == "# [mail]" {
            inside = true;
        } else if inside && line.trim().is_empty() {
            break;
        }
        let Some(setting) = line.strip_prefix("# ").filter(|_| inside) else {
            continue;
        };
        let is_setting = setting.starts_with("[mail]")
            || setting
                .split_once(" =")
                .is_some_and(|(key, _)| key.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        if is_setting {
            out.push_str(setting);
            out.push('\n');
        }
    }
    out
}

#[test]
fn the_examples_mail_table_uncommented_holds_the_defaults() {
    let table = example_mail_table();
    assert!(table.starts_with("[mail]"), "{table}");
    let file = FileConfig::parse(&format!("ticket_secret = \"{}\"\n{table}", "s".repeat(32)))
        .expect("the example's [mail] parses");
    let mail = file.mail.clone().expect("a [mail] table");
    let defaults = FileConfig::parse(
        "[mail]\nsmtp_host = \"h\"\nfrom = \"a@example.jp\"\nbase_url = \"https://x\"",
    )
    .expect("parses")
    .mail
    .expect("a [mail] table");
    assert_eq!(mail.reminder_lead_hours, defaults.reminder_lead_hours);
    assert_eq!(mail.poll_interval_secs, defaults.poll_interval_secs);
    assert_eq!(mail.max_attempts, defaults.max_attempts);
    assert_eq!(mail.retry_first_secs, defaults.retry_first_secs);
    assert_eq!(mail.retry_most_secs, defaults.retry_most_secs);
    assert_eq!(mail.timeout_secs, defaults.timeout_secs);
    assert_eq!(mail.concurrency, defaults.concurrency);
    assert_eq!(mail.port(), defaults.port(), "587 for STARTTLS");
    let config = Config::resolve(file, Overrides::default()).expect("valid");
    assert!(config.mail.is_some());
}

#[test]
fn mail_is_off_unless_configured_and_its_password_never_shows() {
    let off = FileConfig::parse("demo = true").expect("parses");
    let config = Config::resolve(off, Overrides::default()).expect("valid");
    assert!(
        config.mail.is_none(),
        "no [mail]: no e-mails, in demo mode too"
    );
    assert!(!config.gate_settings().mail_notices);

    let text = format!(
        "ticket_secret = \"{}\"\n{}user = \"lectures\"\n",
        "s".repeat(32),
        "[mail]\nsmtp_host = \"smtp.example.jp\"\nfrom = \"講座事務局 <lectures@example.jp>\"\nbase_url = \"https://lectures.example.jp/\"\n"
    );
    let over = Overrides {
        mail_password: Some("smtp-password-from-the-environment".into()),
        ..Overrides::default()
    };
    let config = Config::resolve(FileConfig::parse(&text).expect("parses"), over).expect("valid");
    let mail = config.mail.as_ref().expect("on");
    assert_eq!(
        mail.password.as_deref(),
        Some("smtp-password-from-the-environment")
    );
    assert_eq!(
        mail.base_url, "https://lectures.example.jp",
        "no trailing slash"
    );
    assert!(config.gate_settings().mail_notices);
    let shown = format!("{config:?}");
    assert!(!shown.contains("smtp-password"), "{shown}");

    let no_user = text.replace("user = \"lectures\"\n", "password = \"p\"\n");
    let err = Config::resolve(
        FileConfig::parse(&no_user).expect("parses"),
        Overrides::default(),
    )
    .expect_err("a password without a user");
    assert!(err.to_string().contains("[mail]"), "{err}");
    let bad_from = text.replace("講座事務局 <lectures@example.jp>", "not an address");
    let err = Config::resolve(
        FileConfig::parse(&bad_from).expect("parses"),
        Overrides::default(),
    )
    .expect_err("a sender that is no address");
    assert!(
        !err.to_string().contains("not an address"),
        "no value echoed: {err}"
    );
}
