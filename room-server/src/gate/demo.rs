//! Demo mode: records that show every state of the product without a portal — a lecture whose
//! doors are open now, one tomorrow and one in the archive; learners who paid by card or at a
//! konbini (paid and not yet), one without a nickname, one with HTML in it; a company with an
//! allocated and an unallocated employee; an instructor and a moderator.

use super::model::{
    Account, AccountKind, Lecture, LectureStatus, Modality, PaymentMethod, Profile, Purchase,
    PurchaseStatus, StaffMember, StaffRole,
};
use super::store::{Store, StoreError};
use protocol::UnixMillis;
use room::default_emotions;

/// The demo lecture whose doors are open now.
pub const DEMO_LECTURE: &str = "demo";
/// The demo's lecture in the archive (last week's).
pub const DEMO_ARCHIVE: &str = "demo-archive";

/// What every demo account id starts with.
const DEMO_ID_PREFIX: &str = "demo-";

/// Why the demo could not be put in place.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store holds accounts the demo did not make: it is a real node's.
    #[error(
        "demo mode refuses this database: it holds accounts the demo did not make (a real node's \
         records). Point `database_url` (--database-url) at a file of its own, or run without --demo"
    )]
    RealRecords,
}

/// A demo person and what they show.
#[derive(Clone, Copy, Debug)]
pub struct DemoPerson {
    /// Account id (sign in with it).
    pub id: &'static str,
    /// What signing in as them shows.
    pub about: &'static str,
}

/// The demo's people.
#[derive(Clone, Debug)]
pub struct Demo {
    /// Who can sign in.
    pub people: Vec<DemoPerson>,
}

const HOUR: u64 = 3_600_000;

/// (id, kind, nickname, about)
const PEOPLE: [(&str, AccountKind, Option<&str>, &str); 10] = [
    (
        "demo-instructor",
        AccountKind::Individual,
        Some("山田講師"),
        "the instructor of every demo lecture",
    ),
    (
        "demo-moderator",
        AccountKind::Individual,
        Some("アシスタント"),
        "the moderator of the demo lecture",
    ),
    (
        "demo-taro",
        AccountKind::Individual,
        Some("たろう"),
        "paid by card: enters",
    ),
    (
        "demo-hanako",
        AccountKind::Individual,
        Some("はなこ"),
        "paid at a konbini: enters",
    ),
    (
        "demo-jiro",
        AccountKind::Individual,
        Some("じろう"),
        "konbini payment not made yet: payment_pending",
    ),
    (
        "demo-html",
        AccountKind::Individual,
        Some("<b>html</b>さん"),
        "HTML in the nickname, shown as text",
    ),
    (
        "demo-nonick",
        AccountKind::Individual,
        None,
        "paid, no nickname yet: profile_incomplete",
    ),
    (
        "demo-ken",
        AccountKind::Individual,
        Some("けん"),
        "a seat allocated by Demo Corp: enters",
    ),
    (
        "demo-yui",
        AccountKind::Individual,
        Some("ゆい"),
        "linked to Demo Corp, no seat: seat_not_allocated",
    ),
    (
        "demo-corp",
        AccountKind::Corporate,
        None,
        "corporate admin of Demo Corp: cannot enter; allocates seats",
    ),
];

impl Demo {
    /// Puts the demo records in `store`, with lecture times around `now` (idempotent: a restart
    /// moves the demo lecture's doors to "open now" again).
    ///
    /// Refuses a store holding accounts the demo did not make: demo people signing in with
    /// demo tokens must not meet real records, nor real records get demo rows.
    pub async fn seed(store: &Store, now: UnixMillis) -> Result<Self, DemoError> {
        if store.has_accounts_beyond(DEMO_ID_PREFIX).await? {
            return Err(DemoError::RealRecords);
        }
        let staff = |moderator: bool| {
            let mut s = vec![StaffMember {
                account: "demo-instructor".into(),
                role: StaffRole::Instructor,
            }];
            if moderator {
                s.push(StaffMember {
                    account: "demo-moderator".into(),
                    role: StaffRole::Moderator,
                });
            }
            s
        };
        let lecture = |id: &str,
                       title: &str,
                       starts_at: UnixMillis,
                       archive: Option<UnixMillis>,
                       moderator| Lecture {
            id: id.into(),
            title: title.into(),
            starts_at,
            ends_at: starts_at.plus_ms(90 * 60 * 1000),
            rows: 8,
            cols: 12,
            emotions: default_emotions(),
            archive_available_at: archive,
            status: LectureStatus::Scheduled,
            cancel_reason: None,
            started_at: None,
            ended_at: None,
            staff: staff(moderator),
        };
        let lectures = [
            lecture(
                DEMO_LECTURE,
                "はじめてのネットライブ講座 / Your first net-live lecture",
                now.plus_ms(HOUR / 4),
                None,
                true,
            ),
            lecture(
                "demo-tomorrow",
                "明日の講座 / Tomorrow's lecture",
                now.plus_ms(24 * HOUR),
                None,
                false,
            ),
            lecture(
                DEMO_ARCHIVE,
                "先週の講座 / Last week's lecture",
                now.minus_ms(7 * 24 * HOUR),
                Some(now.minus_ms(5 * 24 * HOUR)),
                false,
            ),
        ];
        for l in &lectures {
            store.upsert_lecture(l, now).await?;
            store.reopen(&l.id).await?;
        }
        for (id, kind, nickname, _) in PEOPLE {
            let email = if kind == AccountKind::Corporate {
                Some("admin@demo-corp.example.jp".to_owned())
            } else {
                None
            };
            let name = (kind == AccountKind::Corporate).then(|| "Demo Corp".to_owned());
            store
                .upsert_account(
                    &Account {
                        id: id.into(),
                        kind,
                        email,
                        name,
                    },
                    now,
                )
                .await?;
            if let Some(nickname) = nickname {
                let profile = Profile {
                    nickname: Some(nickname.into()),
                    email: Some(format!("{id}@example.jp")),
                };
                store.set_profile(id, &profile, now).await?;
            }
        }
        let purchase = |id: &str, buyer: &str, lecture: &str, quantity, method, status| Purchase {
            id: id.into(),
            buyer: buyer.into(),
            lecture: lecture.into(),
            quantity,
            modality: Modality::Online,
            payment_method: method,
            status,
        };
        use PaymentMethod::{Card, Konbini};
        use PurchaseStatus::{AwaitingPayment, Paid};
        let mut purchases = vec![
            purchase("demo-p-taro", "demo-taro", DEMO_LECTURE, 1, Card, Paid),
            purchase(
                "demo-p-hanako",
                "demo-hanako",
                DEMO_LECTURE,
                1,
                Konbini,
                Paid,
            ),
            purchase(
                "demo-p-jiro",
                "demo-jiro",
                DEMO_LECTURE,
                1,
                Konbini,
                AwaitingPayment,
            ),
            purchase("demo-p-html", "demo-html", DEMO_LECTURE, 1, Card, Paid),
            purchase("demo-p-nonick", "demo-nonick", DEMO_LECTURE, 1, Card, Paid),
            purchase("demo-p-corp", "demo-corp", DEMO_LECTURE, 3, Card, Paid),
        ];
        for (who, tag) in [("demo-taro", "t"), ("demo-hanako", "h")] {
            purchases.push(purchase(
                &format!("demo-p-{tag}-tomorrow"),
                who,
                "demo-tomorrow",
                1,
                Card,
                Paid,
            ));
            purchases.push(purchase(
                &format!("demo-p-{tag}-archive"),
                who,
                "demo-archive",
                1,
                Card,
                Paid,
            ));
        }
        for p in &purchases {
            store.upsert_purchase(p, now).await?;
        }
        for individual in ["demo-ken", "demo-yui"] {
            store.link(individual, "demo-corp", now).await?;
        }
        store.allocate("demo-p-corp", "demo-ken", now).await?;
        Ok(Self {
            people: PEOPLE
                .iter()
                .map(|(id, _, _, about)| DemoPerson { id, about })
                .collect(),
        })
    }
}
