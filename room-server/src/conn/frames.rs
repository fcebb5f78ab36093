//! A client's frames as the node reads them: the payload of a data frame of the connection's
//! encoding, and how a failed read ends the connection.

use protocol::{CloseCode, Codec};
use tokio_tungstenite::tungstenite::{self, Message};

/// The payload of a data frame of the codec's type; `None` for control frames; a protocol
/// violation for a data frame of the other type (text on the MessagePack subprotocol, …).
pub(crate) fn data_of(msg: &Message, codec: Codec) -> Result<Option<bytes::Bytes>, CloseCode> {
    match (msg, codec.is_binary()) {
        (Message::Binary(b), true) => Ok(Some(b.clone())),
        (Message::Text(t), false) => Ok(Some(bytes::Bytes::copy_from_slice(t.as_str().as_bytes()))),
        (Message::Binary(_) | Message::Text(_), _) => Err(CloseCode::ProtocolViolation),
        (Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_), _) => {
            Ok(None)
        }
    }
}

/// How a failed read ends the connection: a frame over the size limit closes with 4108, a
/// broken frame (reserved bits or opcodes, an unmasked frame, text that is not UTF-8, …) with
/// 4107; anything else means the connection itself is gone (`None`).
pub(crate) fn read_failure(e: &tungstenite::Error) -> Option<CloseCode> {
    match e {
        tungstenite::Error::Capacity(_) => Some(CloseCode::MessageTooBig),
        tungstenite::Error::Protocol(_) | tungstenite::Error::Utf8(_) => {
            Some(CloseCode::ProtocolViolation)
        }
        _ => None,
    }
}
