//! The flows other than execution: event history, saved scripts, settings and notifications.
//! Each checks the bodies it gets; a wrong body is recorded as an error of its endpoint.

use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};

use super::execute::{self, Runtime, Script};
use crate::client::{Call, Expect, Session, Stopped, Target};

const THEMES: [&str; 3] = ["light", "dark", "auto"];

fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.get(name)
}

fn has(v: &Value, fields: &[&str]) -> bool {
    fields.iter().all(|f| v.get(f).is_some())
}

/// Who am I: the signed-in user's name must come back.
pub async fn me(target: &Target, session: &Session) -> Result<(), Stopped> {
    let answer = target.send(session, &Call::get("/api/v1/auth/me")).await?;
    if answer.status == 200 {
        let body = answer.json().unwrap_or_default();
        let name = field(&body, "username").and_then(Value::as_str);
        if name != Some(session.username.as_str()) || !has(&body, &["user_id", "role"]) {
            target.invalid(&answer, format!("me is {name:?}, not {}", session.username));
        }
    }
    Ok(())
}

/// The user's executions, then the events and result of one of them.
pub async fn history(
    target: &Target,
    session: &Session,
    rng: &mut impl Rng,
) -> Result<(), Stopped> {
    let answer = target
        .send(session, &Call::get("/api/v1/user/executions?limit=10"))
        .await?;
    if answer.status != 200 {
        return Ok(());
    }
    let body = answer.json().unwrap_or_default();
    let Some(list) = field(&body, "executions").and_then(Value::as_array) else {
        target.invalid(&answer, "execution list without executions");
        return Ok(());
    };
    if !has(&body, &["total", "limit", "skip", "has_more"]) || list.len() > 10 {
        target.invalid(&answer, "execution list breaks its shape or limit");
    }
    let ids: Vec<String> = list
        .iter()
        .filter_map(|e| Some(e.get("execution_id")?.as_str()?.to_owned()))
        .collect();
    if ids.len() != list.len() {
        target.invalid(&answer, "listed execution without execution_id");
    }
    let Some(id) = ids.choose(rng) else {
        return Ok(());
    };
    execute::events(target, session, id).await?;
    let result = target
        .send(
            session,
            &Call::get(format!("/api/v1/executions/{id}/result")),
        )
        .await?;
    if result.status == 200 {
        let v = result.json().unwrap_or_default();
        if v.get("execution_id").and_then(Value::as_str) != Some(id.as_str()) {
            target.invalid(&result, "result of another execution");
        }
    }
    Ok(())
}

/// Saved scripts: create, list, update, read, run, delete, and the deleted one is gone.
pub async fn saved_scripts(
    target: &Target,
    session: &Session,
    runtime: &Runtime,
    rng: &mut impl Rng,
) -> Result<(), Stopped> {
    let name = format!("load script {:08x}", rng.gen::<u32>());
    let first = Script::random(rng);
    let create = Call::post(
        "/api/v1/scripts",
        json!({"name": name, "script": first.source(), "lang": runtime.lang,
               "lang_version": runtime.version, "description": "written by integr8s load"}),
    );
    let answer = target.send(session, &create).await?;
    if answer.status != 200 {
        return Ok(());
    }
    let body = answer.json().unwrap_or_default();
    let Some(id) = field(&body, "script_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        target.invalid(&answer, "created script without script_id");
        return Ok(());
    };
    if field(&body, "name").and_then(Value::as_str) != Some(name.as_str()) {
        target.invalid(&answer, "created script with another name");
    }
    let list = target.send(session, &Call::get("/api/v1/scripts")).await?;
    if list.status == 200 {
        let listed = list.json().and_then(|v| {
            let scripts = v.get("scripts")?.as_array()?.clone();
            Some(
                scripts
                    .iter()
                    .any(|s| s.get("script_id").and_then(Value::as_str) == Some(&id)),
            )
        });
        if listed != Some(true) {
            target.invalid(&list, "new script not listed");
        }
    }
    let path = format!("/api/v1/scripts/{id}");
    let second = Script::random(rng);
    let update = target
        .send(
            session,
            &Call::put(path.clone(), json!({"script": second.source()})),
        )
        .await?;
    if update.status == 200 {
        let v = update.json().unwrap_or_default();
        if field(&v, "script").and_then(Value::as_str) != Some(second.source().as_str()) {
            target.invalid(&update, "updated script still has its old source");
        }
    }
    let read = target.send(session, &Call::get(path.clone())).await?;
    let source = if read.status == 200 {
        let v = read.json().unwrap_or_default();
        let source = field(&v, "script")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if source.as_deref() != Some(second.source().as_str()) {
            target.invalid(&read, "read script differs from the update");
        }
        source
    } else {
        None
    };
    // Run what was stored: the script read back must behave as the one written.
    if source.is_some() {
        execute::run(target, session, runtime, &second, rng.gen_bool(0.6)).await?;
    }
    target.send(session, &Call::delete(path.clone())).await?;
    let gone = Call::get(path).expect(Expect::Statuses(&[404]));
    target.send(session, &gone).await?;
    Ok(())
}

/// Settings (read, change the theme and the editor, read back) and notifications.
pub async fn settings_and_notifications(
    target: &Target,
    session: &Session,
    rng: &mut impl Rng,
) -> Result<(), Stopped> {
    let settings = target
        .send(session, &Call::get("/api/v1/user/settings/"))
        .await?;
    if settings.status == 200 {
        let v = settings.json().unwrap_or_default();
        let theme = field(&v, "theme").and_then(Value::as_str);
        if !theme.is_some_and(|t| THEMES.contains(&t)) || !has(&v, &["editor", "version"]) {
            target.invalid(&settings, "settings without a known theme or editor");
        }
    }
    let theme = THEMES.choose(rng).copied().unwrap_or("auto");
    let changed = target
        .send(
            session,
            &Call::put("/api/v1/user/settings/theme", json!({"theme": theme})),
        )
        .await?;
    if changed.status == 200
        && changed
            .json()
            .and_then(|v| v.get("theme")?.as_str().map(str::to_owned))
            != Some(theme.to_owned())
    {
        target.invalid(&changed, "theme not changed");
    }
    let font_size = rng.gen_range(10..=20);
    let editor = target
        .send(
            session,
            &Call::put(
                "/api/v1/user/settings/editor",
                json!({"font_size": font_size, "tab_size": 4, "use_tabs": false,
                       "word_wrap": true, "show_line_numbers": true}),
            ),
        )
        .await?;
    if editor.status == 200
        && editor
            .json()
            .and_then(|v| v.get("editor")?.get("font_size")?.as_i64())
            != Some(font_size)
    {
        target.invalid(&editor, "editor font size not changed");
    }
    let list = target
        .send(session, &Call::get("/api/v1/notifications?limit=10"))
        .await?;
    if list.status == 200 {
        let v = list.json().unwrap_or_default();
        if !field(&v, "notifications").is_some_and(Value::is_array)
            || !has(&v, &["total", "unread_count"])
        {
            target.invalid(&list, "notification list breaks its shape");
        }
    }
    let unread = target
        .send(session, &Call::get("/api/v1/notifications/unread-count"))
        .await?;
    if unread.status == 200
        && !unread
            .json()
            .is_some_and(|v| v.get("unread_count").is_some_and(Value::is_u64))
    {
        target.invalid(&unread, "unread count is not a count");
    }
    let mark = Call::post("/api/v1/notifications/mark-all-read", json!({}))
        .body(crate::client::Body::None);
    target.send(session, &mark).await?;
    Ok(())
}
