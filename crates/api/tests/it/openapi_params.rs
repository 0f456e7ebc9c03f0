//! The documented query parameters against the handlers: every typed parameter of the OpenAPI
//! document, sent with a value of the wrong type, gets the handler's 422 naming that parameter.

use axum::http::{Method, StatusCode};
use serde_json::Value;

use crate::common::{request, TestApp};

/// A value the parameter's schema rejects, when the schema constrains the value at all.
fn invalid_value(schema: &Value, doc: &Value) -> Option<&'static str> {
    if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        let name = target.rsplit('/').next()?;
        return invalid_value(&doc["components"]["schemas"][name], doc);
    }
    if let Some(alts) = schema.get("anyOf").and_then(Value::as_array) {
        return alts.iter().find_map(|alt| invalid_value(alt, doc));
    }
    if schema.get("enum").is_some() || schema.get("oneOf").is_some() {
        return Some("no-such-value");
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if types.contains(&"array") {
        return invalid_value(&schema["items"], doc);
    }
    if types.contains(&"integer") {
        return Some("not-a-number");
    }
    if types.contains(&"boolean") {
        return Some("maybe");
    }
    if schema["format"] == "date-time" {
        return Some("not-a-time");
    }
    None
}

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{export_format}" => "csv",
            s if s.starts_with('{') => "probe-id",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn query_parameters_are_read_by_their_handlers() {
    let app = TestApp::new().await;
    let admin = app.admin("paramadmin").await;
    let doc = integr8s_api::openapi::document();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for param in op["parameters"].as_array().into_iter().flatten() {
                if param["in"] != "query" {
                    continue;
                }
                let Some(bad) = invalid_value(&param["schema"], &doc) else {
                    continue;
                };
                let name = param["name"].as_str().unwrap();
                let uri = format!("{}?{name}={bad}", concrete(path));
                let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
                let response = app
                    .send(request(method.clone(), &uri, Some(&admin), None))
                    .await;
                checked += 1;
                // The location names the parameter (and, for a list, the item's index).
                let loc = response.json()["detail"][0]["loc"].clone();
                let names_it = loc[0] == "query" && loc[1] == name;
                if response.status != StatusCode::UNPROCESSABLE_ENTITY || !names_it {
                    failures.push(format!(
                        "{method} {uri}: {} {}",
                        response.status,
                        response.text()
                    ));
                }
            }
        }
    }
    assert!(checked >= 30, "only {checked} parameters probed");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
