//! Cases proving that the compatibility check reports the conflicts it exists to find.

use serde_json::Value;

use super::compat::compare;

#[test]
fn detects_missing_and_mistyped_properties() {
    let reference = serde_json::json!({
        "paths": {"/x": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/X"}}}}}}}},
        "components": {"schemas": {"X": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}}}},
    });
    let good = serde_json::json!({
        "paths": {"/x": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}, "c": {}}}}}}}}}},
    });
    let report = compare(&reference, &good);
    assert!(report.incompatible.is_empty(), "{report:?}");
    let bad = serde_json::json!({
        "paths": {"/x": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {"type": "object", "properties": {"a": {"type": ["string", "null"]}}}}}}}}}},
    });
    let report = compare(&reference, &bad);
    assert_eq!(report.incompatible.len(), 2, "{report:?}");
}

#[test]
fn detects_parameter_conflicts() {
    let op = |params: Value| serde_json::json!({"paths": {"/x": {"get": {"parameters": params, "responses": {}}}}});
    let reference = op(serde_json::json!([
        {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer"}},
        {"name": "q", "in": "query", "required": false, "schema": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
        {"name": "key", "in": "header", "required": false, "schema": {"type": "string"}},
    ]));
    let good = op(serde_json::json!([
        {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer"}},
        {"name": "q", "in": "query", "required": false, "schema": {"type": "string"}},
        {"name": "key", "in": "header", "required": false, "schema": {"type": "string"}},
    ]));
    let report = compare(&reference, &good);
    assert!(report.incompatible.is_empty(), "{report:?}");
    let bad = op(serde_json::json!([
        {"name": "limit", "in": "query", "required": true, "schema": {"type": "string"}},
        {"name": "key", "in": "query", "required": false, "schema": {"type": "string"}},
    ]));
    let report = compare(&reference, &bad);
    // limit: required and mistyped; q: missing; key: wrong place.
    assert_eq!(report.incompatible.len(), 4, "{report:?}");
}

#[test]
fn compares_events_by_their_type() {
    let event = |t: &str, extra: Value| {
        let mut props =
            serde_json::json!({"event_type": {"const": t}, "event_id": {"type": "string"}});
        props
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::json!({"type": "object", "properties": props})
    };
    let doc = |items: Value| serde_json::json!({"paths": {"/e": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {"type": "array", "items": items}}}}}}}}});
    let reference = doc(serde_json::json!({"oneOf": [
        event("a_happened", serde_json::json!({"n": {"type": "integer"}})),
        event("b_happened", serde_json::json!({})),
    ]}));
    let ours = |n: Value| {
        doc(serde_json::json!({
            "type": "object",
            "properties": {"event_id": {"type": "string"}},
            "oneOf": [{"type": "object", "properties": {"event_type": {"const": "a_happened"}, "n": n}}],
        }))
    };
    let report = compare(&reference, &ours(serde_json::json!({"type": "integer"})));
    assert!(report.incompatible.is_empty(), "{report:?}");
    assert_eq!(report.unmodeled_events.len(), 1, "{report:?}");
    assert!(report.unmodeled_events.contains("b_happened"));
    let report = compare(&reference, &ours(serde_json::json!({"type": "string"})));
    assert_eq!(report.incompatible.len(), 1, "{report:?}");
    assert!(
        report.incompatible[0].contains("<a_happened>.n"),
        "{report:?}"
    );
}
