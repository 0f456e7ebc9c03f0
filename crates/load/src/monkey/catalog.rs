//! Random requests: methods, real routes with odd parameters, nonexistent paths, odd queries,
//! random JSON (often with the contract's field names) and bodies that are not JSON at all.

use rand::seq::SliceRandom;
use rand::Rng;
use reqwest::Method;
use serde_json::{Map, Value};

use crate::client::{Body, Call, Csrf, Expect};
use crate::template::ROUTES;

const METHODS: [(&str, u32); 7] = [
    ("GET", 35),
    ("POST", 30),
    ("PUT", 12),
    ("DELETE", 10),
    ("PATCH", 5),
    ("HEAD", 4),
    ("OPTIONS", 4),
];

/// Path segments that exist nowhere.
const NOWHERE: [&str; 10] = [
    "/nope",
    "/api/v1/does-not-exist",
    "/api/v2/execute",
    "/api/v1/executions",
    "/api/v1/scripts/",
    "/api/v1/execute/extra",
    "/api",
    "/.env",
    "/api/v1/admin",
    "/api/v1/user/settings/custom/",
];

/// Odd values for path parameters (already safe in a URL path).
const ODD_SEGMENTS: [&str; 14] = [
    "0",
    "-1",
    "null",
    "undefined",
    "..",
    "%2e%2e",
    "%00",
    "%FF%FE",
    "%C3%BC%C3%B1%C3%AF",
    "a%20b",
    "%27%20OR%201%3D1%20--",
    "%3Cscript%3E",
    "csv",
    "json",
];

const QUERY_KEYS: [&str; 14] = [
    "limit",
    "skip",
    "offset",
    "status",
    "lang",
    "event_types",
    "hours",
    "cascade",
    "older_than_hours",
    "search",
    "role",
    "include_tags",
    "start_time",
    "wait",
];

const QUERY_VALUES: [&str; 12] = [
    "-1",
    "0",
    "1",
    "abc",
    "1e99",
    "99999999999999999999",
    "",
    "true",
    "%FF",
    "null",
    "2024-13-45T99:99:99",
    "completed",
];

/// Field names of the contract's request bodies, so random JSON often reaches real validation.
const FIELDS: [&str; 28] = [
    "script",
    "lang",
    "lang_version",
    "name",
    "description",
    "theme",
    "username",
    "password",
    "email",
    "font_size",
    "tab_size",
    "editor",
    "notifications",
    "custom_settings",
    "timezone",
    "priority",
    "execution_id",
    "event_types",
    "timeout_seconds",
    "memory_mb",
    "stdin",
    "enabled",
    "role",
    "is_active",
    "reason",
    "filters",
    "value",
    "updated_at",
];

/// A random request; `ids` are ids seen in earlier answers, reused as path parameters.
pub fn request(rng: &mut impl Rng, ids: &[String]) -> Call {
    let method = weighted_method(rng);
    let mut path = if rng.gen_bool(0.75) {
        real_path(rng, ids)
    } else if rng.gen_bool(0.5) {
        NOWHERE.choose(rng).copied().unwrap_or("/nope").to_owned()
    } else {
        format!("/api/v1/{}/{}", word(rng), word(rng))
    };
    if rng.gen_bool(0.3) {
        path.push('?');
        let pairs: Vec<String> = (0..rng.gen_range(1..=3))
            .map(|_| {
                let k = QUERY_KEYS.choose(rng).copied().unwrap_or("limit");
                let v = QUERY_VALUES.choose(rng).copied().unwrap_or("");
                format!("{k}={v}")
            })
            .collect();
        path.push_str(&pairs.join("&"));
    }
    let wants_body = matches!(method.as_str(), "POST" | "PUT" | "PATCH") || rng.gen_bool(0.1);
    let body = if wants_body { body(rng) } else { Body::None };
    let csrf = match rng.gen_range(0..4) {
        0 | 1 => Csrf::Session,
        2 => Csrf::Omit,
        _ => Csrf::Value(format!(
            "{:016x}.{:016x}",
            rng.gen::<u64>(),
            rng.gen::<u64>()
        )),
    };
    let mut call = Call::new(method, path)
        .body(body)
        .expect(Expect::NoServerError);
    call.csrf = csrf;
    call.cookie = rng.gen_bool(0.9);
    call
}

fn weighted_method(rng: &mut impl Rng) -> Method {
    let total: u32 = METHODS.iter().map(|(_, w)| w).sum();
    let mut roll = rng.gen_range(0..total);
    for (name, weight) in METHODS {
        if roll < weight {
            return Method::from_bytes(name.as_bytes()).unwrap_or(Method::GET);
        }
        roll -= weight;
    }
    Method::GET
}

fn real_path(rng: &mut impl Rng, ids: &[String]) -> String {
    let route = ROUTES.choose(rng).copied().unwrap_or("/");
    route
        .split('/')
        .map(|part| {
            if part.starts_with('{') {
                param(rng, ids)
            } else {
                part.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn param(rng: &mut impl Rng, ids: &[String]) -> String {
    match rng.gen_range(0..10) {
        0..=2 if !ids.is_empty() => ids.choose(rng).cloned().unwrap_or_default(),
        0..=4 => uuid::Uuid::new_v4().to_string(),
        5..=7 => ODD_SEGMENTS.choose(rng).copied().unwrap_or("0").to_owned(),
        8 => "x".repeat(rng.gen_range(200..2000)),
        _ => word(rng),
    }
}

fn word(rng: &mut impl Rng) -> String {
    let len = rng.gen_range(1..12);
    (0..len)
        .map(|_| char::from(rng.gen_range(b'a'..=b'z')))
        .collect()
}

fn body(rng: &mut impl Rng) -> Body {
    if rng.gen_bool(0.8) {
        let value = if rng.gen_bool(0.8) {
            Value::Object(object(rng, 0))
        } else {
            value(rng, 0)
        };
        if rng.gen_bool(0.85) {
            return Body::Json(value);
        }
        // JSON sent as something else.
        return Body::Raw {
            content_type: Some("text/plain".to_owned()),
            bytes: value.to_string().into_bytes(),
        };
    }
    let (content_type, bytes): (Option<&str>, Vec<u8>) = match rng.gen_range(0..6) {
        0 => (Some("application/json"), b"{\"script\": ".to_vec()),
        1 => (Some("application/json"), Vec::new()),
        2 => (
            Some("application/x-www-form-urlencoded"),
            b"username=a&password=&&=%ZZ".to_vec(),
        ),
        3 => (
            Some("application/octet-stream"),
            (0..rng.gen_range(1..256)).map(|_| rng.gen()).collect(),
        ),
        4 => (None, b"hello".to_vec()),
        _ => (Some("application/json"), b"[1, 2, {\"a\": }]".to_vec()),
    };
    Body::Raw {
        content_type: content_type.map(str::to_owned),
        bytes,
    }
}

fn object(rng: &mut impl Rng, depth: u32) -> Map<String, Value> {
    (0..rng.gen_range(0..6))
        .map(|_| {
            let key = if rng.gen_bool(0.7) {
                FIELDS.choose(rng).copied().unwrap_or("script").to_owned()
            } else {
                word(rng)
            };
            (key, value(rng, depth + 1))
        })
        .collect()
}

fn value(rng: &mut impl Rng, depth: u32) -> Value {
    let leaf = depth >= 3;
    match rng.gen_range(0..if leaf { 7 } else { 9 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.gen()),
        2 => Value::from(rng.gen::<i64>()),
        3 => Value::from(rng.gen_range(-5i64..100)),
        4 => serde_json::Number::from_f64(rng.gen_range(-1e6..1e6))
            .map_or(Value::Null, Value::Number),
        5 => Value::String(match rng.gen_range(0..5) {
            0 => String::new(),
            1 => "print('hi')".to_owned(),
            2 => "ü\u{0}\u{202e}\u{1F600}".to_owned(),
            3 => "x".repeat(rng.gen_range(100..5000)),
            _ => word(rng),
        }),
        6 => Value::String(
            ["python", "3.11", "dark", "light", "auto", "high", "in_app"]
                .choose(rng)
                .copied()
                .unwrap_or("python")
                .to_owned(),
        ),
        7 => Value::Array(
            (0..rng.gen_range(0..4))
                .map(|_| value(rng, depth + 1))
                .collect(),
        ),
        _ => Value::Object(object(rng, depth)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn requests_stay_relative_to_the_base() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..2000 {
            let call = request(&mut rng, &["known-id".to_owned()]);
            assert!(call.path.starts_with('/'), "{}", call.path);
            assert!(!call.path.starts_with("//"), "{}", call.path);
            assert!(!call.path.contains("://"), "{}", call.path);
        }
    }

    #[test]
    fn requests_cover_methods_routes_and_bodies() {
        let mut rng = StdRng::seed_from_u64(2);
        let calls: Vec<Call> = (0..3000).map(|_| request(&mut rng, &[])).collect();
        for (m, _) in METHODS {
            assert!(calls.iter().any(|c| c.method.as_str() == m), "{m}");
        }
        let matched = calls
            .iter()
            .filter(|c| crate::template::template(&c.path) != crate::template::UNMATCHED)
            .count();
        assert!(matched > 1500 && matched < 3000, "{matched}");
        assert!(calls.iter().any(|c| matches!(c.body, Body::Json(_))));
        assert!(calls.iter().any(|c| matches!(c.body, Body::Raw { .. })));
        assert!(calls.iter().any(|c| matches!(c.csrf, Csrf::Omit)));
        assert!(calls.iter().any(|c| !c.cookie));
    }
}
