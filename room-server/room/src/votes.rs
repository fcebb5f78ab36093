//! Upvotes of questions: one per learner per question, counted exactly, and told to everyone
//! once a tick as the new counts of the questions that changed.

use protocol::server::QuestionVotes;
use protocol::{ChatOffset, UserId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Who upvoted which question, for the questions still in the chat history.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Votes {
    /// Voters by question offset; a question without votes has no entry.
    voters: BTreeMap<ChatOffset, BTreeSet<UserId>>,
    /// Questions whose count changed during the tick.
    changed: BTreeSet<ChatOffset>,
}

impl Votes {
    /// Adds `user`'s vote; false if they had already voted for it.
    pub(crate) fn add(&mut self, question: ChatOffset, user: &UserId) -> bool {
        let added = self
            .voters
            .entry(question)
            .or_default()
            .insert(user.clone());
        if added {
            self.changed.insert(question);
        }
        added
    }

    /// Takes back `user`'s vote; false if there was none.
    pub(crate) fn remove(&mut self, question: ChatOffset, user: &UserId) -> bool {
        let Some(voters) = self.voters.get_mut(&question) else {
            return false;
        };
        let removed = voters.remove(user);
        if voters.is_empty() {
            self.voters.remove(&question);
        }
        if removed {
            self.changed.insert(question);
        }
        removed
    }

    /// Forgets every vote of a deleted question (its count becomes 0 for everyone).
    pub(crate) fn clear(&mut self, question: ChatOffset) {
        if self.voters.remove(&question).is_some() {
            self.changed.insert(question);
        }
    }

    /// Forgets the votes of questions before `first_kept`, which left the chat history (no
    /// client can be shown them any more).
    pub(crate) fn forget_before(&mut self, first_kept: ChatOffset) {
        self.voters = self.voters.split_off(&first_kept);
        self.changed = self.changed.split_off(&first_kept);
    }

    /// The number of votes for `question`.
    pub(crate) fn count(&self, question: ChatOffset) -> u32 {
        self.voters
            .get(&question)
            .map_or(0, |v| u32::try_from(v.len()).unwrap_or(u32::MAX))
    }

    /// Every question with votes and its count, in offset order.
    pub(crate) fn counts(&self) -> Vec<QuestionVotes> {
        self.voters
            .keys()
            .map(|offset| QuestionVotes {
                offset: *offset,
                votes: self.count(*offset),
            })
            .collect()
    }

    /// The questions `user` voted for, in offset order.
    pub(crate) fn of(&self, user: &UserId) -> Vec<ChatOffset> {
        self.voters
            .iter()
            .filter(|(_, voters)| voters.contains(user))
            .map(|(offset, _)| *offset)
            .collect()
    }

    /// The counts of the questions that changed during the tick, and a fresh start.
    pub(crate) fn take_changes(&mut self) -> Vec<QuestionVotes> {
        std::mem::take(&mut self.changed)
            .into_iter()
            .map(|offset| QuestionVotes {
                offset,
                votes: self.count(offset),
            })
            .collect()
    }

    /// Whether the next tick has counts to tell.
    pub(crate) fn has_changes(&self) -> bool {
        !self.changed.is_empty()
    }
}
