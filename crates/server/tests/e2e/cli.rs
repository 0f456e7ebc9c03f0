//! The binary's commands and its refusal to expose default passwords.

use std::process::Command;

use crate::harness::BIN;

#[test]
fn check_config_names_the_bad_key() {
    let out = Command::new(BIN)
        .args(["check-config"])
        .env("INTEGR8S_EXECUTION__TIMEOUT_SECONDS", "-5")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("execution.timeout_seconds"), "{err}");

    let out = Command::new(BIN)
        .args(["check-config", "--port", "8081"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn serve_refuses_default_passwords_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--host", "0.0.0.0", "--port", "0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("auth.admin_password") && err.contains("seed_users"),
        "{err}"
    );
}

#[test]
fn migrate_and_seed_users_work_on_a_fresh_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["migrate", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(BIN)
        .args(["seed-users", "--data-dir"])
        .arg(dir.path())
        .env("INTEGR8S_AUTH__ADMIN_PASSWORD", "a-better-password")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("admin"));
}

#[test]
fn serve_refuses_exposure_while_a_stored_account_keeps_its_default_password() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["seed-users", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // New passwords in the configuration do not change what is stored.
    let mut child = Command::new(BIN)
        .args(["serve", "--host", "0.0.0.0", "--port", "0", "--data-dir"])
        .arg(dir.path())
        .env("INTEGR8S_AUTH__ADMIN_PASSWORD", "another-admin-pw")
        .env("INTEGR8S_AUTH__USER_PASSWORD", "another-user-pw")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("server started although the stored admin password is the default");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("still has its default password"), "{err}");
}
