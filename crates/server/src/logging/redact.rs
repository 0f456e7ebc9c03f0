//! Redaction of secrets from log lines: whatever a line carries (an error that quotes a URL, a
//! debug span with a query string, a field named after a secret), passwords in URLs, bearer
//! tokens, JWTs, cookies, Slack webhook paths and the values of secret-named fields are replaced
//! before the line is written.

use std::borrow::Cow;
use std::io::Write;
use std::sync::LazyLock;

use regex::Regex;

const MASK: &str = "[REDACTED]";

/// An optional ANSI colour sequence (text logs on a terminal colour field names).
const ANSI: &str = r"(?:\x1b\[[0-9;]*m)*";

struct Rule {
    pattern: Regex,
    replacement: String,
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    let secret_name = r"[A-Za-z0-9_.-]*(?:password|passwd|secret|token|api_?key|authorization|cookie|credential)[A-Za-z0-9_.-]*";
    let rules = [
        // Authorization schemes.
        (
            r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]+".to_owned(),
            format!("${{1}}${{2}}{MASK}"),
        ),
        // JSON Web Tokens wherever they appear.
        (
            r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*".to_owned(),
            MASK.to_owned(),
        ),
        // scheme://user:password@host → scheme://user:[REDACTED]@host (also redis://:pw@).
        (
            r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*):[^@\s/]+@".to_owned(),
            format!("${{1}}:{MASK}@"),
        ),
        // JSON fields and quoted values: "password":"…", password="…".
        (
            format!(r#"(?i)("?{secret_name}"?{ANSI}\s*[:=]{ANSI}\s*)"(?:[^"\\]|\\.)*""#),
            format!(r#"${{1}}"{MASK}""#),
        ),
        // Unquoted values: password=…, ?token=…&, Cookie: …
        (
            format!(r#"(?i)(\b{secret_name}{ANSI}\s*[:=]{ANSI}\s*)[^\s"&,;}}\]]+"#),
            format!("${{1}}{MASK}"),
        ),
        // Slack incoming-webhook URLs carry their secret in the path.
        (
            r"(hooks\.slack\.com/services/)[A-Za-z0-9/_-]+".to_owned(),
            format!("${{1}}{MASK}"),
        ),
    ];
    rules
        .into_iter()
        .map(|(pattern, replacement)| Rule {
            pattern: Regex::new(&pattern).expect("redaction pattern"),
            replacement,
        })
        .collect()
});

/// `text` with every secret the rules recognise masked.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for rule in RULES.iter() {
        if let Cow::Owned(changed) = rule.pattern.replace_all(&out, rule.replacement.as_str()) {
            out = Cow::Owned(changed);
        }
    }
    out
}

/// Writes log lines to stderr with [`redact`] applied (the formatter writes one whole line per
/// call).
#[derive(Clone, Copy, Default)]
pub struct RedactingStderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter
    }
}

pub struct RedactingWriter;

impl Write for RedactingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr()
            .lock()
            .write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn secrets_are_masked_and_the_rest_is_kept() {
        let cases = [
            (
                "opening postgres://integr8s:hunter2@db:5432/app",
                "opening postgres://integr8s:[REDACTED]@db:5432/app",
            ),
            (
                "redis error (redis://:s3cret@127.0.0.1:6379/0)",
                "redis error (redis://:[REDACTED]@127.0.0.1:6379/0)",
            ),
            (
                r#"{"fields":{"password":"correct-horse","user":"ada"}}"#,
                r#"{"fields":{"password":"[REDACTED]","user":"ada"}}"#,
            ),
            (
                "request uri=/api/v1/events?token=abc123&x=1",
                "request uri=/api/v1/events?token=[REDACTED]&x=1",
            ),
            ("sent Bearer abc.def-ghi", "sent Bearer [REDACTED]"),
            (
                "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln in a line",
                "token [REDACTED] in a line",
            ),
            (
                "POST https://hooks.slack.com/services/T00/B00/XXXX failed",
                "POST https://hooks.slack.com/services/[REDACTED] failed",
            ),
            (
                "\x1b[3mclient_secret\x1b[0m\x1b[2m=\x1b[0mabc",
                "\x1b[3mclient_secret\x1b[0m\x1b[2m=\x1b[0m[REDACTED]",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(redact(line), want, "{line}");
        }
        for (line, secret) in [
            ("authorization: Bearer abc.def-ghi", "abc.def-ghi"),
            (r#"{"authorization":"Basic dXNlcjpwYXNz"}"#, "dXNlcjpwYXNz"),
            (
                "cookie: access_token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln; csrf_token=f00",
                "c2ln",
            ),
            ("cookie: access_token=opaque; csrf_token=f00", "f00"),
            (r#"headers={"cookie": "access_token=opaque"}"#, "opaque"),
        ] {
            let out = redact(line);
            assert!(!out.contains(secret), "{line} -> {out}");
            assert!(out.contains("[REDACTED]"), "{line} -> {out}");
        }
        for plain in [
            "execution scheduled execution_id=e1 priority=normal",
            "integr8s listening on http://127.0.0.1:8080",
            r#"{"level":"INFO","fields":{"message":"run ended","outcome":"execution_completed"}}"#,
            "max_login_attempts=5 lockout_minutes=15",
        ] {
            assert_eq!(redact(plain), plain);
        }
    }
}
