//! A careful learner: numbered commands, resends after reconnecting, gapless chat checked.

use super::*;

/// A learner as a careful client is written (docs/protocol.md, "Acknowledgements"): it numbers
/// what it says, keeps each until acknowledged, reconnects after a reconnect code or a dropped
/// connection (resuming where its chat left off, through any node), and then sends again what
/// was not acknowledged. It checks the chat stream as it goes: offsets without gaps.
#[derive(Debug)]
pub struct Learner {
    pub user: String,
    nickname: String,
    /// Room URLs to enter through, tried in turn on each reconnect.
    urls: Vec<String>,
    ticket: fn(&str, &str, Role) -> String,
    client: Option<Client>,
    /// Where its chat stream is (checked gapless as events come).
    resume: Option<ResumeFrom>,
    /// Where the shared stream was left while its node ran on alone (`fork_of`): the next
    /// connection resumes from there.
    fork_of: Option<ResumeFrom>,
    next_id: u64,
    /// What was said and not yet acknowledged, by number.
    pub pending: std::collections::BTreeMap<u64, String>,
    /// Every chat message of the lecture this learner has, as (offset, text), in order.
    pub heard: Vec<(u64, String)>,
    /// The close codes that made it reconnect (`None`: the connection just broke).
    pub closes: Vec<Option<u16>>,
    /// Refusals of numbered commands.
    pub refused: Vec<protocol::ErrorCode>,
    /// Whether its node said it lost the other nodes (`service` degraded) at some point.
    pub saw_degraded: bool,
    /// Where the room last said this learner sits.
    pub seat: Option<protocol::Seat>,
}

impl Learner {
    /// Enters through `urls[0]`.
    pub async fn enter(
        user: &str,
        nickname: &str,
        urls: Vec<String>,
        ticket: fn(&str, &str, Role) -> String,
    ) -> Self {
        let mut learner = Self {
            user: user.to_owned(),
            nickname: nickname.to_owned(),
            urls,
            ticket,
            client: None,
            resume: None,
            fork_of: None,
            // Any start does; a distinct one per learner shows the numbers are per person.
            next_id: 1_000 * (1 + user.len() as u64),
            pending: std::collections::BTreeMap::new(),
            heard: Vec::new(),
            closes: Vec::new(),
            refused: Vec::new(),
            saw_degraded: false,
            seat: None,
        };
        learner.connect(0).await;
        learner
    }

    async fn connect(&mut self, attempt: usize) {
        let url = self.urls[attempt % self.urls.len()].clone();
        let ticket = (self.ticket)(&self.user, &self.nickname, Role::Learner);
        let Ok(mut client) = Client::connect(&url, Codec::MsgPack).await else {
            return;
        };
        if client
            .send_command(
                &ClientMsg::Hello {
                    ticket,
                    resume: self.fork_of.or(self.resume),
                }
                .into(),
            )
            .await
            .is_err()
        {
            return;
        }
        let welcome = match client.next_within(WAIT).await {
            Some(Got::Msg(ServerMsg::Welcome(w))) => *w,
            _ => return,
        };
        self.welcomed(&welcome);
        // What was not acknowledged goes again, in order: the room applies each number once.
        for (id, text) in self.pending.clone() {
            let command = protocol::Command {
                id: Some(protocol::CommandId(id)),
                msg: ClientMsg::Chat {
                    text,
                    question: false,
                },
            };
            if client.send_command(&command).await.is_err() {
                return;
            }
        }
        self.client = Some(client);
    }

    /// Applies a welcome: on entering, or a fresh one on an open connection (a node running its
    /// room on alone while Redis is away starts a new chat generation).
    fn welcomed(&mut self, welcome: &Welcome) {
        let events = welcome.chat.iter().filter_map(|e| match e {
            protocol::server::ChatEvent::Message(m) => Some((m.offset.0, m.text.clone())),
            _ => None,
        });
        match welcome.replay {
            protocol::server::Replay::Missed => {
                // Back in the shared stream after a fork: what the fork showed past the point
                // it left is replayed with the shared offsets.
                if let Some(left) = self.fork_of.filter(|f| f.epoch == welcome.epoch) {
                    self.heard.retain(|(offset, _)| *offset <= left.offset.0);
                }
                self.heard.extend(events);
            }
            protocol::server::Replay::Snapshot => self.heard = events.collect(),
        }
        self.fork_of = welcome.fork_of;
        self.resume = Some(ResumeFrom {
            epoch: welcome.epoch,
            offset: welcome.last_offset,
        });
        self.seat = welcome.your_seat;
    }

    /// The room URLs to come back through from now on (a load balancer's new choice).
    pub fn come_back_through(&mut self, urls: Vec<String>) {
        self.urls = urls;
    }

    /// Drops the connection (as a load balancer moving it would): the next pump reconnects.
    pub fn drop_connection(&mut self) {
        self.client = None;
    }

    /// Sends `msg` unnumbered (taking a seat, pressing a button), if connected.
    pub async fn send(&mut self, msg: &ClientMsg) {
        if let Some(client) = &mut self.client {
            // Broken: the next pump notices and reconnects.
            let _ = client.send_command(&msg.clone().into()).await;
        }
    }

    /// Says `text` in the chat (kept until acknowledged).
    pub async fn say(&mut self, text: &str) {
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(id, text.to_owned());
        let command = protocol::Command {
            id: Some(protocol::CommandId(id)),
            msg: ClientMsg::Chat {
                text: text.to_owned(),
                question: false,
            },
        };
        if let Some(client) = &mut self.client
            && client.send_command(&command).await.is_err()
        {
            // Broken: the next read notices and reconnects; the text waits in `pending`.
        }
    }

    /// Handles what arrives for at most `wait`, reconnecting (through the next node, with
    /// back-off) as often as needed.
    pub async fn pump(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        let mut attempt = 0;
        while tokio::time::Instant::now() < deadline {
            let Some(client) = &mut self.client else {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                self.connect(attempt).await;
                continue;
            };
            let left = deadline - tokio::time::Instant::now();
            match client.next_within(left).await {
                None => return,
                Some(Got::Closed(code)) => {
                    assert!(
                        code.is_none_or(|c| protocol::CloseCode::from_code(c)
                            .is_some_and(protocol::CloseCode::is_reconnect)),
                        "{}: closed with a terminal code {code:?}",
                        self.user
                    );
                    self.closes.push(code);
                    self.client = None;
                }
                Some(Got::Msg(msg)) => self.take(msg),
            }
        }
    }

    fn take(&mut self, msg: ServerMsg) {
        match msg {
            ServerMsg::Chat { event } => {
                let offset = event.offset().0;
                if let Some(r) = &self.resume {
                    assert_eq!(offset, r.offset.0 + 1, "{}: a gap or a repeat", self.user);
                }
                if let protocol::server::ChatEvent::Message(m) = event {
                    self.heard.push((offset, m.text));
                } else {
                    self.heard.push((offset, String::new()));
                }
                if let Some(r) = &mut self.resume {
                    r.offset = protocol::ChatOffset(offset);
                }
            }
            ServerMsg::Ack { id } => {
                self.pending.remove(&id.0);
            }
            ServerMsg::Service { degraded: true } => self.saw_degraded = true,
            ServerMsg::YourSeat { seat } => self.seat = seat,
            ServerMsg::Welcome(welcome) => self.welcomed(&welcome),
            ServerMsg::Error {
                code, id: Some(id), ..
            } => {
                self.pending.remove(&id.0);
                self.refused.push(code);
            }
            _ => {}
        }
    }

    /// How many times `text` is in this learner's chat.
    pub fn count(&self, text: &str) -> usize {
        self.heard.iter().filter(|(_, t)| t == text).count()
    }
}

/// The room URLs of `nodes`, starting with node `first` (where a learner enters; it comes back
/// through the next ones).
pub fn urls_from(nodes: &[NodeProcess], first: usize) -> Vec<String> {
    (0..nodes.len())
        .map(|k| nodes[(first + k) % nodes.len()].url(crate::LECTURE))
        .collect()
}

/// `n` careful learners `u0`, `u1`, … entering through the nodes in turn.
pub async fn learners_on(nodes: &[NodeProcess], n: usize) -> Vec<Learner> {
    let mut learners = Vec::new();
    for i in 0..n {
        let urls = urls_from(nodes, i % nodes.len());
        learners
            .push(Learner::enter(&format!("u{i}"), &format!("n{i}"), urls, cluster_ticket).await);
    }
    learners
}

/// Each learner says three lines tagged `tag` (`"{tag} {i}.{k}"`), then everyone reads for
/// half a second.
pub async fn talk_round(learners: &mut [Learner], tag: &str) {
    for (i, l) in learners.iter_mut().enumerate() {
        for k in 0..3 {
            l.say(&format!("{tag} {i}.{k}")).await;
        }
    }
    futures_util::future::join_all(
        learners
            .iter_mut()
            .map(|l| l.pump(Duration::from_millis(500))),
    )
    .await;
}

/// What `n` learners said in [`talk_round`]s tagged `tags`.
pub fn said_in(tags: &[&str], n: usize) -> Vec<String> {
    tags.iter()
        .flat_map(|tag| (0..n).flat_map(move |i| (0..3).map(move |k| format!("{tag} {i}.{k}"))))
        .collect()
}

/// Reads (for at most `within`) until every learner's lines are acknowledged and each learner
/// heard every line of `said` exactly once.
pub async fn until_everyone_heard_once(
    learners: &mut [Learner],
    said: &[String],
    within: Duration,
) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        futures_util::future::join_all(
            learners
                .iter_mut()
                .map(|l| l.pump(Duration::from_millis(300))),
        )
        .await;
        let done = learners.iter().all(|l| l.pending.is_empty())
            && learners
                .iter()
                .all(|l| said.iter().all(|t| l.count(t) == 1));
        if done {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not everything said reached everyone once (learner, unacknowledged, lines not heard once, a few of them with their counts): {:?}",
            learners
                .iter()
                .map(|l| {
                    let wrong: Vec<(&String, usize)> = said
                        .iter()
                        .map(|t| (t, l.count(t)))
                        .filter(|(_, n)| *n != 1)
                        .collect();
                    (
                        l.user.clone(),
                        l.pending.len(),
                        wrong.len(),
                        wrong.into_iter().take(4).collect::<Vec<_>>(),
                    )
                })
                .collect::<Vec<_>>()
        );
    }
}
