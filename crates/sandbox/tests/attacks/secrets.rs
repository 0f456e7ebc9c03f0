//! Reading host secrets: only the runtime's files are mounted, the environment is scrubbed and
//! the pid namespace hides every host process.

use std::time::Duration;

use integr8s_core::ports::executor::RunOutcome;

use crate::common::{bash, marker, python, run, TempDir};

#[tokio::test]
async fn attack_read_etc_shadow_and_host_homes() {
    let script =
        "for p in ['/etc/shadow', '/etc/passwd', '/root/.bashrc', '/home', '/var/lib']:\n    \
           try:\n        open(p).read()\n        print('read', p)\n    \
           except OSError as e:\n        print('denied', p, e.errno)\n";
    let report = run(&python(script)).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    assert!(!report.stdout.contains("read "), "{}", report.stdout);
    assert_eq!(report.stdout.lines().count(), 5);
}

#[tokio::test]
async fn attack_read_the_service_database_and_data_dir() {
    let data = TempDir::new("data");
    let secret = marker("db-secret");
    let db = data.0.join("integr8s.db");
    std::fs::write(&db, &secret).unwrap();
    let script = format!(
        "cat {db} 2>/dev/null && echo readable\n\
         ls {dir} 2>/dev/null && echo listable\n\
         find / -name integr8s.db -not -path '/proc/*' 2>/dev/null | grep -q . && echo found\n\
         echo done\n",
        db = db.display(),
        dir = data.0.display(),
    );
    assert!(!secret.is_empty());
    let report = run(&bash(&script)).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    assert_eq!(report.stdout, "done\n", "{report:?}");
}

#[tokio::test]
async fn attack_read_the_service_environment_and_proc_1_environ() {
    let secret = marker("env-secret");
    // The executor scrubs its children's environment; a secret in ours must not leak.
    std::env::set_var("INTEGR8S_TEST_SECRET", &secret);
    let script = "import os, glob\n\
         seen = [os.environ.get('INTEGR8S_TEST_SECRET', '')]\n\
         for p in glob.glob('/proc/*/environ'):\n    \
           try:\n        seen.append(open(p, 'rb').read().decode(errors='replace'))\n    \
           except OSError:\n        pass\n\
         print('\\n'.join(seen))\n\
         print(sorted(os.environ))\n";
    let report = run(&python(script)).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    assert!(!report.stdout.contains(&secret), "{}", report.stdout);
    assert!(
        report.stdout.contains("['HOME', 'LANG', 'PATH', 'PWD']"),
        "{}",
        report.stdout
    );
}

#[tokio::test]
async fn attack_read_another_runs_work_dir() {
    let secret = marker("work-secret");
    let victim = bash(&format!(
        "echo {secret} > /work/secret.txt\nsleep 2\ncat /work/secret.txt\n"
    ));
    let attacker = python(
        "import glob, os\n\
         found = []\n\
         for pattern in ['/proc/*/root/work/*', '/proc/*/cwd/*', '/work/*', '/tmp/*']:\n    \
           for p in glob.glob(pattern):\n        \
             try:\n            found.append(open(p).read())\n        \
             except OSError:\n            pass\n\
         print(found)\n",
    );
    let victim_run = tokio::spawn(async move { run(&victim).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = run(&attacker).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    assert!(!report.stdout.contains(&secret), "{}", report.stdout);
    let victim = victim_run.await.unwrap();
    assert_eq!(victim.outcome, RunOutcome::Exited { code: 0 });
    assert_eq!(victim.stdout, format!("{secret}\n"));
}
