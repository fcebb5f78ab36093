//! Who is asking: the portal vouches for a person with a signed JWT (HS256 with a shared
//! secret, or EdDSA/RS256 with the portal's public key); issuer, audience and the times are
//! checked against the node's clock: not expired, not before `nbf`, not issued in the future,
//! and not living longer than `[identity] max_token_lifetime_secs` (a stolen token, or one a
//! misconfigured portal signs for a year, is not good for long). In demo mode the node issues
//! such tokens itself for its demo people.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use protocol::UnixMillis;
use serde::{Deserialize, Serialize};

/// How far the portal's clock and the node's may disagree: the times of a token are checked
/// with this much slack.
pub const CLOCK_LEEWAY_SECS: u64 = 60;
/// The longest lifetime (`exp - iat`) a portal token may have unless configured otherwise.
pub const DEFAULT_MAX_TOKEN_LIFETIME_SECS: u64 = 24 * 3600;
/// The range `max_token_lifetime_secs` may be set in: a minute to a week.
const MAX_TOKEN_LIFETIME_RANGE: std::ops::RangeInclusive<u64> = 60..=7 * 24 * 3600;

fn default_max_token_lifetime() -> u64 {
    DEFAULT_MAX_TOKEN_LIFETIME_SECS
}

/// How portal tokens are signed (`[identity]` in the config file).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IdentitySettings {
    /// `HS256`, `EdDSA` or `RS256`.
    pub algorithm: String,
    /// Shared secret (HS256), at least 32 bytes.
    #[serde(default)]
    pub secret: Option<String>,
    /// The portal's public key in PEM (EdDSA, RS256).
    #[serde(default)]
    pub public_key_pem: Option<String>,
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`.
    pub audience: String,
    /// Longest lifetime (`exp - iat`, seconds) of a token accepted; longer ones are refused
    /// even when correctly signed.
    #[serde(default = "default_max_token_lifetime")]
    pub max_token_lifetime_secs: u64,
}

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// No `Authorization: Bearer` header.
    #[error("sign in first: send the portal's token as `Authorization: Bearer <token>`")]
    Missing,
    /// Bad signature, wrong issuer or audience, malformed.
    #[error("the sign-in token is not valid")]
    Invalid,
    /// Past its expiry.
    #[error("the sign-in token has expired; sign in again")]
    Expired,
    /// Its `nbf` or `iat` is in the future (beyond the clock leeway).
    #[error("the sign-in token is not valid yet")]
    NotYetValid,
    /// It lives longer than the node accepts.
    #[error("the sign-in token's lifetime is longer than this node accepts")]
    LifetimeTooLong,
}

/// A configuration the identity check cannot work with.
#[derive(Debug, thiserror::Error)]
#[error("[identity] {0}")]
pub struct IdentityConfigError(String);

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    aud: String,
    exp: u64,
    iat: u64,
    /// Not before, Unix seconds (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
}

/// Verifies portal tokens.
#[derive(Clone)]
pub struct PortalIdentity {
    key: DecodingKey,
    validation: Validation,
    /// Longest `exp - iat` accepted, seconds.
    max_lifetime_secs: u64,
}

impl std::fmt::Debug for PortalIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalIdentity")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

impl PortalIdentity {
    /// A verifier for `settings`.
    pub fn new(settings: &IdentitySettings) -> Result<Self, IdentityConfigError> {
        let bad = |m: &str| IdentityConfigError(m.to_owned());
        let pem = || {
            settings
                .public_key_pem
                .as_deref()
                .ok_or_else(|| bad("public_key_pem is required for this algorithm"))
        };
        let (algorithm, key) = match settings.algorithm.as_str() {
            "HS256" => {
                let secret = settings
                    .secret
                    .as_deref()
                    .ok_or_else(|| bad("secret is required for HS256"))?;
                if secret.len() < 32 {
                    return Err(bad("the HS256 secret must be at least 32 bytes"));
                }
                (
                    Algorithm::HS256,
                    DecodingKey::from_secret(secret.as_bytes()),
                )
            }
            "EdDSA" => (
                Algorithm::EdDSA,
                DecodingKey::from_ed_pem(pem()?.as_bytes()).map_err(|e| bad(&e.to_string()))?,
            ),
            "RS256" => (
                Algorithm::RS256,
                DecodingKey::from_rsa_pem(pem()?.as_bytes()).map_err(|e| bad(&e.to_string()))?,
            ),
            other => {
                return Err(bad(&format!(
                    "algorithm `{other}` is not one of HS256, EdDSA, RS256"
                )));
            }
        };
        if !MAX_TOKEN_LIFETIME_RANGE.contains(&settings.max_token_lifetime_secs) {
            return Err(bad(&format!(
                "max_token_lifetime_secs must be {} to {}",
                MAX_TOKEN_LIFETIME_RANGE.start(),
                MAX_TOKEN_LIFETIME_RANGE.end()
            )));
        }
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // The times are checked in `verify` against the node's clock, not the system's.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Ok(Self {
            key,
            validation,
            max_lifetime_secs: settings.max_token_lifetime_secs,
        })
    }

    /// The account id a token vouches for, at `now`.
    pub fn verify(&self, token: &str, now: UnixMillis) -> Result<String, IdentityError> {
        let claims = match jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation) {
            Ok(data) => data.claims,
            Err(_) => return Err(IdentityError::Invalid),
        };
        let now = now.0 / 1000;
        if claims.sub.is_empty() {
            return Err(IdentityError::Invalid);
        }
        if claims.exp.saturating_add(CLOCK_LEEWAY_SECS) <= now {
            return Err(IdentityError::Expired);
        }
        let future = now.saturating_add(CLOCK_LEEWAY_SECS);
        if claims.iat > future || claims.nbf.is_some_and(|nbf| nbf > future) {
            return Err(IdentityError::NotYetValid);
        }
        if claims.exp.saturating_sub(claims.iat) > self.max_lifetime_secs {
            return Err(IdentityError::LifetimeTooLong);
        }
        Ok(claims.sub)
    }
}

/// Issues portal-style HS256 tokens (demo mode, and tests).
#[derive(Clone)]
pub struct TokenIssuer {
    key: EncodingKey,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// An issuer for HS256 `settings`.
    pub fn new(settings: &IdentitySettings) -> Option<Self> {
        let secret = settings
            .secret
            .as_deref()
            .filter(|_| settings.algorithm == "HS256")?;
        Some(Self {
            key: EncodingKey::from_secret(secret.as_bytes()),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
        })
    }

    /// A token for `sub`, valid `ttl_secs` from `now_secs`.
    pub fn issue(&self, sub: &str, now_secs: u64, ttl_secs: u64) -> String {
        let claims = Claims {
            sub: sub.to_owned(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now_secs,
            exp: now_secs + ttl_secs,
            nbf: None,
        };
        // HS256 over plain claims cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .expect("HS256 signing does not fail")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> IdentitySettings {
        IdentitySettings {
            algorithm: "HS256".into(),
            secret: Some("portal-shared-secret-portal-shared-secret".into()),
            public_key_pem: None,
            issuer: "https://portal.example.jp".into(),
            audience: "lecture-room".into(),
            max_token_lifetime_secs: DEFAULT_MAX_TOKEN_LIFETIME_SECS,
        }
    }

    fn now_secs() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
    }

    fn at(secs: u64) -> UnixMillis {
        UnixMillis(secs * 1000)
    }

    #[test]
    fn a_portal_token_names_its_person_until_it_expires() {
        let issuer = TokenIssuer::new(&settings()).expect("HS256");
        let verifier = PortalIdentity::new(&settings()).expect("valid");
        let now = now_secs();
        assert_eq!(
            verifier
                .verify(&issuer.issue("u-1", now, 600), at(now))
                .expect("valid"),
            "u-1"
        );
        assert!(matches!(
            verifier.verify(&issuer.issue("u-1", now - 7200, 600), at(now)),
            Err(IdentityError::Expired)
        ));
        assert!(matches!(
            verifier.verify("junk", at(now)),
            Err(IdentityError::Invalid)
        ));
        let mut other = settings();
        other.audience = "someone-else".into();
        let foreign = TokenIssuer::new(&other)
            .expect("HS256")
            .issue("u-1", now, 600);
        assert!(
            matches!(
                verifier.verify(&foreign, at(now)),
                Err(IdentityError::Invalid)
            ),
            "wrong audience"
        );
        other = settings();
        other.secret = Some("another-secret-another-secret-another".into());
        let forged = TokenIssuer::new(&other)
            .expect("HS256")
            .issue("u-1", now, 600);
        assert!(
            matches!(
                verifier.verify(&forged, at(now)),
                Err(IdentityError::Invalid)
            ),
            "wrong signature"
        );
    }

    /// Signs `sub`'s token with a private key, as the portal would.
    fn portal_token(
        algorithm: Algorithm,
        private_pem: &str,
        settings: &IdentitySettings,
        exp: u64,
    ) -> String {
        let key = match algorithm {
            Algorithm::EdDSA => EncodingKey::from_ed_pem(private_pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(private_pem.as_bytes()),
        }
        .expect("a test key");
        let claims = Claims {
            sub: "u-9".into(),
            iss: settings.issuer.clone(),
            aud: settings.audience.clone(),
            iat: exp - 600,
            exp,
            nbf: None,
        };
        jsonwebtoken::encode(&Header::new(algorithm), &claims, &key).expect("signs")
    }

    #[test]
    fn ed25519_and_rsa_portal_tokens_verify_with_the_public_key_only() {
        let now = now_secs();
        for (algorithm, name, private, public) in [
            (
                Algorithm::EdDSA,
                "EdDSA",
                include_str!("testdata/test-ed25519-private.pem"),
                include_str!("testdata/test-ed25519-public.pem"),
            ),
            (
                Algorithm::RS256,
                "RS256",
                include_str!("testdata/test-rsa-private.pem"),
                include_str!("testdata/test-rsa-public.pem"),
            ),
        ] {
            let settings = IdentitySettings {
                algorithm: name.into(),
                secret: None,
                public_key_pem: Some(public.into()),
                ..settings()
            };
            let verifier = PortalIdentity::new(&settings).expect("a public key is enough");
            assert_eq!(
                verifier
                    .verify(
                        &portal_token(algorithm, private, &settings, now + 600),
                        at(now)
                    )
                    .expect("valid"),
                "u-9"
            );
            assert!(matches!(
                verifier.verify(
                    &portal_token(algorithm, private, &settings, now - 3600),
                    at(now)
                ),
                Err(IdentityError::Expired)
            ));
            // An HS256 token made with the public key as a "secret" must not pass (algorithm
            // confusion).
            let confused = TokenIssuer::new(&IdentitySettings {
                algorithm: "HS256".into(),
                secret: Some(public.into()),
                ..settings.clone()
            })
            .expect("HS256")
            .issue("u-9", now, 600);
            assert!(
                matches!(
                    verifier.verify(&confused, at(now)),
                    Err(IdentityError::Invalid)
                ),
                "{name}"
            );
        }
    }

    /// An HS256 token with exactly these times, as a careless or hostile portal might sign.
    fn token_with(iat: u64, exp: u64, nbf: Option<u64>) -> String {
        let s = settings();
        let claims = Claims {
            sub: "u-1".into(),
            iss: s.issuer.clone(),
            aud: s.audience.clone(),
            exp,
            iat,
            nbf,
        };
        let key = EncodingKey::from_secret(s.secret.as_deref().expect("HS256").as_bytes());
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).expect("signs")
    }

    #[test]
    fn tokens_from_the_future_or_living_too_long_are_refused() {
        let verifier = PortalIdentity::new(&settings()).expect("valid");
        let now = 1_800_000_000;
        let verify = |iat, exp, nbf| verifier.verify(&token_with(iat, exp, nbf), at(now));
        assert_eq!(verify(now, now + 600, None).expect("valid"), "u-1");
        assert_eq!(
            verify(now + 30, now + 600, Some(now + 30)).expect("a little clock skew is fine"),
            "u-1"
        );
        assert!(matches!(
            verify(now + 3600, now + 7200, None),
            Err(IdentityError::NotYetValid)
        ));
        assert!(matches!(
            verify(now, now + 7200, Some(now + 3600)),
            Err(IdentityError::NotYetValid)
        ));
        assert!(matches!(
            verify(now, now + DEFAULT_MAX_TOKEN_LIFETIME_SECS + 1, None),
            Err(IdentityError::LifetimeTooLong)
        ));
        assert!(matches!(
            verify(now - 360 * 24 * 3600, now + 5 * 24 * 3600, None),
            Err(IdentityError::LifetimeTooLong)
        ));
        assert_eq!(
            verify(now, now + DEFAULT_MAX_TOKEN_LIFETIME_SECS, None).expect("exactly the maximum"),
            "u-1"
        );
        let mut short = settings();
        short.max_token_lifetime_secs = 600;
        let strict = PortalIdentity::new(&short).expect("valid");
        assert!(matches!(
            strict.verify(&token_with(now, now + 601, None), at(now)),
            Err(IdentityError::LifetimeTooLong)
        ));
    }

    #[test]
    fn unusable_settings_are_named() {
        let mut s = settings();
        s.secret = Some("short".into());
        assert!(PortalIdentity::new(&s).is_err());
        s.algorithm = "none".into();
        assert!(PortalIdentity::new(&s).is_err());
        s.algorithm = "RS256".into();
        assert!(PortalIdentity::new(&s).is_err(), "RS256 needs a public key");
        let mut s = settings();
        s.max_token_lifetime_secs = 365 * 24 * 3600;
        assert!(PortalIdentity::new(&s).is_err(), "a year is too long");
    }
}
