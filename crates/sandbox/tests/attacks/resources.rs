//! Exhausting resources: disk, processes, memory, CPU, time and output are all capped, and the
//! outcome names the limit that was hit.

use std::time::{Duration, Instant};

use integr8s_core::ports::executor::RunOutcome;

use crate::common::{bash, host_pids_with, marker, python, run, wait_until_gone};

#[tokio::test]
async fn attack_fill_the_disk_stops_at_the_tmpfs_cap() {
    let script = "import errno\n\
         total = 0\n\
         chunk = b'x' * (1 << 20)\n\
         try:\n    \
           with open('/work/fill', 'wb') as f:\n        \
             while True:\n            f.write(chunk)\n            f.flush()\n            total += len(chunk)\n\
         except OSError as e:\n    print(errno.errorcode[e.errno], total >> 20)\n";
    let report = run(&python(script)).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    let mut words = report.stdout.split_whitespace();
    assert_eq!(words.next(), Some("ENOSPC"), "{report:?}");
    let mib: u64 = words.next().unwrap().parse().unwrap();
    assert!(
        (48..=64).contains(&mib),
        "wrote {mib} MiB into a 64 MiB /work"
    );
}

#[tokio::test]
async fn attack_fork_bomb_is_contained() {
    // Every level waits for its children, so the tree keeps growing until the pids limit
    // refuses forks; without the wait it can collapse before the first refused fork.
    let mut spec = bash(":(){ :|:& wait; };:\n");
    spec.limits.timeout_seconds = 3;
    let report = run(&spec).await;
    assert!(report.pids_limit_hit, "{report:?}");
    assert!(
        matches!(
            report.outcome,
            RunOutcome::TimedOut | RunOutcome::Exited { .. }
        ),
        "{report:?}"
    );
}

#[tokio::test]
async fn attack_memory_bomb_is_out_of_memory_with_peak() {
    let mut spec = python("blocks = []\nwhile True:\n    blocks.append(bytearray(16 << 20))\n");
    spec.limits.memory_bytes = 128 << 20;
    let report = run(&spec).await;
    assert_eq!(report.outcome, RunOutcome::OutOfMemory, "{report:?}");
    assert!(
        report.peak_memory_bytes >= 100 << 20,
        "peak {} should be near the 128 MiB limit",
        report.peak_memory_bytes
    );
}

#[tokio::test]
async fn attack_cpu_burner_in_several_processes_is_bounded_and_accounted() {
    let mut spec = python(
        "import os\n\
         for _ in range(4):\n    \
           if os.fork() == 0:\n        break\n\
         while True:\n    pass\n",
    );
    spec.limits.timeout_seconds = 2;
    // `run` fails the test past its deadline; the outcome shows the wall timeout ended it.
    let report = run(&spec).await;
    assert_eq!(report.outcome, RunOutcome::TimedOut, "{report:?}");
    let cpu = report.cpu_user + report.cpu_system;
    assert!(
        cpu >= Duration::from_millis(500),
        "cpu time {cpu:?} not accounted"
    );
}

#[tokio::test]
async fn attack_sleep_past_the_timeout_with_daemons_leaves_nothing() {
    let m = marker("daemons");
    let script = format!(
        "setsid bash -c 'exec -a {m}-setsid sleep 300' &\n\
         ( ( exec -a {m}-double sleep 300 & ) & )\n\
         nohup bash -c 'exec -a {m}-nohup sleep 300' >/dev/null 2>&1 &\n\
         python3 -c \"import os,sys,time\nif os.fork(): sys.exit(0)\nos.setsid()\nif os.fork(): sys.exit(0)\nos.execvp('bash', ['bash', '-c', 'exec -a {m}-daemon sleep 300'])\"\n\
         exec -a {m}-main sleep 300\n"
    );
    let mut spec = bash(&script);
    spec.limits.timeout_seconds = 2;
    let report = run(&spec).await;
    assert_eq!(report.outcome, RunOutcome::TimedOut, "{report:?}");
    wait_until_gone(&m).await;
    assert!(host_pids_with(&m).is_empty());
}

#[tokio::test]
async fn attack_infinite_output_is_truncated_and_stopped() {
    let mut spec = bash("yes 'flood the supervisor'\n");
    spec.limits.max_output_bytes = 64 * 1024;
    spec.limits.timeout_seconds = 30;
    let started = Instant::now();
    let report = run(&spec).await;
    assert_eq!(report.outcome, RunOutcome::OutputLimit, "{report:?}");
    assert!(report.output_truncated);
    assert!(report
        .stdout
        .ends_with("[output truncated: limit of 65536 bytes reached]\n"));
    assert!(report.stdout.len() < 64 * 1024 + 100);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the run was not stopped"
    );
}
