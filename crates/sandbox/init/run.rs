//! One run inside a long-lived sandbox: the command's process isolates itself from every
//! other run of the sandbox before exec (see main.rs, step 2), and the shim reaps it and
//! everything it started.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::raw::{c_char, c_int, c_long, c_short, c_ulong, c_void};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::io::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};

use crate::job::{Job, Rlimit};
use crate::{landlock, set_rlimit, IGNORED_SIGNALS};

extern "C" {
    fn syscall(number: c_long, ...) -> c_long;
    fn prctl(option: c_int, ...) -> c_int;
    fn signal(signum: c_int, handler: usize) -> usize;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn unshare(flags: c_int) -> c_int;
    fn mount(
        source: *const c_char,
        target: *const c_char,
        fstype: *const c_char,
        flags: c_ulong,
        data: *const c_void,
    ) -> c_int;
    fn chdir(path: *const c_char) -> c_int;
    fn open(path: *const c_char, flags: c_int, ...) -> c_int;
    fn write(fd: c_int, buf: *const u8, count: usize) -> isize;
    fn close(fd: c_int) -> c_int;
    fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int;
    fn ioctl(fd: c_int, request: c_ulong, ...) -> c_int;
    fn _exit(code: c_int) -> !;
}

const CLONE_NEWNS: c_int = 0x0002_0000;
const CLONE_NEWIPC: c_int = 0x0800_0000;
const CLONE_NEWNET: c_int = 0x4000_0000;
const MS_NOSUID: c_ulong = 2;
const MS_NODEV: c_ulong = 4;
const O_WRONLY: c_int = 1;
const O_CREAT: c_int = 0o100;
const O_EXCL: c_int = 0o200;
const O_NOFOLLOW: c_int = 0o400_000;
const O_CLOEXEC: c_int = 0o2_000_000;
const AF_INET: c_int = 2;
const SOCK_DGRAM: c_int = 2;
const SIOCGIFFLAGS: c_ulong = 0x8913;
const SIOCSIFFLAGS: c_ulong = 0x8914;
const IFF_UP: c_short = 1;
const PR_CAPBSET_DROP: c_int = 24;
const PR_CAP_AMBIENT: c_int = 47;
const PR_CAP_AMBIENT_CLEAR_ALL: c_long = 4;
const PR_SET_SECCOMP: c_int = 22;
const SECCOMP_MODE_FILTER: c_long = 2;
const SYS_CAPSET: c_long = 126;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const SIG_DFL: usize = 0;
const SIGKILL: c_int = 9;
const EINTR: i32 = 4;
const EINVAL: i32 = 22;
const RLIMIT_CPU: c_int = 0;
const RLIMIT_NPROC: c_int = 6;
const RLIMIT_AS: c_int = 9;
/// Exit code of a run whose sandbox could not prepare it (the script never started).
const SETUP_FAILED: c_int = 125;
/// Where the script is written, and the command's working directory.
const WORK_DIR: &str = "/work";

/// The directories each run gets a fresh tmpfs on, in mount order.
const TMPFS_DIRS: [&str; 3] = ["/work", "/tmp", "/dev/shm"];

#[repr(C)]
struct IfReq {
    name: [u8; 16],
    flags: c_short,
    _rest: [u8; 22],
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

#[repr(C)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const u8,
}

/// What every run of this sandbox is prepared with.
pub struct Sandbox {
    /// Each tmpfs: mount point and mount options.
    tmpfs: Vec<(CString, CString)>,
    seccomp: Vec<u8>,
    landlock_abi: i64,
}

/// What the command's process needs between fork and exec, allocated before the fork.
struct Plan {
    tmpfs: Vec<(CString, CString)>,
    work: CString,
    script_path: CString,
    script: Vec<u8>,
    rlimits: Vec<Rlimit>,
    seccomp: Vec<u8>,
    landlock_abi: i64,
    status_fd: c_int,
}

fn c_string(text: &str) -> CString {
    // The constants and decimal numbers passed here contain no NUL byte.
    CString::new(text).unwrap_or_default()
}

impl Sandbox {
    pub fn new(sizes: [u64; 3], seccomp: Vec<u8>, landlock_abi: i64) -> Self {
        let tmpfs = TMPFS_DIRS
            .iter()
            .zip(sizes)
            .map(|(dir, size)| (c_string(dir), c_string(&format!("size={size},mode=1777"))))
            .collect();
        Sandbox {
            tmpfs,
            seccomp,
            landlock_abi,
        }
    }

    /// Runs one job with the given stdin, stdout and stderr; returns the status lines to
    /// report once nothing of the run is alive.
    pub fn run(&self, job: Job, stdio: [OwnedFd; 3], status: &File) -> String {
        let landlock = format!("landlock {}\n", self.landlock_abi.max(0));
        let [stdin, stdout, stderr] = stdio;
        // The shim reports a failed exec itself, on the script's stderr.
        let mut error_out = stderr.try_clone().ok().map(File::from);
        let mut script_path = OsString::from(WORK_DIR).into_vec();
        script_path.push(b'/');
        script_path.extend_from_slice(&job.file_name);
        let Ok(script_path) = CString::new(script_path) else {
            return format!("{landlock}exit {SETUP_FAILED}\n");
        };
        let plan = Plan {
            tmpfs: self.tmpfs.clone(),
            work: c_string(WORK_DIR),
            script_path,
            script: job.script,
            rlimits: job.rlimits,
            seccomp: self.seccomp.clone(),
            landlock_abi: self.landlock_abi,
            status_fd: status.as_raw_fd(),
        };
        let argv: Vec<OsString> = job.argv.into_iter().map(OsString::from_vec).collect();
        let program = argv[0].clone();
        let mut command = Command::new(&program);
        command
            .args(&argv[1..])
            .stdin(Stdio::from(stdin))
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr));
        for (key, value) in job.env {
            command.env(OsString::from_vec(key), OsString::from_vec(value));
        }
        // SAFETY: the hook runs in the child of this single-threaded process between fork and
        // exec; it only makes system calls with integer or valid pointer arguments on data
        // allocated before the fork.
        unsafe {
            command.pre_exec(move || {
                isolate(&plan);
                Ok(())
            });
        }
        let line = match command.spawn() {
            Ok(child) => {
                drop(command);
                let raw = reap_until(child.id() as c_int);
                kill_and_reap_rest();
                match raw.map(ExitStatus::from_raw) {
                    Some(exit) => match (exit.code(), exit.signal()) {
                        (Some(code), _) => format!("exit {code}\n"),
                        (None, Some(sig)) => format!("signal {sig}\n"),
                        (None, None) => "exit 255\n".to_owned(),
                    },
                    None => "exit 255\n".to_owned(),
                }
            }
            Err(e) => {
                drop(command);
                if let Some(out) = error_out.as_mut() {
                    use std::io::Write;
                    let _ = writeln!(out, "{}: {e}", program.to_string_lossy());
                }
                kill_and_reap_rest();
                let code = if e.kind() == std::io::ErrorKind::NotFound {
                    127
                } else {
                    126
                };
                format!("exit {code}\n")
            }
        };
        format!("{landlock}{line}")
    }
}

/// Writes `line` to `fd` in one call (async-signal-safe).
fn write_line(fd: c_int, line: &[u8]) {
    // SAFETY: line is a valid buffer for its length.
    unsafe { write(fd, line.as_ptr(), line.len()) };
}

/// Ends the child after a failed step: reports it to the supervisor (which retires the
/// sandbox) and exits without running anything.
fn fail(plan: &Plan, step: &str) -> ! {
    let error = std::io::Error::last_os_error();
    let line = format!("launch-error {step}: {error}\n");
    write_line(plan.status_fd, line.as_bytes());
    // SAFETY: ends this forked child at once.
    unsafe { _exit(SETUP_FAILED) }
}

/// The steps of main.rs, step 2, in the child; never returns on failure.
fn isolate(plan: &Plan) {
    // SAFETY (whole function): system calls with integer arguments or pointers to data that
    // lives across each call.
    unsafe {
        if unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC) != 0 {
            fail(plan, "unshare");
        }
        // The sandbox's mounts are private (bubblewrap's), so these stay in this namespace.
        for (dir, options) in &plan.tmpfs {
            let fs = c"tmpfs".as_ptr();
            if mount(
                fs,
                dir.as_ptr(),
                fs,
                MS_NOSUID | MS_NODEV,
                options.as_ptr().cast(),
            ) != 0
            {
                fail(plan, "mounting a tmpfs");
            }
        }
        if chdir(plan.work.as_ptr()) != 0 {
            fail(plan, "chdir /work");
        }
        write_script(plan);
        loopback_up(plan);
        for sig in IGNORED_SIGNALS {
            signal(sig, SIG_DFL);
        }
        for &limit in &plan.rlimits {
            let (resource, value) = match limit {
                Rlimit::Cpu(v) => (RLIMIT_CPU, v),
                Rlimit::AddressSpace(v) => (RLIMIT_AS, v),
                Rlimit::Processes(v) => (RLIMIT_NPROC, v),
            };
            if set_rlimit(resource, value) != 0 {
                fail(plan, "setrlimit");
            }
        }
        if plan.landlock_abi > 0 {
            let Some(ruleset) = landlock::landlock_ruleset(plan.landlock_abi) else {
                fail(plan, "landlock ruleset");
            };
            if syscall(
                landlock::SYS_LANDLOCK_RESTRICT_SELF,
                ruleset as c_long,
                0u32,
            ) != 0
            {
                fail(plan, "landlock");
            }
            close(ruleset);
        }
        drop_capabilities(plan);
        let program = SockFprog {
            len: (plan.seccomp.len() / 8) as u16,
            filter: plan.seccomp.as_ptr(),
        };
        let none: c_long = 0;
        if prctl(
            PR_SET_SECCOMP,
            SECCOMP_MODE_FILTER,
            &program as *const SockFprog,
            none,
            none,
        ) != 0
        {
            fail(plan, "seccomp");
        }
    }
}

/// Creates the script in the fresh `/work`; `O_EXCL | O_NOFOLLOW`, so no existing entry is
/// ever followed. A script the tmpfs cannot hold is the script's failure, said on its stderr.
fn write_script(plan: &Plan) {
    let flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    // SAFETY: a valid path; mode is an integer.
    let fd = unsafe { open(plan.script_path.as_ptr(), flags, 0o444 as c_int) };
    if fd < 0 {
        fail(plan, "creating the script");
    }
    let mut rest: &[u8] = &plan.script;
    while !rest.is_empty() {
        // SAFETY: rest is a valid buffer for its length.
        let n = unsafe { write(fd, rest.as_ptr(), rest.len()) };
        if n <= 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(EINTR) {
                continue;
            }
            let error = std::io::Error::last_os_error();
            write_line(
                2,
                format!("sandbox: cannot write the script: {error}\n").as_bytes(),
            );
            // SAFETY: ends this forked child at once.
            unsafe { _exit(SETUP_FAILED) };
        }
        rest = &rest[usize::try_from(n).unwrap_or(0)..];
    }
    // SAFETY: fd is ours.
    unsafe { close(fd) };
}

/// Brings up `lo` in the run's new network namespace (the kernel then gives it 127.0.0.1 and
/// ::1): scripts may talk to themselves, never to anything outside.
fn loopback_up(plan: &Plan) {
    // SAFETY: socket and ioctl with a valid ifreq living across the calls.
    unsafe {
        let fd = socket(AF_INET, SOCK_DGRAM | O_CLOEXEC, 0);
        if fd < 0 {
            fail(plan, "loopback socket");
        }
        let mut request = IfReq {
            name: [0; 16],
            flags: 0,
            _rest: [0; 22],
        };
        request.name[..2].copy_from_slice(b"lo");
        if ioctl(fd, SIOCGIFFLAGS, &mut request as *mut IfReq) != 0 {
            fail(plan, "reading the loopback flags");
        }
        request.flags |= IFF_UP;
        if ioctl(fd, SIOCSIFFLAGS, &mut request as *mut IfReq) != 0 {
            fail(plan, "bringing up the loopback");
        }
        close(fd);
    }
}

/// Drops every capability: the bounding set (so none can come back), the ambient set, and
/// the effective, permitted and inheritable sets. `no_new_privs` is set already.
fn drop_capabilities(plan: &Plan) {
    // SAFETY: prctl with integer arguments; capset with a valid header and two data structs.
    unsafe {
        let none: c_long = 0;
        for cap in 0..64 as c_long {
            if prctl(PR_CAPBSET_DROP, cap, none, none, none) != 0 {
                if std::io::Error::last_os_error().raw_os_error() == Some(EINVAL) {
                    break; // Past the kernel's last capability.
                }
                fail(plan, "dropping the bounding set");
            }
        }
        if prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, none, none, none) != 0 {
            fail(plan, "clearing the ambient capabilities");
        }
        let header = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let data = [
            CapData {
                effective: 0,
                permitted: 0,
                inheritable: 0,
            },
            CapData {
                effective: 0,
                permitted: 0,
                inheritable: 0,
            },
        ];
        if syscall(SYS_CAPSET, &header as *const CapHeader, data.as_ptr()) != 0 {
            fail(plan, "capset");
        }
    }
}

/// Reaps processes until `main` has ended; returns its wait status (`None`: no such child).
fn reap_until(main: c_int) -> Option<c_int> {
    loop {
        let mut status: c_int = 0;
        // SAFETY: status is a valid out-pointer.
        let pid = unsafe { waitpid(-1, &mut status, 0) };
        if pid == main {
            return Some(status);
        }
        if pid < 0 && std::io::Error::last_os_error().raw_os_error() != Some(EINTR) {
            return None;
        }
    }
}

/// Kills every other process of the namespace and reaps them all.
fn kill_and_reap_rest() {
    // SAFETY: plain integers; as pid 1, kill(-1) reaches every process of our namespace
    // except ourselves, and nothing outside it.
    unsafe {
        kill(-1, SIGKILL);
    }
    loop {
        // SAFETY: a NULL status pointer is allowed.
        let pid = unsafe { waitpid(-1, std::ptr::null_mut(), 0) };
        if pid < 0 && std::io::Error::last_os_error().raw_os_error() != Some(EINTR) {
            break;
        }
    }
}
