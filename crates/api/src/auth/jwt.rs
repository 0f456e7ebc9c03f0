//! HS256 JSON Web Tokens signed and checked with `jsonwebtoken`: only `HS256` is accepted, and
//! `exp` and `nbf` are required and checked without leeway. The claims name the user by id and
//! carry the user's session generation and stamp (see [`super::session`]).

use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The one algorithm tokens are signed and accepted with.
const ALGORITHM: Algorithm = Algorithm::HS256;

/// The token's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id (never the username, which can change hands).
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Not valid before, seconds since the epoch.
    pub nbf: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// The user's session generation when the token was issued.
    pub gen: u64,
    /// The user's session stamp when the token was issued.
    pub stm: String,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("unsupported algorithm")]
    Algorithm,
    #[error("bad signature")]
    Signature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("token could not be signed")]
    Signing,
}

impl From<jsonwebtoken::errors::Error> for JwtError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        match e.kind() {
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => JwtError::Algorithm,
            ErrorKind::InvalidSignature => JwtError::Signature,
            ErrorKind::ExpiredSignature => JwtError::Expired,
            ErrorKind::ImmatureSignature => JwtError::NotYetValid,
            _ => JwtError::Malformed,
        }
    }
}

/// Signs `claims` with `secret`.
pub fn encode(claims: &Claims, secret: &[u8]) -> Result<String, JwtError> {
    jsonwebtoken::encode(
        &Header::new(ALGORITHM),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|_| JwtError::Signing)
}

/// Verifies the token and returns its claims. With `allow_expired` an expired but otherwise
/// valid token is accepted (logout names whose sessions to end).
pub fn decode(token: &str, secret: &[u8], allow_expired: bool) -> Result<Claims, JwtError> {
    let mut validation = Validation::new(ALGORITHM);
    validation.algorithms = vec![ALGORITHM];
    validation.leeway = 0;
    validation.validate_exp = !allow_expired;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "nbf", "sub"]);
    let data =
        jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(secret), &validation)?;
    Ok(data.claims)
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn claims(exp: i64, nbf: i64) -> Claims {
        Claims {
            sub: "u-1".into(),
            exp,
            nbf,
            iat: nbf,
            gen: 3,
            stm: "s".into(),
        }
    }

    #[test]
    fn round_trips_and_rejects_tampering() {
        let good = claims(now() + 600, now() - 1);
        let token = encode(&good, KEY).unwrap();
        assert_eq!(decode(&token, KEY, false), Ok(good));
        assert_eq!(
            decode(&token, b"another key", false),
            Err(JwtError::Signature)
        );
        let forged_payload = URL_SAFE_NO_PAD
            .encode(br#"{"sub":"root","exp":99999999999,"nbf":1,"iat":1,"gen":0,"stm":"s"}"#);
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[1] = &forged_payload;
        assert_eq!(
            decode(&parts.join("."), KEY, false),
            Err(JwtError::Signature)
        );
        assert_eq!(decode("a.b", KEY, false), Err(JwtError::Malformed));
    }

    #[test]
    fn checks_expiry_and_not_before() {
        let expired = encode(&claims(now() - 10, now() - 100), KEY).unwrap();
        assert_eq!(decode(&expired, KEY, false), Err(JwtError::Expired));
        assert!(decode(&expired, KEY, true).is_ok());
        let early = encode(&claims(now() + 600, now() + 300), KEY).unwrap();
        assert_eq!(decode(&early, KEY, false), Err(JwtError::NotYetValid));
    }

    #[test]
    fn refuses_other_algorithms() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD
            .encode(br#"{"sub":"u-1","exp":99999999999,"nbf":1,"iat":1,"gen":0,"stm":"s"}"#);
        let token = format!("{header}.{payload}.");
        assert!(matches!(
            decode(&token, KEY, false),
            Err(JwtError::Algorithm | JwtError::Malformed)
        ));
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims(now() + 600, now() - 1),
            &EncodingKey::from_secret(KEY),
        )
        .unwrap();
        assert_eq!(decode(&hs512, KEY, false), Err(JwtError::Algorithm));
    }
}
