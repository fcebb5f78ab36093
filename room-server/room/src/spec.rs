//! What a room is created from besides the lecture's facts (the wire's
//! [`protocol::server::LectureInfo`]): the room's settings, and the default emotion buttons.

use protocol::server::Emotion;
use protocol::{EmotionKey, Epoch};
use serde::{Deserialize, Serialize};

/// The five buttons a lecture has unless it sets its own.
pub fn default_emotions() -> Vec<Emotion> {
    [
        ("good", "いいね", "Good"),
        ("i_see", "なるほど", "I see"),
        ("lost", "わからない", "Lost"),
        ("applause", "拍手", "Applause"),
        ("slower", "ゆっくり", "Slower, please"),
    ]
    .into_iter()
    .map(|(key, ja, en)| Emotion {
        key: EmotionKey::from(key),
        label_ja: ja.to_owned(),
        label_en: en.to_owned(),
    })
    .collect()
}

/// Tunables of a room. The defaults are what a lecture of a few thousand learners needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoomSettings {
    /// Generation of the chat stream; a new room gets a new one so that offsets from an
    /// earlier room are never mistaken for this one's.
    pub epoch: Epoch,
    /// How long before the start learners may enter.
    pub doors_open_before_ms: u64,
    /// How long after the scheduled end the room ends by itself if the instructor has not.
    pub end_grace_ms: u64,
    /// How long a dropped learner's seat is held for their return.
    pub seat_grace_ms: u64,
    /// Longest chat message, in characters.
    pub chat_max_chars: u32,
    /// Longest announcement, in characters.
    pub announcement_max_chars: u32,
    /// How many chat events are kept for snapshots and resume.
    pub history_len: usize,
    /// How many of the newest a snapshot welcome carries (a resume gets everything it
    /// missed that is kept).
    pub welcome_chat_len: usize,
    /// Batching period of seat changes, presence and reactions.
    pub tick_ms: u64,
    /// A learner earns one emotion press per this many milliseconds…
    pub reaction_interval_ms: u64,
    /// …and may press this many in a burst.
    pub reaction_burst: u32,
    /// A learner earns one chat line per this many milliseconds…
    pub chat_interval_ms: u64,
    /// …and may send this many in a burst. Staff are not limited.
    pub chat_burst: u32,
    /// Length of the instructor's rolling emotion meter.
    pub meter_window_ms: u64,
    /// Longest mute an instructor may give, in seconds.
    pub max_mute_secs: u32,
}

impl Default for RoomSettings {
    fn default() -> Self {
        Self {
            epoch: Epoch(1),
            doors_open_before_ms: 60 * 60 * 1000,
            end_grace_ms: 30 * 60 * 1000,
            seat_grace_ms: 2 * 60 * 1000,
            chat_max_chars: 500,
            announcement_max_chars: 1000,
            history_len: 1000,
            welcome_chat_len: 50,
            tick_ms: 250,
            reaction_interval_ms: 200,
            reaction_burst: 10,
            chat_interval_ms: 2_000,
            chat_burst: 5,
            meter_window_ms: 60 * 1000,
            max_mute_secs: 24 * 60 * 60,
        }
    }
}
