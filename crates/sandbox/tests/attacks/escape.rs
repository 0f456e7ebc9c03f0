//! Escaping the run's own space: writing outside `/work`, signalling host processes, symlink
//! tricks, concurrent runs reaching each other, and state surviving into the next run.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use integr8s_core::ports::executor::RunOutcome;

use crate::common::{bash, marker, python, run, TempDir, UID_BASE};

#[tokio::test]
async fn attack_write_outside_the_work_dir_fails() {
    let script = "for p in ['/x', '/usr/x', '/etc/x', '/bin/x', '/proc/x', '/dev/x', '/.sandbox-init', '/work/main.py']:\n    \
           try:\n        open(p, 'w').write('x')\n        print('wrote', p)\n    \
           except OSError as e:\n        print('denied', p)\n\
         for p in ['/work/ok', '/tmp/ok', '/dev/shm/ok']:\n    open(p, 'w').write('x')\n\
         print('done')\n";
    let report = run(&python(script)).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    assert!(!report.stdout.contains("wrote"), "{}", report.stdout);
    assert!(report.stdout.ends_with("done\n"), "{report:?}");
}

/// Host processes running as the sandbox slots' own host uids, which a pid-namespace escape
/// could reach.
struct HostSleepers(Vec<std::process::Child>);

impl HostSleepers {
    fn spawn(marker: &str) -> Self {
        let children = (0..4)
            .map(|slot| {
                Command::new("/bin/bash")
                    .args(["-c", &format!("exec -a {marker} sleep 60")])
                    .uid(UID_BASE + slot)
                    .gid(UID_BASE + slot)
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        HostSleepers(children)
    }

    fn all_alive(&mut self) -> bool {
        self.0.iter_mut().all(|c| c.try_wait().unwrap().is_none())
    }
}

impl Drop for HostSleepers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test]
async fn attack_signals_to_host_processes_fail() {
    let m = marker("sleepers");
    let mut sleepers = HostSleepers::spawn(&m);
    let targets: Vec<String> = sleepers
        .0
        .iter()
        .map(|c| c.id().to_string())
        .chain([std::process::id().to_string()])
        .collect();
    let script = format!(
        "for pid in {targets}; do kill -9 $pid 2>/dev/null && echo killed $pid; done\n\
         kill -9 -1 2>/dev/null\n\
         echo done\n",
        targets = targets.join(" ")
    );
    let report = run(&bash(&script)).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    assert_eq!(report.stdout, "done\n", "{report:?}");
    assert!(sleepers.all_alive(), "a host process was killed");
}

#[tokio::test]
async fn attack_symlinks_in_the_work_dir_never_reach_host_files() {
    let host = TempDir::new("symlink");
    let sentinel = host.0.join("sentinel");
    std::fs::write(&sentinel, "untouched").unwrap();
    let modified = std::fs::metadata(&sentinel).unwrap().modified().unwrap();
    let link_name = marker("link");
    let script = format!(
        "cd /work\n\
         rm -f main.sh 2>/dev/null; ln -sf /etc/shadow main.sh 2>/dev/null\n\
         for name in stdout stderr output status result {link_name}; do ln -s {sentinel} $name; done\n\
         ln -s /etc/shadow shadow; ln -s / rootlink\n\
         echo overwrite > {link_name} 2>/dev/null && echo wrote-through-link\n\
         cat shadow 2>/dev/null && echo read-shadow\n\
         echo done\n",
        sentinel = sentinel.display(),
    );
    let report = run(&bash(&script)).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    assert_eq!(report.stdout, "done\n", "{report:?}");
    // Output came through the pipes only; the supervisor never opened anything the script
    // controls, and the run's /work is gone with its mount namespace.
    assert_eq!(std::fs::read_to_string(&sentinel).unwrap(), "untouched");
    assert_eq!(
        std::fs::metadata(&sentinel).unwrap().modified().unwrap(),
        modified
    );
    let leaked = Command::new("find")
        .args(["/tmp", "/work", "/run", "-name", &link_name])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(
        leaked.stdout.is_empty(),
        "a sandbox path is visible on the host: {}",
        String::from_utf8_lossy(&leaked.stdout)
    );
}

#[tokio::test]
async fn attack_concurrent_runs_cannot_see_or_signal_each_other() {
    let secret = marker("neighbour");
    let victim = python(&format!(
        "import socket, time\n\
         open('/work/secret', 'w').write('{secret}')\n\
         s = socket.socket(socket.AF_UNIX)\ns.bind('\\0{secret}')\ns.listen(1)\n\
         time.sleep(2.5)\nprint(open('/work/secret').read())\n"
    ));
    let attacker = python(&format!(
        "import glob, os, signal, socket\n\
         pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n\
         seen = []\n\
         for pid in pids:\n    \
           try:\n        seen.append(open(f'/proc/{{pid}}/cmdline', 'rb').read())\n    \
           except OSError:\n        pass\n\
         print('victim visible' if any(b'secret' in c for c in seen) else 'victim hidden')\n\
         for pid in pids:\n    \
           if pid != os.getpid():\n        \
             try:\n            os.kill(pid, signal.SIGKILL)\n        \
             except OSError:\n            pass\n\
         found = [open(p).read() for p in glob.glob('/proc/*/root/work/secret') if os.access(p, os.R_OK)]\n\
         print('{{}} files'.format(len(found)))\n\
         s = socket.socket(socket.AF_UNIX)\n\
         try:\n    s.connect('\\0{secret}')\n    print('connected')\n\
         except OSError as e:\n    print('socket unreachable')\n"
    ));
    let victim_run = tokio::spawn(async move { run(&victim).await });
    tokio::time::sleep(Duration::from_millis(700)).await;
    let report = run(&attacker).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    assert_eq!(
        report.stdout, "victim hidden\n0 files\nsocket unreachable\n",
        "{report:?}"
    );
    let victim = victim_run.await.unwrap();
    assert_eq!(victim.outcome, RunOutcome::Exited { code: 0 }, "{victim:?}");
    assert_eq!(victim.stdout, format!("{secret}\n"));
}

#[tokio::test]
async fn attack_state_left_by_one_run_is_invisible_to_the_next() {
    let m = marker("leftover");
    let writer = python(&format!(
        "import ctypes\n\
         for d in ['/work', '/tmp', '/dev/shm']:\n    open(f'{{d}}/{m}', 'w').write('x')\n\
         libc = ctypes.CDLL(None, use_errno=True)\n\
         print('shm', libc.shmget(0x1e5e, 4096, 0o1666) >= 0)\n\
         print('sem', libc.semget(0x1e5e, 1, 0o1666) >= 0)\n"
    ));
    let report = run(&writer).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    assert_eq!(report.stdout, "shm True\nsem True\n", "{report:?}");
    let reader = python(&format!(
        "import ctypes, glob\n\
         print(glob.glob('/work/{m}') + glob.glob('/tmp/{m}') + glob.glob('/dev/shm/{m}'))\n\
         libc = ctypes.CDLL(None, use_errno=True)\n\
         print('shm', libc.shmget(0x1e5e, 0, 0) >= 0)\n\
         print('sem', libc.semget(0x1e5e, 0, 0) >= 0)\n"
    ));
    let report = run(&reader).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    assert_eq!(report.stdout, "[]\nshm False\nsem False\n", "{report:?}");
}
