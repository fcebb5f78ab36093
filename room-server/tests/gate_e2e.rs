//! The entry gate end to end, on SQLite and on PostgreSQL: the portal fills the records through
//! the integration API, learners and corporate admins use their identity tokens, and rooms
//! obey what the gate decides.

use e2e as common;

use common::{Client, Got, RedisServer, WAIT, http, sqlite_url};
use protocol::ticket::TicketKey;
use protocol::{ClientMsg, CloseCode, Codec, Seat, ServerMsg, UnixMillis};
use room_server::clock::{Clock, ShiftedClock};
use room_server::gate::identity::{DEFAULT_MAX_TOKEN_LIFETIME_SECS, IdentitySettings, TokenIssuer};
use room_server::{Node, config::Config, run};
use serde_json::{Value, json};
use sqlx::Connection;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const API_KEY: &str = "integration-key-integration-key-0123";
const TICKET_SECRET: &[u8] = b"gate-e2e-ticket-secret-0123456789";
const MIN: u64 = 60_000;
const HOUR: u64 = 60 * MIN;

/// The databases every scenario runs on: a SQLite file, and a fresh PostgreSQL database when
/// `TEST_DATABASE_URL` names a server (scripts/test starts one; CI requires it).
async fn databases() -> Vec<String> {
    let mut urls = vec![sqlite_url()];
    match std::env::var("TEST_DATABASE_URL") {
        Ok(admin) => urls.push(fresh_postgres(&admin).await),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!(
                "the gate's tests must also run on PostgreSQL: set TEST_DATABASE_URL (scripts/test does)"
            )
        }
        Err(_) => eprintln!("TEST_DATABASE_URL is not set: these gate tests ran on SQLite only"),
    }
    urls
}

async fn fresh_postgres(admin: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(admin)
        .await
        .expect("PostgreSQL answers");
    let name = format!(
        "gate_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("creates a database");
    let (server, _) = admin
        .rsplit_once('/')
        .expect("a database URL ends with /name");
    format!("{server}/{name}")
}

fn identity() -> IdentitySettings {
    IdentitySettings {
        algorithm: "HS256".into(),
        secret: Some("portal-and-rooms-share-this-secret-0123".into()),
        public_key_pem: None,
        issuer: "https://portal.example.jp".into(),
        audience: "lecture-room".into(),
        max_token_lifetime_secs: DEFAULT_MAX_TOKEN_LIFETIME_SECS,
    }
}

fn ticket_key() -> TicketKey {
    TicketKey::new(TICKET_SECRET.to_vec()).expect("long enough")
}

/// The claims of a five-minute ticket for taro (たろう), a learner of lecture `l`, from `now`.
fn taro_claims(now: UnixMillis) -> protocol::ticket::TicketClaims {
    let now = now.0 / 1000;
    protocol::ticket::TicketClaims {
        lec: "l".into(),
        sub: "taro".into(),
        nick: "たろう".into(),
        role: protocol::Role::Learner,
        iat: now,
        exp: now + 300,
    }
}

/// A node with the portal's identity and integration key configured, on a fixed clock.
struct Portal {
    addr: SocketAddr,
    clock: Arc<ShiftedClock>,
    issuer: TokenIssuer,
    stop: Option<oneshot::Sender<()>>,
    served: Option<JoinHandle<std::io::Result<()>>>,
    db: String,
}

impl Drop for Portal {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Portal {
    async fn start(db: &str) -> Self {
        Self::start_with(db, |_| {}).await
    }

    async fn start_with(db: &str, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::new(ticket_key());
        config.database_url = db.to_owned();
        config.identity = Some(identity());
        config.integration_api_key = Some(API_KEY.into());
        config.limits.tickets_per_min = 10_000;
        config.limits.ticket_burst = 10_000;
        tweak(&mut config);
        let clock = Arc::new(ShiftedClock::new());
        let node = Node::start(config, clock.clone())
            .await
            .expect("the node starts");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let addr = listener.local_addr().expect("an address");
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(run(listener, node, async move {
            let _ = stopped.await;
        }));
        let issuer = TokenIssuer::new(&identity()).expect("HS256");
        Self {
            addr,
            clock,
            issuer,
            stop: Some(stop),
            served: Some(served),
            db: db.to_owned(),
        }
    }

    /// Stops the node as SIGTERM does and waits until it has: its clients closed, what its
    /// rooms reported written to the store.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            tokio::time::timeout(WAIT * 2, served)
                .await
                .expect("the node stops in time")
                .expect("the node's task ends")
                .expect("the node served");
        }
    }

    fn now(&self) -> UnixMillis {
        self.clock.now()
    }

    fn token(&self, user: &str) -> String {
        self.issuer.issue(user, self.now().0 / 1000, 3600)
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, Value) {
        let body = body.map(|b| b.to_string());
        let (status, text) = http(self.addr, method, path, headers, body.as_deref()).await;
        assert!(
            status < 500,
            "{method} {path} answered {status}: {text} ({})",
            self.db
        );
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// The portal calls the integration API; it must succeed.
    async fn portal(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, answer) = self
            .call(method, path, &[("X-Api-Key", API_KEY)], Some(body))
            .await;
        assert!(status < 300, "{method} {path}: {status} {answer}");
        answer
    }

    async fn as_user(
        &self,
        user: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let bearer = format!("Bearer {}", self.token(user));
        self.call(method, path, &[("Authorization", &bearer)], body)
            .await
    }

    async fn ticket(&self, user: &str, lecture: &str) -> (u16, Value) {
        self.as_user(
            user,
            "POST",
            &format!("/api/v1/lectures/{lecture}/ticket"),
            None,
        )
        .await
    }

    async fn refusal(&self, user: &str, lecture: &str) -> String {
        let (status, body) = self.ticket(user, lecture).await;
        if status == 200 {
            return "ok".into();
        }
        assert_eq!(status, 403, "{body}");
        assert!(
            body["message_ja"].as_str().is_some_and(|m| !m.is_empty()),
            "a Japanese message: {body}"
        );
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "an English message: {body}"
        );
        body["error"].as_str().expect("a code").to_owned()
    }

    async fn lecture(&self, id: &str, starts_at: UnixMillis, archive: Option<UnixMillis>) {
        let body = json!({
            "title": format!("講座 {id}"), "starts_at": starts_at.0, "ends_at": starts_at.plus_ms(90 * MIN).0,
            "rows": 5, "cols": 5, "archive_available_at": archive.map(|t| t.0),
            "staff": [{"account": "sensei", "role": "instructor"}],
        });
        self.portal("PUT", &format!("/api/v1/integration/lectures/{id}"), body)
            .await;
    }

    async fn person(&self, id: &str, kind: &str, nickname: Option<&str>) {
        let email = (kind != "individual").then(|| format!("admin@{id}.example.jp"));
        self.portal(
            "PUT",
            &format!("/api/v1/integration/accounts/{id}"),
            json!({"kind": kind, "email": email}),
        )
        .await;
        if let Some(nickname) = nickname {
            self.portal(
                "PUT",
                &format!("/api/v1/integration/accounts/{id}/profile"),
                json!({"nickname": nickname}),
            )
            .await;
        }
    }

    async fn purchase(
        &self,
        id: &str,
        buyer: &str,
        lecture: &str,
        quantity: u32,
        method: &str,
        status: &str,
    ) {
        let body = json!({"buyer": buyer, "lecture": lecture, "quantity": quantity, "modality": "online",
                          "payment_method": method, "status": status});
        self.portal("PUT", &format!("/api/v1/integration/purchases/{id}"), body)
            .await;
    }

    async fn set_status(&self, purchase: &str, status: &str) {
        self.portal(
            "POST",
            &format!("/api/v1/integration/purchases/{purchase}/status"),
            json!({"status": status}),
        )
        .await;
    }

    /// Enters the room with a ticket from the gate.
    async fn enter(&self, user: &str, lecture: &str) -> Client {
        let (status, body) = self.ticket(user, lecture).await;
        assert_eq!(status, 200, "{body}");
        self.enter_with(body["ticket"].as_str().expect("a ticket"), lecture)
            .await
    }

    async fn enter_with(&self, ticket: &str, lecture: &str) -> Client {
        let url = format!("ws://{}/ws/lectures/{lecture}", self.addr);
        let mut client = Client::connect(&url, Codec::MsgPack)
            .await
            .expect("connects");
        client
            .send(&ClientMsg::Hello {
                ticket: ticket.to_owned(),
                resume: None,
            })
            .await;
        client
    }
}

async fn expect_close(client: &mut Client, code: CloseCode) {
    assert_eq!(client.close_code().await, Some(code.code()), "{code:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_reason_and_every_state() {
    for db in databases().await {
        let p = Portal::start(&db).await;
        let now = p.now();
        p.lecture("open", now.plus_ms(30 * MIN), None).await;
        p.lecture("later", now.plus_ms(5 * HOUR), None).await;
        p.lecture("live", now.minus_ms(10 * MIN), None).await;
        p.lecture(
            "past",
            now.minus_ms(48 * HOUR),
            Some(now.plus_ms(24 * HOUR)),
        )
        .await;
        p.lecture(
            "archived",
            now.minus_ms(96 * HOUR),
            Some(now.minus_ms(24 * HOUR)),
        )
        .await;
        p.lecture("called-off", now.plus_ms(30 * MIN), None).await;
        for (id, kind, nick) in [
            ("paid", "individual", Some("たろう")),
            ("pending", "individual", Some("じろう")),
            ("cancelled", "individual", Some("c")),
            ("refunded", "individual", Some("r")),
            ("nonick", "individual", None),
            ("stranger", "individual", Some("s")),
            ("linked", "individual", Some("l")),
            ("acme", "corporate", None),
            ("sensei", "individual", Some("先生")),
        ] {
            p.person(id, kind, nick).await;
        }
        for lecture in ["open", "later", "live", "past", "archived", "called-off"] {
            p.purchase(
                &format!("p-paid-{lecture}"),
                "paid",
                lecture,
                1,
                "card",
                "paid",
            )
            .await;
        }
        p.purchase(
            "p-pending",
            "pending",
            "open",
            1,
            "konbini",
            "awaiting_payment",
        )
        .await;
        p.purchase("p-cancelled", "cancelled", "open", 1, "card", "cancelled")
            .await;
        p.purchase("p-refunded", "refunded", "open", 1, "card", "refunded")
            .await;
        p.purchase("p-nonick", "nonick", "open", 1, "free", "paid")
            .await;
        p.purchase("p-acme", "acme", "open", 5, "card", "paid")
            .await;
        p.portal(
            "PUT",
            "/api/v1/integration/links",
            json!({"individual": "linked", "company_email": "admin@acme.example.jp"}),
        )
        .await;
        p.portal(
            "POST",
            "/api/v1/integration/lectures/called-off/cancel",
            json!({"reason": "講師急病のため"}),
        )
        .await;

        assert_eq!(p.refusal("paid", "open").await, "ok");
        assert_eq!(p.refusal("stranger", "open").await, "not_purchased");
        assert_eq!(p.refusal("pending", "open").await, "payment_pending");
        assert_eq!(p.refusal("cancelled", "open").await, "purchase_cancelled");
        assert_eq!(p.refusal("refunded", "open").await, "purchase_cancelled");
        assert_eq!(
            p.refusal("acme", "open").await,
            "corporate_account_cannot_enter"
        );
        assert_eq!(p.refusal("linked", "open").await, "seat_not_allocated");
        assert_eq!(p.refusal("nonick", "open").await, "profile_incomplete");
        assert_eq!(p.refusal("paid", "later").await, "doors_not_open");
        assert_eq!(p.refusal("paid", "live").await, "ok");
        assert_eq!(p.refusal("paid", "past").await, "lecture_ended");
        assert_eq!(p.refusal("paid", "called-off").await, "lecture_cancelled");
        let (_, body) = p.ticket("paid", "later").await;
        assert_eq!(body["doors_open_at"], json!(now.plus_ms(4 * HOUR).0));
        let (_, body) = p.ticket("paid", "past").await;
        assert_eq!(
            body["archive_available_at"],
            json!(now.plus_ms(24 * HOUR).0)
        );
        let (_, body) = p.ticket("paid", "called-off").await;
        assert_eq!(body["reason"], json!("講師急病のため"));
        let (status, _) = p.ticket("paid", "no-such-lecture").await;
        assert_eq!(status, 404);
        assert_eq!(
            p.refusal("sensei", "later").await,
            "ok",
            "the instructor may enter early"
        );
        let (_, body) = p.ticket("sensei", "later").await;
        assert_eq!(body["role"], json!("instructor"));

        let (status, page) = p.as_user("paid", "GET", "/api/v1/me/lectures", None).await;
        assert_eq!(status, 200);
        let states: std::collections::BTreeMap<String, String> = page["lectures"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|l| {
                (
                    l["id"].as_str().expect("id").to_owned(),
                    l["state"]["state"].as_str().expect("state").to_owned(),
                )
            })
            .collect();
        let expected: std::collections::BTreeMap<String, String> = [
            ("open", "doors_open"),
            ("later", "before_doors"),
            ("live", "live"),
            ("past", "ended"),
            ("archived", "archive_available"),
            ("called-off", "cancelled"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
        assert_eq!(states, expected, "{}", p.db);
        assert_eq!(page["company"], json!(false));
        let (_, page) = p.as_user("acme", "GET", "/api/v1/me/lectures", None).await;
        assert_eq!(
            page["company"],
            json!(true),
            "a company's account: no nickname"
        );
        let (_, page) = p
            .as_user("pending", "GET", "/api/v1/me/lectures", None)
            .await;
        assert_eq!(
            page["lectures"][0]["entry"]["refusal"]["error"],
            json!("payment_pending")
        );
        // A linked employee without a seat yet sees the company's lecture and why not.
        let (_, page) = p
            .as_user("linked", "GET", "/api/v1/me/lectures", None)
            .await;
        assert_eq!(page["lectures"][0]["id"], json!("open"), "{page}");
        assert_eq!(
            page["lectures"][0]["entry"]["refusal"]["error"],
            json!("seat_not_allocated")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doors_open_exactly_one_hour_before_the_start() {
    for db in databases().await {
        let p = Portal::start(&db).await;
        let start = p.now().plus_ms(3 * HOUR);
        p.lecture("l", start, None).await;
        p.person("u", "individual", Some("u")).await;
        p.purchase("p", "u", "l", 1, "card", "paid").await;
        let doors = start.minus_ms(HOUR);
        p.clock.set(doors.minus_ms(1000));
        assert_eq!(p.refusal("u", "l").await, "doors_not_open");
        let (_, page) = p.as_user("u", "GET", "/api/v1/me/lectures", None).await;
        assert_eq!(
            page["lectures"][0]["state"],
            json!({"state": "before_doors", "doors_open_at": doors.0})
        );
        p.clock.set(doors);
        assert_eq!(
            p.refusal("u", "l").await,
            "ok",
            "at doors_open_at (the unit tests check the exact millisecond)"
        );
        let (_, page) = p.as_user("u", "GET", "/api/v1/me/lectures", None).await;
        assert_eq!(page["lectures"][0]["state"]["state"], json!("doors_open"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corporate_seat_is_allocated_used_and_taken_back() {
    for db in databases().await {
        let p = Portal::start(&db).await;
        p.lecture("l", p.now().plus_ms(10 * MIN), None).await;
        p.person("acme", "corporate", None).await;
        p.person("ken", "individual", Some("けん")).await;
        p.person("outsider", "individual", Some("o")).await;
        p.purchase("p-acme", "acme", "l", 1, "card", "paid").await;
        p.portal(
            "PUT",
            "/api/v1/integration/links",
            json!({"individual": "ken", "company_email": "ADMIN@acme.example.jp"}),
        )
        .await;

        let (status, members) = p
            .as_user("acme", "GET", "/api/v1/corporate/members", None)
            .await;
        assert_eq!(status, 200);
        assert_eq!(members["members"][0]["nickname"], json!("けん"));
        let seat = "/api/v1/corporate/purchases/p-acme/allocations";
        let (status, body) = p
            .as_user("acme", "PUT", &format!("{seat}/outsider"), None)
            .await;
        assert_eq!((status, body["error"].clone()), (409, json!("not_linked")));
        let (status, _) = p.as_user("ken", "PUT", &format!("{seat}/ken"), None).await;
        assert_eq!(status, 403, "an individual is not a corporate admin");
        let (status, body) = p.as_user("acme", "PUT", &format!("{seat}/ken"), None).await;
        assert_eq!(status, 200, "{body}");

        let mut ken = p.enter("ken", "l").await;
        assert!(matches!(ken.next().await, Got::Msg(ServerMsg::Welcome(_))));
        ken.send(&ClientMsg::TakeSeat {
            seat: Seat::new(1, 1),
        })
        .await;
        ken.recv_until(|m| matches!(m, ServerMsg::YourSeat { seat: Some(_) }).then_some(()))
            .await;
        let (_, old_ticket) = p.ticket("ken", "l").await;

        let (status, _) = p
            .as_user("acme", "DELETE", &format!("{seat}/ken"), None)
            .await;
        assert_eq!(status, 204);
        expect_close(&mut ken, CloseCode::Revoked).await;
        assert_eq!(p.refusal("ken", "l").await, "seat_not_allocated");
        let mut again = p
            .enter_with(old_ticket["ticket"].as_str().expect("ticket"), "l")
            .await;
        expect_close(&mut again, CloseCode::Revoked).await;

        // The stay is in the company's attendance history, with the seat.
        let mut records = Value::Null;
        for _ in 0..100 {
            let (_, body) = p
                .as_user("acme", "GET", "/api/v1/corporate/attendance", None)
                .await;
            records = body;
            if records["records"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| !r["left_at"].is_null()))
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let stay = &records["records"][0];
        assert_eq!(
            (stay["account"].clone(), stay["seat"].clone()),
            (json!("ken"), json!({"row": 1, "col": 1})),
            "{records}"
        );
        let (status, csv) = http(
            p.addr,
            "GET",
            "/api/v1/corporate/attendance?format=csv",
            &[("Authorization", &format!("Bearer {}", p.token("acme")))],
            None,
        )
        .await;
        assert_eq!(status, 200);
        assert!(
            csv.starts_with(
                "lecture,account,role,entered_at,left_at,seat_row,seat_col\nl,ken,learner,"
            ),
            "{csv}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_konbini_payment_arriving_lets_the_learner_in() {
    for db in databases().await {
        let p = Portal::start(&db).await;
        p.lecture("l", p.now().plus_ms(10 * MIN), None).await;
        p.person("jiro", "individual", Some("じろう")).await;
        p.purchase("p", "jiro", "l", 1, "konbini", "awaiting_payment")
            .await;
        assert_eq!(p.refusal("jiro", "l").await, "payment_pending");
        p.set_status("p", "paid").await;
        let mut jiro = p.enter("jiro", "l").await;
        assert!(matches!(jiro.next().await, Got::Msg(ServerMsg::Welcome(_))));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_removes_a_connected_learner() {
    for db in databases().await {
        let p = Portal::start(&db).await;
        p.lecture("l", p.now().plus_ms(10 * MIN), None).await;
        p.person("taro", "individual", Some("たろう")).await;
        p.person("hanako", "individual", Some("はなこ")).await;
        p.purchase("p-taro", "taro", "l", 1, "card", "paid").await;
        p.purchase("p-hanako", "hanako", "l", 1, "card", "paid")
            .await;
        let mut taro = p.enter("taro", "l").await;
        let mut hanako = p.enter("hanako", "l").await;
        assert!(matches!(taro.next().await, Got::Msg(ServerMsg::Welcome(_))));
        assert!(matches!(
            hanako.next().await,
            Got::Msg(ServerMsg::Welcome(_))
        ));
        p.set_status("p-taro", "refunded").await;
        expect_close(&mut taro, CloseCode::Revoked).await;
        assert_eq!(p.refusal("taro", "l").await, "purchase_cancelled");
        hanako.send(&ClientMsg::Ping { t: 1 }).await;
        hanako
            .recv_until(|m| matches!(m, ServerMsg::Pong { .. }).then_some(()))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_lecture_tells_the_room_why() {
    for db in databases().await {
        let p = Portal::start(&db).await;
        p.lecture("l", p.now().plus_ms(10 * MIN), None).await;
        p.person("taro", "individual", Some("たろう")).await;
        p.purchase("p", "taro", "l", 1, "card", "paid").await;
        let mut taro = p.enter("taro", "l").await;
        assert!(matches!(taro.next().await, Got::Msg(ServerMsg::Welcome(_))));
        p.portal(
            "POST",
            "/api/v1/integration/lectures/l/cancel",
            json!({"reason": "気象警報のため"}),
        )
        .await;
        let phase = taro.recv_until(|m| match m {
            ServerMsg::Phase { phase } => Some(phase.clone()),
            _ => None,
        });
        assert_eq!(
            phase.await,
            protocol::server::Phase::Cancelled {
                reason: "気象警報のため".into()
            }
        );
        expect_close(&mut taro, CloseCode::LectureCancelled).await;
        assert_eq!(p.refusal("taro", "l").await, "lecture_cancelled");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nicknames_are_kept_as_given_and_bad_ones_refused() {
    for db in databases().await {
        let p = Portal::start(&db).await;
        let html = "<img src=x onerror=alert(1)>";
        let (status, _) = p
            .as_user(
                "u",
                "PUT",
                "/api/v1/me/profile",
                Some(json!({"nickname": html})),
            )
            .await;
        assert_eq!(status, 200);
        let (_, profile) = p.as_user("u", "GET", "/api/v1/me/profile", None).await;
        assert_eq!(
            profile["nickname"],
            json!(html),
            "stored as given, never interpreted"
        );
        for bad in ["", " padded", "bell\u{7}", &"x".repeat(41)] {
            let (status, body) = p
                .as_user(
                    "u",
                    "PUT",
                    "/api/v1/me/profile",
                    Some(json!({"nickname": bad})),
                )
                .await;
            assert_eq!(status, 400, "{bad:?}: {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_cannot_take_the_name_of_the_lectures_instructor_or_moderator() {
    for db in databases().await {
        let p = Portal::start(&db).await;
        let now = p.now();
        p.person("sensei", "individual", Some("Yamada Sensei"))
            .await;
        p.person("helper", "individual", Some("アシスタント")).await;
        p.lecture_with_staff(
            "open",
            now.plus_ms(30 * MIN),
            json!([{"account": "sensei", "role": "instructor"}, {"account": "helper", "role": "moderator"}]),
        )
        .await;
        p.lecture_with_staff("other", now.plus_ms(30 * MIN), json!([]))
            .await;
        p.person("mallory", "individual", Some("mallory")).await;
        p.purchase("p-mallory", "mallory", "open", 1, "card", "paid")
            .await;
        p.person("bystander", "individual", None).await;
        p.purchase("p-bystander", "bystander", "other", 1, "card", "paid")
            .await;
        assert_eq!(p.refusal("mallory", "open").await, "ok");

        // The portal may write any name (its records are its own); the Enter button refuses
        // a learner under the staff's, however it is written.
        for taken in [
            "Yamada Sensei",
            "ＹＡＭＡＤＡ　ＳＥＮＳＥＩ",
            "yamadasensei",
            "ｱｼｽﾀﾝﾄ",
            "アシスタント",
        ] {
            p.portal(
                "PUT",
                "/api/v1/integration/accounts/mallory/profile",
                json!({"nickname": taken}),
            )
            .await;
            assert_eq!(
                p.refusal("mallory", "open").await,
                "nickname_taken_by_staff",
                "{taken} ({db})"
            );
        }
        let (_, page) = p
            .as_user("mallory", "GET", "/api/v1/me/lectures", None)
            .await;
        assert_eq!(
            page["lectures"][0]["entry"]["refusal"]["error"],
            json!("nickname_taken_by_staff"),
            "My page says why before the button is pressed"
        );
        // The staff keep their own name.
        assert_eq!(p.refusal("sensei", "open").await, "ok");

        // Setting it oneself is refused at once, with the reason in both languages, and the
        // old name is kept.
        let (status, _) = p
            .as_user(
                "mallory",
                "PUT",
                "/api/v1/me/profile",
                Some(json!({"nickname": "mallory"})),
            )
            .await;
        assert_eq!(status, 200);
        let (status, body) = p
            .as_user(
                "mallory",
                "PUT",
                "/api/v1/me/profile",
                Some(json!({"nickname": "Ｙａｍａｄａ Ｓｅｎｓｅｉ"})),
            )
            .await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(body["error"], json!("nickname_taken_by_staff"));
        assert!(body["message_ja"].as_str().is_some_and(|m| !m.is_empty()));
        let (_, profile) = p
            .as_user("mallory", "GET", "/api/v1/me/profile", None)
            .await;
        assert_eq!(profile["nickname"], json!("mallory"));
        assert_eq!(p.refusal("mallory", "open").await, "ok");

        // Someone who attends none of their lectures may be called that: the name is the
        // staff's only where they teach.
        let (status, body) = p
            .as_user(
                "bystander",
                "PUT",
                "/api/v1/me/profile",
                Some(json!({"nickname": "Yamada Sensei"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(p.refusal("bystander", "other").await, "ok");
    }
}

/// A request and the status it must get: method, path, headers, body, status.
type Case<'a> = (
    &'a str,
    &'a str,
    Vec<(&'a str, &'a str)>,
    Option<&'a str>,
    u16,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_clear_4xx_answers_never_5xx() {
    let db = sqlite_url();
    let p = Portal::start(&db).await;
    let key = [("X-Api-Key", API_KEY)];
    let cases: Vec<Case<'_>> = vec![
        ("GET", "/api/v1/me/lectures", vec![], None, 401),
        (
            "GET",
            "/api/v1/me/lectures",
            vec![("Authorization", "Bearer not.a.jwt")],
            None,
            401,
        ),
        (
            "GET",
            "/api/v1/me/lectures",
            vec![("Authorization", "Basic abc")],
            None,
            401,
        ),
        (
            "PUT",
            "/api/v1/integration/lectures/x",
            vec![],
            Some("{}"),
            403,
        ),
        (
            "PUT",
            "/api/v1/integration/lectures/x",
            vec![("X-Api-Key", "wrong")],
            Some("{}"),
            403,
        ),
        (
            "PUT",
            "/api/v1/integration/lectures/x",
            key.to_vec(),
            Some("{not json"),
            400,
        ),
        (
            "PUT",
            "/api/v1/integration/lectures/x",
            key.to_vec(),
            Some(r#"{"title": 5}"#),
            400,
        ),
        (
            "PUT",
            "/api/v1/integration/lectures/x",
            key.to_vec(),
            Some(r#"{"title":"t","starts_at":2,"ends_at":1,"rows":1,"cols":1}"#),
            400,
        ),
        (
            "PUT",
            "/api/v1/integration/purchases/p",
            key.to_vec(),
            Some(
                r#"{"buyer":"b","lecture":"l","quantity":1,"modality":"online","payment_method":"gold","status":"paid"}"#,
            ),
            400,
        ),
        (
            "POST",
            "/api/v1/integration/purchases/none/status",
            key.to_vec(),
            Some(r#"{"status":"paid"}"#),
            404,
        ),
        (
            "POST",
            "/api/v1/integration/lectures/none/cancel",
            key.to_vec(),
            Some(r#"{"reason":"x"}"#),
            404,
        ),
        (
            "PUT",
            "/api/v1/integration/links",
            key.to_vec(),
            Some(r#"{"individual":"a","company_email":"no@x.jp"}"#),
            404,
        ),
        (
            "POST",
            "/api/v1/demo/sign-in",
            vec![],
            Some(r#"{"user":"x"}"#),
            404,
        ),
        (
            "GET",
            "/api/v1/corporate/attendance?format=xml",
            vec![],
            None,
            401,
        ),
    ];
    for (method, path, headers, body, expected) in cases {
        let (status, answer) = http(p.addr, method, path, &headers, body).await;
        assert_eq!(status, expected, "{method} {path} {body:?}: {answer}");
        let parsed: Value =
            serde_json::from_str(&answer).unwrap_or_else(|_| panic!("a JSON body: {answer}"));
        assert!(parsed["error"].is_string(), "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_covers_every_http_endpoint() {
    let p = Portal::start(&sqlite_url()).await;
    let (status, doc) = p.call("GET", "/api/openapi.json", &[], None).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/api/v1/me/lectures",
        "/api/v1/me/profile",
        "/api/v1/lectures/{id}/ticket",
        "/api/v1/corporate/members",
        "/api/v1/corporate/purchases",
        "/api/v1/corporate/purchases/{purchase}/allocations/{individual}",
        "/api/v1/corporate/attendance",
        "/api/v1/integration/lectures/{id}",
        "/api/v1/integration/lectures/{id}/cancel",
        "/api/v1/integration/lectures/{id}/archive",
        "/api/archive/{lecture}",
        "/api/v1/me/archives",
        "/archive-media/{lecture}/{name}",
        "/api/v1/integration/accounts/{id}",
        "/api/v1/integration/accounts/{id}/profile",
        "/api/v1/integration/links",
        "/api/v1/integration/purchases/{id}",
        "/api/v1/integration/purchases/{id}/status",
        "/api/v1/integration/purchases/{purchase}/allocations/{individual}",
        "/api/v1/sign-in",
        "/api/v1/demo/users",
        "/api/v1/demo/sign-in",
        "/ws/lectures/{lecture}",
        "/ws/check",
        "/api/v1/check/download",
        "/healthz",
        "/readyz",
        "/metrics",
        "/drain",
    ] {
        assert!(paths.contains_key(path), "{path} is missing");
    }
    let ticket = &doc["paths"]["/api/v1/lectures/{id}/ticket"]["post"]["responses"];
    for status in ["200", "401", "403", "404", "429", "503"] {
        assert!(ticket[status].is_object(), "ticket response {status}");
    }
    // Refusals before any handler: a long path on every operation, a large body where one is sent.
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("a path item") {
            assert!(
                op["responses"]["414"].is_object(),
                "{method} {path} documents 414"
            );
            if op.get("requestBody").is_some() {
                assert!(
                    op["responses"]["413"].is_object(),
                    "{method} {path} documents 413"
                );
            }
        }
    }
    assert!(
        doc["paths"]["/api/v1/integration/lectures/{id}"]["put"]["responses"]["413"].is_object()
    );
    let socket = &doc["paths"]["/ws/lectures/{lecture}"]["get"]["responses"];
    for status in ["101", "400", "403", "404", "429", "503"] {
        assert!(socket[status].is_object(), "room socket response {status}");
    }
    assert!(doc["components"]["schemas"]["RefusalBody"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_with_their_own_purchase_stays_when_the_company_takes_its_seat_back() {
    for db in databases().await {
        let p = Portal::start(&db).await;
        p.lecture("l", p.now().plus_ms(10 * MIN), None).await;
        p.person("acme", "corporate", None).await;
        p.person("ken", "individual", Some("けん")).await;
        p.person("yui", "individual", Some("ゆい")).await;
        p.purchase("p-acme", "acme", "l", 2, "card", "paid").await;
        p.purchase("p-ken", "ken", "l", 1, "card", "paid").await;
        let mut clients = Vec::new();
        for who in ["ken", "yui"] {
            p.portal(
                "PUT",
                "/api/v1/integration/links",
                json!({"individual": who, "company_email": "admin@acme.example.jp"}),
            )
            .await;
            p.portal(
                "PUT",
                &format!("/api/v1/integration/purchases/p-acme/allocations/{who}"),
                json!({}),
            )
            .await;
            let mut client = p.enter(who, "l").await;
            assert!(matches!(
                client.next().await,
                Got::Msg(ServerMsg::Welcome(_))
            ));
            clients.push(client);
        }
        let (mut ken, mut yui) = (clients.remove(0), clients.remove(0));
        for who in ["ken", "yui"] {
            let path = format!("/api/v1/integration/purchases/p-acme/allocations/{who}");
            let (status, _) = p
                .call("DELETE", &path, &[("X-Api-Key", API_KEY)], None)
                .await;
            assert_eq!(status, 204);
        }
        // Yui had only the company's seat: out. Revocations reach the room in order, so ken's,
        // had there been one, would have come first.
        expect_close(&mut yui, CloseCode::Revoked).await;
        // Ken is still admitted by his own purchase: still in the room.
        ken.send(&ClientMsg::Ping { t: 9 }).await;
        let pong = ken
            .recv_until(|m| match m {
                ServerMsg::Pong { t, .. } => Some(*t),
                _ => None,
            })
            .await;
        assert_eq!(pong, 9);
        assert_eq!(p.refusal("ken", "l").await, "ok");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lecture_moved_by_the_portal_is_moved_in_its_running_room() {
    for db in databases().await {
        let p = Portal::start(&db).await;
        let start = p.now().plus_ms(10 * MIN);
        p.lecture("l", start, None).await;
        p.person("taro", "individual", Some("たろう")).await;
        p.purchase("p", "taro", "l", 1, "card", "paid").await;
        let mut taro = p.enter("taro", "l").await;
        assert!(matches!(taro.next().await, Got::Msg(ServerMsg::Welcome(_))));
        let later = start.plus_ms(30 * MIN);
        p.lecture("l", later, None).await;
        let moved = taro
            .recv_until(|m| match m {
                ServerMsg::Lecture { lecture } => Some(lecture.starts_at),
                _ => None,
            })
            .await;
        assert_eq!(moved, later);
    }
}

impl Portal {
    /// A ticket from the gate, which must give one.
    async fn ticket_of(&self, user: &str, lecture: &str) -> String {
        let (status, body) = self.ticket(user, lecture).await;
        assert_eq!(status, 200, "{body}");
        body["ticket"].as_str().expect("a ticket").to_owned()
    }

    /// Links `individual` to the company registered as `admin@{company}.example.jp`.
    async fn link(&self, individual: &str, company: &str) {
        self.portal(
            "PUT",
            "/api/v1/integration/links",
            json!({"individual": individual, "company_email": format!("admin@{company}.example.jp")}),
        )
        .await;
    }

    /// The portal gives `individual` a seat of `purchase`.
    async fn allocate(&self, purchase: &str, individual: &str) {
        self.portal(
            "PUT",
            &format!("/api/v1/integration/purchases/{purchase}/allocations/{individual}"),
            json!({}),
        )
        .await;
    }

    /// The portal (re)schedules lecture `id` with this staff list.
    async fn lecture_with_staff(&self, id: &str, starts_at: UnixMillis, staff: Value) {
        let body = json!({
            "title": format!("講座 {id}"), "starts_at": starts_at.0,
            "ends_at": starts_at.plus_ms(90 * MIN).0, "rows": 5, "cols": 5, "staff": staff,
        });
        self.portal("PUT", &format!("/api/v1/integration/lectures/{id}"), body)
            .await;
    }
}

/// Reads the welcome a client must get first.
async fn welcomed(client: &mut Client) -> protocol::server::Welcome {
    match client.next().await {
        Got::Msg(ServerMsg::Welcome(w)) => *w,
        other => panic!("expected a welcome, got {other:?}"),
    }
}

/// `who` enters `lecture`, is welcomed and leaves: one stay in the records.
async fn attend(p: &Portal, who: &str, lecture: &str) {
    let mut client = p.enter(who, lecture).await;
    welcomed(&mut client).await;
    client.send(&ClientMsg::Leave).await;
    assert_eq!(
        client.close_code().await,
        Some(1000),
        "{who} left {lecture}"
    );
}

/// The person is still in the room: their ping is answered.
async fn still_in(client: &mut Client, t: u64) {
    client.send(&ClientMsg::Ping { t }).await;
    let pong = client
        .recv_until(|m| match m {
            ServerMsg::Pong { t, .. } => Some(*t),
            _ => None,
        })
        .await;
    assert_eq!(pong, t);
}

/// Rounds of the allocation race (before the fix, all three admins won it in 15 of 15).
const RACE_ROUNDS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_allocations_of_the_last_seat_at_once_give_it_to_exactly_one() {
    for db in databases().await {
        let p = Portal::start(&db).await;
        p.person("acme", "corporate", None).await;
        let people = ["ken", "yui", "sho"];
        for who in people {
            p.person(who, "individual", Some(who)).await;
            p.link(who, "acme").await;
        }
        for round in 0..RACE_ROUNDS {
            let lecture = format!("race-{round}");
            let purchase = format!("p-race-{round}");
            p.lecture(&lecture, p.now().plus_ms(10 * MIN), None).await;
            p.purchase(&purchase, "acme", &lecture, 1, "card", "paid")
                .await;
            let paths: Vec<String> = people
                .iter()
                .map(|who| format!("/api/v1/corporate/purchases/{purchase}/allocations/{who}"))
                .collect();
            let answers = futures_util::future::join_all(
                paths
                    .iter()
                    .map(|path| p.as_user("acme", "PUT", path, None)),
            )
            .await;
            let won = answers.iter().filter(|(status, _)| *status == 200).count();
            assert_eq!(won, 1, "round {round} on {}: {answers:?}", p.db);
            for (status, body) in &answers {
                if *status != 200 {
                    assert_eq!(
                        (*status, body["error"].clone()),
                        (409, json!("no_seats_left"))
                    );
                }
            }
            let mut admitted = Vec::new();
            for who in people {
                if p.refusal(who, &lecture).await == "ok" {
                    admitted.push(who);
                }
            }
            assert_eq!(admitted.len(), 1, "round {round} on {}: {admitted:?}", p.db);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_beyond_a_lowered_quantity_admits_nobody() {
    for db in databases().await {
        let p = Portal::start(&db).await;
        p.lecture("l", p.now().plus_ms(10 * MIN), None).await;
        p.person("acme", "corporate", None).await;
        for who in ["ken", "yui"] {
            p.person(who, "individual", Some(who)).await;
            p.link(who, "acme").await;
        }
        p.purchase("p-acme", "acme", "l", 2, "card", "paid").await;
        // Ken's seat is the first allocated, yui's the second.
        p.allocate("p-acme", "ken").await;
        p.allocate("p-acme", "yui").await;
        let mut ken = p.enter("ken", "l").await;
        welcomed(&mut ken).await;
        let mut yui = p.enter("yui", "l").await;
        welcomed(&mut yui).await;
        // The portal lowers the quantity: the second seat is no longer bought.
        p.purchase("p-acme", "acme", "l", 1, "card", "paid").await;
        expect_close(&mut yui, CloseCode::Revoked).await;
        assert_eq!(p.refusal("yui", "l").await, "seat_not_allocated");
        assert_eq!(p.refusal("ken", "l").await, "ok");
        still_in(&mut ken, 3).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_while_no_room_is_open_refuses_the_old_ticket() {
    for db in databases().await {
        let p = Portal::start(&db).await;
        p.lecture("l", p.now().plus_ms(10 * MIN), None).await;
        p.person("taro", "individual", Some("たろう")).await;
        p.person("hanako", "individual", Some("はなこ")).await;
        p.purchase("p-taro", "taro", "l", 1, "card", "paid").await;
        p.purchase("p-hanako", "hanako", "l", 1, "card", "paid")
            .await;
        // Nobody has entered: no room of the lecture is open anywhere.
        let old = p.ticket_of("taro", "l").await;
        p.set_status("p-taro", "refunded").await;
        let mut taro = p.enter_with(&old, "l").await;
        expect_close(&mut taro, CloseCode::Revoked).await;
        let mut hanako = p.enter("hanako", "l").await;
        welcomed(&mut hanako).await;
        drop(hanako);
        // The refusal is the records', so it outlives the node.
        p.stop().await;
        let p = Portal::start(&db).await;
        let mut taro = p.enter_with(&old, "l").await;
        expect_close(&mut taro, CloseCode::Revoked).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_removed_without_return_stays_out_after_a_restart() {
    for db in databases().await {
        let p = Portal::start(&db).await;
        p.lecture("l", p.now().plus_ms(10 * MIN), None).await;
        p.person("sensei", "individual", Some("先生")).await;
        p.person("taro", "individual", Some("たろう")).await;
        p.person("hanako", "individual", Some("はなこ")).await;
        p.purchase("p-taro", "taro", "l", 1, "card", "paid").await;
        p.purchase("p-hanako", "hanako", "l", 1, "card", "paid")
            .await;
        let mut sensei = p.enter("sensei", "l").await;
        welcomed(&mut sensei).await;
        let mut taro = p.enter("taro", "l").await;
        let taro_in = welcomed(&mut taro).await;
        let old = p.ticket_of("taro", "l").await;
        sensei
            .send(&ClientMsg::Remove {
                user: taro_in.you.user.clone(),
                allow_return: false,
            })
            .await;
        expect_close(&mut taro, CloseCode::Banned).await;
        drop(sensei);
        // A restart forgets the room; the ban is in the records.
        p.stop().await;
        let p = Portal::start(&db).await;
        assert_eq!(p.refusal("taro", "l").await, "banned");
        let mut again = p.enter_with(&old, "l").await;
        expect_close(&mut again, CloseCode::Banned).await;
        let fresh = ticket_key().mint(&taro_claims(p.now()));
        let mut fresh = p.enter_with(&fresh, "l").await;
        expect_close(&mut fresh, CloseCode::Banned).await;
        let mut hanako = p.enter("hanako", "l").await;
        welcomed(&mut hanako).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_dropped_or_moved_by_the_portal_are_taken_out_and_their_tickets_refused() {
    for db in databases().await {
        let p = Portal::start(&db).await;
        let start = p.now().plus_ms(10 * MIN);
        for (who, nick) in [("sensei", "先生"), ("kyoko", "京子"), ("taro", "たろう")] {
            p.person(who, "individual", Some(nick)).await;
        }
        p.purchase("p-taro", "taro", "l", 1, "card", "paid").await;
        p.lecture_with_staff(
            "l",
            start,
            json!([{"account": "sensei", "role": "instructor"}, {"account": "kyoko", "role": "moderator"}]),
        )
        .await;
        let mut sensei = p.enter("sensei", "l").await;
        assert_eq!(
            welcomed(&mut sensei).await.you.role,
            protocol::Role::Instructor
        );
        let old = p.ticket_of("sensei", "l").await;
        let mut kyoko = p.enter("kyoko", "l").await;
        welcomed(&mut kyoko).await;
        let mut taro = p.enter("taro", "l").await;
        welcomed(&mut taro).await;

        // The portal drops the instructor and makes the moderator the instructor.
        p.lecture_with_staff(
            "l",
            start,
            json!([{"account": "kyoko", "role": "instructor"}]),
        )
        .await;
        expect_close(&mut sensei, CloseCode::Revoked).await;
        expect_close(&mut kyoko, CloseCode::Revoked).await;
        still_in(&mut taro, 4).await;
        assert_eq!(p.refusal("sensei", "l").await, "not_purchased");
        let mut again = p.enter_with(&old, "l").await;
        expect_close(&mut again, CloseCode::Revoked).await;

        // A ticket issued after the change carries the new role. (Tickets count whole seconds:
        // one from the very second of the change would be refused with the old ones.)
        p.clock.set(p.now().plus_ms(1500));
        let (status, body) = p.ticket("kyoko", "l").await;
        assert_eq!((status, body["role"].clone()), (200, json!("instructor")));
        let mut kyoko = p
            .enter_with(body["ticket"].as_str().expect("a ticket"), "l")
            .await;
        assert_eq!(
            welcomed(&mut kyoko).await.you.role,
            protocol::Role::Instructor
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_dropped_from_the_config_file_lose_their_tickets_when_the_node_restarts() {
    let db = sqlite_url();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    let starts_at = UnixMillis(u64::try_from(now.as_millis()).expect("fits")).plus_ms(10 * MIN);
    let configured = move |staff: Value| {
        move |config: &mut Config| {
            config.lectures = vec![
                serde_json::from_value(json!({
                    "id": "l", "title": "設定ファイルの講座", "starts_at": starts_at.0,
                    "ends_at": starts_at.0 + 90 * MIN, "rows": 3, "cols": 4, "emotions": [],
                    "archive_available_at": null, "status": "scheduled", "cancel_reason": null,
                    "started_at": null, "ended_at": null, "staff": staff,
                }))
                .expect("a lecture"),
            ];
        }
    };
    let p = Portal::start_with(
        &db,
        configured(json!([{"account": "sensei", "role": "instructor"}, {"account": "kyoko", "role": "moderator"}])),
    )
    .await;
    for (who, nick) in [("sensei", "先生"), ("kyoko", "京子")] {
        p.person(who, "individual", Some(nick)).await;
    }
    let sensei = p.ticket_of("sensei", "l").await;
    let kyoko = p.ticket_of("kyoko", "l").await;
    p.stop().await;

    // The operator drops the instructor from the file and restarts the node.
    let only_kyoko = json!([{"account": "kyoko", "role": "moderator"}]);
    let p = Portal::start_with(&db, configured(only_kyoko.clone())).await;
    let mut dropped = p.enter_with(&sensei, "l").await;
    expect_close(&mut dropped, CloseCode::Revoked).await;
    let mut kept = p.enter_with(&kyoko, "l").await;
    welcomed(&mut kept).await;
    drop(kept);
    // The portal cancels the lecture; a restart with the same file does not undo it.
    p.portal(
        "POST",
        "/api/v1/integration/lectures/l/cancel",
        json!({"reason": "講師の急病のため"}),
    )
    .await;
    p.stop().await;
    let p = Portal::start_with(&db, configured(only_kyoko)).await;
    assert_eq!(p.refusal("kyoko", "l").await, "lecture_cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corporate_attendance_shows_only_the_stays_the_company_paid_for() {
    for db in databases().await {
        let p = Portal::start(&db).await;
        p.lecture("own", p.now().plus_ms(10 * MIN), None).await;
        p.lecture("corp", p.now().plus_ms(10 * MIN), None).await;
        p.person("acme", "corporate", None).await;
        p.person("ken", "individual", Some("けん")).await;
        p.person("yui", "individual", Some("ゆい")).await;
        p.purchase("p-ken-own", "ken", "own", 1, "card", "paid")
            .await;
        p.purchase("p-yui-corp", "yui", "corp", 1, "card", "paid")
            .await;
        // Ken attends a lecture he bought himself, before and after linking to the company.
        attend(&p, "ken", "own").await;
        p.link("ken", "acme").await;
        p.link("yui", "acme").await;
        attend(&p, "ken", "own").await;
        // Yui attends the company's lecture, but on her own purchase.
        attend(&p, "yui", "corp").await;
        // Ken attends it on the company's seat: the one stay the company paid for, last.
        p.purchase("p-acme", "acme", "corp", 2, "card", "paid")
            .await;
        p.allocate("p-acme", "ken").await;
        attend(&p, "ken", "corp").await;

        // Stays are written in order, so once ken's last one shows, all of them are written.
        let bearer = format!("Bearer {}", p.token("acme"));
        let deadline = tokio::time::Instant::now() + WAIT;
        let records = loop {
            let (_, body) = p
                .as_user("acme", "GET", "/api/v1/corporate/attendance", None)
                .await;
            let written = body["records"].as_array().is_some_and(|r| {
                r.iter().any(|r| {
                    r["lecture"] == json!("corp")
                        && r["account"] == json!("ken")
                        && !r["left_at"].is_null()
                })
            });
            if written {
                break body["records"].clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "ken's stay on the company's seat is in the history in time: {body}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let stays: Vec<(Value, Value)> = records
            .as_array()
            .expect("a list")
            .iter()
            .map(|r| (r["account"].clone(), r["lecture"].clone()))
            .collect();
        assert_eq!(stays, vec![(json!("ken"), json!("corp"))], "{}", p.db);
        let (status, csv) = http(
            p.addr,
            "GET",
            "/api/v1/corporate/attendance?format=csv",
            &[("Authorization", &bearer)],
            None,
        )
        .await;
        assert_eq!(status, 200);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 2, "{csv}");
        assert!(lines[1].starts_with("corp,ken,learner,"), "{csv}");
    }
}

/// The status of `GET /api/v1/me/lectures` with this identity token.
async fn my_page_with(p: &Portal, token: &str) -> u16 {
    let bearer = format!("Bearer {token}");
    http(
        p.addr,
        "GET",
        "/api/v1/me/lectures",
        &[("Authorization", &bearer)],
        None,
    )
    .await
    .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_and_relay_tokens_are_held_to_their_times() {
    let p = Portal::start(&sqlite_url()).await;
    let now = p.now().0 / 1000;
    assert_eq!(my_page_with(&p, &p.issuer.issue("u", now, 600)).await, 200);
    assert_eq!(
        my_page_with(&p, &p.issuer.issue("u", now + 3600, 600)).await,
        401,
        "issued an hour from now"
    );
    assert_eq!(
        my_page_with(&p, &p.issuer.issue("u", now, 30 * 24 * 3600)).await,
        401,
        "good for a month"
    );
    let settings = identity();
    let not_yet = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "u", "iss": settings.issuer, "aud": settings.audience,
                "iat": now, "exp": now + 7200, "nbf": now + 3600}),
        &jsonwebtoken::EncodingKey::from_secret(
            settings.secret.as_deref().expect("HS256").as_bytes(),
        ),
    )
    .expect("signs");
    assert_eq!(
        my_page_with(&p, &not_yet).await,
        401,
        "not before an hour from now"
    );

    // A relay token is minted for a minute; a correctly signed one good for a day is not one
    // a node made to use now.
    let relay = |exp: u64| {
        let token = ticket_key().mint_relay(&"l".into(), exp);
        async move {
            let bearer = format!("Bearer {token}");
            http(
                p.addr,
                "GET",
                "/ws/relay/l",
                &[("Authorization", &bearer)],
                None,
            )
            .await
        }
    };
    let (status, body) = relay(now + 24 * 3600).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("invalid_relay_token"), "{body}");
    let (status, body) = relay(now + 60).await;
    assert_eq!(
        status, 404,
        "a fresh token passes; no room is open here: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_are_refused_never_failed() {
    let web_root = std::env::temp_dir().join(format!("gate-e2e-web-{}", std::process::id()));
    std::fs::create_dir_all(web_root.join("assets")).expect("temp dir");
    std::fs::write(web_root.join("index.html"), "<!doctype html>built").expect("writes");
    let root = web_root.clone();
    let p = Portal::start_with(&sqlite_url(), move |c| c.web_root = root).await;
    let long = "a".repeat(60_000);
    for path in [
        format!("/{long}"),
        format!("/room/{long}"),
        format!("/assets/{long}.js"),
        format!("/api/v1/lectures/{long}/ticket"),
        format!("/api/v1/integration/lectures/{long}"),
        format!("/ws/lectures/{long}"),
        format!("/api/v1/me/lectures?{long}"),
    ] {
        let (status, body) = http(p.addr, "GET", &path, &[("X-Api-Key", API_KEY)], None).await;
        assert!(
            status == 414 || status == 404,
            "{}…: {status} {body}",
            &path[..30]
        );
    }
    // A file name longer than the disk allows, in a short path: not there, not a failure.
    for path in [
        format!("/assets/{}.js", "b".repeat(300)),
        format!("/{}.png", "c".repeat(300)),
    ] {
        let (status, body) = http(p.addr, "GET", &path, &[], None).await;
        assert!(status < 500, "{}…: {status} {body}", &path[..30]);
    }
    // A JSON body over the limit is 413, with a JSON answer.
    let big = format!(r#"{{"title": "{}"}}"#, "x".repeat(300 * 1024));
    let (status, body) = http(
        p.addr,
        "PUT",
        "/api/v1/integration/lectures/big",
        &[("X-Api-Key", API_KEY)],
        Some(&big),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("payload_too_large"), "{body}");
    let _ = std::fs::remove_dir_all(&web_root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_with_an_unknown_field_is_refused_and_wipes_nothing() {
    for db in databases().await {
        let p = Portal::start(&db).await;
        let put = |body: Value| p.as_user("u", "PUT", "/api/v1/me/profile", Some(body));
        let (status, _) = put(json!({"nickname": "たろう", "email": "taro@example.jp"})).await;
        assert_eq!(status, 200);
        let (status, body) = put(json!({"nick": "じろう"})).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains("nick")),
            "{body}"
        );
        let (_, profile) = p.as_user("u", "GET", "/api/v1/me/profile", None).await;
        assert_eq!(
            profile,
            json!({"nickname": "たろう", "email": "taro@example.jp"}),
            "nothing was wiped"
        );
        // A field left out keeps its value; null clears one.
        let (status, profile) = put(json!({"email": null})).await;
        assert_eq!(status, 200);
        assert_eq!(profile, json!({"nickname": "たろう", "email": null}));
        let (status, _) = p
            .call(
                "PUT",
                "/api/v1/integration/accounts/u/profile",
                &[("X-Api-Key", API_KEY)],
                Some(json!({"nickname": "じろう", "mail": "x@example.jp"})),
            )
            .await;
        assert_eq!(status, 400, "the portal's profile too");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_made_while_redis_is_away_reaches_the_other_nodes_when_it_is_back() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let with_redis = |c: &mut Config| c.redis_url = Some(url.clone());
    let a = Portal::start_with(&sqlite_url(), with_redis).await;
    let start = a.now().plus_ms(10 * MIN);
    a.lecture("l", start, None).await;
    a.person("taro", "individual", Some("たろう")).await;
    a.purchase("p-taro", "taro", "l", 1, "card", "paid").await;
    let old = a.ticket_of("taro", "l").await;

    redis.kill();
    a.set_status("p-taro", "refunded").await;
    redis.restart();
    // The node keeps trying: the revocation reaches the lecture's log.
    let client = redis::Client::open(url.as_str()).expect("a Redis URL");
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    loop {
        let entries: Option<u64> = match client.get_multiplexed_async_connection().await {
            Ok(mut conn) => redis::cmd("XLEN")
                .arg("lecture:{l}:log")
                .query_async(&mut conn)
                .await
                .ok(),
            Err(_) => None,
        };
        if entries.is_some_and(|n| n > 0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the revocation reached the lecture's log after Redis came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Another node, with records of its own that know nothing of the refund, refuses the old
    // ticket: its room applies the revocation from the log.
    let b = Portal::start_with(&sqlite_url(), with_redis).await;
    b.lecture("l", start, None).await;
    let mut taro = b.enter_with(&old, "l").await;
    expect_close(&mut taro, CloseCode::Revoked).await;
}

/// Rotating the ticket secret (docs/operations.md, "Rotating secrets"): a node holding a new
/// key and the previous one lets in tickets of both and takes relay tokens of both; once the
/// previous key is removed, what it signed is refused; a key the node never held is refused
/// with the ticket's documented close code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_of_the_previous_key_is_accepted_during_a_rotation_and_refused_after() {
    const NEW_SECRET: &[u8] = b"gate-e2e-ticket-secret-rotated-987";
    let db = sqlite_url();
    let rotating = |c: &mut Config| {
        c.ticket_key = TicketKey::new(NEW_SECRET.to_vec())
            .and_then(|k| k.with_previous(TICKET_SECRET.to_vec()))
            .expect("long enough");
    };
    let p = Portal::start_with(&db, rotating).await;
    p.person("sensei", "individual", Some("先生")).await;
    p.person("taro", "individual", Some("たろう")).await;
    p.lecture("l", p.now().plus_ms(10 * MIN), None).await;
    p.purchase("p-taro", "taro", "l", 1, "card", "paid").await;
    let claims = taro_claims(p.now());
    let now = claims.iat;
    let old = ticket_key().mint(&claims);
    let stranger =
        TicketKey::new(b"a-key-no-node-of-ours-ever-held-00".to_vec()).expect("long enough");
    let relay = |addr: SocketAddr, token: String| async move {
        let bearer = format!("Bearer {token}");
        http(
            addr,
            "GET",
            "/ws/relay/l",
            &[("Authorization", &bearer)],
            None,
        )
        .await
    };

    // During the rotation: the previous key's ticket and relay token pass, the gate signs
    // with the new key, and an unknown key is refused.
    let mut taro = p.enter_with(&old, "l").await;
    welcomed(&mut taro).await;
    drop(taro);
    let (_, answer) = p.ticket("taro", "l").await;
    let fresh = answer["ticket"].as_str().expect("a ticket").to_owned();
    let new_key = TicketKey::new(NEW_SECRET.to_vec()).expect("long enough");
    assert!(
        new_key.verify(&fresh, p.now()).is_ok(),
        "signed with the new key"
    );
    assert!(
        ticket_key().verify(&fresh, p.now()).is_err(),
        "not the old one"
    );
    let mut unknown = p.enter_with(&stranger.mint(&claims), "l").await;
    expect_close(&mut unknown, CloseCode::TicketInvalid).await;
    let (status, body) = relay(p.addr, ticket_key().mint_relay(&"l".into(), now + 60)).await;
    // Past the token check: the room is open here, the request is just no WebSocket.
    assert_eq!(status, 400, "the previous key's relay token passes: {body}");
    assert!(body.contains("not_websocket"), "{body}");
    let (status, body) = relay(p.addr, stranger.mint_relay(&"l".into(), now + 60)).await;
    assert_eq!(status, 401, "{body}");

    // The rotation done: the previous key's ticket and relay token are refused.
    p.stop().await;
    let p = Portal::start_with(&db, |c| c.ticket_key = new_key.clone()).await;
    let mut taro = p.enter_with(&old, "l").await;
    expect_close(&mut taro, CloseCode::TicketInvalid).await;
    let (status, body) = relay(p.addr, ticket_key().mint_relay(&"l".into(), now + 60)).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("invalid_relay_token"), "{body}");
    let mut taro = p.enter_with(&fresh, "l").await;
    welcomed(&mut taro).await;
}
