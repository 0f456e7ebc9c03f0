//! Each run's own `/dev`, built by the run init before it drops its capabilities (see
//! isolate.rs): nothing of it outlives the run, and nothing in it can be changed by the run.
//!
//! bubblewrap's `/dev` (a tmpfs with the host's device nodes bound in, and a devpts) is shared
//! by every run of a sandbox, and the run's uid owns it: a run could set extended attributes,
//! timestamps or modes there for the next run to read, park kernel memory in it, or break
//! `/dev/pts` for the runs after it. So each run gets a new one, assembled in a staging
//! directory in the run's fresh `/tmp` and moved over `/dev` in one step:
//! - a small tmpfs, mounted **read-only** once assembled (no `chmod`, `utimes`, `setxattr`
//!   or new entries in it);
//! - the standard devices bound in from the sandbox's `/dev`, each bind read-only too, so the
//!   run cannot even touch the timestamps of the host's device nodes (a read-only mount keeps
//!   reads and writes of a device working);
//! - the usual links (`fd`, `stdin`, `stdout`, `stderr`, `ptmx`);
//! - a new devpts instance on `pts` and a fresh size-capped tmpfs on `shm`, the only two
//!   writable places, both new for every run.

use std::ffi::{CStr, CString};
use std::os::raw::{c_int, c_ulong};

use crate::ffi::{close, mkdir, mount, open, rmdir, statvfs, symlink, StatVfs, O_CLOEXEC};

const MS_RDONLY: c_ulong = 1;
const MS_NOSUID: c_ulong = 2;
const MS_NODEV: c_ulong = 4;
const MS_NOEXEC: c_ulong = 8;
const MS_REMOUNT: c_ulong = 32;
const MS_NOATIME: c_ulong = 1024;
const MS_NODIRATIME: c_ulong = 2048;
const MS_BIND: c_ulong = 4096;
const MS_MOVE: c_ulong = 8192;
const MS_RELATIME: c_ulong = 1 << 21;
const MS_STRICTATIME: c_ulong = 1 << 24;
const ST_RDONLY: c_ulong = 1;
const ST_NOSUID: c_ulong = 2;
const ST_NODEV: c_ulong = 4;
const ST_NOEXEC: c_ulong = 8;
const ST_NOATIME: c_ulong = 1024;
const ST_NODIRATIME: c_ulong = 2048;
const ST_RELATIME: c_ulong = 4096;
const O_WRONLY: c_int = 1;
const O_CREAT: c_int = 0o100;
const O_EXCL: c_int = 0o200;
const O_NOFOLLOW: c_int = 0o400_000;

/// Where the new `/dev` is assembled: in the run's own fresh `/tmp`, removed once moved.
const STAGE: &str = "/tmp/.dev";
/// The devices a program needs, bound in from the sandbox's `/dev`.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];
/// `(target, name)` of the links in `/dev`.
const LINKS: [(&str, &str); 5] = [
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
    ("pts/ptmx", "ptmx"),
];
/// The new `/dev` holds a handful of entries; its tmpfs has room for no more.
const DEV_TMPFS_OPTIONS: &str = "size=16k,nr_inodes=32,mode=755";
/// A new devpts instance: pseudo-terminals any process of the run may open.
const DEVPTS_OPTIONS: &str = "newinstance,ptmxmode=0666,mode=620";

fn c(text: &str) -> CString {
    // Constants and sizes only: no NUL byte.
    CString::new(text).unwrap_or_default()
}

fn staged(name: &str) -> CString {
    c(&format!("{STAGE}/{name}"))
}

/// Every path and option of a run's `/dev`, allocated before the run init is cloned.
pub struct DevPlan {
    stage: CString,
    dev: CString,
    /// `(sandbox device, staged file)`.
    devices: Vec<(CString, CString)>,
    links: Vec<(CString, CString)>,
    dev_options: CString,
    pts: CString,
    pts_options: CString,
    shm: CString,
    shm_options: CString,
}

impl DevPlan {
    /// `shm_options`: the mount options of the run's `/dev/shm` tmpfs.
    pub fn new(shm_options: CString) -> Self {
        DevPlan {
            stage: c(STAGE),
            dev: c("/dev"),
            devices: DEVICES
                .iter()
                .map(|name| (c(&format!("/dev/{name}")), staged(name)))
                .collect(),
            links: LINKS
                .iter()
                .map(|(target, name)| (c(target), staged(name)))
                .collect(),
            dev_options: c(DEV_TMPFS_OPTIONS),
            pts: staged("pts"),
            pts_options: c(DEVPTS_OPTIONS),
            shm: staged("shm"),
            shm_options,
        }
    }
}

/// The mount flags of `path` that a bind of it must keep (a bind of a mount that came from
/// the host keeps its locked flags; a remount that dropped one would be refused).
fn kept_flags(path: &CStr) -> Option<c_ulong> {
    let mut info = std::mem::MaybeUninit::<StatVfs>::zeroed();
    // SAFETY: a valid path and a buffer of the C library's `struct statvfs`.
    if unsafe { statvfs(path.as_ptr(), info.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: statvfs filled it in (and it was zeroed before).
    let flags = unsafe { info.assume_init() }.f_flag;
    let pairs = [
        (ST_RDONLY, MS_RDONLY),
        (ST_NOSUID, MS_NOSUID),
        (ST_NODEV, MS_NODEV),
        (ST_NOEXEC, MS_NOEXEC),
        (ST_NOATIME, MS_NOATIME),
        (ST_NODIRATIME, MS_NODIRATIME),
        (ST_RELATIME, MS_RELATIME),
    ];
    let kept = pairs
        .iter()
        .filter(|(st, _)| flags & st != 0)
        .fold(0, |acc, (_, ms)| acc | ms);
    // Neither noatime nor relatime: strict atime is what the source has.
    let atime = if kept & (MS_NOATIME | MS_RELATIME) == 0 {
        MS_STRICTATIME
    } else {
        0
    };
    Some(kept | atime)
}

/// One `mount(2)` call; `Err(step)` names what failed (errno is left for the report).
fn mount_at(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: c_ulong,
    data: Option<&CStr>,
    step: &'static str,
) -> Result<(), &'static str> {
    let ptr = |s: Option<&CStr>| s.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: NUL-terminated strings or null pointers, as mount(2) takes them.
    let done = unsafe {
        mount(
            ptr(source),
            target.as_ptr(),
            ptr(fstype),
            flags,
            ptr(data).cast(),
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(step)
    }
}

fn check(result: c_int, step: &'static str) -> Result<(), &'static str> {
    if result == 0 {
        Ok(())
    } else {
        Err(step)
    }
}

/// Builds the run's `/dev` (see the module docs) and moves it over the sandbox's. Must run
/// after the run's `/tmp` is mounted and before capabilities are dropped.
pub fn mount_run_dev(plan: &DevPlan) -> Result<(), &'static str> {
    let tmpfs = Some(c"tmpfs");
    // SAFETY (every call below): valid NUL-terminated strings and integer arguments.
    check(unsafe { mkdir(plan.stage.as_ptr(), 0o755) }, "creating the /dev stage")?;
    mount_at(
        tmpfs,
        &plan.stage,
        tmpfs,
        MS_NOSUID | MS_NOEXEC,
        Some(&plan.dev_options),
        "mounting the /dev tmpfs",
    )?;
    for (device, file) in &plan.devices {
        let flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
        let fd = unsafe { open(file.as_ptr(), flags, 0o644 as c_int) };
        if fd < 0 {
            return Err("creating a /dev entry");
        }
        unsafe { close(fd) };
        let kept = kept_flags(device).ok_or("reading the flags of a device")?;
        mount_at(Some(device), file, None, MS_BIND, None, "binding a device")?;
        let read_only = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC | kept;
        mount_at(None, file, None, read_only, None, "binding a device read-only")?;
    }
    for (target, link) in &plan.links {
        check(
            unsafe { symlink(target.as_ptr(), link.as_ptr()) },
            "creating a /dev link",
        )?;
    }
    for dir in [&plan.pts, &plan.shm] {
        check(unsafe { mkdir(dir.as_ptr(), 0o755) }, "creating a /dev directory")?;
    }
    let devpts = c"devpts";
    mount_at(
        Some(devpts),
        &plan.pts,
        Some(devpts),
        MS_NOSUID | MS_NOEXEC,
        Some(&plan.pts_options),
        "mounting /dev/pts",
    )?;
    mount_at(
        tmpfs,
        &plan.shm,
        tmpfs,
        MS_NOSUID | MS_NODEV,
        Some(&plan.shm_options),
        "mounting /dev/shm",
    )?;
    let read_only = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC;
    mount_at(None, &plan.stage, None, read_only, None, "making /dev read-only")?;
    mount_at(
        Some(&plan.stage),
        &plan.dev,
        None,
        MS_MOVE,
        None,
        "moving the new /dev",
    )?;
    check(unsafe { rmdir(plan.stage.as_ptr()) }, "removing the /dev stage")
}
