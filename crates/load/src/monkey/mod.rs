//! Monkey mode: each virtual user signs in, then sends random requests until the run ends and
//! judges every answer against the contract. An answer that breaks it (a 5xx, a malformed body,
//! no answer) is a finding, kept with the request that caused it.

mod catalog;
pub mod verdict;

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::Value;

use crate::accounts::Accounts;
use crate::client::{Answer, Body, Call, Csrf, Session, Stopped, Target};
use crate::stats::Finding;

/// Ids remembered from answers, reused as path parameters.
const IDS_KEPT: usize = 32;
/// Characters of a request or answer body kept in a finding.
const BODY_KEPT: usize = 4096;

/// How a monkey signs in again after it logged itself out.
pub struct Relogin {
    pub accounts: Arc<Accounts>,
    pub password: Option<String>,
}

/// Runs one monkey until the run ends.
pub async fn run(target: Arc<Target>, session: Session, relogin: Relogin) {
    let _ = drive(&target, session, &relogin).await;
}

async fn drive(target: &Target, mut session: Session, relogin: &Relogin) -> Result<(), Stopped> {
    let mut rng = StdRng::from_entropy();
    let mut ids: Vec<String> = Vec::new();
    loop {
        let call = catalog::request(&mut rng, &ids);
        let answer = target.send(&session, &call).await?;
        let reason = match &answer.exception {
            Some(kind) => Some(format!("no answer ({kind})")),
            None => verdict::judge(
                call.method.as_str(),
                answer.status,
                answer.content_type(),
                &answer.body,
            ),
        };
        if let Some(reason) = reason {
            if answer.status < 500 {
                // A server error or no answer already counts as an error; a malformed
                // answer with an acceptable status is one too.
                target.invalid(&answer, reason.clone());
            }
            target
                .stats
                .finding(finding(&call, &session, &answer, reason));
        }
        remember_ids(&answer, &mut ids);
        if answer.status == 200 && answer.endpoint == "/api/v1/auth/logout" && call.cookie {
            // The monkey ended its own session: sign in again to keep exploring as a user.
            let password = relogin
                .password
                .clone()
                .unwrap_or_else(|| relogin.accounts.password().to_owned());
            if let Some(s) = relogin
                .accounts
                .login(target, &session.username.clone(), &password)
                .await?
            {
                session = s;
            }
        }
    }
}

fn remember_ids(answer: &Answer, ids: &mut Vec<String>) {
    let Some(v) = answer.json() else { return };
    let mut found = Vec::new();
    collect_ids(&v, &mut found, 0);
    for id in found {
        if !ids.contains(&id) {
            if ids.len() >= IDS_KEPT {
                ids.remove(0);
            }
            ids.push(id);
        }
    }
}

fn collect_ids(v: &Value, out: &mut Vec<String>, depth: u32) {
    if depth > 3 || out.len() >= 8 {
        return;
    }
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::String(s) if k.ends_with("_id") && s.len() <= 64 => {
                        out.push(s.clone());
                    }
                    _ => collect_ids(v, out, depth + 1),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_ids(v, out, depth + 1)),
        _ => {}
    }
}

fn cut(text: &str) -> String {
    text.chars().take(BODY_KEPT).collect()
}

fn finding(call: &Call, session: &Session, answer: &Answer, reason: String) -> Finding {
    let mut headers = BTreeMap::new();
    let (content_type, body) = match &call.body {
        Body::None => (None, None),
        Body::Json(v) => (
            Some("application/json".to_owned()),
            Some(cut(&v.to_string())),
        ),
        Body::Form(fields) => (
            Some("application/x-www-form-urlencoded".to_owned()),
            Some(cut(&format!("{fields:?}"))),
        ),
        Body::Raw {
            content_type,
            bytes,
        } => (
            content_type.clone(),
            Some(cut(&String::from_utf8_lossy(bytes))),
        ),
    };
    if let Some(ct) = content_type {
        headers.insert("content-type".to_owned(), ct);
    }
    let csrf = match &call.csrf {
        Csrf::Session if session.csrf().is_some() => "the session's token".to_owned(),
        Csrf::Session | Csrf::Omit => "none".to_owned(),
        Csrf::Value(v) => v.clone(),
    };
    headers.insert("x-csrf-token".to_owned(), csrf);
    let cookie = if call.cookie && session.has_cookie() {
        "the session's cookies"
    } else {
        "none"
    };
    headers.insert("cookie".to_owned(), cookie.to_owned());
    Finding {
        at_s: 0.0,
        reason,
        method: call.method.to_string(),
        path: call.path.chars().take(BODY_KEPT).collect(),
        endpoint: answer.endpoint.to_owned(),
        request_headers: headers,
        request_body: body,
        status: answer.status,
        response_content_type: answer.content_type().map(str::to_owned),
        response_body: cut(&answer.text(BODY_KEPT)),
    }
}
