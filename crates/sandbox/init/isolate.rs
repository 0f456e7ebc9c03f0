//! The isolation steps of one run, taken by the run's init (pid 1 of the run's own pid
//! namespace, see run.rs) before its job arrives ([`prepare`]), and the script written once it
//! has ([`write_script`]). Each failing step of [`prepare`] reports
//! `launch-error <step>: <error>` on the status pipe and ends the run's init with
//! [`SETUP_FAILED`]: the sandbox is retired.

use std::ffi::{CStr, CString};
use std::os::raw::{c_int, c_long, c_short, c_ulong};

use crate::ffi::{
    _exit, chdir, close, ioctl, mount, open, prctl, socket, syscall, write, EINTR, EINVAL, ENOENT,
    O_CLOEXEC,
};
use crate::dev::{mount_run_dev, DevPlan};
use crate::landlock;

const MS_RDONLY: c_ulong = 1;
const MS_NOSUID: c_ulong = 2;
const MS_NODEV: c_ulong = 4;
const MS_NOEXEC: c_ulong = 8;
const MS_REMOUNT: c_ulong = 32;
const MS_BIND: c_ulong = 4096;
const MS_REC: c_ulong = 16384;
const O_WRONLY: c_int = 1;
const O_CREAT: c_int = 0o100;
const O_EXCL: c_int = 0o200;
const O_NOFOLLOW: c_int = 0o400_000;
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
/// Exit code of a run whose sandbox could not prepare it (the script never started).
pub const SETUP_FAILED: c_int = 125;

/// Entries of `/proc` bound read-only over themselves, as bubblewrap does for its `/proc`.
const PROC_COVERS: [&CStr; 4] = [
    c"/proc/sys",
    c"/proc/sysrq-trigger",
    c"/proc/irq",
    c"/proc/bus",
];

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

/// What every run of a sandbox is isolated with, allocated before the run's init is cloned.
pub struct Setup {
    /// Each tmpfs: mount point and mount options (`/work` and `/tmp`).
    pub tmpfs: Vec<(CString, CString)>,
    /// The run's own `/dev`, with its `/dev/shm`.
    pub dev: DevPlan,
    pub work: CString,
    pub seccomp: Vec<u8>,
    pub landlock_abi: i64,
    pub status_fd: c_int,
}

/// Writes `line` to `fd` in one call.
pub fn write_line(fd: c_int, line: &[u8]) {
    // SAFETY: line is a valid buffer for its length.
    unsafe { write(fd, line.as_ptr(), line.len()) };
}

/// Ends the run's init after a failed step (see the module docs).
fn fail(plan: &Setup, step: &str) -> ! {
    let error = std::io::Error::last_os_error();
    let line = format!("launch-error {step}: {error}\n");
    write_line(plan.status_fd, line.as_bytes());
    // SAFETY: ends this process at once.
    unsafe { _exit(SETUP_FAILED) }
}

/// Every step that needs no job: the calling process ends up in its fresh file systems,
/// without capabilities, restricted by landlock and the seccomp allow-list, which the command
/// inherits.
pub fn prepare(plan: &Setup) {
    mount_run_filesystems(plan);
    loopback_up(plan);
    drop_capabilities(plan);
    restrict(plan);
}

/// Fresh tmpfs on `/work` and `/tmp`, a `/dev` of the run's own (dev.rs: read-only, with a
/// new devpts and a fresh `/dev/shm`), and a `/proc` of the run's own pid namespace with its
/// kernel knobs read-only. The sandbox's mounts are private (bubblewrap's), so none of this
/// propagates out of the run's mount namespace.
fn mount_run_filesystems(plan: &Setup) {
    let flags = MS_NOSUID | MS_NODEV;
    // SAFETY (whole function): mount and chdir with valid NUL-terminated strings.
    unsafe {
        for (dir, options) in &plan.tmpfs {
            let fs = c"tmpfs".as_ptr();
            if mount(fs, dir.as_ptr(), fs, flags, options.as_ptr().cast()) != 0 {
                fail(plan, "mounting a tmpfs");
            }
        }
        if let Err(step) = mount_run_dev(&plan.dev) {
            fail(plan, step);
        }
        let proc_fs = c"proc".as_ptr();
        let proc_flags = flags | MS_NOEXEC;
        if mount(
            proc_fs,
            c"/proc".as_ptr(),
            proc_fs,
            proc_flags,
            std::ptr::null(),
        ) != 0
        {
            fail(plan, "mounting /proc");
        }
        for path in PROC_COVERS {
            if mount(
                path.as_ptr(),
                path.as_ptr(),
                std::ptr::null(),
                MS_BIND | MS_REC,
                std::ptr::null(),
            ) != 0
            {
                if std::io::Error::last_os_error().raw_os_error() == Some(ENOENT) {
                    continue;
                }
                fail(plan, "covering /proc");
            }
            let read_only = MS_REMOUNT | MS_BIND | MS_RDONLY | proc_flags;
            if mount(
                std::ptr::null(),
                path.as_ptr(),
                std::ptr::null(),
                read_only,
                std::ptr::null(),
            ) != 0
            {
                fail(plan, "covering /proc read-only");
            }
        }
        if chdir(plan.work.as_ptr()) != 0 {
            fail(plan, "chdir /work");
        }
    }
}

/// Creates the script in the fresh `/work`; `O_EXCL | O_NOFOLLOW`, so no existing entry is
/// ever followed. `Err` says why it could not be written (e.g. it does not fit the tmpfs),
/// for the script's stderr.
pub fn write_script(path: &CStr, script: &[u8]) -> Result<(), String> {
    let flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    // SAFETY: a valid path; mode is an integer.
    let fd = unsafe { open(path.as_ptr(), flags, 0o444 as c_int) };
    if fd < 0 {
        return Err(format!(
            "cannot create the script: {}",
            std::io::Error::last_os_error()
        ));
    }
    let mut rest = script;
    let mut result = Ok(());
    while !rest.is_empty() {
        // SAFETY: rest is a valid buffer for its length.
        let n = unsafe { write(fd, rest.as_ptr(), rest.len()) };
        if n <= 0 {
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() == Some(EINTR) {
                continue;
            }
            result = Err(format!("cannot write the script: {error}"));
            break;
        }
        rest = &rest[usize::try_from(n).unwrap_or(0)..];
    }
    // SAFETY: fd is ours.
    unsafe { close(fd) };
    result
}

/// Brings up `lo` in the run's new network namespace (the kernel then gives it 127.0.0.1 and
/// ::1): scripts may talk to themselves, never to anything outside.
fn loopback_up(plan: &Setup) {
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
fn drop_capabilities(plan: &Setup) {
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
        let empty = || CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        };
        let data = [empty(), empty()];
        if syscall(SYS_CAPSET, &header as *const CapHeader, data.as_ptr()) != 0 {
            fail(plan, "capset");
        }
    }
}

/// Landlock (when the kernel has it), then the seccomp allow-list, last.
fn restrict(plan: &Setup) {
    // SAFETY: syscalls with integer arguments or pointers to data living across each call.
    unsafe {
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
