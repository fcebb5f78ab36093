//! A connection's way back from its room: the bounded queue of frames, the switch that ends
//! it at once, and frames encoded once for all their recipients.

use bytes::Bytes;
use protocol::{CloseCode, Codec, ServerMsg};
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;
use tracing::error;

/// What a room hands a session's writer, in order.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A frame, encoded once and shared by every recipient.
    Frame(Message),
    /// Close with this code (`None`: normal closure) after the frames before it.
    Close(Option<CloseCode>),
}

/// Tells a session to end now, skipping its queue (slow client, protocol violation, …). The
/// first reason given wins.
#[derive(Debug, Default)]
pub(crate) struct Kick {
    token: CancellationToken,
    ending: OnceLock<Ending>,
}

/// How a session ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Close with this code (`None`: a normal closure, 1000, after the client's `leave` or its
    /// own close).
    Close(Option<CloseCode>),
    /// The connection is gone (closed by the network, or the client stopped taking bytes):
    /// nothing more can be said on it.
    Gone,
}

impl Kick {
    /// Ends the session with a close frame carrying `code`.
    pub(crate) fn kick(&self, code: Option<CloseCode>) {
        self.end(Ending::Close(code));
    }

    /// Ends the session without a word: its connection is gone.
    pub(crate) fn gone(&self) {
        self.end(Ending::Gone);
    }

    fn end(&self, ending: Ending) {
        let _first_reason_wins = self.ending.set(ending);
        self.token.cancel();
    }

    pub(crate) async fn kicked(&self) {
        self.token.cancelled().await;
    }

    pub(crate) fn is_kicked(&self) -> bool {
        self.token.is_cancelled()
    }

    /// How the session ends, once kicked (gone, if it never was).
    pub(crate) fn ending(&self) -> Ending {
        self.ending.get().copied().unwrap_or(Ending::Gone)
    }
}

/// A session's way back: its bounded queue, its kick switch and its encoding.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    pub(crate) tx: mpsc::Sender<Outgoing>,
    pub(crate) kick: Arc<Kick>,
    pub(crate) codec: Codec,
    /// Cancelled once the welcome (and the media settings after it) are queued: the session's
    /// media loop says nothing before.
    pub(crate) welcomed: CancellationToken,
}

/// A server message encoded at most once per codec, whatever the number of recipients.
pub(crate) struct Frames<'a> {
    msg: &'a ServerMsg,
    msgpack: Option<Message>,
    json: Option<Message>,
}

impl<'a> Frames<'a> {
    pub(crate) fn new(msg: &'a ServerMsg) -> Self {
        Self {
            msg,
            msgpack: None,
            json: None,
        }
    }

    pub(crate) fn get(&mut self, codec: Codec) -> Option<Message> {
        let slot = match codec {
            Codec::MsgPack => &mut self.msgpack,
            Codec::Json => &mut self.json,
        };
        if slot.is_none() {
            *slot = Some(encode(self.msg, codec)?);
        }
        slot.clone()
    }
}

/// Encodes a server message as a frame of its codec's type.
pub(crate) fn encode(msg: &ServerMsg, codec: Codec) -> Option<Message> {
    match codec.encode_server(msg) {
        Ok(bytes) if codec.is_binary() => Some(Message::Binary(Bytes::from(bytes))),
        // serde_json writes UTF-8 only.
        Ok(bytes) => String::from_utf8(bytes)
            .ok()
            .map(|s| Message::Text(Utf8Bytes::from(s))),
        Err(e) => {
            error!(error = %e, "a server message failed to encode");
            None
        }
    }
}
