//! Every language of the runtime registry runs its example script end to end through the
//! sandbox, with the command, environment and binds the registry resolves.

mod common;

use std::time::Instant;

use integr8s_core::ports::executor::{RunOutcome, RunSpec};
use integr8s_core::runtime::RuntimeRegistry;

fn registry() -> RuntimeRegistry {
    let mut registry = RuntimeRegistry::embedded();
    registry.probe_host();
    registry
}

fn resolved_spec(lang: &str, version: &str, script: &str) -> RunSpec {
    let runtime = registry()
        .resolve(lang, version)
        .unwrap_or_else(|e| panic!("{lang} {version}: {e} (run scripts/install-deps.sh)"));
    let mut spec = common::spec(&runtime.file_name, script, &[]);
    spec.lang = runtime.lang;
    spec.lang_version = runtime.version;
    spec.command = runtime.command;
    spec.env = runtime.env;
    spec.prestart = runtime.prestart;
    spec.limits.timeout_seconds = 90;
    spec
}

async fn hello(lang: &str, version: &str, script: &str, memory_mib: u64) {
    let mut spec = resolved_spec(lang, version, script);
    spec.limits.memory_bytes = memory_mib * 1024 * 1024;
    let started = Instant::now();
    let report = common::run(&spec).await;
    eprintln!(
        "{lang} {version}: {:?} wall, {:?} cpu, peak {} MiB",
        started.elapsed(),
        report.cpu_user + report.cpu_system,
        report.peak_memory_bytes / (1024 * 1024)
    );
    assert_eq!(
        report.outcome,
        RunOutcome::Exited { code: 0 },
        "{lang}: {report:?}"
    );
    assert_eq!(
        report.stdout,
        format!("hello from {lang} 385\n"),
        "{report:?}"
    );
}

#[tokio::test]
async fn python_example_runs() {
    hello("python", "3.11", include_str!("scripts/hello.py"), 256).await;
}

#[tokio::test]
async fn node_example_runs() {
    hello("node", "20", include_str!("scripts/hello.js"), 256).await;
}

#[tokio::test]
async fn ruby_example_runs() {
    hello("ruby", "3.1", include_str!("scripts/hello.rb"), 256).await;
}

#[tokio::test]
async fn bash_example_runs() {
    hello("bash", "5.2", include_str!("scripts/hello.sh"), 256).await;
}

#[tokio::test]
async fn go_example_compiles_and_runs_with_a_per_run_cache() {
    hello("go", "1.19", include_str!("scripts/hello.go"), 512).await;
}

#[tokio::test]
async fn c_example_compiles_and_runs() {
    hello("c", "12", include_str!("scripts/hello.c"), 256).await;
}

#[tokio::test]
async fn cpp_example_compiles_and_runs() {
    hello("cpp", "12", include_str!("scripts/hello.cpp"), 384).await;
}

#[tokio::test]
async fn rust_example_compiles_and_runs() {
    hello("rust", "1.63", include_str!("scripts/hello.rs"), 512).await;
}

#[tokio::test]
async fn java_example_runs_from_source() {
    hello("java", "17", include_str!("scripts/hello.java"), 384).await;
}

#[tokio::test]
async fn php_example_runs() {
    hello("php", "8.2", include_str!("scripts/hello.php"), 256).await;
}

#[tokio::test]
async fn perl_example_runs() {
    hello("perl", "5.36", include_str!("scripts/hello.pl"), 256).await;
}

#[tokio::test]
async fn lua_example_runs() {
    hello("lua", "5.4", include_str!("scripts/hello.lua"), 256).await;
}

#[tokio::test]
async fn go_cache_does_not_survive_the_run() {
    let spec = resolved_spec("go", "1.19", include_str!("scripts/hello.go"));
    let first = common::run(&spec).await;
    assert_eq!(first.outcome, RunOutcome::Exited { code: 0 }, "{first:?}");
    let probe = common::bash("ls -A /tmp /work\n");
    let second = common::run(&probe).await;
    assert_eq!(second.stdout, "/tmp:\n\n/work:\nmain.sh\n", "{second:?}");
}
