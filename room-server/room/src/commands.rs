//! What each client command does. Every command checks the sender's role first; a refusal is
//! an `Err` with a code and a sentence, turned into an `error` message by the caller.

use super::chat::clean_text;
use super::seats::SitError;
use super::{Audience, Call, ConnId, Output, Room};
use protocol::server::{Announcement, ChatEvent, ChatMessage, Phase};
use protocol::{
    ChatOffset, ClientMsg, CloseCode, ErrorCode, Nickname, Seat, ServerMsg, UnixMillis, UserId,
};

/// A refused command: its code and a sentence for the person.
type Refusal = (ErrorCode, String);

fn refuse<T>(code: ErrorCode, message: impl Into<String>) -> Result<T, Refusal> {
    Err((code, message.into()))
}

/// The question at `target` among the messages `shown` keeps: refused as not found, or as not a
/// question.
fn question_mut(
    chat: &mut super::chat::ChatLog,
    target: ChatOffset,
    shown: impl Fn(&ChatMessage) -> bool,
) -> Result<&mut ChatMessage, Refusal> {
    let Some(message) = chat.message_mut(target).filter(|m| shown(m)) else {
        return refuse(
            ErrorCode::NotFound,
            format!("no chat message at offset {}", target.0),
        );
    };
    if !message.question {
        return refuse(
            ErrorCode::NotAQuestion,
            format!("the message at offset {} is not a question", target.0),
        );
    }
    Ok(message)
}

/// What a command needs of the sender's role.
#[derive(Clone, Copy)]
enum Needs {
    Anyone,
    Learner,
    Staff,
    Instructor,
}

fn needs(msg: &ClientMsg) -> Needs {
    match msg {
        ClientMsg::Hello { .. }
        | ClientMsg::Leave
        | ClientMsg::Chat { .. }
        | ClientMsg::SeatNames { .. }
        | ClientMsg::Ping { .. } => Needs::Anyone,
        ClientMsg::TakeSeat { .. }
        | ClientMsg::LeaveSeat
        | ClientMsg::React { .. }
        | ClientMsg::RaiseHand
        | ClientMsg::Upvote { .. }
        | ClientMsg::Unvote { .. } => Needs::Learner,
        // A learner lowers their own hand, staff anyone's: checked by the command.
        ClientMsg::LowerHand { .. } => Needs::Anyone,
        ClientMsg::DeleteChat { .. }
        | ClientMsg::MarkAnswered { .. }
        | ClientMsg::CallOn { .. }
        | ClientMsg::ClearCall
        | ClientMsg::Announce { .. }
        | ClientMsg::ClearAnnouncement
        | ClientMsg::Mute { .. }
        | ClientMsg::Unmute { .. }
        | ClientMsg::Remove { .. } => Needs::Staff,
        ClientMsg::StartLecture | ClientMsg::EndLecture => Needs::Instructor,
        // The session handles media itself; the core only refuses what reaches it.
        ClientMsg::MediaOffer { .. }
        | ClientMsg::MediaAnswer { .. }
        | ClientMsg::MediaCandidate { .. }
        | ClientMsg::MediaStop => Needs::Anyone,
    }
}

impl Room {
    pub(super) fn command(
        &mut self,
        now: UnixMillis,
        conn: ConnId,
        user: &UserId,
        msg: ClientMsg,
    ) -> Result<(), Refusal> {
        let role = self
            .attendees
            .get(user)
            .map(|a| a.role)
            .ok_or((ErrorCode::NotFound, "not in the room".to_owned()))?;
        match needs(&msg) {
            Needs::Learner if role.is_staff() => {
                return refuse(ErrorCode::NotAllowed, "only learners can do this");
            }
            Needs::Staff if !role.is_staff() => {
                return refuse(
                    ErrorCode::NotAllowed,
                    "only the instructor and moderators can do this",
                );
            }
            Needs::Instructor if role != protocol::Role::Instructor => {
                return refuse(ErrorCode::NotAllowed, "only the instructor can do this");
            }
            _ => {}
        }
        match msg {
            ClientMsg::MediaOffer { .. }
            | ClientMsg::MediaAnswer { .. }
            | ClientMsg::MediaCandidate { .. }
            | ClientMsg::MediaStop => refuse(
                ErrorCode::NotAllowed,
                "media messages are handled by the connection, not the room",
            ),
            ClientMsg::Hello { .. } => refuse(
                ErrorCode::AlreadyEntered,
                "this connection has already entered",
            ),
            ClientMsg::TakeSeat { seat } => {
                self.take_seat(user, seat)?;
                self.send_to(conn, ServerMsg::YourSeat { seat: Some(seat) });
                Ok(())
            }
            ClientMsg::LeaveSeat => {
                self.stand(user);
                self.send_to(conn, ServerMsg::YourSeat { seat: None });
                Ok(())
            }
            ClientMsg::SeatNames { seats } => {
                // Answered before it gets here (`handle_command`); the same answer if not.
                self.handle_seat_names(conn, None, &seats);
                Ok(())
            }
            ClientMsg::Leave => {
                // The 退室 button: the seat is freed at once, not held; a normal closure.
                self.take_out(now, user, None);
                Ok(())
            }
            ClientMsg::Chat { text, question } => self.chat(now, user, &text, question),
            ClientMsg::DeleteChat { offset } => self.delete_chat(now, offset),
            ClientMsg::MarkAnswered { offset } => self.mark_answered(now, offset),
            ClientMsg::React { emotion } => {
                let index = self.reactions.index_of(&emotion).ok_or((
                    ErrorCode::UnknownEmotion,
                    format!("this lecture has no `{emotion}` button"),
                ))?;
                self.react(now, conn, user, index);
                Ok(())
            }
            ClientMsg::CallOn {
                nickname,
                seat,
                user: target,
            } => self.call_on(now, user, nickname, seat, target),
            ClientMsg::RaiseHand => {
                if self.hands.raise(user, now) {
                    self.send_to(
                        conn,
                        ServerMsg::YourHand {
                            raised_at: Some(now),
                        },
                    );
                }
                Ok(())
            }
            ClientMsg::LowerHand { user: target } => {
                let target = match (role.is_staff(), target) {
                    (false, None) => user.clone(),
                    (false, Some(target)) if &target == user => target,
                    (false, Some(_)) => {
                        return refuse(
                            ErrorCode::NotAllowed,
                            "only the instructor and moderators can lower another's hand",
                        );
                    }
                    (true, Some(target)) => {
                        self.learner_target(&target)?;
                        target
                    }
                    (true, None) => {
                        return refuse(ErrorCode::InvalidArgument, "name the learner's `user`");
                    }
                };
                self.lower_hand(&target);
                Ok(())
            }
            ClientMsg::Upvote { offset } => self.upvote(user, offset),
            ClientMsg::Unvote { offset } => {
                self.votes.remove(offset, user);
                Ok(())
            }
            ClientMsg::ClearCall => {
                if self.call.take().is_some() {
                    self.broadcast(ServerMsg::Call { current: None });
                }
                Ok(())
            }
            ClientMsg::Announce { text } => {
                let text = clean_text(&text, self.settings.announcement_max_chars)?;
                let by = self.nickname_of(user);
                let current = Announcement { text, by, at: now };
                self.announcement = Some(current.clone());
                self.broadcast(ServerMsg::Announcement {
                    current: Some(current),
                });
                Ok(())
            }
            ClientMsg::ClearAnnouncement => {
                if self.announcement.take().is_some() {
                    self.broadcast(ServerMsg::Announcement { current: None });
                }
                Ok(())
            }
            ClientMsg::Mute {
                user: target,
                seconds,
            } => {
                if seconds == 0 || seconds > self.settings.max_mute_secs {
                    return refuse(
                        ErrorCode::InvalidArgument,
                        format!("a mute lasts 1 to {} seconds", self.settings.max_mute_secs),
                    );
                }
                self.set_mute(now, &target, Some(now.plus_ms(u64::from(seconds) * 1000)))
            }
            ClientMsg::Unmute { user: target } => self.set_mute(now, &target, None),
            ClientMsg::Remove {
                user: target,
                allow_return,
            } => self.remove(now, &target, allow_return),
            ClientMsg::StartLecture => match self.phase {
                Phase::DoorsOpen => {
                    self.set_phase(Phase::Live { since: now });
                    self.outputs.push_back(Output::Started { at: now });
                    Ok(())
                }
                Phase::Scheduled => refuse(ErrorCode::WrongPhase, "the doors are not open yet"),
                _ => refuse(ErrorCode::WrongPhase, "the lecture is already live"),
            },
            ClientMsg::EndLecture => {
                self.finish(Phase::Ended { at: now }, CloseCode::LectureEnded);
                self.outputs.push_back(Output::Ended { at: now });
                Ok(())
            }
            ClientMsg::Ping { t } => {
                let msg = ServerMsg::Pong {
                    t,
                    server_time: now,
                };
                self.outputs.push_back(Output::Send {
                    to: Audience::One(conn),
                    msg,
                });
                Ok(())
            }
        }
    }

    fn broadcast(&mut self, msg: ServerMsg) {
        self.outputs.push_back(Output::Send {
            to: Audience::Everyone,
            msg,
        });
    }

    fn nickname_of(&self, user: &UserId) -> Nickname {
        self.attendees
            .get(user)
            .map(|a| a.nickname.clone())
            .unwrap_or_else(|| Nickname::from(""))
    }

    fn take_seat(&mut self, user: &UserId, seat: Seat) -> Result<(), Refusal> {
        match self.grid.sit(user, seat) {
            // The grid queues the changed seats for the tick.
            Ok(_left) => Ok(()),
            Err(SitError::OutOfRange) => refuse(
                ErrorCode::SeatOutOfRange,
                format!(
                    "seat {seat} is outside the {}×{} grid",
                    self.info.rows, self.info.cols
                ),
            ),
            Err(SitError::Taken) => refuse(ErrorCode::SeatTaken, format!("seat {seat} is taken")),
        }
    }

    /// The 退室 button: the seat is freed at once, not held.
    fn chat(
        &mut self,
        now: UnixMillis,
        user: &UserId,
        text: &str,
        question: bool,
    ) -> Result<(), Refusal> {
        let (interval, burst) = (self.settings.chat_interval_ms, self.settings.chat_burst);
        let Some(attendee) = self.attendees.get_mut(user) else {
            return refuse(ErrorCode::NotFound, "not in the room");
        };
        if let Some(until) = attendee.muted_until.filter(|t| *t > now) {
            let secs = until.since(now).div_ceil(1000);
            return refuse(
                ErrorCode::Muted,
                format!("you are muted for {secs} more seconds"),
            );
        }
        let text = clean_text(text, self.settings.chat_max_chars)?;
        // One learner cannot push everyone else's words (questions too) out of the history.
        if !attendee.role.is_staff() && !attendee.chat_lines.try_take(now, interval, burst) {
            return refuse(
                ErrorCode::RateLimited,
                format!(
                    "at most {burst} messages at once, then one every {} seconds",
                    interval.div_ceil(1000)
                ),
            );
        }
        let (nickname, role) = (attendee.nickname.clone(), attendee.role);
        let call_answer = self
            .call
            .as_ref()
            .is_some_and(|c| &c.user == user && c.answer.is_none());
        let event = self.chat.append(|offset| {
            ChatEvent::Message(ChatMessage {
                offset,
                at: now,
                user: user.clone(),
                nickname,
                role,
                text,
                question,
                answered: false,
                call_answer,
                deleted: false,
            })
        });
        let offset = event.offset();
        self.broadcast(ServerMsg::Chat { event });
        if call_answer && let Some(call) = self.call.as_mut() {
            call.answer = Some(offset);
            self.broadcast(ServerMsg::Call {
                current: self.call_info(),
            });
        }
        Ok(())
    }

    fn delete_chat(&mut self, now: UnixMillis, target: ChatOffset) -> Result<(), Refusal> {
        let Some(message) = self.chat.message_mut(target) else {
            return refuse(
                ErrorCode::NotFound,
                format!("no chat message at offset {}", target.0),
            );
        };
        if message.deleted {
            return Ok(());
        }
        message.deleted = true;
        message.text.clear();
        self.votes.clear(target);
        let event = self.chat.append(|offset| ChatEvent::Deleted {
            offset,
            at: now,
            target,
        });
        self.broadcast(ServerMsg::Chat { event });
        Ok(())
    }

    fn mark_answered(&mut self, now: UnixMillis, target: ChatOffset) -> Result<(), Refusal> {
        let message = question_mut(&mut self.chat, target, |_| true)?;
        if message.answered {
            return Ok(());
        }
        message.answered = true;
        let event = self.chat.append(|offset| ChatEvent::Answered {
            offset,
            at: now,
            target,
        });
        self.broadcast(ServerMsg::Chat { event });
        Ok(())
    }

    /// `user` upvotes the question at `target`: once, not their own, not a deleted one.
    fn upvote(&mut self, user: &UserId, target: ChatOffset) -> Result<(), Refusal> {
        let message = question_mut(&mut self.chat, target, |m| !m.deleted)?;
        if &message.user == user {
            return refuse(ErrorCode::NotAllowed, "you cannot upvote your own question");
        }
        if !self.votes.add(target, user) {
            return refuse(
                ErrorCode::AlreadyVoted,
                format!("you already upvoted the question at offset {}", target.0),
            );
        }
        Ok(())
    }

    fn react(&mut self, now: UnixMillis, conn: ConnId, user: &UserId, emotion: usize) {
        let (interval, burst, tick) = (
            self.settings.reaction_interval_ms,
            self.settings.reaction_burst,
            self.tick_count,
        );
        let Some(attendee) = self.attendees.get_mut(user) else {
            return;
        };
        if attendee.presses.try_take(now, interval, burst) {
            let seat = self.grid.seat_of(user);
            self.reactions.record(emotion, seat);
        } else if attendee.press_notice_tick != Some(tick) {
            attendee.press_notice_tick = Some(tick);
            let message =
                format!("at most {burst} reactions at once, then one every {interval} ms");
            self.send_error(conn, ErrorCode::RateLimited, message, Some("react"), None);
        }
    }

    fn call_on(
        &mut self,
        now: UnixMillis,
        caller: &UserId,
        nickname: Option<Nickname>,
        seat: Option<Seat>,
        user: Option<UserId>,
    ) -> Result<(), Refusal> {
        let target = match (nickname, seat, user) {
            (None, None, Some(user)) => {
                // A raised hand waits for a learner who dropped, like a held seat.
                let present = self.attendees.get(&user).is_some_and(|a| {
                    !a.role.is_staff()
                        && (a.conn.is_some()
                            || self.grid.seat_of(&user).is_some()
                            || self.hands.raised_at(&user).is_some())
                });
                if !present {
                    return refuse(
                        ErrorCode::NotFound,
                        format!("no learner {user} is in the room"),
                    );
                }
                user
            }
            (Some(nickname), None, None) => {
                let mut found = self.attendees.iter().filter(|(u, a)| {
                    !a.role.is_staff()
                        && a.nickname == nickname
                        && (a.conn.is_some() || self.grid.seat_of(u).is_some())
                });
                match (found.next(), found.next()) {
                    (Some((user, _)), None) => user.clone(),
                    (None, _) => {
                        return refuse(
                            ErrorCode::NotFound,
                            format!("nobody called {nickname} is in the room"),
                        );
                    }
                    (Some(_), Some(_)) => {
                        return refuse(
                            ErrorCode::AmbiguousNickname,
                            format!("several learners are called {nickname}; call on them by seat"),
                        );
                    }
                }
            }
            (None, Some(seat), None) => {
                if seat.row >= self.info.rows || seat.col >= self.info.cols {
                    return refuse(
                        ErrorCode::SeatOutOfRange,
                        format!("seat {seat} is outside the grid"),
                    );
                }
                match self.grid.occupant(seat) {
                    Some(user) => user.clone(),
                    None => return refuse(ErrorCode::NotFound, format!("nobody sits at {seat}")),
                }
            }
            _ => {
                return refuse(
                    ErrorCode::InvalidArgument,
                    "name one of a nickname, a seat or a user",
                );
            }
        };
        let by = self.nickname_of(caller);
        // Called on: the hand they raised has been answered.
        self.lower_hand(&target);
        self.call = Some(Call {
            user: target.clone(),
            by: by.clone(),
            at: now,
            answer: None,
        });
        self.broadcast(ServerMsg::Call {
            current: self.call_info(),
        });
        if let Some(conn) = self.attendees.get(&target).and_then(|a| a.conn) {
            self.outputs.push_back(Output::Send {
                to: Audience::One(conn),
                msg: ServerMsg::CalledOnYou { by, at: now },
            });
        }
        Ok(())
    }

    /// The learner `target` as a moderation target: present (or known) and not staff.
    fn learner_target(&self, target: &UserId) -> Result<(), Refusal> {
        match self.attendees.get(target) {
            None => refuse(
                ErrorCode::NotFound,
                format!("no learner {target} in this room"),
            ),
            Some(a) if a.role.is_staff() => refuse(
                ErrorCode::NotAllowed,
                "instructors and moderators cannot be moderated",
            ),
            Some(_) => Ok(()),
        }
    }

    fn set_mute(
        &mut self,
        now: UnixMillis,
        target: &UserId,
        until: Option<UnixMillis>,
    ) -> Result<(), Refusal> {
        self.learner_target(target)?;
        if let Some(a) = self.attendees.get_mut(target) {
            a.muted_until = until;
            if let Some(conn) = a.conn {
                self.outputs.push_back(Output::Send {
                    to: Audience::One(conn),
                    msg: ServerMsg::Muted { until },
                });
            }
        }
        self.mutes_changed(now);
        Ok(())
    }

    fn remove(
        &mut self,
        now: UnixMillis,
        target: &UserId,
        allow_return: bool,
    ) -> Result<(), Refusal> {
        self.learner_target(target)?;
        if !allow_return
            && self.banned.insert(target.clone())
            && let Some(attendee) = self.attendees.get(target)
        {
            self.outputs.push_back(Output::Banned {
                account: attendee.account.clone(),
                at: now,
            });
        }
        let code = if allow_return {
            CloseCode::Removed
        } else {
            CloseCode::Banned
        };
        self.take_out(now, target, Some(code));
        Ok(())
    }
}
