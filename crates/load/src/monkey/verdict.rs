//! Whether an answer is a well-formed contract answer: a success in its declared content type,
//! or an error in one of the contract's JSON shapes (`{"detail": "..."}` or the validation list
//! `{"detail": [{"loc", "msg", "type"}]}`). Any 5xx, or no answer at all, is a finding.

use serde_json::Value;

/// Why an answer breaks the contract; `None` when it does not.
pub fn judge(method: &str, status: u16, content_type: Option<&str>, body: &[u8]) -> Option<String> {
    if status >= 500 {
        return Some(format!("server error {status}"));
    }
    if method == "HEAD" {
        return None;
    }
    let ct = content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    match status {
        204 | 304 if !body.is_empty() => Some(format!("{status} with a body")),
        100..=199 | 204 | 300..=399 => None,
        400..=499 => error_shape(status, &ct, body),
        _ => success_shape(status, &ct, body),
    }
}

fn error_shape(status: u16, ct: &str, body: &[u8]) -> Option<String> {
    if ct != "application/json" {
        return Some(format!("{status} answered as '{ct}', not JSON"));
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Some(format!("{status} with a body that is not JSON"));
    };
    match v.get("detail") {
        Some(Value::String(_)) => None,
        Some(Value::Array(issues)) if !issues.is_empty() && issues.iter().all(is_issue) => None,
        Some(Value::Array(_)) => Some(format!("{status} with a malformed validation list")),
        _ => Some(format!("{status} without a detail")),
    }
}

/// One entry of a validation answer: `loc` (strings and indexes), `msg`, `type`.
fn is_issue(v: &Value) -> bool {
    let loc_ok = v
        .get("loc")
        .and_then(Value::as_array)
        .is_some_and(|loc| loc.iter().all(|p| p.is_string() || p.is_u64()));
    loc_ok
        && v.get("msg").is_some_and(Value::is_string)
        && v.get("type").is_some_and(Value::is_string)
}

fn success_shape(status: u16, ct: &str, body: &[u8]) -> Option<String> {
    if ct.is_empty() {
        return (!body.is_empty()).then(|| format!("{status} with a body but no content type"));
    }
    if ct == "application/json" || ct.ends_with("+json") {
        return serde_json::from_slice::<Value>(body)
            .is_err()
            .then(|| format!("{status} JSON answer that does not parse"));
    }
    if ct == "text/event-stream" {
        let text = String::from_utf8_lossy(body).replace('\r', "");
        let mut lines: Vec<&str> = text.lines().collect();
        if !text.ends_with('\n') {
            // The last line may be cut where the stream was left.
            lines.pop();
        }
        let bad = lines.iter().any(|line| {
            !(line.is_empty()
                || line.starts_with(':')
                || ["data:", "event:", "id:", "retry:"]
                    .iter()
                    .any(|p| line.starts_with(p)))
        });
        return bad.then(|| format!("{status} event stream with a malformed line"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Option<&str> = Some("application/json");

    #[test]
    fn contract_errors_pass() {
        assert_eq!(judge("GET", 404, JSON, br#"{"detail":"Not Found"}"#), None);
        assert_eq!(
            judge(
                "POST",
                403,
                JSON,
                br#"{"detail":"Access denied","type":"ForbiddenError"}"#
            ),
            None
        );
        let list =
            br#"{"detail":[{"loc":["body","script",0],"msg":"Field required","type":"missing"}]}"#;
        assert_eq!(
            judge("POST", 422, Some("application/json; charset=utf-8"), list),
            None
        );
    }

    #[test]
    fn server_errors_and_missing_answers_are_findings() {
        assert!(judge("GET", 500, JSON, br#"{"detail":"x"}"#).is_some());
        assert!(judge("GET", 503, JSON, br#"{"detail":"x"}"#).is_some());
        assert!(judge("GET", 599, None, b"").is_some());
    }

    #[test]
    fn malformed_errors_are_findings() {
        assert!(judge("GET", 404, Some("text/plain"), b"not found").is_some());
        assert!(judge("GET", 405, None, b"").is_some());
        assert!(judge("GET", 400, JSON, b"{").is_some());
        assert!(judge("GET", 400, JSON, br#"{"error":"x"}"#).is_some());
        assert!(judge("GET", 422, JSON, br#"{"detail":[]}"#).is_some());
        assert!(judge("GET", 422, JSON, br#"{"detail":[{"msg":"x"}]}"#).is_some());
    }

    #[test]
    fn successes_must_match_their_content_type() {
        assert_eq!(judge("GET", 200, JSON, br#"{"a":1}"#), None);
        assert!(judge("GET", 200, JSON, b"{").is_some());
        assert_eq!(judge("GET", 200, Some("text/html"), b"<html>"), None);
        assert_eq!(judge("GET", 200, Some("text/csv"), b"a,b"), None);
        assert!(judge("GET", 200, None, b"x").is_some());
        assert_eq!(judge("DELETE", 204, None, b""), None);
        assert!(judge("DELETE", 204, None, b"x").is_some());
        assert_eq!(judge("HEAD", 200, JSON, b""), None);
    }

    #[test]
    fn event_streams_are_checked_line_by_line() {
        let ok = b"event: notification\r\ndata: {}\r\n\r\n: ping\r\n\r\ndata: {\"a\"";
        assert_eq!(judge("GET", 200, Some("text/event-stream"), ok), None);
        let bad = b"data: {}\n\nhello\n\n";
        assert!(judge("GET", 200, Some("text/event-stream"), bad).is_some());
    }
}
