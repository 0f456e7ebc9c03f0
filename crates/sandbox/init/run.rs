//! The runs of a long-lived sandbox. For each run the shim clones a **run init** into new
//! pid, mount, network and IPC namespaces as soon as the previous run is over, so a run's
//! isolation is ready before its job arrives. As pid 1 of the run's pid namespace, the run
//! init isolates itself (isolate.rs), then takes the next job from the control socket, writes
//! the script, starts the command, reaps every process of the run until the command has
//! ended, leaves the command's wait status in a page shared with the shim, and exits, which
//! kills whatever is left of the run (the end of a pid namespace's init ends the namespace).
//! The shim waits for it: once it is reaped, nothing of the run is alive.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::raw::{c_int, c_long};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};

use crate::dev::DevPlan;
use crate::fdpass::Message;
use crate::ffi::{_exit, kill, mmap, syscall, waitpid, EINTR, SIGKILL};
use crate::isolate::{prepare, write_line, write_script, Setup, SETUP_FAILED};
use crate::prestart::{command_for, prestart, Prestarted};
use crate::{fdpass, read_job};

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
/// Where the script is written, and the command's working directory.
const WORK_DIR: &str = "/work";
/// The directories each run gets a fresh tmpfs on, in mount order (its `/dev/shm` comes
/// with its own `/dev`, dev.rs).
const TMPFS_DIRS: [&str; 2] = ["/work", "/tmp"];

/// How far a run init got, in the shared page.
mod state {
    /// Isolated, waiting for a job (or died before one arrived: nothing to report).
    pub const WAITING: i32 = 0;
    /// Isolating itself; ending in this state means a step failed (already reported).
    pub const PREPARING: i32 = 1;
    /// A job was taken; ending in this state means the run init died with it.
    pub const RUNNING: i32 = 2;
    /// The command's wait status is recorded.
    pub const ENDED: i32 = 3;
    /// The control socket was closed: the sandbox is retired.
    pub const RETIRED: i32 = 4;
    /// The control socket failed (already reported).
    pub const BROKEN: i32 = 5;
}

/// What a run init leaves for the shim, in memory shared with it.
#[repr(C)]
struct RunResult {
    state: AtomicI32,
    wait_status: AtomicI32,
}

impl RunResult {
    fn set(&self, state: i32) {
        self.state.store(state, Ordering::SeqCst);
    }

    fn ended(&self, wait_status: c_int) {
        self.wait_status.store(wait_status, Ordering::SeqCst);
        self.set(state::ENDED);
    }
}

/// What the shim does after one run init is reaped.
pub enum Served {
    /// Report these status lines: a run ended.
    Report(String),
    /// No run was in progress; start the next run init.
    Quiet,
    /// Exit: the sandbox is retired or broken.
    Stop,
}

/// What every run of this sandbox is prepared with.
pub struct Sandbox {
    setup: Setup,
    /// A page shared with every run init (`MAP_SHARED`, inherited by the clone).
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
    pub fn new(
        sizes: [u64; 3],
        seccomp: Vec<u8>,
        landlock_abi: i64,
        status: &File,
    ) -> Option<Self> {
        let options = |size: u64| c_string(&format!("size={size},mode=1777"));
        let [work_size, tmp_size, shm_size] = sizes;
        let tmpfs = TMPFS_DIRS
            .iter()
            .zip([work_size, tmp_size])
            .map(|(dir, size)| (c_string(dir), options(size)))
            .collect();
        Some(Sandbox {
            setup: Setup {
                tmpfs,
                dev: DevPlan::new(options(shm_size)),
                work: c_string(WORK_DIR),
                seccomp,
                landlock_abi,
                status_fd: status.as_raw_fd(),
            },
            result: shared_result()?,
        })
    }

    /// Clones the next run init and waits until it is reaped (an idle sandbox waits here).
    pub fn serve(&self, control: c_int) -> Served {
        self.result.set(state::PREPARING);
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
            self.run_init(control);
        }
        if pid < 0 {
            let error = std::io::Error::last_os_error();
            let line = format!("launch-error clone: {error}\n");
            write_line(self.setup.status_fd, line.as_bytes());
            return Served::Stop;
        }
        let init_status = wait_for(pid as c_int);
        // Nothing else may be left in the sandbox's namespace; make sure of it.
        kill_and_reap_rest();
        match self.result.state.load(Ordering::SeqCst) {
            state::ENDED => {
                let status = self.result.wait_status.load(Ordering::SeqCst);
                Served::Report(status_line(status))
            }
            // The run init died with the run (e.g. killed): its own end is the run's.
            state::RUNNING => Served::Report(status_line(init_status.unwrap_or(SETUP_FAILED << 8))),
            state::WAITING => Served::Quiet,
            _ => Served::Stop,
        }
    }

    /// The run init (see the module docs). Never returns.
    fn run_init(&self, control: c_int) -> ! {
        let result = self.result;
        prepare(&self.setup);
        result.set(state::WAITING);
        let mut prestarted: Option<Prestarted> = None;
        let fds = loop {
            match fdpass::receive(control) {
                Ok(Some(Message::Run(fds))) => break fds,
                Ok(Some(Message::Prestart(spec))) => {
                    if prestarted.is_none() {
                        prestarted = prestart(spec);
                    }
                }
                Ok(None) => finish(result, state::RETIRED, 0),
                Err(e) => {
                    let line = format!("launch-error control socket: {e}\n");
                    write_line(self.setup.status_fd, line.as_bytes());
                    finish(result, state::BROKEN, SETUP_FAILED)
                }
            }
        };
        result.set(state::RUNNING);
        // Tells the supervisor the run was taken (a sandbox that dies before this line is
        // replaced and the run started again elsewhere), and the landlock ABI it runs under.
        let taken = format!("landlock {}\n", self.setup.landlock_abi.max(0));
        write_line(self.setup.status_fd, taken.as_bytes());
        let [job, stdin, stdout, stderr] = fds;
        let stderr_fd = stderr.as_raw_fd();
        let job = match read_job(File::from(job)) {
            Ok(job) => job,
            Err(e) => {
                write_line(
                    self.setup.status_fd,
                    format!("launch-error job: {e}\n").as_bytes(),
                );
                result.ended(SETUP_FAILED << 8);
                finish(result, state::ENDED, SETUP_FAILED)
            }
        };
        let mut script_path = OsString::from(WORK_DIR).into_vec();
        script_path.push(b'/');
        script_path.extend_from_slice(&job.file_name);
        let written = CString::new(script_path)
            .map_err(|_| "invalid script file name".to_owned())
            .and_then(|path| write_script(&path, &job.script));
        if let Err(e) = written {
            write_line(stderr_fd, format!("sandbox: {e}\n").as_bytes());
            result.ended(SETUP_FAILED << 8);
            finish(result, state::ENDED, SETUP_FAILED);
        }
        if let Some(ready) = prestarted {
            // The interpreter started ahead serves this run only if it was started for
            // exactly this command, environment and limits; it gets the run's streams now
            // that the script is in place.
            let streams = [stdin.as_raw_fd(), stdout.as_raw_fd(), stderr_fd];
            if job.same_run_as(&ready.spec)
                && fdpass::send_streams(ready.socket.as_raw_fd(), b'g', streams).is_ok()
            {
                drop((stdin, stdout, stderr, ready.socket));
                result.ended(reap_until(ready.pid).unwrap_or(255 << 8));
                finish(result, state::ENDED, 0)
            }
            // Not this run's: it goes (the namespace's end reaps it at the latest).
            // SAFETY: plain integers; the pid is our own child.
            unsafe {
                kill(ready.pid, SIGKILL);
            }
        }
        // For a failed exec, said on the script's stderr.
        let user_stderr = stderr.try_clone().ok();
        let mut command = command_for(&job.argv, job.env, job.rlimits);
        command
            .stdin(Stdio::from(stdin))
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr));
        match command.spawn() {
            Ok(child) => {
                drop(command);
                // No status only if the command vanished without a trace: report it failed.
                result.ended(reap_until(child.id() as c_int).unwrap_or(255 << 8));
            }
            Err(e) => {
                let program = command.get_program().to_string_lossy().into_owned();
                if let Some(out) = &user_stderr {
                    write_line(out.as_raw_fd(), format!("{program}: {e}\n").as_bytes());
                }
                let code = if e.kind() == std::io::ErrorKind::NotFound {
                    127
                } else {
                    126
                };
                result.ended(code << 8);
            }
        }
        finish(result, state::ENDED, 0)
    }
}

/// Ends the run init in `state` (a state already recorded is kept).
fn finish(result: &RunResult, final_state: i32, code: c_int) -> ! {
    if result.state.load(Ordering::SeqCst) != state::ENDED {
        result.set(final_state);
    }
    // SAFETY: ends the run init; the kernel kills what is left of its pid namespace.
    unsafe { _exit(code) }
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
