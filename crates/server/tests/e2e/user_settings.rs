//! User settings over HTTP: defaults, partial updates, validation, history with old and new
//! values, restore to a point in time, and a state that lives in the database.

use integr8s_core::ports::UserSettingsStore;
use integr8s_core::user_settings::current_settings;
use integr8s_store::SqliteStore;
use serde_json::{json, Value};

use crate::harness::{Client, Resp, Server};

const BASE: &str = "/api/v1/user/settings/";

async fn put(c: &Client, path: &str, body: Value) -> Resp {
    c.send(
        c.http
            .put(format!("{}{path}", c.base))
            .header("X-CSRF-Token", &c.csrf)
            .json(&body),
    )
    .await
}

/// A second view of the server's database, as another API process would have.
pub async fn open_store(s: &Server) -> SqliteStore {
    SqliteStore::open(&s.data_dir.join("integr8s.db").to_string_lossy())
        .await
        .expect("open the server's database")
}

async fn history(c: &Client, limit: u32) -> Vec<Value> {
    let r = c.get(&format!("{BASE}history?limit={limit}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["limit"], limit);
    r.body["history"].as_array().expect("history").clone()
}

#[tokio::test]
async fn settings_start_at_the_defaults_and_take_partial_updates() {
    let s = Server::start(&[]).await;
    let u = s.new_user("settler").await;

    let r = u.get(BASE).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let d = &r.body;
    assert_eq!(d["theme"], "auto");
    assert_eq!(d["timezone"], "UTC");
    assert_eq!(d["date_format"], "YYYY-MM-DD");
    assert_eq!(d["time_format"], "24h");
    assert_eq!(
        d["notifications"],
        json!({"execution_completed": true, "execution_failed": true, "system_updates": true,
               "security_alerts": true, "channels": ["in_app"]})
    );
    assert_eq!(
        d["editor"],
        json!({"font_size": 14, "tab_size": 4, "use_tabs": false, "word_wrap": true, "show_line_numbers": true})
    );
    assert_eq!(d["custom_settings"], json!({}));
    assert_eq!(d["version"], 1);
    assert!(d["user_id"].is_string() && d["created_at"].is_string() && d["updated_at"].is_string());
    assert_eq!(
        u.get(BASE).await.body["created_at"],
        d["created_at"],
        "stable defaults"
    );

    let r = put(&u, &format!("{BASE}theme"), json!({"theme": "dark"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        (r.body["theme"].clone(), r.body["version"].clone()),
        (json!("dark"), json!(2))
    );

    let r = put(
        &u,
        &format!("{BASE}editor"),
        json!({"font_size": 20, "tab_size": 2}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["editor"]["font_size"], 20);
    assert_eq!(r.body["editor"]["tab_size"], 2);
    assert_eq!(r.body["editor"]["word_wrap"], true);

    let r = put(
        &u,
        &format!("{BASE}notifications"),
        json!({"execution_failed": false, "channels": ["in_app", "slack"]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["notifications"]["execution_failed"], false);
    assert_eq!(
        r.body["notifications"]["channels"],
        json!(["in_app", "slack"])
    );

    let r = put(
        &u,
        &format!("{BASE}custom/layout"),
        json!({"panes": 2, "left": {"w": 30}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["custom_settings"],
        json!({"layout": {"panes": 2, "left": {"w": 30}}})
    );

    let r = put(
        &u,
        BASE,
        json!({"timezone": "Europe/Berlin", "time_format": "12h", "whatever": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["timezone"], "Europe/Berlin");
    assert_eq!(r.body["time_format"], "12h");
    assert_eq!(r.body["theme"], "dark", "untouched fields stay");
    assert_eq!(r.body["version"], 6);
    assert_eq!(u.get(BASE).await.body, r.body);

    // Settings are per user.
    let other = s.new_user("other").await;
    assert_eq!(other.get(BASE).await.body["theme"], "auto");
}

#[tokio::test]
async fn the_slashless_path_redirects_and_sessions_are_required() {
    let s = Server::start(&[]).await;
    let u = s.user().await;
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = no_redirect
        .get(format!("{}/api/v1/user/settings", s.base))
        .header("Cookie", &u.cookie)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 307);
    assert_eq!(r.headers()["location"], "/api/v1/user/settings/");
    // A redirect-following client ends up at the settings.
    let r = u.get("/api/v1/user/settings").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["theme"], "auto");

    let anon = reqwest::Client::new();
    for path in ["", "history"] {
        let r = anon
            .get(format!("{}{BASE}{path}", s.base))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 401, "{path}");
    }
}

#[tokio::test]
async fn bad_settings_are_refused_with_422() {
    let s = Server::start(&[]).await;
    let u = s.user().await;
    let cases = [
        ("theme", json!({"theme": "purple"})),
        ("theme", json!({})),
        ("editor", json!({"font_size": 7})),
        ("editor", json!({"font_size": 33})),
        ("editor", json!({"tab_size": 3})),
        ("editor", json!({"font_size": "big"})),
        ("notifications", json!({"channels": ["pigeon"]})),
        ("", json!({"editor": {"tab_size": 5}})),
        ("", json!({"theme": "neon"})),
        ("", json!({"timezone": ""})),
        ("custom/k", json!([1, 2])),
        ("custom/k", json!("text")),
    ];
    for (path, body) in cases {
        let r = put(&u, &format!("{BASE}{path}"), body.clone()).await;
        assert_eq!(r.status, 422, "{path} {body}: {}", r.body);
        assert!(r.body["detail"].is_array(), "{}", r.body);
    }
    for limit in ["0", "201", "x"] {
        let r = u.get(&format!("{BASE}history?limit={limit}")).await;
        assert_eq!(r.status, 422, "limit={limit}");
    }
    for body in [json!({}), json!({"timestamp": "yesterday"})] {
        let r = u.post(&format!("{BASE}restore"), body.clone()).await;
        assert_eq!(r.status, 422, "{body}: {}", r.body);
    }
    for size in [8, 32] {
        let r = put(
            &u,
            &format!("{BASE}editor"),
            json!({"font_size": size, "tab_size": 8}),
        )
        .await;
        assert_eq!(r.status, 200, "font size {size}: {}", r.body);
    }
    // Nothing invalid was recorded.
    let settings = u.get(BASE).await.body;
    assert_eq!(settings["theme"], "auto");
    assert_eq!(settings["version"], 3, "{settings}");
}

#[tokio::test]
async fn history_shows_old_and_new_values_and_restore_goes_back_in_time() {
    let s = Server::start(&[]).await;
    let u = s.user().await;
    put(&u, &format!("{BASE}theme"), json!({"theme": "dark"})).await;
    put(&u, &format!("{BASE}editor"), json!({"font_size": 18})).await;
    let checkpoint = history(&u, 1).await[0]["timestamp"]
        .as_str()
        .expect("timestamp")
        .to_owned();
    put(&u, &format!("{BASE}theme"), json!({"theme": "light"})).await;
    put(&u, &format!("{BASE}custom/k"), json!({"v": 1})).await;

    let h = history(&u, 50).await;
    let fields: Vec<_> = h
        .iter()
        .map(|e| e["field"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        fields,
        ["/custom_settings/k", "/theme", "/editor", "/theme"],
        "newest first"
    );
    assert_eq!(
        (h[1]["old_value"].clone(), h[1]["new_value"].clone()),
        (json!("dark"), json!("light"))
    );
    assert_eq!(
        (h[3]["old_value"].clone(), h[3]["new_value"].clone()),
        (json!("auto"), json!("dark"))
    );
    assert_eq!(h[2]["old_value"]["font_size"], 14);
    assert_eq!(h[2]["new_value"]["font_size"], 18);
    assert_eq!(h[0]["old_value"], Value::Null);
    assert!(h
        .iter()
        .all(|e| e["event_type"] == "user_settings_updated" && e["timestamp"].is_string()));
    assert_eq!(history(&u, 2).await.len(), 2);

    let r = u
        .post(
            &format!("{BASE}restore"),
            json!({"timestamp": checkpoint, "reason": "undo"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["theme"], "dark");
    assert_eq!(r.body["editor"]["font_size"], 18);
    assert_eq!(r.body["custom_settings"], json!({}));
    assert_eq!(r.body["version"], 6, "the restore is an event too");
    assert_eq!(u.get(BASE).await.body, r.body);

    let h = history(&u, 50).await;
    let restored: Vec<_> = h.iter().filter(|e| e["reason"] == "undo").collect();
    let fields: Vec<_> = restored
        .iter()
        .map(|e| e["field"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(fields, ["/theme", "/custom_settings"], "{h:?}");
    assert_eq!(
        (
            restored[0]["old_value"].clone(),
            restored[0]["new_value"].clone()
        ),
        (json!("light"), json!("dark"))
    );

    // A point before any change restores the defaults.
    let r = u
        .post(
            &format!("{BASE}restore"),
            json!({"timestamp": "2000-01-01T00:00:00"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["theme"], "auto");
    assert_eq!(r.body["editor"]["font_size"], 14);
}

#[tokio::test]
async fn the_state_is_in_the_database_with_snapshots() {
    let s = Server::start(&[]).await;
    let u = s.user().await;
    let sizes = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21];
    for size in sizes {
        let r = put(&u, &format!("{BASE}editor"), json!({"font_size": size})).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let api_view = u.get(BASE).await.body;
    assert_eq!(api_view["editor"]["font_size"], 21);
    assert_eq!(api_view["version"], 13);

    // Another process reading the same database sees the same document.
    let store = open_store(&s).await;
    let user_id = api_view["user_id"].as_str().expect("user_id");
    let other_view = current_settings(&store, user_id).await.expect("settings");
    assert_eq!(serde_json::to_value(&other_view).expect("json"), api_view);
    let snapshot = store
        .settings_snapshot(user_id)
        .await
        .expect("snapshot")
        .expect("a stored snapshot");
    assert!(
        snapshot.last_seq > 0 && snapshot.settings.version >= 11,
        "snapshot at {}",
        snapshot.settings.version
    );
}
