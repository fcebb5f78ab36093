//! Room tickets: the short-lived signed pass that lets a person into one lecture's room.
//!
//! Format: `v1.<payload>.<signature>`, both parts base64url without padding. The payload is
//! JSON ([`TicketClaims`]); the signature is HMAC-SHA256 with the node's ticket secret over
//! `v1.<payload>`. Any node with the secret verifies a ticket without a database.
//!
//! The same secret signs **relay tokens** (`r1.<payload>.<signature>`, payload
//! [`RelayClaims`]): what a node shows another to pull a lecture's media over the
//! node-to-node relay. The prefix is signed too, so neither kind passes for the other.
//!
//! **Key ids and rotation.** Both kinds carry the id of the key that signed them in their
//! payload (`kid`, derived from the secret: it names the key without revealing it). A node
//! holds a current key, which signs, and may hold a previous one, which it still accepts: a
//! token is checked with the key its `kid` names, and one naming a key the node does not hold
//! is invalid. A token without a `kid` (minted before key ids) is checked with each key held.
//! Pseudonyms ([`TicketKey::pseudonym`]) come from the current key unless a pseudonym secret
//! of their own is set, so they can outlive a rotation.

use crate::{LectureId, Nickname, Role, UnixMillis, UserId};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

const PREFIX: &str = "v1.";
const RELAY_PREFIX: &str = "r1.";
/// Longest ticket accepted; a ticket is a few hundred bytes.
const MAX_TICKET_LEN: usize = 4096;
/// Shortest secret accepted, in bytes: HMAC-SHA256 wants at least its output size.
pub const MIN_SECRET_LEN: usize = 32;
/// Longest nickname a ticket may carry, in characters.
pub const MAX_NICKNAME_CHARS: usize = 40;
/// Longest a relay token may still have to live when it is shown, in seconds: a node mints
/// them for a minute (they only open the relay socket), so one good for longer than this was
/// not minted to be used now — a leaked or stored token — and is refused even when signed.
/// Two minutes leave room for the nodes' clocks to disagree.
pub const RELAY_TOKEN_MAX_SECS: u64 = 120;
/// Longest a ticket may still have to live when it is shown, in seconds: no node mints one for
/// longer (`ticket_ttl_secs` is at most a day), so a signed ticket good for longer is refused
/// as a forgery or a stored one would be.
pub const TICKET_MAX_SECS: u64 = 24 * 3600;

/// What a ticket says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketClaims {
    /// The lecture it admits to.
    pub lec: LectureId,
    /// The person's account id.
    pub sub: UserId,
    /// The person's nickname.
    pub nick: Nickname,
    /// The person's role in the lecture.
    pub role: Role,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: u64,
}

/// Why a ticket was refused.
/// What a relay token says: the lecture whose media it may pull, and until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayClaims {
    /// The lecture.
    pub lec: LectureId,
    /// Expiry, Unix seconds.
    pub exp: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// Not a ticket, a wrong signature, or claims that make no sense.
    #[error("invalid ticket")]
    Invalid,
    /// A genuine ticket past its expiry.
    #[error("ticket expired")]
    Expired,
}

/// A secret too short to sign tickets with.
#[derive(Debug, thiserror::Error)]
#[error("the ticket secret must be at least {MIN_SECRET_LEN} bytes (got {0})")]
pub struct WeakSecret(usize);

/// One secret and its id.
#[derive(Clone)]
struct Secret {
    id: String,
    bytes: Vec<u8>,
}

impl Secret {
    fn new(bytes: Vec<u8>) -> Result<Self, WeakSecret> {
        if bytes.len() < MIN_SECRET_LEN {
            return Err(WeakSecret(bytes.len()));
        }
        let mut mac = mac(&bytes);
        // A context no token or pseudonym starts with.
        mac.update(b"key id\0");
        let id = URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..6]);
        Ok(Self { id, bytes })
    }
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; `new_from_slice` only fails for fixed-size MACs.
    Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length")
}

/// The keys that sign and verify tickets and relay tokens: the current one, which signs, and
/// during a rotation a previous one, still accepted.
#[derive(Clone)]
pub struct TicketKey {
    current: Secret,
    previous: Option<Secret>,
    /// What pseudonyms are derived from, when not the current key.
    pseudonyms: Option<Secret>,
}

impl std::fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketKey")
            .field("id", &self.current.id)
            .field("previous", &self.previous.as_ref().map(|p| &p.id))
            .finish_non_exhaustive()
    }
}

impl TicketKey {
    /// A key from a secret of at least [`MIN_SECRET_LEN`] bytes.
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, WeakSecret> {
        Ok(Self {
            current: Secret::new(secret.into())?,
            previous: None,
            pseudonyms: None,
        })
    }

    /// The same, also accepting what `previous` signed (a rotation: the current key signs).
    /// A previous secret equal to the current one adds nothing and is left out.
    pub fn with_previous(mut self, previous: impl Into<Vec<u8>>) -> Result<Self, WeakSecret> {
        let previous = Secret::new(previous.into())?;
        self.previous = (previous.id != self.current.id).then_some(previous);
        Ok(self)
    }

    /// The same, deriving pseudonyms from `secret` rather than from the current key, so that
    /// they stay the same across a rotation of the ticket keys.
    pub fn with_pseudonym_secret(mut self, secret: impl Into<Vec<u8>>) -> Result<Self, WeakSecret> {
        self.pseudonyms = Some(Secret::new(secret.into())?);
        Ok(self)
    }

    /// The current key's id (in every token it signs).
    pub fn id(&self) -> &str {
        &self.current.id
    }

    /// The previous key's id, while one is accepted.
    pub fn previous_id(&self) -> Option<&str> {
        self.previous.as_ref().map(|p| p.id.as_str())
    }

    /// The id a person has on the wire in `lecture`'s room: a pseudonym, the same on every node
    /// (they share this key) and every reconnect, different in every lecture, from which the
    /// account id cannot be read back. Room members see each other's pseudonyms, never account
    /// ids (which the portal, corporate records and the log keep).
    pub fn pseudonym(&self, lecture: &LectureId, account: &UserId) -> UserId {
        let mut mac = mac(&self.pseudonyms.as_ref().unwrap_or(&self.current).bytes);
        // A context no ticket or relay token starts with (theirs start `v1.` and `r1.`).
        mac.update(b"pseudonym\0");
        mac.update(lecture.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(account.as_str().as_bytes());
        let digest = mac.finalize().into_bytes();
        UserId(format!("m-{}", URL_SAFE_NO_PAD.encode(&digest[..12])))
    }

    /// A key for another use of the node's secret (`purpose` names it: `archive-media`),
    /// which neither signs nor verifies tickets, relay tokens or pseudonyms.
    pub fn derive_key(&self, purpose: &str) -> [u8; 32] {
        let mut mac = mac(&self.current.bytes);
        mac.update(b"derive\0");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Signs `claims` into a ticket.
    pub fn mint(&self, claims: &TicketClaims) -> String {
        self.sign(PREFIX, claims)
    }

    /// Checks the signature, the expiry and the claims' sanity.
    pub fn verify(&self, ticket: &str, now: UnixMillis) -> Result<TicketClaims, TicketError> {
        let claims: TicketClaims = self.open(PREFIX, ticket)?;
        if !nickname_is_valid(&claims.nick) || claims.sub.as_str().is_empty() {
            return Err(TicketError::Invalid);
        }
        let now = now.0 / 1000;
        if now >= claims.exp {
            return Err(TicketError::Expired);
        }
        if claims.exp - now > TICKET_MAX_SECS {
            return Err(TicketError::Invalid);
        }
        Ok(claims)
    }

    /// A relay token for `lecture`, valid until `exp` (Unix seconds).
    pub fn mint_relay(&self, lecture: &LectureId, exp: u64) -> String {
        self.sign(
            RELAY_PREFIX,
            &RelayClaims {
                lec: lecture.clone(),
                exp,
            },
        )
    }

    /// Checks a relay token's signature and expiry, that it is for `lecture`, and that it
    /// expires within [`RELAY_TOKEN_MAX_SECS`] of `now`.
    pub fn verify_relay(
        &self,
        token: &str,
        lecture: &LectureId,
        now: UnixMillis,
    ) -> Result<(), TicketError> {
        let claims: RelayClaims = self.open(RELAY_PREFIX, token)?;
        if &claims.lec != lecture {
            return Err(TicketError::Invalid);
        }
        let now = now.0 / 1000;
        if now >= claims.exp {
            return Err(TicketError::Expired);
        }
        if claims.exp - now > RELAY_TOKEN_MAX_SECS {
            return Err(TicketError::Invalid);
        }
        Ok(())
    }

    /// `<prefix><payload>.<signature>`, the payload being the claims with the current key's
    /// id as `kid`.
    fn sign(&self, prefix: &str, claims: &impl Serialize) -> String {
        let mut payload = serde_json::to_value(claims).expect("claims serialise");
        if let serde_json::Value::Object(fields) = &mut payload {
            fields.insert("kid".into(), self.current.id.clone().into());
        }
        let payload = serde_json::to_vec(&payload).expect("claims serialise");
        let mut token = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(payload));
        let mut mac = mac(&self.current.bytes);
        mac.update(token.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        token.push('.');
        token.push_str(&signature);
        token
    }

    /// The claims of a token signed under `prefix` with the key its `kid` names (with either
    /// key when it names none).
    fn open<T: serde::de::DeserializeOwned>(
        &self,
        prefix: &str,
        token: &str,
    ) -> Result<T, TicketError> {
        if token.len() > MAX_TICKET_LEN || !token.starts_with(prefix) {
            return Err(TicketError::Invalid);
        }
        let (signed, signature) = token.rsplit_once('.').ok_or(TicketError::Invalid)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TicketError::Invalid)?;
        let payload = signed.get(prefix.len()..).ok_or(TicketError::Invalid)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TicketError::Invalid)?;
        let mut payload: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&payload).map_err(|_| TicketError::Invalid)?;
        let held = [Some(&self.current), self.previous.as_ref()];
        let candidates: Vec<&Secret> = match payload.remove("kid") {
            None => held.into_iter().flatten().collect(),
            Some(serde_json::Value::String(kid)) => {
                held.into_iter().flatten().filter(|k| k.id == kid).collect()
            }
            Some(_) => return Err(TicketError::Invalid),
        };
        let genuine = candidates.iter().any(|key| {
            let mut mac = mac(&key.bytes);
            mac.update(signed.as_bytes());
            mac.verify_slice(&signature).is_ok()
        });
        if !genuine {
            return Err(TicketError::Invalid);
        }
        serde_json::from_value(serde_json::Value::Object(payload)).map_err(|_| TicketError::Invalid)
    }
}

/// Whether a nickname can be shown: 1 to 40 characters, no surrounding space, and nothing
/// invisible or misleading: no control characters, no bidirectional overrides or isolates, no
/// zero-width or other format characters, no blank fillers — all of which let one name pass for
/// another (an instructor's, say). (HTML is fine: it is always shown as text.)
pub fn nickname_is_valid(nickname: &Nickname) -> bool {
    let s = nickname.as_str();
    let chars = s.chars().count();
    (1..=MAX_NICKNAME_CHARS).contains(&chars)
        && s.trim() == s
        && !s.chars().any(|c| c.is_control() || is_invisible(c))
        && s.chars().any(|c| !c.is_whitespace())
}

/// Characters that show as nothing (or change how the text around them shows): Unicode's
/// format characters (category Cf) and the blank "filler" letters.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{0600}'..='\u{0605}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{08E2}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> TicketClaims {
        TicketClaims {
            lec: "lec-1".into(),
            sub: "u1".into(),
            nick: "<b>たろう</b>".into(),
            role: Role::Learner,
            iat: 1_000,
            exp,
        }
    }

    fn key(byte: u8) -> TicketKey {
        TicketKey::new(vec![byte; 32]).expect("long enough")
    }

    /// `<prefix><payload>.<signature>` with `payload` as it is, signed with `secret`.
    fn signed_with(secret: u8, prefix: &str, payload: &impl Serialize) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload).expect("serialises"));
        let signed = format!("{prefix}{payload}");
        let mut hmac = mac(&[secret; 32]);
        hmac.update(signed.as_bytes());
        format!(
            "{signed}.{}",
            URL_SAFE_NO_PAD.encode(hmac.finalize().into_bytes())
        )
    }

    /// A token as a node minted it before key ids: no `kid`.
    fn without_kid(secret: u8, prefix: &str, claims: &impl Serialize) -> String {
        signed_with(secret, prefix, claims)
    }

    /// The `kid` a token carries.
    fn kid_of(token: &str) -> Option<String> {
        let payload = token.split('.').nth(1).expect("has a payload");
        let payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
                .expect("json");
        payload
            .get("kid")
            .and_then(|k| k.as_str())
            .map(str::to_owned)
    }

    #[test]
    fn key_ids_name_the_key_without_revealing_it() {
        assert_eq!(key(1).id(), key(1).id());
        assert_ne!(key(1).id(), key(2).id());
        assert_eq!(key(1).id().len(), 8);
        assert!(
            !key(1)
                .id()
                .contains(&URL_SAFE_NO_PAD.encode([1u8; 32])[..8])
        );
        // Tickets and relay tokens carry the signing key's id.
        let rotated = key(2).with_previous(vec![1u8; 32]).expect("long enough");
        assert_eq!(rotated.id(), key(2).id());
        assert_eq!(rotated.previous_id(), Some(key(1).id()));
        assert_eq!(
            kid_of(&rotated.mint(&claims(2_000))).as_deref(),
            Some(key(2).id())
        );
        let relay = rotated.mint_relay(&"lec-1".into(), 2_000);
        assert_eq!(kid_of(&relay).as_deref(), Some(key(2).id()));
        // A node of an earlier version (no key ids) reads the claims as before: `kid` is one
        // more field it ignores, and the signature is over the same bytes.
        let ticket = rotated.mint(&claims(2_000));
        let payload = ticket.split('.').nth(1).expect("a payload");
        let payload = URL_SAFE_NO_PAD.decode(payload).expect("base64url");
        assert_eq!(
            serde_json::from_slice::<TicketClaims>(&payload).expect("claims"),
            claims(2_000)
        );
        // The same secret twice is one key.
        assert_eq!(
            key(1)
                .with_previous(vec![1u8; 32])
                .expect("long")
                .previous_id(),
            None
        );
        assert!(key(1).with_previous(vec![1u8; 31]).is_err());
    }

    #[test]
    fn during_a_rotation_the_previous_key_is_accepted_and_after_it_is_not() {
        let now = UnixMillis(1_500_000);
        let old = key(1).mint(&claims(2_000));
        let during = key(2).with_previous(vec![1u8; 32]).expect("long enough");
        assert_eq!(during.verify(&old, now), Ok(claims(2_000)));
        // What the rotating node signs is the new key's, accepted by the nodes already on it.
        let new = during.mint(&claims(2_000));
        assert_eq!(key(2).verify(&new, now), Ok(claims(2_000)));
        assert_eq!(key(1).verify(&new, now), Err(TicketError::Invalid));
        // The previous key removed: its tickets are refused.
        assert_eq!(key(2).verify(&old, now), Err(TicketError::Invalid));
        // Relay tokens the same.
        let lecture: LectureId = "lec-1".into();
        let old_relay = key(1).mint_relay(&lecture, 1_560);
        assert_eq!(during.verify_relay(&old_relay, &lecture, now), Ok(()));
        assert_eq!(
            key(2).verify_relay(&old_relay, &lecture, now),
            Err(TicketError::Invalid)
        );
        assert_eq!(
            key(2).verify_relay(&during.mint_relay(&lecture, 1_560), &lecture, now),
            Ok(())
        );
    }

    #[test]
    fn a_token_naming_a_key_the_node_does_not_hold_is_invalid_even_if_another_key_signed_it() {
        let now = UnixMillis(1_500_000);
        let during = key(2).with_previous(vec![1u8; 32]).expect("long enough");
        assert_eq!(
            during.verify(&key(3).mint(&claims(2_000)), now),
            Err(TicketError::Invalid)
        );
        // A payload naming key 3 but signed by key 2 (the signature covers the kid).
        let mut fields = serde_json::to_value(claims(2_000)).expect("serialises");
        fields["kid"] = key(3).id().into();
        let forged = signed_with(2, "v1.", &fields);
        assert_eq!(during.verify(&forged, now), Err(TicketError::Invalid));
        // A kid that is not a string.
        fields["kid"] = 7.into();
        assert_eq!(
            during.verify(&signed_with(2, "v1.", &fields), now),
            Err(TicketError::Invalid)
        );
        let lecture: LectureId = "lec-1".into();
        assert_eq!(
            during.verify_relay(&key(3).mint_relay(&lecture, 1_560), &lecture, now),
            Err(TicketError::Invalid)
        );
    }

    #[test]
    fn tokens_minted_before_key_ids_verify_with_either_key_held() {
        let now = UnixMillis(1_500_000);
        let during = key(2).with_previous(vec![1u8; 32]).expect("long enough");
        for secret in [1, 2] {
            let ticket = without_kid(secret, "v1.", &claims(2_000));
            assert_eq!(during.verify(&ticket, now), Ok(claims(2_000)));
        }
        assert_eq!(
            key(2).verify(&without_kid(1, "v1.", &claims(2_000)), now),
            Err(TicketError::Invalid)
        );
        let relay = RelayClaims {
            lec: "lec-1".into(),
            exp: 1_560,
        };
        assert_eq!(
            during.verify_relay(&without_kid(1, "r1.", &relay), &relay.lec, now),
            Ok(())
        );
    }

    #[test]
    fn a_pseudonym_secret_keeps_pseudonyms_across_a_rotation() {
        let (lecture, account): (LectureId, UserId) = ("lec-1".into(), "acct-7".into());
        let before = key(1).pseudonym(&lecture, &account);
        // Without one, pseudonyms follow the current key.
        assert_ne!(
            key(2)
                .with_previous(vec![1u8; 32])
                .expect("long")
                .pseudonym(&lecture, &account),
            before
        );
        for stage in [
            key(1).with_pseudonym_secret(vec![1u8; 32]),
            key(1)
                .with_previous(vec![2u8; 32])
                .and_then(|k| k.with_pseudonym_secret(vec![1u8; 32])),
            key(2)
                .with_previous(vec![1u8; 32])
                .and_then(|k| k.with_pseudonym_secret(vec![1u8; 32])),
            key(2).with_pseudonym_secret(vec![1u8; 32]),
        ] {
            assert_eq!(
                stage.expect("long enough").pseudonym(&lecture, &account),
                before
            );
        }
    }

    #[test]
    fn a_minted_ticket_verifies_until_it_expires() {
        let ticket = key(1).mint(&claims(2_000));
        assert_eq!(
            key(1).verify(&ticket, UnixMillis(1_999_999)),
            Ok(claims(2_000))
        );
        assert_eq!(
            key(1).verify(&ticket, UnixMillis(2_000_000)),
            Err(TicketError::Expired)
        );
    }

    #[test]
    fn a_ticket_good_for_longer_than_any_node_mints_is_refused() {
        let now = UnixMillis(1_000_000);
        let longest = key(1).mint(&claims(1_000 + TICKET_MAX_SECS));
        assert!(key(1).verify(&longest, now).is_ok());
        let longer = key(1).mint(&claims(1_000 + TICKET_MAX_SECS + 1));
        assert_eq!(key(1).verify(&longer, now), Err(TicketError::Invalid));
    }

    #[test]
    fn forged_tickets_are_invalid() {
        let ticket = key(1).mint(&claims(2_000));
        let now = UnixMillis(1_500_000);
        assert_eq!(
            key(2).verify(&ticket, now),
            Err(TicketError::Invalid),
            "another node's secret"
        );
        let (signed, _) = ticket.rsplit_once('.').expect("has a signature");
        let mut forged = claims(2_000);
        forged.role = Role::Instructor;
        let other = key(1).mint(&forged);
        let (_, other_sig) = other.rsplit_once('.').expect("has a signature");
        assert_eq!(
            key(1).verify(&format!("{signed}.{other_sig}"), now),
            Err(TicketError::Invalid)
        );
        for junk in [
            "",
            "v1.",
            "v1..",
            "hello",
            "v2.abc.def",
            &"v1.a".repeat(5000),
        ] {
            assert_eq!(
                key(1).verify(junk, now),
                Err(TicketError::Invalid),
                "{junk:.20}"
            );
        }
    }

    #[test]
    fn relay_tokens_open_one_lectures_relay_until_they_expire_and_are_no_tickets() {
        let lecture: LectureId = "lec-1".into();
        let token = key(1).mint_relay(&lecture, 2_000);
        let now = UnixMillis(1_999_999);
        assert_eq!(key(1).verify_relay(&token, &lecture, now), Ok(()));
        assert_eq!(
            key(1).verify_relay(&token, &lecture, UnixMillis(2_000_000)),
            Err(TicketError::Expired)
        );
        assert_eq!(
            key(1).verify_relay(&token, &"lec-2".into(), now),
            Err(TicketError::Invalid),
            "another lecture"
        );
        assert_eq!(
            key(2).verify_relay(&token, &lecture, now),
            Err(TicketError::Invalid),
            "another secret"
        );
        // Neither kind passes for the other, even with the prefix swapped.
        assert_eq!(key(1).verify(&token, now), Err(TicketError::Invalid));
        let swapped = format!("v1.{}", &token[3..]);
        assert_eq!(key(1).verify(&swapped, now), Err(TicketError::Invalid));
        let ticket = key(1).mint(&claims(2_000));
        assert_eq!(
            key(1).verify_relay(&ticket, &lecture, now),
            Err(TicketError::Invalid)
        );
        let swapped = format!("r1.{}", &ticket[3..]);
        assert_eq!(
            key(1).verify_relay(&swapped, &lecture, now),
            Err(TicketError::Invalid)
        );
    }

    #[test]
    fn a_relay_token_living_longer_than_a_relay_needs_is_refused() {
        let lecture: LectureId = "lec-1".into();
        let now = UnixMillis(1_000_000);
        let at_most = key(1).mint_relay(&lecture, 1_000 + RELAY_TOKEN_MAX_SECS);
        assert_eq!(key(1).verify_relay(&at_most, &lecture, now), Ok(()));
        let too_long = key(1).mint_relay(&lecture, 1_000 + RELAY_TOKEN_MAX_SECS + 1);
        assert_eq!(
            key(1).verify_relay(&too_long, &lecture, now),
            Err(TicketError::Invalid)
        );
        let forever = key(1).mint_relay(&lecture, u64::MAX);
        assert_eq!(
            key(1).verify_relay(&forever, &lecture, now),
            Err(TicketError::Invalid)
        );
    }

    #[test]
    fn weak_secrets_are_refused() {
        assert!(TicketKey::new(b"short".to_vec()).is_err());
    }

    #[test]
    fn a_person_s_pseudonym_is_stable_per_lecture_and_hides_the_account() {
        let (a, b) = (key(1), key(1));
        let lecture = LectureId::from("lec-1");
        let taro = UserId::from("acct-taro-0001");
        let p = a.pseudonym(&lecture, &taro);
        assert_eq!(p, b.pseudonym(&lecture, &taro), "every node agrees");
        assert!(!p.as_str().contains("taro"));
        assert_ne!(p, a.pseudonym(&lecture, &UserId::from("acct-hanako")));
        assert_ne!(
            p,
            a.pseudonym(&LectureId::from("lec-2"), &taro),
            "per lecture"
        );
        assert_ne!(p, key(2).pseudonym(&lecture, &taro), "keyed");
    }

    #[test]
    fn nicknames_must_be_printable_and_bounded() {
        assert!(nickname_is_valid(&"<script>alert(1)</script>".into()));
        assert!(!nickname_is_valid(&"".into()));
        assert!(!nickname_is_valid(&" taro".into()));
        assert!(!nickname_is_valid(&"ta\u{0}ro".into()));
        assert!(!nickname_is_valid(&"x".repeat(41).as_str().into()));
        // Japanese names with a full-width space, and emoji, are names.
        assert!(nickname_is_valid(&"山田\u{3000}太郎".into()));
        assert!(nickname_is_valid(&"たろう🙂".into()));
        // Nothing invisible: each of these can pass for another name.
        for hidden in [
            "山田\u{200B}講師", // zero-width space
            "taro\u{200D}",     // zero-width joiner
            "\u{2067}taro",     // right-to-left isolate
            "ta\u{202E}ro",     // right-to-left override
            "taro\u{FEFF}",     // byte-order mark
            "ta\u{00AD}ro",     // soft hyphen
            "\u{3164}",         // Hangul filler: looks empty
            "\u{2800}\u{2800}", // braille blank
            "taro\u{E0041}",    // tag character
            "\u{3000}",         // only a space
        ] {
            assert!(!nickname_is_valid(&hidden.into()), "{hidden:?}");
        }
    }
}
