//! What a run is asked to do.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::LoadError;

/// Which virtual users a run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Users that follow the flows of a real user and check every answer.
    User,
    /// Users that send random requests and judge every answer against the contract.
    Monkey,
    /// Both, the users split between them.
    Both,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::User => "user",
            Mode::Monkey => "monkey",
            Mode::Both => "both",
        }
    }

    /// `(user, monkey)` counts of `users` virtual users (with `both`, the odd one is a user).
    pub fn split(self, users: usize) -> (usize, usize) {
        match self {
            Mode::User => (users, 0),
            Mode::Monkey => (0, users),
            Mode::Both => (users - users / 2, users / 2),
        }
    }
}

/// One account for every virtual user, instead of a fresh one per user.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Where the deployment answers, e.g. `https://integr8s.example:443`; every request goes here.
    pub base_url: String,
    pub mode: Mode,
    pub users: usize,
    /// Requests in flight at once, all users together.
    pub concurrency: usize,
    pub duration: Duration,
    /// Users start spread over this long, so sign-ups do not all land at once.
    pub ramp_up: Duration,
    /// Longest wait for one answer; a request without an answer by then counts as 599.
    pub request_timeout: Duration,
    pub output: PathBuf,
    pub plots: bool,
    /// Accept any TLS certificate (self-signed deployments).
    pub insecure: bool,
    pub credentials: Option<Credentials>,
    /// Draw the live progress line (on a terminal).
    pub progress: bool,
}

impl LoadConfig {
    pub fn validate(&self) -> Result<(), LoadError> {
        let base = self.base_url.trim_end_matches('/');
        let rest = base
            .strip_prefix("http://")
            .or_else(|| base.strip_prefix("https://"));
        match rest {
            Some(host) if !host.is_empty() && !host.contains(['/', '?', '#']) => {}
            _ => {
                return Err(LoadError::Config(format!(
                    "--base-url must be http(s)://host[:port] without a path, got '{}'",
                    self.base_url
                )))
            }
        }
        if self.users == 0 {
            return Err(LoadError::Config("--users must be at least 1".to_owned()));
        }
        if self.concurrency == 0 {
            return Err(LoadError::Config(
                "--concurrency must be at least 1".to_owned(),
            ));
        }
        if self.duration.is_zero() {
            return Err(LoadError::Config("--duration must be positive".to_owned()));
        }
        if self.request_timeout.is_zero() {
            return Err(LoadError::Config(
                "--request-timeout must be positive".to_owned(),
            ));
        }
        Ok(())
    }

    pub fn base(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }
}

/// Parses `90`, `90s`, `500ms`, `3m`, `1h`, `1h30m` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".to_owned());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("'{text}': expected a number before a unit"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("'{text}': number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "" => return Err(format!("'{text}': a unit (ms, s, m, h) must follow {n}")),
            unit => return Err(format!("'{text}': unknown unit '{unit}' (ms, s, m, h)")),
        };
        total = total.saturating_add(part);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("3m"), Ok(Duration::from_secs(180)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration(" 2m5s "), Ok(Duration::from_secs(125)));
        for bad in ["", "m", "3x", "1h30", "-5s", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn both_splits_the_users() {
        assert_eq!(Mode::Both.split(5), (3, 2));
        assert_eq!(Mode::Both.split(1), (1, 0));
        assert_eq!(Mode::User.split(4), (4, 0));
        assert_eq!(Mode::Monkey.split(4), (0, 4));
    }

    fn config(base: &str) -> LoadConfig {
        LoadConfig {
            base_url: base.to_owned(),
            mode: Mode::User,
            users: 1,
            concurrency: 1,
            duration: Duration::from_secs(1),
            ramp_up: Duration::ZERO,
            request_timeout: Duration::from_secs(1),
            output: PathBuf::from("."),
            plots: false,
            insecure: false,
            credentials: None,
            progress: false,
        }
    }

    #[test]
    fn the_base_url_is_an_origin() {
        assert!(config("http://127.0.0.1:8000").validate().is_ok());
        assert!(config("https://[::1]:443/").validate().is_ok());
        for bad in [
            "127.0.0.1:8000",
            "ftp://x",
            "http://",
            "http://h/api",
            "http://h?x",
        ] {
            assert!(config(bad).validate().is_err(), "{bad}");
        }
    }
}
