//! Merges the schema definitions of requests and responses into `components/schemas`.
//!
//! Requests and responses are generated separately (a field with a default is optional in a
//! request, always present in a response). A type whose two schemas differ gets two components,
//! `Name-Input` and `Name-Output`, as the reference contract names them; so does every type
//! referring to such a type. The response generator writes its references under
//! [`RESPONSE_DEFS`] and they are pointed at the final names here.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// Where the response generator's `$ref`s point until [`merge`] rewrites them.
pub const RESPONSE_DEFS: &str = "/x-response-schemas";
const COMPONENTS: &str = "#/components/schemas/";

fn response_prefix() -> String {
    format!("#{RESPONSE_DEFS}/")
}

/// Every `$ref` in `value`.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// Applies `rename` to every `$ref` in `value`.
fn rewrite(value: &mut Value, rename: &dyn Fn(&str) -> Option<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    Value::String(r) if key == "$ref" => {
                        if let Some(new) = rename(r) {
                            *r = new;
                        }
                    }
                    _ => rewrite(v, rename),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite(v, rename)),
        _ => {}
    }
}

/// The names whose request and response schemas differ, directly or through a reference.
fn split_names(requests: &Map<String, Value>, responses: &Map<String, Value>) -> BTreeSet<String> {
    let prefix = response_prefix();
    let mut normalized: BTreeMap<&str, Value> = BTreeMap::new();
    for (name, schema) in responses {
        let mut schema = schema.clone();
        rewrite(&mut schema, &|r| {
            r.strip_prefix(prefix.as_str())
                .map(|n| format!("{COMPONENTS}{n}"))
        });
        normalized.insert(name, schema);
    }
    let mut split = BTreeSet::new();
    loop {
        let before = split.len();
        for (name, response) in &normalized {
            let Some(request) = requests.get(*name) else {
                continue;
            };
            if split.contains(*name) {
                continue;
            }
            let mut targets = Vec::new();
            refs(request, &mut targets);
            let refers_to_split = targets.iter().any(|r| {
                r.strip_prefix(COMPONENTS)
                    .is_some_and(|n| split.contains(n))
            });
            if request != response || refers_to_split {
                split.insert((*name).to_owned());
            }
        }
        if split.len() == before {
            return split;
        }
    }
}

/// The components of both generators, with `paths` rewritten to refer to them.
pub fn merge(
    mut requests: Map<String, Value>,
    mut responses: Map<String, Value>,
    paths: &mut Map<String, Value>,
) -> Map<String, Value> {
    let split = split_names(&requests, &responses);
    let prefix = response_prefix();
    let rename = |r: &str| -> Option<String> {
        if let Some(name) = r.strip_prefix(prefix.as_str()) {
            let suffix = if split.contains(name) { "-Output" } else { "" };
            return Some(format!("{COMPONENTS}{name}{suffix}"));
        }
        let name = r.strip_prefix(COMPONENTS)?;
        split
            .contains(name)
            .then(|| format!("{COMPONENTS}{name}-Input"))
    };
    for schema in requests.values_mut().chain(responses.values_mut()) {
        rewrite(schema, &rename);
    }
    for item in paths.values_mut() {
        rewrite(item, &rename);
    }
    let mut schemas = Map::new();
    for (name, schema) in requests {
        let key = if split.contains(&name) {
            format!("{name}-Input")
        } else {
            name
        };
        schemas.insert(key, schema);
    }
    for (name, schema) in responses {
        let key = if split.contains(&name) {
            format!("{name}-Output")
        } else {
            name
        };
        schemas.insert(key, schema);
    }
    schemas
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn differing_schemas_split_into_input_and_output() {
        let requests = json!({
            "Inner": {"type": "object", "properties": {"a": {"type": "integer"}}},
            "Outer": {"type": "object", "properties": {"inner": {"$ref": "#/components/schemas/Inner"}}},
            "Same": {"type": "string"},
        });
        let responses = json!({
            "Inner": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
            "Outer": {"type": "object", "properties": {"inner": {"$ref": "#/x-response-schemas/Inner"}}},
            "Same": {"type": "string"},
        });
        let mut paths = json!({"/p": {
            "put": {"requestBody": {"$ref": "#/components/schemas/Outer"},
                    "responses": {"200": {"$ref": "#/x-response-schemas/Outer"}}},
            "get": {"responses": {"200": {"$ref": "#/x-response-schemas/Same"}}},
        }});
        let schemas = merge(
            requests.as_object().cloned().unwrap_or_default(),
            responses.as_object().cloned().unwrap_or_default(),
            paths.as_object_mut().unwrap(),
        );
        let names: Vec<&str> = schemas.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "Inner-Input",
                "Inner-Output",
                "Outer-Input",
                "Outer-Output",
                "Same"
            ]
        );
        assert_eq!(
            schemas["Outer-Output"]["properties"]["inner"]["$ref"],
            "#/components/schemas/Inner-Output"
        );
        assert_eq!(
            schemas["Outer-Input"]["properties"]["inner"]["$ref"],
            "#/components/schemas/Inner-Input"
        );
        assert_eq!(
            paths["/p"]["put"]["requestBody"]["$ref"],
            "#/components/schemas/Outer-Input"
        );
        assert_eq!(
            paths["/p"]["put"]["responses"]["200"]["$ref"],
            "#/components/schemas/Outer-Output"
        );
        assert_eq!(
            paths["/p"]["get"]["responses"]["200"]["$ref"],
            "#/components/schemas/Same"
        );
    }
}
