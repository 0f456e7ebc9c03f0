//! Schema compatibility between the reference contract and our document.
//!
//! Requests: every required property of the reference is accepted by ours, and ours requires
//! nothing the reference leaves optional. Responses: every property of the reference is present
//! in ours with a compatible type. Types compare as sets of JSON types (`integer` fits `number`).
//! Parameters: every reference parameter exists in ours at the same place (`in`), accepts the
//! reference's types and is not required when the reference leaves it optional. A union of
//! objects discriminated by `event_type` compares each alternative with ours of the same type.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

pub const MISSING_REFERENCE: &str =
    "the reference contract src/openapi/tests/reference/openapi.json is missing or not JSON";

/// The reference contract, kept in the repository as a test fixture (see its README).
pub fn reference() -> Option<Value> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/openapi/tests/reference/openapi.json");
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

#[derive(Debug, Default)]
pub struct Report {
    /// Reference operations we do not document yet.
    pub missing: Vec<String>,
    /// Documented operations whose body has no derived schema yet.
    pub untyped: Vec<String>,
    /// Real conflicts.
    pub incompatible: Vec<String>,
    /// Event types of the reference's event unions that our event schema does not model.
    pub unmodeled_events: BTreeSet<String>,
    pub checked: usize,
}

impl Report {
    pub fn summary(&self) -> String {
        format!(
            "{} operations compared; {} missing from our document:\n  {}\n{} without a derived schema:\n  {}\n{} incompatible:\n  {}\n{} event types not modelled:\n  {}",
            self.checked,
            self.missing.len(),
            self.missing.join("\n  "),
            self.untyped.len(),
            self.untyped.join("\n  "),
            self.incompatible.len(),
            self.incompatible.join("\n  "),
            self.unmodeled_events.len(),
            self.unmodeled_events
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        )
    }
}

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

pub fn compare(reference: &Value, ours: &Value) -> Report {
    let mut report = Report::default();
    let Some(paths) = reference["paths"].as_object() else {
        return report;
    };
    for (path, item) in paths {
        for method in METHODS {
            let Some(theirs) = item.get(method) else {
                continue;
            };
            let name = format!("{} {path}", method.to_uppercase());
            let Some(mine) = ours["paths"].get(path).and_then(|p| p.get(method)) else {
                report.missing.push(name);
                continue;
            };
            report.checked += 1;
            let cx = Cx {
                reference,
                ours,
                unmodeled: RefCell::default(),
            };
            cx.parameters(&name, theirs, mine, &mut report.incompatible);
            if let Some(ref_body) = body_schema(theirs.get("requestBody")) {
                match body_schema(mine.get("requestBody")) {
                    None => report
                        .incompatible
                        .push(format!("{name}: request body not documented")),
                    Some(my_body) if is_untyped(&cx.resolve(my_body, false)) => {
                        report.untyped.push(format!("{name} (request)"))
                    }
                    Some(my_body) => {
                        cx.request(&name, ref_body, my_body, 0, &mut report.incompatible)
                    }
                }
            }
            let ref_resp = body_schema(theirs["responses"].get("200"));
            let my_resp = body_schema(mine["responses"].get("200"));
            if is_stream(mine["responses"].get("200")) {
                // Event streams are frames of text; their events are not schema-checked.
                continue;
            }
            if let (Some(ref_resp), Some(my_resp)) = (ref_resp, my_resp) {
                if is_untyped(&cx.resolve(my_resp, false)) && !is_untyped(ref_resp) {
                    report.untyped.push(format!("{name} (response)"));
                } else {
                    cx.response(&name, ref_resp, my_resp, 0, &mut report.incompatible);
                }
            }
            report.unmodeled_events.extend(cx.unmodeled.take());
        }
    }
    report
}

fn body_schema(body: Option<&Value>) -> Option<&Value> {
    let content = body?.get("content")?.as_object()?;
    content.values().next()?.get("schema")
}

fn is_stream(body: Option<&Value>) -> bool {
    body.and_then(|b| b.get("content"))
        .is_some_and(|c| c.get("text/event-stream").is_some())
}

fn is_untyped(schema: &Value) -> bool {
    schema.as_object().is_some_and(|o| o.is_empty()) || schema == &Value::Bool(true)
}

struct Cx<'a> {
    reference: &'a Value,
    ours: &'a Value,
    unmodeled: RefCell<BTreeSet<String>>,
}

fn params_of(op: &Value) -> Vec<&Value> {
    op["parameters"].as_array().into_iter().flatten().collect()
}

const MAX_DEPTH: usize = 6;

impl Cx<'_> {
    /// Follows `$ref`s (and a single-entry `allOf`) to the schema itself.
    fn resolve(&self, schema: &Value, theirs: bool) -> Value {
        let doc = if theirs { self.reference } else { self.ours };
        let mut current = schema.clone();
        for _ in 0..16 {
            if let Some(target) = current.get("$ref").and_then(Value::as_str) {
                let name = target.rsplit('/').next().unwrap_or_default();
                current = doc["components"]["schemas"][name].clone();
            } else if let Some([only]) = current
                .get("allOf")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
            {
                current = only.clone();
            } else {
                break;
            }
        }
        current
    }

    /// The JSON types a schema admits (`any` when unconstrained).
    fn types(&self, schema: &Value, theirs: bool) -> BTreeSet<String> {
        let s = self.resolve(schema, theirs);
        let mut out = BTreeSet::new();
        for key in ["anyOf", "oneOf"] {
            if let Some(alts) = s.get(key).and_then(Value::as_array) {
                for alt in alts {
                    out.extend(self.types(alt, theirs));
                }
            }
        }
        match s.get("type") {
            Some(Value::String(t)) => {
                out.insert(t.clone());
            }
            Some(Value::Array(ts)) => {
                out.extend(ts.iter().filter_map(Value::as_str).map(str::to_owned))
            }
            _ => {}
        }
        if let Some(values) = s.get("enum").and_then(Value::as_array) {
            out.extend(values.iter().map(json_type));
        }
        if let Some(c) = s.get("const") {
            out.insert(json_type(c));
        }
        if out.is_empty() && s.get("properties").is_some() {
            out.insert("object".into());
        }
        if out.is_empty() {
            out.insert("any".into());
        }
        out
    }

    /// The object schema among the alternatives, if any.
    fn object_of(&self, schema: &Value, theirs: bool) -> Option<Value> {
        let s = self.resolve(schema, theirs);
        if s.get("properties").is_some() || s.get("additionalProperties").is_some() {
            return Some(s);
        }
        ["anyOf", "oneOf"].iter().find_map(|key| {
            s.get(*key)?
                .as_array()?
                .iter()
                .find_map(|alt| self.object_of(alt, theirs))
        })
    }

    fn items_of(&self, schema: &Value, theirs: bool) -> Option<Value> {
        let s = self.resolve(schema, theirs);
        if let Some(items) = s.get("items") {
            return Some(items.clone());
        }
        ["anyOf", "oneOf"].iter().find_map(|key| {
            s.get(*key)?
                .as_array()?
                .iter()
                .find_map(|alt| self.items_of(alt, theirs))
        })
    }

    /// Every parameter of the reference is accepted by ours, at the same place, with compatible
    /// types, and required by ours only where the reference requires it.
    fn parameters(&self, at: &str, theirs: &Value, mine: &Value, errors: &mut Vec<String>) {
        let mine = params_of(mine);
        for param in params_of(theirs) {
            let (name, place) = (&param["name"], &param["in"]);
            let at = format!("{at} parameter {name}");
            let Some(ours) = mine.iter().find(|p| &p["name"] == name) else {
                errors.push(format!("{at} ({place}) not documented"));
                continue;
            };
            if &ours["in"] != place {
                errors.push(format!(
                    "{at} is in {} where the reference has {place}",
                    ours["in"]
                ));
            }
            if ours["required"] == true && param["required"] != true {
                errors.push(format!("{at} is required, optional in the reference"));
            }
            // An absent optional parameter is the reference's `null`: a query string or a header
            // cannot carry one.
            let mut schema = param["schema"].clone();
            if let Some(alts) = schema.get_mut("anyOf").and_then(Value::as_array_mut) {
                alts.retain(|alt| alt["type"] != "null");
            }
            self.request(&at, &schema, &ours["schema"], 0, errors);
        }
    }

    /// The `event_type` constant of an object schema.
    fn event_type_of(&self, schema: &Value, theirs: bool) -> Option<String> {
        [schema.clone(), self.resolve(schema, theirs)]
            .iter()
            .find_map(|s| {
                let t = &s["properties"]["event_type"];
                t.get("const")
                    .or_else(|| t["enum"].as_array()?.first())?
                    .as_str()
                    .map(str::to_owned)
            })
    }

    /// The alternatives of a union whose members all carry an `event_type` constant.
    fn event_union(&self, schema: &Value, theirs: bool) -> Option<Vec<(String, Value)>> {
        let s = self.resolve(schema, theirs);
        let alts = ["oneOf", "anyOf"]
            .iter()
            .find_map(|key| s.get(*key)?.as_array())?;
        alts.iter()
            .map(|alt| Some((self.event_type_of(alt, theirs)?, alt.clone())))
            .collect::<Option<Vec<_>>>()
            .filter(|alts| !alts.is_empty())
    }

    /// Our object schema for one event type: the envelope's properties with the variant's.
    fn our_event(&self, schema: &Value, event_type: &str) -> Option<Value> {
        let s = self.resolve(schema, false);
        let variant = s["oneOf"]
            .as_array()?
            .iter()
            .find(|alt| self.event_type_of(alt, false).as_deref() == Some(event_type))?;
        let mut properties = serde_json::Map::new();
        for part in [&s, variant, &self.resolve(variant, false)] {
            if let Some(props) = part["properties"].as_object() {
                properties.extend(props.clone());
            }
        }
        Some(serde_json::json!({"type": "object", "properties": properties}))
    }

    /// Each event of the reference's union against ours of the same `event_type`; event types
    /// we do not model are recorded, not reported as conflicts.
    fn response_events(
        &self,
        at: &str,
        theirs: &[(String, Value)],
        mine: &Value,
        depth: usize,
        errors: &mut Vec<String>,
    ) {
        for (event_type, schema) in theirs {
            match self.our_event(mine, event_type) {
                Some(ours) => {
                    self.response(&format!("{at}<{event_type}>"), schema, &ours, depth, errors)
                }
                None => {
                    self.unmodeled.borrow_mut().insert(event_type.clone());
                }
            }
        }
    }

    /// Every value the reference sends a client must be one ours can produce: our types within
    /// theirs.
    fn response(
        &self,
        at: &str,
        theirs: &Value,
        mine: &Value,
        depth: usize,
        errors: &mut Vec<String>,
    ) {
        let (t, m) = (self.types(theirs, true), self.types(mine, false));
        if !subset(&m, &t) {
            errors.push(format!(
                "{at}: response type {m:?} where the reference has {t:?}"
            ));
            return;
        }
        if depth >= MAX_DEPTH {
            return;
        }
        if let Some(events) = self.event_union(theirs, true) {
            return self.response_events(at, &events, mine, depth + 1, errors);
        }
        if let (Some(to), Some(mo)) = (self.object_of(theirs, true), self.object_of(mine, false)) {
            let empty = serde_json::Map::new();
            let mine_props = mo["properties"].as_object().unwrap_or(&empty);
            for (prop, ts) in to["properties"].as_object().unwrap_or(&empty) {
                match mine_props.get(prop) {
                    Some(ms) => self.response(&format!("{at}.{prop}"), ts, ms, depth + 1, errors),
                    None => errors.push(format!("{at}: response lacks property {prop:?}")),
                }
            }
        }
        if let (Some(ti), Some(mi)) = (self.items_of(theirs, true), self.items_of(mine, false)) {
            self.response(&format!("{at}[]"), &ti, &mi, depth + 1, errors);
        }
    }

    /// Every request the reference accepts must be accepted by ours: their types within ours.
    fn request(
        &self,
        at: &str,
        theirs: &Value,
        mine: &Value,
        depth: usize,
        errors: &mut Vec<String>,
    ) {
        let (t, m) = (self.types(theirs, true), self.types(mine, false));
        if !subset(&t, &m) {
            errors.push(format!(
                "{at}: request type {m:?} where the reference accepts {t:?}"
            ));
            return;
        }
        if depth >= MAX_DEPTH {
            return;
        }
        if let (Some(to), Some(mo)) = (self.object_of(theirs, true), self.object_of(mine, false)) {
            let empty = serde_json::Map::new();
            let their_props = to["properties"].as_object().unwrap_or(&empty);
            let mine_props = mo["properties"].as_object().unwrap_or(&empty);
            let required = |o: &Value| -> BTreeSet<String> {
                o["required"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            };
            let (their_req, my_req) = (required(&to), required(&mo));
            for prop in &their_req {
                if !mine_props.contains_key(prop) {
                    errors.push(format!(
                        "{at}: request does not accept required property {prop:?}"
                    ));
                }
            }
            for prop in my_req.difference(&their_req) {
                errors.push(format!(
                    "{at}: request requires {prop:?}, optional in the reference"
                ));
            }
            for (prop, ts) in their_props {
                if let Some(ms) = mine_props.get(prop) {
                    self.request(&format!("{at}.{prop}"), ts, ms, depth + 1, errors);
                }
            }
        }
        if let (Some(ti), Some(mi)) = (self.items_of(theirs, true), self.items_of(mine, false)) {
            self.request(&format!("{at}[]"), &ti, &mi, depth + 1, errors);
        }
    }
}

fn json_type(v: &Value) -> String {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
    .to_owned()
}

/// Whether every type of `a` is admitted by `b` (`any` admits all; `number` admits `integer`).
fn subset(a: &BTreeSet<String>, b: &BTreeSet<String>) -> bool {
    b.contains("any")
        || a.iter()
            .all(|t| b.contains(t) || (t == "integer" && b.contains("number")))
}
