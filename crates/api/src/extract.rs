//! Extractors whose rejections share the contract's 422/413 shapes instead of axum's plain text.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::Segment;

use crate::error::{ApiError, ValidationIssue};
use crate::state::AppState;

/// A JSON body deserialised into `T`; every failure is a 422 (or 413 when too large).
#[derive(Debug)]
pub struct AppJson<T>(pub T);

/// Reads the whole body, answering 413 past the configured limit.
async fn read_body(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    let limit = state.config.max_body_bytes;
    match Bytes::from_request(req, state).await {
        Ok(bytes) if bytes.len() > limit => Err(ApiError::payload_too_large(limit)),
        Ok(bytes) => Ok(bytes),
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err(ApiError::payload_too_large(limit))
        }
        Err(rejection) => Err(ApiError::invalid(
            &["body"],
            "body_read_error",
            rejection.body_text(),
        )),
    }
}

fn content_type_is(headers: &HeaderMap, accept: impl Fn(&str) -> bool) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| accept(mime.trim().to_ascii_lowercase().as_str()))
        .unwrap_or(false)
}

fn is_json_mime(mime: &str) -> bool {
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

fn not_an_object() -> ApiError {
    ApiError::invalid(
        &["body"],
        "model_attributes_type",
        "Input should be a valid dictionary or object to extract fields from",
    )
}

impl<T: DeserializeOwned> FromRequest<AppState> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let json_type = content_type_is(req.headers(), is_json_mime);
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::invalid(&["body"], "missing", "Field required"));
        }
        if !json_type {
            return Err(not_an_object());
        }
        json_object(&bytes).map(AppJson)
    }
}

/// Parses a JSON object body into `T`, with the contract's 422 shapes for bad JSON and
/// non-object bodies.
fn json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::Validation(vec![ValidationIssue::new(
            &["body"],
            "json_invalid",
            format!("JSON decode error: {e}"),
        )
        .at(e.column())])
    })?;
    if !value.is_object() {
        return Err(not_an_object());
    }
    deserialize_value(value)
}

/// An optional JSON object body: an empty body reads as `{}`, so `T`'s defaults apply.
pub fn optional_json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return deserialize_value(Value::Object(serde_json::Map::new()));
    }
    json_object(bytes)
}

/// Deserialises a JSON value, turning serde's error into a located pydantic-style issue.
pub fn deserialize_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let mut issue = ValidationIssue::new(&["body"], "value_error", "");
        for segment in err.path().iter() {
            issue = match segment {
                Segment::Seq { index } => issue.at(*index),
                Segment::Map { key } => issue.at(key.as_str()),
                Segment::Enum { variant } => issue.at(variant.as_str()),
                Segment::Unknown => issue,
            };
        }
        let message = err.inner().to_string();
        let message = message.split(" at line ").next().unwrap_or_default();
        if let Some(field) = backticked(message).filter(|_| message.starts_with("missing field")) {
            issue = issue.at(field);
            issue.kind = "missing".to_owned();
            issue.msg = "Field required".to_owned();
        } else if message.starts_with("invalid type") {
            issue.kind = "type_error".to_owned();
            issue.msg = format!("Input has an {message}");
        } else {
            issue.msg = message.to_owned();
        }
        ApiError::Validation(vec![issue])
    })
}

fn backticked(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

/// A url-encoded form body as ordered (name, value) pairs.
#[derive(Debug, Default)]
pub struct AppForm(pub Vec<(String, String)>);

impl AppForm {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a required field, or a 422 naming it.
    pub fn required(&self, name: &str) -> Result<&str, ValidationIssue> {
        self.get(name)
            .ok_or_else(|| ValidationIssue::new(&["body", name], "missing", "Field required"))
    }
}

impl FromRequest<AppState> for AppForm {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let form_type =
            content_type_is(req.headers(), |m| m == "application/x-www-form-urlencoded");
        let bytes = read_body(req, state).await?;
        if !form_type {
            // Treated as an empty form: the required fields are reported missing.
            return Ok(AppForm::default());
        }
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
            .map(AppForm)
            .map_err(|e| ApiError::invalid(&["body"], "value_error", e.to_string()))
    }
}

/// Query-string pairs, in order, with repeated names kept (`?event_types=a&event_types=b`).
#[derive(Debug, Default)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// An integer parameter within `min..=max`, `default` when absent.
    pub fn int_in(&self, name: &str, default: i64, min: i64, max: i64) -> Result<i64, ApiError> {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        let value: i64 = raw.trim().parse().map_err(|_| {
            ApiError::invalid(
                &["query", name],
                "int_parsing",
                "Input should be a valid integer, unable to parse string as an integer",
            )
        })?;
        if value < min {
            return Err(ApiError::invalid(
                &["query", name],
                "greater_than_equal",
                format!("Input should be greater than or equal to {min}"),
            ));
        }
        if value > max {
            return Err(ApiError::invalid(
                &["query", name],
                "less_than_equal",
                format!("Input should be less than or equal to {max}"),
            ));
        }
        Ok(value)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str::<Vec<(String, String)>>(query)
            .map(QueryPairs)
            .map_err(|e| ApiError::invalid(&["query"], "value_error", e.to_string()))
    }
}

/// A path parameter; a malformed one is a 422 instead of axum's plain-text 400.
#[derive(Debug)]
pub struct AppPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for AppPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| AppPath(p.0))
            .map_err(|e| ApiError::invalid(&["path"], "value_error", e.body_text()))
    }
}

/// The raw body, with the 413 limit applied.
#[derive(Debug)]
pub struct AppBytes(pub Bytes);

impl FromRequest<AppState> for AppBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        read_body(req, state).await.map(AppBytes)
    }
}
