//! The demo's archived lecture: a short recording (12 s of VP8 and Opus made by Chromium's
//! encoders and muxed by `make-archive`, committed as `assets/demo-archive/camera.webm`) with a
//! timeline built by the real [`Builder`] from chat, a call, an announcement and reactions, so
//! `./scripts/run-demo` has an archive that plays with its chat.

use super::store::{ArchiveError, ArchiveStore};
use super::timeline::{Builder, DEFAULT_BUCKET_MS, Seen};
use super::{
    CAMERA_NAME, MANIFEST, MANIFEST_NAME, Manifest, ManifestTrack, TIMELINE_NAME, TrackKind,
};
use protocol::server::{Announcement, CallInfo, ChatEvent, ChatMessage};
use protocol::{ChatOffset, EmotionKey, LectureId, Nickname, Role, UnixMillis, UserId};
use std::collections::BTreeMap;

/// The demo recording.
const CAMERA: &[u8] = include_bytes!("../../assets/demo-archive/camera.webm");
/// Its length, ms.
const DURATION_MS: u64 = 12_000;

/// Writes the demo archive of `lecture` (live from `started_at`) into `store`: the camera,
/// the timeline, and the manifest last. Idempotent.
pub async fn write(
    store: &ArchiveStore,
    lecture: &LectureId,
    started_at: UnixMillis,
) -> Result<(), ArchiveError> {
    store
        .put(lecture, CAMERA_NAME, bytes::Bytes::from_static(CAMERA))
        .await?;
    store
        .put_json(lecture, TIMELINE_NAME, &timeline(started_at).finish())
        .await?;
    let manifest = Manifest {
        format: MANIFEST.to_owned(),
        lecture: lecture.to_string(),
        started_at_ms: started_at.0,
        duration_ms: DURATION_MS,
        tracks: vec![ManifestTrack {
            kind: TrackKind::Camera,
            name: CAMERA_NAME.to_owned(),
            start_ms: 0,
            duration_ms: DURATION_MS,
        }],
    };
    store.put_json(lecture, MANIFEST_NAME, &manifest).await
}

fn timeline(start: UnixMillis) -> Builder {
    let mut b = Builder::new(start, DEFAULT_BUCKET_MS);
    let say = |offset: u64, ms: u64, who: &str, role: Role, text: &str| {
        let at = start.plus_ms(ms);
        (
            at,
            Seen::Chat(ChatEvent::Message(ChatMessage {
                offset: ChatOffset(offset),
                at,
                user: UserId::from(who),
                nickname: Nickname::from(who),
                role,
                text: text.to_owned(),
                question: text.ends_with('？') || text.ends_with('?'),
                answered: false,
                call_answer: false,
                deleted: false,
            })),
        )
    };
    let react = |ms: u64, key: &str, n: u32| {
        (
            start.plus_ms(ms),
            Seen::Reactions(BTreeMap::from([(EmotionKey::from(key), n)])),
        )
    };
    let call = |ms: u64, answer: Option<u64>| {
        (
            start.plus_ms(ms),
            Seen::Call(Some(CallInfo {
                user: UserId::from("m-taro"),
                nickname: Nickname::from("たろう"),
                seat: None,
                by: Nickname::from("山田講師"),
                at: start.plus_ms(6_000),
                answer: answer.map(ChatOffset),
            })),
        )
    };
    let events = [
        say(
            1,
            500,
            "山田講師",
            Role::Instructor,
            "こんにちは、始めましょう / Hello, let's begin",
        ),
        react(1_000, "good", 4),
        say(
            2,
            2_000,
            "たろう",
            Role::Learner,
            "よろしくお願いします / Nice to meet you",
        ),
        (
            start.plus_ms(3_000),
            Seen::Announcement(Some(Announcement {
                text: "資料は 12 ページから / Slides from page 12".into(),
                by: Nickname::from("山田講師"),
                at: start.plus_ms(3_000),
            })),
        ),
        say(
            3,
            4_000,
            "はなこ",
            Role::Learner,
            "ここがわかりません？ / I'm lost here?",
        ),
        react(4_500, "lost", 6),
        call(6_000, None),
        say(
            4,
            7_000,
            "たろう",
            Role::Learner,
            "はい、答えます / Here is my answer",
        ),
        call(7_000, Some(4)),
        react(9_000, "applause", 9),
        say(
            5,
            10_000,
            "山田講師",
            Role::Instructor,
            "ありがとうございました / Thank you",
        ),
    ];
    for (at, seen) in events {
        b.push(at, seen);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_timeline_has_chat_a_call_an_announcement_and_reactions() {
        let t = timeline(UnixMillis(1_000_000)).finish();
        assert_eq!(t.chat.len(), 5);
        assert_eq!(t.calls.len(), 1);
        assert_eq!(t.calls[0].answer, Some(4));
        assert_eq!(t.announcements.len(), 1);
        assert_eq!(t.reactions.len(), 2);
        assert!(t.chat.iter().all(|l| l.t < DURATION_MS));
    }
}
