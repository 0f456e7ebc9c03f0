//! Password hashing with argon2id (PHC strings). Hashing is CPU-heavy: callers on the async
//! runtime use [`hash_blocking`] / [`verify_blocking`], which run it on a few threads of its
//! own, so that no more hashes run at once than there are cores.
//!
//! Each hash allocates its working memory (about 19 MiB at the default cost) and frees it when
//! done. None is kept between hashes: a per-thread cache of it stayed resident for the life of
//! the process (about 20 MiB for each thread that had hashed, the startup seeding's included),
//! and the binary's allocator gives freed memory back to the system.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use argon2::password_hash::{self, PasswordHash, PasswordHasher, Salt, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::ApiError;

/// The argon2 hash of `password` with `salt` as a PHC string.
fn compute<'a>(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &[u8],
    salt: Salt<'a>,
) -> password_hash::Result<PasswordHash<'a>> {
    Argon2::new(algorithm, version, params).hash_password(password, salt)
}

/// Hashes a password into an argon2id PHC string.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let mut raw = [0u8; 16];
    getrandom::getrandom(&mut raw)
        .map_err(|e| ApiError::Internal(format!("no randomness: {e}")))?;
    let salt = SaltString::encode_b64(&raw).map_err(|e| ApiError::Internal(e.to_string()))?;
    compute(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::default(),
        password.as_bytes(),
        salt.as_salt(),
    )
    .map(|h| h.to_string())
    .map_err(|e| ApiError::Internal(format!("password hashing failed: {e}")))
}

/// Whether `password` matches the PHC string; an unparsable hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        tracing::warn!("stored password hash is not a valid PHC string");
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let computed = Algorithm::try_from(parsed.algorithm).and_then(|algorithm| {
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()
            .map_err(password_hash::Error::from)?
            .unwrap_or_default();
        let params = Params::try_from(&parsed)?;
        compute(algorithm, version, params, password.as_bytes(), salt)
    });
    // `Output` compares in constant time.
    matches!(computed, Ok(PasswordHash { hash: Some(out), .. }) if out == expected)
}

/// A fixed hash to verify against for unknown usernames, so that they take as long as known ones.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("integr8s-dummy-password").unwrap_or_default())
}

type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads' queue: as many threads as cores (at least 2, at most 8), and no more
/// than the hashes allowed at once (`max_hashes`, the bound of the first caller), since each
/// hash in progress holds its working memory.
fn hashing_queue(max_hashes: usize) -> &'static mpsc::Sender<Job> {
    static QUEUE: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
        let threads = cores.min(max_hashes.max(1));
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || loop {
                    let job = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        tx
    })
}

/// Runs `f` on a hashing thread and waits for its answer.
async fn on_hashing_thread<T: Send + 'static>(
    max_hashes: usize,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(outcome.ok());
    });
    hashing_queue(max_hashes)
        .send(job)
        .map_err(|_| ApiError::Internal("no password hashing thread".into()))?;
    rx.await
        .ok()
        .flatten()
        .ok_or_else(|| ApiError::Internal("password hashing failed".into()))
}

pub async fn hash_blocking(password: String, max_hashes: usize) -> Result<String, ApiError> {
    on_hashing_thread(max_hashes, move || hash_password(&password)).await?
}

/// Verifies against `phc`, or against the dummy hash when there is no user (always false then).
pub async fn verify_blocking(
    password: String,
    phc: Option<String>,
    max_hashes: usize,
) -> Result<bool, ApiError> {
    on_hashing_thread(max_hashes, move || match phc {
        Some(phc) => verify_password(&password, &phc),
        None => {
            verify_password(&password, dummy_hash());
            false
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let a = hash_password("s3cret-pass").unwrap();
        let b = hash_password("s3cret-pass").unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b);
        assert!(verify_password("s3cret-pass", &a));
        assert!(!verify_password("wrong", &a));
        assert!(!verify_password("s3cret-pass", "not a hash"));
    }

    /// Hashes stored by the argon2 crate's own hasher verify here, and ours verify there, also
    /// with a cost other than the default.
    #[test]
    fn hashes_match_the_argon2_crates_own() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let salt = SaltString::encode_b64(b"sixteen byte sal").unwrap();
        let theirs = Argon2::default()
            .hash_password(b"pass-word", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("pass-word", &theirs));
        assert!(!verify_password("pass-wort", &theirs));
        let ours = hash_password("pass-word").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default()
            .verify_password(b"pass-word", &parsed)
            .is_ok());
        let cheap = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 2, 1, None).unwrap(),
        )
        .hash_password(b"pass-word", &salt)
        .unwrap()
        .to_string();
        assert!(verify_password("pass-word", &cheap));
        assert!(!verify_password("other", &cheap));
        assert!(verify_password("pass-word", &theirs));
    }
}
