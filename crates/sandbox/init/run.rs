//! One run inside a long-lived sandbox. The shim clones the run's init into new pid, mount,
//! network and IPC namespaces; the run's init is pid 1 there: it isolates itself (isolate.rs),
//! starts the command, reaps every process of the run until the command has ended, leaves
//! the command's wait status in a page shared with the shim, and exits, which kills whatever
//! is left of the run (the end of a pid namespace's init ends the namespace). The shim waits
//! for it: once it is reaped, nothing of the run is alive.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::raw::{c_int, c_long, c_void};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::io::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};

use crate::isolate::{isolate, write_line, Plan, SETUP_FAILED};
use crate::job::{Job, Rlimit};
use crate::{set_rlimit, IGNORED_SIGNALS};

extern "C" {
    fn syscall(number: c_long, ...) -> c_long;
    fn signal(signum: c_int, handler: usize) -> usize;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn mmap(
        addr: *mut c_void,
        len: usize,
        prot: c_int,
        flags: c_int,
        fd: c_int,
        off: i64,
    ) -> *mut c_void;
    fn _exit(code: c_int) -> !;
}

const SYS_CLONE: c_long = 56;
const CLONE_NEWNS: c_long = 0x0002_0000;
const CLONE_NEWIPC: c_long = 0x0800_0000;
const CLONE_NEWPID: c_long = 0x2000_0000;
const CLONE_NEWNET: c_long = 0x4000_0000;
const SIGCHLD: c_long = 17;
const PROT_READ: c_int = 1;
const PROT_WRITE: c_int = 2;
const MAP_SHARED: c_int = 1;
const MAP_ANONYMOUS: c_int = 0x20;
const SIG_DFL: usize = 0;
const SIGKILL: c_int = 9;
const EINTR: i32 = 4;
const RLIMIT_CPU: c_int = 0;
const RLIMIT_NPROC: c_int = 6;
const RLIMIT_AS: c_int = 9;
/// Where the script is written, and the command's working directory.
const WORK_DIR: &str = "/work";
/// The directories each run gets a fresh tmpfs on, in mount order.
const TMPFS_DIRS: [&str; 3] = ["/work", "/tmp", "/dev/shm"];
/// Marks the shared result as written.
const RESULT_SET: i32 = 1;

/// The command's end, written by the run's init into memory shared with the shim.
#[repr(C)]
struct RunResult {
    set: AtomicI32,
    wait_status: AtomicI32,
}

/// What every run of this sandbox is prepared with.
pub struct Sandbox {
    tmpfs: Vec<(CString, CString)>,
    seccomp: Vec<u8>,
    landlock_abi: i64,
    /// A page shared with every run's init (`MAP_SHARED`, inherited by the clone).
    result: &'static RunResult,
}

fn c_string(text: &str) -> CString {
    // The constants and decimal numbers passed here contain no NUL byte.
    CString::new(text).unwrap_or_default()
}

/// A `RunResult` in a fresh shared anonymous page; `None` when it cannot be mapped.
fn shared_result() -> Option<&'static RunResult> {
    let len = std::mem::size_of::<RunResult>();
    let flags = MAP_SHARED | MAP_ANONYMOUS;
    // SAFETY: an anonymous mapping with no address hint; checked for failure below.
    let page = unsafe {
        mmap(
            std::ptr::null_mut(),
            len,
            PROT_READ | PROT_WRITE,
            flags,
            -1,
            0,
        )
    };
    if page.is_null() || page as isize == -1 {
        return None;
    }
    // SAFETY: the page is zeroed (both atomics 0), aligned, and mapped for the rest of the
    // process's life, never unmapped.
    Some(unsafe { &*page.cast::<RunResult>() })
}

impl Sandbox {
    pub fn new(sizes: [u64; 3], seccomp: Vec<u8>, landlock_abi: i64) -> Option<Self> {
        let tmpfs = TMPFS_DIRS
            .iter()
            .zip(sizes)
            .map(|(dir, size)| (c_string(dir), c_string(&format!("size={size},mode=1777"))))
            .collect();
        Some(Sandbox {
            tmpfs,
            seccomp,
            landlock_abi,
            result: shared_result()?,
        })
    }

    /// Runs one job with the given stdin, stdout and stderr; returns the status lines to
    /// report once nothing of the run is alive.
    pub fn run(&self, job: Job, stdio: [OwnedFd; 3], status: &File) -> String {
        let landlock = format!("landlock {}\n", self.landlock_abi.max(0));
        let [stdin, stdout, stderr] = stdio;
        // For messages meant for the user, before the command has its stderr.
        let Ok(user_stderr) = stderr.try_clone() else {
            return format!("{landlock}exit {SETUP_FAILED}\n");
        };
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
            seccomp: self.seccomp.clone(),
            landlock_abi: self.landlock_abi,
            status_fd: status.as_raw_fd(),
            user_stderr: user_stderr.as_raw_fd(),
        };
        let argv: Vec<OsString> = job.argv.into_iter().map(OsString::from_vec).collect();
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .stdin(Stdio::from(stdin))
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr));
        for (key, value) in job.env {
            command.env(OsString::from_vec(key), OsString::from_vec(value));
        }
        let rlimits = job.rlimits;
        // SAFETY: the hook runs in the child of the single-threaded run init between fork
        // and exec, and only makes system calls with integer or valid pointer arguments.
        unsafe {
            command.pre_exec(move || {
                for sig in IGNORED_SIGNALS {
                    signal(sig, SIG_DFL);
                }
                for &limit in &rlimits {
                    let (resource, value) = match limit {
                        Rlimit::Cpu(v) => (RLIMIT_CPU, v),
                        Rlimit::AddressSpace(v) => (RLIMIT_AS, v),
                        Rlimit::Processes(v) => (RLIMIT_NPROC, v),
                    };
                    if set_rlimit(resource, value) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }

        self.result.set.store(0, Ordering::SeqCst);
        let flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | SIGCHLD;
        // SAFETY: clone without a new stack behaves like fork: the child continues on a
        // copy of this single-threaded process's memory.
        let pid = unsafe {
            syscall(
                SYS_CLONE,
                flags,
                0 as c_long,
                0 as c_long,
                0 as c_long,
                0 as c_long,
            )
        };
        if pid == 0 {
            run_init(&plan, command, self.result);
        }
        // Our copies of the run's descriptors close here: the run holds the only ones left.
        drop((command, user_stderr, plan));
        let line = if pid < 0 {
            let error = std::io::Error::last_os_error();
            write_line(
                status.as_raw_fd(),
                format!("launch-error clone: {error}\n").as_bytes(),
            );
            format!("exit {SETUP_FAILED}\n")
        } else {
            let init_status = wait_for(pid as c_int);
            if self.result.set.load(Ordering::SeqCst) == RESULT_SET {
                status_line(self.result.wait_status.load(Ordering::SeqCst))
            } else {
                // The run's init ended before the command did (a failed step): its own code.
                status_line(init_status.unwrap_or(SETUP_FAILED << 8))
            }
        };
        // Nothing else may be left in the sandbox's namespace; make sure of it.
        kill_and_reap_rest();
        format!("{landlock}{line}")
    }
}

/// `exit N` or `signal N` for a raw wait status.
fn status_line(raw: c_int) -> String {
    let exit = ExitStatus::from_raw(raw);
    match (exit.code(), exit.signal()) {
        (Some(code), _) => format!("exit {code}\n"),
        (None, Some(sig)) => format!("signal {sig}\n"),
        (None, None) => "exit 255\n".to_owned(),
    }
}

/// The run's init, pid 1 of the run's namespaces: isolates itself, runs the command, reaps
/// until it has ended, records its wait status and exits. Never returns.
fn run_init(plan: &Plan, mut command: Command, result: &RunResult) -> ! {
    isolate(plan);
    let code = match command.spawn() {
        Ok(child) => {
            drop(command);
            // No status only if the command vanished without a trace: report it as failed.
            let raw = reap_until(child.id() as c_int).unwrap_or(255 << 8);
            result.wait_status.store(raw, Ordering::SeqCst);
            result.set.store(RESULT_SET, Ordering::SeqCst);
            0
        }
        Err(e) => {
            let program = command.get_program().to_string_lossy().into_owned();
            let message = format!("{program}: {e}\n");
            write_line(plan.user_stderr, message.as_bytes());
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            result.wait_status.store(code << 8, Ordering::SeqCst);
            result.set.store(RESULT_SET, Ordering::SeqCst);
            code
        }
    };
    // SAFETY: ends the run's init; the kernel kills what is left of its pid namespace.
    unsafe { _exit(code) }
}

/// Waits for the child `pid`; its raw wait status, `None` when there is no such child.
fn wait_for(pid: c_int) -> Option<c_int> {
    loop {
        let mut status: c_int = 0;
        // SAFETY: status is a valid out-pointer.
        let ret = unsafe { waitpid(pid, &mut status, 0) };
        if ret == pid {
            return Some(status);
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(EINTR) {
            return None;
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

/// Kills every other process of the sandbox's namespace and reaps them all.
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
