//! Attacks on the rule that a run starts from a state no earlier run could have influenced:
//! one run (a user) plants something in what the sandbox keeps between runs — metadata of
//! `/dev` and of every path it can reach, kernel memory charged to the slot, a broken
//! devpts — and the next run (another user) on the same slot looks for it. Also the socket
//! families that network namespaces do not isolate.

use std::collections::BTreeMap;

use integr8s_core::ports::executor::{RunControl, RunOutcome, RunSpec};
use integr8s_sandbox::SandboxConfig;

use crate::common::{marker, python, run, run_on, DEADLINE};
use crate::reuse::{
    namespaces, rest, run_ok, sandboxes, single_slot_executor, single_slot_executor_with,
    PRINT_NAMESPACES,
};

/// The entries of `/dev` a program uses, as the run sees them.
const DEV_PATHS: &str =
    "['/dev', '/dev/pts', '/dev/fd', '/dev/ptmx', '/dev/null', '/dev/zero', '/dev/full', \
     '/dev/random', '/dev/urandom', '/dev/tty', '/dev/shm', '/dev/stdin', '/dev/pts/ptmx']";

/// Prints `meta <path> <mode> <uid> <gid> <mtime_ns> <xattrs>` for each of [`DEV_PATHS`] and
/// the sorted entries of `/dev`.
fn dev_looker() -> RunSpec {
    python(&format!(
        "{PRINT_NAMESPACES}\
         import os\n\
         for p in {DEV_PATHS}:\n\
         \x20   st = os.lstat(p)\n\
         \x20   try:\n        xs = sorted(os.listxattr(p, follow_symlinks=False))\n\
         \x20   except OSError as e:\n        xs = [f'errno{{e.errno}}']\n\
         \x20   print('meta', p, oct(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns, xs)\n\
         print('entries', sorted(os.listdir('/dev')))\n\
         m, s = os.openpty()\n\
         print('pty opened', os.ttyname(s).startswith('/dev/pts/'))\n"
    ))
}

/// One line per `meta` path with its metadata but the time (each run's `/dev` is made anew).
fn metadata(stdout: &str, with_time: bool) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("meta "))
        .map(|l| {
            let fields: Vec<&str> = l.splitn(6, ' ').collect();
            let mut kept = fields.clone();
            if !with_time {
                kept.remove(4);
            }
            (fields[0].to_owned(), kept[1..].join(" "))
        })
        .collect()
}

#[tokio::test]
async fn attack_dev_metadata_and_devpts_do_not_reach_the_next_run() {
    const UID_BASE: u32 = 370_000;
    let executor = single_slot_executor(UID_BASE).await;
    let before = run_ok(&executor, &dev_looker()).await;
    let m = marker("dev");
    // Every change a run might leave in `/dev`: extended attributes, timestamps, modes, new
    // entries, a devpts nobody can open any more.
    let planter = python(&format!(
        "{PRINT_NAMESPACES}\
         import errno, os\n\
         results = {{}}\n\
         def attempt(what, f):\n\
         \x20   try:\n        f()\n        results[what] = 'done'\n\
         \x20   except OSError as e:\n        results[what] = errno.errorcode[e.errno]\n\
         for p in {DEV_PATHS}:\n\
         \x20   attempt(f'xattr {{p}}', lambda: os.setxattr(p, 'user.{m}', b'1' * 200, follow_symlinks=False))\n\
         \x20   attempt(f'utime {{p}}', lambda: os.utime(p, ns=(10**18, 10**18), follow_symlinks=False))\n\
         \x20   attempt(f'touch {{p}}', lambda: os.utime(p, None, follow_symlinks=False))\n\
         \x20   if not os.path.islink(p):\n        attempt(f'chmod {{p}}', lambda: os.chmod(p, 0o777 if p != '/dev/pts' else 0))\n\
         attempt('chmod /dev 0', lambda: os.chmod('/dev', 0o000))\n\
         attempt('create /dev/{m}', lambda: open('/dev/{m}', 'w').close())\n\
         attempt('mkdir /dev/{m}.d', lambda: os.mkdir('/dev/{m}.d'))\n\
         attempt('symlink /dev/{m}.l', lambda: os.symlink('/tmp', '/dev/{m}.l'))\n\
         for what, result in sorted(results.items()):\n    print(what, result)\n"
    ));
    let sandboxes_before = sandboxes(UID_BASE);
    let planted = run_ok(&executor, &planter).await;
    let after = run_ok(&executor, &dev_looker()).await;

    // The same sandbox served all three runs.
    assert_eq!(
        sandboxes(UID_BASE),
        sandboxes_before,
        "a sandbox was replaced"
    );
    let ids: Vec<String> = [&before, &planted, &after]
        .iter()
        .map(|r| namespaces(r)["sandbox"].clone())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");

    // `/dev` itself, its links and the device nodes are read-only for the run: no attempt
    // on them succeeded. Only the run's own devpts and `/dev/shm` (new for every run) take
    // changes.
    let lines = rest(&planted);
    let outcomes: BTreeMap<&str, &str> = lines.lines().filter_map(|l| l.rsplit_once(' ')).collect();
    let own = |what: &str| what.contains("/dev/pts") || what.contains("/dev/shm");
    for (what, outcome) in &outcomes {
        if !own(what) {
            assert_ne!(*outcome, "done", "{what} succeeded: {planted:?}");
        }
    }
    assert!(outcomes.len() > 40, "{planted:?}");

    // The next run sees `/dev` exactly as the run before the planter saw it (times aside:
    // its `/dev` is new), with the host's device nodes untouched to the nanosecond, and a
    // working pseudo-terminal.
    assert_eq!(
        metadata(&after.stdout, false),
        metadata(&before.stdout, false)
    );
    for device in ["/dev/null", "/dev/zero", "/dev/urandom", "/dev/tty"] {
        assert_eq!(
            metadata(&after.stdout, true)[device],
            metadata(&before.stdout, true)[device],
            "{device}"
        );
    }
    assert!(!after.stdout.contains(&m), "{after:?}");
    assert!(after.stdout.contains("pty opened True"), "{after:?}");
    assert!(
        !after.stdout.contains("1000000000000000000"),
        "a planted time survived: {after:?}"
    );
}

#[tokio::test]
async fn attack_kernel_memory_parked_by_a_run_does_not_starve_the_next() {
    const UID_BASE: u32 = 372_000;
    let executor = single_slot_executor(UID_BASE).await;
    // Extended attributes (kernel memory, charged to the slot) on every directory and file
    // the run can create or reach, until the kernel refuses or 200 MiB are stored.
    let hoarder = python(&format!(
        "{PRINT_NAMESPACES}\
         import os\n\
         value = b'x' * 60000\n\
         stored = 0\n\
         targets = ['/dev', '/dev/pts', '/dev/shm', '/dev/null', '/work', '/tmp']\n\
         for d in ['/work', '/tmp', '/dev/shm']:\n\
         \x20   for i in range(200):\n\
         \x20       try:\n            open(f'{{d}}/f{{i}}', 'w').close()\n            targets.append(f'{{d}}/f{{i}}')\n\
         \x20       except OSError:\n            break\n\
         for t in targets:\n\
         \x20   for i in range(2000):\n\
         \x20       if stored >= 200 * 2**20:\n            break\n\
         \x20       try:\n            os.setxattr(t, f'user.k{{i}}', value)\n            stored += len(value)\n\
         \x20       except OSError:\n            break\n\
         print('stored MiB', stored // 2**20)\n"
    ));
    let mut hoard = hoarder.clone();
    hoard.limits.memory_bytes = 512 * 1024 * 1024;
    let hoarded = run_on(&executor, &hoard, RunControl::default()).await;
    assert!(hoarded.stdout.contains("stored MiB"), "{hoarded:?}");

    // Another user's ordinary runs with a small memory limit, on the same slot.
    let mut modest = python(&format!(
        "{PRINT_NAMESPACES}b = bytearray(16 * 2**20)\nprint('ok', len(b) // 2**20)\n"
    ));
    modest.limits.memory_bytes = 32 * 1024 * 1024;
    for _ in 0..3 {
        let report = run_on(&executor, &modest, RunControl::default()).await;
        assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
        assert_eq!(rest(&report), "ok 16\n");
    }
}

#[tokio::test]
async fn attack_only_local_and_ip_socket_families_can_be_opened() {
    let report = run(&python(
        "import errno, socket\n\
         def family(name, fam, kind=socket.SOCK_STREAM, proto=0):\n\
         \x20   try:\n        socket.socket(fam, kind, proto).close()\n        print(name, 'open')\n\
         \x20   except OSError as e:\n        print(name, errno.errorcode[e.errno])\n\
         family('unix', socket.AF_UNIX)\n\
         family('inet', socket.AF_INET)\n\
         family('inet6', socket.AF_INET6)\n\
         family('netlink-route', socket.AF_NETLINK, socket.SOCK_RAW, 0)\n\
         family('netlink-audit', socket.AF_NETLINK, socket.SOCK_RAW, 9)\n\
         family('netlink-uevent', socket.AF_NETLINK, socket.SOCK_RAW, 15)\n\
         family('vsock', 40)\n\
         family('vsock-dgram', 40, socket.SOCK_DGRAM)\n\
         family('packet', 17, socket.SOCK_RAW)\n\
         family('bluetooth', 31, socket.SOCK_RAW, 1)\n\
         family('alg', 38, socket.SOCK_SEQPACKET)\n\
         family('key', 15, socket.SOCK_RAW, 2)\n\
         family('can', 29, socket.SOCK_RAW, 1)\n\
         for fam in [socket.AF_UNIX, 40, socket.AF_INET]:\n\
         \x20   try:\n        socket.socketpair(fam)\n        print('pair', fam, 'open')\n\
         \x20   except OSError as e:\n        print('pair', fam, errno.errorcode[e.errno])\n\
         print('interfaces', [name for _, name in socket.if_nameindex()])\n",
    ))
    .await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    assert_eq!(
        report.stdout,
        "unix open\ninet open\ninet6 open\nnetlink-route open\nnetlink-audit EPERM\n\
         netlink-uevent EPERM\nvsock EPERM\nvsock-dgram EPERM\npacket EPERM\nbluetooth EPERM\n\
         alg EPERM\nkey EPERM\ncan EPERM\npair 1 open\npair 40 EPERM\npair 2 EPERM\n\
         interfaces ['lo']\n",
        "{report:?}"
    );
}

/// The memory-controller directory of host process `pid` (cgroup v1 or v2).
fn memory_cgroup(pid: i32) -> std::path::PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in text.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next(), fields.next(), fields.next());
        let (Some(controllers), Some(path)) = (controllers, path) else {
            continue;
        };
        let path = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == "memory") {
            return std::path::Path::new("/sys/fs/cgroup/memory").join(path);
        }
        if controllers.is_empty()
            && std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
        {
            return std::path::Path::new("/sys/fs/cgroup").join(path);
        }
    }
    panic!("no memory cgroup for {pid}: {text}");
}

/// Memory that a slot's cgroup is charged for and cannot give back, left behind by whatever
/// (here: 8 MiB of a tmpfs file written from inside the slot's cgroup by a process of the
/// host, standing for any leak a run might find), is seen after the next run: the sandbox is
/// retired with its cgroup before another run uses the slot.
#[tokio::test]
async fn memory_left_in_a_slot_retires_its_sandbox_before_the_next_run() {
    const UID_BASE: u32 = 374_000;
    let executor = single_slot_executor(UID_BASE).await;
    let probe = python(&format!("{PRINT_NAMESPACES}print('ok')\n"));
    let first = run_ok(&executor, &probe).await;
    let sandbox = namespaces(&first)["sandbox"].clone();
    assert!(live_sandbox_ids(UID_BASE).contains(&sandbox));
    let cgroups: std::collections::BTreeSet<_> = sandboxes(UID_BASE)
        .iter()
        .map(|(pid, _)| memory_cgroup(*pid))
        .collect();

    // Charge every slot's cgroup (the next run takes one of them): each file's pages stay
    // charged to the cgroup that wrote them, after the writer is gone.
    let dir = crate::common::TempDir::new("leftover");
    let mount = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64m", "leftover"])
        .arg(&dir.0)
        .status()
        .unwrap();
    assert!(mount.success());
    for (i, cgroup) in cgroups.iter().enumerate() {
        let script = format!(
            "echo $$ > {procs} && exec head -c 8388608 /dev/zero > {file}",
            procs = cgroup.join("cgroup.procs").display(),
            file = dir.0.join(format!("leak{i}")).display()
        );
        let status = std::process::Command::new("sh")
            .args(["-c", &script])
            .status()
            .unwrap();
        assert!(status.success(), "{script}");
    }

    let second = run_ok(&executor, &probe).await;
    let unmount = std::process::Command::new("umount").arg(&dir.0).status();
    assert!(unmount.is_ok_and(|s| s.success()));

    // The run that found the memory was served (it had what it asked for); its sandbox was
    // then retired, and the cgroup with it, before any other run could use them.
    let retired = namespaces(&second)["sandbox"].clone();
    let start = std::time::Instant::now();
    while live_sandbox_ids(UID_BASE).contains(&retired) {
        assert!(start.elapsed() < DEADLINE, "the sandbox was kept");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let third = run_ok(&executor, &probe).await;
    assert_ne!(namespaces(&third)["sandbox"], retired);
}

/// The sandboxes of the slots from `uid_base`, named as [`PRINT_NAMESPACES`] names them (by
/// the user, UTS and cgroup namespaces of bubblewrap's child).
fn live_sandbox_ids(uid_base: u32) -> Vec<String> {
    sandboxes(uid_base)
        .into_iter()
        .flat_map(|(bwrap, _)| {
            crate::common::host_pids().into_iter().filter(move |pid| {
                crate::common::process(*pid).is_some_and(|(_, ppid, _)| ppid == bwrap)
            })
        })
        .filter_map(|shim| {
            let ns = |kind: &str| std::fs::read_link(format!("/proc/{shim}/ns/{kind}")).ok();
            let names = [ns("user")?, ns("uts")?, ns("cgroup")?];
            Some(
                names
                    .iter()
                    .map(|n| n.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("-"),
            )
        })
        .collect()
}

/// Walks everything a run can reach but `/proc` and the run's own `/work` and `/tmp`, and
/// prints one line per entry outside `/usr` (`path mount mode uid gid size nlink mtime ctime
/// xattrs`, `mount` being the mount point the entry is on) and, for each directory directly under `/usr`, the hash and count of those lines.
const WALKER: &str = "import hashlib, os, stat, sys\n\
sys.setrecursionlimit(10000)\n\
SKIP = {'/proc', '/work', '/tmp'}\n\
MOUNTS = {l.split()[4] for l in open('/proc/self/mountinfo')}\n\
out, hashes = [], {}\n\
def line(p, st, mount):\n\
\x20   try:\n\
\x20       xs = sorted((n, os.getxattr(p, n, follow_symlinks=False).hex()) for n in os.listxattr(p, follow_symlinks=False))\n\
\x20   except OSError as e:\n\
\x20       xs = f'errno{e.errno}'\n\
\x20   return f'{p} {mount} {oct(st.st_mode)} {st.st_uid} {st.st_gid} {st.st_size} {st.st_nlink} {st.st_mtime_ns} {st.st_ctime_ns} {xs}'\n\
def walk(p, mount):\n\
\x20   mount = p if p in MOUNTS else mount\n\
\x20   st = os.lstat(p)\n\
\x20   text = line(p, st, mount)\n\
\x20   parts = p.split('/')\n\
\x20   if len(parts) > 3 and parts[1] == 'usr':\n\
\x20       h = hashes.setdefault('/'.join(parts[:3]), [hashlib.sha256(), 0])\n\
\x20       h[0].update(text.encode() + b'\\n'); h[1] += 1\n\
\x20   else:\n\
\x20       out.append(text)\n\
\x20   if stat.S_ISDIR(st.st_mode):\n\
\x20       try:\n\
\x20           names = sorted(os.listdir(p))\n\
\x20       except OSError as e:\n\
\x20           out.append(f'{p} unlistable {e.errno}'); return\n\
\x20       for n in names:\n\
\x20           c = os.path.join(p, n)\n\
\x20           if c not in SKIP:\n\
\x20               walk(c, mount)\n\
walk('/', '/')\n\
for k, (h, n) in sorted(hashes.items()):\n\
\x20   out.append(f'{k} tree {h.hexdigest()} {n}')\n\
print('\\n'.join(out))\n";

/// Tries every change a run can attempt on every entry it can reach (but `/proc` and its own
/// `/work` and `/tmp`): extended attributes set and removed, timestamps set and touched,
/// modes, owners, appends to files, new entries in directories. Prints each change that
/// succeeded outside the run's own devpts and `/dev/shm`, then the number of entries tried.
const CHANGER: &str = "import os, stat, sys\n\
sys.setrecursionlimit(10000)\n\
SKIP = {'/proc', '/work', '/tmp'}\n\
OWN = ('/dev/pts', '/dev/shm')\n\
tried = 0\n\
def attempt(p, what, f):\n\
\x20   try:\n\
\x20       f()\n\
\x20   except (OSError, NotImplementedError):\n\
\x20       return\n\
\x20   if not p.startswith(OWN):\n\
\x20       print('changed', what, p)\n\
def change(p, st):\n\
\x20   global tried\n\
\x20   tried += 1\n\
\x20   attempt(p, 'xattr', lambda: os.setxattr(p, 'user.planted', b'1', follow_symlinks=False))\n\
\x20   try:\n\
\x20       names = os.listxattr(p, follow_symlinks=False)\n\
\x20   except OSError:\n\
\x20       names = []\n\
\x20   for n in names:\n\
\x20       attempt(p, 'rmxattr', lambda: os.removexattr(p, n, follow_symlinks=False))\n\
\x20   attempt(p, 'utime', lambda: os.utime(p, ns=(10**18, 10**18), follow_symlinks=False))\n\
\x20   attempt(p, 'touch', lambda: os.utime(p, None, follow_symlinks=False))\n\
\x20   attempt(p, 'chown', lambda: os.chown(p, os.getuid(), os.getgid(), follow_symlinks=False))\n\
\x20   if not stat.S_ISLNK(st.st_mode):\n\
\x20       attempt(p, 'chmod', lambda: os.chmod(p, stat.S_IMODE(st.st_mode) ^ 0o002))\n\
\x20   if stat.S_ISREG(st.st_mode):\n\
\x20       attempt(p, 'append', lambda: os.close(os.open(p, os.O_WRONLY | os.O_APPEND)))\n\
\x20   if stat.S_ISDIR(st.st_mode):\n\
\x20       attempt(p, 'mkdir', lambda: os.mkdir(os.path.join(p, 'planted.d')))\n\
\x20       attempt(p, 'create', lambda: os.close(os.open(os.path.join(p, 'planted'), os.O_CREAT | os.O_WRONLY, 0o666)))\n\
def walk(p):\n\
\x20   st = os.lstat(p)\n\
\x20   change(p, st)\n\
\x20   if stat.S_ISDIR(st.st_mode):\n\
\x20       try:\n\
\x20           names = sorted(os.listdir(p))\n\
\x20       except OSError:\n\
\x20           return\n\
\x20       for n in names:\n\
\x20           c = os.path.join(p, n)\n\
\x20           if c not in SKIP and not n.startswith('planted'):\n\
\x20               walk(c)\n\
walk('/')\n\
print('tried', tried)\n";

/// `(path, (mount point, fields but the mount point))` of the walker's lines.
fn walked(stdout: &str) -> BTreeMap<String, (String, Vec<String>)> {
    stdout
        .lines()
        .filter(|l| l.starts_with('/'))
        .map(|l| {
            let mut fields = l.split(' ').map(str::to_owned);
            let path = fields.next().unwrap_or_default();
            let rest: Vec<String> = fields.collect();
            let mount = rest.first().cloned().unwrap_or_default();
            let rest = rest.get(1..).unwrap_or_default().to_vec();
            (path, (mount, rest))
        })
        .collect()
}

/// The rule, checked mechanically: the metadata of every entry a run can reach (modes,
/// owners, sizes, link counts, timestamps, extended attributes) is the same before and after
/// a run that tried to change every one of them. Entries on the file systems made anew for
/// each run (its `/dev`, devpts and `/dev/shm`, see docs/sandbox.md) are compared without their
/// timestamps, which are those of their creation; everything else to the nanosecond.
#[tokio::test]
async fn a_run_that_tries_to_change_everything_it_reaches_leaves_nothing_changed() {
    const UID_BASE: u32 = 376_000;
    // The walks look up every file and the changer tries to create an entry in every directory;
    // on cgroup v1 the kernel keeps part of those dentries and inodes charged to the slot (3–6
    // MiB measured after a walk, more after the changer's attempts, and more again while other
    // tests load the machine), which retires the sandbox under `SandboxConfig::idle_memory_max`
    // (that rule has its own test). Here the three runs must share one sandbox, the hard case,
    // so memory left does not retire it: what is compared is what a run can see.
    let executor = single_slot_executor_with(SandboxConfig {
        uid_base: UID_BASE,
        idle_memory_max: u64::MAX,
        ..SandboxConfig::default()
    })
    .await;
    let mut walker = python(&format!("{PRINT_NAMESPACES}{WALKER}"));
    walker.limits.timeout_seconds = 300;
    walker.limits.max_output_bytes = 16 * 1024 * 1024;
    let mut changer = python(&format!("{PRINT_NAMESPACES}{CHANGER}"));
    changer.limits.timeout_seconds = 300;

    let before = run_ok(&executor, &walker).await;
    let changed = run_ok(&executor, &changer).await;
    let after = run_ok(&executor, &walker).await;
    let ids: Vec<String> = [&before, &changed, &after]
        .iter()
        .map(|r| namespaces(r)["sandbox"].clone())
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "not one sandbox: {ids:?}"
    );

    let tried: u64 = rest(&changed)
        .lines()
        .find_map(|l| l.strip_prefix("tried "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(tried > 10_000, "only {tried} entries tried: {changed:?}");
    let changes: Vec<&str> = changed
        .stdout
        .lines()
        .filter(|l| l.starts_with("changed "))
        .collect();
    assert!(changes.is_empty(), "the run changed {changes:?}");

    let (old, new) = (walked(&before.stdout), walked(&after.stdout));
    assert!(
        old.len() > 100 && old.keys().any(|k| k == "/usr/lib"),
        "{old:?}"
    );
    assert_eq!(
        old.keys().collect::<Vec<_>>(),
        new.keys().collect::<Vec<_>>(),
        "entries appeared or vanished"
    );
    const FRESH_PER_RUN: [&str; 3] = ["/dev", "/dev/pts", "/dev/shm"];
    for (path, (old_mount, old_fields)) in &old {
        let (new_mount, new_fields) = &new[path];
        assert_eq!(old_mount, new_mount, "{path} moved to another mount");
        if !FRESH_PER_RUN.contains(&old_mount.as_str()) {
            assert_eq!(old_fields, new_fields, "{path} changed");
        } else {
            // mode uid gid size nlink, then mtime and ctime, then the extended attributes.
            let without_times = |f: &[String]| [&f[..5], &f[7..]].concat();
            assert_eq!(
                without_times(old_fields),
                without_times(new_fields),
                "{path} changed"
            );
        }
    }
}
