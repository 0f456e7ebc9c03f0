//! `integr8s serve` and `integr8s migrate` with `database.url` naming a PostgreSQL database (a
//! throwaway server for this test binary, a fresh database per test): an execution runs end to
//! end and is stored in PostgreSQL, and a restart finds it again.

use integr8s_core::ports::{ExecutionStore, UserStore};
use integr8s_core::ExecutionStatus;
use integr8s_store::testkit::PostgresServer;
use integr8s_store::PostgresStore;
use std::process::Command;

use crate::harness::{Server, BIN};

async fn fresh_database() -> String {
    PostgresServer::shared()
        .create_database()
        .await
        .expect("create database")
}

#[tokio::test]
async fn serve_on_postgres_runs_an_execution_and_keeps_it() {
    let url = fresh_database().await;
    let mut s = Server::start(&[("INTEGR8S_DATABASE__URL", &url)]).await;
    let u = s.user().await;
    let id = u.submit("print(6 * 7)").await;
    let r = u.wait_terminal(&id).await;
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(r["stdout"], "42\n");
    assert_eq!(r["exit_code"], 0);

    let frames = u.sse(&format!("/api/v1/events/executions/{id}")).await;
    let last = frames.last().expect("frames");
    assert_eq!(last["event_type"], "result_stored", "{frames:?}");

    // Stored in PostgreSQL, not in a SQLite file of the data dir.
    assert!(!s.data_dir.join("integr8s.db").exists());
    let store = PostgresStore::open(&url).await.expect("open");
    let stored = store.execution(&id).await.unwrap().expect("stored");
    assert_eq!(stored.status, ExecutionStatus::Completed);
    assert_eq!(stored.stdout.as_deref(), Some("42\n"));
    store.close().await;

    s.restart().await;
    let u = s.user().await;
    let r = u.result(&id).await;
    assert_eq!(r["stdout"], "42\n", "{r}");
}

#[tokio::test]
async fn migrate_creates_the_schema_and_hides_the_password() {
    let url = fresh_database().await;
    // Trust authentication accepts any password: it only has to stay out of the output.
    let with_password = url.replacen("integr8s@", "integr8s:not-shown@", 1);
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(BIN)
        .args(["migrate", "--data-dir"])
        .arg(dir.path())
        .env("INTEGR8S_DATABASE__URL", &with_password)
        .output()
        .expect("run migrate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("is up to date"), "{stdout}");
    assert!(!stdout.contains("not-shown"), "{stdout}");

    // The schema is there: the store works without migrating it again.
    let store = PostgresStore::open(&url).await.expect("open");
    assert_eq!(store.count_users().await.unwrap(), 0);
    store.close().await;
}

#[tokio::test]
async fn a_stopped_database_answers_503_in_the_contract_shape() {
    let mut db = tokio::task::spawn_blocking(PostgresServer::start)
        .await
        .expect("join")
        .expect("start server");
    let url = db.create_database().await.expect("create database");
    let s = Server::start(&[("INTEGR8S_DATABASE__URL", &url)]).await;
    let u = s.user().await;
    let id = u.submit("print('before')").await;
    assert_eq!(u.wait_terminal(&id).await["stdout"], "before\n");

    tokio::task::spawn_blocking(move || db.stop().expect("stop server"))
        .await
        .expect("join");
    let r = u.get(&format!("/api/v1/executions/{id}/result")).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body["detail"].is_string(), "{}", r.body);
}
