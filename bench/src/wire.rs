//! The wires the load generator speaks: the room protocol (MessagePack over WebSocket),
//! Socket.IO v4 (Engine.IO over WebSocket) for the Socket.IO peer, and the NATS client protocol
//! over WebSocket ([`crate::nats`]) for nats-server. Profiles only see [`Cmd`]s going out and
//! [`Event`]s coming in; a learner sends and reads through its [`Link`].

use crate::nats;
use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use protocol::server::Welcome;
use protocol::{ClientMsg, Codec, EmotionKey, Seat, ServerMsg};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// An open WebSocket.
pub type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Longest wait for a handshake step.
const STEP: Duration = Duration::from_secs(60);

/// Which server the learners talk to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    /// `room-server`, MessagePack subprotocol.
    Ours,
    /// The Socket.IO peer.
    SocketIo,
    /// nats-server's WebSocket listener: one subject per lecture, chat only.
    Nats,
}

impl Dialect {
    /// Name in tables.
    pub fn label(self) -> &'static str {
        match self {
            Dialect::Ours => "room-server",
            Dialect::SocketIo => "socket.io",
            Dialect::Nats => "nats-server",
        }
    }

    /// Whether the server keeps a room: seats and reactions. NATS only relays the chat.
    pub fn keeps_a_room(self) -> bool {
        !matches!(self, Dialect::Nats)
    }
}

/// Something a learner does.
#[derive(Clone, Debug)]
pub enum Cmd {
    /// Say `text` in the chat.
    Chat(String),
    /// Press an emotion button.
    React(&'static str),
    /// Sit in (or move to) a seat.
    TakeSeat(u16, u16),
}

/// Something a learner hears.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A chat message's text.
    Chat(String),
    /// Emotion presses the room accepted, all keys together.
    Burst(u64),
    /// A seat's occupant changed (`None`: it became empty).
    Seat(u16, u16, Option<String>),
    /// A seat, by number, became taken (`true`) or empty: room-server tells learners the grid,
    /// not who sits in it.
    Occupied(u32, bool),
    /// Where this learner sits now, as room-server tells it.
    YourSeat(Option<(u16, u16)>),
    /// A command was refused.
    Refused {
        /// The command's kind (`chat`, `react`, `take_seat`).
        command: String,
        /// The server's code.
        code: String,
    },
}

/// Who a learner is.
#[derive(Clone, Debug)]
pub struct Person {
    /// Account id.
    pub user: String,
    /// How the server names this person to others in the room: a per-lecture pseudonym on
    /// room-server (never the account id), the account id on the Socket.IO peer.
    pub member: String,
    /// Nickname.
    pub nickname: String,
    /// Room ticket (room-server only).
    pub ticket: String,
}

/// The room as the welcome showed it.
#[derive(Debug, Default)]
pub struct Entered {
    /// Occupied seats: `(row, col, user)`; no user where the server does not tell learners
    /// who sits where (room-server).
    pub seats: Vec<(u16, u16, Option<String>)>,
    /// The grid's columns, which seat numbers count by (room-server).
    pub cols: u16,
    /// NATS: what arrived after the `PONG` that let the learner in, in the same frame; its
    /// [`Link`] reads it first (NATS operations do not follow frames).
    pub rest: Vec<u8>,
}

/// Opens a TCP connection from `source` (one of several 127.0.0.x addresses, to go past one
/// address's port range) and upgrades it.
async fn open(
    source: IpAddr,
    target: SocketAddr,
    path: &str,
    subprotocol: Option<&str>,
) -> anyhow::Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let stream = tokio::time::timeout(STEP, socket.connect(target))
        .await
        .context("TCP connect timed out")??;
    stream.set_nodelay(true)?;
    let mut request = format!("ws://{target}{path}").into_client_request()?;
    if let Some(p) = subprotocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_str(p)?);
    }
    // A small read buffer: tungstenite zeroes a whole buffer's worth before each read (its
    // default, 128 KiB, was a quarter of the generator's CPU), and a learner's frames are
    // small; a larger one gets the room it needs while it is read.
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let (ws, _) = tokio::time::timeout(
        STEP,
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)),
    )
    .await
    .context("WebSocket handshake timed out")??;
    Ok(ws)
}

/// The bytes a generated learner reads from its socket at once.
const READ_BUFFER: usize = 4096;

async fn next_frame(ws: &mut Ws) -> anyhow::Result<Message> {
    match tokio::time::timeout(STEP, ws.next()).await {
        Ok(Some(frame)) => Ok(frame?),
        Ok(None) => bail!("the server closed the connection"),
        Err(_) => bail!("no answer within {STEP:?}"),
    }
}

impl Dialect {
    /// Connects `who` to `lecture` on the server at `target` and waits for the welcome.
    pub async fn enter(
        self,
        source: IpAddr,
        target: SocketAddr,
        lecture: &str,
        who: &Person,
    ) -> anyhow::Result<(Ws, Entered)> {
        self.enter_reading(source, target, lecture, who, true).await
    }

    /// [`Dialect::enter`], reading the welcome's seat map only when `seats` is true (one
    /// observer per run needs it; the others only wait for the welcome).
    pub async fn enter_reading(
        self,
        source: IpAddr,
        target: SocketAddr,
        lecture: &str,
        who: &Person,
        seats: bool,
    ) -> anyhow::Result<(Ws, Entered)> {
        match self {
            Dialect::Ours => {
                let path = format!("/ws/lectures/{lecture}");
                let mut ws =
                    open(source, target, &path, Some(Codec::MsgPack.subprotocol())).await?;
                let hello = ClientMsg::Hello {
                    ticket: who.ticket.clone(),
                    resume: None,
                };
                ws.send(Message::binary(Codec::MsgPack.encode_client(&hello)?))
                    .await?;
                loop {
                    match next_frame(&mut ws).await? {
                        Message::Binary(b) => {
                            if !seats {
                                let kind: Kind<'_> = rmp_serde::from_slice(&b)?;
                                if kind.kind == "welcome" {
                                    return Ok((ws, Entered::default()));
                                }
                            } else if let ServerMsg::Welcome(w) =
                                Codec::MsgPack.decode_server(&b)?
                            {
                                return Ok((ws, entered(&w)));
                            }
                        }
                        Message::Close(c) => bail!("refused: {c:?}"),
                        _ => {}
                    }
                }
            }
            Dialect::SocketIo => {
                let mut ws = open(
                    source,
                    target,
                    "/socket.io/?EIO=4&transport=websocket",
                    None,
                )
                .await?;
                // Engine.IO open packet, then the Socket.IO CONNECT with the auth payload.
                let open = next_frame(&mut ws).await?;
                if !open.to_text().unwrap_or_default().starts_with('0') {
                    bail!("no Engine.IO open packet: {open:?}");
                }
                let auth = serde_json::json!({
                    "user": who.user, "nickname": who.nickname, "lecture": lecture,
                });
                ws.send(Message::text(format!("40{auth}"))).await?;
                // The peer joins the socket to the room before it reads its seats, so changes
                // may arrive before the welcome: each says a seat's whole state, in the order
                // made, so laid over the welcome's seats (which hold some of them already) they
                // give the seats as they were when the welcome left.
                let mut early: Vec<(u16, u16, Option<String>)> = Vec::new();
                loop {
                    let frame = next_frame(&mut ws).await?;
                    let text = frame.to_text().unwrap_or_default();
                    if text.starts_with("44") {
                        bail!("refused: {text}");
                    }
                    if !seats && text.starts_with(r#"42["welcome""#) {
                        return Ok((ws, Entered::default()));
                    }
                    if seats
                        && let Some((name, payload)) = sio_event(text)
                        && name == "seat"
                        && let (Some(row), Some(col)) = (
                            payload.get("row").and_then(Value::as_u64),
                            payload.get("col").and_then(Value::as_u64),
                        )
                        && let (Ok(row), Ok(col)) = (u16::try_from(row), u16::try_from(col))
                    {
                        let user = payload.get("user").and_then(Value::as_str);
                        early.push((row, col, user.map(str::to_owned)));
                        continue;
                    }
                    if let Some((name, payload)) = sio_event(text)
                        && name == "welcome"
                    {
                        let seats: Vec<(u16, u16, Option<String>)> = payload
                            .get("seats")
                            .and_then(Value::as_array)
                            .map(|a| {
                                a.iter()
                                    .filter_map(|s| {
                                        Some((
                                            u16::try_from(s.get(0)?.as_u64()?).ok()?,
                                            u16::try_from(s.get(1)?.as_u64()?).ok()?,
                                            Some(s.get(2)?.as_str()?.to_owned()),
                                        ))
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        return Ok((
                            ws,
                            Entered {
                                seats: lay_over(seats, early),
                                cols: 0,
                                rest: Vec::new(),
                            },
                        ));
                    }
                }
            }
            Dialect::Nats => {
                let mut ws = open(source, target, "/", None).await?;
                let mut parser = nats::Parser::default();
                let mut greeted = false;
                loop {
                    match next_frame(&mut ws).await? {
                        Message::Binary(b) => parser.feed(&b),
                        Message::Close(c) => bail!("refused: {c:?}"),
                        _ => continue,
                    }
                    while let Some(op) = parser.next_op()? {
                        match op {
                            nats::Op::Info if !greeted => {
                                greeted = true;
                                let subject = nats::subject(lecture);
                                let hello = nats::greeting(&subject, &who.user);
                                ws.send(Message::binary(hello)).await?;
                            }
                            nats::Op::Ping => ws.send(Message::binary(nats::PONG)).await?,
                            nats::Op::Pong => {
                                let rest = parser.unread().to_vec();
                                return Ok((
                                    ws,
                                    Entered {
                                        seats: Vec::new(),
                                        cols: 0,
                                        rest,
                                    },
                                ));
                            }
                            nats::Op::Err(e) => bail!("refused: {e}"),
                            // The benchmark publishes only once everyone is in: a message now
                            // would be one this learner cannot account for.
                            nats::Op::Msg { .. } => {
                                bail!("a chat message before the subscription was confirmed")
                            }
                            nats::Op::Info | nats::Op::Ok => {}
                        }
                    }
                }
            }
        }
    }

    /// The frame that carries `cmd`.
    pub fn encode(self, cmd: &Cmd) -> anyhow::Result<Message> {
        Ok(match self {
            Dialect::Ours => {
                let msg = match cmd {
                    Cmd::Chat(text) => ClientMsg::Chat {
                        text: text.clone(),
                        question: false,
                    },
                    Cmd::React(key) => ClientMsg::React {
                        emotion: EmotionKey::from(*key),
                    },
                    Cmd::TakeSeat(row, col) => ClientMsg::TakeSeat {
                        seat: Seat {
                            row: *row,
                            col: *col,
                        },
                    },
                };
                Message::binary(Codec::MsgPack.encode_client(&msg)?)
            }
            Dialect::SocketIo => {
                let (name, payload) = match cmd {
                    Cmd::Chat(text) => ("chat", serde_json::json!({ "text": text })),
                    Cmd::React(key) => ("react", serde_json::json!({ "emotion": key })),
                    Cmd::TakeSeat(row, col) => {
                        ("take_seat", serde_json::json!({ "row": row, "col": col }))
                    }
                };
                Message::text(format!("42{}", serde_json::json!([name, payload])))
            }
            Dialect::Nats => {
                bail!("a NATS chat message carries its author: send it through a Link")
            }
        })
    }

    /// Reads one frame: its events go to `on`; a frame the protocol must answer (Engine.IO's
    /// ping) is returned. An error means the connection is unusable.
    pub fn decode(
        self,
        frame: &Message,
        mut on: impl FnMut(Event),
    ) -> anyhow::Result<Option<Message>> {
        match (self, frame) {
            (Dialect::Ours, Message::Binary(b)) => {
                // Only what a learner here acts on is decoded, borrowing from the frame, as a
                // lean client would; the rest of each message is skipped.
                let kind: Kind<'_> = rmp_serde::from_slice(b)?;
                match kind.kind.as_ref() {
                    "chat" => {
                        let frame: ChatFrame<'_> = rmp_serde::from_slice(b)?;
                        if frame.event.kind == "message"
                            && let Some(text) = frame.event.text
                        {
                            on(Event::Chat(text.into_owned()));
                        }
                    }
                    "update" => {
                        let u: UpdateFrame<'_> = rmp_serde::from_slice(b)?;
                        for n in u.freed {
                            on(Event::Occupied(n, false));
                        }
                        for n in u.taken.into_iter().chain(u.away).chain(u.back) {
                            on(Event::Occupied(n, true));
                        }
                        let burst: u64 = u.burst.values().map(|n| u64::from(*n)).sum();
                        if burst > 0 {
                            on(Event::Burst(burst));
                        }
                    }
                    "your_seat" => {
                        if let ServerMsg::YourSeat { seat } = Codec::MsgPack.decode_server(b)? {
                            on(Event::YourSeat(seat.map(|s| (s.row, s.col))));
                        }
                    }
                    "error" => {
                        if let ServerMsg::Error { code, command, .. } =
                            Codec::MsgPack.decode_server(b)?
                        {
                            on(Event::Refused {
                                command: command.unwrap_or_default(),
                                code: serde_json::to_value(code)
                                    .ok()
                                    .and_then(|v| v.as_str().map(str::to_owned))
                                    .unwrap_or_default(),
                            });
                        }
                    }
                    _ => {}
                }
                Ok(None)
            }
            (Dialect::SocketIo, Message::Text(t)) => {
                let t = t.as_str();
                if t == "2" {
                    return Ok(Some(Message::text("3")));
                }
                if let Some(body) = t.strip_prefix("42")
                    && let Ok((name, p)) =
                        serde_json::from_str::<(Cow<'_, str>, SioPayload<'_>)>(body)
                {
                    let owned = |v: Option<Cow<'_, str>>| v.map(Cow::into_owned);
                    match name.as_ref() {
                        "chat" => on(Event::Chat(owned(p.text).unwrap_or_default())),
                        "burst" => on(Event::Burst(p.counts.values().sum())),
                        "seat" => {
                            if let (Some(row), Some(col)) = (p.row, p.col) {
                                on(Event::Seat(row, col, owned(p.user)));
                            }
                        }
                        "error" => on(Event::Refused {
                            command: owned(p.command).unwrap_or_default(),
                            code: owned(p.code).unwrap_or_default(),
                        }),
                        _ => {}
                    }
                }
                Ok(None)
            }
            (_, Message::Close(c)) => bail!("closed by the server: {c:?}"),
            _ => Ok(None),
        }
    }
}

/// A learner's end of its connection once in: frames its commands and reads its frames,
/// keeping what a wire needs between them (NATS: the author its chat messages carry, and the
/// operations a frame left unfinished).
#[derive(Debug)]
pub struct Link {
    dialect: Dialect,
    /// NATS only.
    nats: Option<NatsLink>,
}

#[derive(Debug)]
struct NatsLink {
    /// The lecture's chat subject.
    subject: String,
    /// Who the learner is, as its chat messages name it (no server adds it).
    user: String,
    nickname: String,
    parser: nats::Parser,
}

/// What one frame brought.
#[derive(Debug, Default)]
pub struct Heard {
    /// Messages it delivered: the frame itself on the room protocol and Socket.IO; every `MSG`
    /// on NATS, whose frames carry as many as the server had queued for the connection.
    pub deliveries: u64,
    /// A frame the protocol must answer (Engine.IO's ping, NATS's `PING`).
    pub answer: Option<Message>,
}

impl Link {
    /// The link of `who`, who just entered `lecture`; `rest` is [`Entered::rest`].
    pub fn new(dialect: Dialect, lecture: &str, who: &Person, rest: &[u8]) -> Self {
        let nats = (dialect == Dialect::Nats).then(|| {
            let mut parser = nats::Parser::default();
            parser.feed(rest);
            NatsLink {
                subject: nats::subject(lecture),
                user: who.user.clone(),
                nickname: who.nickname.clone(),
                parser,
            }
        });
        Self { dialect, nats }
    }

    /// The frame that carries `cmd`.
    pub fn encode(&self, cmd: &Cmd) -> anyhow::Result<Message> {
        let Some(n) = &self.nats else {
            return self.dialect.encode(cmd);
        };
        let Cmd::Chat(text) = cmd else {
            bail!("NATS relays the chat only: it has no reactions or seats");
        };
        let at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis();
        let payload = nats::chat(
            u64::try_from(at_ms).unwrap_or(u64::MAX),
            &n.user,
            &n.nickname,
            text,
        )?;
        Ok(Message::binary(nats::publish(&n.subject, &payload)))
    }

    /// Reads one frame: its events go to `on`. An error means the connection is unusable.
    pub fn read(&mut self, frame: &Message, mut on: impl FnMut(Event)) -> anyhow::Result<Heard> {
        let Some(n) = &mut self.nats else {
            return Ok(Heard {
                deliveries: 1,
                answer: self.dialect.decode(frame, on)?,
            });
        };
        match frame {
            Message::Binary(b) => n.parser.feed(b),
            Message::Close(c) => bail!("closed by the server: {c:?}"),
            _ => return Ok(Heard::default()),
        }
        let mut heard = Heard::default();
        let mut pings = 0;
        while let Some(op) = n.parser.next_op()? {
            match op {
                nats::Op::Msg { payload, .. } => {
                    heard.deliveries += 1;
                    on(Event::Chat(nats::chat_text(payload)?.into_owned()));
                }
                nats::Op::Ping => pings += 1,
                nats::Op::Err(e) => bail!("the server: {e}"),
                nats::Op::Info | nats::Op::Pong | nats::Op::Ok => {}
            }
        }
        if pings > 0 {
            heard.answer = Some(Message::binary(nats::PONG.repeat(pings)));
        }
        Ok(heard)
    }
}

/// Just the `type` of a room message.
#[derive(serde::Deserialize)]
struct Kind<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

/// A room `chat` message, as far as a learner here reads it.
#[derive(serde::Deserialize)]
struct ChatFrame<'a> {
    #[serde(borrow)]
    event: LeanChatEvent<'a>,
}

#[derive(serde::Deserialize)]
struct LeanChatEvent<'a> {
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

/// A room `update`, as far as a learner here reads it: the grid's changes by seat number.
#[derive(serde::Deserialize)]
struct UpdateFrame<'a> {
    #[serde(default)]
    taken: Vec<u32>,
    #[serde(default)]
    freed: Vec<u32>,
    #[serde(default)]
    away: Vec<u32>,
    #[serde(default)]
    back: Vec<u32>,
    #[serde(borrow, default)]
    burst: BTreeMap<Cow<'a, str>, u32>,
}

/// Every field the peer's events carry that a learner here reads (one shape for all of them).
#[derive(serde::Deserialize)]
struct SioPayload<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    counts: BTreeMap<Cow<'a, str>, u64>,
    #[serde(default)]
    row: Option<u16>,
    #[serde(default)]
    col: Option<u16>,
    #[serde(borrow, default)]
    user: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    command: Option<Cow<'a, str>>,
}

fn entered(w: &Welcome) -> Entered {
    let cols = w.lecture.cols.max(1);
    Entered {
        seats: w
            .occupancy
            .occupied
            .iter_set()
            .filter_map(|n| {
                let row = u16::try_from(n / usize::from(cols)).ok()?;
                let col = u16::try_from(n % usize::from(cols)).ok()?;
                Some((row, col, None))
            })
            .collect(),
        cols,
        rest: Vec::new(),
    }
}

/// A Socket.IO EVENT packet (`42["name", payload]`) as its name and payload.
/// A welcome's seats with the seat changes that came before it laid over them, in order.
fn lay_over(
    seats: Vec<(u16, u16, Option<String>)>,
    early: Vec<(u16, u16, Option<String>)>,
) -> Vec<(u16, u16, Option<String>)> {
    let mut map: BTreeMap<(u16, u16), Option<String>> =
        seats.into_iter().map(|(r, c, u)| ((r, c), u)).collect();
    for (r, c, user) in early {
        match user {
            Some(user) => map.insert((r, c), Some(user)),
            None => map.remove(&(r, c)),
        };
    }
    map.into_iter().map(|((r, c), u)| (r, c, u)).collect()
}

fn sio_event(text: &str) -> Option<(String, Value)> {
    let body = text.strip_prefix("42")?;
    let Value::Array(mut parts) = serde_json::from_str(body).ok()? else {
        return None;
    };
    if parts.is_empty() {
        return None;
    }
    let payload = if parts.len() > 1 {
        parts.swap_remove(1)
    } else {
        Value::Null
    };
    let name = parts.first()?.as_str()?.to_owned();
    Some((name, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seat_changes_before_the_welcome_are_laid_over_its_seats() {
        let who = |u: &str| Some(u.to_owned());
        // The welcome's seats were read after the first change (1,1 taken by a) and before
        // the next two (a moves on to 2,2, freeing 1,1); 3,3 was taken before the socket
        // joined and did not change.
        let welcome = vec![(1, 1, who("a")), (3, 3, who("c"))];
        let early = vec![(1, 1, who("a")), (2, 2, who("a")), (1, 1, None)];
        assert_eq!(
            lay_over(welcome, early),
            vec![(2, 2, who("a")), (3, 3, who("c"))]
        );
    }

    #[test]
    fn socketio_events_parse() {
        let (name, p) = sio_event(r#"42["chat",{"text":"b 1 0 5","user":"u"}]"#).expect("event");
        assert_eq!(name, "chat");
        assert_eq!(p["text"], "b 1 0 5");
        assert!(sio_event("2").is_none());
        assert!(sio_event("42not json").is_none());
        let mut got = Vec::new();
        let reply = Dialect::SocketIo
            .decode(&Message::text("2"), |e| got.push(e))
            .expect("a ping");
        assert_eq!(reply, Some(Message::text("3")));
        Dialect::SocketIo
            .decode(
                &Message::text(r#"42["seat",{"row":3,"col":4,"user":null}]"#),
                |e| got.push(e),
            )
            .expect("a seat");
        Dialect::SocketIo
            .decode(
                &Message::text(r#"42["burst",{"counts":{"good":2,"lost":3}}]"#),
                |e| got.push(e),
            )
            .expect("a burst");
        assert_eq!(got, vec![Event::Seat(3, 4, None), Event::Burst(5)]);
    }

    #[test]
    fn a_nats_link_publishes_as_its_learner_and_reads_messages_across_frames() {
        let who = Person {
            user: "l4".into(),
            member: "l4".into(),
            nickname: "受講者4".into(),
            ticket: String::new(),
        };
        let mut link = Link::new(Dialect::Nats, "bench", &who, b"PI");
        let Message::Binary(publish) = link.encode(&Cmd::Chat("b 1 0 9".into())).expect("a PUB")
        else {
            panic!("NATS travels in binary frames");
        };
        let (head, payload) = publish.split_at(
            publish
                .iter()
                .position(|b| *b == b'\n')
                .expect("a PUB line")
                + 1,
        );
        assert!(head.starts_with(b"PUB lecture.bench.chat "), "{head:?}");
        let payload = &payload[..payload.len() - 2];
        assert!(
            link.encode(&Cmd::React("good")).is_err(),
            "no reactions on NATS"
        );

        // The server's PING began in the frame that let the learner in; a message is split
        // over the next two frames.
        let msg = [
            format!("MSG lecture.bench.chat 1 {}\r\n", payload.len()).as_bytes(),
            payload,
        ]
        .concat();
        let mut got = Vec::new();
        let first = [b"NG\r\n".as_slice(), &msg[..10]].concat();
        let heard = link
            .read(&Message::binary(first), |e| got.push(e))
            .expect("reads");
        assert_eq!(heard.deliveries, 0);
        assert_eq!(heard.answer, Some(Message::binary(nats::PONG)));
        let second = [&msg[10..], b"\r\n".as_slice(), &msg, b"\r\n"].concat();
        let heard = link
            .read(&Message::binary(second), |e| got.push(e))
            .expect("reads");
        assert_eq!(
            heard.deliveries, 2,
            "two messages in one frame are two deliveries"
        );
        assert_eq!(heard.answer, None);
        assert_eq!(got, vec![Event::Chat("b 1 0 9".into()); 2]);
    }

    #[test]
    fn our_commands_round_trip() {
        let frame = Dialect::Ours.encode(&Cmd::TakeSeat(2, 7)).expect("encodes");
        let Message::Binary(b) = frame else {
            panic!("MessagePack travels in binary frames");
        };
        assert_eq!(
            Codec::MsgPack.decode_client(&b).expect("decodes"),
            ClientMsg::TakeSeat {
                seat: Seat { row: 2, col: 7 }
            }
        );
    }
}
