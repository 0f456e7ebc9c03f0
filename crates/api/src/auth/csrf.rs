//! CSRF double-submit tokens bound to the session: `"{nonce}.{hex hmac_sha256(secret, nonce:jwt)}"`.

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{cookie, ACCESS_COOKIE, CSRF_COOKIE};
use crate::error::ApiError;
use crate::state::AppState;

/// The request header that must repeat the `csrf_token` cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

const EXEMPT_PATHS: [&str; 2] = ["/api/v1/auth/login", "/api/v1/auth/register"];

fn signature(secret: &[u8], nonce: &str, jwt: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    m.update(nonce.as_bytes());
    m.update(b":");
    m.update(jwt.as_bytes());
    m
}

/// A fresh token bound to `jwt`.
pub fn issue(secret: &[u8], jwt: &str) -> Result<String, ApiError> {
    let mut raw = [0u8; 16];
    getrandom::getrandom(&mut raw)
        .map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
    let nonce = URL_SAFE_NO_PAD.encode(raw);
    let mac = hex::encode(signature(secret, &nonce, jwt).finalize().into_bytes());
    Ok(format!("{nonce}.{mac}"))
}

/// Whether `token` was issued for `jwt` with `secret`.
pub fn verify(secret: &[u8], token: &str, jwt: &str) -> bool {
    let Some((nonce, mac_hex)) = token.rsplit_once('.') else {
        return false;
    };
    let Ok(mac) = hex::decode(mac_hex) else {
        return false;
    };
    signature(secret, nonce, jwt).verify_slice(&mac).is_ok()
}

fn needs_check(req: &Request) -> bool {
    let unsafe_method = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let path = req.uri().path();
    unsafe_method && path.starts_with("/api/") && !EXEMPT_PATHS.contains(&path)
}

/// Middleware: state-changing requests of a cookie session must carry `X-CSRF-Token` equal to
/// the `csrf_token` cookie and signed over the current `access_token`; else 403.
pub async fn csrf_guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if needs_check(&req) {
        if let Some(jwt) = cookie(req.headers(), ACCESS_COOKIE) {
            let header = req
                .headers()
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let cookie_token = cookie(req.headers(), CSRF_COOKIE).unwrap_or_default();
            let same =
                !header.is_empty() && bool::from(header.as_bytes().ct_eq(cookie_token.as_bytes()));
            if !same || !verify(&state.config.secret, header, &jwt) {
                return ApiError::csrf_failed().into_response();
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_the_session() {
        let key = b"0123456789abcdef0123456789abcdef";
        let token = issue(key, "jwt-1").unwrap();
        assert!(verify(key, &token, "jwt-1"));
        assert!(!verify(key, &token, "jwt-2"));
        assert!(!verify(b"another key", &token, "jwt-1"));
        assert!(!verify(key, "garbage", "jwt-1"));
        assert_ne!(token, issue(key, "jwt-1").unwrap());
    }
}
