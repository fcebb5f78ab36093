//! Who may enter which lecture, and when: the lecture's state on "My page" and the Enter
//! button's answer. Pure functions of the records and the time, so every edge is testable.

use super::model::{
    Account, AccountKind, Lecture, LectureStatus, Purchase, PurchaseStatus, StaffRole,
};
use super::names::same_name;
use protocol::{Role, UnixMillis};
use serde::Serialize;
use utoipa::ToSchema;

/// The gate's timing: when doors open and how long after the scheduled end a lecture may run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Doors open this long before the start.
    pub doors_open_before_ms: u64,
    /// The room ends by itself this long after the scheduled end.
    pub end_grace_ms: u64,
}

/// A lecture's state for one person, as "My page" shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema, ts_rs::TS)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LectureState {
    /// 配信開始前です: the doors open at `doors_open_at`.
    BeforeDoors {
        /// When the Enter button appears.
        #[schema(value_type = u64)]
        doors_open_at: UnixMillis,
    },
    /// 入室: the doors are open; delivery begins at the start.
    DoorsOpen {
        /// When delivery begins.
        #[schema(value_type = u64)]
        starts_at: UnixMillis,
    },
    /// Delivery is on.
    Live,
    /// Over; the archive is not ready yet.
    Ended {
        /// When the archive is expected, if known.
        #[schema(value_type = Option<u64>)]
        archive_available_at: Option<UnixMillis>,
    },
    /// アーカイブ: the recording can be watched any number of times.
    ArchiveAvailable {
        /// Since when.
        #[schema(value_type = u64)]
        since: UnixMillis,
    },
    /// Cancelled.
    Cancelled {
        /// Why.
        reason: String,
    },
}

fn doors_open_at(l: &Lecture, t: Timing) -> UnixMillis {
    l.starts_at.minus_ms(t.doors_open_before_ms)
}

fn is_over(l: &Lecture, now: UnixMillis, t: Timing) -> bool {
    l.ended_at.is_some() || now >= l.ends_at.plus_ms(t.end_grace_ms)
}

/// The state of `l` at `now`.
pub fn lecture_state(l: &Lecture, now: UnixMillis, t: Timing) -> LectureState {
    if l.status == LectureStatus::Cancelled {
        return LectureState::Cancelled {
            reason: l.cancel_reason.clone().unwrap_or_default(),
        };
    }
    if is_over(l, now, t) {
        return match l.archive_available_at {
            Some(since) if now >= since => LectureState::ArchiveAvailable { since },
            archive_available_at => LectureState::Ended {
                archive_available_at,
            },
        };
    }
    if now >= l.starts_at || l.started_at.is_some() {
        LectureState::Live
    } else if now >= doors_open_at(l, t) {
        LectureState::DoorsOpen {
            starts_at: l.starts_at,
        }
    } else {
        LectureState::BeforeDoors {
            doors_open_at: doors_open_at(l, t),
        }
    }
}

/// Why the gate gives no ticket. Each has a stable code and a sentence in Japanese and English
/// saying what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No purchase and no allocated seat for this lecture.
    NotPurchased,
    /// A convenience-store purchase not yet paid.
    PaymentPending,
    /// The purchase was cancelled or refunded.
    PurchaseCancelled,
    /// Corporate accounts buy seats; they never enter.
    CorporateAccountCannotEnter,
    /// The company bought seats but none is allocated to this person.
    SeatNotAllocated,
    /// No nickname registered yet.
    ProfileIncomplete,
    /// A learner's nickname reads as the name of one of the lecture's instructors or
    /// moderators (see [`super::names`]): the room would show them as the staff.
    NicknameTakenByStaff,
    /// Before doors open.
    DoorsNotOpen {
        /// When they open.
        doors_open_at: UnixMillis,
    },
    /// After the lecture.
    LectureEnded {
        /// When the archive is (or is expected to be) available.
        archive_available_at: Option<UnixMillis>,
    },
    /// The lecture was cancelled.
    LectureCancelled {
        /// Why.
        reason: String,
    },
    /// Staff removed them from this lecture without return.
    Banned,
}

impl Refusal {
    /// Whether the person still holds the right to attend despite this refusal: it is about
    /// the time (doors not open, lecture over) or their profile, not their purchase.
    pub(crate) fn keeps_the_right(&self) -> bool {
        matches!(
            self,
            Self::DoorsNotOpen { .. }
                | Self::ProfileIncomplete
                | Self::NicknameTakenByStaff
                | Self::LectureEnded { .. }
        )
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotPurchased => "not_purchased",
            Refusal::PaymentPending => "payment_pending",
            Refusal::PurchaseCancelled => "purchase_cancelled",
            Refusal::CorporateAccountCannotEnter => "corporate_account_cannot_enter",
            Refusal::SeatNotAllocated => "seat_not_allocated",
            Refusal::ProfileIncomplete => "profile_incomplete",
            Refusal::NicknameTakenByStaff => "nickname_taken_by_staff",
            Refusal::DoorsNotOpen { .. } => "doors_not_open",
            Refusal::LectureEnded { .. } => "lecture_ended",
            Refusal::LectureCancelled { .. } => "lecture_cancelled",
            Refusal::Banned => "banned",
        }
    }

    /// What to tell the person, in Japanese.
    pub fn message_ja(&self) -> String {
        match self {
            Refusal::NotPurchased => "この講座は購入されていません。講座ページからお申し込みください。".into(),
            Refusal::PaymentPending => {
                "コンビニでのお支払いが確認できていません。お支払い完了後に入室できます。".into()
            }
            Refusal::PurchaseCancelled => "この講座のお申し込みはキャンセル(または返金)されています。".into(),
            Refusal::CorporateAccountCannotEnter => {
                "法人IDでは入室できません。座席を割り当てた個人IDでログインしてください。".into()
            }
            Refusal::SeatNotAllocated => {
                "法人で購入された座席があなたに割り当てられていません。法人のご担当者にお問い合わせください。".into()
            }
            Refusal::ProfileIncomplete => "受講者情報(ニックネーム)を登録してから入室してください。".into(),
            Refusal::NicknameTakenByStaff => {
                "ニックネームがこの講座の講師またはモデレーターの名前と同じです。別のニックネームに変更してから入室してください。".into()
            }
            Refusal::DoorsNotOpen { .. } => "配信開始前です。開始1時間前から入室できます。".into(),
            Refusal::LectureEnded { archive_available_at: Some(_) } => {
                "講座は終了しました。アーカイブは公開日からご覧いただけます。".into()
            }
            Refusal::LectureEnded { archive_available_at: None } => "講座は終了しました。".into(),
            Refusal::LectureCancelled { reason } => format!("この講座は中止になりました。理由: {reason}"),
            Refusal::Banned => "講師またはモデレーターによって退出させられたため、この講座には入室できません。".into(),
        }
    }

    /// What to tell the person, in English.
    pub fn message_en(&self) -> String {
        match self {
            Refusal::NotPurchased => "You have not purchased this lecture. Apply on the lecture's page.".into(),
            Refusal::PaymentPending => {
                "Your convenience-store payment has not been confirmed yet. You can enter once it is paid.".into()
            }
            Refusal::PurchaseCancelled => "Your purchase of this lecture was cancelled or refunded.".into(),
            Refusal::CorporateAccountCannotEnter => {
                "A corporate account cannot enter. Sign in with the individual account the seat was allocated to."
                    .into()
            }
            Refusal::SeatNotAllocated => {
                "Your company bought seats but none is allocated to you. Ask your company's administrator.".into()
            }
            Refusal::ProfileIncomplete => "Register your attendee information (a nickname) before entering.".into(),
            Refusal::NicknameTakenByStaff => {
                "Your nickname is the name of this lecture's instructor or moderator. Choose another nickname before entering."
                    .into()
            }
            Refusal::DoorsNotOpen { .. } => "The lecture has not opened yet. You can enter from one hour before the start.".into(),
            Refusal::LectureEnded { archive_available_at: Some(_) } => {
                "The lecture has ended. Its archive can be watched from its publication date."
                    .into()
            }
            Refusal::LectureEnded { archive_available_at: None } => "The lecture has ended.".into(),
            Refusal::LectureCancelled { reason } => format!("This lecture was cancelled. Reason: {reason}"),
            Refusal::Banned => "An instructor or moderator removed you from this lecture; you may not enter it again.".into(),
        }
    }
}

/// What the gate knows about one person and one lecture.
#[derive(Debug)]
pub struct Facts<'a> {
    /// The lecture.
    pub lecture: &'a Lecture,
    /// The person's account; `None` when the portal vouches for someone the gate has no record
    /// of (treated as an individual with no purchases).
    pub account: Option<&'a Account>,
    /// Their staff role in the lecture, if any.
    pub staff: Option<StaffRole>,
    /// Their own purchases of the lecture.
    pub purchases: Vec<&'a Purchase>,
    /// Corporate purchases of the lecture whose seats are allocated to them by a company they
    /// are linked to.
    pub allocated: Vec<&'a Purchase>,
    /// Whether a company they are linked to bought the lecture (allocated to them or not).
    pub company_bought: bool,
    /// Their nickname.
    pub nickname: Option<&'a str>,
    /// The nicknames of the lecture's instructors and moderators (from their profiles): a
    /// learner may not enter under one of them.
    pub staff_nicknames: Vec<&'a str>,
    /// Staff removed them from this lecture without return.
    pub banned: bool,
}

/// Someone the gate lets in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admission {
    /// Role in the room.
    pub role: Role,
    /// Nickname in the room.
    pub nickname: String,
}

/// The Enter button's answer at `now`.
pub fn decide(f: &Facts<'_>, now: UnixMillis, t: Timing) -> Result<Admission, Refusal> {
    let l = f.lecture;
    if l.status == LectureStatus::Cancelled {
        return Err(Refusal::LectureCancelled {
            reason: l.cancel_reason.clone().unwrap_or_default(),
        });
    }
    if f.banned {
        return Err(Refusal::Banned);
    }
    let ended = || Refusal::LectureEnded {
        archive_available_at: l.archive_available_at,
    };
    let nickname = f
        .nickname
        .filter(|n| !n.trim().is_empty())
        .map(str::to_owned);
    if let Some(staff) = f.staff {
        // Instructors and moderators may enter before the doors open, to prepare.
        if is_over(l, now, t) {
            return Err(ended());
        }
        let nickname = nickname.ok_or(Refusal::ProfileIncomplete)?;
        return Ok(Admission {
            role: staff.room_role(),
            nickname,
        });
    }
    entitled_learner(f)?;
    if is_over(l, now, t) {
        return Err(ended());
    }
    let nickname = nickname.ok_or(Refusal::ProfileIncomplete)?;
    if f.staff_nicknames
        .iter()
        .any(|staff| same_name(staff, &nickname))
    {
        return Err(Refusal::NicknameTakenByStaff);
    }
    if now < doors_open_at(l, t) {
        return Err(Refusal::DoorsNotOpen {
            doors_open_at: doors_open_at(l, t),
        });
    }
    Ok(Admission {
        role: Role::Learner,
        nickname,
    })
}

/// Whether the person may watch the lecture's archive, and in which role: its instructors and
/// moderators, and learners entitled as for the live room (a paid purchase or an allocated
/// seat), whatever the time and whether or not they registered a nickname. The refusals are
/// the live room's, with their codes.
pub fn may_watch(f: &Facts<'_>) -> Result<Role, Refusal> {
    let l = f.lecture;
    if l.status == LectureStatus::Cancelled {
        return Err(Refusal::LectureCancelled {
            reason: l.cancel_reason.clone().unwrap_or_default(),
        });
    }
    if let Some(staff) = f.staff {
        return Ok(staff.room_role());
    }
    if f.banned {
        return Err(Refusal::Banned);
    }
    entitled_learner(f).map(|()| Role::Learner)
}

/// Whether the person holds a learner's right to the lecture: an individual's paid purchase,
/// or a seat their company allocated them (the best of what they hold counts).
fn entitled_learner(f: &Facts<'_>) -> Result<(), Refusal> {
    if f.account.is_some_and(|a| a.kind != AccountKind::Individual) {
        return Err(Refusal::CorporateAccountCannotEnter);
    }
    let statuses = f.purchases.iter().chain(&f.allocated).map(|p| p.status);
    let best = statuses.min_by_key(|s| match s {
        PurchaseStatus::Paid => 0,
        PurchaseStatus::AwaitingPayment => 1,
        PurchaseStatus::Cancelled | PurchaseStatus::Refunded => 2,
    });
    match best {
        Some(PurchaseStatus::Paid) => Ok(()),
        Some(PurchaseStatus::AwaitingPayment) => Err(Refusal::PaymentPending),
        Some(PurchaseStatus::Cancelled | PurchaseStatus::Refunded) => {
            Err(Refusal::PurchaseCancelled)
        }
        None if f.company_bought => Err(Refusal::SeatNotAllocated),
        None => Err(Refusal::NotPurchased),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::model::{Modality, PaymentMethod};

    const HOUR: u64 = 3_600_000;
    const START: UnixMillis = UnixMillis(1_800_000_000_000);
    const T: Timing = Timing {
        doors_open_before_ms: HOUR,
        end_grace_ms: HOUR / 2,
    };

    fn lecture() -> Lecture {
        Lecture {
            id: "l1".into(),
            title: "t".into(),
            starts_at: START,
            ends_at: START.plus_ms(2 * HOUR),
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

    fn purchase(status: PurchaseStatus) -> Purchase {
        Purchase {
            id: "p1".into(),
            buyer: "u1".into(),
            lecture: "l1".into(),
            quantity: 1,
            modality: Modality::Online,
            payment_method: PaymentMethod::Konbini,
            status,
        }
    }

    fn facts<'a>(l: &'a Lecture, purchases: Vec<&'a Purchase>) -> Facts<'a> {
        Facts {
            lecture: l,
            account: None,
            staff: None,
            purchases,
            allocated: vec![],
            company_bought: false,
            nickname: Some("taro"),
            staff_nicknames: vec![],
            banned: false,
        }
    }

    fn code(r: Result<Admission, Refusal>) -> &'static str {
        r.map_or_else(|e| e.code(), |_| "ok")
    }

    #[test]
    fn the_window_opens_exactly_an_hour_before_the_start() {
        let l = lecture();
        let paid = purchase(PurchaseStatus::Paid);
        let f = facts(&l, vec![&paid]);
        let doors = START.minus_ms(HOUR);
        assert_eq!(
            decide(&f, doors.minus_ms(1000), T),
            Err(Refusal::DoorsNotOpen {
                doors_open_at: doors
            })
        );
        assert_eq!(code(decide(&f, doors, T)), "ok");
        assert_eq!(
            lecture_state(&l, doors.minus_ms(1), T),
            LectureState::BeforeDoors {
                doors_open_at: doors
            }
        );
        assert_eq!(
            lecture_state(&l, doors, T),
            LectureState::DoorsOpen { starts_at: START }
        );
        assert_eq!(lecture_state(&l, START, T), LectureState::Live);
    }

    #[test]
    fn a_lecture_the_instructor_started_early_is_live() {
        let mut l = lecture();
        let doors = START.minus_ms(HOUR);
        l.started_at = Some(doors.plus_ms(10 * 60_000));
        assert_eq!(
            lecture_state(&l, doors.plus_ms(11 * 60_000), T),
            LectureState::Live
        );
        l.ended_at = Some(doors.plus_ms(20 * 60_000));
        assert!(matches!(
            lecture_state(&l, doors.plus_ms(21 * 60_000), T),
            LectureState::Ended { .. }
        ));
    }

    #[test]
    fn after_the_end_the_archive_takes_over() {
        let mut l = lecture();
        l.archive_available_at = Some(START.plus_ms(48 * HOUR));
        let paid = purchase(PurchaseStatus::Paid);
        let over = l.ends_at.plus_ms(T.end_grace_ms);
        assert_eq!(
            code(decide(&facts(&l, vec![&paid]), over.minus_ms(1), T)),
            "ok"
        );
        assert_eq!(
            code(decide(&facts(&l, vec![&paid]), over, T)),
            "lecture_ended"
        );
        assert!(matches!(
            lecture_state(&l, over, T),
            LectureState::Ended {
                archive_available_at: Some(_)
            }
        ));
        assert!(matches!(
            lecture_state(&l, START.plus_ms(48 * HOUR), T),
            LectureState::ArchiveAvailable { .. }
        ));
        // Ended early by the instructor: over at once.
        l.ended_at = Some(START.plus_ms(HOUR));
        assert_eq!(
            code(decide(&facts(&l, vec![&paid]), START.plus_ms(HOUR + 1), T)),
            "lecture_ended"
        );
    }

    #[test]
    fn the_archive_is_for_the_entitled_whatever_the_time() {
        let l = lecture();
        let paid = purchase(PurchaseStatus::Paid);
        let mut f = facts(&l, vec![&paid]);
        f.nickname = None;
        assert_eq!(may_watch(&f), Ok(Role::Learner));
        for (status, code) in [
            (PurchaseStatus::AwaitingPayment, "payment_pending"),
            (PurchaseStatus::Cancelled, "purchase_cancelled"),
            (PurchaseStatus::Refunded, "purchase_cancelled"),
        ] {
            let p = purchase(status);
            let f = facts(&l, vec![&p]);
            assert_eq!(may_watch(&f).map_err(|r| r.code()), Err(code));
        }
        let mut f = facts(&l, vec![]);
        assert_eq!(may_watch(&f).map_err(|r| r.code()), Err("not_purchased"));
        f.company_bought = true;
        assert_eq!(
            may_watch(&f).map_err(|r| r.code()),
            Err("seat_not_allocated")
        );
    }

    #[test]
    fn every_purchase_state_has_its_answer() {
        let l = lecture();
        let now = START;
        let pending = purchase(PurchaseStatus::AwaitingPayment);
        let cancelled = purchase(PurchaseStatus::Cancelled);
        let refunded = purchase(PurchaseStatus::Refunded);
        let paid = purchase(PurchaseStatus::Paid);
        assert_eq!(code(decide(&facts(&l, vec![]), now, T)), "not_purchased");
        assert_eq!(
            code(decide(&facts(&l, vec![&pending]), now, T)),
            "payment_pending"
        );
        assert_eq!(
            code(decide(&facts(&l, vec![&cancelled]), now, T)),
            "purchase_cancelled"
        );
        assert_eq!(
            code(decide(&facts(&l, vec![&refunded]), now, T)),
            "purchase_cancelled"
        );
        assert_eq!(
            code(decide(&facts(&l, vec![&cancelled, &paid]), now, T)),
            "ok",
            "a paid purchase wins"
        );
        let mut f = facts(&l, vec![]);
        f.company_bought = true;
        assert_eq!(code(decide(&f, now, T)), "seat_not_allocated");
        f.allocated = vec![&paid];
        assert_eq!(code(decide(&f, now, T)), "ok");
        f.nickname = None;
        assert_eq!(code(decide(&f, now, T)), "profile_incomplete");
    }

    #[test]
    fn companies_never_enter_and_cancelled_lectures_say_why() {
        let mut l = lecture();
        let paid = purchase(PurchaseStatus::Paid);
        let company = Account {
            id: "c1".into(),
            kind: AccountKind::Corporate,
            email: None,
            name: None,
        };
        let mut f = facts(&l, vec![&paid]);
        f.account = Some(&company);
        assert_eq!(code(decide(&f, START, T)), "corporate_account_cannot_enter");
        l.status = LectureStatus::Cancelled;
        l.cancel_reason = Some("台風".into());
        let f = facts(&l, vec![&paid]);
        assert_eq!(
            decide(&f, START, T),
            Err(Refusal::LectureCancelled {
                reason: "台風".into()
            })
        );
        assert!(
            Refusal::LectureCancelled {
                reason: "台風".into()
            }
            .message_ja()
            .contains("台風")
        );
    }

    #[test]
    fn a_banned_person_is_refused_whatever_they_bought_or_run() {
        let l = lecture();
        let paid = purchase(PurchaseStatus::Paid);
        let mut f = facts(&l, vec![&paid]);
        f.banned = true;
        assert_eq!(decide(&f, START, T), Err(Refusal::Banned));
        f.staff = Some(StaffRole::Moderator);
        assert_eq!(decide(&f, START, T), Err(Refusal::Banned));
    }

    #[test]
    fn a_learner_may_not_take_the_name_of_the_lectures_staff() {
        let l = lecture();
        let paid = purchase(PurchaseStatus::Paid);
        let mut f = facts(&l, vec![&paid]);
        f.staff_nicknames = vec!["山田講師", "Assistant"];
        for taken in ["山田講師", "山田　講師", "ASSISTANT", "Ａｓｓｉｓｔａｎｔ"]
        {
            f.nickname = Some(taken);
            assert_eq!(
                decide(&f, START, T),
                Err(Refusal::NicknameTakenByStaff),
                "{taken}"
            );
        }
        f.nickname = Some("山田");
        assert_eq!(code(decide(&f, START, T)), "ok");
        // The staff themselves keep their own name.
        f.nickname = Some("山田講師");
        f.staff = Some(StaffRole::Instructor);
        assert_eq!(code(decide(&f, START, T)), "ok");
    }

    #[test]
    fn staff_enter_before_the_doors_with_their_role() {
        let l = lecture();
        let mut f = facts(&l, vec![]);
        f.staff = Some(StaffRole::Moderator);
        let admitted = decide(&f, START.minus_ms(5 * HOUR), T).expect("staff enter early");
        assert_eq!(admitted.role, Role::Moderator);
    }
}
