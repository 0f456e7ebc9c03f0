//! Two integr8s processes on one host never run scripts under the same sandbox uids: a server
//! whose uid range is taken, wholly or in part, refuses to start and names the setting.

use std::process::Stdio;

use crate::harness::{next_uid_base, Server, BIN, DEADLINE, UID_BASE_VAR};

/// Starts `serve` with `uid_base` and waits for it to end; returns its stderr, or panics if
/// it starts listening.
async fn refused_start(uid_base: u32) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::time::timeout(
        DEADLINE,
        tokio::process::Command::new(BIN)
            .args(["serve", "--port", "0", "--data-dir"])
            .arg(dir.path())
            .env("RUST_LOG", "warn")
            .env(UID_BASE_VAR, uid_base.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the second server neither started nor stopped")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "started on a taken range: {stdout}");
    assert!(!stdout.contains("listening"), "{stdout}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn a_second_server_on_the_same_sandbox_uids_refuses_to_start() {
    let base = next_uid_base();
    let base_text = base.to_string();
    let mut first = Server::start(&[(UID_BASE_VAR, base_text.as_str())]).await;

    // The same range, and one that shares only its upper half.
    for other in [base, base - 4] {
        let err = refused_start(other).await;
        assert!(err.contains("sandbox.uid_base"), "{err}");
        assert!(
            err.contains("already used by another integr8s process"),
            "{err}"
        );
    }
    // The first server is unaffected.
    let user = first.user().await;
    let result = user.run("print('still mine')").await;
    assert_eq!(result["stdout"], "still mine\n", "{result}");

    // Once it is gone (even killed), its range is free again.
    first.crash().await;
    let again = Server::start(&[(UID_BASE_VAR, base_text.as_str())]).await;
    let result = again.user().await.run("print('next')").await;
    assert_eq!(result["stdout"], "next\n", "{result}");
}
