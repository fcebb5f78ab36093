//! Room tickets: the short-lived signed pass that lets a person into one lecture's room.
//!
//! Format: `v1.<payload>.<signature>`, both parts base64url without padding. The payload is
//! JSON ([`TicketClaims`]); the signature is HMAC-SHA256 with the node's ticket secret over
//! `v1.<payload>`. Any node with the secret verifies a ticket without a database.
//!
//! The same secret signs **relay tokens** (`r1.<payload>.<signature>`, payload
//! [`RelayClaims`]): what a node shows another to pull a lecture's media over the
//! node-to-node relay. The prefix is signed too, so neither kind passes for the other.

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

/// The secret that signs and verifies tickets.
#[derive(Clone)]
pub struct TicketKey {
    secret: Vec<u8>,
}

impl std::fmt::Debug for TicketKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TicketKey(..)")
    }
}

impl TicketKey {
    /// A key from a secret of at least [`MIN_SECRET_LEN`] bytes.
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, WeakSecret> {
        let secret = secret.into();
        if secret.len() < MIN_SECRET_LEN {
            return Err(WeakSecret(secret.len()));
        }
        Ok(Self { secret })
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length; `new_from_slice` only fails for fixed-size MACs.
        Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC accepts any key length")
    }

    /// The id a person has on the wire in `lecture`'s room: a pseudonym, the same on every node
    /// (they share this key) and every reconnect, different in every lecture, from which the
    /// account id cannot be read back. Room members see each other's pseudonyms, never account
    /// ids (which the portal, corporate records and the log keep).
    pub fn pseudonym(&self, lecture: &LectureId, account: &UserId) -> UserId {
        let mut mac = self.mac();
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
        let mut mac = self.mac();
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

    /// `<prefix><payload>.<signature>`.
    fn sign(&self, prefix: &str, claims: &impl Serialize) -> String {
        let payload = serde_json::to_vec(claims).expect("claims serialise");
        let mut token = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(payload));
        let mut mac = self.mac();
        mac.update(token.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        token.push('.');
        token.push_str(&signature);
        token
    }

    /// The claims of a token signed with this key under `prefix`.
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
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| TicketError::Invalid)?;
        let payload = URL_SAFE_NO_PAD
            .decode(&signed[prefix.len()..])
            .map_err(|_| TicketError::Invalid)?;
        serde_json::from_slice(&payload).map_err(|_| TicketError::Invalid)
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
