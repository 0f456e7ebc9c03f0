//! Accounts of the virtual users: a fresh one per user (unique per run), or one given account
//! whose session every user shares. Registration and login hash passwords on purpose slowly, so
//! sign-ups are paced and retried when the server asks to wait (429, 503).

use std::time::Duration;

use rand::distributions::Alphanumeric;
use rand::Rng;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::client::{Body, Call, Csrf, Expect, Session, Stopped, Target};

/// Sign-ups (password hashes) in progress at once, all users together.
pub const SIGN_UPS_AT_ONCE: usize = 4;
/// Tries of one registration or login that the server asked to wait.
const TRIES: u32 = 8;
/// Longest wait between two tries.
const MAX_WAIT: Duration = Duration::from_secs(10);

/// Login, registration and the pacing shared by all users of a run.
pub struct Accounts {
    /// A short random tag that makes this run's usernames unique.
    pub run_tag: String,
    password: String,
    gate: Semaphore,
}

impl Accounts {
    pub fn new() -> Self {
        let mut rng = rand::thread_rng();
        let run_tag: String = (&mut rng)
            .sample_iter(&Alphanumeric)
            .take(8)
            .map(|c| char::from(c).to_ascii_lowercase())
            .collect();
        let password: String = (&mut rng)
            .sample_iter(&Alphanumeric)
            .take(20)
            .map(char::from)
            .collect();
        Self {
            run_tag,
            password,
            gate: Semaphore::new(SIGN_UPS_AT_ONCE),
        }
    }

    /// The password of this run's accounts.
    pub fn password(&self) -> &str {
        &self.password
    }

    pub fn username(&self, kind: &str, index: usize) -> String {
        format!("load_{}_{kind}_{index}", self.run_tag)
    }

    /// Registers `username` (with this run's password) and logs in; `None` when the server
    /// refused (the failures are in the report).
    pub async fn sign_up(
        &self,
        target: &Target,
        username: &str,
    ) -> Result<Option<Session>, Stopped> {
        let call = Call::post(
            "/api/v1/auth/register",
            json!({
                "username": username,
                "email": format!("{username}@example.com"),
                "password": self.password,
            }),
        );
        let Some(answer) = self.paced(target, &Session::default(), &call).await? else {
            return Ok(None);
        };
        let echoed = answer.json().and_then(|v| {
            Some(v.get("username")?.as_str()? == username && v.get("user_id")?.is_string())
        });
        if echoed != Some(true) {
            target.invalid(&answer, "registration answer without the new user");
        }
        self.login(target, username, &self.password).await
    }

    /// Logs in with the contract's form; the session holds the cookies and the CSRF token.
    pub async fn login(
        &self,
        target: &Target,
        username: &str,
        password: &str,
    ) -> Result<Option<Session>, Stopped> {
        let call = Call::new(reqwest::Method::POST, "/api/v1/auth/login").body(Body::Form(vec![
            ("username".to_owned(), username.to_owned()),
            ("password".to_owned(), password.to_owned()),
        ]));
        let Some(answer) = self.paced(target, &Session::default(), &call).await? else {
            return Ok(None);
        };
        let session = Session::from_login(username, &answer);
        match &session {
            Some(s) if s.has_cookie() => {}
            _ => target.invalid(&answer, "login answer without session cookie or csrf_token"),
        }
        Ok(session)
    }

    /// Sends a sign-up request with at most [`SIGN_UPS_AT_ONCE`] in progress, trying again when
    /// the server asks to wait. `None` when it never succeeded.
    async fn paced(
        &self,
        target: &Target,
        session: &Session,
        call: &Call,
    ) -> Result<Option<crate::client::Answer>, Stopped> {
        let call = Call {
            csrf: Csrf::Omit,
            ..call.clone()
        }
        .expect(Expect::Statuses(&[200]));
        let mut wait = Duration::from_millis(500);
        for _ in 0..TRIES {
            let answer = {
                let _turn = tokio::select! {
                    () = target.cancel.cancelled() => return Err(Stopped),
                    turn = self.gate.acquire() => turn.map_err(|_| Stopped)?,
                };
                target.send(session, &call).await?
            };
            match answer.status {
                200 => return Ok(Some(answer)),
                429 | 503 | 599 => {
                    let asked = answer.retry_after().map(Duration::from_secs);
                    target.pause(asked.unwrap_or(wait).min(MAX_WAIT)).await?;
                    wait = (wait * 2).min(MAX_WAIT);
                }
                _ => return Ok(None),
            }
        }
        Ok(None)
    }
}

impl Default for Accounts {
    fn default() -> Self {
        Self::new()
    }
}
