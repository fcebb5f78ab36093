//! The `[room]` table: room settings an operator may tune.

use super::ConfigError;
use room::RoomSettings;
use serde::Deserialize;

/// Room settings an operator may tune (the `[room]` table).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RoomTuning {
    /// How long a dropped learner's seat is held.
    pub seat_grace_secs: u64,
    /// Longest chat message, in characters.
    pub chat_max_chars: u32,
    /// Chat events kept for snapshots and resume.
    pub history_len: usize,
    /// The newest chat events a welcome carries to someone entering (not resuming).
    pub welcome_chat_len: usize,
    /// Batching period of seats, presence and reactions.
    pub tick_ms: u64,
    /// How long after the scheduled end a room ends by itself.
    pub end_grace_secs: u64,
    /// One emotion press per this many milliseconds per learner…
    pub reaction_interval_ms: u64,
    /// …and this many in a burst.
    pub reaction_burst: u32,
    /// One chat line per this many milliseconds per learner…
    pub chat_interval_ms: u64,
    /// …and this many in a burst.
    pub chat_burst: u32,
    /// With Redis: a snapshot of a running room is written after this many log entries…
    pub snapshot_every_entries: u64,
    /// …or this many seconds, whichever comes first (if anything happened meanwhile).
    pub snapshot_every_secs: u64,
    /// With Redis: a room takes no more commands from its people while this many of its
    /// entries wait to be appended (Redis slow or away); they wait in the sockets meanwhile.
    pub appends_waiting_max: usize,
}

impl Default for RoomTuning {
    fn default() -> Self {
        let s = RoomSettings::default();
        Self {
            seat_grace_secs: s.seat_grace_ms / 1000,
            chat_max_chars: s.chat_max_chars,
            history_len: s.history_len,
            welcome_chat_len: s.welcome_chat_len,
            tick_ms: s.tick_ms,
            end_grace_secs: s.end_grace_ms / 1000,
            reaction_interval_ms: s.reaction_interval_ms,
            reaction_burst: s.reaction_burst,
            chat_interval_ms: s.chat_interval_ms,
            chat_burst: s.chat_burst,
            snapshot_every_entries: 10_000,
            snapshot_every_secs: 60,
            appends_waiting_max: 10_000,
        }
    }
}

impl RoomTuning {
    /// The room settings these make, for a room of chat generation `epoch`.
    pub fn settings(&self, epoch: protocol::Epoch) -> RoomSettings {
        RoomSettings {
            epoch,
            seat_grace_ms: self.seat_grace_secs * 1000,
            chat_max_chars: self.chat_max_chars,
            history_len: self.history_len,
            welcome_chat_len: self.welcome_chat_len,
            tick_ms: self.tick_ms,
            end_grace_ms: self.end_grace_secs * 1000,
            reaction_interval_ms: self.reaction_interval_ms,
            reaction_burst: self.reaction_burst,
            chat_interval_ms: self.chat_interval_ms,
            chat_burst: self.chat_burst,
            ..RoomSettings::default()
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(format!("[room] {m}")));
        if !(10..=5000).contains(&self.tick_ms) {
            return bad("tick_ms must be 10 to 5000");
        }
        if !(1..=100_000).contains(&self.history_len) {
            return bad("history_len must be 1 to 100000");
        }
        if !(1..=self.history_len).contains(&self.welcome_chat_len) {
            return bad("welcome_chat_len must be 1 to history_len");
        }
        if !(1..=10_000).contains(&self.chat_max_chars) {
            return bad("chat_max_chars must be 1 to 10000");
        }
        if !(100..=1_000_000).contains(&self.snapshot_every_entries) {
            return bad("snapshot_every_entries must be 100 to 1000000");
        }
        if !(1..=1_000_000).contains(&self.appends_waiting_max) {
            return bad("appends_waiting_max must be 1 to 1000000");
        }
        if !(1..=3600).contains(&self.snapshot_every_secs) {
            return bad("snapshot_every_secs must be 1 to 3600");
        }
        if self.reaction_burst == 0 || self.chat_burst == 0 {
            return bad("reaction_burst and chat_burst must be at least 1");
        }
        Ok(())
    }
}
