//! The two encodings of the room protocol, chosen by WebSocket subprotocol.
//!
//! - [`Codec::MsgPack`] (`lecture-room.v2.msgpack`, the default): MessagePack in **binary**
//!   frames, structs as maps with named fields, so a generic MessagePack library reads them.
//! - [`Codec::Json`] (`lecture-room.v2.json`): the same maps as JSON in **text** frames, for
//!   debugging and third-party tools.
//!
//! Each frame holds exactly one message.

use crate::client::{ClientMsg, Command};
use crate::ids::CommandId;
use crate::server::ServerMsg;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// How deeply a client's message may nest maps and arrays. The protocol needs two levels (a
/// message and its `seat`, `resume`, `candidate` or list of `seats`); a little room is left
/// for fields a newer client adds. Anything deeper is refused before it is decoded, so no
/// frame can make the decoder recurse far (a kilobyte nested 700 deep once overflowed a debug
/// build's stack).
pub const MAX_CLIENT_DEPTH: usize = 4;
/// How deeply a node's message nests (a welcome's seat list holds occupants holding seats),
/// with room to grow; for clients decoding what a node sends.
const MAX_SERVER_DEPTH: usize = 8;

/// Subprotocol name of the MessagePack encoding.
pub const SUBPROTOCOL_MSGPACK: &str = "lecture-room.v2.msgpack";
/// Subprotocol name of the JSON encoding.
pub const SUBPROTOCOL_JSON: &str = "lecture-room.v2.json";

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
        /// The message's `id`, if it had a readable one: the refusal answers it.
        id: Option<CommandId>,
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

/// Just the `id` of a client's message (the other fields are skipped, not decoded).
#[derive(serde::Deserialize)]
struct Numbered {
    #[serde(default)]
    id: Option<CommandId>,
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

    /// Encodes a client's message with its number (for clients, tests and the load
    /// generator).
    pub fn encode_command(self, command: &Command) -> Result<Vec<u8>, EncodeError> {
        self.encode(command)
    }

    /// Decodes a client's message, ignoring an `id` it may carry.
    pub fn decode_client(self, bytes: &[u8]) -> Result<ClientMsg, DecodeError> {
        self.decode(bytes, MAX_CLIENT_DEPTH)
    }

    /// Decodes a client's message and its `id`.
    pub fn decode_command(self, bytes: &[u8]) -> Result<Command, DecodeError> {
        let msg: ClientMsg = self.decode(bytes, MAX_CLIENT_DEPTH)?;
        match self.decode_whole::<Numbered>(bytes, MAX_CLIENT_DEPTH) {
            Ok(Numbered { id }) => Ok(Command { id, msg }),
            Err(detail) => Err(DecodeError::BadCommand {
                kind: msg.kind().to_owned(),
                detail: format!("id: {detail}"),
                id: None,
            }),
        }
    }

    /// Decodes a node's message (for clients, tests and the load generator).
    pub fn decode_server(self, bytes: &[u8]) -> Result<ServerMsg, DecodeError> {
        self.decode(bytes, MAX_SERVER_DEPTH)
    }

    fn encode<T: Serialize>(self, msg: &T) -> Result<Vec<u8>, EncodeError> {
        match self {
            Codec::MsgPack => rmp_serde::to_vec_named(msg).map_err(|e| EncodeError(e.to_string())),
            Codec::Json => serde_json::to_vec(msg).map_err(|e| EncodeError(e.to_string())),
        }
    }

    fn decode<T: DeserializeOwned>(self, bytes: &[u8], depth: usize) -> Result<T, DecodeError> {
        if !self.is_map(bytes) {
            return Err(DecodeError::Malformed(
                "a message is a map (an object), not any other value".into(),
            ));
        }
        if let Codec::Json = self
            && json_depth_exceeds(bytes, depth)
        {
            return Err(DecodeError::Malformed(format!(
                "nested deeper than {depth} levels"
            )));
        }
        match self.decode_whole::<T>(bytes, depth) {
            Ok(msg) => Ok(msg),
            Err(detail) => match self.decode_whole::<Kind>(bytes, depth) {
                Ok(Kind { kind }) => Err(DecodeError::BadCommand {
                    kind,
                    detail,
                    id: self
                        .decode_whole::<Numbered>(bytes, depth)
                        .ok()
                        .and_then(|n| n.id),
                }),
                Err(_) => Err(DecodeError::Malformed(detail)),
            },
        }
    }

    /// Whether the frame starts with a map: a message is never a bare array, string or number
    /// (serde would otherwise read an array as a message's fields in order).
    fn is_map(self, bytes: &[u8]) -> bool {
        match self {
            // fixmap, map 16, map 32
            Codec::MsgPack => matches!(bytes.first(), Some(0x80..=0x8f | 0xde | 0xdf)),
            Codec::Json => bytes
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_some_and(|b| *b == b'{'),
        }
    }

    /// Decodes one value that must fill the whole frame, nested at most `depth` levels.
    fn decode_whole<T: DeserializeOwned>(self, bytes: &[u8], depth: usize) -> Result<T, String> {
        match self {
            Codec::MsgPack => {
                let mut rest = bytes;
                let mut de = rmp_serde::Deserializer::new(&mut rest);
                // The decoder counts the top level too, and refuses on reaching zero.
                de.set_max_depth(depth + 1);
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

/// Whether a JSON text nests arrays and objects deeper than `limit` (brackets inside strings
/// do not count). serde_json's own limit (128) is fixed and far above what the protocol needs.
fn json_depth_exceeds(bytes: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
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
                user: None,
            },
            ClientMsg::Ping {
                t: crate::MAX_SAFE_INTEGER,
            },
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

    /// `depth` maps nested in one another under a `chat`'s unknown field, in `codec`.
    fn nested(codec: Codec, depth: usize) -> Vec<u8> {
        match codec {
            Codec::Json => {
                let mut text = String::from(r#"{"type":"chat","text":"hi","x":"#);
                text.push_str(&"{\"a\":".repeat(depth));
                text.push('1');
                text.push_str(&"}".repeat(depth + 1));
                text.into_bytes()
            }
            Codec::MsgPack => {
                let mut bytes = vec![0x83, 0xa4];
                bytes.extend_from_slice(b"type");
                bytes.push(0xa4);
                bytes.extend_from_slice(b"chat");
                bytes.push(0xa4);
                bytes.extend_from_slice(b"text");
                bytes.push(0xa2);
                bytes.extend_from_slice(b"hi");
                bytes.extend_from_slice(&[0xa1, b'x']);
                for _ in 0..depth {
                    bytes.extend_from_slice(&[0x81, 0xa1, b'a']);
                }
                bytes.push(0x01);
                bytes
            }
        }
    }

    #[test]
    fn deep_nesting_is_malformed_in_both_codecs_and_never_recursed_into() {
        for codec in Codec::ALL {
            // Shallow unknown fields are fine: newer clients may add them.
            assert!(codec.decode_command(&nested(codec, 1)).is_ok(), "{codec:?}");
            // A kilobyte nested hundreds deep (once a stack overflow in a debug build), and
            // far deeper, are refused as malformed, whatever the decoder's own limit.
            for depth in [MAX_CLIENT_DEPTH, 700, 100_000] {
                assert!(
                    matches!(
                        codec.decode_command(&nested(codec, depth)),
                        Err(DecodeError::Malformed(_))
                    ),
                    "{codec:?} at depth {depth}"
                );
            }
        }
    }

    #[test]
    fn a_message_is_a_map_never_an_array_or_a_scalar() {
        // serde reads an internally tagged enum from an array too: ["leave_seat"] would pass.
        for codec in Codec::ALL {
            let as_array: Vec<u8> = match codec {
                Codec::Json => br#"["chat","hi",false]"#.to_vec(),
                Codec::MsgPack => {
                    rmp_serde::to_vec(&("chat", "hi", false)).expect("encodes an array")
                }
            };
            assert!(matches!(
                codec.decode_client(&as_array),
                Err(DecodeError::Malformed(_))
            ));
        }
        assert!(matches!(
            Codec::Json.decode_client(b"  \"leave\""),
            Err(DecodeError::Malformed(_))
        ));
        assert!(Codec::Json.decode_client(b" {\"type\":\"leave\"}").is_ok());
    }

    #[test]
    fn integers_beyond_53_bits_are_refused_where_a_client_sends_them() {
        let max = crate::MAX_SAFE_INTEGER;
        let ping = |t: u64| format!(r#"{{"type":"ping","t":{t}}}"#);
        assert!(Codec::Json.decode_client(ping(max).as_bytes()).is_ok());
        for t in [max + 1, u64::MAX] {
            assert!(matches!(
                Codec::Json.decode_client(ping(t).as_bytes()),
                Err(DecodeError::BadCommand { .. })
            ));
        }
        let resume = format!(
            r#"{{"type":"hello","ticket":"t","resume":{{"epoch":{},"offset":1}}}}"#,
            max + 1
        );
        assert!(matches!(
            Codec::Json.decode_client(resume.as_bytes()),
            Err(DecodeError::BadCommand { .. })
        ));
    }

    #[test]
    fn a_command_s_id_travels_beside_its_fields_and_answers_its_refusal() {
        for codec in Codec::ALL {
            let command = Command {
                id: Some(CommandId(17)),
                msg: ClientMsg::Chat {
                    text: "hi".into(),
                    question: false,
                },
            };
            let bytes = codec.encode_command(&command).expect("encodes");
            assert_eq!(codec.decode_command(&bytes).expect("decodes"), command);
            // The same bytes are a plain message to a reader that ignores ids.
            assert_eq!(codec.decode_client(&bytes).expect("decodes"), command.msg);
            let bare = codec.encode_client(&ClientMsg::LeaveSeat).expect("encodes");
            assert_eq!(
                codec.decode_command(&bare).expect("decodes"),
                Command::from(ClientMsg::LeaveSeat)
            );
        }
        match Codec::Json.decode_command(br#"{"type":"take_seat","seat":"front","id":5}"#) {
            Err(DecodeError::BadCommand { kind, id, .. }) => {
                assert_eq!((kind.as_str(), id), ("take_seat", Some(CommandId(5))));
            }
            other => panic!("expected a bad command, got {other:?}"),
        }
        for bad_id in [r#""five""#, "-1", "9007199254740992"] {
            let text = format!(r#"{{"type":"leave_seat","id":{bad_id}}}"#);
            assert!(
                matches!(
                    Codec::Json.decode_command(text.as_bytes()),
                    Err(DecodeError::BadCommand { id: None, .. })
                ),
                "{bad_id}"
            );
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
        // Version 1 gave every learner every occupant: a v1 client is refused at the upgrade.
        assert_eq!(Codec::from_subprotocol("lecture-room.v1.msgpack"), None);
        assert_eq!(Codec::from_subprotocol("lecture-room.v1.json"), None);
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
