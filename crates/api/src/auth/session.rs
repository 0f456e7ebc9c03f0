//! Sessions: a token names the user by id and carries the user's session generation and stamp
//! from when it was issued. It authenticates only while both still match:
//! - the **generation** is a per-user counter in the key/value port (shared by every process
//!   when that port is Redis), bumped by [`end_all`] on logout and on every account change;
//! - the **stamp** is a keyed digest of the username, password hash, role and active flag, so a
//!   rename, a password change or reset, a role change or a deactivation ends every session
//!   even if the counter were lost (an in-memory port after a restart).
//!
//! A deleted user's tokens name an id that no longer exists; a re-registered name gets a new id.

use std::time::Duration;

use hmac::{Hmac, Mac};
use integr8s_core::user::User;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::jwt;
use crate::error::ApiError;
use crate::state::AppState;

/// How long a generation counter is kept after its first bump: far longer than any session.
const GENERATION_TTL: Duration = Duration::from_secs(400 * 24 * 3600);

fn generation_key(user_id: &str) -> String {
    format!("session:generation:{user_id}")
}

/// The keyed digest of what a session depends on.
pub fn stamp(secret: &[u8], user: &User) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else {
        // HMAC takes keys of any length.
        return String::new();
    };
    for part in [
        user.user_id.as_str(),
        user.username.as_str(),
        user.password_hash.as_str(),
        user.role.as_str(),
        if user.is_active { "active" } else { "inactive" },
    ] {
        mac.update(part.as_bytes());
        mac.update(&[0]);
    }
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// The user's current session generation (0 before the first bump).
pub async fn generation(state: &AppState, user_id: &str) -> Result<u64, ApiError> {
    let raw = state.kv.get(&generation_key(user_id)).await?;
    Ok(raw.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// Ends every session of `user_id` at once, in every process sharing the key/value port.
pub async fn end_all(state: &AppState, user_id: &str) -> Result<(), ApiError> {
    state
        .kv
        .incr(&generation_key(user_id), GENERATION_TTL)
        .await?;
    tracing::debug!(%user_id, "sessions ended");
    Ok(())
}

/// Issues a session token for `user`, valid for `lifetime`.
pub async fn issue(state: &AppState, user: &User, lifetime: Duration) -> Result<String, ApiError> {
    let now = integr8s_core::now().timestamp();
    let lifetime = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 2);
    let claims = jwt::Claims {
        sub: user.user_id.clone(),
        exp: now.saturating_add(lifetime),
        nbf: now,
        iat: now,
        gen: generation(state, &user.user_id).await?,
        stm: stamp(&state.config.secret, user),
    };
    jwt::encode(&claims, &state.config.secret).map_err(|e| {
        tracing::error!(error = %e, "could not sign a session token");
        ApiError::Internal(e.to_string())
    })
}

/// The active user whose live session `token` is (invalid credentials otherwise).
pub async fn authenticate(state: &AppState, token: &str) -> Result<User, ApiError> {
    let claims = jwt::decode(token, &state.config.secret, false)
        .map_err(|_| ApiError::invalid_credentials())?;
    let Some(user) = state.store.user_by_id(&claims.sub).await? else {
        return Err(ApiError::invalid_credentials());
    };
    let stamp_ok: bool = stamp(&state.config.secret, &user)
        .as_bytes()
        .ct_eq(claims.stm.as_bytes())
        .into();
    if !user.is_active || !stamp_ok || generation(state, &user.user_id).await? != claims.gen {
        return Err(ApiError::invalid_credentials());
    }
    Ok(user)
}

/// The user id of a genuine token, even an expired one (logout).
pub fn subject_allow_expired(state: &AppState, token: &str) -> Option<String> {
    jwt::decode(token, &state.config.secret, true)
        .ok()
        .map(|c| c.sub)
}

/// The user id of a genuine, unexpired token, without any store access (rate-limit buckets).
pub fn subject(state: &AppState, token: &str) -> Option<String> {
    jwt::decode(token, &state.config.secret, false)
        .ok()
        .map(|c| c.sub)
}
