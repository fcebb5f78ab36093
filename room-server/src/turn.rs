//! Short-lived TURN credentials, the "TURN REST API" scheme coturn implements
//! (`use-auth-secret` with `static-auth-secret`): the node and the TURN server share a secret;
//! the user name is `<expiry, Unix seconds>:<opaque id>` and the password is
//! `base64(HMAC-SHA1(secret, user name))`. The TURN server recomputes the password from the
//! name and refuses a name whose expiry has passed, so the node never stores or hands out a
//! lasting password, and a credential copied out of a browser stops working by itself.
//!
//! Only admitted people get one (the room connection's `media_config`, after `welcome`); the
//! anonymous connection check gets no TURN at all.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;

/// The secret shared with the TURN server. Its `Debug` hides it, so a logged configuration
/// does not leak it.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct TurnSecret(String);

impl TurnSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret's length in bytes (to refuse a weak one).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TurnSecret(…)")
    }
}

/// A TURN user name and password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TurnCredential {
    /// `<expiry>:<id>`.
    pub username: String,
    /// `base64(HMAC-SHA1(secret, username))`.
    pub credential: String,
}

/// The credential for `id` (an opaque name: the TURN server logs it), good until
/// `expires_at` (Unix seconds).
pub fn credential(secret: &TurnSecret, id: &str, expires_at: u64) -> TurnCredential {
    let username = format!("{expires_at}:{id}");
    TurnCredential {
        credential: password(secret, &username),
        username,
    }
}

/// `base64(HMAC-SHA1(secret, username))`: what the TURN server computes to check a
/// credential. SHA-1 because that is the scheme coturn implements (HMAC-SHA1 remains sound
/// as a MAC); the secret never leaves the node.
pub fn password(secret: &TurnSecret, username: &str) -> String {
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret.0.as_bytes())
        // HMAC takes a key of any length (a long one is hashed first).
        .expect("HMAC accepts any key length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_is_coturns_rest_scheme() {
        // Computed independently: printf '%s' '1700000000:7f' |
        //   openssl dgst -sha1 -hmac 'north-wind-blows' -binary | base64
        let secret = TurnSecret::new("north-wind-blows");
        let c = credential(&secret, "7f", 1_700_000_000);
        assert_eq!(c.username, "1700000000:7f");
        assert_eq!(c.credential, password(&secret, "1700000000:7f"));
        assert_eq!(c.credential, OPENSSL_ANSWER);
        assert_ne!(
            password(&TurnSecret::new("another"), &c.username),
            c.credential
        );
    }

    const OPENSSL_ANSWER: &str = "NOBMRTWsffepglJcJzd2mRV2ZvM=";

    #[test]
    fn the_secret_is_not_in_debug_output() {
        let secret = TurnSecret::new("do-not-print-me");
        assert!(!format!("{secret:?}").contains("do-not-print-me"));
    }
}
