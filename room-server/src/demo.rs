//! Demo mode: a lecture whose doors are open now, a handful of demo people, and a sign-in that
//! hands out their tickets — so the product can be tried without a portal.

use crate::room::{LectureSpec, default_emotions};
use protocol::{LectureId, Nickname, Role, UnixMillis, UserId};
use serde::Serialize;

/// The demo lecture's id.
pub const DEMO_LECTURE: &str = "demo";

/// A demo person.
#[derive(Clone, Debug, Serialize)]
pub struct DemoUser {
    /// Account id.
    pub id: UserId,
    /// Nickname in the room.
    pub nickname: Nickname,
    /// Role in the demo lecture.
    pub role: Role,
}

/// The demo's lecture and people.
#[derive(Clone, Debug)]
pub struct Demo {
    /// The lecture: doors open now, live in 15 minutes, 90 minutes long.
    pub lecture: LectureSpec,
    /// Who can sign in.
    pub users: Vec<DemoUser>,
}

impl Demo {
    /// The demo as of `now`.
    pub fn new(now: UnixMillis) -> Self {
        let starts_at = now.plus_ms(15 * 60 * 1000);
        let lecture = LectureSpec {
            id: LectureId::from(DEMO_LECTURE),
            title: "はじめてのネットライブ講座 / Your first net-live lecture".into(),
            starts_at,
            ends_at: starts_at.plus_ms(90 * 60 * 1000),
            rows: 8,
            cols: 12,
            emotions: default_emotions(),
        };
        let users = [
            ("demo-instructor", "山田講師", Role::Instructor),
            ("demo-moderator", "アシスタント", Role::Moderator),
            ("demo-taro", "たろう", Role::Learner),
            ("demo-hanako", "はなこ", Role::Learner),
            ("demo-jiro", "jiro", Role::Learner),
            ("demo-html", "<b>html</b>さん", Role::Learner),
        ]
        .into_iter()
        .map(|(id, nickname, role)| DemoUser {
            id: id.into(),
            nickname: nickname.into(),
            role,
        })
        .collect();
        Self { lecture, users }
    }

    /// The demo person with this id.
    pub fn user(&self, id: &str) -> Option<&DemoUser> {
        self.users.iter().find(|u| u.id.as_str() == id)
    }
}
