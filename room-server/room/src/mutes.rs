//! The staff's list of muted learners: sent whole whenever it changes (a mute, an unmute, a
//! mute running out), and the timer that ends mutes on the room's time.

use super::{Audience, Output, Room};
use protocol::server::MutedLearner;
use protocol::{ServerMsg, UnixMillis};

impl Room {
    /// Mutes that ran out end: the learner and the staff are told.
    pub(crate) fn expire_mutes(&mut self, now: UnixMillis) {
        let mut ended = Vec::new();
        for a in self.attendees.values_mut() {
            if a.muted_until.is_some_and(|t| t <= now) {
                a.muted_until = None;
                ended.extend(a.conn);
            }
        }
        // In connection order: the same outputs in the same order on every node.
        ended.sort();
        for conn in ended {
            self.send_to(conn, ServerMsg::Muted { until: None });
        }
        self.mutes_changed(now);
    }

    /// The muted learners changed: the staff get the list, and the next expiry is noted.
    pub(crate) fn mutes_changed(&mut self, now: UnixMillis) {
        self.next_mute_expiry = self.attendees.values().filter_map(|a| a.muted_until).min();
        let muted = self.muted_learners(now);
        self.outputs.push_back(Output::Send {
            to: Audience::Staff,
            msg: ServerMsg::MutedLearners { muted },
        });
    }

    /// Every learner muted at `now`, soonest end first.
    pub(crate) fn muted_learners(&self, now: UnixMillis) -> Vec<MutedLearner> {
        let mut muted: Vec<MutedLearner> = self
            .attendees
            .iter()
            .filter_map(|(user, a)| {
                let until = a.muted_until.filter(|t| *t > now)?;
                Some(MutedLearner {
                    user: user.clone(),
                    nickname: a.nickname.clone(),
                    until,
                })
            })
            .collect();
        muted.sort_by(|a, b| a.until.cmp(&b.until).then_with(|| a.user.cmp(&b.user)));
        muted
    }
}
