//! Our OpenAPI 3.1 document, derived from the code: the operation table in [`operations`] names
//! each route's method, path and the Rust types of its request and response, whose JSON Schemas
//! come from `schemars`. Tests prove that the table and the router agree and compare the document
//! with the reference contract.

mod admin_ops;
mod components;
mod features;
mod operations;
mod params;
#[cfg(test)]
mod tests;
mod untyped;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{json, Map, Value};

use crate::state::AppState;

pub use operations::operations;

/// Produces a schema, registering named types in the generator's definitions.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// A request or response body.
#[derive(Clone, Copy)]
pub enum Body {
    /// `application/json` of a Rust type.
    Json(SchemaFn),
    /// `application/x-www-form-urlencoded` of a Rust type.
    Form(SchemaFn),
    /// JSON built without a Rust type: documented as any value until a type is introduced.
    Untyped,
    /// A `text/event-stream`.
    EventStream,
    /// A `text/event-stream` whose `data:` frames are JSON of a Rust type.
    EventStreamOf(SchemaFn),
    /// `text/csv` or another download.
    Download(&'static str),
    /// No body: the route answers `204 No Content`.
    NoContent,
    /// A file download in one of several media types (chosen by the request).
    Downloads(&'static [&'static str]),
}

/// `application/json` of `T`.
pub fn json<T: JsonSchema>() -> Body {
    Body::Json(SchemaGenerator::subschema_for::<T>)
}

/// A `text/event-stream` of `data:` frames holding JSON of `T`.
pub fn event_stream_of<T: JsonSchema>() -> Body {
    Body::EventStreamOf(SchemaGenerator::subschema_for::<T>)
}

/// A form body of `T`.
pub fn form<T: JsonSchema>() -> Body {
    Body::Form(SchemaGenerator::subschema_for::<T>)
}

/// One documented route.
#[derive(Clone, Copy)]
pub struct Operation {
    /// Lower-case HTTP method.
    pub method: &'static str,
    /// The path as routed, with `{param}` placeholders.
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    pub request: Option<Body>,
    pub response: Body,
    /// The query parameters: the properties of a struct's schema.
    pub query: Option<SchemaFn>,
    /// Optional string headers the handler reads.
    pub headers: &'static [&'static str],
}

impl Operation {
    fn new(method: &'static str, path: &'static str, tag: &'static str) -> Self {
        Self {
            method,
            path,
            tag,
            summary: "",
            request: None,
            response: Body::Untyped,
            query: None,
            headers: &[],
        }
    }

    pub fn get(path: &'static str, tag: &'static str) -> Self {
        Self::new("get", path, tag)
    }

    pub fn post(path: &'static str, tag: &'static str) -> Self {
        Self::new("post", path, tag)
    }

    pub fn put(path: &'static str, tag: &'static str) -> Self {
        Self::new("put", path, tag)
    }

    pub fn delete(path: &'static str, tag: &'static str) -> Self {
        Self::new("delete", path, tag)
    }

    pub fn patch(path: &'static str, tag: &'static str) -> Self {
        Self::new("patch", path, tag)
    }

    pub fn summary(mut self, summary: &'static str) -> Self {
        self.summary = summary;
        self
    }

    pub fn request(mut self, body: Body) -> Self {
        self.request = Some(body);
        self
    }

    pub fn response(mut self, body: Body) -> Self {
        self.response = body;
        self
    }

    /// Query parameters: one per property of `T` (required when `T` requires it).
    pub fn query<T: JsonSchema>(mut self) -> Self {
        self.query = Some(T::json_schema);
        self
    }

    /// Optional string headers.
    pub fn headers(mut self, names: &'static [&'static str]) -> Self {
        self.headers = names;
        self
    }
}

fn content(body: Body, generator: &mut SchemaGenerator) -> Value {
    match body {
        Body::Json(schema) => json!({"application/json": {"schema": schema(generator)}}),
        Body::Form(schema) => {
            json!({"application/x-www-form-urlencoded": {"schema": schema(generator)}})
        }
        Body::Untyped => json!({"application/json": {"schema": {}}}),
        Body::NoContent => json!({}),
        Body::EventStream => json!({"text/event-stream": {"schema": {"type": "string"}}}),
        Body::EventStreamOf(schema) => {
            json!({"text/event-stream": {"schema": schema(generator)}})
        }
        Body::Download(mime) => json!({ mime: {"schema": {"type": "string"}} }),
        Body::Downloads(mimes) => mimes
            .iter()
            .map(|m| (m.to_string(), json!({"schema": {"type": "string"}})))
            .collect::<Map<String, Value>>()
            .into(),
    }
}

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        // A catch-all `{*rest}` of the router is the parameter `rest`.
        .map(|name| name.trim_start_matches('*'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

/// The `parameters` of an operation: its path placeholders, its query struct's properties and
/// its headers.
fn parameters(op: &Operation, generator: &mut SchemaGenerator) -> Vec<Value> {
    let mut params = path_parameters(op.path);
    if let Some(query) = op.query {
        let schema = query(generator).to_value();
        let required: Vec<&str> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let empty = Map::new();
        for (name, property) in schema["properties"].as_object().unwrap_or(&empty) {
            let mut property = property.clone();
            let description = property
                .as_object_mut()
                .and_then(|p| p.remove("description"));
            let mut param = json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "schema": property,
            });
            if let Some(description) = description {
                param["description"] = description;
            }
            params.push(param);
        }
    }
    for name in op.headers {
        params.push(
            json!({"name": name, "in": "header", "required": false, "schema": {"type": "string"}}),
        );
    }
    params
}

fn generator(serialize: bool) -> SchemaGenerator {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.definitions_path = if serialize {
            components::RESPONSE_DEFS.into()
        } else {
            "#/components/schemas/".into()
        };
        s.meta_schema = None;
    });
    let settings = if serialize {
        settings.for_serialize()
    } else {
        settings.for_deserialize()
    };
    settings.into_generator()
}

/// The whole document.
pub fn document() -> Value {
    let mut requests = generator(false);
    let mut responses = generator(true);
    let mut paths: Map<String, Value> = Map::new();
    for op in operations() {
        let (status, success) = match op.response {
            Body::NoContent => ("204", json!({"description": "No Content"})),
            body => (
                "200",
                json!({"description": "Successful Response", "content": content(body, &mut responses)}),
            ),
        };
        let mut entry = json!({
            "tags": [op.tag],
            "summary": op.summary,
            "operationId": format!("{}_{}", op.method, op.path.trim_matches('/').replace(['/', '{', '}', '-', '*', '.'], "_")),
            "responses": {
                status: success,
                "422": {"description": "Validation Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}},
            },
        });
        let params = parameters(&op, &mut requests);
        if !params.is_empty() {
            entry["parameters"] = Value::Array(params);
        }
        if let Some(body) = op.request {
            entry["requestBody"] =
                json!({"required": true, "content": content(body, &mut requests)});
        }
        let item = paths
            .entry(op.path.replace("{*", "{"))
            .or_insert_with(|| json!({}));
        item[op.method] = entry;
    }
    let mut schemas = components::merge(
        requests.take_definitions(true),
        responses.take_definitions(true),
        &mut paths,
    );
    schemas.insert("HTTPValidationError".into(), validation_error_schema());
    json!({
        "openapi": "3.1.0",
        "info": {"title": "integr8s", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

fn validation_error_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"detail": {"type": "array", "items": {
            "type": "object",
            "required": ["loc", "msg", "type"],
            "properties": {
                "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                "msg": {"type": "string"},
                "type": {"type": "string"},
            },
        }}},
    })
}

/// The document as pretty JSON (for `integr8s openapi`).
pub fn document_pretty() -> String {
    serde_json::to_string_pretty(&document()).unwrap_or_default()
}

async fn serve_document() -> Response {
    let mut response = axum::Json(document()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// `GET /openapi.json`.
pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(serve_document))
}
