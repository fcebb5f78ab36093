//! Learners' e-mails from the `room-server` binary, received by a real SMTP server (aiosmtpd):
//! the reminder before a lecture reaches exactly the learners it admits, once each, even from
//! two nodes sharing PostgreSQL; an SMTP outage is waited out; a late buyer is reminded too;
//! a cancellation and a ready archive are announced; a cancellation of thousands answers at
//! once and reaches each learner once.

use e2e as common;

use common::{NodeProcess, Received, SmtpServer, WAIT, http, now};
use protocol::UnixMillis;
use serde_json::{Value, json};
use sqlx::{Connection, Row};
use std::net::SocketAddr;
use std::time::Duration;

const API_KEY: &str = "mail-test-integration-key-0123456789";
const MIN: u64 = 60_000;
const HOUR: u64 = 60 * MIN;
const DAY: u64 = 24 * HOUR;
const MY_PAGE: &str = "https://lectures.example.jp/lectures";
/// Bound on a message arriving: a round a second, a retry within two.
const ARRIVES: Duration = Duration::from_secs(20);

/// A node's config in `dir`: the integration API, and `[mail]` through the SMTP server on
/// `smtp_port`, polling every second, looking for late buyers every two, retrying within two, each SMTP step bounded by
/// `timeout_secs`. Its path.
fn config(dir: &std::path::Path, smtp_port: u16, timeout_secs: u64) -> String {
    let path = dir.join("room.toml");
    std::fs::write(
        &path,
        format!(
            "ticket_secret = \"mail-test-ticket-secret-0123456789abcdef\"\n\
             integration_api_key = \"{API_KEY}\"\n\
             [mail]\n\
             smtp_host = \"127.0.0.1\"\n\
             smtp_port = {}\n\
             tls = \"none\"\n\
             from = \"講座事務局 <lectures@example.jp>\"\n\
             base_url = \"https://lectures.example.jp/\"\n\
             poll_interval_secs = 1\n\
             rescan_interval_secs = 2\n\
             retry_first_secs = 1\n\
             retry_most_secs = 2\n\
             timeout_secs = {timeout_secs}\n",
            smtp_port
        ),
    )
    .expect("writes the config");
    path.to_str().expect("utf-8").to_owned()
}

fn folder(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("room-server-mail-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a folder");
    dir
}

/// A PostgreSQL database of its own on `TEST_DATABASE_URL`'s server.
async fn fresh_postgres(admin: &str, name: &str) -> String {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(admin)
        .await
        .expect("PostgreSQL answers");
    let name = format!("mail_{}_{name}", std::process::id());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("creates a database");
    let (server, _) = admin.rsplit_once('/').expect("a database URL");
    format!("{server}/{name}")
}

/// The e-mail queue of `lecture` as the database holds it: (account, kind, state, attempts).
async fn queue(db: &str, lecture: &str) -> Vec<(String, String, String, i64)> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(db)
        .await
        .expect("the database answers");
    sqlx::query(
        "SELECT account_id, kind, state, attempts FROM mail_claims WHERE lecture_id = $1 ORDER BY account_id, kind",
    )
    .bind(lecture)
    .fetch_all(&mut conn)
    .await
    .expect("reads the queue")
    .iter()
    .map(|r| {
        (
            r.get("account_id"),
            r.get("kind"),
            r.get("state"),
            r.get("attempts"),
        )
    })
    .collect()
}

/// A counter of the node's `/metrics` (`name` without `_total`).
async fn counter(node: &NodeProcess, name: &str) -> u64 {
    let (status, body) = node.get("/metrics").await;
    assert_eq!(status, 200);
    let prefix = format!("{name}_total ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in /metrics"))
}

/// Waits (bounded) until every node has done `more` rounds of its e-mail sender beyond now:
/// whatever they were going to send by then, they have.
async fn rounds_pass(nodes: &[&NodeProcess], more: u64) {
    for node in nodes {
        let start = counter(node, "room_mail_rounds").await;
        let done = tokio::time::timeout(WAIT, async {
            while counter(node, "room_mail_rounds").await < start + more {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert!(done.is_ok(), "the sender did {more} more rounds in time");
    }
}

/// The portal, through a node's integration API.
struct Portal(SocketAddr);

impl Portal {
    async fn call(&self, method: &str, path: &str, body: Value) {
        let (status, answer) = http(
            self.0,
            method,
            path,
            &[("x-api-key", API_KEY)],
            Some(&body.to_string()),
        )
        .await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {answer}"
        );
    }

    async fn lecture(&self, id: &str, starts_at: UnixMillis, archive: Option<UnixMillis>) {
        let body = json!({
            "title": format!("統計入門 {id}"), "starts_at": starts_at.0,
            "ends_at": starts_at.plus_ms(90 * MIN).0, "rows": 5, "cols": 5,
            "archive_available_at": archive.map(|t| t.0),
            "staff": [{"account": "sensei", "role": "instructor"}],
        });
        self.call("PUT", &format!("/api/v1/integration/lectures/{id}"), body)
            .await;
    }

    async fn person(&self, id: &str, kind: &str, email: Option<&str>) {
        let company_email = (kind != "individual").then_some(email).flatten();
        self.call(
            "PUT",
            &format!("/api/v1/integration/accounts/{id}"),
            json!({"kind": kind, "email": company_email}),
        )
        .await;
        if kind == "individual" {
            self.call(
                "PUT",
                &format!("/api/v1/integration/accounts/{id}/profile"),
                json!({"nickname": id, "email": email}),
            )
            .await;
        }
    }

    async fn purchase(&self, id: &str, buyer: &str, lecture: &str, method: &str, status: &str) {
        let body = json!({"buyer": buyer, "lecture": lecture, "quantity": 2, "modality": "online",
                          "payment_method": method, "status": status});
        self.call("PUT", &format!("/api/v1/integration/purchases/{id}"), body)
            .await;
    }

    /// The people of every scenario: `ken` bought the lecture and `aya` holds a seat of her
    /// company's; `taken` held one until the company took it back; `cancelled`, `refunded`
    /// and `unpaid` (konbini) bought but are not admitted; `nomail` is admitted but has no
    /// e-mail; `sensei` teaches it; `acme` is the company.
    async fn people(&self) {
        self.person("acme", "corporate", Some("admin@acme.example.jp"))
            .await;
        for who in [
            "ken",
            "aya",
            "taken",
            "cancelled",
            "refunded",
            "unpaid",
            "sensei",
        ] {
            self.person(who, "individual", Some(&format!("{who}@example.jp")))
                .await;
        }
        self.person("nomail", "individual", None).await;
        for who in ["aya", "taken"] {
            self.call(
                "PUT",
                "/api/v1/integration/links",
                json!({"individual": who, "company_email": "admin@acme.example.jp"}),
            )
            .await;
        }
    }

    /// `lecture` bought by everyone of [`Portal::people`] as described there.
    async fn purchases(&self, lecture: &str) {
        self.purchase(&format!("{lecture}-ken"), "ken", lecture, "card", "paid")
            .await;
        self.purchase(
            &format!("{lecture}-nomail"),
            "nomail",
            lecture,
            "card",
            "paid",
        )
        .await;
        self.purchase(
            &format!("{lecture}-c"),
            "cancelled",
            lecture,
            "card",
            "cancelled",
        )
        .await;
        self.purchase(
            &format!("{lecture}-r"),
            "refunded",
            lecture,
            "card",
            "refunded",
        )
        .await;
        self.purchase(
            &format!("{lecture}-u"),
            "unpaid",
            lecture,
            "konbini",
            "awaiting_payment",
        )
        .await;
        let seats = format!("{lecture}-acme");
        self.purchase(&seats, "acme", lecture, "card", "paid").await;
        for who in ["aya", "taken"] {
            self.call(
                "PUT",
                &format!("/api/v1/integration/purchases/{seats}/allocations/{who}"),
                json!({}),
            )
            .await;
        }
        self.call(
            "DELETE",
            &format!("/api/v1/integration/purchases/{seats}/allocations/taken"),
            json!({}),
        )
        .await;
    }

    /// A lecture first scheduled ten days ahead (no e-mail due), bought, then moved to start
    /// at `starts_at`.
    async fn bought_lecture(&self, id: &str, starts_at: UnixMillis) {
        self.lecture(id, now().plus_ms(10 * DAY), None).await;
        self.purchases(id).await;
        self.lecture(id, starts_at, None).await;
    }
}

/// Japan time's date and clock of `at`: (`2026年12月1日`, `19:00`).
fn japan(at: UnixMillis) -> (String, String) {
    let offset = time::UtcOffset::from_hms(9, 0, 0).expect("+09:00");
    let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(at.0 / 1000).expect("fits"))
        .expect("a time")
        .to_offset(offset);
    (
        format!("{}年{}月{}日", t.year(), u8::from(t.month()), t.day()),
        format!("{:02}:{:02}", t.hour(), t.minute()),
    )
}

/// A start 23 hours from now, on a whole minute: within the default 24-hour lead.
fn tomorrow() -> UnixMillis {
    let t = now().plus_ms(23 * HOUR);
    UnixMillis(t.0 - t.0 % MIN)
}

fn to(messages: &[Received], who: &str) -> Vec<Received> {
    let address = format!("{who}@example.jp");
    messages
        .iter()
        .filter(|m| m.to == [address.clone()])
        .cloned()
        .collect()
}

/// Exactly one message to each of `who`, nobody else, with `subject` in its subject.
fn one_each(messages: &[Received], subject: &str, who: &[&str]) -> bool {
    let about: Vec<Received> = messages
        .iter()
        .filter(|m| m.subject.contains(subject))
        .cloned()
        .collect();
    about.len() == who.len() && who.iter().all(|w| to(&about, w).len() == 1)
}

/// The reminder as a learner reads it: the title, the start and doors-open times in Japan
/// time in both languages, the link to My page, from the configured sender.
fn assert_reminder(m: &Received, lecture: &str, starts_at: UnixMillis) {
    let (date, start) = japan(starts_at);
    let (_, doors) = japan(starts_at.minus_ms(HOUR));
    assert!(m.from.contains("lectures@example.jp"), "{m:?}");
    assert!(m.subject.contains(&format!("統計入門 {lecture}")), "{m:?}");
    let line = |prefix: &str| {
        m.body
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("a line `{prefix}` in {}", m.body))
            .to_owned()
    };
    let ja_start = line("開始: ");
    assert!(
        ja_start.contains(&date) && ja_start.contains(&start),
        "{ja_start}"
    );
    assert!(line("入室開始: ").contains(&doors), "{}", m.body);
    assert!(line("Starts: ").contains(&start), "{}", m.body);
    assert!(line("Doors open: ").contains(&doors), "{}", m.body);
    assert!(m.body.contains(MY_PAGE), "{}", m.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_postgresql_remind_each_learner_once_and_announce_cancellations_and_archives()
{
    let admin = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) => url,
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("the mail tests need PostgreSQL: set TEST_DATABASE_URL (scripts/test does)")
        }
        Err(_) => {
            eprintln!("TEST_DATABASE_URL is not set: the two-node mail test is skipped");
            return;
        }
    };
    let db = fresh_postgres(&admin, "two").await;
    // A slow server: while one node is sending a message, the other's rounds come by.
    let smtp = SmtpServer::start_slow(1.5);
    let dir = folder("two");
    let config = config(&dir, smtp.port, 5);
    let a = NodeProcess::start(&["--config", &config, "--database-url", &db]);
    let b = NodeProcess::start(&["--config", &config, "--database-url", &db]);
    let portal = Portal(a.addr);
    portal.people().await;

    // Both nodes race for the reminders of a lecture that starts tomorrow.
    let starts_at = tomorrow();
    portal.bought_lecture("soon", starts_at).await;
    let got = smtp
        .wait_for(ARRIVES, "a reminder to ken and aya", |m| {
            one_each(m, "Reminder", &["ken", "aya"])
        })
        .await;
    assert_reminder(&to(&got, "ken")[0], "soon", starts_at);
    assert_reminder(&to(&got, "aya")[0], "soon", starts_at);
    // Both nodes look again (twice each): nothing more goes out.
    rounds_pass(&[&a, &b], 2).await;
    assert_eq!(smtp.received().len(), 2, "{:#?}", smtp.received());
    assert_eq!(
        counter(&a, "room_mail_sent").await + counter(&b, "room_mail_sent").await,
        2
    );
    assert_eq!(
        queue(&db, "soon").await,
        [
            ("aya".into(), "reminder".into(), "sent".into(), 1),
            ("ken".into(), "reminder".into(), "sent".into(), 1),
        ]
    );

    // The portal cancels a lecture next week through node b, then refunds ken at once: the
    // notice still reaches everyone who was admitted when it was cancelled.
    portal.bought_lecture("off", now().plus_ms(7 * DAY)).await;
    Portal(b.addr)
        .call(
            "POST",
            "/api/v1/integration/lectures/off/cancel",
            json!({"reason": "講師急病のため"}),
        )
        .await;
    portal
        .call(
            "POST",
            "/api/v1/integration/purchases/off-ken/status",
            json!({"status": "refunded"}),
        )
        .await;
    let got = smtp
        .wait_for(ARRIVES, "the cancellation to ken and aya", |m| {
            one_each(m, "Cancelled", &["ken", "aya"])
        })
        .await;
    let notice = got
        .iter()
        .find(|m| m.subject.contains("Cancelled") && m.to == ["ken@example.jp"])
        .expect("ken's notice");
    assert!(
        notice.subject.contains("【開講中止】統計入門 off"),
        "{notice:?}"
    );
    assert!(
        notice.body.contains("理由: 講師急病のため"),
        "{}",
        notice.body
    );
    assert!(notice.body.contains(MY_PAGE), "{}", notice.body);

    // A lecture held two days ago whose archive the portal has just made available.
    let held = now().minus_ms(2 * DAY);
    portal.bought_lecture("past", held).await;
    portal
        .lecture("past", held, Some(now().minus_ms(MIN)))
        .await;
    let got = smtp
        .wait_for(ARRIVES, "the archive notice to ken and aya", |m| {
            one_each(m, "Archive ready", &["ken", "aya"])
        })
        .await;
    let ready = got
        .iter()
        .find(|m| m.subject.contains("Archive ready") && m.to == ["aya@example.jp"])
        .expect("aya's notice");
    assert!(
        ready.subject.contains("【アーカイブ公開】統計入門 past"),
        "{ready:?}"
    );
    assert!(ready.body.contains(MY_PAGE), "{}", ready.body);

    rounds_pass(&[&a, &b], 2).await;
    let all = smtp.received();
    assert_eq!(all.len(), 6, "{all:#?}");
    for refused in [
        "taken",
        "cancelled",
        "refunded",
        "unpaid",
        "sensei",
        "nomail",
    ] {
        assert!(to(&all, refused).is_empty(), "{refused} got {all:#?}");
    }
    assert!(
        all.iter().all(|m| m.to != ["admin@acme.example.jp"]),
        "{all:#?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_on_sqlite_waits_out_an_smtp_outage_and_delivers_once() {
    let mut smtp = SmtpServer::start();
    let dir = folder("outage");
    let config = config(&dir, smtp.port, 2);
    let db = format!("sqlite://{}/mail.db", dir.display());
    let node = NodeProcess::start(&["--config", &config, "--database-url", &db]);
    let portal = Portal(node.addr);
    portal.people().await;

    // The SMTP server is down when the reminders fall due.
    smtp.stop();
    let starts_at = tomorrow();
    portal.bought_lecture("soon", starts_at).await;
    let failed = tokio::time::timeout(ARRIVES, async {
        while counter(&node, "room_mail_retries").await < 2 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(failed.is_ok(), "both attempts failed and are to be retried");
    let waiting = queue(&db, "soon").await;
    assert_eq!(waiting.len(), 2, "{waiting:?}");
    assert!(
        waiting
            .iter()
            .all(|(_, _, state, _)| state == "retry" || state == "sending"),
        "{waiting:?}"
    );

    // It comes back: each learner gets the reminder once.
    smtp.restart();
    let got = smtp
        .wait_for(ARRIVES, "a reminder to ken and aya", |m| {
            one_each(m, "Reminder", &["ken", "aya"])
        })
        .await;
    assert_reminder(&to(&got, "ken")[0], "soon", starts_at);
    rounds_pass(&[&node], 3).await;
    assert_eq!(smtp.received().len(), 2, "{:#?}", smtp.received());
    let sent = queue(&db, "soon").await;
    assert!(
        sent.iter()
            .all(|(_, kind, state, attempts)| kind == "reminder"
                && state == "sent"
                && *attempts >= 2),
        "{sent:?}"
    );
    assert_eq!(counter(&node, "room_mail_sent").await, 2);
    assert_eq!(counter(&node, "room_mail_failed").await, 0);

    // A learner who buys after the reminders went out gets theirs when the lecture's learners
    // are looked up again (every two seconds here), once.
    portal
        .person("late", "individual", Some("late@example.jp"))
        .await;
    portal
        .purchase("soon-late", "late", "soon", "card", "paid")
        .await;
    let got = smtp
        .wait_for(ARRIVES, "the late buyer's reminder", |m| {
            to(m, "late").len() == 1
        })
        .await;
    assert_reminder(&to(&got, "late")[0], "soon", starts_at);
    rounds_pass(&[&node], 3).await;
    assert_eq!(smtp.received().len(), 3, "{:#?}", smtp.received());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A port that takes SMTP connections and never says a word: a sender there hangs until its
/// timeout. The listener lives until the test process ends.
fn silent_smtp() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_dies_while_sending_leaves_its_claim_to_another_after_the_lease() {
    let smtp = SmtpServer::start();
    let dir = folder("crash");
    let db = format!("sqlite://{}/mail.db", dir.display());
    // Node a writes to a server that never answers: it claims both reminders and hangs.
    let silent = dir.join("silent");
    std::fs::create_dir_all(&silent).expect("a folder");
    let silent_config = config(&silent, silent_smtp(), 1);
    let mut a = NodeProcess::start(&["--config", &silent_config, "--database-url", &db]);
    let portal = Portal(a.addr);
    portal.people().await;
    let starts_at = tomorrow();
    portal.bought_lecture("soon", starts_at).await;
    let claimed = tokio::time::timeout(ARRIVES, async {
        loop {
            let q = queue(&db, "soon").await;
            if q.len() == 2 && q.iter().all(|(_, _, state, _)| state == "sending") {
                return q;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("node a claims both reminders");
    assert!(
        claimed.iter().all(|(_, _, _, attempts)| *attempts == 1),
        "{claimed:?}"
    );
    a.kill();

    // Node b, on the same database with a working server, takes the claims over once their
    // lease has run out, and each learner gets the reminder once.
    let b_dir = dir.join("b");
    std::fs::create_dir_all(&b_dir).expect("a folder");
    let b = NodeProcess::start(&[
        "--config",
        &config(&b_dir, smtp.port, 1),
        "--database-url",
        &db,
    ]);
    let got = smtp
        .wait_for(ARRIVES, "the reminders, from node b", |m| {
            one_each(m, "Reminder", &["ken", "aya"])
        })
        .await;
    assert_reminder(&to(&got, "aya")[0], "soon", starts_at);
    rounds_pass(&[&b], 2).await;
    assert_eq!(smtp.received().len(), 2);
    assert_eq!(
        queue(&db, "soon").await,
        [
            ("aya".into(), "reminder".into(), "sent".into(), 2),
            ("ken".into(), "reminder".into(), "sent".into(), 2),
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `n` learners of `lecture`, written straight into the node's records (the portal's API would
/// take a call each): `learner-0000`… with a paid purchase and an e-mail, except every 100th,
/// who has none, and as many again with a refunded purchase. The paid ones with an e-mail.
async fn seed_learners(db: &str, lecture: &str, n: usize) -> Vec<String> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(db)
        .await
        .expect("the database answers");
    let at = i64::try_from(now().0).expect("fits");
    let mut admitted = Vec::new();
    let mut tx = conn.begin().await.expect("a transaction");
    for i in 0..2 * n {
        let (account, paid) = if i < n {
            (format!("learner-{i:04}"), true)
        } else {
            (format!("refunded-{i:04}"), false)
        };
        let email = (i % 100 != 99).then(|| format!("{account}@example.jp"));
        sqlx::query("INSERT INTO accounts (id, kind, email, name, updated_at) VALUES ($1, 'individual', NULL, NULL, $2)")
            .bind(&account)
            .bind(at)
            .execute(&mut *tx)
            .await
            .expect("an account");
        sqlx::query("INSERT INTO profiles (account_id, nickname, email, updated_at) VALUES ($1, $1, $2, $3)")
            .bind(&account)
            .bind(email.clone())
            .bind(at)
            .execute(&mut *tx)
            .await
            .expect("a profile");
        sqlx::query(
            "INSERT INTO purchases (id, buyer_id, lecture_id, quantity, modality, payment_method, status, updated_at) \
             VALUES ($1, $2, $3, 1, 'online', 'card', $4, $5)",
        )
        .bind(format!("{lecture}-{account}"))
        .bind(&account)
        .bind(lecture)
        .bind(if paid { "paid" } else { "refunded" })
        .bind(at)
        .execute(&mut *tx)
        .await
        .expect("a purchase");
        if paid && email.is_some() {
            admitted.push(account);
        }
    }
    tx.commit().await.expect("commits");
    admitted
}

/// How many learners have a cancellation notice of `lecture` queued, sent or judged (the
/// lecture's own row aside).
async fn cancellation_rows(db: &str, lecture: &str) -> i64 {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(db)
        .await
        .expect("the database answers");
    sqlx::query("SELECT COUNT(*) AS n FROM mail_claims WHERE lecture_id = $1 AND kind = 'cancelled' AND account_id <> ''")
        .bind(lecture)
        .fetch_one(&mut conn)
        .await
        .expect("counts")
        .get("n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_lecture_of_thousands_answers_at_once_and_each_learner_gets_one_notice() {
    const LEARNERS: usize = 2_000;
    let smtp = SmtpServer::start();
    let dir = folder("thousands");
    let config = config(&dir, smtp.port, 5);
    let db = format!("sqlite://{}/mail.db", dir.display());
    let node = NodeProcess::start(&["--config", &config, "--database-url", &db]);
    let portal = Portal(node.addr);
    portal.lecture("big", now().plus_ms(7 * DAY), None).await;
    let admitted = seed_learners(&db, "big", LEARNERS).await;
    assert_eq!(admitted.len(), LEARNERS - LEARNERS / 100);

    // The cancellation answers having recorded it, not having queued a notice per learner:
    // the learners are judged afterwards, a bounded batch at a time.
    let asked = std::time::Instant::now();
    portal
        .call(
            "POST",
            "/api/v1/integration/lectures/big/cancel",
            json!({"reason": "気象警報のため"}),
        )
        .await;
    let answered = asked.elapsed();
    let judged = cancellation_rows(&db, "big").await;
    assert!(
        judged < i64::try_from(admitted.len()).expect("fits"),
        "{judged} notices queued by the time the cancellation answered (of {})",
        admitted.len()
    );

    // Every learner is judged once, in the background (bounded wait)…
    let all = i64::try_from(2 * LEARNERS).expect("fits");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    while cancellation_rows(&db, "big").await < all {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {all} learners judged within 180 s",
            cancellation_rows(&db, "big").await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // …and every admitted learner with an e-mail gets exactly one notice; nobody else any.
    let want: Vec<String> = admitted.iter().map(|a| format!("{a}@example.jp")).collect();
    while smtp.received().len() < want.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {} notices within 180 s",
            smtp.received().len(),
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Two more rounds: whatever else the sender was going to send, it has.
    rounds_pass(&[&node], 2).await;
    let got = smtp.received();
    let mut to_whom: Vec<String> = got
        .iter()
        .inspect(|m| assert!(m.subject.contains("Cancelled"), "{m:?}"))
        .flat_map(|m| m.to.clone())
        .collect();
    to_whom.sort();
    assert_eq!(to_whom.len(), want.len(), "one notice each, nobody else");
    assert!(to_whom == want, "the admitted learners, once each");
    assert_eq!(cancellation_rows(&db, "big").await, all);
    // Figures for the record (no threshold: the assertions above decide).
    eprintln!(
        "cancelling a lecture of {LEARNERS}: answered in {answered:?}, {} notices delivered {:?} after the call",
        want.len(),
        asked.elapsed()
    );
    assert_eq!(counter(&node, "room_mail_sent").await, want.len() as u64);
    let _ = std::fs::remove_dir_all(&dir);
}
