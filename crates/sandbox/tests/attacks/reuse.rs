//! Attacks on the sandbox a slot keeps between runs: one run tries to leave something for the
//! next (files, IPC objects, listening sockets, a daemon), to take over or stop the sandbox's
//! init, or to change what the next run sees; the next run, in the same sandbox, must find
//! nothing of it, in namespaces of its own.

use std::collections::BTreeMap;

use integr8s_core::ports::executor::{RunControl, RunOutcome, RunReport, RunSpec};
use integr8s_sandbox::{LocalExecutor, SandboxConfig};

use crate::common::{host_pids, marker, process, python, ready_executor, run_on, DEADLINE};

/// One concurrent run, so consecutive runs go to the same slot and its sandbox once the
/// executor has settled: its other slot's sandbox started (which frees that slot and makes it
/// the next one handed out), seen as three consecutive runs in one sandbox.
pub(crate) async fn single_slot_executor(uid_base: u32) -> LocalExecutor {
    single_slot_executor_with(SandboxConfig {
        uid_base,
        max_concurrent: 1,
        ..SandboxConfig::default()
    })
    .await
}

/// [`single_slot_executor`] with a configuration of the caller's (one slot, whatever it says).
pub(crate) async fn single_slot_executor_with(config: SandboxConfig) -> LocalExecutor {
    let executor = ready_executor(SandboxConfig {
        max_concurrent: 1,
        ..config
    })
    .await;
    let probe = python(PRINT_NAMESPACES);
    let mut last = String::new();
    let mut same = 0;
    for _ in 0..30 {
        let sandbox = namespaces(&run_ok(&executor, &probe).await)["sandbox"].clone();
        same = if sandbox == last { same + 1 } else { 0 };
        if same == 2 {
            return executor;
        }
        last = sandbox;
    }
    panic!("consecutive runs never shared a sandbox");
}

/// Runs `spec` and asserts it exited with 0.
pub(crate) async fn run_ok(executor: &LocalExecutor, spec: &RunSpec) -> RunReport {
    let report = run_on(executor, spec, RunControl::default()).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    report
}

/// Prints `ns sandbox <id>`, naming the sandbox by the namespaces that are its own and not
/// the run's (user, UTS, cgroup: one id could be reused once its namespace is gone, three at
/// once would not), and `ns pid <n>`, the run's own pid (a fresh pid namespace per run).
pub(crate) const PRINT_NAMESPACES: &str = "import os\n\
     print('ns', 'sandbox', '-'.join(os.readlink(f'/proc/self/ns/{k}') for k in ['user', 'uts', 'cgroup']))\n\
     print('ns', 'pid', os.getpid())\n";

pub(crate) fn namespaces(report: &RunReport) -> BTreeMap<String, String> {
    report
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ns "))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

pub(crate) fn rest(report: &RunReport) -> String {
    report
        .stdout
        .lines()
        .filter(|l| !l.starts_with("ns "))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[tokio::test]
async fn attack_a_run_leaves_nothing_in_the_sandbox_for_the_next() {
    let executor = single_slot_executor(340_000).await;
    let m = marker("reuse");
    let leaver = python(&format!(
        "{PRINT_NAMESPACES}\
         import ctypes, socket, time\n\
         for d in ['/work', '/tmp', '/dev/shm']:\n    open(f'{{d}}/{m}', 'w').write('x')\n\
         libc = ctypes.CDLL(None, use_errno=True)\n\
         print('shm', libc.shmget(0x2e5e, 4096, 0o1666) >= 0)\n\
         unix = socket.socket(socket.AF_UNIX)\n\
         unix.bind('\\0{m}')\n\
         unix.listen()\n\
         udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         udp.bind(('127.0.0.1', 47123))\n\
         if os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n    os._exit(0)\n\
         print('left')\n"
    ));
    let sandboxes_before = sandboxes(340_000);
    let first = run_ok(&executor, &leaver).await;
    assert_eq!(rest(&first), "shm True\nleft\n", "{first:?}");

    let finder = python(&format!(
        "{PRINT_NAMESPACES}\
         import ctypes, glob, socket\n\
         print(glob.glob('/work/*') + glob.glob('/tmp/*') + glob.glob('/dev/shm/*'))\n\
         libc = ctypes.CDLL(None, use_errno=True)\n\
         print('shm', libc.shmget(0x2e5e, 0, 0) >= 0)\n\
         try:\n    socket.socket(socket.AF_UNIX).connect('\\0{m}')\n    print('reached')\n\
         except OSError:\n    print('refused')\n\
         socket.socket(socket.AF_INET, socket.SOCK_DGRAM).bind(('127.0.0.1', 47123))\n\
         print('port free')\n\
         others = sorted(int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid())\n\
         print('others', others)\n\
         for path in ['/proc/1/environ', '/proc/1/fd', '/proc/1/mem']:\n\
         \x20   try:\n        os.listdir(path) if path.endswith('fd') else open(path, 'rb').read(1)\n        print('read', path)\n\
         \x20   except OSError:\n        print('denied')\n\
         caps = [l.split()[1] for l in open('/proc/self/status') if l.startswith('Cap')]\n\
         print('caps', set(caps))\n"
    ));
    let second = run_ok(&executor, &finder).await;
    assert_eq!(
        rest(&second),
        "['/work/main.py']\nshm False\nrefused\nport free\nothers [1]\ndenied\ndenied\ndenied\n\
         caps {'0000000000000000'}\n",
        "{second:?}"
    );

    // The same sandbox served both (no sandbox was started in between, and both runs saw the
    // same one), each run as the first process of its own pid namespace (their pid, mount,
    // network and IPC namespaces cannot be compared by id: the first run's were gone, and
    // their ids free, before the second began).
    assert_eq!(
        sandboxes(340_000),
        sandboxes_before,
        "a sandbox was replaced"
    );
    let (a, b) = (namespaces(&first), namespaces(&second));
    assert_eq!(
        a["sandbox"], b["sandbox"],
        "the second run had a sandbox of its own"
    );
    assert_eq!((a["pid"].as_str(), b["pid"].as_str()), ("2", "2"));
}

#[tokio::test]
async fn attack_signals_to_the_sandbox_init_and_hostname_changes_fail() {
    let executor = single_slot_executor(342_000).await;
    let attacker = python(&format!(
        "{PRINT_NAMESPACES}\
         import signal, socket\n\
         for sig in [signal.SIGKILL, signal.SIGSTOP, signal.SIGTERM, signal.SIGINT, signal.SIGSEGV]:\n\
         \x20   try:\n        os.kill(1, sig)\n    except OSError:\n        pass\n\
         try:\n    socket.sethostname('evil')\n    print('hostname changed')\n\
         except OSError:\n    print('hostname refused')\n"
    ));
    let sandboxes_before = sandboxes(342_000);
    let first = run_ok(&executor, &attacker).await;
    assert_eq!(rest(&first), "hostname refused\n", "{first:?}");
    let after = python(&format!(
        "{PRINT_NAMESPACES}import socket\nprint(socket.gethostname())\n"
    ));
    let second = run_ok(&executor, &after).await;
    assert_eq!(rest(&second), "sandbox\n", "{second:?}");
    assert_eq!(
        sandboxes(342_000),
        sandboxes_before,
        "a sandbox was replaced"
    );
    assert_eq!(
        namespaces(&first)["sandbox"],
        namespaces(&second)["sandbox"],
        "the sandbox did not survive the attack"
    );
}

/// The live (not exited) bubblewraps of the slots from `uid_base` (two slots), as `(pid, start
/// time)`: the sandboxes of a single-slot executor, seen from the host (a sandbox still
/// starting counts once).
pub(crate) fn sandboxes(uid_base: u32) -> std::collections::BTreeSet<(i32, u64)> {
    host_pids()
        .into_iter()
        .filter(|pid| {
            // bubblewrap's own child is named bwrap too until it execs the shim.
            process(*pid).is_some_and(|(name, ppid, uid)| {
                name == "bwrap"
                    && (uid_base..uid_base + 2).contains(&uid)
                    && process(ppid).is_none_or(|(parent, _, _)| parent != "bwrap")
            })
        })
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let start = fields.get(19)?.parse().ok()?;
            (fields.first() != Some(&"Z")).then_some((pid, start))
        })
        .collect()
}

/// A sandbox whose shim died while it waited (killed from the host here) is not handed a run:
/// the slot gets a new sandbox and the run succeeds.
#[tokio::test]
async fn a_waiting_sandbox_killed_from_outside_is_replaced() {
    const UID_BASE: u32 = 344_000;
    let executor = single_slot_executor(UID_BASE).await;
    let hello = python(&format!("{PRINT_NAMESPACES}print('hello')\n"));
    run_ok(&executor, &hello).await;
    let started = sandboxes(UID_BASE);
    // The shims: processes of the slots' uids whose parent is a bubblewrap.
    let shims: Vec<i32> = host_pids()
        .into_iter()
        .filter(|pid| {
            process(*pid).is_some_and(|(_, ppid, uid)| {
                (UID_BASE..UID_BASE + 2).contains(&uid)
                    && process(ppid).is_some_and(|(name, _, _)| name == "bwrap")
            })
        })
        .collect();
    assert!(!shims.is_empty(), "no waiting sandbox found");
    let killed = std::process::Command::new("kill")
        .arg("-KILL")
        .args(shims.iter().map(ToString::to_string))
        .status()
        .unwrap();
    assert!(killed.success());
    // Dead, not merely signalled: a run released to a shim in its last microseconds could
    // be taken by its run init and die with it, as any run whose sandbox is killed does.
    let gone = |pid: &i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| {
                stat.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(true)
    };
    let start = std::time::Instant::now();
    while !shims.iter().all(gone) {
        assert!(start.elapsed() < DEADLINE, "the killed shims did not die");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    for _ in 0..3 {
        let report = run_ok(&executor, &hello).await;
        assert_eq!(rest(&report), "hello\n", "{report:?}");
    }
    let now = sandboxes(UID_BASE);
    assert!(
        now.iter().all(|s| !started.contains(s)),
        "a killed sandbox is still there: before {started:?}, now {now:?}"
    );
}
