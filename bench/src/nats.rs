//! The NATS peer's wire, without IO: the NATS client protocol
//! (<https://docs.nats.io/reference/reference-protocols/nats-protocol>) as nats.ws speaks it to
//! nats-server's WebSocket listener, in binary frames. A frame need not hold whole operations
//! (nats-server's documentation says so), so a learner reads through a [`Parser`] that keeps
//! what a frame left unfinished.
//!
//! The lecture is one subject (`lecture.<id>.chat`). A chat message is a `PUB` to it carrying
//! the event a learner's page shows, the Socket.IO peer's chat event (`{at, user, nickname,
//! text}`, JSON); nats-server relays it to every subscriber, the sender included, as our room
//! does. NATS keeps no room: there are no seats and no reactions to measure.

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// The subscription id every learner gives its one subscription.
const SID: &str = "1";

/// The longest control line accepted while waiting for its end. The longest the server sends
/// is `INFO`, well under this; a stream without line ends is not NATS.
const MAX_LINE: usize = 64 * 1024;

/// The answer to a server `PING`.
pub const PONG: &[u8] = b"PONG\r\n";

/// The subject a lecture's chat travels on.
pub fn subject(lecture: &str) -> String {
    format!("lecture.{lecture}.chat")
}

/// What a learner sends once the server's `INFO` arrived: `CONNECT`, the chat subscription, and
/// a `PING` whose `PONG` says the server has processed both (it answers in order), so the
/// learner is in.
pub fn greeting(subject: &str, name: &str) -> Vec<u8> {
    let connect = serde_json::json!({
        "verbose": false,
        "pedantic": false,
        "protocol": 1,
        "lang": "rust",
        "version": env!("CARGO_PKG_VERSION"),
        "name": name,
        // Plain MSG only; a publisher hears its own messages, as in our room.
        "headers": false,
        "no_responders": false,
        "echo": true,
    });
    format!("CONNECT {connect}\r\nSUB {subject} {SID}\r\nPING\r\n").into_bytes()
}

/// A `PUB` of `payload` to `subject`.
pub fn publish(subject: &str, payload: &[u8]) -> Vec<u8> {
    let head = format!("PUB {subject} {}\r\n", payload.len());
    let mut out = Vec::with_capacity(head.len() + payload.len() + 2);
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
    out
}

/// A chat message as it travels: the Socket.IO peer's chat event.
#[derive(Debug, Serialize, Deserialize)]
struct ChatEvent<'a> {
    /// When it was sent, Unix milliseconds (the publisher's clock: no server stamps it).
    at: u64,
    #[serde(borrow)]
    user: Cow<'a, str>,
    #[serde(borrow)]
    nickname: Cow<'a, str>,
    #[serde(borrow)]
    text: Cow<'a, str>,
}

/// The payload of a chat message from `user`.
pub fn chat(at_ms: u64, user: &str, nickname: &str, text: &str) -> anyhow::Result<Vec<u8>> {
    Ok(serde_json::to_vec(&ChatEvent {
        at: at_ms,
        user: user.into(),
        nickname: nickname.into(),
        text: text.into(),
    })?)
}

/// Only what a learner here acts on, borrowing from the payload, as a lean client would.
#[derive(Deserialize)]
struct LeanChat<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
}

/// The text of a chat message's payload.
pub fn chat_text(payload: &[u8]) -> anyhow::Result<Cow<'_, str>> {
    let chat: LeanChat<'_> = serde_json::from_slice(payload).context("a chat payload")?;
    Ok(chat.text)
}

/// An operation from the server.
#[derive(Debug, PartialEq, Eq)]
pub enum Op<'a> {
    /// `INFO {...}`: the server's description (first on connect; again when a cluster changes).
    Info,
    /// `MSG`: a message on a subscribed subject.
    Msg {
        /// Its subject.
        subject: &'a str,
        /// Its bytes.
        payload: &'a [u8],
    },
    /// `PING`: answer with [`PONG`] or be cut off.
    Ping,
    /// `PONG`: the answer to our `PING`.
    Pong,
    /// `+OK` (only in verbose mode, which learners do not ask for).
    Ok,
    /// `-ERR 'reason'`: a protocol error, a slow consumer, a permission denied.
    Err(&'a str),
}

/// Reads server operations from a byte stream fed frame by frame.
#[derive(Debug, Default)]
pub struct Parser {
    /// Bytes received and not yet read, from `pos` on.
    buf: Vec<u8>,
    /// Where the next operation starts in `buf`.
    pos: usize,
}

impl Parser {
    /// Adds a frame's bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        // What was read goes first; usually that is everything, and the buffer only empties.
        self.buf.drain(..self.pos);
        self.pos = 0;
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes fed and not read yet.
    pub fn unread(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// The next whole operation, or `None` until more bytes arrive. An error means the stream
    /// is not one a client can go on reading.
    pub fn next_op(&mut self) -> anyhow::Result<Option<Op<'_>>> {
        let rest = &self.buf[self.pos..];
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
            if rest.len() > MAX_LINE {
                bail!("{} bytes from the server without a line end", rest.len());
            }
            return Ok(None);
        };
        let line = std::str::from_utf8(&rest[..end]).context("a NATS line that is not UTF-8")?;
        let body = end + 2;
        let (verb, args) = line.split_once([' ', '\t']).unwrap_or((line, ""));
        let (op, used) = if verb.eq_ignore_ascii_case("MSG") {
            // MSG <subject> <sid> [reply-to] <#bytes>
            let mut words = args.split_ascii_whitespace();
            let (Some(subject), Some(_sid), Some(third)) =
                (words.next(), words.next(), words.next())
            else {
                bail!("a MSG line without its fields: {line:?}");
            };
            let size: usize = words
                .next()
                .unwrap_or(third)
                .parse()
                .with_context(|| format!("a MSG size in {line:?}"))?;
            let Some(payload) = rest.get(body..body + size) else {
                return Ok(None);
            };
            match rest.get(body + size..body + size + 2) {
                None => return Ok(None),
                Some(b"\r\n") => {}
                Some(_) => bail!("a MSG payload longer than its {size} bytes"),
            }
            (Op::Msg { subject, payload }, body + size + 2)
        } else if verb.eq_ignore_ascii_case("PING") {
            (Op::Ping, body)
        } else if verb.eq_ignore_ascii_case("PONG") {
            (Op::Pong, body)
        } else if verb.eq_ignore_ascii_case("INFO") {
            (Op::Info, body)
        } else if verb.eq_ignore_ascii_case("+OK") {
            (Op::Ok, body)
        } else if verb.eq_ignore_ascii_case("-ERR") {
            (Op::Err(args.trim().trim_matches('\'')), body)
        } else {
            bail!("an operation a learner does not expect: {line:?}");
        };
        self.pos += used;
        Ok(Some(op))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation in `parser`, as owned values for comparing.
    fn drain(parser: &mut Parser) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(op) = parser.next_op().expect("a valid stream") {
            out.push(match op {
                Op::Msg { subject, payload } => {
                    format!("{subject}:{}", String::from_utf8_lossy(payload))
                }
                other => format!("{other:?}"),
            });
        }
        out
    }

    #[test]
    fn operations_split_anywhere_across_frames_read_the_same() {
        let payload = chat(1_700_000_000_000, "l7", "受講者7", "b 3 0 1234").expect("encodes");
        let mut stream = b"INFO {\"server_id\":\"x\",\"max_payload\":1048576}\r\n".to_vec();
        stream.extend_from_slice(b"PONG\r\n");
        stream.extend_from_slice(
            format!("MSG lecture.bench.chat 1 {}\r\n", payload.len()).as_bytes(),
        );
        stream.extend_from_slice(&payload);
        stream.extend_from_slice(b"\r\nPING\r\nMSG lecture.bench.chat 1 _INBOX.r 2\r\nhi\r\n");
        let mut whole = Parser::default();
        whole.feed(&stream);
        let expected = drain(&mut whole);
        assert_eq!(expected.len(), 5, "{expected:?}");
        assert!(whole.unread().is_empty());
        // Cut the stream into two frames at every byte, then into single bytes.
        for cut in 0..stream.len() {
            let mut parser = Parser::default();
            parser.feed(&stream[..cut]);
            let mut got = drain(&mut parser);
            parser.feed(&stream[cut..]);
            got.extend(drain(&mut parser));
            assert_eq!(got, expected, "cut at {cut}");
        }
        let mut parser = Parser::default();
        let mut got = Vec::new();
        for b in &stream {
            parser.feed(std::slice::from_ref(b));
            got.extend(drain(&mut parser));
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn a_chat_message_carries_its_text_through_a_publish() {
        let payload = chat(5, "l1", "受講者1", "b 9 0 77").expect("encodes");
        assert_eq!(chat_text(&payload).expect("decodes"), "b 9 0 77");
        let frame = publish(&subject("bench"), &payload);
        let head = format!("PUB lecture.bench.chat {}\r\n", payload.len());
        assert!(frame.starts_with(head.as_bytes()));
        assert!(frame.ends_with(b"\r\n"));
        assert_eq!(frame.len(), head.len() + payload.len() + 2);
    }

    #[test]
    fn the_greeting_subscribes_and_asks_for_a_pong() {
        let text = String::from_utf8(greeting("lecture.bench.chat", "l3")).expect("text");
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        assert_eq!(lines.len(), 3, "{text:?}");
        let connect: serde_json::Value =
            serde_json::from_str(lines[0].strip_prefix("CONNECT ").expect("CONNECT first"))
                .expect("JSON");
        assert_eq!(connect["verbose"], false);
        assert_eq!(connect["protocol"], 1);
        assert_eq!(lines[1], "SUB lecture.bench.chat 1");
        assert_eq!(lines[2], "PING");
    }

    #[test]
    fn errors_and_broken_streams_are_told_apart() {
        let mut parser = Parser::default();
        parser.feed(b"-ERR 'Slow Consumer Detected'\r\n");
        assert_eq!(
            parser.next_op().expect("an error is an operation"),
            Some(Op::Err("Slow Consumer Detected"))
        );
        let mut parser = Parser::default();
        parser.feed(b"MSG s 1 2\r\nabc\r\n");
        assert!(parser.next_op().is_err(), "a payload longer than announced");
        let mut parser = Parser::default();
        parser.feed(b"HELLO\r\n");
        assert!(parser.next_op().is_err());
        let mut parser = Parser::default();
        parser.feed(&vec![b'x'; MAX_LINE + 1]);
        assert!(parser.next_op().is_err(), "no line end in 64 KiB");
    }
}
