//! The two encodings of the room protocol, chosen by WebSocket subprotocol.
//!
//! - [`Codec::MsgPack`] (`lecture-room.v1.msgpack`, the default): MessagePack in **binary**
//!   frames, structs as maps with named fields, so a generic MessagePack library reads them.
//! - [`Codec::Json`] (`lecture-room.v1.json`): the same maps as JSON in **text** frames, for
//!   debugging and third-party tools.
//!
//! Each frame holds exactly one message.

use crate::client::ClientMsg;
use crate::server::ServerMsg;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Subprotocol name of the MessagePack encoding.
pub const SUBPROTOCOL_MSGPACK: &str = "lecture-room.v1.msgpack";
/// Subprotocol name of the JSON encoding.
pub const SUBPROTOCOL_JSON: &str = "lecture-room.v1.json";

/// An encoding of the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// MessagePack in binary frames.
    MsgPack,
    /// JSON in text frames.
    Json,
}

/// A frame that could not be read as a message.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not a well-formed message map in this encoding at all (bad bytes, trailing data, no
    /// `type`). The sender is broken: the connection is closed.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A well-formed map with a `type`, but an unknown type or fields of the wrong shape.
    /// The command is refused; the connection stays open.
    #[error("bad `{kind}` message: {detail}")]
    BadCommand {
        /// The `type` field as sent.
        kind: String,
        /// What was wrong with it.
        detail: String,
    },
}

/// A message that could not be encoded. Only a bug (a non-string map key, say) causes this.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode message: {0}")]
pub struct EncodeError(String);

/// Just the `type` of a message: tells a malformed frame from an unknown or ill-shaped command.
#[derive(serde::Deserialize)]
struct Kind {
    #[serde(rename = "type")]
    kind: String,
}

impl Codec {
    /// Every codec, most preferred first.
    pub const ALL: [Codec; 2] = [Codec::MsgPack, Codec::Json];

    /// The WebSocket subprotocol that selects this codec.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Codec::MsgPack => SUBPROTOCOL_MSGPACK,
            Codec::Json => SUBPROTOCOL_JSON,
        }
    }

    /// The codec a subprotocol name selects.
    pub fn from_subprotocol(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.subprotocol() == name)
    }

    /// Whether this codec travels in binary frames (MessagePack) or text frames (JSON).
    pub fn is_binary(self) -> bool {
        matches!(self, Codec::MsgPack)
    }

    /// Encodes a node's message.
    pub fn encode_server(self, msg: &ServerMsg) -> Result<Vec<u8>, EncodeError> {
        self.encode(msg)
    }

    /// Encodes a client's message (for clients, tests and the load generator).
    pub fn encode_client(self, msg: &ClientMsg) -> Result<Vec<u8>, EncodeError> {
        self.encode(msg)
    }

    /// Decodes a client's message.
    pub fn decode_client(self, bytes: &[u8]) -> Result<ClientMsg, DecodeError> {
        self.decode(bytes)
    }

    /// Decodes a node's message (for clients, tests and the load generator).
    pub fn decode_server(self, bytes: &[u8]) -> Result<ServerMsg, DecodeError> {
        self.decode(bytes)
    }

    fn encode<T: Serialize>(self, msg: &T) -> Result<Vec<u8>, EncodeError> {
        match self {
            Codec::MsgPack => rmp_serde::to_vec_named(msg).map_err(|e| EncodeError(e.to_string())),
            Codec::Json => serde_json::to_vec(msg).map_err(|e| EncodeError(e.to_string())),
        }
    }

    fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, DecodeError> {
        match self.decode_whole::<T>(bytes) {
            Ok(msg) => Ok(msg),
            Err(detail) => match self.decode_whole::<Kind>(bytes) {
                Ok(Kind { kind }) => Err(DecodeError::BadCommand { kind, detail }),
                Err(_) => Err(DecodeError::Malformed(detail)),
            },
        }
    }

    /// Decodes one value that must fill the whole frame.
    fn decode_whole<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, String> {
        match self {
            Codec::MsgPack => {
                let mut rest = bytes;
                let mut de = rmp_serde::Deserializer::new(&mut rest);
                let value = T::deserialize(&mut de).map_err(|e| e.to_string())?;
                if rest.is_empty() {
                    Ok(value)
                } else {
                    Err(format!("{} bytes after the message", rest.len()))
                }
            }
            Codec::Json => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ResumeFrom;
    use crate::ids::{ChatOffset, Epoch, Nickname, Seat};

    fn samples() -> Vec<ClientMsg> {
        vec![
            ClientMsg::Hello {
                ticket: "v1.abc.def".into(),
                resume: Some(ResumeFrom {
                    epoch: Epoch(7),
                    offset: ChatOffset(42),
                }),
            },
            ClientMsg::Hello {
                ticket: "t".into(),
                resume: None,
            },
            ClientMsg::TakeSeat {
                seat: Seat::new(2, 3),
            },
            ClientMsg::LeaveSeat,
            ClientMsg::Chat {
                text: "こんにちは".into(),
                question: true,
            },
            ClientMsg::CallOn {
                nickname: Some(Nickname::from("taro")),
                seat: None,
            },
            ClientMsg::Ping { t: u64::MAX },
        ]
    }

    #[test]
    fn client_messages_round_trip_in_both_codecs() {
        for codec in Codec::ALL {
            for msg in samples() {
                let bytes = codec.encode_client(&msg).expect("encodes");
                assert_eq!(
                    codec.decode_client(&bytes).expect("decodes"),
                    msg,
                    "{codec:?}"
                );
            }
        }
    }

    #[test]
    fn json_shape_is_a_flat_map_with_type() {
        let json = Codec::Json
            .encode_client(&ClientMsg::LeaveSeat)
            .expect("encodes");
        assert_eq!(json, br#"{"type":"leave_seat"}"#);
        let msg = Codec::Json
            .decode_client(br#"{"type":"chat","text":"hi"}"#)
            .expect("question defaults");
        assert_eq!(
            msg,
            ClientMsg::Chat {
                text: "hi".into(),
                question: false
            }
        );
    }

    #[test]
    fn malformed_and_bad_commands_are_told_apart() {
        assert!(matches!(
            Codec::MsgPack.decode_client(&[0xc1, 0x00]),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            Codec::Json.decode_client(b"{not json"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            Codec::Json.decode_client(br#"{"no_type":1}"#),
            Err(DecodeError::Malformed(_))
        ));
        match Codec::Json.decode_client(br#"{"type":"fly"}"#) {
            Err(DecodeError::BadCommand { kind, .. }) => assert_eq!(kind, "fly"),
            other => panic!("expected a bad command, got {other:?}"),
        }
        match Codec::Json.decode_client(br#"{"type":"take_seat","seat":"front"}"#) {
            Err(DecodeError::BadCommand { kind, .. }) => assert_eq!(kind, "take_seat"),
            other => panic!("expected a bad command, got {other:?}"),
        }
    }

    #[test]
    fn trailing_bytes_after_a_msgpack_message_are_malformed() {
        let mut bytes = Codec::MsgPack
            .encode_client(&ClientMsg::LeaveSeat)
            .expect("encodes");
        bytes.push(0xc0);
        assert!(matches!(
            Codec::MsgPack.decode_client(&bytes),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn subprotocol_names_carry_the_version() {
        for codec in Codec::ALL {
            assert!(
                codec
                    .subprotocol()
                    .contains(&format!("v{}", crate::PROTOCOL_VERSION))
            );
            assert_eq!(Codec::from_subprotocol(codec.subprotocol()), Some(codec));
        }
        assert_eq!(Codec::from_subprotocol("lecture-room.v0.json"), None);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_bytes_decode_to_a_message_or_an_error_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            for codec in Codec::ALL {
                let _ = codec.decode_client(&bytes);
            }
        }

        #[test]
        fn chat_text_survives_both_codecs(text in ".{0,200}", question in any::<bool>()) {
            let msg = ClientMsg::Chat { text, question };
            for codec in Codec::ALL {
                let bytes = codec.encode_client(&msg).expect("encodes");
                prop_assert_eq!(codec.decode_client(&bytes).expect("decodes"), msg.clone());
            }
        }
    }
}
