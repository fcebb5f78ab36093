//! The chat stream: offsets, bounded history, resume, and what a valid text is.

use protocol::server::{ChatEvent, ChatMessage, Replay};
use protocol::{ChatOffset, ErrorCode, ResumeFrom};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// A lecture's chat stream on this room: every event gets the next offset; the last
/// `capacity` events are kept for snapshots and resume.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ChatLog {
    /// Offset of the newest event (0 before the first).
    last: ChatOffset,
    /// The newest events, oldest first, with contiguous offsets.
    history: VecDeque<ChatEvent>,
    capacity: usize,
    /// The newest events a snapshot carries (a welcome's weight stays small in a busy room).
    snapshot_len: usize,
}

impl ChatLog {
    pub(crate) fn new(capacity: usize, snapshot_len: usize) -> Self {
        Self {
            last: ChatOffset(0),
            history: VecDeque::new(),
            capacity: capacity.max(1),
            snapshot_len: snapshot_len.max(1),
        }
    }

    pub(crate) fn last(&self) -> ChatOffset {
        self.last
    }

    /// Offset of the oldest event still kept, if any.
    pub(crate) fn first_kept(&self) -> Option<ChatOffset> {
        self.history.front().map(ChatEvent::offset)
    }

    /// Appends the event `make` builds for the next offset and returns a copy to broadcast.
    pub(crate) fn append(&mut self, make: impl FnOnce(ChatOffset) -> ChatEvent) -> ChatEvent {
        self.last = self.last.next();
        let event = make(self.last);
        debug_assert_eq!(event.offset(), self.last);
        if self.history.len() == self.capacity {
            self.history.pop_front();
        }
        self.history.push_back(event.clone());
        event
    }

    /// The kept message at `offset`, if it is a message and still in history.
    pub(crate) fn message_mut(&mut self, offset: ChatOffset) -> Option<&mut ChatMessage> {
        let first = self.history.front()?.offset();
        let index = usize::try_from(offset.0.checked_sub(first.0)?).ok()?;
        match self.history.get_mut(index)? {
            ChatEvent::Message(m) => Some(m),
            _ => None,
        }
    }

    /// What a (re)joining client needs: exactly the events after its offset when history
    /// reaches back that far in the same epoch (however many), or else a snapshot: the
    /// newest `snapshot_len` events.
    pub(crate) fn replay_for(
        &self,
        resume: Option<ResumeFrom>,
        epoch_matches: bool,
    ) -> (Replay, Vec<ChatEvent>) {
        if let Some(from) = resume.filter(|_| epoch_matches) {
            let first_kept = self
                .history
                .front()
                .map_or(self.last.next(), ChatEvent::offset);
            // The client has everything up to `from.offset`; history must hold the next one.
            if from.offset <= self.last && from.offset.next() >= first_kept {
                let missed = self
                    .history
                    .iter()
                    .filter(|e| e.offset() > from.offset)
                    .cloned()
                    .collect();
                return (Replay::Missed, missed);
            }
        }
        let skip = self.history.len().saturating_sub(self.snapshot_len);
        (
            Replay::Snapshot,
            self.history.iter().skip(skip).cloned().collect(),
        )
    }

    #[cfg(test)]
    pub(crate) fn history(&self) -> &VecDeque<ChatEvent> {
        &self.history
    }
}

/// Bidirectional overrides and isolates: invisible, and able to make a message or nickname
/// read as something else.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Trims `text` and checks it is 1 to `max_chars` characters of printable text.
pub(crate) fn clean_text(text: &str, max_chars: u32) -> Result<String, (ErrorCode, String)> {
    let text = text.trim();
    if text.is_empty() {
        return Err((ErrorCode::ChatEmpty, "the message is empty".to_owned()));
    }
    let chars = text.chars().count();
    if chars > max_chars as usize {
        return Err((
            ErrorCode::TextTooLong,
            format!("{chars} characters; at most {max_chars} are allowed"),
        ));
    }
    if text.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Err((
            ErrorCode::InvalidCharacters,
            "control characters are not allowed".to_owned(),
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_bounded_and_printable() {
        assert_eq!(clean_text("  hi  ", 500), Ok("hi".to_owned()));
        assert_eq!(
            clean_text(" \t ", 500).map_err(|e| e.0),
            Err(ErrorCode::ChatEmpty)
        );
        assert_eq!(
            clean_text(&"あ".repeat(500), 500).map(|t| t.chars().count()),
            Ok(500)
        );
        assert_eq!(
            clean_text(&"あ".repeat(501), 500).map_err(|e| e.0),
            Err(ErrorCode::TextTooLong)
        );
        assert_eq!(
            clean_text("a\u{7}b", 500).map_err(|e| e.0),
            Err(ErrorCode::InvalidCharacters)
        );
        assert_eq!(
            clean_text("a\nb", 500).map_err(|e| e.0),
            Err(ErrorCode::InvalidCharacters)
        );
        assert_eq!(
            clean_text("abc\u{202E}fed", 500).map_err(|e| e.0),
            Err(ErrorCode::InvalidCharacters)
        );
        assert_eq!(
            clean_text("<b>hi</b>", 500),
            Ok("<b>hi</b>".to_owned()),
            "HTML is text, kept as sent"
        );
    }
}
