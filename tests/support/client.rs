//! A room WebSocket client, and helpers on what clients see.

use super::*;

/// What a client saw next.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "a message held only until the test reads it: boxing would add noise to every match"
)]
pub enum Got {
    Msg(ServerMsg),
    /// The node closed the connection with this code (none: no close frame, just gone).
    Closed(Option<u16>),
}

#[derive(Debug)]
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub codec: Codec,
}

impl Client {
    pub async fn connect(url: &str, codec: Codec) -> Result<Self, tungstenite::Error> {
        Self::connect_with(url, codec, &[]).await
    }

    /// Connects with extra request headers (`X-Forwarded-For`, as a load balancer adds).
    pub async fn connect_with(
        url: &str,
        codec: Codec,
        headers: &[(&'static str, &str)],
    ) -> Result<Self, tungstenite::Error> {
        let mut request = url.into_client_request()?;
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(codec.subprotocol()),
        );
        for (name, value) in headers {
            request
                .headers_mut()
                .append(*name, HeaderValue::from_str(value).expect("a header value"));
        }
        let (ws, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Self { ws, codec })
    }

    pub async fn send(&mut self, msg: &ClientMsg) {
        let bytes = self.codec.encode_client(msg).expect("encodes");
        let frame = if self.codec.is_binary() {
            Message::Binary(bytes.into())
        } else {
            Message::Text(String::from_utf8(bytes).expect("json is utf-8").into())
        };
        self.ws.send(frame).await.expect("sends");
    }

    pub async fn send_raw(&mut self, frame: Message) {
        // The node may close while a large frame is still being written; that is fine here.
        let _ = self.ws.send(frame).await;
    }

    /// The next message or close, waiting at most [`WAIT`].
    pub async fn next(&mut self) -> Got {
        tokio::time::timeout(WAIT, self.next_unbounded())
            .await
            .expect("something arrives in time")
    }

    async fn next_unbounded(&mut self) -> Got {
        loop {
            match self.ws.next().await {
                None => return Got::Closed(None),
                Some(Err(_)) => return Got::Closed(None),
                Some(Ok(Message::Binary(b))) => {
                    return Got::Msg(
                        self.codec
                            .decode_server(&b)
                            .expect("the node sends valid frames"),
                    );
                }
                Some(Ok(Message::Text(t))) => {
                    return Got::Msg(
                        self.codec
                            .decode_server(t.as_bytes())
                            .expect("the node sends valid frames"),
                    );
                }
                Some(Ok(Message::Close(frame))) => {
                    return Got::Closed(frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next message or close within `wait`, or `None` if nothing came.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Got> {
        tokio::time::timeout(wait, self.next_unbounded()).await.ok()
    }

    pub async fn recv(&mut self) -> ServerMsg {
        match self.next().await {
            Got::Msg(m) => m,
            Got::Closed(code) => panic!("closed with {code:?} while a message was expected"),
        }
    }

    /// Reads until `pick` returns something, skipping other messages.
    pub async fn recv_until<T>(&mut self, mut pick: impl FnMut(&ServerMsg) -> Option<T>) -> T {
        tokio::time::timeout(WAIT, async {
            loop {
                match self.next_unbounded().await {
                    Got::Msg(m) => {
                        if let Some(t) = pick(&m) {
                            return t;
                        }
                    }
                    Got::Closed(code) => panic!("closed with {code:?} while waiting"),
                }
            }
        })
        .await
        .expect("the expected message arrives in time")
    }

    pub async fn welcome(&mut self) -> Welcome {
        match self.next().await {
            Got::Msg(ServerMsg::Welcome(w)) => *w,
            other => panic!("expected a welcome, got {other:?}"),
        }
    }

    /// Reads until the node closes; returns the close code.
    pub async fn close_code(&mut self) -> Option<u16> {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Got::Closed(code) = self.next_unbounded().await {
                    return code;
                }
            }
        })
        .await
        .expect("closed in time")
    }
}

/// The chat event in a message, if it is one.
pub fn chat_of(msg: &ServerMsg) -> Option<protocol::server::ChatEvent> {
    match msg {
        ServerMsg::Chat { event } => Some(event.clone()),
        _ => None,
    }
}

/// The texts of the chat messages among `events`, in order.
pub fn texts(events: &[protocol::server::ChatEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            protocol::server::ChatEvent::Message(m) => Some(m.text.clone()),
            _ => None,
        })
        .collect()
}

/// Every client sends `per_client` messages at once (`"{i}:{k}"`); returns what each client
/// then received, as (offset, text), until it has all of them.
pub async fn chat_storm(
    clients: &mut [Client],
    per_client: usize,
) -> Vec<Vec<(protocol::ChatOffset, String)>> {
    use futures_util::future::join_all;
    join_all(clients.iter_mut().enumerate().map(|(i, c)| async move {
        for k in 0..per_client {
            c.send(&ClientMsg::Chat {
                text: format!("{i}:{k}"),
                question: false,
            })
            .await;
        }
    }))
    .await;
    let total = clients.len() * per_client;
    join_all(clients.iter_mut().map(|c| async move {
        let mut got = Vec::new();
        while got.len() < total {
            if let Some(protocol::server::ChatEvent::Message(m)) = chat_of(&c.recv().await) {
                got.push((m.offset, m.text));
            }
        }
        got
    }))
    .await
}

/// Every learner (its id in the room, from its welcome; client) asks for `seat` at once;
/// returns, for each, whether it won (it is told it sits there) or was told the seat is taken.
pub async fn race_for_seat(learners: &mut [(UserId, Client)], seat: protocol::Seat) -> Vec<bool> {
    use futures_util::future::join_all;
    join_all(
        learners
            .iter_mut()
            .map(|(_, c)| async move { c.send(&ClientMsg::TakeSeat { seat }).await }),
    )
    .await;
    join_all(learners.iter_mut().map(|(_, c)| async move {
        c.recv_until(|m| match m {
            ServerMsg::Error {
                code: protocol::ErrorCode::SeatTaken,
                ..
            } => Some(false),
            ServerMsg::YourSeat { seat: Some(mine) } => (*mine == seat).then_some(true),
            _ => None,
        })
        .await
    }))
    .await
}

/// A node learners enter, in this process or a process of its own: its room addresses and the
/// tickets it takes; the ways in follow from those.
pub trait Door {
    /// The room address of `lecture`.
    fn url(&self, lecture: &str) -> String;

    /// A fresh ticket for [`LECTURE`].
    fn ticket(&self, user: &str, nickname: &str, role: Role) -> String;

    /// A connection to [`LECTURE`]'s room that has said nothing yet.
    fn connect(&self, codec: Codec) -> impl Future<Output = Client> + Send {
        let url = self.url(LECTURE);
        async move { Client::connect(&url, codec).await.expect("connects") }
    }

    /// Connects and enters with a fresh ticket; the client and its welcome.
    fn enter(
        &self,
        user: &str,
        nickname: &str,
        role: Role,
    ) -> impl Future<Output = (Client, Welcome)> + Send {
        self.enter_resuming(user, nickname, role, None)
    }

    /// Connects and enters, resuming the chat from `resume`; the client and its welcome.
    fn enter_resuming(
        &self,
        user: &str,
        nickname: &str,
        role: Role,
        resume: Option<ResumeFrom>,
    ) -> impl Future<Output = (Client, Welcome)> + Send {
        let url = self.url(LECTURE);
        let ticket = self.ticket(user, nickname, role);
        async move { hello_at(&url, ticket, resume).await }
    }
}

/// Connects to a room URL (MessagePack), presents `ticket` and returns the client and its
/// welcome.
pub async fn hello_at(url: &str, ticket: String, resume: Option<ResumeFrom>) -> (Client, Welcome) {
    let mut client = Client::connect(url, Codec::MsgPack)
        .await
        .expect("connects");
    client.send(&ClientMsg::Hello { ticket, resume }).await;
    let welcome = client.welcome().await;
    (client, welcome)
}

impl Client {
    /// Sends a numbered command.
    pub async fn send_command(
        &mut self,
        command: &protocol::Command,
    ) -> Result<(), tungstenite::Error> {
        let bytes = self.codec.encode_command(command).expect("encodes");
        let frame = if self.codec.is_binary() {
            Message::Binary(bytes.into())
        } else {
            Message::Text(String::from_utf8(bytes).expect("json is utf-8").into())
        };
        self.ws.send(frame).await
    }
}

/// A learner, seated, drops without a close (a train into a tunnel) while another goes on
/// chatting, and comes back with where its chat left off. `taro_at`, `hanako_at` and `back_at`
/// are where the one enters, the other chats, and the first returns (the same node, or three).
/// Checks that the held seat comes back, that exactly the `missed` lines are replayed, and that
/// the stream then goes on with no gap and no duplicate. The first welcome and the returning
/// one.
pub async fn a_dropped_learner_returns(
    taro_at: &impl Door,
    hanako_at: &impl Door,
    back_at: &impl Door,
    seat: protocol::Seat,
    missed: u64,
) -> (Welcome, Welcome) {
    let away = a_learner_drops(taro_at, hanako_at, seat, missed).await;
    let welcome = away.welcome.clone();
    (welcome, away.returns(back_at).await)
}

/// Taro, seated, gone without a close; Hanako, who said `missed` lines meanwhile (all in the
/// room's log by now).
#[derive(Debug)]
pub struct Dropped {
    pub welcome: Welcome,
    seen: protocol::ChatOffset,
    seat: protocol::Seat,
    missed: u64,
    hanako: Client,
}

/// The first half of [`a_dropped_learner_returns`]: Taro sits and drops, Hanako chats.
pub async fn a_learner_drops(
    taro_at: &impl Door,
    hanako_at: &impl Door,
    seat: protocol::Seat,
    missed: u64,
) -> Dropped {
    let (mut taro, welcome) = taro_at.enter("u1", "taro", Role::Learner).await;
    let (mut hanako, _) = hanako_at.enter("u2", "hanako", Role::Learner).await;
    taro.send(&ClientMsg::TakeSeat { seat }).await;
    hanako.send(&say("before".into())).await;
    let seen = taro.recv_until(chat_of).await.offset();
    drop(taro);
    // Said in groups of 50, each heard before the next is said, as a busy chat goes: the
    // lecture's log then grows at a pace, not in one burst.
    let mut last = protocol::ChatOffset(0);
    for group in (0..missed).collect::<Vec<_>>().chunks(50) {
        for i in group {
            hanako.send(&say(format!("missed {i}"))).await;
        }
        let said = group.last().map_or(0, |i| i + 2);
        while last < protocol::ChatOffset(said) {
            last = hanako.recv_until(chat_of).await.offset();
        }
    }
    Dropped {
        welcome,
        seen,
        seat,
        missed,
        hanako,
    }
}

impl Dropped {
    /// The second half: Taro comes back through `back_at`; the returning welcome.
    pub async fn returns(mut self, back_at: &impl Door) -> Welcome {
        let resume = ResumeFrom {
            epoch: self.welcome.epoch,
            offset: self.seen,
        };
        let (mut back, returned) = back_at
            .enter_resuming("u1", "taro", Role::Learner, Some(resume))
            .await;
        assert_eq!(
            returned.your_seat,
            Some(self.seat),
            "the held seat comes back"
        );
        assert_eq!(returned.replay, protocol::server::Replay::Missed);
        assert_eq!(
            texts(&returned.chat),
            (0..self.missed)
                .map(|i| format!("missed {i}"))
                .collect::<Vec<_>>(),
            "exactly the missed lines"
        );
        self.hanako.send(&say("after".into())).await;
        assert_eq!(
            back.recv_until(chat_of).await.offset(),
            protocol::ChatOffset(self.missed + 2),
            "no gap, no duplicate"
        );
        returned
    }
}

fn say(text: String) -> ClientMsg {
    ClientMsg::Chat {
        text,
        question: false,
    }
}

/// `learners` learners, entering through `doors` in turn, each send `per_client` lines at once.
/// Checks that every client sees one order, with offsets from 1 and no gap, and that each
/// sender's lines keep their order.
pub async fn everyone_sees_one_chat_order<D: Door>(
    doors: &[D],
    learners: usize,
    per_client: usize,
) {
    let mut clients = Vec::new();
    for i in 0..learners {
        let door = &doors[i % doors.len()];
        let (client, _) = door
            .enter(&format!("u{i}"), &format!("n{i}"), Role::Learner)
            .await;
        clients.push(client);
    }
    let seen = chat_storm(&mut clients, per_client).await;
    for view in &seen {
        assert_eq!(view, &seen[0], "every client sees one order");
    }
    let offsets: Vec<u64> = seen[0].iter().map(|(o, _)| o.0).collect();
    let total = (learners * per_client) as u64;
    assert_eq!(
        offsets,
        (1..=total).collect::<Vec<_>>(),
        "gapless, increasing offsets"
    );
    for i in 0..learners {
        let mine: Vec<&String> = seen[0]
            .iter()
            .map(|(_, t)| t)
            .filter(|t| t.starts_with(&format!("{i}:")))
            .collect();
        let sent: Vec<String> = (0..per_client).map(|k| format!("{i}:{k}")).collect();
        assert_eq!(
            mine,
            sent.iter().collect::<Vec<_>>(),
            "each sender's messages keep their order"
        );
    }
}
